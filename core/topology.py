"""The static topology of a run: built once, validated, shared by every state.

Specs (``TopologySpec`` and friends) are plain data that round-trip through JSON.
``build_topology`` turns a spec into a ``Topology`` of dense, index-addressed tuples, so the
dynamic state can hold per-task values in persistent vectors. A ``Topology`` is read-only
once built: its int columns are read-only memoryviews, its maps ``FrozenDict``s, its helper
sequences refuse attribute writes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import add
from typing import Any

import numpy as np
from attrs import frozen

from swarmfold.core.count_column import int_view, ints_view, narrowest_ints
from swarmfold.core.errors import InvalidTopology
from swarmfold.core.frozen import FrozenDict, frozen_ints
from swarmfold.core.index_list import IndexList, index_array
from swarmfold.core.rerooted_column import gathered, through_numpy
from swarmfold.core.resources import (
    Bounds,
    Resources,
    Scale,
    validated,
)
from swarmfold.core.specs import (
    CLAMP,
    COERCIONS,
    DEFAULT_RESOURCE_SCALES,
    NO_COERCION,
    VALIDATE_CORES,
    ArraySpec,
    QueueSpec,
    ResourceSetSpec,
    TaskSpec,
    TaskTable,
    TopologySpec,
    int_array,
)
from swarmfold.core.statuses import TASK_STATUSES

#: The specs live in ``core/specs.py``; they are re-exported here, their historical home.
__all__ = [
    "CLAMP",
    "COERCIONS",
    "DEFAULT_RESOURCE_SCALES",
    "NO_COERCION",
    "VALIDATE_CORES",
    "ArraySpec",
    "DenseIndex",
    "QueueSpec",
    "ResourceSetSpec",
    "Rows",
    "SparseColumn",
    "TaskSpec",
    "TaskTable",
    "Topology",
    "TopologySpec",
    "build_topology",
]

class _ReadOnly:
    """Slots set once in ``__init__`` (through ``_init``); any later write raises."""

    __slots__ = ()

    def _init(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        slots: tuple[str, ...] = type(self).__slots__
        return (type(self), tuple(getattr(self, name) for name in slots))

    def __copy__(self) -> Any:
        return self  # immutable: its own copy

    def __deepcopy__(self, memo: Any) -> Any:
        return self


class SparseColumn(_ReadOnly, Sequence[Any]):
    """A per-task column where almost every task has the same value."""

    __slots__ = ("default", "values", "n")
    default: Any
    values: Mapping[int, Any]
    n: int

    def __init__(self, default: Any, values: Mapping[int, Any], n: int) -> None:
        self._init(default=default, values=FrozenDict(values), n=n)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.n))]
        if not 0 <= index < self.n:
            if not -self.n <= index < 0:
                raise IndexError(f"task index {index} out of range for {self.n} tasks")
            index += self.n
        return self.values.get(index, self.default)

    def __iter__(self) -> Iterator[Any]:
        get, default = self.values.get, self.default
        return (get(i, default) for i in range(self.n))

    def __len__(self) -> int:
        return self.n

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SparseColumn):
            return (self.default, dict(self.values), self.n) == (other.default, dict(other.values), other.n)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Rows(_ReadOnly, Sequence[tuple[int, ...]]):
    """Rows of a compressed sparse row table: ``rows[i]`` is a tuple of ints."""

    __slots__ = ("offsets", "flat")
    offsets: Sequence[int]
    flat: Sequence[int]

    def __init__(self, offsets: Sequence[int], flat: Sequence[int]) -> None:
        self._init(offsets=offsets, flat=flat)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return tuple(self.flat[self.offsets[index]:self.offsets[index + 1]])

    def __len__(self) -> int:
        return len(self.offsets) - 1


@frozen(eq=False)
class Topology:
    """Dense, index-addressed static data. Index ``i`` is the ``i``-th task of the spec.

    Compared by identity: every state of one run shares the same object. Edges are stored
    as compressed sparse rows: the downstream indexes of task ``i`` are
    ``down_flat[down_offsets[i]:down_offsets[i + 1]]`` (``downstream[i]`` as a tuple).
    Read-only: int columns are read-only memoryviews (or tuples), maps are ``FrozenDict``s.
    """

    task_ids: Sequence[int]
    index_of: Mapping[int, int]
    array_of: Sequence[int]
    resources_of: ResourcesColumn
    num_upstreams: Sequence[int]
    down_offsets: Sequence[int]
    down_flat: Sequence[int]
    initial_status: str
    max_attempts: Sequence[int]
    scales_of: Sequence[tuple[tuple[str, Scale], ...]]
    fallbacks_of: Sequence[tuple[str, ...]]
    compute_resources_of: Mapping[int, str]
    array_ids: tuple[int, ...]
    array_names: Mapping[int, str]
    array_limits: Mapping[int, int]
    bounds_of: Mapping[str, Bounds]
    clamp_of: Mapping[str, Bounds]
    queue_ids: Mapping[str, int]
    cluster_ids: Mapping[str, int]
    workflow_limit: int

    def __copy__(self) -> Topology:
        return self  # read-only and compared by identity: its own copy

    def __deepcopy__(self, memo: Any) -> Topology:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its read-only views as arrays; rebuilt read-only."""
        values = [
            array(v.format, v) if isinstance(v, memoryview) else v
            for v in (getattr(self, f) for f in _TOPOLOGY_FIELDS)
        ]
        return (_rebuild_topology, tuple(values))

    @property
    def size(self) -> int:
        return len(self.task_ids)

    @property
    def downstream(self) -> Rows:
        return Rows(self.down_offsets, self.down_flat)

    def ids_at(self, indexes: Sequence[int]) -> tuple[int, ...]:
        """The task ids of ``indexes``, in order. Consecutive ids are computed, not read: at
        a million tasks a read of the id column at a random index misses the cache."""
        index_of = self.index_of
        if isinstance(index_of, DenseIndex):
            first = index_of.first
            if type(indexes) is IndexList:  # its array is at hand: one add in numpy
                return tuple((index_array(indexes) + first).tolist())
            return tuple(map(add, indexes, repeat(first))) if first else tuple(indexes)
        return tuple(map(self.task_ids.__getitem__, indexes))

    def upstreams_of(self, index: int) -> tuple[int, ...]:
        """Upstream indexes of one task (a scan: for explanations, not hot paths)."""
        off, flat = self.down_offsets, self.down_flat
        return tuple(
            i for i in range(len(off) - 1) if index in flat[off[i]:off[i + 1]]
        )


