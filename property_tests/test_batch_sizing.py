"""Properties of ``next_batch_size`` (adaptive batch sizing, co3-style).

Bounds: the result is an int in ``[1, cap]`` and at most ``remaining`` (when given and
positive). Robustness: no input raises, whatever the elapsed time (0, tiny, huge, negative,
nan, inf) or target. Direction: a batch faster than the target never shrinks the next one,
a slower one never grows it; the result falls as ``elapsed`` grows and rises with
``previous``.
"""

from __future__ import annotations

import math

from hypothesis import example, given
from hypothesis import strategies as st

from swarmfold.core.batch_sizing import MIN_ELAPSED, SMOOTHING, next_batch_size

sizes = st.integers(min_value=1, max_value=10_000)
caps = st.integers(min_value=1, max_value=10_000)
#: Every float a clock difference could produce, and then some.
any_elapsed = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 5e-324, 1e-12, 1e-6, 1e308, -1.0, math.inf, -math.inf, math.nan]
)
finite_elapsed = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
targets = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
smoothings = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def _clipped(previous: int, cap: int) -> int:
    return min(max(1, previous), max(1, cap))


@given(previous=st.integers(-10, 10**6), elapsed=any_elapsed, target=any_elapsed,
       cap=st.integers(-5, 10**6), remaining=st.none() | st.integers(-5, 10**6))
@example(previous=10, elapsed=0.0, target=1.0, cap=500, remaining=None)
@example(previous=500, elapsed=math.nan, target=1.0, cap=500, remaining=3)
@example(previous=2, elapsed=5e-324, target=1e308, cap=500, remaining=None)
def test_never_raises_and_stays_in_bounds(
    previous: int, elapsed: float, target: float, cap: int, remaining: int | None
) -> None:
    size = next_batch_size(previous, elapsed, target, cap, remaining)
    assert isinstance(size, int)
    assert 1 <= size <= max(1, cap)
    if remaining is not None:
        assert size <= max(1, remaining)


@given(previous=sizes, elapsed=any_elapsed, target=any_elapsed, cap=caps, smoothing=smoothings)
@example(previous=2, elapsed=5e-324, target=1e308, cap=500, smoothing=0.0)
@example(previous=2, elapsed=5e-324, target=1e308, cap=500, smoothing=1.0)
def test_never_raises_for_any_smoothing(
    previous: int, elapsed: float, target: float, cap: int, smoothing: float
) -> None:
    size = next_batch_size(previous, elapsed, target, cap, smoothing=smoothing)
    assert 1 <= size <= cap


def test_zero_smoothing_with_an_overflowing_rate() -> None:
    """``smoothing=0`` means "ignore the measurement": the size must stay ``previous``."""
    assert next_batch_size(2, 5e-324, 1e308, 500, smoothing=0.0) == 2


@given(previous=sizes, elapsed=st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-9]),
       target=targets, cap=caps)
def test_no_information_keeps_previous(previous: int, elapsed: float, target: float, cap: int) -> None:
    """Non-finite or negative durations say nothing: keep the previous size (clipped)."""
    assert next_batch_size(previous, elapsed, target, cap) == _clipped(previous, cap)


@given(previous=sizes, target=targets, cap=caps, data=st.data())
def test_faster_than_target_never_shrinks(
    previous: int, target: float, cap: int, data: st.DataObject
) -> None:
    elapsed = data.draw(st.floats(min_value=0.0, max_value=target, exclude_max=True), label="elapsed")
    size = next_batch_size(previous, elapsed, target, cap)
    assert size >= _clipped(previous, cap)
    if previous < cap:
        assert size >= previous


@given(previous=sizes, target=targets, cap=caps, data=st.data())
def test_slower_than_target_never_grows(previous: int, target: float, cap: int, data: st.DataObject) -> None:
    elapsed = data.draw(st.floats(min_value=target, max_value=1e9, exclude_min=True), label="elapsed")
    assert next_batch_size(previous, elapsed, target, cap) <= _clipped(previous, cap)


@given(previous=sizes, observed=sizes, elapsed=finite_elapsed, target=targets, cap=caps)
def test_direction_follows_the_measured_rate(
    previous: int, observed: int, elapsed: float, target: float, cap: int
) -> None:
    """``observed`` tasks took ``elapsed``: the next size moves toward the rate's ideal size."""
    ideal = observed * target / max(elapsed, MIN_ELAPSED)
    size = next_batch_size(previous, elapsed, target, cap, observed=observed)
    assert 1 <= size <= cap
    if ideal >= previous:
        assert size >= _clipped(previous, cap)
    if ideal <= previous:
        assert size <= _clipped(previous, cap)


@given(previous=sizes, target=targets, cap=caps)
def test_on_target_keeps_previous(previous: int, target: float, cap: int) -> None:
    assert next_batch_size(previous, target, target, cap) == _clipped(previous, cap)


@given(previous=sizes, target=targets, cap=caps, a=finite_elapsed, b=finite_elapsed,
       smoothing=smoothings)
def test_monotone_in_elapsed(previous: int, target: float, cap: int, a: float, b: float,
                             smoothing: float) -> None:
    """A longer duration never gives a larger next batch."""
    fast, slow = sorted((a, b))
    assert next_batch_size(previous, fast, target, cap, smoothing=smoothing) >= next_batch_size(
        previous, slow, target, cap, smoothing=smoothing
    )


@given(a=sizes, b=sizes, elapsed=finite_elapsed, target=targets, cap=caps)
def test_monotone_in_previous(a: int, b: float, elapsed: float, target: float, cap: int) -> None:
    """A larger previous batch, taking the same time, never gives a smaller next batch."""
    small, large = sorted((a, b))
    assert next_batch_size(small, elapsed, target, cap) <= next_batch_size(large, elapsed, target, cap)


@given(previous=sizes, elapsed=finite_elapsed, target=targets, cap=caps, remaining=sizes)
def test_remaining_only_lowers(
    previous: int, elapsed: float, target: float, cap: int, remaining: int
) -> None:
    unbounded = next_batch_size(previous, elapsed, target, cap)
    assert next_batch_size(previous, elapsed, target, cap, remaining) == min(unbounded, remaining)


@given(previous=sizes, target=targets, cap=caps)
def test_converges_toward_the_target_rate(previous: int, target: float, cap: int) -> None:
    """At a fixed rate the size reaches the target size (or the cap) and stays there."""
    rate = 100.0  # tasks per second
    size = previous
    for _ in range(80):
        size = next_batch_size(size, size / rate, target, cap)
    ideal = min(cap, max(1, rate * target))
    assert abs(size - ideal) <= max(1.0, 0.01 * ideal)
    assert next_batch_size(size, size / rate, target, cap) == size or abs(size - ideal) <= 1


def test_default_smoothing_is_co3s() -> None:
    assert SMOOTHING == 0.5
    # 100 tasks took 0.5 s against a 1 s target: aim for 200, blend to 150.
    assert next_batch_size(100, 0.5, 1.0, 500) == 150
    assert next_batch_size(100, 0.5, 1.0, 120) == 120
    assert next_batch_size(100, 0.5, 1.0, 500, remaining=7) == 7
