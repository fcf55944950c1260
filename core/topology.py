"""The static topology of a run: built once, validated, shared by every state.

Specs (``TopologySpec`` and friends) are plain data that round-trip through JSON.
``build_topology`` turns a spec into a ``Topology`` of dense, index-addressed tuples, so the
dynamic state can hold per-task values in persistent vectors. A ``Topology`` is never
mutated after it is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from attrs import field, frozen

from swarmfold.core.config import UNLIMITED
from swarmfold.core.errors import InvalidTopology
from swarmfold.core.resources import (
    Bounds,
    Requested,
    Resources,
    Scale,
    freeze_requested,
    validated,
)
from swarmfold.core.statuses import TASK_STATUSES

#: Jobmon's default when no scales are given anywhere (spec §3.1).
DEFAULT_RESOURCE_SCALES: tuple[tuple[str, Scale], ...] = (("memory", 0.5), ("runtime", 0.5))


def _bounds(value: Any) -> tuple[tuple[str, float, float], ...]:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), v[0], v[1]) for k, v in value.items()))
    return tuple(tuple(v) for v in value)


def _scales(value: Any) -> tuple[tuple[str, Scale], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), tuple(s) if isinstance(s, list) else s) for k, s in pairs)


def _optional_scales(value: Any) -> tuple[tuple[str, Scale], ...] | None:
    return None if value is None else _scales(value)


def _optional_str_tuple(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _int_tuple(value: Any) -> tuple[int, ...]:
    return tuple(value)



def _requested(value: Any) -> Requested:
    return freeze_requested(value)

@frozen
class QueueSpec:
    """A cluster queue: ``bounds`` are ``(resource, min, max)`` triples."""

    name: str
    queue_id: int = 0
    cluster_id: int = 0
    bounds: tuple[tuple[str, float, float], ...] = field(default=(), converter=_bounds)

    def bounds_map(self) -> dict[str, tuple[float, float]]:
        return {name: (low, high) for name, low, high in self.bounds}


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


@frozen
class TopologySpec:
    """Everything static about a workflow run."""

    tasks: tuple[TaskSpec, ...] = field(converter=tuple)
    arrays: tuple[ArraySpec, ...] = field(converter=tuple)
    resource_sets: tuple[ResourceSetSpec, ...] = field(converter=tuple)
    queues: tuple[QueueSpec, ...] = field(default=(), converter=tuple)
    workflow_limit: int = UNLIMITED
    default_resource_scales: tuple[tuple[str, Scale], ...] = field(
        default=DEFAULT_RESOURCE_SCALES, converter=_scales
    )


@frozen(eq=False)
class Topology:
    """Dense, index-addressed static data. Index ``i`` is the ``i``-th task of the spec.

    Compared by identity: every state of one run shares the same object.
    """

    task_ids: tuple[int, ...]
    index_of: Mapping[int, int]
    array_of: tuple[int, ...]
    resources_of: tuple[Resources, ...]
    num_upstreams: tuple[int, ...]
    downstream: tuple[tuple[int, ...], ...]
    initial_status: tuple[str, ...]
    max_attempts: tuple[int, ...]
    scales_of: tuple[tuple[tuple[str, Scale], ...], ...]
    fallbacks_of: tuple[tuple[str, ...], ...]
    compute_resources_of: Mapping[int, str]
    array_ids: tuple[int, ...]
    array_names: Mapping[int, str]
    array_limits: Mapping[int, int]
    bounds_of: Mapping[str, Bounds]
    queue_ids: Mapping[str, int]
    cluster_ids: Mapping[str, int]
    workflow_limit: int

    @property
    def size(self) -> int:
        return len(self.task_ids)

    def upstreams_of(self, index: int) -> tuple[int, ...]:
        """Upstream indexes of one task (a scan: for explanations, not hot paths)."""
        return tuple(i for i, downs in enumerate(self.downstream) if index in downs)


def build_topology(spec: TopologySpec) -> Topology:
    """Validate ``spec`` and build the dense topology. Raises ``InvalidTopology``."""
    queues = {q.name: q for q in spec.queues}
    if len(queues) != len(spec.queues):
        raise InvalidTopology(f"duplicate queue name in queues: {_duplicates(q.name for q in spec.queues)}")
    arrays = {a.array_id: a for a in spec.arrays}
    if len(arrays) != len(spec.arrays):
        raise InvalidTopology(f"duplicate array_id in arrays: {_duplicates(a.array_id for a in spec.arrays)}")
    bounds_of: dict[str, Bounds] = {name: q.bounds_map() for name, q in queues.items()}
    resource_sets: dict[int, Resources] = {}
    for rs in spec.resource_sets:
        if rs.resource_set_id in resource_sets:
            raise InvalidTopology(f"duplicate resource_set_id {rs.resource_set_id}")
        if queues and rs.queue not in queues:
            raise InvalidTopology(f"resource set {rs.resource_set_id}: unknown queue {rs.queue!r}")
        # Coerce once per resource set: every task of the set shares one object (spec §5.1).
        resource_sets[rs.resource_set_id] = validated(Resources(rs.queue, rs.requested), bounds_of)

    tasks = spec.tasks
    n = len(tasks)
    task_ids = tuple(t.task_id for t in tasks)
    index_of = _index_of(task_ids)

    array_of = [0] * n
    resources_of: list[Resources] = [None] * n  # type: ignore[list-item]
    num_upstreams = [0] * n
    downstream_lists: list[list[int] | None] = [None] * n
    initial_status = [""] * n
    max_attempts = [0] * n
    scales_of: list[tuple[tuple[str, Scale], ...]] = [spec.default_resource_scales] * n
    fallbacks_of: list[tuple[str, ...]] = [()] * n
    compute_resources_of: dict[int, str] = {}
    get_index = index_of.get
    for i, t in enumerate(tasks):
        if t.array_id not in arrays:
            raise InvalidTopology(f"tasks[{i}] (task {t.task_id}): unknown array_id {t.array_id}")
        res = resource_sets.get(t.resource_set_id)
        if res is None:
            raise InvalidTopology(
                f"tasks[{i}] (task {t.task_id}): unknown resource_set_id {t.resource_set_id}"
            )
        if t.status not in TASK_STATUSES:
            raise InvalidTopology(f"tasks[{i}] (task {t.task_id}): unknown status {t.status!r}")
        array_of[i] = t.array_id
        resources_of[i] = res
        initial_status[i] = t.status
        max_attempts[i] = t.max_attempts
        if t.resource_scales is not None:
            scales_of[i] = t.resource_scales
        if t.fallback_queues is not None:
            if queues:
                for q in t.fallback_queues:
                    if q not in queues:
                        raise InvalidTopology(
                            f"tasks[{i}] (task {t.task_id}): unknown fallback queue {q!r}"
                        )
            fallbacks_of[i] = t.fallback_queues
        if t.compute_resources is not None:
            compute_resources_of[i] = t.compute_resources
        ups = t.upstream_ids
        if ups:
            if len(ups) > 1 and len(set(ups)) != len(ups):
                ups = tuple(dict.fromkeys(ups))
            for up in ups:
                j = get_index(up)
                if j is None:
                    raise InvalidTopology(f"tasks[{i}] (task {t.task_id}): unknown upstream task id {up}")
                lst = downstream_lists[j]
                if lst is None:
                    downstream_lists[j] = [i]
                else:
                    lst.append(i)
            num_upstreams[i] = len(ups)

    empty: tuple[int, ...] = ()
    downstream = tuple(empty if d is None else tuple(d) for d in downstream_lists)
    _reject_cycles(num_upstreams, downstream, tasks)
    return Topology(
        task_ids=task_ids,
        index_of=index_of,
        array_of=tuple(array_of),
        resources_of=tuple(resources_of),
        num_upstreams=tuple(num_upstreams),
        downstream=downstream,
        initial_status=tuple(initial_status),
        max_attempts=tuple(max_attempts),
        scales_of=tuple(scales_of),
        fallbacks_of=tuple(fallbacks_of),
        compute_resources_of=compute_resources_of,
        array_ids=tuple(sorted(arrays)),
        array_names={a.array_id: (a.name or f"array_{a.array_id}") for a in spec.arrays},
        array_limits={a.array_id: a.limit for a in spec.arrays},
        bounds_of=bounds_of,
        queue_ids={q.name: q.queue_id for q in spec.queues},
        cluster_ids={q.name: q.cluster_id for q in spec.queues},
        workflow_limit=spec.workflow_limit,
    )


class DenseIndex(Mapping[int, int]):
    """``task_id -> index`` for ids that are consecutive in spec order: no dict needed."""

    __slots__ = ("first", "n")

    def __init__(self, first: int, n: int) -> None:
        self.first = first
        self.n = n

    def get(self, key: Any, default: Any = None) -> Any:
        i = key - self.first if type(key) is int else -1
        return i if 0 <= i < self.n else default

    def __getitem__(self, key: int) -> int:
        i = self.get(key)
        if i is None:
            raise KeyError(key)
        return int(i)

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.first + self.n))

    def __len__(self) -> int:
        return self.n


def _index_of(task_ids: tuple[int, ...]) -> Mapping[int, int]:
    """A dense index when ids are consecutive, else a dict; rejects duplicate ids."""
    n = len(task_ids)
    if n and task_ids[-1] - task_ids[0] == n - 1 and all(
        b - a == 1 for a, b in zip(task_ids, task_ids[1:], strict=False)
    ):
        return DenseIndex(task_ids[0], n)
    index_of: dict[int, int] = {}
    for i, task_id in enumerate(task_ids):
        if index_of.setdefault(task_id, i) != i:
            first = index_of[task_id]
            raise InvalidTopology(f"duplicate task_id {task_id} (tasks[{first}] and tasks[{i}])")
    return index_of


def _duplicates(values: Iterable[object]) -> list[object]:
    seen: set[object] = set()
    dups: list[object] = []
    for v in values:
        if v in seen and v not in dups:
            dups.append(v)
        seen.add(v)
    return dups


def _reject_cycles(
    num_upstreams: Sequence[int], downstream: Sequence[tuple[int, ...]], tasks: Sequence[TaskSpec]
) -> None:
    """Kahn's algorithm; on a cycle, raise naming the task ids on one cycle."""
    remaining = list(num_upstreams)
    stack = [i for i, k in enumerate(remaining) if k == 0]
    visited = 0
    while stack:
        i = stack.pop()
        visited += 1
        for d in downstream[i]:
            remaining[d] -= 1
            if remaining[d] == 0:
                stack.append(d)
    if visited == len(remaining):
        return
    cycle = _find_cycle([i for i, k in enumerate(remaining) if k > 0], downstream)
    ids = [tasks[i].task_id for i in cycle]
    raise InvalidTopology(
        "dependency cycle among tasks: " + " -> ".join(str(t) for t in [*ids, ids[0]])
    )


def _find_cycle(stuck: list[int], downstream: Sequence[tuple[int, ...]]) -> list[int]:
    """Walk upstream among tasks left with unmet upstreams until a node repeats.

    Every such task has at least one such upstream, so the walk must close a cycle.
    The cycle is returned in dependency order (upstream first).
    """
    in_stuck = set(stuck)
    upstreams: dict[int, list[int]] = {}
    for u in stuck:
        for d in downstream[u]:
            if d in in_stuck:
                upstreams.setdefault(d, []).append(u)
    position: dict[int, int] = {}
    path: list[int] = []
    node = stuck[0]
    while node not in position:
        position[node] = len(path)
        path.append(node)
        node = upstreams[node][0]
    cycle = path[position[node]:]
    cycle.reverse()
    return cycle
