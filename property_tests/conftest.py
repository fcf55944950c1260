"""Hypothesis profiles for the property suite.

- ``dev``: quick local runs (about 50 examples);
- ``ci`` (the default): deterministic (``derandomize``), sized so that the whole property
  suite runs in well under 3 minutes on 2 cores;
- ``slow``: a larger search, for the ``-m slow`` step or a soak run.

Pick one with ``HYPOTHESIS_PROFILE=dev|ci|slow``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_BASE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

settings.register_profile("dev", _BASE, max_examples=50, stateful_step_count=40)
settings.register_profile(
    "ci", _BASE, max_examples=1000, stateful_step_count=50, derandomize=True, print_blob=True
)
settings.register_profile("slow", _BASE, max_examples=5000, stateful_step_count=100, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
