"""A run's static description as plain data: queues, arrays, resource sets, tasks (one by one
or as a columnar ``TaskTable``) and the ``TopologySpec`` that holds them. Specs round-trip
through JSON; ``build_topology`` (``core/topology.py``) validates one and builds the dense,
read-only ``Topology``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from attrs import field, frozen

from swarmfold.core.config import UNLIMITED
from swarmfold.core.resources import Requested, Scale, freeze_requested

#: Jobmon's default when no scales are given anywhere (spec §3.1).
DEFAULT_RESOURCE_SCALES: tuple[tuple[str, Scale], ...] = (("memory", 0.5), ("runtime", 0.5))


def _bounds(value: Any) -> tuple[tuple[str, float, float], ...]:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), v[0], v[1]) for k, v in value.items()))
    return tuple(tuple(v) for v in value)


def _scales(value: Any) -> tuple[tuple[str, Scale], ...]:
    if type(value) is tuple and all(
        type(p) is tuple and len(p) == 2 and type(p[0]) is str and type(p[1]) is not list for p in value
    ):
        return value  # already canonical (the common case when attaching: rows share them)
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), tuple(s) if isinstance(s, list) else s) for k, s in pairs)


def _optional_scales(value: Any) -> tuple[tuple[str, Scale], ...] | None:
    return None if value is None else _scales(value)


def _optional_str_tuple(value: Any) -> tuple[str, ...] | None:
    if value is None or type(value) is tuple:
        return value
    return tuple(value)


def _int_tuple(value: Any) -> tuple[int, ...]:
    return value if type(value) is tuple else tuple(value)



def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _requested(value: Any) -> Requested:
    return freeze_requested(value)

#: How a cluster's plugin treats a queue's bounds (its ``validate_resources`` and
#: ``coerce_resources``): ``clamp`` validates every bounded resource and clamps it into its
#: bounds (Slurm, UGE); ``validate_cores`` validates ``cores`` only and changes nothing
#: (multiprocess); ``none`` validates nothing and changes nothing (sequential, dummy).
CLAMP, VALIDATE_CORES, NO_COERCION = "clamp", "validate_cores", "none"
COERCIONS = (CLAMP, VALIDATE_CORES, NO_COERCION)


@frozen
class QueueSpec:
    """A cluster queue: ``bounds`` are ``(resource, min, max)`` triples; ``coercion`` is how
    its cluster's plugin applies them (``COERCIONS``)."""

    name: str
    queue_id: int = 0
    cluster_id: int = 0
    bounds: tuple[tuple[str, float, float], ...] = field(default=(), converter=_bounds)
    coercion: str = field(default=CLAMP, validator=attrs.validators.in_(COERCIONS))

    def bounds_map(self) -> dict[str, tuple[float, float]]:
        return {name: (low, high) for name, low, high in self.bounds}

    def validated_bounds(self) -> dict[str, tuple[float, float]]:
        """The bounds a request is validated against (fallback queues)."""
        if self.coercion == CLAMP:
            return self.bounds_map()
        if self.coercion == VALIDATE_CORES:
            return {k: v for k, v in self.bounds_map().items() if k == "cores"}
        return {}

    def clamped_bounds(self) -> dict[str, tuple[float, float]]:
        """The bounds a request is clamped into (``coerce_resources``)."""
        return self.bounds_map() if self.coercion == CLAMP else {}


@frozen
class ArraySpec:
    array_id: int
    name: str = ""
    limit: int = UNLIMITED


@frozen
class ResourceSetSpec:
    """Requested resources on a queue, shared by many tasks."""

    resource_set_id: int
    queue: str
    requested: Requested = field(converter=_requested)


@frozen
class TaskSpec:
    """One task. ``None`` fields fall back to the topology's defaults.

    ``compute_resources`` names a callable the shell evaluates once, when the task first
    becomes ready (Jobmon's ``compute_resources_callable``).
    """

    task_id: int
    array_id: int
    resource_set_id: int
    upstream_ids: tuple[int, ...] = field(default=(), converter=_int_tuple)
    max_attempts: int = 3
    status: str = "G"
    resource_scales: tuple[tuple[str, Scale], ...] | None = field(default=None, converter=_optional_scales)
    fallback_queues: tuple[str, ...] | None = field(default=None, converter=_optional_str_tuple)
    compute_resources: str | None = None


def int_array(value: Any) -> array[int]:
    """``value`` as an ``array("q")`` (itself when it is one; a numpy array by its bytes)."""
    if isinstance(value, array) and value.typecode == "q":
        return value
    if isinstance(value, np.ndarray):  # its bytes, not an int object per entry
        out = array("q")
        out.frombytes(value.astype(np.int64, copy=False).tobytes())
        return out
    return array("q", value)


@frozen
class TaskTable:
    """Columnar tasks, for very large workflows: one entry per task in every column.

    ``upstream_ids[upstream_offsets[i]:upstream_offsets[i + 1]]`` are the upstreams of the
    ``i``-th task (``upstream_offsets`` has one more entry than there are tasks).
    ``statuses`` holds one status letter per task, ``""`` meaning all REGISTERING;
    ``max_attempts`` empty means 3 for every task. Tasks needing their own scales, fallback
    queues or callables go in ``TopologySpec.tasks`` instead. About 40 bytes per task,
    against about 250 for a ``TaskSpec``.
    """

    task_ids: Sequence[int] = field(converter=int_array)
    array_ids: Sequence[int] = field(converter=int_array)
    resource_set_ids: Sequence[int] = field(converter=int_array)
    upstream_offsets: Sequence[int] = field(converter=int_array)
    upstream_ids: Sequence[int] = field(converter=int_array)
    statuses: str = ""
    max_attempts: Sequence[int] = field(factory=tuple, converter=int_array)

    def __len__(self) -> int:
        return len(self.task_ids)


@frozen
class TopologySpec:
    """Everything static about a workflow run."""

    tasks: tuple[TaskSpec, ...] = field(converter=_tuple)
    arrays: tuple[ArraySpec, ...] = field(converter=_tuple)
    resource_sets: tuple[ResourceSetSpec, ...] = field(converter=_tuple)
    queues: tuple[QueueSpec, ...] = field(default=(), converter=_tuple)
    workflow_limit: int = UNLIMITED
    default_resource_scales: tuple[tuple[str, Scale], ...] = field(
        default=DEFAULT_RESOURCE_SCALES, converter=_scales
    )
    #: Columnar tasks; they come before ``tasks`` in index order.
    task_table: TaskTable | None = None

    @property
    def task_count(self) -> int:
        return len(self.tasks) + (len(self.task_table) if self.task_table is not None else 0)
