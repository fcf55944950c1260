"""``SwarmState``: the immutable value every event folds into.

The static part (``Topology``) is built once and shared. The dynamic part keeps per-task
values in persistent vectors addressed by dense task index, plus running indexes (counts per
status, active tasks per array, the ready queue) so no event ever rescans all tasks.

``Tx`` is a short-lived working copy used inside one ``decide`` call: it writes through
pyrsistent evolvers (copy-on-write, so the input state is never touched) and ``commit``
freezes the result into a new ``SwarmState``. Both walk ``attrs.fields(SwarmState)``, so a
new field is carried over without being listed again; its ``metadata`` says how it is opened
for writing and frozen again (``_VECTOR``, ``_MAP``, ``_COUNTS``; none: copied as is). A
field with such metadata is opened on its first use in the call, not when the ``Tx`` is made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, Union

import attrs
from attrs import field, frozen
from pyrsistent import PMap, PSet, PVector, pmap, pset, pvector

from swarmfold.core.commands import Command
from swarmfold.core.config import JOBMON_MAX_BATCH_SIZE, SwarmConfig
from swarmfold.core.count_column import EMPTY_COUNT_COLUMN, CountColumn, CountColumnTx, count_column
from swarmfold.core.frozen import FrozenDict
from swarmfold.core.ready_queue import ReadyGroup
from swarmfold.core.rerooted_column import EMPTY_INT_COLUMN, IntColumn, IntColumnTx, int_column
from swarmfold.core.resources import Resources
from swarmfold.core.status_column import EMPTY_STATUS_COLUMN, StatusColumn, StatusColumnTx, status_column
from swarmfold.core.summary import RunSummary
from swarmfold.core.topology import Topology

# --- where a task is, besides its server status ---------------------------------------
#: Not in the ready queue, not in a batch: the task waits for upstreams or for the server.
NOWHERE = 0
#: In a QueueBatch (or a batch parked until its resources are bound) awaiting an answer.
IN_FLIGHT = 1 << 62
#: Waiting for the shell to evaluate a user callable for its resources.
EVALUATING = (1 << 62) + 1
# Any other value is the sequence number of the task's live entry in the ready queue.


def getter(indexes: Sequence[int]) -> Callable[[Any], tuple[Any, ...]]:
    """``column -> (column[i] for each of indexes)``, in order, in C (``itemgetter``), as a
    tuple whatever the number of indexes; build it once to read several columns."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    if indexes:
        i = indexes[0]
        return lambda column: (column[i],)
    return lambda column: ()


def gather(column: Any, indexes: Sequence[int]) -> tuple[Any, ...]:
    """``column[i]`` for each of ``indexes``, in order, gathered in C."""
    return getter(indexes)(column)


def in_ready_queue(place: int) -> bool:
    return place != NOWHERE and place != IN_FLIGHT and place != EVALUATING


def count_in_ready_queue(places: Sequence[int]) -> int:
    """How many of ``places`` are in the ready queue (``in_ready_queue``), counted in C."""
    return len(places) - places.count(NOWHERE) - places.count(IN_FLIGHT) - places.count(EVALUATING)


# --- phases of a run -------------------------------------------------------------------
NEW = "new"  # nothing seen yet
ATTACHING = "attaching"  # loading tasks and edges of an existing run in chunks
STARTING = "starting"  # waiting for the server to accept RUNNING
RUNNING = "running"  # the main loop
FINALIZING = "finalizing"  # waiting for the final status update
DONE = "done"  # Finish or Fail emitted; every later event is ignored

# --- where the main loop is within one iteration (spec §9.3) --------------------------
SCHEDULING = "scheduling"  # batches of this iteration are in flight
WAITING_SYNC = "waiting_sync"  # sleeping until the sync is due
SYNCING = "syncing"  # sync requests in flight


# --- commands awaiting an answer -------------------------------------------------------
@frozen
class PendingBatch:
    """A batch of one array's tasks with the same resources; ``task_ids`` as sent."""

    array_id: int
    indexes: tuple[int, ...]
    resources: Resources
    task_ids: tuple[int, ...]
    #: ``indexes`` as the scheduling pass took them, when that is an ``IndexList``: it keeps
    #: the numpy array that landing the batch reads the place column with. Not part of the
    #: value (equality, hash, repr).
    taken: Sequence[int] | None = field(default=None, eq=False, repr=False)


