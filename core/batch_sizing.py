"""Adaptive batch sizing, co3-style, as a pure function (style anchors §6).

Jobmon fixes the batch size at 500. When adaptive batching is on, the next size moves
toward the size that would make a ``queue_task_batch`` call take ``target`` seconds,
smoothed by an exponential moving average, capped, and never below 1.
"""

from __future__ import annotations

import math

#: Weight of the newest observation in the moving average (co3 uses 0.5).
SMOOTHING = 0.5
#: Durations shorter than this are treated as this, so nothing divides by zero.
MIN_ELAPSED = 1e-6


def next_batch_size(
    previous: int,
    elapsed: float,
    target: float,
    cap: int,
    remaining: int | None = None,
    smoothing: float = SMOOTHING,
    observed: int | None = None,
) -> int:
    """The size of the next batch.

    A batch of ``observed`` tasks (default ``previous``) took ``elapsed`` seconds; the size
    that would take ``target`` seconds at that rate is ``observed * target / elapsed``.
    The result is the moving average of that and ``previous``, rounded, clipped to
    ``[1, cap]`` and to ``remaining`` when given.
    Non-finite or negative inputs are treated as "no information" and keep ``previous``.
    """
    cap = max(1, int(cap))
    previous = min(max(1, int(previous)), cap)
    if not (math.isfinite(elapsed) and math.isfinite(target)) or elapsed < 0 or target <= 0:
        size = previous
    else:
        measured = previous if observed is None else max(1, int(observed))
        rate_target = measured * target / max(elapsed, MIN_ELAPSED)
        # smoothing 0 ignores the measurement (and 0 * inf would be nan).
        blended = previous if smoothing == 0 else smoothing * rate_target + (1 - smoothing) * previous
        size = int(round(min(blended, float(cap))))
    size = min(max(1, size), cap)
    if remaining is not None:
        size = min(size, max(1, int(remaining)))
    return size
