"""Events: facts the shell observed, in the past tense.

Every event carries ``at``, the shell's clock reading (seconds) when the fact was observed.
An event that answers a command carries that command's ``command_id``.
Server status codes arrive as plain strings: an unknown code is data, not a crash.
Events are immutable all the way down: mappings in them are ``FrozenDict``s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

from attrs import field, frozen

from swarmfold.core.config import SwarmConfig
from swarmfold.core.frozen import FrozenDict
from swarmfold.core.id_array import IdArray
from swarmfold.core.resources import ResourceValue, Scale
from swarmfold.core.row_page import RowPage
from swarmfold.core.topology import QueueSpec, TopologySpec


def _as_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    """The field converter: a tuple as it is, any other iterable copied into one."""
    return value if type(value) is tuple else tuple(value)


def _as_rows(value: Iterable[Any]) -> Sequence[Any]:
    """A page's converter: a tuple or a ``RowPage`` as it is, any other iterable a tuple."""
    return value if type(value) is tuple or type(value) is RowPage else tuple(value)


#: ``{"<status>": [task_id, ...]}``, the server's ``tasks_by_status`` shape; read-only, in
#: the order the server listed the statuses. Each list is a tuple, or an ``IdArray`` (a
#: long list packed as int64, equal to the tuple of its ids).
TasksByStatus = Mapping[str, Sequence[int]]


def _tasks_by_status(value: Mapping[str, Iterable[int]]) -> TasksByStatus:
    frozen: TasksByStatus = FrozenDict(
        {str(k): v if type(v) is IdArray else tuple(v) for k, v in value.items()}
    )
    return frozen


def _values(value: Mapping[str, ResourceValue]) -> Mapping[str, ResourceValue]:
    return value if type(value) is FrozenDict else FrozenDict(value)


# --- starting a run -------------------------------------------------------------------


@frozen
class RunStarted:
    """A workflow run was bound and its whole topology is known (Jobmon's workflow path)."""

    at: float
    workflow_id: int
    workflow_run_id: int
    topology: TopologySpec
    config: SwarmConfig = SwarmConfig()
    run_status: str = "B"
    server_time: str | None = None


@frozen
class AttachStarted:
    """The shell attached to an existing run; tasks and edges will be loaded in chunks.

    ``workflow_limit`` and ``dag_id`` come from ``fetch_workflow_metadata``, ``server_time``
    from ``/time`` (spec §3.2). ``previously_complete`` counts the workflow's DONE tasks, which
    ``get_tasks`` leaves out (the shell asks a full status sync): they count in the summary's
    totals as Jobmon's do. ``compute_resources`` gives tasks a ``compute_resources`` callable
    by name (Jobmon's ``compute_resources_callable``, which an attached run cannot load):
    ``(selector, name)`` pairs, the selector ``"task:<id>"`` or ``"array:<id>"``; a task's own
    entry wins over its array's.
    """

    at: float
    workflow_id: int
    workflow_run_id: int
    dag_id: int
    workflow_limit: int
    config: SwarmConfig = SwarmConfig()
    run_status: str = "B"
    server_time: str | None = None
    queues: tuple[QueueSpec, ...] = field(default=(), converter=_as_tuple)
    previously_complete: int = 0
    compute_resources: tuple[tuple[str, str], ...] = field(default=(), converter=_as_tuple)


@frozen
class TaskRow:
    """One row of ``GET /workflow/get_tasks`` with its strings already parsed."""

    task_id: int
    array_id: int
    status: str
    max_attempts: int
    resource_scales: tuple[tuple[str, Scale], ...]
    fallback_queues: tuple[str, ...]
    requested_resources: tuple[tuple[str, ResourceValue], ...]
    cluster_name: str
    queue_name: str
    array_limit: int


@frozen
class EdgeRow:
    """One entry of ``get_downstream_tasks``: a task, its node and downstream nodes."""

    task_id: int
    node_id: int
    downstream_node_ids: tuple[int, ...] = field(default=(), converter=_as_tuple)


@frozen
class TaskChunkLoaded:
    command_id: int
    at: float
    #: A tuple, or a ``RowPage`` (the rows as columns: the HTTP parser's and the log's).
    tasks: Sequence[TaskRow] = field(converter=_as_rows)


@frozen
class EdgeChunkLoaded:
    command_id: int
    at: float
    edges: Sequence[EdgeRow] = field(converter=_as_rows)


