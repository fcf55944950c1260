"""``--from-log`` and ``swarmfold scenario-from-log``: a scenario from a recorded run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import (
    AttachStarted,
    BatchQueued,
    EdgeChunkLoaded,
    EdgeRow,
    HeartbeatAcknowledged,
    TaskChunkLoaded,
    TaskRow,
    TaskStatusesFetched,
    TimerFired,
)
from swarmfold.core.topology import QueueSpec
from swarmfold.shell.log.eventlog import EventLogWriter, new_header
from swarmfold.shell.sim.driver import simulate
from swarmfold.shell.sim.from_log import infer_from_log, scenario_from_log
from swarmfold.shell.sim.scenario import Attempt, LimitChange, load_scenario, parse_scenario

from .helpers import EXAMPLES, cli


def recorded(tmp_path: Path, name: str) -> tuple[Path, object]:
    log = tmp_path / f"{name}.jsonl"
    result = simulate(load_scenario(EXAMPLES / f"{name}.json"), log_path=log)
    return log, result


def test_topology_config_and_attempts_come_from_the_log(tmp_path: Path) -> None:
    log, _ = recorded(tmp_path, "three_array_pipeline")
    original = load_scenario(EXAMPLES / "three_array_pipeline.json")
    inferred = infer_from_log(log)
    s = inferred.scenario
    assert s.topology == original.topology and s.config == original.config
    assert inferred.attempts == 14 and inferred.outcomes == {"done": 14} and inferred.still_running == 0
    # extract tasks run 20 s (fixed): R is seen at one sync and D at the one 20 s later.
    for task_id in (101, 102, 103):
        (attempt,) = s.task_plans[task_id].attempts
        assert attempt.outcome == "done" and attempt.duration == pytest.approx(20.0, abs=0.1)
    # transform draws uniform(15, 45): the observed durations are multiples of the 10 s sync.
    assert all(15 <= s.task_plans[t].attempts[0].duration <= 55 for t in range(201, 207))
    # The limit the swarm fetched at t=60 (array 2 -> 1) is a limit change.
    assert s.limit_changes == (LimitChange(at=pytest.approx(60.0, abs=0.1), limit=1, array_id=2),)


def test_outcomes_of_failing_attempts(tmp_path: Path) -> None:
    log, result = recorded(tmp_path, "failures_and_resource_errors")
    s = scenario_from_log(log)
    plans = {t: [a.outcome for a in p.attempts] for t, p in s.task_plans.items()}
    assert plans[1] == ["error", "done"]
    assert plans[2] == ["resource_error", "resource_error", "done"]
    assert plans[3] == ["fatal"]
    assert plans[4] == ["error", "error"]  # F on its last attempt: an error, not a fatal one
    again = simulate(s)
    assert again.report.final_status == "E"
    assert again.summary.tasks_by_status == result.summary.tasks_by_status  # type: ignore[attr-defined]
    assert again.report.attempt_outcomes == result.report.attempt_outcomes  # type: ignore[attr-defined]


def test_kills_after_a_resume_are_not_fatal(tmp_path: Path) -> None:
    log, _ = recorded(tmp_path, "cold_resume")
    inferred = infer_from_log(log)
    assert inferred.killed == 2 and "fatal" not in inferred.outcomes
    (signal,) = inferred.scenario.resumes
    assert signal.mode == "cold" and signal.at >= 100.0  # when the swarm heard of it


def test_the_written_file_is_a_valid_scenario_that_runs_the_same(tmp_path: Path) -> None:
    log, _ = recorded(tmp_path, "three_array_pipeline")
    out = tmp_path / "from-log.json"
    code, text = cli(["scenario-from-log", str(log), "-o", str(out)])
    assert code == 0
    assert text.strip() == (
        f"wrote {out}: 14 tasks in 3 array(s); 14 attempt(s) observed on 14 task(s) (14 done); "
        "1 limit change(s)"
    )
    data = json.loads(out.read_text())
    assert data["tasks"][0]["attempts"][0]["outcome"] == "done"
    loaded = parse_scenario(data, str(out))  # validated
    direct = simulate(scenario_from_log(log)).report
    assert simulate(loaded).report.makespan == direct.makespan


def test_cli_simulate_and_sweep_from_log(tmp_path: Path) -> None:
    log, original = recorded(tmp_path, "three_array_pipeline")
    code, out = cli(["simulate", "--from-log", str(log)])
    assert code == 0
    assert out.startswith("three_array_pipeline (from log) (seed 7): DONE (D) after ")
    code, out = cli(["sweep", "--from-log", str(log), "--array-limit", "2=1,3", "--jobs", "1"])
    assert code == 0 and "sweep of 2 point(s)" in out


def test_cli_bad_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    code, _ = cli(["simulate", "--from-log", str(bad)])
    assert code == 2 and "invalid JSON" in capsys.readouterr().err
    code, _ = cli(["scenario-from-log", str(bad), "-o", str(tmp_path / "x.json")])
    assert code == 2 and not (tmp_path / "x.json").exists()
    code, _ = cli(["simulate", str(EXAMPLES / "diamond.json"), "--from-log", str(bad)])
    assert code == 2 and "give a SCENARIO file or --from-log LOG" in capsys.readouterr().err


def _row(task_id: int, status: str = "G") -> TaskRow:
    return TaskRow(
        task_id=task_id, array_id=7, status=status, max_attempts=3, resource_scales=(),
        fallback_queues=(), requested_resources=(("memory", 2),), cluster_name="c",
        queue_name="all.q", array_limit=2,
    )


def test_an_attach_log_rebuilds_the_loaded_topology(tmp_path: Path) -> None:
    # Attached at t=1000 to a run where task 1 is already running; 2 depends on 1; 3 is free.
    path = tmp_path / "attach.jsonl"
    header = new_header("run", 5, 9, SwarmConfig(), runner_id="r", created_at="x")
    events = [
        AttachStarted(1000.0, 5, 9, dag_id=3, workflow_limit=4, queues=[QueueSpec("all.q", 1, 1)]),
        TaskChunkLoaded(1, 1000.1, [_row(1, "R"), _row(2), _row(3)]),
        EdgeChunkLoaded(2, 1000.2, [EdgeRow(1, 11, (12,)), EdgeRow(2, 12, ()), EdgeRow(3, 13, ())]),
        BatchQueued(3, 1000.3, {"Q": (3,)}),
        TaskStatusesFetched(4, 1010.0, {"R": (3,)}, "t1"),
        TaskStatusesFetched(5, 1020.0, {"D": (1,)}, "t2"),
        BatchQueued(6, 1020.1, {"Q": (2,)}),
        TaskStatusesFetched(7, 1040.0, {"G": (3,), "D": (2,)}, "t3"),
        HeartbeatAcknowledged(8, 1045.0, "R"),
    ]
    with EventLogWriter(path, header) as writer:
        for event in events:
            writer.record(event, ())
    inferred = infer_from_log(path)
    s = inferred.scenario
    assert (s.workflow_id, s.workflow_run_id) == (5, 9)
    topo = s.topology
    assert topo.workflow_limit == 4 and [(a.array_id, a.limit) for a in topo.arrays] == [(7, 2)]
    assert {t.task_id: (t.upstream_ids, t.status) for t in topo.tasks} == {
        1: ((), "G"), 2: ((1,), "G"), 3: ((), "G"),  # task 1 was running: it runs again
    }
    assert s.task_plans[1].attempts == (Attempt("done", 20.0),)  # running since the attach
    assert s.task_plans[2].attempts == (Attempt("done", pytest.approx(19.9)),)  # coarse: queued -> D
    assert s.task_plans[3].attempts == (Attempt("error", 30.0),)  # R at 1010, G at 1040
    assert inferred.still_running == 0 and s.resumes == ()
    # Task 3's one observed attempt errors, and the last attempt repeats: it fails for good.
    r = simulate(s)
    assert r.report.final_status == "E" and r.summary.tasks_by_status["F"] == (3,)


def test_an_attempt_open_at_the_end_of_the_log_is_taken_as_done(tmp_path: Path) -> None:
    path = tmp_path / "open.jsonl"
    header = new_header("run", 5, 9, SwarmConfig(), runner_id="r", created_at="x")
    events = [
        AttachStarted(0.0, 5, 9, dag_id=3, workflow_limit=4),
        TaskChunkLoaded(1, 0.0, [_row(1)]),
        EdgeChunkLoaded(2, 0.0, [EdgeRow(1, 11, ())]),
        BatchQueued(3, 1.0, {"Q": (1,)}),
        TaskStatusesFetched(4, 10.0, {"R": (1,)}, "t1"),
        HeartbeatAcknowledged(5, 55.0, "R"),
    ]
    with EventLogWriter(path, header) as writer:
        for event in events:
            writer.record(event, ())
    inferred = infer_from_log(path)
    assert inferred.still_running == 1
    assert inferred.scenario.task_plans[1].attempts == (Attempt("done", 45.0),)


def test_a_log_without_a_start_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    with EventLogWriter(path, new_header("run", 1, 1, SwarmConfig(), runner_id="r", created_at="x")):
        pass
    code, _ = cli(["scenario-from-log", str(path), "-o", str(tmp_path / "x.json")])
    assert code == 2


def test_heartbeats_while_the_pages_load_do_not_cut_the_attach_short(tmp_path: Path) -> None:
    """A big attach heartbeats between its pages; the topology is every page's, and a resume
    signal heard while loading still counts. A log that ends while loading keeps its pages."""
    path = tmp_path / "paged.jsonl"
    header = new_header("run", 5, 9, SwarmConfig(), runner_id="r", created_at="x")
    events = [
        AttachStarted(0.0, 5, 9, dag_id=3, workflow_limit=4),
        HeartbeatAcknowledged(1, 0.1, "R"),
        TaskChunkLoaded(2, 0.2, [_row(1), _row(2)]),
        TimerFired(0.3, None),
        HeartbeatAcknowledged(3, 0.4, "C"),
        TaskChunkLoaded(4, 0.5, [_row(3)]),
        EdgeChunkLoaded(5, 0.6, [EdgeRow(1, 11, (12,)), EdgeRow(2, 12, ())]),
        TimerFired(0.7, None),
        EdgeChunkLoaded(6, 0.8, [EdgeRow(3, 13, (12,))]),
        BatchQueued(7, 1.0, {"Q": (1, 3)}),
    ]
    with EventLogWriter(path, header) as writer:
        for event in events:
            writer.record(event, ())
    inferred = infer_from_log(path)
    topo = inferred.scenario.topology
    assert {t.task_id: t.upstream_ids for t in topo.tasks} == {1: (), 2: (1, 3), 3: ()}
    assert inferred.resumed and [r.mode for r in inferred.scenario.resumes] == ["cold"]
    cut = tmp_path / "cut.jsonl"
    with EventLogWriter(cut, header) as writer:
        for event in events[:6]:
            writer.record(event, ())
    assert {t.task_id for t in infer_from_log(cut).scenario.topology.tasks} == {1, 2, 3}