def ints_at(column: Sequence[int], indexes: Sequence[int]) -> Sequence[int]:
    """``column[i]`` for each of ``indexes``, in order, for an int column of the topology:
    through numpy for many entries of a big column (core/rerooted_column.py says why), else
    ``itemgetter``."""
    if through_numpy(len(column), len(indexes)):
        return ints_view(column)[index_array(indexes)].tolist()  # type: ignore[no-any-return]
    return gathered(column, indexes)


class ResourcesColumn(Sequence[Resources]):
    """Each task's shared ``Resources``: a small table of the distinct ones and one code a
    task, as narrow as the table allows (where a tuple of a million pointers spreads its
    reads over the memory)."""

    __slots__ = ("table", "codes")

    def __init__(self, table: tuple[Resources, ...], codes: Iterable[int]) -> None:
        self.table = table
        self.codes = frozen_ints(codes)

    @classmethod
    def coded(cls, set_ids: Sequence[int], resources_of_set: Mapping[int, Resources]) -> ResourcesColumn:
        """The column of tasks whose resource sets are ``set_ids``."""
        distinct, codes = np.unique(int_view(set_ids), return_inverse=True)
        table = tuple(resources_of_set[int(s)] for s in distinct.tolist())
        return cls(table, narrowest_ints(codes))

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> Resources:  # type: ignore[override]
        return self.table[self.codes[i]]

    def __iter__(self) -> Iterator[Resources]:
        return map(self.table.__getitem__, self.codes)

    def at(self, indexes: Sequence[int]) -> list[Resources]:
        """``self[i]`` for each of ``indexes``, in order."""
        return list(map(self.table.__getitem__, ints_at(self.codes, indexes)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(other) == len(self) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResourcesColumn, (self.table, array(self.codes.format, self.codes)))


def build_topology(spec: TopologySpec) -> Topology:
    """Validate ``spec`` and build the dense topology. Raises ``InvalidTopology``.

    Errors name the task (its position and id) and the offending value.
    """
    queues = {q.name: q for q in spec.queues}
    if len(queues) != len(spec.queues):
        raise InvalidTopology(f"duplicate queue name in queues: {_duplicates(q.name for q in spec.queues)}")
    arrays = {a.array_id: a for a in spec.arrays}
    if len(arrays) != len(spec.arrays):
        raise InvalidTopology(f"duplicate array_id in arrays: {_duplicates(a.array_id for a in spec.arrays)}")
    bounds_of: dict[str, Bounds] = {name: q.validated_bounds() for name, q in queues.items()}
    clamp_of: dict[str, Bounds] = {name: q.clamped_bounds() for name, q in queues.items()}
    resource_sets: dict[int, Resources] = {}
    for rs in spec.resource_sets:
        if rs.resource_set_id in resource_sets:
            raise InvalidTopology(f"duplicate resource_set_id {rs.resource_set_id}")
        if queues and rs.queue not in queues:
            raise InvalidTopology(f"resource set {rs.resource_set_id}: unknown queue {rs.queue!r}")
        # Coerce once per resource set: every task of the set shares one object (spec §5.1).
        resource_sets[rs.resource_set_id] = validated(Resources(rs.queue, rs.requested), clamp_of)

    cols = _columns(spec)
    task_ids = cols.task_ids
    n = len(task_ids)
    index_of = _index_of(task_ids)

    def where(i: int) -> str:
        return f"tasks[{i}] (task {task_ids[i]})"

    for bad in set(cols.array_ids).difference(arrays):
        raise InvalidTopology(f"{where(cols.array_ids.index(bad))}: unknown array_id {bad}")
    for bad in set(cols.resource_set_ids).difference(resource_sets):
        i = cols.resource_set_ids.index(bad)
        raise InvalidTopology(f"{where(i)}: unknown resource_set_id {bad}")
    for bad_status in set(cols.statuses).difference(TASK_STATUSES):
        i = cols.statuses.index(bad_status)
        raise InvalidTopology(f"{where(i)}: unknown status {bad_status!r}")
    for i, queue_names in cols.fallbacks.items():
        for q in queue_names:
            if queues and q not in queues:
                raise InvalidTopology(f"{where(i)}: unknown fallback queue {q!r}")

    up_offsets, up_flat = cols.upstream_offsets, cols.upstream_ids
    up_index = _upstream_indexes(up_flat, up_offsets, index_of, where)
    num_upstreams = narrowest_ints(np.diff(int_view(up_offsets)))
    down_offsets, down_flat, forward_only = _reverse_edges(n, up_offsets, up_index)
    if not forward_only:
        _reject_cycles(num_upstreams, down_offsets, down_flat, task_ids)
    rs_of = {rs_id: res for rs_id, res in resource_sets.items()}
    return Topology(
        task_ids=_read_only(task_ids),
        index_of=index_of if isinstance(index_of, DenseIndex) else FrozenDict(index_of),
        array_of=frozen_ints(cols.array_ids),
        resources_of=ResourcesColumn.coded(cols.resource_set_ids, rs_of),
        num_upstreams=num_upstreams,
        down_offsets=frozen_ints(down_offsets),
        down_flat=frozen_ints(down_flat),
        initial_status=cols.statuses,
        max_attempts=_read_only(cols.max_attempts),
        scales_of=SparseColumn(spec.default_resource_scales, cols.scales, n),
        fallbacks_of=SparseColumn((), cols.fallbacks, n),
        compute_resources_of=FrozenDict(cols.compute_resources),
        array_ids=tuple(sorted(arrays)),
        array_names=FrozenDict({a.array_id: (a.name or f"array_{a.array_id}") for a in spec.arrays}),
        array_limits=FrozenDict({a.array_id: a.limit for a in spec.arrays}),
        bounds_of=FrozenDict({name: FrozenDict(b) for name, b in bounds_of.items()}),
        clamp_of=FrozenDict({name: FrozenDict(b) for name, b in clamp_of.items()}),
        queue_ids=FrozenDict({q.name: q.queue_id for q in spec.queues}),
        cluster_ids=FrozenDict({q.name: q.cluster_id for q in spec.queues}),
        workflow_limit=spec.workflow_limit,
    )


_TOPOLOGY_FIELDS = tuple(a.name for a in Topology.__attrs_attrs__)


def _rebuild_topology(*values: Any) -> Topology:
    fields: list[Any] = [frozen_ints(v) if isinstance(v, array) else v for v in values]
    return Topology(*fields)


def _read_only(column: Sequence[int]) -> Sequence[int]:
    """A tuple stays; an int array becomes a read-only view of itself (no copy)."""
    return column if type(column) is tuple else frozen_ints(column)


@frozen
class _Columns:
    task_ids: Sequence[int]
    array_ids: Sequence[int]
    resource_set_ids: Sequence[int]
    upstream_offsets: Sequence[int]
    upstream_ids: Sequence[int]
    statuses: str
    max_attempts: Sequence[int]
    scales: dict[int, tuple[tuple[str, Scale], ...]]
    fallbacks: dict[int, tuple[str, ...]]
    compute_resources: dict[int, str]


def _columns(spec: TopologySpec) -> _Columns:
    """Every task as columns: the task table first, then the ``TaskSpec`` rows."""
    table, rows = spec.task_table, spec.tasks
    if table is not None and not rows:
        k = len(table)
        _check_table(table)
        return _Columns(
            table.task_ids, table.array_ids, table.resource_set_ids,
            table.upstream_offsets, table.upstream_ids,
            table.statuses or "G" * k,
            table.max_attempts if len(table.max_attempts) else array("q", [3]) * k,
            {}, {}, {},
        )
    k = 0 if table is None else len(table)
    task_ids = array("q", table.task_ids if table else ())
    array_ids = array("q", table.array_ids if table else ())
    rs_ids = array("q", table.resource_set_ids if table else ())
    up_offsets = array("q", table.upstream_offsets if table else (0,))
    up_ids = array("q", table.upstream_ids if table else ())
    statuses = (table.statuses or "G" * k) if table else ""
    max_attempts = array("q", (table.max_attempts if len(table.max_attempts) else [3] * k) if table else ())
    if table is not None:
        _check_table(table)
    scales: dict[int, tuple[tuple[str, Scale], ...]] = {}
    fallbacks: dict[int, tuple[str, ...]] = {}
    compute: dict[int, str] = {}
    task_ids.extend(t.task_id for t in rows)
    array_ids.extend(t.array_id for t in rows)
    rs_ids.extend(t.resource_set_id for t in rows)
    statuses += "".join(t.status if len(t.status) == 1 else "?" for t in rows)
    max_attempts.extend(t.max_attempts for t in rows)
    end = up_offsets[-1]
    for i, t in enumerate(rows, start=k):
        ups = t.upstream_ids
        if ups:
            up_ids.extend(ups)
            end += len(ups)
        up_offsets.append(end)
        if t.resource_scales is not None:
            scales[i] = t.resource_scales
        if t.fallback_queues is not None:
            fallbacks[i] = t.fallback_queues
        if t.compute_resources is not None:
            compute[i] = t.compute_resources
        if len(t.status) != 1:
            raise InvalidTopology(f"tasks[{i}] (task {t.task_id}): unknown status {t.status!r}")
    return _Columns(tuple(task_ids), array_ids, rs_ids, up_offsets, up_ids, statuses,
                    tuple(max_attempts), scales, fallbacks, compute)


def _check_table(table: TaskTable) -> None:
    k = len(table)
    for name in ("array_ids", "resource_set_ids"):
        if len(getattr(table, name)) != k:
            raise InvalidTopology(f"task_table.{name}: {len(getattr(table, name))} entries for {k} tasks")
    if len(table.upstream_offsets) != k + 1:
        raise InvalidTopology(
            f"task_table.upstream_offsets: {len(table.upstream_offsets)} entries, expected {k + 1}"
        )
    if table.statuses and len(table.statuses) != k:
        raise InvalidTopology(f"task_table.statuses: {len(table.statuses)} letters for {k} tasks")
    if len(table.max_attempts) not in (0, k):
        raise InvalidTopology(f"task_table.max_attempts: {len(table.max_attempts)} entries for {k} tasks")
    off = int_view(table.upstream_offsets)
    if k and (off[0] != 0 or off[k] != len(table.upstream_ids) or bool((off[1:] < off[:-1]).any())):
        raise InvalidTopology("task_table.upstream_offsets: must start at 0, never decrease and "
                              "end at len(upstream_ids)")


def _upstream_indexes(
    up_flat: Sequence[int], up_offsets: Sequence[int], index_of: Mapping[int, int],
    where: Any,
) -> array[int]:
    """Upstream ids as task indexes; an unknown id is reported with the task that names it."""
    if isinstance(index_of, DenseIndex):
        first, n = index_of.first, index_of.n
        ups = int_view(up_flat)
        if not len(ups) or (ups.min() >= first and ups.max() < first + n):
            return int_array(ups - first)
    get = index_of.get
    out = array("q", [get(u, -1) for u in up_flat])
    if -1 in out:
        k = out.index(-1)
        i = bisect_right(up_offsets, k) - 1
        raise InvalidTopology(f"{where(i)}: unknown upstream task id {up_flat[k]}")
    return out


def _reverse_edges(
    n: int, up_offsets: Sequence[int], up_index: array[int]
) -> tuple[array[int], array[int], bool]:
    """Downstream rows from upstream rows (each row in ascending task order); also whether
    every edge points forward. One sort of the edges by ``(upstream, downstream)``, in numpy:
    the pair as one int64 key ``upstream * n + downstream`` (unique, so any sort is stable),
    sorted in place, which is three to seven times faster than a stable argsort of the
    upstreams (1.8M edges: 20-56 against 150-177 ms)."""
    up = int_view(up_index)
    owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(int_view(up_offsets)))
    keys = up * n + owner
    keys.sort()
    flat = keys % n if n else keys
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(up, minlength=n), out=offsets[1:])
    forward = bool((up < owner).all())
    return int_array(offsets), int_array(flat), forward


