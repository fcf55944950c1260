"""Heartbeat cadence, wake-ups and sync pacing (spec §7, §8, §9.3 steps 8-13)."""

from __future__ import annotations

import pytest

from swarmfold.core.commands import (
    FetchTaskStatuses,
    LogHeartbeat,
    NoteAnomaly,
    QueueBatch,
    WakeAt,
)
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    ResourcesBound,
    SyncPartFailed,
    TaskStatusesFetched,
    TimerFired,
    TriageRequested,
    WorkflowLimitFetched,
)

from .lifecycle_helpers import (
    WFR_ID,
    Script,
    answer_sync,
    config,
    drive,
    ids0,
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

SYNC_KINDS = ["RequestTriage", "FetchTaskStatuses", "FetchWorkflowLimit", "FetchArrayLimit"]


def spec3():
    return topology(task(1), task(2), task(3, 1))


def forever_running():
    """One task hot-resumed in R that never finishes: the loop runs until the timeout."""
    return topology(task(1, status="R"))


# --- heartbeat (spec §8) ---------------------------------------------------------------------


def test_first_heartbeat_one_interval_after_start_then_one_interval_after_each_answer() -> None:
    run, commands = start(spec3(), config(heartbeat_interval=10.0, report_by_buffer=3.1), run_status="R")
    assert commands[-1] == WakeAt(2, 10.0)
    assert not of(run.feed(TimerFired(9.99)), LogHeartbeat)
    timer = run.feed(TimerFired(10.0))
    hb = one(timer, LogHeartbeat)
    assert timer[0] == hb  # the heartbeat goes out before the sync
    assert hb == LogHeartbeat(hb.command_id, WFR_ID, "R", 31.0)  # 10 * 3.1
    assert run.timing.heartbeat_in_flight
    # No second heartbeat while one is in flight, however late the answer.
    assert not of(run.feed(TimerFired(25.0)), LogHeartbeat)
    out = run.feed(HeartbeatAcknowledged(hb.command_id, 26.0, "R"))
    assert run.timing.next_heartbeat_at == 36.0
    assert WakeAt(out[-1].command_id, 36.0) in out
    assert not of(run.feed(TimerFired(35.9)), LogHeartbeat)
    assert of(run.feed(TimerFired(36.0)), LogHeartbeat)


def test_heartbeat_reports_the_status_the_server_answered() -> None:
    run = running(spec3())
    tick(run, 10.0, heartbeat="H")
    timer = run.feed(TimerFired(20.0))
    assert one(timer, LogHeartbeat).status == "H"


def test_unknown_run_status_in_heartbeat_answer_is_noted_and_ignored() -> None:
    run = running(spec3())
    timer = run.feed(TimerFired(10.0))
    out = run.feed(HeartbeatAcknowledged(one(timer, LogHeartbeat).command_id, 10.0, "Z"))
    assert [(c.kind, c.detail) for c in of(out, NoteAnomaly)] == [
        ("unknown_run_status", "log_heartbeat answered unknown status 'Z'; ignored")
    ]
    assert run.state.heartbeat_status == "R"


# --- wake-ups ----------------------------------------------------------------------------------


def test_wake_at_names_the_earliest_deadline_once() -> None:
    run, commands = start(spec3(), run_status="R")
    assert commands[-1] == WakeAt(2, 10.0)
    # The sync is due at the heartbeat time too: same deadline, no new WakeAt.
    out = run.feed(ResourcesBound(1, 0.1, 100))
    assert out == [QueueBatch(3, 1, (1, 2), 100, WFR_ID, 0)]
    assert run.feed(BatchQueued(3, 0.2, {"Q": (1, 2)})) == []
    assert run.timing.sync_due_at == 10.0
    # The timer at 10: heartbeat + sync; nothing to wake for while both are in flight.
    timer = run.feed(TimerFired(10.0))
    assert ids0(timer) == ids0([LogHeartbeat(0, WFR_ID, "R", 30.0), *sync_commands("T0", 0)])
    # The sync is answered first: the next one is due 10 s after the heartbeat was sent.
    out = answer_sync(run, timer, 10.0)
    assert ids0(out) == [WakeAt(0, 20.0)]
    # The heartbeat answer moves the heartbeat to 23; the earliest deadline stays 20.
    assert run.feed(HeartbeatAcknowledged(timer[0].command_id, 13.0, "R")) == []
    timer = run.feed(TimerFired(20.0))
    # The sync goes out alone (the heartbeat is not due before 23), then a wake-up for 23.
    assert ids0(timer) == [*ids0(sync_commands("T0", 0)), WakeAt(0, 23.0)]


def test_timer_fired_early_changes_nothing_but_rearms() -> None:
    run = running(spec3())
    out = run.feed(TimerFired(5.0))
    assert out == [WakeAt(out[0].command_id, 10.0)]
    assert run.feed(TimerFired(6.0)) == [WakeAt(out[0].command_id + 1, 10.0)]


# --- failed heartbeats (quirk Q6) ------------------------------------------------------------


@pytest.mark.parametrize(("interval", "retry"), [(10.0, 5.0), (1.0, 0.5), (0.1, 0.1), (0.15, 0.1)])
def test_failed_heartbeat_is_retried_after_max_tenth_second_or_half_interval(
    interval: float, retry: float
) -> None:
    run, commands = start(spec3(), config(heartbeat_interval=interval), run_status="R")
    timer = run.feed(TimerFired(interval))
    hb = one(timer, LogHeartbeat)
    out = run.feed(HeartbeatFailed(hb.command_id, interval, "HTTP 503"))
    assert ids0(out) == [NoteAnomaly(0, "heartbeat_failed", "HTTP 503"), WakeAt(0, interval + retry)]
    assert run.timing.next_heartbeat_at == interval + retry
    assert not of(run.feed(TimerFired(interval + retry * 0.99)), LogHeartbeat)
    retried = run.feed(TimerFired(interval + retry))
    assert ids0(of(retried, LogHeartbeat)) == [LogHeartbeat(0, WFR_ID, "R", interval * 3.0)]


def _sync_times(emitted):
    return [at for at, c in emitted if isinstance(c, FetchTaskStatuses)]


def test_failing_heartbeats_pace_the_loop_at_the_retry_delay_instead_of_spinning() -> None:
    """Q6 fixed: Jobmon's loop runs back-to-back syncs while heartbeats fail."""
    cfg = config(heartbeat_interval=10.0)
    run, commands = start(forever_running(), cfg, run_status="R")
    emitted = drive(run, commands, Script(heartbeat_fails=True).answer, now=0.0, until=100.0)
    assert _sync_times(emitted) == [10.0 + 5.0 * k for k in range(19)]  # 10, 15, ..., 100
    heartbeats = [at for at, c in emitted if isinstance(c, LogHeartbeat)]
    assert heartbeats == _sync_times(emitted)

    # With healthy heartbeats: one sync per interval.
    run, commands = start(forever_running(), cfg, run_status="R")
    emitted = drive(run, commands, Script().answer, now=0.0, until=100.0)
    assert _sync_times(emitted) == [10.0 * k for k in range(1, 11)]


# --- sync contents (spec §7) -----------------------------------------------------------------


def test_sync_asks_triage_statuses_since_last_sync_limits_and_every_array_limit() -> None:
    spec = topology(task(1, array=3), task(2, array=1), arrays=(3, 1))
    run = running(spec, server_time="2026-01-01 00:00:00")
    timer = run.feed(TimerFired(10.0))
    hb = one(timer, LogHeartbeat)
    # First sync is incremental, from the server time given at start.
    assert timer == [hb, *sync_commands("2026-01-01 00:00:00", hb.command_id + 1, arrays=(1, 3))]
    assert run.timing.sync_parts_outstanding == 5


def test_last_sync_follows_the_status_answer_and_survives_a_failed_fetch() -> None:
    run = running(spec3())
    timer, _ = tick(run, 10.0, server_time="2026-01-01 00:00:10")
    assert one(timer, FetchTaskStatuses).since == "T0"
    assert run.timing.last_sync == "2026-01-01 00:00:10"

    timer = run.feed(TimerFired(20.0))
    assert one(timer, FetchTaskStatuses).since == "2026-01-01 00:00:10"
    fetch = one(timer, FetchTaskStatuses)
    out = run.feed(SyncPartFailed(fetch.command_id, 20.0, "HTTP 502"))
    assert ids0(out) == [NoteAnomaly(0, "sync_part_failed", "statuses: HTTP 502")]
    answer_sync(run, [c for c in timer if c != fetch], 20.0)
    assert run.timing.last_sync == "2026-01-01 00:00:10"
    assert run.timing.sync_parts_outstanding == 0

    timer = run.feed(TimerFired(30.0))
    assert one(timer, FetchTaskStatuses).since == "2026-01-01 00:00:10"  # no gap


def test_a_status_answer_without_time_keeps_last_sync() -> None:
    run = running(spec3())
    tick(run, 10.0, server_time=None)
    assert run.timing.last_sync == "T0"


def test_limits_from_the_sync_are_applied() -> None:
    run = running(spec3())
    timer = run.feed(TimerFired(10.0))
    answer_sync(run, timer, 10.0, workflow_limit=9, array_limit=4)
    assert (run.state.workflow_limit, dict(run.state.array_limits)) == (9, {1: 4})


def test_the_next_iteration_waits_for_every_sync_part() -> None:
    run = running(spec3())
    timer = run.feed(TimerFired(10.0))
    parts = timer[1:]
    assert [type(c).__name__ for c in parts] == SYNC_KINDS
    events = {
        "RequestTriage": lambda c: TriageRequested(c.command_id, 10.1),
        "FetchTaskStatuses": lambda c: TaskStatusesFetched(c.command_id, 10.2, {"D": (1,)}, "S1"),
        "FetchWorkflowLimit": lambda c: WorkflowLimitFetched(c.command_id, 10.3, 100),
        "FetchArrayLimit": lambda c: ArrayLimitFetched(c.command_id, 10.4, 1, 100),
    }
    # Statuses arrive first and make 3 ready, but nothing is scheduled before the last part.
    order = [parts[1], parts[0], parts[2], parts[3]]
    for c in order[:-1]:
        assert run.feed(events[type(c).__name__](c)) == []
        assert run.timing.loop_phase == "syncing"
    out = run.feed(events["FetchArrayLimit"](order[-1]))
    assert ids0(out) == [QueueBatch(0, 1, (3,), 100, WFR_ID, 0)]
    assert run.timing.iteration_started_at == 10.4


def test_the_sync_waits_for_outstanding_batches() -> None:
    run, commands = start(spec3(), run_status="R")
    batch = one(run.feed(ResourcesBound(1, 0.1, 100)), QueueBatch)
    timer = run.feed(TimerFired(10.0))
    assert [type(c).__name__ for c in timer] == ["LogHeartbeat"]  # batch unanswered: no sync
    out = run.feed(BatchQueued(batch.command_id, 11.0, {"Q": (1, 2)}))
    assert out == sync_commands("T0", out[0].command_id)


# --- full syncs (spec §9.3 steps 11, 13; quirk Q13) -------------------------------------------


def _since_values(emitted):
    return [c.since for _, c in emitted if isinstance(c, FetchTaskStatuses)]


def test_wedged_full_sync_once_accumulated_loop_time_exceeds_the_interval() -> None:
    run, commands = start(forever_running(), config(wedged_sync_interval=25.0), run_status="R")
    emitted = drive(run, commands, Script().answer, now=0.0, until=60.0)
    # Accumulated loop time before each sync: 0, 10, 20, 30 (> 25: full, reset), 0, 10.
    assert _since_values(emitted) == ["T0", "S1", "S2", None, "S4", "S5"]
    assert run.timing.full_sync_accum == 20.0


def test_wedged_interval_minus_one_makes_every_sync_full() -> None:
    run, commands = start(forever_running(), config(wedged_sync_interval=-1), run_status="R")
    emitted = drive(run, commands, Script().answer, now=0.0, until=40.0)
    assert _since_values(emitted) == [None, None, None, None]


def test_pre_exit_full_sync_when_nothing_is_pending_but_not_all_final() -> None:
    run = running(spec3(), config(wedged_sync_interval=600.0))
    _, out = tick(run, 10.0, {"F": (1,), "D": (2,)})  # 3 waits for a failed upstream
    out = without_wake(out)
    assert out == sync_commands(None, out[0].command_id)
    assert run.timing.pre_exit_sync and run.timing.full_sync_accum == 0.0
    # The full sync revives 1 (reset to G by someone): the loop goes on and queues it.
    more = answer_sync(run, out, 10.5, {"G": (1,)}, server_time="S2")
    assert ids0(more) == [QueueBatch(0, 1, (1,), 100, WFR_ID, 0)]
    assert not run.timing.pre_exit_sync
    assert run.timing.last_sync == "S2"


def test_no_pre_exit_sync_when_every_task_is_final() -> None:
    run = running(topology(task(1), task(2)))
    _, out = tick(run, 10.0, {"D": (1,), "F": (2,)})
    assert [type(c).__name__ for c in without_wake(out)] == ["UpdateWorkflowRunStatus"]