@frozen
class PendingBind:
    resources: Resources


@frozen
class PendingEvaluation:
    index: int
    purpose: str


@frozen
class PendingHeartbeat:
    pass


@frozen
class PendingStatusUpdate:
    """``purpose``: ``start``, ``finalize`` or ``abort``; an abort ends with ``raises``."""

    status: str
    purpose: str
    reason: str = ""
    message: str = ""
    raises: bool = False


@frozen
class PendingSyncPart:
    part: str  # triage | statuses | workflow_limit | array_limit


@frozen
class PendingTerminate:
    pass


@frozen
class PendingChunk:
    kind: str  # tasks | edges | queues


Pending = Union[
    PendingBatch,
    PendingBind,
    PendingEvaluation,
    PendingHeartbeat,
    PendingStatusUpdate,
    PendingSyncPart,
    PendingTerminate,
    PendingChunk,
]


@frozen
class Timing:
    """Clock-derived facts of the main loop and the heartbeat (spec §8, §9.3)."""

    started_at: float = 0.0
    loop_started_at: float | None = None
    iteration_started_at: float = 0.0
    loop_phase: str = WAITING_SYNC
    sync_due_at: float | None = None
    full_sync_accum: float = 0.0
    sync_is_full: bool = False
    pre_exit_sync: bool = False
    sync_parts_outstanding: int = 0
    batches_outstanding: int = 0
    next_heartbeat_at: float | None = None
    heartbeat_in_flight: bool = False
    wake_at: float | None = None
    last_sync: str | None = None


@frozen
class ResourceState:
    """Resource cache (by content), bindings in progress, per-task overrides."""

    bound: PMap[Resources, int] = pmap()
    binding: PMap[Resources, int] = pmap()
    parked: PMap[Resources, tuple[PendingBatch, ...]] = pmap()
    #: Per-task resources that differ from the topology's; empty until the first one.
    overrides: PVector[Resources | None] = pvector()
    adjustments: PMap[int, int] = pmap()
    callables_done: PSet[int] = pset()


@frozen
class AttachProgress:
    """Rows loaded so far while attaching to an existing run (spec §3.2)."""

    dag_id: int
    workflow_limit: int
    queues: tuple[Any, ...]
    task_chunks: tuple[Sequence[Any], ...] = ()  # tuples of rows or ``RowPage``s
    edge_chunks: tuple[Sequence[Any], ...] = ()
    edge_batches: tuple[tuple[int, ...], ...] = ()
    next_edge_batch: int = 0
    queues_requested: bool = False
    compute_resources: tuple[tuple[str, str], ...] = ()


class CountQueries:
    """Queries answered from the running counts, in O(1): shared by ``SwarmState`` and its
    working copy ``Tx`` (whose maps are evolvers or dicts; both answer ``get``)."""

    __slots__ = ()
    topology: Topology | None
    status: Any
    status_counts: Any
    active_by_array: Any
    inflight_by_array: Any
    inflight_total: int
    ready_count: int
    evaluating_count: int
    workflow_limit: int
    array_limits: Any
    resources: ResourceState

    @property
    def active_count(self) -> int:
        c = self.status_counts
        active: int = c.get("Q", 0) + c.get("I", 0) + c.get("O", 0) + c.get("R", 0)
        return active

    def all_tasks_final(self) -> bool:
        c = self.status_counts
        final: int = c.get("D", 0) + c.get("F", 0)
        return final == len(self.status)

    def has_pending_work(self) -> bool:
        return (
            self.active_count + self.inflight_total + self.ready_count + self.evaluating_count
        ) > 0

    def workflow_capacity(self) -> int:
        """Free workflow slots: tasks in flight hold a slot as active ones do."""
        return max(0, self.workflow_limit - self.active_count - self.inflight_total)

    def array_capacity(self, array_id: int) -> int:
        """Free slots of one array; 0 for an unknown array, as in Jobmon."""
        limit: int | None = self.array_limits.get(array_id)
        if limit is None:
            return 0
        used: int = self.active_by_array.get(array_id, 0) + self.inflight_by_array.get(array_id, 0)
        return max(0, limit - used)

    def resources_of(self, index: int) -> Resources:
        """The task's current resources: its own (adjusted, computed) or its resource set's."""
        overrides = self.resources.overrides
        if overrides:
            override = overrides[index]
            if override is not None:
                return override
        assert self.topology is not None
        return self.topology.resources_of[index]


