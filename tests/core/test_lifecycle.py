"""The workflow run's life (spec §9): start, main-loop order, drain, stop, finalize, summary.

Each test builds a state, feeds events and asserts the exact commands. Command ids come from
a counter, so they are read from the emitted commands (or zeroed with ``ids0``).
"""

from __future__ import annotations

import pytest

from swarmfold.core import ProtocolViolation, RunSummary, decide, initial_state, is_terminal
from swarmfold.core.commands import (
    BindResources,
    Fail,
    FetchTaskStatuses,
    Finish,
    LogHeartbeat,
    NoteAnomaly,
    QueueBatch,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import (
    AttachStarted,
    BatchQueued,
    DistributorDied,
    HeartbeatAcknowledged,
    ResourcesBound,
    RunStarted,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    StopRequested,
    TerminateAcknowledged,
    TimerFired,
    TriageRequested,
)

from .lifecycle_helpers import (
    QUEUE,
    REQUESTED,
    WF_ID,
    WFR_ID,
    Run,
    answer_sync,
    config,
    ids0,
    kinds,
    of,
    one,
    running,
    start,
    sync_commands,
    task,
    tick,
    topology,
    without_wake,
)

TIMEOUT_25 = (
    "Not all tasks completed within the given workflow timeout length (25 seconds). "
    "Submitted tasks will still run, but the workflow will need to be restarted."
)
DISTRIBUTOR_MESSAGE = "Distributor process unexpectedly stopped. Workflow will error."


def spec3():
    """Tasks 1 and 2 ready at once; 3 waits for 1."""
    return topology(task(1), task(2), task(3, 1))


def ack(run: Run, command: UpdateWorkflowRunStatus, at: float, status: str | None = None):
    return run.feed(StatusUpdateAcknowledged(command.command_id, at, status or command.status))


# --- start (spec §3.3, §9.2) ---------------------------------------------------------------


def test_run_started_in_b_asks_for_running_and_schedules_only_after_the_answer() -> None:
    run, commands = start(spec3(), run_status="B")
    assert commands == [UpdateWorkflowRunStatus(1, WFR_ID, "R"), WakeAt(2, 10.0)]
    assert run.state.phase == "starting"
    assert run.state.run_status == "B"
    assert run.state.ready_count == 2  # the fringe is built, but nothing is scheduled yet

    commands = ack(run, commands[0], 0.5, "R")
    assert commands == [BindResources(3, QUEUE, 0, REQUESTED)]
    assert run.state.phase == "running"
    assert run.state.run_status == run.state.heartbeat_status == "R"
    assert run.timing.loop_started_at == 0.5

    commands = run.feed(ResourcesBound(3, 0.6, 100))
    assert commands == [QueueBatch(4, 1, (1, 2), 100, WFR_ID, 0)]


def test_heartbeat_before_the_start_answer_reports_the_initial_status() -> None:
    run, commands = start(spec3(), run_status="B")
    assert run.feed(TimerFired(10.0)) == [LogHeartbeat(3, WFR_ID, "B", 30.0)]
    assert run.state.phase == "starting"


@pytest.mark.parametrize("answer", ["C", "B", "E"])
def test_start_refused_errors_the_run_then_finishes_with_transition_error(answer: str) -> None:
    run, commands = start(spec3(), run_status="B")
    commands = ack(run, commands[0], 0.5, answer)
    assert commands == [UpdateWorkflowRunStatus(3, WFR_ID, "E")]  # no scheduling at all
    commands = ack(run, commands[0], 0.7)
    (finish,) = commands
    assert isinstance(finish, Finish)
    assert finish.summary.final_status == "E"
    assert finish.summary.reason == (
        f"transition_error: could not move the run to RUNNING: server answered {answer!r}"
    )
    assert is_terminal(run.state)
    assert not of(run.history, BindResources) and not of(run.history, QueueBatch)


def test_start_update_failure_is_a_transition_error_too() -> None:
    run, commands = start(spec3(), run_status="B")
    commands = run.feed(StatusUpdateFailed(commands[0].command_id, 0.5, "HTTP 500"))
    assert commands == [UpdateWorkflowRunStatus(3, WFR_ID, "E")]
    (finish,) = ack(run, commands[0], 0.6)
    assert finish.summary.reason == (
        "transition_error: could not move the run to RUNNING: request failed: HTTP 500"
    )


def test_run_started_in_r_skips_the_status_update() -> None:
    run, commands = start(spec3(), run_status="R")
    assert commands == [BindResources(1, QUEUE, 0, REQUESTED), WakeAt(2, 10.0)]
    assert run.state.phase == "running"
    assert run.timing.loop_started_at == 0.0
    assert not of(run.history, UpdateWorkflowRunStatus)


# --- main-loop order (spec §9.3) -------------------------------------------------------------


def _started_at_5(cfg: SwarmConfig) -> Run:
    """Started in B at 0; the server accepts R at 5 (the loop clock starts then)."""
    run, commands = start(spec3(), cfg, run_status="B")
    commands = ack(run, commands[0], 5.0, "R")
    commands = run.feed(ResourcesBound(one(commands, BindResources).command_id, 5.0, 100))
    assert run.feed(BatchQueued(one(commands, QueueBatch).command_id, 5.0, {"Q": (1, 2)})) == []
    return run


def test_timeout_is_checked_at_iteration_start_from_the_loop_start() -> None:
    run = _started_at_5(config(timeout=25))
    _, out = tick(run, 10.0, {"R": (1, 2)})
    assert without_wake(out) == []  # 10 - 5 < 25
    _, out = tick(run, 20.0)
    assert without_wake(out) == []  # 15 < 25
    # At 30 the sync is sent as usual: the timeout is only checked when an iteration starts.
    timer, out = tick(run, 30.0)
    assert kinds(timer) == [
        "LogHeartbeat",
        "RequestTriage",
        "FetchTaskStatuses",
        "FetchWorkflowLimit",
        "FetchArrayLimit",
    ]
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "E")]  # 30 - 5 >= 25
    (fail,) = ack(run, one(out, UpdateWorkflowRunStatus), 30.5)
    assert ids0([fail]) == [
        Fail(
            0,
            "timeout",
            TIMEOUT_25,
            RunSummary(
                final_status="E",
                reason=f"timeout: {TIMEOUT_25}",
                total_tasks=3,
                done_count=0,
                failed_count=0,
                num_previously_complete=0,
                elapsed=30.5,
                tasks_by_status={"G": (3,), "R": (1, 2)},
            ),
        )
    ]


