"""The workflow run's life: start, main-loop iterations, drain, stop, finalize (spec §9).

One iteration follows Jobmon's order (spec §9.3): timeout, distributor liveness, copy the
heartbeat's run status, server-stop break, C/H drain, fail-fast, sync due time, schedule
(only in RUNNING), wait for the sync time, sync, ``fail_after_n_executions``, pre-exit
full sync. The next iteration begins as soon as the sync is answered.
"""

from __future__ import annotations

from collections import Counter
from itertools import compress

from swarmfold.core.batching import schedule
from swarmfold.core.commands import Fail, Finish, TerminateTaskInstances, UpdateWorkflowRunStatus
from swarmfold.core.count_column import CountColumn
from swarmfold.core.readiness import count_initial_upstreams_done, initial_fringe
from swarmfold.core.rerooted_column import IntColumn
from swarmfold.core.state import (
    DONE,
    FINALIZING,
    NOWHERE,
    RUNNING,
    SCHEDULING,
    STARTING,
    PendingStatusUpdate,
    PendingTerminate,
    SmallMapTx,
    Tx,
)
from swarmfold.core.status_column import StatusColumn, status_mask
from swarmfold.core.statuses import ACTIVE, RESUME_SIGNALS, RUN_STATUSES, SERVER_STOP
from swarmfold.core.summary import RunSummary
from swarmfold.core.timing import maybe_start_sync, start_sync
from swarmfold.core.topology import TopologySpec, build_topology
from swarmfold.core.transitions import (
    ABORT,
    ENTER_LOOP,
    FAIL,
    FINALIZE,
    FINISH,
    REQUEST_RUNNING,
    advance,
)

TIMEOUT_MESSAGE = (
    "Not all tasks completed within the given workflow timeout length ({timeout} seconds). "
    "Submitted tasks will still run, but the workflow will need to be restarted."
)


#: ``bytes.translate`` table: 1 for an active status letter.
_IS_ACTIVE = status_mask(ACTIVE.__contains__)


def set_up(tx: Tx, at: float, spec: TopologySpec, workflow_limit: int | None = None) -> None:
    """Build the topology and the per-task indexes, then start the run."""
    topo = build_topology(spec)
    tx.topology = topo
    n = topo.size
    statuses = topo.initial_status
    tx.status = StatusColumn.of(statuses).evolver()
    tx.upstream_done = CountColumn.for_upstreams(topo.num_upstreams).evolver()
    tx.place = IntColumn.filled(n, NOWHERE).evolver()
    # Counted in C: each status present (in order of first task), and the active tasks' arrays.
    tx.status_counts = {code: statuses.count(code) for code in dict.fromkeys(statuses)}
    is_active = tx.status.tobytes().translate(_IS_ACTIVE)
    tx.active_by_array = SmallMapTx(Counter(compress(topo.array_of, is_active)))
    tx.array_limits = SmallMapTx(topo.array_limits)
    tx.workflow_limit = topo.workflow_limit if workflow_limit is None else workflow_limit
    tx.batch_size = tx.config.max_batch_size
    tx.num_previously_complete = tx.status_counts.get("D", 0) + tx.done_not_loaded
    count_initial_upstreams_done(tx)
    initial_fringe(tx)
    start_run(tx, at)


def start_run(tx: Tx, at: float) -> None:
    """``_initialize``: ask for RUNNING unless the run is already RUNNING."""
    if tx.run_status == "R":
        begin_main_loop(tx, at)
        return
    advance(tx, REQUEST_RUNNING)
    _request_status(tx, PendingStatusUpdate("R", "start"))


def begin_main_loop(tx: Tx, at: float) -> None:
    advance(tx, ENTER_LOOP)
    tx.set_timing(loop_started_at=at, full_sync_accum=0.0)
    next_iteration(tx, at)


def should_continue(tx: Tx) -> bool:
    """``_should_continue``: not server-stopped, not all final, and work pending."""
    return (
        tx.run_status not in SERVER_STOP
        and not tx.all_tasks_final()
        and tx.has_pending_work()
    )


