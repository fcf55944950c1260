"""The spread of a figure over seeds, and which sweep points can be told apart.

With random durations one seed per point makes the "best" limit partly noise. ``Spread``
summarises one figure (makespan, peak active) over the seeds of one point: count, mean,
standard deviation and the 5th, 50th and 95th percentiles (nearest rank, as every other
report of the simulator).

``indistinguishable(best, other)`` says whether two points' mean makespans differ by less
than the noise: the difference of the means is within 1.96 standard errors of the
difference (Welch), i.e. a 95% interval on the difference contains zero. With fewer than two
seeds at either point nothing can be told apart, and the reports say so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
from attrs import frozen

from swarmfold.shell.sim.report import percentile

__all__ = ["Spread", "indistinguishable", "spread_of"]

Z_95 = 1.96


@frozen
class Spread:
    """One figure over ``n`` seeds."""

    n: int
    mean: float
    std: float
    p5: float
    p50: float
    p95: float

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def spread_of(values: Sequence[float]) -> Spread | None:
    """The spread of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    mean = math.fsum(ordered) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in ordered) / (n - 1)) if n > 1 else 0.0
    return Spread(
        n=n,
        mean=mean,
        std=std,
        p5=_at(ordered, 0.05),
        p50=_at(ordered, 0.50),
        p95=_at(ordered, 0.95),
    )


def _at(ordered: Sequence[float], p: float) -> float:
    value = percentile(ordered, p)
    assert value is not None
    return value


def indistinguishable(a: Spread, b: Spread) -> bool:
    """True when the means of ``a`` and ``b`` differ by no more than the noise (see module doc)."""
    if a.n < 2 or b.n < 2:
        return True
    stderr = math.sqrt(a.std**2 / a.n + b.std**2 / b.n)
    return abs(a.mean - b.mean) <= Z_95 * stderr