def test_timeout_message_with_the_default_timeout_matches_jobmon() -> None:
    run = running(spec3(), SwarmConfig(heartbeat_interval=10.0))
    _, out = tick(run, 36000.0)
    (fail,) = ack(run, one(out, UpdateWorkflowRunStatus), 36000.5)
    assert fail.message == (
        "Not all tasks completed within the given workflow timeout length (36000 seconds). "
        "Submitted tasks will still run, but the workflow will need to be restarted."
    )


def test_timeout_is_checked_before_the_distributor() -> None:
    run = _started_at_5(config(timeout=25))
    tick(run, 10.0)
    tick(run, 20.0)
    assert run.feed(DistributorDied(25.0)) == []
    _, out = tick(run, 30.0)
    (fail,) = ack(run, one(out, UpdateWorkflowRunStatus), 30.5)
    assert (fail.reason, fail.message) == ("timeout", TIMEOUT_25)


def test_distributor_death_errors_the_run_at_the_next_iteration() -> None:
    run = running(spec3())
    assert run.feed(DistributorDied(3.0, "exit 1")) == []
    timer, out = tick(run, 10.0)
    assert not of(timer, UpdateWorkflowRunStatus)  # the sync is still sent
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "E")]
    (fail,) = ack(run, one(out, UpdateWorkflowRunStatus), 10.5)
    assert isinstance(fail, Fail)
    assert (fail.reason, fail.message) == ("distributor_died", DISTRIBUTOR_MESSAGE + " (exit 1)")
    assert fail.summary.final_status == "E"


