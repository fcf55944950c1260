"""``decide(state, event) -> Decision``: the one way a state changes.

A Mealy machine (Elm's ``update``; Chassaing's ``Process``): each event is a fact; the
result is the next state and the commands the shell must carry out, in order. Deadlines
due by ``event.at`` are honoured first, then the event is handled, then the next wake-up
is requested. A finished run ignores every further event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from attrs import frozen

from swarmfold.core import attach, batching, lifecycle, timing
from swarmfold.core.commands import Command
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
from swarmfold.core.readiness import enqueue, ready_eligible
from swarmfold.core.resource_policy import COMPUTE_RESOURCES, apply_evaluation
from swarmfold.core.state import (
    ATTACHING,
    DONE,
    NEW,
    NOWHERE,
    RUNNING,
    STARTING,
    PendingBatch,
    PendingBind,
    PendingChunk,
    PendingEvaluation,
    PendingHeartbeat,
    PendingStatusUpdate,
    PendingSyncPart,
    PendingTerminate,
    SwarmState,
    Tx,
)
from swarmfold.core.task_status import apply_reports


@frozen
class Decision:
    """The next state and the commands, in the order the shell should issue them."""

    state: SwarmState
    commands: tuple[Command, ...]


def decide(state: SwarmState, event: Event) -> Decision:
    """Fold one event into ``state``. Pure: the same inputs always give the same result."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        raise ProtocolViolation(f"decide: unknown event type {type(event).__name__}")
    if state.phase == DONE:
        return Decision(state, ())
    if state.phase == NEW and not isinstance(event, RunStarted | AttachStarted):
        raise ProtocolViolation(
            f"decide: {type(event).__name__} before RunStarted/AttachStarted"
        )
    if state.phase != NEW and isinstance(event, RunStarted | AttachStarted):
        raise ProtocolViolation(f"decide: {type(event).__name__} after the run already started")
    tx = Tx(state)
    try:
        timing.fire_due_timers(tx, event.at)
        handler(tx, event)
        timing.arm_wake(tx)
        return Decision(tx.commit(), tuple(tx.commands))
    except BaseException:
        tx.abort()
        raise


def fold(events: Iterable[Event], state: SwarmState | None = None) -> tuple[SwarmState, list[Command]]:
    """Fold many events; return the final state and every command, in order."""
    from swarmfold.core.state import initial_state

    current = state if state is not None else initial_state()
    commands: list[Command] = []
    for event in events:
        decision = decide(current, event)
        current = decision.state
        commands.extend(decision.commands)
    return current, commands


def is_terminal(state: SwarmState) -> bool:
    """True once the run has emitted ``Finish`` or ``Fail``."""
    return bool(state.phase == DONE)


# --- handlers ----------------------------------------------------------------------------


def _answer(tx: Tx, event: Any, expected: type | tuple[type, ...]) -> Any:
    """The pending record of the command this event answers, or None if there is none."""
    pending = tx.pending.get(event.command_id)
    if pending is None:
        tx.note(
            "unexpected_answer",
            f"{type(event).__name__} for command {event.command_id}, which is not awaiting an answer",
        )
        return None
    if not isinstance(pending, expected):
        raise ProtocolViolation(
            f"{type(event).__name__} answers command {event.command_id}, "
            f"which was a {type(pending).__name__.removeprefix('Pending')} command"
        )
    tx.pending.remove(event.command_id)
    return pending


def _on_run_started(tx: Tx, e: RunStarted) -> None:
    tx.config = e.config
    tx.workflow_id = e.workflow_id
    tx.workflow_run_id = e.workflow_run_id
    tx.run_status = e.run_status
    tx.heartbeat_status = e.run_status
    tx.set_timing(
        started_at=e.at,
        last_sync=e.server_time,
        next_heartbeat_at=e.at + e.config.heartbeat_interval,
    )
    lifecycle.set_up(tx, e.at, e.topology)


