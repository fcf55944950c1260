"""``simulate``: hand-computed makespans and statuses, limits, resumes, faults, determinism, CLI.

Unless a test says otherwise the scenarios below use zero latency, a 10 s heartbeat and a 5 s
distributor poll, so every time can be worked out by hand: a task queued at ``t`` is launched
at the next poll, runs for its duration, and is seen DONE by the first sync (every 10 s) at or
after its end; at one instant, workers report before the swarm's requests are answered.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from swarmfold.core.commands import QueueBatch
from swarmfold.core.decide import decide
from swarmfold.core.state import initial_state
from swarmfold.shell.log.eventlog import read_log
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.driver import simulate
from swarmfold.shell.sim.invariants import InvariantChecker
from swarmfold.shell.sim.report import render_json, render_text
from swarmfold.shell.sim.scenario import parse_scenario

from .helpers import EXAMPLES, cli, run, scenario, tasks

# --- hand-computed makespans and statuses ------------------------------------------------------------


def test_one_task() -> None:
    # queued 0, launched at the poll at 5, runs 5..15, the sync at 20 sees D, D is accepted.
    r = run(scenario(tasks(1)))
    assert r.report.final_status == "D" and r.report.makespan == 20.0
    assert (r.report.done, r.report.failed, r.report.attempts) == (1, 0, 1)
    assert r.report.queue_wait_p50 == r.report.queue_wait_p95 == 5.0
    assert r.report.violations == {}


def test_chain_of_two() -> None:
    # task 1: 5..15, seen at 20, task 2 queued 20, runs 25..35, seen at 40.
    t = tasks(2)
    t[1]["upstream_ids"] = [1]
    r = run(scenario(t))
    assert r.report.makespan == 40.0
    assert r.summary.tasks_by_status == {"D": (1, 2)}


def test_diamond_example_makespan() -> None:
    # 1: 5..20 (seen 20) -> 2: 25..55, 3: 25..30 (seen 30, 60) -> 4: 65..80 (seen 80).
    r = simulate(parse_scenario(json.loads((EXAMPLES / "diamond.json").read_text())))
    assert r.report.makespan == 80.0
    assert r.report.mean_active == pytest.approx(85 / 80)


def test_retry_after_an_error() -> None:
    # attempt 1: 5..10 error -> G; the sync at 10 sees G, re-queued at 10, 15..20 done, seen at 20.
    t = tasks(1)
    t[0]["attempts"] = [{"outcome": "error", "duration": 5.0}, {"outcome": "done", "duration": 5.0}]
    r = run(scenario(t))
    assert (r.report.final_status, r.report.makespan) == ("D", 20.0)
    assert r.report.attempts == 2
    assert r.report.attempt_outcomes == {"done": 1, "error": 1}


def test_attempts_exhausted_fail_the_task_and_block_its_downstream() -> None:
    t = tasks(2, max_attempts=1)
    t[0]["attempts"] = [{"outcome": "error", "duration": 10.0}]
    t[1]["upstream_ids"] = [1]
    r = run(scenario(t))
    assert r.report.final_status == "E" and r.report.makespan == 20.0
    assert r.summary.tasks_by_status == {"F": (1,), "G": (2,)}
    assert r.report.reason == "1 task(s) failed"
    assert r.report.full_syncs == 1  # the pre-exit full sync (spec §9.3 step 13)
    assert r.report.violations == {}


def test_resource_error_scales_memory_until_the_task_fits() -> None:
    t = tasks(1, max_attempts=3)
    t[0]["needs"] = {"memory": 4}
    t[0]["resource_scales"] = {"memory": 1.0}
    r = run(scenario(t))
    # memory 1 -> Z, 2 -> Z, 4 -> done: three attempts, two resource errors.
    assert r.report.final_status == "D"
    assert r.report.attempt_outcomes == {"done": 1, "resource_error": 2}
    assert list(r.server.task_resources[1:]) == [("q", (("memory", 1),)), ("q", (("memory", 2),)),
                                                   ("q", (("memory", 4),))]


def test_fatal_outcome_fails_at_once_despite_attempts_left() -> None:
    t = tasks(1, max_attempts=5)
    t[0]["attempts"] = [{"outcome": "fatal", "duration": 1.0}]
    r = run(scenario(t))
    assert r.summary.tasks_by_status == {"F": (1,)} and r.report.attempts == 1


def test_array_failure_model_is_drawn_from_the_seed() -> None:
    data = scenario(
        tasks(40, max_attempts=1),
        arrays=[{"array_id": 1, "failures": {"error": 0.5}}],
    )
    a, b = run(data), run(data)
    assert a.summary == b.summary
    assert 0 < a.report.failed < 40 and a.report.done + a.report.failed == 40


# --- limits hold because of the core ---------------------------------------------------------------


def test_workflow_limit_holds_and_paces_the_run() -> None:
    # 6 tasks, limit 2: waves queued at 0, 20, 40; the last is seen done at 60.
    data = scenario(tasks(6), workflow={"limit": 2})
    r = run(data)
    assert r.report.makespan == 60.0
    assert r.report.peak_active == 2
    assert r.report.violations == {}
    assert run(data, workflow_limit=3).report.makespan == 40.0
    assert run(data, workflow_limit=3).report.peak_active == 3


def test_array_limit_override() -> None:
    r = run(scenario(tasks(3)), array_limits={1: 1})
    assert r.report.peak_active == 1 and r.report.arrays[0].limit == 1
    assert r.report.makespan == 60.0


def test_limits_hold_with_many_arrays_and_jitter() -> None:
    data = scenario(
        [
            {"task_id": k, "array_id": 1 + k % 3, "resource_set_id": 1 + k % 2}
            for k in range(1, 61)
        ],
        workflow={"limit": 5, "heartbeat_interval": 30.0},
        arrays=[
            {"array_id": a, "limit": a, "duration": {"distribution": "exponential", "mean": 40.0}}
            for a in (1, 2, 3)
        ],
        resource_sets=[
            {"resource_set_id": 1, "queue": "q", "requested": {"memory": 1}},
            {"resource_set_id": 2, "queue": "q", "requested": {"memory": 2}},
        ],
        latency={"default": {"seconds": 0.05, "jitter": 1.0}},
        cluster={"slots": 4},
    )
    r = run(data)
    assert r.report.final_status == "D" and r.report.violations == {}
    assert r.report.peak_active <= 5
    for a in r.report.arrays:
        assert a.peak_active <= a.array_id
    active_columns = [f"active_{a}" for a in (1, 2, 3)]
    idx = [r.timeline_columns.index(c) for c in active_columns]
    for row in r.timeline:
        assert row[r.timeline_columns.index("active")] <= 5
        assert all(row[i] <= a for i, a in zip(idx, (1, 2, 3), strict=True))


def test_a_lowered_limit_binds_once_the_swarm_has_fetched_it() -> None:
    # limit 4 -> 1 at t=30 (fetched by the sync at 30): 4 at 0, 4 at 20, then one at a time.
    data = scenario(tasks(10), workflow={"limit": 4}, limit_changes=[{"at": 30.0, "limit": 1}])
    r = run(data)
    assert r.report.makespan == 80.0
    assert r.report.workflow_limit == 1
    assert r.report.violations == {}
    active = r.timeline_columns.index("active")
    assert max(row[active] for row in r.timeline if row[0] >= 40.0) == 1


def test_cluster_slots_make_launched_tasks_wait() -> None:
    # 4 tasks launched at 5 on one slot: 5..15, 15..25, 25..35, 35..45; seen at 50.
    r = run(scenario(tasks(4), cluster={"slots": 1}))
    assert r.report.makespan == 50.0
    assert (r.report.queue_wait_p50, r.report.queue_wait_p95) == (15.0, 35.0)
    assert r.report.peak_running == 1 and r.report.peak_active == 4
    assert r.report.utilization == pytest.approx(40 / 50)
    assert r.report.cluster_slots == 1


def test_queue_slots_per_queue() -> None:
    data = scenario(
        [{"task_id": k, "array_id": 1, "resource_set_id": 1 + k % 2, "duration": 10.0} for k in range(1, 5)],
        resource_sets=[
            {"resource_set_id": 1, "queue": "a.q", "requested": {}},
            {"resource_set_id": 2, "queue": "b.q", "requested": {}},
        ],
        cluster={"queue_slots": {"a.q": 1}},
    )
    r = run(data)
    # b.q is unlimited: its 2 tasks run at once; a.q's 2 run one after the other (5..15, 15..25).
    assert r.report.makespan == 30.0 and r.report.peak_running == 3


# --- resumes, faults ---------------------------------------------------------------------------------


def test_hot_resume_lets_running_tasks_finish() -> None:
    # One slot: task 1 runs 5..65, task 2 waits launched. Hot resume at 20: task 2 is killed
    # (O -> K -> F), task 1 finishes D at 65, seen at 70, then the run drains to T.
    data = scenario(tasks(2, duration=60.0), cluster={"slots": 1}, resumes=[{"at": 20.0, "mode": "hot"}])
    r = run(data)
    assert r.report.final_status == "T"
    assert r.summary.tasks_by_status == {"D": (1,), "F": (2,)}
    assert r.report.makespan == 70.0
    assert r.report.requests["terminate_task_instances"] >= 1
    assert r.report.attempt_outcomes == {"done": 1, "killed": 1}


def test_cold_resume_kills_running_tasks() -> None:
    data = scenario(tasks(2, duration=60.0), cluster={"slots": 1}, resumes=[{"at": 20.0, "mode": "cold"}])
    r = run(data)
    assert r.report.final_status == "T"
    assert r.summary.tasks_by_status == {"F": (1, 2)}
    assert r.report.makespan == 30.0  # killed at the poll at 25, seen at 30


def test_lost_workers_are_triaged_and_retried() -> None:
    data = scenario(tasks(1, duration=20.0, max_attempts=2), faults={"lost_worker_rate": 1.0})
    r = run(data)
    assert r.report.final_status == "E"
    assert r.report.attempt_outcomes == {"lost": 2}
    assert r.summary.tasks_by_status == {"F": (1,)}


def test_failed_requests_are_retried_without_breaking_invariants() -> None:
    data = scenario(
        tasks(10),
        faults={"request_failure_rate": 0.3, "routes": ["queue_task_batch", "task_status_updates"]},
        seed=5,
    )
    r = run(data)
    assert r.report.final_status == "D"
    assert r.report.failed_requests > 0
    assert r.report.violations == {}


def test_a_lost_batch_answer_is_settled_by_the_next_sync() -> None:
    # The server queues the batch but the answer is lost: the core puts the tasks back in the
    # ready queue, but the sync that comes before the next scheduling pass reports them
    # running, so they are never queued twice.
    data = scenario(tasks(3), faults={"response_loss_rate": 1.0, "routes": ["queue_task_batch"]})
    r = run(data)
    assert r.report.final_status == "D" and r.report.makespan == 20.0
    assert r.report.anomalies == {"batch_queue_failed": 1}
    assert r.report.violations == {}


LOST_ANSWERS = scenario(
    tasks(3),
    workflow={"timeout": 60.0},
    faults={"response_loss_rate": 1.0, "routes": ["queue_task_batch", "task_status_updates"]},
)


def test_lost_batch_and_sync_answers_show_up_as_excused_double_queueing() -> None:
    # With the syncs' answers lost too, the swarm never learns and queues the tasks again. It
    # was told the batch failed, so the double queueing is excused, not a violation of the core.
    r = run(LOST_ANSWERS)
    assert r.report.outcome == "fail" and r.report.reason.startswith("timeout")
    assert r.report.violations == {}
    assert r.report.excused.get("double_queue", 0) > 0
    assert r.report.end == "timeout"
    assert "excused      double_queue" in render_text(r.report)


def test_distributor_death_fails_the_run() -> None:
    r = run(scenario(tasks(2, duration=100.0), faults={"distributor_dies_at": 12.0}))
    assert r.report.outcome == "fail" and r.report.final_status == "E"
    assert r.report.reason.startswith("distributor_died")


def test_invariant_checker_flags_an_over_limit_batch() -> None:
    r = run(scenario(tasks(3), workflow={"limit": 1}))
    server: ServerModel = r.server
    checker = InvariantChecker(server)
    checker.batch_issued(QueueBatch(99, 1, (1, 2), 1, 1), 0.0)
    assert checker.counts == {"workflow_limit": 1, "double_queue": 2}


# --- determinism, the event log, outputs ---------------------------------------------------------------


def test_same_seed_gives_byte_identical_log_and_report(tmp_path: Path) -> None:
    data = json.loads((EXAMPLES / "three_array_pipeline.json").read_text())
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    ra = simulate(parse_scenario(data, "s.json"), log_path=a, timeline_path=tmp_path / "a.csv")
    rb = simulate(parse_scenario(data, "s.json"), log_path=b, timeline_path=tmp_path / "b.csv")
    assert a.read_bytes() == b.read_bytes()
    assert render_json(ra.report) == render_json(rb.report)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    rc = simulate(parse_scenario(data, "s.json"), seed=8, log_path=c)
    assert c.read_bytes() != a.read_bytes()
    assert rc.report.seed == 8


def test_the_log_replays_to_the_same_decisions(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    r = simulate(parse_scenario(json.loads((EXAMPLES / "cold_resume.json").read_text())), log_path=path)
    log = read_log(path)
    assert log.error is None
    assert log.header.source == "simulate" and log.header.runner_id == "sim-1"
    assert log.header.extra["seed"] == 1
    assert len(log.records) == r.report.decide_calls
    state = initial_state()
    for record in log.records:
        decision = decide(state, record.event)
        assert decision.commands == record.commands
        state = decision.state
    assert state.summary == r.summary


def test_timeline_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    r = simulate(parse_scenario(json.loads((EXAMPLES / "diamond.json").read_text())), timeline_path=path)
    rows = list(csv.reader(path.open()))
    assert rows[0] == r.timeline_columns
    assert rows[0][:4] == ["time", "run_status", "workflow_limit", "active"]
    assert rows[0][-2:] == ["active_1", "limit_1"]
    assert [float(row[0]) for row in rows[1:]] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    assert rows[-1][1] == "D"


def test_report_json_round_trips() -> None:
    r = run(scenario(tasks(2)))
    data = json.loads(render_json(r.report))
    assert data["final_status"] == "D" and data["makespan"] == 20.0
    assert data["requests"]["queue_task_batch"] == r.report.requests["queue_task_batch"]
    assert data["arrays"][0]["name"] == "a"


def test_requests_by_route() -> None:
    r = run(scenario(tasks(1)))
    # Syncs at 10 and 20 (4 parts + one array limit each), heartbeats at 10 and 20,
    # R and D status updates, one bind, one batch.
    assert r.report.requests == {
        "bind_resources": 1,
        "get_array_max_concurrently_running": 2,
        "get_max_concurrently_running": 2,
        "log_heartbeat": 2,
        "queue_task_batch": 1,
        "set_status_for_triaging": 2,
        "task_status_updates": 2,
        "update_status": 2,
    }


# --- the CLI -------------------------------------------------------------------------------------------


def test_cli_simulate_text_and_json(tmp_path: Path) -> None:
    code, text = cli(["simulate", str(EXAMPLES / "diamond.json")])
    assert code == 0
    assert text.startswith("diamond (seed 0): DONE (D) after 80 s")
    assert "invariants   ok" in text
    code, out = cli(["simulate", str(EXAMPLES / "diamond.json"), "--json"])
    assert code == 0 and json.loads(out)["makespan"] == 80.0


def test_cli_simulate_outputs_and_overrides(tmp_path: Path) -> None:
    log, timeline = tmp_path / "run.jsonl", tmp_path / "t.csv"
    code, out = cli([
        "simulate", str(EXAMPLES / "diamond.json"), "--json", "--log", str(log),
        "--timeline", str(timeline), "--array-limit", "1=1", "--workflow-limit", "5", "--seed", "4",
    ])
    assert code == 0
    report = json.loads(out)
    assert report["arrays"][0]["limit"] == 1 and report["workflow_limit"] == 5 and report["seed"] == 4
    assert report["peak_active"] == 1 and report["makespan"] == 90.0
    assert log.exists() and timeline.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--array-limit", "1"], "--array-limit: expected ID=N with integers, got '1'"),
        (["--array-limit", "9=1"], "--array-limit 9=1: unknown array id 9"),
        (["--workflow-limit", "-2"], "--workflow-limit: must be >= 0, got -2"),
    ],
)
def test_cli_bad_overrides(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = cli(["simulate", str(EXAMPLES / "diamond.json"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_bad_scenario_names_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads((EXAMPLES / "diamond.json").read_text())
    data["tasks"][3]["upstream_ids"] = [2, 77]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    code, out = cli(["simulate", str(path)])
    assert code == 2 and out == ""
    assert f"{path}: $.tasks[3].upstream_ids[1]: unknown task id 77" in capsys.readouterr().err


def test_cli_violations_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A core that queued a task twice (simulated by a checker that always sees one).
    real = InvariantChecker.at_end

    def at_end(self: InvariantChecker, *args: Any) -> None:
        real(self, *args)
        self.violate(0.0, "double_queue", "task 1 is queued while R on the server")

    monkeypatch.setattr(InvariantChecker, "at_end", at_end)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scenario(tasks(1))))
    code, out = cli(["simulate", str(path)])
    assert code == 1 and "INVARIANTS" in out


def test_unanswered_heartbeats_let_the_reaper_error_the_run() -> None:
    # Every heartbeat fails, so heartbeat_date (31 s after the start) is never extended; the
    # reaper at t=100 moves the run R -> E. The swarm never hears of it, finishes its tasks and
    # asks for DONE, which the server refuses: the run ends with the status the server holds.
    data = scenario(
        tasks(1, duration=200.0),
        server={"reaper_poll_interval": 100.0},
        faults={"request_failure_rate": 1.0, "routes": ["log_heartbeat"]},
    )
    r = run(data)
    assert r.server.run_status == "E"
    assert r.report.final_status == "E" and r.report.done == 1
    assert "the server kept E instead of D" in r.report.reason


def test_simulate_restores_the_garbage_collector() -> None:
    import gc

    assert gc.isenabled()
    run(scenario(tasks(1)))
    assert gc.isenabled()


def _bench_scenario(n: int) -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "sim_bench.py"
    spec = importlib.util.spec_from_file_location("sim_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_scenario(n)


def test_the_benchmark_scenario_at_10k() -> None:
    r = simulate(_bench_scenario(10_000))
    assert r.report.final_status == "D" and r.report.done == 10_000
    assert r.report.violations == {}
    assert r.report.peak_active <= 10_000
    assert all(a.peak_active <= 2_000 for a in r.report.arrays)


@pytest.mark.slow
def test_the_benchmark_scenario_at_100k() -> None:
    r = simulate(_bench_scenario(100_000))
    assert r.report.final_status == "D" and r.report.done == 100_000
    assert r.report.violations == {}


def test_a_change_in_the_second_of_a_sync_is_reported_twice(tmp_path: Path) -> None:
    from swarmfold.core.events import TaskStatusesFetched

    path = tmp_path / "d.jsonl"
    simulate(parse_scenario(json.loads((EXAMPLES / "diamond.json").read_text())), log_path=path)
    syncs = [
        (r.event.at, r.event.tasks_by_status)
        for r in read_log(path).records
        if isinstance(r.event, TaskStatusesFetched)
    ]
    # Task 1 ends at t=20.0, in the second of the sync at 20: the sync at 30 (since 00:00:20)
    # reports it again, as the real server's ``status_date >= last_sync`` does.
    assert syncs[1] == (20.0, {"D": (1,)})
    assert syncs[2] == (30.0, {"D": (1, 3), "R": (2,)})
    assert syncs[3] == (40.0, {"D": (3,)})