class MapTx:
    """Copy-on-write edits of a ``PMap`` for one ``decide`` call (``get``/``set``/``remove``)."""

    __slots__ = ("base", "changes", "removed")

    def __init__(self, base: PMap[Any, Any]) -> None:
        self.base = base
        self.changes: dict[Any, Any] = {}
        self.removed: set[Any] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        changes = self.changes
        if key in changes:
            return changes[key]
        if key in self.removed:
            return default
        return self.base.get(key, default)

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: Any) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def set(self, key: Any, value: Any) -> None:
        self.changes[key] = value
        self.removed.discard(key)

    def remove(self, key: Any) -> None:
        self.changes.pop(key, None)
        if key in self.base:
            self.removed.add(key)

    def items(self) -> list[tuple[Any, Any]]:
        merged = {k: v for k, v in self.base.items() if k not in self.removed and k not in self.changes}
        merged.update(self.changes)
        return list(merged.items())

    def persistent(self) -> PMap[Any, Any]:
        if not self.changes and not self.removed:
            return self.base
        ev = self.base.evolver()
        for key in self.removed:
            ev.remove(key)
        for key, value in self.changes.items():
            ev.set(key, value)
        return ev.persistent()


_MISSING = object()


#: Field metadata: how ``Tx`` opens a field for writing and how ``commit`` freezes it again.
#: A field without it is copied as it is (its value is immutable and replaced whole).
_TX = "tx"
_VECTOR: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    _TX: (methodcaller("evolver"), methodcaller("persistent"))
}
_MAP: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {_TX: (MapTx, MapTx.persistent)}


class SmallMapTx(dict[Any, Any]):
    """A small map of the state (status counts, per-array counts and limits) for one
    ``decide`` call: a ``dict`` copy of the state's map, read and written at a dict's speed
    (``set`` and ``remove`` as ``MapTx`` has them), that remembers the state's map. Frozen
    again as a ``FrozenDict``, or handed back as the state's own map when it ends as it
    started. A map of ten entries costs a dict copy to open and to freeze, where a ``PMap``
    edit runs pyrsistent's Python code per key (measured at 1M tasks: 2.6-6.6 us a call)."""

    __slots__ = ("base",)
    base: Mapping[Any, Any]

    @classmethod
    def opened(cls, base: Mapping[Any, Any]) -> SmallMapTx:
        small = cls(base)
        small.base = base
        return small

    def set(self, key: Any, value: Any) -> None:
        self[key] = value

    def remove(self, key: Any) -> None:
        self.pop(key, None)

    @staticmethod
    def persistent(small: dict[Any, Any]) -> Mapping[Any, Any]:
        """``small`` frozen (a plain dict too: ``set_up`` assigns fresh ones)."""
        base: Mapping[Any, Any] | None = getattr(small, "base", None)
        if base is not None and small == base:
            return base
        return FrozenDict(small)


_SMALL_MAP: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    _TX: (SmallMapTx.opened, SmallMapTx.persistent)
}
_EMPTY_MAP: FrozenDict[Any, Any] = FrozenDict()


