"""Heartbeat, sync cadence and timers (spec §7, §8, §9.3 steps 8-11).

Time only arrives as ``event.at``. Deadlines are checked on every event, so a deadline
that passed while other events were being handled is honoured as soon as the core hears
of the time. The core asks for the next deadline with ``WakeAt``.
"""

from __future__ import annotations

from swarmfold.core.commands import (
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LogHeartbeat,
    RequestTriage,
    WakeAt,
)
from swarmfold.core.state import (
    DONE,
    NEW,
    RUNNING,
    SCHEDULING,
    SYNCING,
    WAITING_SYNC,
    PendingHeartbeat,
    PendingSyncPart,
    Tx,
)
from swarmfold.core.statuses import RUN_STATUSES


def fire_due_timers(tx: Tx, at: float) -> None:
    """Send the heartbeat if due; start the sync if due."""
    if tx.phase in (NEW, DONE):
        return
    t = tx.timing
    if not t.heartbeat_in_flight and t.next_heartbeat_at is not None and at >= t.next_heartbeat_at:
        send_heartbeat(tx, at)
    maybe_start_sync(tx, at)


def send_heartbeat(tx: Tx, at: float) -> None:
    tx.emit(
        LogHeartbeat,
        PendingHeartbeat(),
        workflow_run_id=tx.workflow_run_id,
        status=tx.heartbeat_status,
        next_report_increment=tx.config.next_report_increment,
    )
    # Pace on the heartbeat just sent, so a slow answer cannot make the loop spin.
    tx.set_timing(heartbeat_in_flight=True, next_heartbeat_at=at + tx.config.heartbeat_interval)


def heartbeat_answered(tx: Tx, at: float, status: str | None, error: str | None) -> None:
    """Adopt the server's run status; schedule the next heartbeat.

    A failed heartbeat is retried after ``max(0.1, interval/2)`` (Jobmon's poll step), and
    the main loop paces on that retry instead of spinning (quirk Q6, fixed).
    """
    if status is None:
        tx.note("heartbeat_failed", error or "")
        tx.set_timing(heartbeat_in_flight=False, next_heartbeat_at=at + tx.config.heartbeat_retry_delay)
        return
    if status in RUN_STATUSES:
        tx.heartbeat_status = status
    else:
        tx.note("unknown_run_status", f"log_heartbeat answered unknown status {status!r}; ignored")
    tx.set_timing(heartbeat_in_flight=False, next_heartbeat_at=at + tx.config.heartbeat_interval)


def maybe_start_sync(tx: Tx, at: float) -> None:
    """Sync once this iteration's batches are answered and the sync time has come."""
    if tx.phase != RUNNING:
        return
    t = tx.timing
    if t.loop_phase == SCHEDULING and t.batches_outstanding == 0:
        tx.set_timing(loop_phase=WAITING_SYNC)
        t = tx.timing
    if t.loop_phase == WAITING_SYNC and t.sync_due_at is not None and at >= t.sync_due_at:
        start_sync(tx, at)


def start_sync(tx: Tx, at: float, full: bool | None = None) -> None:
    """Send the four sync parts (spec §7); full or incremental by the wedged-sync rule."""
    t = tx.timing
    accum = t.full_sync_accum
    if full is None:
        if accum > tx.config.wedged_sync_interval:
            accum, full = 0.0, True
        else:
            accum, full = accum + (at - t.iteration_started_at), False
    since = None if full else t.last_sync
    tx.emit(RequestTriage, PendingSyncPart("triage"), workflow_run_id=tx.workflow_run_id)
    tx.emit(FetchTaskStatuses, PendingSyncPart("statuses"), workflow_id=tx.workflow_id, since=since)
    tx.emit(FetchWorkflowLimit, PendingSyncPart("workflow_limit"), workflow_id=tx.workflow_id)
    arrays = tx.topo.array_ids
    for array_id in arrays:
        tx.emit(FetchArrayLimit, PendingSyncPart("array_limit"), array_id=array_id)
    tx.set_timing(
        loop_phase=SYNCING,
        sync_parts_outstanding=3 + len(arrays),
        sync_is_full=bool(full),
        full_sync_accum=accum,
        sync_due_at=None,
    )


def arm_wake(tx: Tx) -> None:
    """Ask to be woken at the earliest deadline, unless already asked."""
    if tx.phase in (NEW, DONE):
        return
    t = tx.timing
    deadlines = []
    if not t.heartbeat_in_flight and t.next_heartbeat_at is not None:
        deadlines.append(t.next_heartbeat_at)
    if tx.phase == RUNNING and t.loop_phase == WAITING_SYNC and t.sync_due_at is not None:
        deadlines.append(t.sync_due_at)
    if not deadlines:
        return
    earliest = min(deadlines)
    if earliest != t.wake_at:
        tx.emit(WakeAt, at=earliest)
        tx.set_timing(wake_at=earliest)