@pytest.mark.parametrize("server_status", ["E", "T", "S"])
def test_server_stop_from_heartbeat_breaks_at_next_iteration_without_update(server_status: str) -> None:
    run = running(spec3())
    timer = run.feed(TimerFired(10.0))
    hb = one(timer, LogHeartbeat)
    # The heartbeat's answer only records the status; the loop reacts at iteration start.
    assert without_wake(run.feed(HeartbeatAcknowledged(hb.command_id, 10.0, server_status))) == []
    assert run.state.heartbeat_status == server_status and run.state.run_status == "R"
    out = answer_sync(run, timer, 10.5, {"R": (1,)})
    (finish,) = out
    assert isinstance(finish, Finish)
    assert finish.summary.final_status == server_status
    assert finish.summary.reason == f"the server set the run to {server_status}"
    assert not of(run.history, UpdateWorkflowRunStatus)


def test_server_stop_seen_after_the_sync_waits_for_the_next_iteration() -> None:
    run = running(spec3())
    timer = run.feed(TimerFired(10.0))
    answer_sync(run, timer, 10.0)  # iteration 2 starts while the heartbeat is unanswered
    hb = one(timer, LogHeartbeat)
    assert without_wake(run.feed(HeartbeatAcknowledged(hb.command_id, 10.2, "T"))) == []
    assert not is_terminal(run.state)
    # The sync was due at 20 (from the heartbeat sent at 10); the next heartbeat at 20.2.
    timer = run.feed(TimerFired(20.0))
    assert ids0(timer) == [*ids0(sync_commands("T0", 0)), WakeAt(0, 20.2)]
    out = answer_sync(run, timer, 20.0)
    assert kinds(out) == ["Finish"]
    assert out[0].summary.final_status == "T"


def test_server_stop_breaks_before_fail_fast() -> None:
    run = running(spec3(), config(fail_fast=True))
    _, out = tick(run, 10.0, {"F": (2,), "R": (1,)}, heartbeat="T")
    assert kinds(without_wake(out)) == ["Finish"]
    assert one(out, Finish).summary.final_status == "T"
    assert not of(run.history, UpdateWorkflowRunStatus)


# --- C/H drain (spec §9.3a, quirks Q9-Q11) -----------------------------------------------


def test_cold_resume_drains_while_i_o_r_tasks_remain_then_terminates_the_run() -> None:
    run = running(spec3())
    _, out = tick(run, 10.0, {"R": (1,), "I": (2,)}, heartbeat="C")
    assert ids0(without_wake(out)) == [TerminateTaskInstances(0, WFR_ID)]
    assert run.state.run_status == "C"
    assert run.feed(TerminateAcknowledged(one(out, TerminateTaskInstances).command_id, 10.1, 2)) == []

    # 1 finishes: 3 becomes ready but nothing is scheduled in C; 2 (I) is still waited on.
    timer, out = tick(run, 20.0, {"D": (1,)}, heartbeat="C")
    assert one(timer, LogHeartbeat).status == "C"  # Q11: the heartbeat keeps sending C
    assert ids0(without_wake(out)) == [TerminateTaskInstances(0, WFR_ID)]
    assert run.state.ready_count == 1

    # 2 is killed: nothing in I/O/R any more -> the loop breaks and asks for T.
    _, out = tick(run, 30.0, {"F": (2,)}, heartbeat="C")
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "T")]
    (finish,) = ack(run, one(out, UpdateWorkflowRunStatus), 30.5)
    assert finish.summary.final_status == "T"
    assert finish.summary.reason == "drained after resume signal C"
    assert finish.summary.tasks_by_status == {"D": (1,), "F": (2,), "G": (3,)}
    assert len(of(run.history, TerminateTaskInstances)) == 2
    assert len(of(run.history, QueueBatch)) == 1  # only the first batch, before C


def test_resume_with_only_queued_tasks_terminates_once_then_finalizes() -> None:
    """Q9: Jobmon ignores Q and exits without terminating; we send one terminate first."""
    run = running(spec3())
    _, out = tick(run, 10.0, {}, heartbeat="H")  # 1 and 2 are still Q
    assert ids0(without_wake(out)) == [
        TerminateTaskInstances(0, WFR_ID),
        UpdateWorkflowRunStatus(0, WFR_ID, "T"),
    ]
    (finish,) = ack(run, one(out, UpdateWorkflowRunStatus), 10.5)
    assert finish.summary.final_status == "T"
    assert finish.summary.reason == "drained after resume signal H"