@frozen
class SwarmState(CountQueries):
    """One immutable snapshot of a swarm. Build the first one with ``initial_state``."""

    config: SwarmConfig = SwarmConfig()
    phase: str = NEW
    topology: Topology | None = None
    workflow_id: int = 0
    workflow_run_id: int = 0
    run_status: str = "B"
    heartbeat_status: str = "B"
    status: StatusColumn = field(default=EMPTY_STATUS_COLUMN, converter=status_column, metadata=_VECTOR)
    upstream_done: CountColumn = field(default=EMPTY_COUNT_COLUMN, converter=count_column, metadata=_VECTOR)
    place: IntColumn = field(default=EMPTY_INT_COLUMN, converter=int_column, metadata=_VECTOR)
    status_counts: Mapping[str, int] = field(default=_EMPTY_MAP, metadata=_SMALL_MAP)
    active_by_array: Mapping[int, int] = field(default=_EMPTY_MAP, metadata=_SMALL_MAP)
    inflight_by_array: Mapping[int, int] = field(default=_EMPTY_MAP, metadata=_SMALL_MAP)
    inflight_total: int = 0
    ready_groups: PMap[tuple[int, Resources], ReadyGroup] = field(default=pmap(), metadata=_MAP)
    ready_count: int = 0
    evaluating_count: int = 0
    next_back_seq: int = 1
    next_front_seq: int = -1
    workflow_limit: int = 0
    array_limits: Mapping[int, int] = field(default=_EMPTY_MAP, metadata=_SMALL_MAP)
    batch_size: int = JOBMON_MAX_BATCH_SIZE
    timing: Timing = Timing()
    pending: PMap[int, Pending] = field(default=pmap(), metadata=_MAP)
    resources: ResourceState = ResourceState()
    n_executions: int = 0
    next_command_id: int = 1
    distributor_dead: bool = False
    distributor_detail: str = ""
    num_previously_complete: int = 0
    done_not_loaded: int = 0
    attach: AttachProgress | None = None
    summary: RunSummary | None = None
    anomalies: int = 0

    # --- queries (O(1) unless stated) ---------------------------------------------------
    @property
    def total_tasks(self) -> int:
        return len(self.status)

    def count(self, status: str) -> int:
        return self.status_counts.get(status, 0)

    def task_status(self, task_id: int) -> str:
        assert self.topology is not None
        status: str = self.status[self.topology.index_of[task_id]]
        return status


def initial_state(config: SwarmConfig | None = None) -> SwarmState:
    """An empty state, waiting for ``RunStarted`` or ``AttachStarted``."""
    return SwarmState(config=config or SwarmConfig())