class DenseIndex(_ReadOnly, Mapping[int, int]):
    """``task_id -> index`` for ids that are consecutive in spec order: no dict needed."""

    __slots__ = ("first", "n")
    first: int
    n: int

    def __init__(self, first: int, n: int) -> None:
        self._init(first=first, n=n)

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

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DenseIndex):
            return (self.first, self.n) == (other.first, other.n)
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]


def _index_of(task_ids: Sequence[int]) -> Mapping[int, int]:
    """A dense index when ids are consecutive, else a dict; rejects duplicate ids."""
    n = len(task_ids)
    if n and task_ids[-1] - task_ids[0] == n - 1 and bool((np.diff(int_view(task_ids)) == 1).all()):
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
    num_upstreams: Sequence[int], offsets: Sequence[int], flat: Sequence[int], task_ids: Sequence[int]
) -> None:
    """Kahn's algorithm; on a cycle, raise naming the task ids on one cycle."""
    remaining = list(num_upstreams)
    stack = [i for i, k in enumerate(remaining) if k == 0]
    visited = 0
    while stack:
        i = stack.pop()
        visited += 1
        for k in range(offsets[i], offsets[i + 1]):
            d = flat[k]
            remaining[d] -= 1
            if remaining[d] == 0:
                stack.append(d)
    if visited == len(remaining):
        return
    cycle = _find_cycle([i for i, k in enumerate(remaining) if k > 0], offsets, flat)
    ids = [task_ids[i] for i in cycle]
    raise InvalidTopology(
        "dependency cycle among tasks: " + " -> ".join(str(t) for t in [*ids, ids[0]])
    )


def _find_cycle(stuck: list[int], offsets: Sequence[int], flat: Sequence[int]) -> list[int]:
    """Walk upstream among tasks left with unmet upstreams until a node repeats.

    Every such task has at least one such upstream, so the walk must close a cycle.
    The cycle is returned in dependency order (upstream first).
    """
    in_stuck = set(stuck)
    upstreams: dict[int, list[int]] = {}
    for u in stuck:
        for k in range(offsets[u], offsets[u + 1]):
            d = flat[k]
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