def test_resume_with_only_ready_tasks_finalizes_without_terminate() -> None:
    run, commands = start(spec3(), run_status="R")  # batch 1,2 still unanswered
    run.feed(ResourcesBound(1, 0.1, 100))
    batch = one(run.history, QueueBatch)
    run.feed(BatchQueued(batch.command_id, 0.2, {"G": (1, 2)}))  # server left them G
    _, out = tick(run, 10.0, {}, heartbeat="C")
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "T")]


def test_drain_comes_before_fail_fast() -> None:
    run = running(spec3(), config(fail_fast=True))
    _, out = tick(run, 10.0, {"R": (1,), "F": (2,)}, heartbeat="C")
    assert ids0(without_wake(out)) == [
        TerminateTaskInstances(0, WFR_ID),
        UpdateWorkflowRunStatus(0, WFR_ID, "E"),
    ]


# --- fail-fast (spec §4) ----------------------------------------------------------------------


def test_fail_fast_errors_the_run_at_the_next_iteration_start() -> None:
    run = running(spec3(), config(fail_fast=True))
    _, out = tick(run, 10.0, {"F": (2,), "R": (1,)})
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "E")]
    (finish,) = ack(run, one(out, UpdateWorkflowRunStatus), 10.5)
    assert isinstance(finish, Finish)  # returned, not raised
    assert finish.summary.final_status == "E"
    assert finish.summary.reason.startswith("fail_fast")
    assert finish.summary.reason == "fail_fast: Fail-fast: stopping after first task failure"


def test_fail_fast_ignores_failures_until_the_iteration_starts() -> None:
    run, commands = start(spec3(), config(fail_fast=True), run_status="R")
    out = run.feed(ResourcesBound(1, 0.1, 100))
    # The batch answer says 2 is already F: nothing happens before the next iteration.
    assert run.feed(BatchQueued(one(out, QueueBatch).command_id, 0.2, {"Q": (1,), "F": (2,)})) == []
    _, out = tick(run, 10.0, {})
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "E")]


def test_without_fail_fast_a_failure_does_not_stop_the_loop() -> None:
    run = running(spec3())
    _, out = tick(run, 10.0, {"F": (2,), "D": (1,)})
    assert ids0(without_wake(out)) == [QueueBatch(0, 1, (3,), 100, WFR_ID, 0)]


# --- fail_after_n_executions (spec §10) --------------------------------------------------------


def test_fail_after_n_executions_is_checked_after_the_sync_with_ge() -> None:
    run = running(spec3(), config(fail_after_n_executions=2))
    _, out = tick(run, 10.0, {"D": (1,)})
    assert ids0(without_wake(out)) == [QueueBatch(0, 1, (3,), 100, WFR_ID, 0)]
    assert run.state.n_executions == 1
    run.feed(BatchQueued(one(out, QueueBatch).command_id, 10.1, {"Q": (3,)}))
    _, out = tick(run, 20.0, {"D": (2, 3)})  # 3 >= 2
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "E")]
    (fail,) = ack(run, one(out, UpdateWorkflowRunStatus), 20.5)
    assert isinstance(fail, Fail)
    assert fail.reason == "fail_after_n_executions"
    assert fail.message == "WorkflowRun asked to fail after 2 executions. Failing now"


def test_fail_after_n_executions_waits_for_the_sync_even_if_a_batch_reached_n() -> None:
    run, commands = start(spec3(), config(fail_after_n_executions=1), run_status="R")
    out = run.feed(ResourcesBound(1, 0.1, 100))
    assert run.feed(BatchQueued(one(out, QueueBatch).command_id, 0.2, {"D": (1,), "Q": (2,)})) == []
    assert run.state.n_executions == 1
    timer, out = tick(run, 10.0, {})
    assert of(timer, FetchTaskStatuses)
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "E")]


# --- finalize (spec §9.4) ----------------------------------------------------------------------