def next_iteration(tx: Tx, at: float) -> None:
    if should_continue(tx):
        begin_iteration(tx, at)
    else:
        finalize(tx, at)


def begin_iteration(tx: Tx, at: float) -> None:
    """Steps 1-9 of one main-loop iteration."""
    t = tx.timing
    config = tx.config
    assert t.loop_started_at is not None
    if at - t.loop_started_at >= config.timeout:
        timeout = config.timeout
        shown = int(timeout) if float(timeout).is_integer() else timeout
        abort(tx, "E", "timeout", TIMEOUT_MESSAGE.format(timeout=shown), raises=True)
        return
    if tx.distributor_dead:
        message = "Distributor process unexpectedly stopped. Workflow will error."
        if tx.distributor_detail:
            message += f" ({tx.distributor_detail})"
        abort(tx, "E", "distributor_died", message, raises=True)
        return
    tx.run_status = tx.heartbeat_status
    if tx.run_status in SERVER_STOP:
        finalize(tx, at)
        return
    if tx.run_status in RESUME_SIGNALS and not _drain(tx):
        finalize(tx, at)
        return
    if config.fail_fast and tx.status_counts.get("F", 0) > 0:
        abort(tx, "E", "fail_fast", "Fail-fast: stopping after first task failure", raises=False)
        return
    next_hb = t.next_heartbeat_at if t.next_heartbeat_at is not None else at
    if t.heartbeat_in_flight and next_hb <= at:
        # The heartbeat is overdue and unanswered: pace on the retry step, never spin.
        next_hb = at + config.heartbeat_retry_delay
    tx.set_timing(iteration_started_at=at, sync_due_at=max(at, next_hb), loop_phase=SCHEDULING)
    if tx.run_status == "R":
        schedule(tx)
    maybe_start_sync(tx, at)


def _drain(tx: Tx) -> bool:
    """C/H drain: terminate while I/O/R tasks remain. Returns False when the loop must end.

    Jobmon waits only on I/O/R (quirk Q9, kept) but then exits without terminating the
    QUEUED ones; here they get one ``terminate_task_instances`` before the exit (fixed).
    """
    counts = tx.status_counts
    waiting: int = counts.get("I", 0) + counts.get("O", 0) + counts.get("R", 0)
    if waiting or counts.get("Q", 0):
        tx.emit(TerminateTaskInstances, PendingTerminate(), workflow_run_id=tx.workflow_run_id)
    return waiting > 0


def sync_part_done(tx: Tx, at: float) -> None:
    t = tx.timing
    remaining = max(0, t.sync_parts_outstanding - 1)
    tx.set_timing(sync_parts_outstanding=remaining)
    if remaining == 0 and tx.phase == RUNNING:
        after_sync(tx, at)


def after_sync(tx: Tx, at: float) -> None:
    """Steps 12-13: the test hook, then the pre-exit full sync, then the next iteration."""
    if tx.timing.pre_exit_sync:
        tx.set_timing(pre_exit_sync=False)
        next_iteration(tx, at)
        return
    n = tx.config.fail_after_n_executions
    if n is not None and tx.n_executions >= n:
        abort(tx, "E", "fail_after_n_executions",
              f"WorkflowRun asked to fail after {n} executions. Failing now", raises=True)
        return
    if not should_continue(tx) and not tx.all_tasks_final():
        tx.set_timing(pre_exit_sync=True, full_sync_accum=0.0)
        start_sync(tx, at, full=True)
        return
    next_iteration(tx, at)


