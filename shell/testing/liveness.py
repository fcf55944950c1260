"""The end of every ``SwarmMachine`` run: liveness, then the verdict on why the run ended.

At teardown the faults stop, every command is answered faithfully and the clock jumps to each
``WakeAt``; the run must end with Finish/Fail within ``LIVENESS_BUDGET`` events, without
stalling or letting its heartbeat lapse, for a reason the injected faults explain.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from hypothesis import note

from swarmfold.core.commands import Fail, FetchTaskStatuses

if TYPE_CHECKING:
    from swarmfold.testing.stateful import SwarmMachine

#: Events the liveness phase may spend before the run must have ended.
LIVENESS_BUDGET = 30_000


def drive_to_end(machine: SwarmMachine) -> None:
    """No more faults: answer everything faithfully, jump to each WakeAt, let tasks run."""
    machine.check_purity = False
    server = machine.srv
    server.stale_next = []
    start = machine.events
    # From here on every heartbeat is answered at once: if the run was not already overdue,
    # the reaper may only end it because the swarm stopped heartbeating.
    heartbeat_fresh = server.heartbeat_date > machine.now
    while machine.outcome is None:
        if machine.events - start > LIVENESS_BUDGET:
            raise AssertionError(
                f"liveness: no Finish/Fail after {LIVENESS_BUDGET} events (t={machine.now}, "
                f"swarm counts {dict(machine.state.status_counts)}, "
                f"server {dict(Counter(server.status.values()))}, "
                f"run {server.run_status}, faults {sorted(machine.faults)})"
            )
        if machine.outstanding:
            command_id = next(iter(machine.outstanding))
            if isinstance(machine.outstanding[command_id], FetchTaskStatuses):
                server.random_progress(machine.now, p_step=0.97)
            machine.answer(command_id)
        elif machine.wake is not None:
            machine.now = max(machine.now, machine.wake.at)
            reaped = server.reap(machine.now)
            if reaped:
                machine.faults.add("run_status_forced")
                if reaped == "E" and heartbeat_fresh:
                    machine.broken = True
                    raise AssertionError(f"liveness: the swarm let its heartbeat lapse (t={machine.now}, "
                                         f"heartbeat_date {server.heartbeat_date}); the reaper ended it")
            machine.fire()
        else:
            machine.broken = True
            raise AssertionError(f"liveness: stalled at t={machine.now}: no command awaits an answer "
                                 f"and no WakeAt (phase {machine.state.phase})")

def verdict(machine: SwarmMachine) -> None:
    """Why the run ended must be explained by what happened to it."""
    outcome = machine.outcome
    assert outcome is not None and machine.spec is not None
    summary = outcome.summary
    faults = machine.faults
    note(f"end: {type(outcome).__name__} {summary.final_status} ({summary.reason}); "
         f"faults {sorted(faults)}")
    if isinstance(outcome, Fail):
        explained = {
            "timeout": machine.config.timeout < 1e6,
            "distributor_died": "distributor_died" in faults,
            "stopped": "stop" in faults,
        }
        assert explained.get(outcome.reason, False), (
            f"unexplained Fail: {outcome.reason}: {outcome.message}"
        )
        return
    reason = summary.reason
    if reason.startswith("resource_callable_failed"):
        assert "evaluation_failed" in faults, reason
        return
    if reason.startswith("fail_fast"):
        assert machine.config.fail_fast and summary.failed_count > 0, reason
        return
    if "run_status_forced" in faults:
        return  # resumed or reaped: the run only had to end
    if machine.distorted:
        return  # ended on a view no faithful full sync corrected since (e.g. a phantom E)
    final = summary.task_final_statuses()
    assert len(final) == len(machine.spec.tasks)
    blocked: dict[int, bool] = {}
    for t in machine.spec.tasks:  # topological order
        # G and A tasks both wait for their upstreams (an A task waits since the fix
        # found by this machine), so both can be blocked behind a FATAL upstream.
        blocked[t.task_id] = final[t.task_id] in ("G", "A") and any(
            final[u] == "F" or blocked[u] for u in t.upstream_ids
        )
    stuck = [t for t, s in final.items() if s not in ("D", "F") and not blocked[t]]
    assert not stuck, f"tasks {stuck} ended {[final[t] for t in stuck]} without a FATAL upstream"
    if "status_update_failed" not in faults:
        expected = "D" if summary.done_count == len(final) else "E"
        assert summary.final_status == expected, (summary.final_status, reason)
    if not faults & {"cli_reset_hidden", "lost_batch_answer"} and not (
        "cli_reset" in faults and "stale" in faults
    ) and not machine.resets_unseen:
        truth = machine.srv.status
        wrong = {t: (s, truth[t]) for t, s in final.items() if truth[t] != s}
        assert not wrong, f"summary differs from the server (swarm, server): {wrong}"
