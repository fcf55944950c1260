"""The server model's answer to each swarm command, in process: command in, event out.

``serve`` answers HTTP requests through ``RouteAnswers`` (``answers.py``); the simulator, the
instant driver of ``fold`` and the benchmark, and the Hypothesis machine's server call
``answer_command`` instead. Both carry the request out on the one ``ServerModel``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarmfold.core.commands import (
    BindResources,
    Command,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LogHeartbeat,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
)
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    Event,
    HeartbeatAcknowledged,
    ResourcesBound,
    StatusUpdateAcknowledged,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.shell.server.model import ServerModel

__all__ = ["ANSWERED_IN_PROCESS", "UnservedCommand", "answer_command"]


class UnservedCommand(LookupError):
    """The command is not a request to the Jobmon server."""


def _queue(m: ServerModel, c: QueueBatch, now: float, duration: float | None) -> Event:
    answer, _moved = m.queue_task_batch(c.task_ids, c.task_resources_id, now)
    return BatchQueued(c.command_id, now, answer, duration)


def _fetch(m: ServerModel, c: FetchTaskStatuses, now: float, duration: float | None) -> Event:
    statuses, time_string = m.task_status_updates(c.since, now, packed=True)
    return TaskStatusesFetched(c.command_id, now, statuses, time_string)


def _triage(m: ServerModel, c: RequestTriage, now: float, duration: float | None) -> Event:
    m.set_status_for_triaging(now)
    return TriageRequested(c.command_id, now)


def _workflow_limit(m: ServerModel, c: FetchWorkflowLimit, now: float, duration: float | None) -> Event:
    return WorkflowLimitFetched(c.command_id, now, m.get_max_concurrently_running())


def _array_limit(m: ServerModel, c: FetchArrayLimit, now: float, duration: float | None) -> Event:
    return ArrayLimitFetched(c.command_id, now, c.array_id, m.get_array_max_concurrently_running(c.array_id))


def _heartbeat(m: ServerModel, c: LogHeartbeat, now: float, duration: float | None) -> Event:
    return HeartbeatAcknowledged(c.command_id, now, m.log_heartbeat(c.status, c.next_report_increment, now))


def _update(m: ServerModel, c: UpdateWorkflowRunStatus, now: float, duration: float | None) -> Event:
    return StatusUpdateAcknowledged(c.command_id, now, m.update_status(c.status, now))


def _terminate(m: ServerModel, c: TerminateTaskInstances, now: float, duration: float | None) -> Event:
    return TerminateAcknowledged(c.command_id, now, m.terminate_task_instances(now))


def _bind(m: ServerModel, c: BindResources, now: float, duration: float | None) -> Event:
    return ResourcesBound(c.command_id, now, m.bind_resources(c.queue, c.requested))


_ANSWERS: dict[type, Callable[[ServerModel, Any, float, float | None], Event]] = {
    QueueBatch: _queue,
    FetchTaskStatuses: _fetch,
    RequestTriage: _triage,
    FetchWorkflowLimit: _workflow_limit,
    FetchArrayLimit: _array_limit,
    LogHeartbeat: _heartbeat,
    UpdateWorkflowRunStatus: _update,
    TerminateTaskInstances: _terminate,
    BindResources: _bind,
}

#: The swarm-run commands answered here: ``core.protocol.SERVER_COMMANDS`` less attach's loads.
ANSWERED_IN_PROCESS: frozenset[type] = frozenset(_ANSWERS)


def answer_command(model: ServerModel, command: Command, now: float, duration: float | None = None) -> Event:
    """Carry ``command`` out on ``model`` at ``now`` and give the server's answer as an event.

    ``duration`` (a batch request's measured time) goes into ``BatchQueued``.
    """
    handler = _ANSWERS.get(type(command))
    if handler is None:
        raise UnservedCommand(f"the Jobmon server does not serve {type(command).__name__}")
    return handler(model, command, now, duration)