class Tx(CountQueries):
    """A working copy of one state for the length of one ``decide`` call.

    Big per-task vectors and maps are written through evolvers (the input state is never
    modified); small scalars are plain attributes. ``commit`` freezes everything.
    """

    # One attribute per ``SwarmState`` field (for type checkers; tests/core/test_state_tx.py
    # checks the two lists agree). ``__init__`` and ``commit`` walk ``attrs.fields``.
    config: SwarmConfig
    phase: str
    topology: Topology | None
    workflow_id: int
    workflow_run_id: int
    run_status: str
    heartbeat_status: str
    status: StatusColumnTx
    upstream_done: CountColumnTx
    place: IntColumnTx
    status_counts: dict[str, int]
    active_by_array: SmallMapTx
    inflight_by_array: SmallMapTx
    inflight_total: int
    ready_groups: MapTx
    ready_count: int
    evaluating_count: int
    next_back_seq: int
    next_front_seq: int
    workflow_limit: int
    array_limits: SmallMapTx
    batch_size: int
    timing: Timing
    pending: MapTx
    resources: ResourceState
    n_executions: int
    next_command_id: int
    distributor_dead: bool
    distributor_detail: str
    num_previously_complete: int
    done_not_loaded: int
    attach: AttachProgress | None
    summary: RunSummary | None
    anomalies: int

    def __init__(self, state: SwarmState) -> None:
        # Plain fields are copied; the others are opened for writing on first use
        # (``_OpenedOnFirstUse``): an event that reads few of them pays for few.
        self.__dict__.update(zip(_PLAIN_NAMES, _plain_values(state), strict=True))
        self.base = state
        self.commands: list[Command] = []
        # Entries appended to ready groups during this call, flushed before any read.
        self.appended_back: dict[tuple[int, Resources], list[int]] = {}
        self.appended_front: dict[tuple[int, Resources], list[int]] = {}

    # --- commands -------------------------------------------------------------------------
    def emit(self, cls: type, pending: Pending | None = None, **fields: Any) -> Any:
        """Append a command with a fresh id; remember ``pending`` until its answer."""
        command_id = self.next_command_id
        self.next_command_id += 1
        command = cls(command_id=command_id, **fields)
        self.commands.append(command)
        if pending is not None:
            self.pending.set(command_id, pending)
        return command

    def note(self, kind: str, detail: str) -> None:
        """Record a tolerated oddity as a ``NoteAnomaly`` command."""
        from swarmfold.core.commands import NoteAnomaly

        self.anomalies += 1
        self.emit(NoteAnomaly, kind=kind, detail=detail)

    # --- derived values -----------------------------------------------------------------
    @property
    def topo(self) -> Topology:
        assert self.topology is not None
        return self.topology

    def set_override(self, index: int, resources: Resources) -> None:
        """Give one task resources of its own (adjusted or computed)."""
        overrides = self.resources.overrides or pvector([None] * len(self.status))
        self.set_resources(overrides=overrides.set(index, resources))

    def set_timing(self, **changes: Any) -> None:
        values = list(_timing_values(self.timing))
        for name, value in changes.items():
            values[_TIMING_POSITION[name]] = value
        self.timing = Timing(*values)

    def set_resources(self, **changes: Any) -> None:
        r = self.resources
        values = {a: getattr(r, a) for a in _RESOURCE_FIELDS}
        values.update(changes)
        self.resources = ResourceState(**values)

    # --- ready queue --------------------------------------------------------------------
    def flush_ready(self) -> None:
        """Write the entries appended during this call into their groups."""
        if not (self.appended_back or self.appended_front):
            return
        groups = self.ready_groups
        for key in {**self.appended_back, **self.appended_front}:
            group = groups.get(key) or _EMPTY_GROUP
            groups.set(
                key,
                group.extended(self.appended_back.get(key, []), self.appended_front.get(key, [])),
            )
        self.appended_back = {}
        self.appended_front = {}

    # --- freezing -----------------------------------------------------------------------
    def abort(self) -> None:
        """Let go of the working copies after a failed call: a column that shares its storage
        between versions (``IntColumnTx``) undoes the writes it made."""
        for name in _TX_NAMES:
            opened = self.__dict__.get(name)
            abort = getattr(opened, "abort", None)
            if abort is not None:
                abort()

    def commit(self) -> SwarmState:
        self.flush_ready()
        values: list[Any] = list(map(self.__dict__.get, _FIELD_NAMES))
        base = self.base
        for position, name, close in _CLOSERS:
            opened = values[position]
            values[position] = getattr(base, name) if opened is None else close(opened)
        return SwarmState(*values)


class _OpenedOnFirstUse:
    """A ``Tx`` attribute for a field that is written through a working copy: the first
    read opens the state's value (``_VECTOR``, ``_MAP``, ``_COUNTS``) and keeps it in the
    instance, which answers every later read directly (a non-data descriptor)."""

    __slots__ = ("name", "open")

    def __init__(self, name: str, open_: Callable[[Any], Any]) -> None:
        self.name = name
        self.open = open_

    def __get__(self, tx: Tx | None, owner: type | None = None) -> Any:
        if tx is None:
            return self
        opened = tx.__dict__[self.name] = self.open(getattr(tx.base, self.name))
        return opened


_FIELDS: tuple[attrs.Attribute[Any], ...] = attrs.fields(SwarmState)
_FIELD_NAMES = tuple(f.name for f in _FIELDS)
_PLAIN_NAMES = tuple(f.name for f in _FIELDS if _TX not in f.metadata)
_TX_NAMES = tuple(f.name for f in _FIELDS if _TX in f.metadata)
_plain_values = attrgetter(*_PLAIN_NAMES)
_CLOSERS = tuple((k, f.name, f.metadata[_TX][1]) for k, f in enumerate(_FIELDS) if _TX in f.metadata)
for _field in _FIELDS:
    if _TX in _field.metadata:
        setattr(Tx, _field.name, _OpenedOnFirstUse(_field.name, _field.metadata[_TX][0]))
_EMPTY_GROUP = ReadyGroup()
_TIMING_FIELDS = tuple(a.name for a in attrs.fields(Timing))
_timing_values = attrgetter(*_TIMING_FIELDS)
_TIMING_POSITION = {name: k for k, name in enumerate(_TIMING_FIELDS)}
_RESOURCE_FIELDS = tuple(a.name for a in attrs.fields(ResourceState))

__all__ = ["SwarmState", "Tx", "initial_state"]