def test_all_done_finalizes_with_d() -> None:
    run = running(spec3())
    _, out = tick(run, 10.0, {"D": (1, 2)})
    run.feed(BatchQueued(one(out, QueueBatch).command_id, 10.1, {"Q": (3,)}))
    _, out = tick(run, 20.0, {"D": (3,)})
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "D")]
    assert run.state.phase == "finalizing"
    assert ids0(ack(run, one(out, UpdateWorkflowRunStatus), 21.0)) == [
        Finish(
            0,
            RunSummary(
                final_status="D",
                reason="all tasks done",
                total_tasks=3,
                done_count=3,
                failed_count=0,
                num_previously_complete=0,
                elapsed=21.0,
                tasks_by_status={"D": (1, 2, 3)},
            ),
        )
    ]


def test_a_failed_task_finalizes_with_e_after_a_pre_exit_full_sync() -> None:
    run = running(spec3())
    _, out = tick(run, 10.0, {"F": (1,), "D": (2,)})  # 3 can never run
    out = without_wake(out)
    assert out == sync_commands(None, out[0].command_id)  # pre-exit full sync
    out = answer_sync(run, out, 10.2, {})
    assert ids0(out) == [UpdateWorkflowRunStatus(0, WFR_ID, "E")]
    (finish,) = ack(run, out[0], 10.5)
    assert finish.summary.final_status == "E"
    assert finish.summary.reason == "1 task(s) failed"
    assert (finish.summary.done_count, finish.summary.failed_count) == (1, 1)


def test_all_done_while_the_server_holds_c_reports_c() -> None:
    """Q12 kept: D is requested first; the server refuses and the result says C."""
    run = running(spec3())
    _, out = tick(run, 10.0, {"D": (1, 2)})
    run.feed(BatchQueued(one(out, QueueBatch).command_id, 10.1, {"Q": (3,)}))
    _, out = tick(run, 20.0, {"D": (3,)}, heartbeat="C")
    assert ids0(without_wake(out)) == [UpdateWorkflowRunStatus(0, WFR_ID, "D")]
    (finish,) = ack(run, one(out, UpdateWorkflowRunStatus), 20.5, "C")
    assert isinstance(finish, Finish)
    assert finish.summary.final_status == "C"
    assert finish.summary.reason == "all tasks done; the server kept C instead of D"


def test_all_done_at_start_finalizes_at_once() -> None:
    run, commands = start(topology(task(1, status="D"), task(2, 1, status="D")), run_status="R")
    assert ids0(without_wake(commands)) == [UpdateWorkflowRunStatus(0, WFR_ID, "D")]
    (finish,) = ack(run, commands[0], 0.1)
    assert finish.summary.num_previously_complete == 2


# --- stop (spec §9.5) ---------------------------------------------------------------------------


def test_stop_requested_sets_s_then_fails() -> None:
    run = running(spec3())
    out = run.feed(StopRequested(3.0, "SIGINT"))
    assert ids0(out) == [UpdateWorkflowRunStatus(0, WFR_ID, "S")]
    assert run.state.phase == "finalizing"
    assert run.feed(StopRequested(3.1, "SIGINT again")) == []
    (fail,) = ack(run, out[0], 3.5)
    assert isinstance(fail, Fail)
    assert (fail.reason, fail.message) == ("stopped", "SIGINT")
    assert fail.summary.final_status == "S"


def test_stop_requested_mid_sync_ends_the_run_without_a_new_iteration() -> None:
    run = running(spec3())
    timer = run.feed(TimerFired(10.0))
    out = run.feed(StopRequested(10.1))
    assert ids0(out) == [UpdateWorkflowRunStatus(0, WFR_ID, "S")]
    assert answer_sync(run, timer, 10.2, {"D": (1,)}) == []  # no iteration, no QueueBatch
    (fail,) = ack(run, out[0], 10.5)
    assert (fail.reason, fail.message) == ("stopped", "stopped by user")


def test_start_answer_after_stop_does_not_start_the_loop() -> None:
    run, commands = start(spec3(), run_status="B")
    stop = run.feed(StopRequested(0.1))
    assert ids0(stop) == [UpdateWorkflowRunStatus(0, WFR_ID, "S")]
    assert ack(run, commands[0], 0.2, "R") == []
    assert run.state.phase == "finalizing"
    (fail,) = ack(run, stop[0], 0.3)
    assert fail.reason == "stopped"


# --- events after the end, protocol ------------------------------------------------------------