def _on_attach_started(tx: Tx, e: AttachStarted) -> None:
    attach.start_attach(tx, e)


def _on_task_chunk(tx: Tx, e: TaskChunkLoaded) -> None:
    if _answer(tx, e, PendingChunk) is not None and tx.phase == ATTACHING:
        attach.task_chunk_loaded(tx, e.at, e.tasks)


def _on_edge_chunk(tx: Tx, e: EdgeChunkLoaded) -> None:
    if _answer(tx, e, PendingChunk) is not None and tx.phase == ATTACHING:
        attach.edge_chunk_loaded(tx, e.at, e.edges)


def _on_queues_loaded(tx: Tx, e: QueuesLoaded) -> None:
    if _answer(tx, e, PendingChunk) is not None and tx.phase == ATTACHING:
        attach.queues_loaded(tx, e.at, e.queues)


def _on_chunk_failed(tx: Tx, e: ChunkLoadFailed) -> None:
    if _answer(tx, e, PendingChunk) is not None and tx.phase == ATTACHING:
        attach.chunk_failed(tx, e.at, e.error)


def _on_statuses(tx: Tx, e: TaskStatusesFetched) -> None:
    if _answer(tx, e, PendingSyncPart) is None:
        return
    if e.server_time is not None:
        tx.set_timing(last_sync=e.server_time)
    apply_reports(tx, e.tasks_by_status, "task_status_updates")
    lifecycle.sync_part_done(tx, e.at)


def _on_triage(tx: Tx, e: TriageRequested) -> None:
    if _answer(tx, e, PendingSyncPart) is not None:
        lifecycle.sync_part_done(tx, e.at)


def _on_workflow_limit(tx: Tx, e: WorkflowLimitFetched) -> None:
    if _answer(tx, e, PendingSyncPart) is not None:
        tx.workflow_limit = e.limit
        lifecycle.sync_part_done(tx, e.at)


def _on_array_limit(tx: Tx, e: ArrayLimitFetched) -> None:
    if _answer(tx, e, PendingSyncPart) is None:
        return
    if e.array_id in tx.array_limits:
        tx.array_limits.set(e.array_id, e.limit)
    lifecycle.sync_part_done(tx, e.at)


def _on_sync_part_failed(tx: Tx, e: SyncPartFailed) -> None:
    pending = _answer(tx, e, PendingSyncPart)
    if pending is not None:
        tx.note("sync_part_failed", f"{pending.part}: {e.error}")
        lifecycle.sync_part_done(tx, e.at)


def _on_batch_queued(tx: Tx, e: BatchQueued) -> None:
    pending = _answer(tx, e, PendingBatch)
    if pending is not None:
        batching.batch_queued(tx, pending, e.tasks_by_status, e.duration)
        timing.maybe_start_sync(tx, e.at)


def _on_batch_failed(tx: Tx, e: BatchQueueFailed) -> None:
    pending = _answer(tx, e, PendingBatch)
    if pending is not None:
        batching.batch_failed(tx, pending, e.error)
        timing.maybe_start_sync(tx, e.at)


def _on_bound(tx: Tx, e: ResourcesBound) -> None:
    pending = _answer(tx, e, PendingBind)
    if pending is not None:
        batching.resources_bound(tx, pending, e.task_resources_id)
        timing.maybe_start_sync(tx, e.at)


def _on_bind_failed(tx: Tx, e: ResourceBindFailed) -> None:
    pending = _answer(tx, e, PendingBind)
    if pending is not None:
        batching.bind_failed(tx, pending, e.error)
        timing.maybe_start_sync(tx, e.at)


def _on_evaluated(tx: Tx, e: ResourcesEvaluated) -> None:
    pending = _answer(tx, e, PendingEvaluation)
    if pending is None:
        return
    i = pending.index
    tx.evaluating_count -= 1
    tx.place[i] = NOWHERE
    apply_evaluation(tx, pending, e.values)
    status = tx.status[i]
    if pending.purpose == COMPUTE_RESOURCES:
        if status == "G" and ready_eligible(tx, i):
            enqueue(tx, i)
    elif status == "A" and ready_eligible(tx, i):
        enqueue(tx, i, front=True)


