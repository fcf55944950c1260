"""Task resources: validation against queue bounds, scaling, fallback queues (spec §5).

Everything here is a pure function of values. ``Resources`` is compared and hashed by
content (queue name + requested values), like Jobmon's ``TaskResources`` hash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from attrs import field, frozen

ResourceValue = int | float | str
#: Sorted ``(name, value)`` pairs: hashable, and byte-stable in logs.
Requested = tuple[tuple[str, ResourceValue], ...]
#: A scale is a number (``ceil(v*(1+s))``), a list of absolute values indexed by adjustment
#: number, or the name of a callable the shell evaluates.
Scale = float | int | tuple[float | int, ...] | str


def freeze_requested(values: Mapping[str, ResourceValue] | Requested) -> Requested:
    """Sorted ``(name, value)`` pairs from a mapping or pairs."""
    items = values.items() if isinstance(values, Mapping) else values
    return tuple(sorted((str(k), v) for k, v in items))


@frozen(cache_hash=True)
class Resources:
    """A resource request on one queue; equal content means the same resources."""

    queue: str
    requested: Requested = field(converter=freeze_requested)

    def as_dict(self) -> dict[str, ResourceValue]:
        return dict(self.requested)

    def with_values(self, values: Mapping[str, ResourceValue]) -> Resources:
        merged = self.as_dict()
        merged.update(values)
        return Resources(self.queue, freeze_requested(merged))


Bounds = Mapping[str, tuple[float, float]]


def is_valid(requested: Requested, bounds: Bounds) -> bool:
    """True when every bounded numeric resource lies within its queue's bounds."""
    for name, value in requested:
        limits = bounds.get(name)
        if limits is None or isinstance(value, str):
            continue
        low, high = limits
        if not low <= value <= high:
            return False
    return True


def coerce(requested: Requested, bounds: Bounds) -> Requested:
    """Clamp every bounded numeric resource into its queue's bounds (Jobmon ``coerce_resources``)."""
    out: list[tuple[str, ResourceValue]] = []
    changed = False
    for name, value in requested:
        limits = bounds.get(name)
        if limits is not None and not isinstance(value, str):
            low, high = limits
            clamped = min(max(value, low), high)
            if clamped != value:
                changed = True
                if isinstance(value, int):  # keep ints, rounding inward so they stay in bounds
                    clamped = math.ceil(clamped) if value < low else math.floor(clamped)
                value = clamped
        out.append((name, value))
    return tuple(out) if changed else requested


def scale_value(value: float | int, scale: float | int) -> int:
    """Jobmon's numeric scaling: ``int(ceil(v * (1 + s)))`` (``8, 0.5 -> 12 -> 18``)."""
    return int(math.ceil(value * (1 + scale)))


def scaled(
    requested: Requested,
    scales: Sequence[tuple[str, Scale]],
    adjustment_index: int,
    evaluated: Mapping[str, ResourceValue] | None = None,
) -> Requested:
    """Apply resource scales to the resources that exist in ``requested``.

    Numbers scale by ``ceil(v*(1+s))``; lists give absolute values by adjustment number
    (``list[min(k, len-1)]``, Jobmon's iterator consumed once per adjustment, made pure);
    callable scales (names) take their value from ``evaluated``, computed by the shell.
    """
    current = dict(requested)
    for name, scale in scales:
        if name not in current:
            continue
        value = current[name]
        if isinstance(scale, str):
            if evaluated is not None and name in evaluated:
                current[name] = evaluated[name]
            continue
        if isinstance(value, str):
            continue
        if isinstance(scale, tuple):
            if scale:
                current[name] = scale[min(adjustment_index, len(scale) - 1)]
            continue
        current[name] = scale_value(value, scale)
    return freeze_requested(current)


def callable_scales(scales: Sequence[tuple[str, Scale]], requested: Requested) -> tuple[tuple[str, str], ...]:
    """The ``(resource, callable name)`` pairs whose resource is present in ``requested``."""
    present = {name for name, _ in requested}
    return tuple((n, s) for n, s in scales if isinstance(s, str) and n in present)


def choose_queue(
    requested: Requested,
    current_queue: str,
    fallback_queues: Sequence[str],
    bounds_of: Mapping[str, Bounds],
    clamp_of: Mapping[str, Bounds] | None = None,
) -> Resources:
    """Jobmon's fallback rule (spec §5.2 step 2).

    Try the current queue, then each fallback queue: the first on which ``requested`` is
    valid (``bounds_of``: what the cluster's plugin validates) wins, unchanged. If none is,
    use the last queue tried and coerce onto it (``clamp_of``: what the plugin clamps;
    default ``bounds_of``).
    """
    candidates = [current_queue, *fallback_queues]
    for queue in candidates:
        if is_valid(requested, bounds_of.get(queue, {})):
            return Resources(queue, requested)
    last = candidates[-1]
    clamps = bounds_of if clamp_of is None else clamp_of
    return Resources(last, coerce(requested, clamps.get(last, {})))


def adjust(
    current: Resources,
    scales: Sequence[tuple[str, Scale]],
    fallback_queues: Sequence[str],
    bounds_of: Mapping[str, Bounds],
    adjustment_index: int,
    evaluated: Mapping[str, ResourceValue] | None = None,
    clamp_of: Mapping[str, Bounds] | None = None,
) -> Resources:
    """Resources for a task entering ADJUSTING_RESOURCES (spec §5.2)."""
    new_requested = scaled(current.requested, scales, adjustment_index, evaluated)
    result = choose_queue(new_requested, current.queue, fallback_queues, bounds_of, clamp_of)
    return current if result == current else result


def validated(current: Resources, clamp_of: Mapping[str, Bounds]) -> Resources:
    """Resources for a task becoming ready: coerced onto its queue (spec §5.1 step 2) by
    the bounds its cluster's plugin clamps (``Topology.clamp_of``)."""
    coerced = coerce(current.requested, clamp_of.get(current.queue, {}))
    return current if coerced is current.requested else Resources(current.queue, coerced)