def finalize(tx: Tx, at: float) -> None:
    """``_finalize`` (spec §9.4): D if all done (quirk Q12, kept), T after C/H, E otherwise."""
    advance(tx, FINALIZE)
    done = tx.status_counts.get("D", 0)
    if done == len(tx.status):
        _request_status(tx, PendingStatusUpdate("D", "finalize", "all tasks done"))
    elif tx.run_status in RESUME_SIGNALS:
        _request_status(tx, PendingStatusUpdate(
            "T", "finalize", f"drained after resume signal {tx.run_status}"))
    elif tx.run_status in SERVER_STOP:
        finish(tx, at, f"the server set the run to {tx.run_status}")
    else:
        failed = tx.status_counts.get("F", 0)
        reason = f"{failed} task(s) failed" if failed else "no runnable work left"
        _request_status(tx, PendingStatusUpdate("E", "finalize", reason))


def abort(tx: Tx, status: str, reason: str, message: str, raises: bool) -> None:
    """``_handle_error``: set the run to ``status``, then end (returning or raising)."""
    advance(tx, ABORT)
    _request_status(tx, PendingStatusUpdate(status, "abort", reason, message, raises))


def stop_requested(tx: Tx, reason: str) -> None:
    """The user interrupted: the run goes to STOPPED and the caller sees an error."""
    if tx.phase in (DONE, FINALIZING):
        return
    abort(tx, "S", "stopped", reason or "stopped by user", raises=True)


def _request_status(tx: Tx, pending: PendingStatusUpdate) -> None:
    tx.emit(UpdateWorkflowRunStatus, pending, workflow_run_id=tx.workflow_run_id, status=pending.status)


def status_update_answered(
    tx: Tx, at: float, pending: PendingStatusUpdate, status: str | None, error: str | None
) -> None:
    """React to the server's answer to ``update_status``."""
    if status is not None and status not in RUN_STATUSES:
        tx.note("unknown_run_status", f"update_status answered unknown status {status!r}")
        status = None
        error = "unknown status"
    if status is not None:
        tx.run_status = status
    if pending.purpose == "start":
        if tx.phase != STARTING:  # stopped while starting: the late answer changes nothing
            return
        if status == "R":
            tx.heartbeat_status = "R"
            begin_main_loop(tx, at)
        else:
            detail = f"server answered {status!r}" if status else f"request failed: {error}"
            abort(tx, "E", "transition_error",
                  f"could not move the run to RUNNING: {detail}", raises=False)
        return
    if status is None:
        tx.note("status_update_failed", f"update_status {pending.status}: {error}")
    if pending.purpose == "finalize":
        reason = pending.reason
        if status != pending.status:
            reason += f"; the server kept {tx.run_status} instead of {pending.status}"
        finish(tx, at, reason)
        return
    if pending.raises:
        fail(tx, at, pending.reason, pending.message)
    else:
        finish(tx, at, f"{pending.reason}: {pending.message}")


def finish(tx: Tx, at: float, reason: str) -> None:
    advance(tx, FINISH)
    tx.summary = build_summary(tx, at, reason)
    tx.emit(Finish, summary=tx.summary)


def fail(tx: Tx, at: float, reason: str, message: str) -> None:
    advance(tx, FAIL)
    tx.summary = build_summary(tx, at, f"{reason}: {message}")
    tx.emit(Fail, reason=reason, message=message, summary=tx.summary)


def build_summary(tx: Tx, at: float, reason: str) -> RunSummary:
    """The result summary: one pass over the tasks, done once per run."""
    by_status: dict[str, tuple[int, ...]] = {}
    if tx.topology is not None:
        # One C-level pass per status present: a byte mask of the column, then compress.
        letters = tx.status.tobytes()
        task_ids = tx.topology.task_ids
        for code in sorted(set(letters.decode("ascii"))):
            by_status[code] = tuple(compress(task_ids, letters.translate(status_mask(code.__eq__))))
    counts = tx.status_counts
    return RunSummary(
        final_status=tx.run_status,
        reason=reason,
        total_tasks=len(tx.status) + tx.done_not_loaded,
        done_count=counts.get("D", 0) + tx.done_not_loaded,
        failed_count=counts.get("F", 0),
        num_previously_complete=tx.num_previously_complete,
        elapsed=at - tx.timing.started_at,
        tasks_by_status=by_status,
    )