def test_events_after_finish_are_ignored() -> None:
    run = running(spec3())
    (stop,) = run.feed(StopRequested(1.0))
    ack(run, stop, 1.1)
    final = run.state
    assert is_terminal(final)
    for event in (
        TimerFired(50.0),
        DistributorDied(51.0),
        StopRequested(52.0),
        StatusUpdateAcknowledged(stop.command_id, 53.0, "S"),
        TriageRequested(999, 54.0),
    ):
        decision = decide(final, event)
        assert decision.commands == ()
        assert decision.state is final


@pytest.mark.parametrize("event", [TimerFired(0.0), StopRequested(0.0), TriageRequested(1, 0.0)])
def test_event_before_run_started_is_a_protocol_violation(event) -> None:
    with pytest.raises(ProtocolViolation, match="before RunStarted"):
        decide(initial_state(), event)


def test_second_start_is_a_protocol_violation() -> None:
    run, _ = start(spec3())
    with pytest.raises(ProtocolViolation, match="RunStarted after the run already started"):
        run.feed(RunStarted(1.0, WF_ID, WFR_ID, spec3()))
    with pytest.raises(ProtocolViolation, match="AttachStarted after the run already started"):
        run.feed(AttachStarted(1.0, WF_ID, WFR_ID, dag_id=1, workflow_limit=10))


def test_answer_of_the_wrong_kind_is_a_protocol_violation() -> None:
    run, commands = start(spec3(), run_status="B")
    update = one(commands, UpdateWorkflowRunStatus)
    with pytest.raises(ProtocolViolation, match=f"answers command {update.command_id}"):
        run.feed(HeartbeatAcknowledged(update.command_id, 0.1, "R"))


def test_answer_to_unknown_command_is_noted_and_otherwise_ignored() -> None:
    run = running(spec3())
    before = run.state
    out = run.feed(TriageRequested(999, 1.0))
    assert out == [
        NoteAnomaly(
            before.next_command_id,
            "unexpected_answer",
            "TriageRequested for command 999, which is not awaiting an answer",
        )
    ]
    assert run.state.anomalies == before.anomalies + 1
    assert run.state.pending == before.pending
    assert run.state.status == before.status


def test_second_answer_to_the_same_command_is_unexpected() -> None:
    run, commands = start(spec3(), run_status="B")
    ack(run, commands[0], 0.5, "R")
    out = ack(run, commands[0], 0.6, "R")
    assert kinds(out) == ["NoteAnomaly"] and out[0].kind == "unexpected_answer"
    assert run.state.phase == "running"


# --- summary ----------------------------------------------------------------------------------


def test_summary_counts_statuses_and_previously_complete_tasks() -> None:
    spec = topology(task(1, status="D"), task(2, 1), task(3), task(4, 3), task(5, status="D"))
    run, commands = start(spec, run_status="R", at=100.0)
    assert run.state.num_previously_complete == 2
    out = run.feed(ResourcesBound(one(commands, BindResources).command_id, 100.0, 7))
    assert ids0(out) == [QueueBatch(0, 1, (2, 3), 7, WFR_ID, 0)]
    run.feed(BatchQueued(out[0].command_id, 100.0, {"Q": (2, 3)}))
    _, out = tick(run, 110.0, {"D": (2,), "F": (3,)})  # 4 can never run
    out = answer_sync(run, out, 110.0, {})  # pre-exit full sync
    (finish,) = ack(run, one(out, UpdateWorkflowRunStatus), 112.5)
    assert finish.summary == RunSummary(
        final_status="E",
        reason="1 task(s) failed",
        total_tasks=5,
        done_count=3,
        failed_count=1,
        num_previously_complete=2,
        elapsed=12.5,
        tasks_by_status={"D": (1, 2, 5), "F": (3,), "G": (4,)},
    )
    assert finish.summary.task_final_statuses() == {1: "D", 2: "D", 3: "F", 4: "G", 5: "D"}
    assert run.state.summary == finish.summary


def test_command_ids_increase_over_a_whole_run() -> None:
    run = running(spec3())
    tick(run, 10.0, {"D": (1, 2)})
    ids = [c.command_id for c in run.history]
    assert ids == list(range(1, len(ids) + 1))
