"""The protocol between the core and the shell, as data: one row per command.

Rules, all read from ``PROTOCOL`` below (nothing else in swarmfold keeps a copy):

- Every command the core emits has exactly one row.
- ``answers``: the events that report the command's success. Each carries the command's
  ``command_id``; the core accepts it only while that command is pending.
- ``failure``: the event that reports the command's failure (it carries ``error``), or None
  when the command cannot fail (it has no answer at all, or the shell never fails it).
- ``lane``: who carries the command out. The four server lanes (``heartbeat``, ``control``,
  ``sync``, ``batch``) are the runner's thread pools, so a burst of batches can never delay
  the heartbeat; ``local`` is work the shell does itself (user callables) on the sync pool;
  ``timer``, ``note`` and ``end`` are handled by the loop itself and answered by no event.
- ``server``: the command is one HTTP exchange (or a short fixed series of them) with the
  Jobmon server; the route table of the shell (``swarmfold.shell.http.routes``) says which.
- Events that answer no command arrive on their own: ``UNSOLICITED_EVENTS``.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from swarmfold.core.commands import (
    COMMAND_TYPES,
    BindResources,
    Command,
    EvaluateResources,
    Fail,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    Finish,
    LoadEdgeChunk,
    LoadQueues,
    LoadTaskChunk,
    LogHeartbeat,
    NoteAnomaly,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.errors import ProtocolViolation
from swarmfold.core.events import (
    ArrayLimitFetched,
    AttachStarted,
    BatchQueued,
    BatchQueueFailed,
    ChunkLoadFailed,
    DistributorDied,
    EdgeChunkLoaded,
    Event,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    QueuesLoaded,
    ResourceBindFailed,
    ResourceEvaluationFailed,
    ResourcesBound,
    ResourcesEvaluated,
    RunStarted,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    StopRequested,
    SyncPartFailed,
    TaskChunkLoaded,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TerminateFailed,
    TimerFired,
    TriageRequested,
    WorkflowLimitFetched,
)

# --- lanes -------------------------------------------------------------------------------
HEARTBEAT = "heartbeat"  # LogHeartbeat alone: never behind anything else
CONTROL = "control"  # run-status changes and terminate
SYNC = "sync"  # sync parts, attach loads, resource binds
BATCH = "batch"  # queue_task_batch, bounded by max_concurrent_batches
LOCAL = "local"  # the shell evaluates user callables (on the sync pool)
TIMER = "timer"  # the loop feeds TimerFired when the clock reaches it
NOTE = "note"  # logged by the loop, answered by nothing
END = "end"  # the run is over

#: Lanes whose commands run on a worker and are answered by an event.
EXECUTED_LANES = (HEARTBEAT, CONTROL, SYNC, BATCH, LOCAL)


@frozen
class Exchange:
    """One command's row of the protocol."""

    command: type
    answers: tuple[type, ...]
    failure: type | None
    lane: str
    server: bool

    @property
    def answered(self) -> bool:
        """True when an event must come back for this command."""
        return bool(self.answers)


def _row(command: type, answers: tuple[type, ...], failure: type | None, lane: str, server: bool) -> Exchange:
    return Exchange(command, answers, failure, lane, server)


#: The protocol, one row per command type, in the order of ``COMMAND_TYPES``.
PROTOCOL: Mapping[type, Exchange] = {
    row.command: row
    for row in (
        _row(QueueBatch, (BatchQueued,), BatchQueueFailed, BATCH, True),
        _row(BindResources, (ResourcesBound,), ResourceBindFailed, SYNC, True),
        _row(EvaluateResources, (ResourcesEvaluated,), ResourceEvaluationFailed, LOCAL, False),
        _row(LogHeartbeat, (HeartbeatAcknowledged,), HeartbeatFailed, HEARTBEAT, True),
        _row(UpdateWorkflowRunStatus, (StatusUpdateAcknowledged,), StatusUpdateFailed, CONTROL, True),
        _row(RequestTriage, (TriageRequested,), SyncPartFailed, SYNC, True),
        _row(FetchTaskStatuses, (TaskStatusesFetched,), SyncPartFailed, SYNC, True),
        _row(FetchWorkflowLimit, (WorkflowLimitFetched,), SyncPartFailed, SYNC, True),
        _row(FetchArrayLimit, (ArrayLimitFetched,), SyncPartFailed, SYNC, True),
        _row(TerminateTaskInstances, (TerminateAcknowledged,), TerminateFailed, CONTROL, True),
        _row(WakeAt, (), None, TIMER, False),
        _row(LoadTaskChunk, (TaskChunkLoaded,), ChunkLoadFailed, SYNC, True),
        _row(LoadEdgeChunk, (EdgeChunkLoaded,), ChunkLoadFailed, SYNC, True),
        _row(LoadQueues, (QueuesLoaded,), ChunkLoadFailed, SYNC, True),
        _row(NoteAnomaly, (), None, NOTE, False),
        _row(Finish, (), None, END, False),
        _row(Fail, (), None, END, False),
    )
}

#: Commands that talk to the Jobmon server, in table order.
SERVER_COMMANDS: tuple[type, ...] = tuple(c for c, row in PROTOCOL.items() if row.server)

#: Events that answer no command: they report what happened outside (start, clock, signals).
UNSOLICITED_EVENTS: tuple[type, ...] = (RunStarted, AttachStarted, TimerFired, DistributorDied, StopRequested)

#: ``event type -> the command types it may answer``.
ANSWERS_TO: Mapping[type, tuple[type, ...]] = {
    event: tuple(c for c, row in PROTOCOL.items() if event in row.answers or event is row.failure)
    for row in PROTOCOL.values()
    for event in (*row.answers, *((row.failure,) if row.failure is not None else ()))
}

assert set(PROTOCOL) == set(COMMAND_TYPES), "every command needs exactly one protocol row"


def exchange_of(command: Command | type) -> Exchange:
    """The protocol row of a command (or a command type)."""
    kind = command if isinstance(command, type) else type(command)
    row = PROTOCOL.get(kind)
    if row is None:
        raise ProtocolViolation(f"no protocol row for {kind.__name__}")
    return row


def lane_of(command: Command) -> str:
    """Who carries ``command`` out: one of the lane names above."""
    return exchange_of(command).lane


def failure_event(command: Command, at: float, error: str) -> Event:
    """The event that reports ``command``'s failure with ``error`` at time ``at``."""
    row = exchange_of(command)
    if row.failure is None:
        raise ProtocolViolation(f"{row.command.__name__} has no failure event")
    event: Event = row.failure(command.command_id, at, error)
    return event