@frozen
class QueuesLoaded:
    """Answer to ``LoadQueues``: the queues found, with ids and resource bounds.

    A queue the server does not know is left out; the core then treats it as unbounded.
    """

    command_id: int
    at: float
    queues: tuple[QueueSpec, ...] = field(converter=_as_tuple)


@frozen
class ChunkLoadFailed:
    """A load while attaching (``LoadTaskChunk``, ``LoadEdgeChunk``, ``LoadQueues``) failed."""

    command_id: int
    at: float
    error: str


# --- sync ------------------------------------------------------------------------------


@frozen
class TaskStatusesFetched:
    """``task_status_updates`` answered; ``server_time`` is the server's ``time`` string."""

    command_id: int
    at: float
    tasks_by_status: TasksByStatus = field(converter=_tasks_by_status)
    server_time: str | None = None


@frozen
class TriageRequested:
    """``set_status_for_triaging`` answered."""

    command_id: int
    at: float


@frozen
class WorkflowLimitFetched:
    command_id: int
    at: float
    limit: int


@frozen
class ArrayLimitFetched:
    command_id: int
    at: float
    array_id: int
    limit: int


@frozen
class SyncPartFailed:
    """One part of a sync (statuses, triage, a limit) failed; the others still count."""

    command_id: int
    at: float
    error: str


# --- scheduling ------------------------------------------------------------------------


@frozen
class BatchQueued:
    """``queue_task_batch`` answered with the current status of every requested task.

    ``duration`` is the measured request time in seconds, for adaptive batch sizing.
    """

    command_id: int
    at: float
    tasks_by_status: TasksByStatus = field(converter=_tasks_by_status)
    duration: float | None = None


@frozen
class BatchQueueFailed:
    command_id: int
    at: float
    error: str


@frozen
class ResourcesBound:
    """``bind_resources`` answered with the new TaskResources id."""

    command_id: int
    at: float
    task_resources_id: int


@frozen
class ResourceBindFailed:
    command_id: int
    at: float
    error: str


@frozen
class ResourcesEvaluated:
    """The shell evaluated the user callables of an ``EvaluateResources`` command."""

    command_id: int
    at: float
    values: Mapping[str, ResourceValue] = field(converter=_values)


@frozen
class ResourceEvaluationFailed:
    command_id: int
    at: float
    error: str


# --- workflow run ----------------------------------------------------------------------


@frozen
class HeartbeatAcknowledged:
    """``log_heartbeat`` answered with the run status the server now holds."""

    command_id: int
    at: float
    status: str


@frozen
class HeartbeatFailed:
    command_id: int
    at: float
    error: str


@frozen
class StatusUpdateAcknowledged:
    """``update_status`` answered with the run status the server now holds."""

    command_id: int
    at: float
    status: str


@frozen
class StatusUpdateFailed:
    command_id: int
    at: float
    error: str


@frozen
class TerminateAcknowledged:
    command_id: int
    at: float
    num_terminated: int | None = None


@frozen
class TerminateFailed:
    command_id: int
    at: float
    error: str


# --- the outside world -----------------------------------------------------------------


@frozen
class TimerFired:
    """The clock reached a time the core asked to be woken at (``WakeAt``)."""

    at: float
    command_id: int | None = None


@frozen
class DistributorDied:
    """The distributor liveness check failed."""

    at: float
    detail: str = ""


@frozen
class StopRequested:
    """The user asked the run to stop (SIGINT/SIGTERM); the run goes to STOPPED."""

    at: float
    reason: str = ""


Event = Union[
    RunStarted,
    AttachStarted,
    TaskChunkLoaded,
    EdgeChunkLoaded,
    QueuesLoaded,
    ChunkLoadFailed,
    TaskStatusesFetched,
    TriageRequested,
    WorkflowLimitFetched,
    ArrayLimitFetched,
    SyncPartFailed,
    BatchQueued,
    BatchQueueFailed,
    ResourcesBound,
    ResourceBindFailed,
    ResourcesEvaluated,
    ResourceEvaluationFailed,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    TerminateAcknowledged,
    TerminateFailed,
    TimerFired,
    DistributorDied,
    StopRequested,
]
EVENT_TYPES: tuple[type, ...] = Event.__args__  # type: ignore[attr-defined]