def _on_evaluation_failed(tx: Tx, e: ResourceEvaluationFailed) -> None:
    pending = _answer(tx, e, PendingEvaluation)
    if pending is None:
        return
    tx.evaluating_count -= 1
    tx.place[pending.index] = NOWHERE
    if tx.phase in (RUNNING, STARTING):
        lifecycle.abort(
            tx, "E", "resource_callable_failed",
            f"task {tx.topo.task_ids[pending.index]}: {pending.purpose} callable failed: {e.error}",
            raises=False,
        )


def _on_heartbeat(tx: Tx, e: HeartbeatAcknowledged) -> None:
    if _answer(tx, e, PendingHeartbeat) is not None:
        timing.heartbeat_answered(tx, e.at, e.status, None)


def _on_heartbeat_failed(tx: Tx, e: HeartbeatFailed) -> None:
    if _answer(tx, e, PendingHeartbeat) is not None:
        timing.heartbeat_answered(tx, e.at, None, e.error)


def _on_status_ack(tx: Tx, e: StatusUpdateAcknowledged) -> None:
    pending = _answer(tx, e, PendingStatusUpdate)
    if pending is not None:
        lifecycle.status_update_answered(tx, e.at, pending, e.status, None)


def _on_status_failed(tx: Tx, e: StatusUpdateFailed) -> None:
    pending = _answer(tx, e, PendingStatusUpdate)
    if pending is not None:
        lifecycle.status_update_answered(tx, e.at, pending, None, e.error)


def _on_terminate(tx: Tx, e: TerminateAcknowledged) -> None:
    _answer(tx, e, PendingTerminate)


def _on_terminate_failed(tx: Tx, e: TerminateFailed) -> None:
    if _answer(tx, e, PendingTerminate) is not None:
        tx.note("terminate_failed", e.error)


def _on_timer(tx: Tx, e: TimerFired) -> None:
    # Deadlines were already honoured; forget the old wake-up so the next one is armed.
    tx.set_timing(wake_at=None)


def _on_distributor_died(tx: Tx, e: DistributorDied) -> None:
    tx.distributor_dead = True
    tx.distributor_detail = e.detail


def _on_stop(tx: Tx, e: StopRequested) -> None:
    lifecycle.stop_requested(tx, e.reason)


_HANDLERS: dict[type, Callable[[Tx, Any], None]] = {
    RunStarted: _on_run_started,
    AttachStarted: _on_attach_started,
    TaskChunkLoaded: _on_task_chunk,
    EdgeChunkLoaded: _on_edge_chunk,
    QueuesLoaded: _on_queues_loaded,
    ChunkLoadFailed: _on_chunk_failed,
    TaskStatusesFetched: _on_statuses,
    TriageRequested: _on_triage,
    WorkflowLimitFetched: _on_workflow_limit,
    ArrayLimitFetched: _on_array_limit,
    SyncPartFailed: _on_sync_part_failed,
    BatchQueued: _on_batch_queued,
    BatchQueueFailed: _on_batch_failed,
    ResourcesBound: _on_bound,
    ResourceBindFailed: _on_bind_failed,
    ResourcesEvaluated: _on_evaluated,
    ResourceEvaluationFailed: _on_evaluation_failed,
    HeartbeatAcknowledged: _on_heartbeat,
    HeartbeatFailed: _on_heartbeat_failed,
    StatusUpdateAcknowledged: _on_status_ack,
    StatusUpdateFailed: _on_status_failed,
    TerminateAcknowledged: _on_terminate,
    TerminateFailed: _on_terminate_failed,
    TimerFired: _on_timer,
    DistributorDied: _on_distributor_died,
    StopRequested: _on_stop,
}
