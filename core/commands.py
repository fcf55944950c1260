"""Commands: intents the core hands to the shell, in the imperative.

Every command has a ``command_id`` unique within a run. The shell answers each command
that talks to the server with exactly one event carrying that id (a response or a
failure). ``WakeAt``, ``NoteAnomaly``, ``Finish`` and ``Fail`` get no answer; a newer
``WakeAt`` replaces any earlier one.
"""

from __future__ import annotations

from typing import Any, Union

from attrs import field, frozen

from swarmfold.core.resources import Requested, ResourceValue, freeze_requested
from swarmfold.core.summary import RunSummary


def _int_tuple(value: Any) -> tuple[int, ...]:
    return tuple(value)


def _pair_tuple(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(a), str(b)) for a, b in value)



def _requested(value: Any) -> Requested:
    return freeze_requested(value)

@frozen
class QueueBatch:
    """``POST /array/{array_id}/queue_task_batch``."""

    command_id: int
    array_id: int
    task_ids: tuple[int, ...] = field(converter=_int_tuple)
    task_resources_id: int
    workflow_run_id: int
    cluster_id: int = 0


@frozen
class BindResources:
    """``POST /task/bind_resources``; always type ``"O"`` as in Jobmon (quirk Q4)."""

    command_id: int
    queue: str
    queue_id: int
    requested: Requested = field(converter=_requested)
    task_resources_type_id: str = "O"


@frozen
class EvaluateResources:
    """Evaluate user callables for one task and answer with ``ResourcesEvaluated``.

    ``purpose`` is ``"compute_resources"`` (one callable named by ``callables[0][1]``, whose
    dict result is merged into ``requested``) or ``"resource_scales"`` (each
    ``(resource, callable)`` pair maps the current value of that resource to its new value).
    """

    command_id: int
    task_id: int
    purpose: str
    callables: tuple[tuple[str, str], ...] = field(converter=_pair_tuple)
    requested: tuple[tuple[str, ResourceValue], ...] = field(converter=_requested)


@frozen
class LogHeartbeat:
    """``POST /workflow_run/{id}/log_heartbeat``."""

    command_id: int
    workflow_run_id: int
    status: str
    next_report_increment: float


@frozen
class UpdateWorkflowRunStatus:
    """``PUT /workflow_run/{id}/update_status``."""

    command_id: int
    workflow_run_id: int
    status: str


@frozen
class RequestTriage:
    """``POST /workflow_run/{id}/set_status_for_triaging``."""

    command_id: int
    workflow_run_id: int


@frozen
class FetchTaskStatuses:
    """``POST /workflow/{id}/task_status_updates``; ``since=None`` asks for a full sync."""

    command_id: int
    workflow_id: int
    since: str | None


@frozen
class FetchWorkflowLimit:
    """``GET /workflow/{id}/get_max_concurrently_running``."""

    command_id: int
    workflow_id: int


@frozen
class FetchArrayLimit:
    """``GET /array/{id}/get_array_max_concurrently_running``."""

    command_id: int
    array_id: int


@frozen
class TerminateTaskInstances:
    """``PUT /workflow_run/{id}/terminate_task_instances``."""

    command_id: int
    workflow_run_id: int


@frozen
class WakeAt:
    """Feed ``TimerFired`` once the clock reaches ``at``. Replaces any earlier ``WakeAt``."""

    command_id: int
    at: float


@frozen
class LoadTaskChunk:
    """``GET /workflow/get_tasks/{workflow_id}`` for tasks with id above ``after_task_id``."""

    command_id: int
    workflow_id: int
    after_task_id: int
    chunk_size: int


@frozen
class LoadEdgeChunk:
    """``POST /task/get_downstream_tasks`` for these tasks."""

    command_id: int
    dag_id: int
    task_ids: tuple[int, ...] = field(converter=_int_tuple)


@frozen
class LoadQueues:
    """Look up queues by ``(cluster name, queue name)``: ``GET /cluster/{name}`` then
    ``GET /cluster/{id}/queue/{name}``, as Jobmon's builder does when attaching."""

    command_id: int
    queues: tuple[tuple[str, str], ...] = field(converter=_pair_tuple)


@frozen
class NoteAnomaly:
    """Record something odd the core tolerated (logging as data)."""

    command_id: int
    kind: str
    detail: str


@frozen
class Finish:
    """The run is over: return this summary (Jobmon returns its result)."""

    command_id: int
    summary: RunSummary


@frozen
class Fail:
    """The run is over and the caller must see an error (Jobmon raises).

    ``reason`` is one of ``timeout``, ``distributor_died``, ``fail_after_n_executions``,
    ``stopped``; ``summary`` still reports the state at the end.
    """

    command_id: int
    reason: str
    message: str
    summary: RunSummary


Command = Union[
    QueueBatch,
    BindResources,
    EvaluateResources,
    LogHeartbeat,
    UpdateWorkflowRunStatus,
    RequestTriage,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    FetchArrayLimit,
    TerminateTaskInstances,
    WakeAt,
    LoadTaskChunk,
    LoadEdgeChunk,
    LoadQueues,
    NoteAnomaly,
    Finish,
    Fail,
]
COMMAND_TYPES: tuple[type, ...] = Command.__args__  # type: ignore[attr-defined]
