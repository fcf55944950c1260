"""Every bundled simulation example runs and reports what it was written to show; the worked
example of docs/scenario-format.md prints exactly what the page says."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from swarmfold.shell.cli import main
from swarmfold.shell.sim.driver import SimResult, simulate
from swarmfold.shell.sim.report import render_text
from swarmfold.shell.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOC = ROOT / "docs" / "scenario-format.md"


def run_example(name: str) -> SimResult:
    return simulate(load_scenario(EXAMPLES / f"{name}.json"))


def column(result: SimResult, name: str) -> list[tuple[float, int]]:
    k = result.timeline_columns.index(name)
    return [(row[0], row[k]) for row in result.timeline]


def test_diamond() -> None:
    r = run_example("diamond")
    rep = r.report
    assert (rep.final_status, rep.makespan) == ("D", 80.0)
    assert (rep.done, rep.failed, rep.total_tasks, rep.attempts) == (4, 0, 4, 4)
    # Tasks 2 and 3 run side by side; 1 and 4 alone.
    assert rep.peak_active == 2 and rep.mean_active == 1.0625
    assert (rep.queue_wait_p50, rep.queue_wait_p95) == (5.0, 5.0)
    assert rep.cluster_slots == 4 and rep.utilization == pytest.approx(65 / (4 * 80))
    assert rep.violations == {}


def test_three_array_pipeline_holds_its_limits() -> None:
    r = run_example("three_array_pipeline")
    rep = r.report
    assert rep.final_status == "D" and rep.done == 14 and rep.failed == 0
    assert 250.0 < rep.makespan < 400.0
    assert rep.violations == {}
    assert rep.peak_active <= 4  # the workflow limit
    peaks = {a.name: a.peak_active for a in rep.arrays}
    assert peaks["extract"] == 3 and peaks["load"] == 1
    assert peaks["transform"] <= 2
    # transform's limit drops from 2 to 1 at t=60; the swarm fetches it at the sync at 60.
    assert [a.limit for a in rep.arrays] == [3, 1, 1]
    assert all(active <= 1 for t, active in column(r, "active_2") if t >= 60.0)
    assert all(active <= 4 for _, active in column(r, "active"))


def test_failures_and_resource_errors() -> None:
    r = run_example("failures_and_resource_errors")
    rep = r.report
    assert (rep.final_status, rep.makespan) == ("E", 110.0)
    assert rep.reason == "2 task(s) failed"
    # 1: error then done; 2: resource error twice, then done on big.q; 3: fatal;
    # 4: two errors with max_attempts 2; 5 runs after 2; 6 never runs (its upstream 3 failed).
    assert r.summary.tasks_by_status == {"D": (1, 2, 5), "F": (3, 4), "G": (6,)}
    assert rep.attempts == 9
    assert rep.attempt_outcomes == {"done": 3, "error": 3, "fatal": 1, "resource_error": 2}
    bound = r.server.task_resources[1:]
    assert ("small.q", (("memory", 8), ("runtime", 1200))) in bound  # scaled 4 -> 8, still fits
    assert ("big.q", (("memory", 16), ("runtime", 1200))) in bound  # 8 -> 16: falls back to big.q
    assert rep.violations == {}


def test_cold_resume() -> None:
    r = run_example("cold_resume")
    rep = r.report
    # Task 1 ran 5..65 (one slot) and was DONE; at t=100 the resume makes the heartbeat answer C;
    # the swarm terminates: task 2 (running) and task 3 (launched, waiting) are killed at the
    # poll at 105, seen FATAL at 110, and the drained run ends TERMINATED.
    assert (rep.final_status, rep.makespan) == ("T", 110.0)
    assert rep.reason == "drained after resume signal C"
    assert r.summary.tasks_by_status == {"D": (1,), "F": (2, 3), "G": (4,)}
    assert rep.attempt_outcomes == {"done": 1, "killed": 2}
    assert rep.requests["terminate_task_instances"] == 1
    statuses = column(r, "run_status")
    assert (100.0, "C") in statuses
    assert rep.violations == {}


def test_examples_are_deterministic() -> None:
    for name in ("diamond", "three_array_pipeline", "failures_and_resource_errors", "cold_resume"):
        assert render_text(run_example(name).report) == render_text(run_example(name).report)


# --- the worked example of docs/scenario-format.md ----------------------------------------------


def _worked_example() -> tuple[str, list[str], str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A worked example", 1)[1].split("\n## ", 1)[0]
    scenario = re.search(r"```json\n(.*?)```", section, re.S)
    console = re.search(r"```console\n\$ (.*?)\n(.*?)```", section, re.S)
    assert scenario is not None and console is not None
    return scenario.group(1), shlex.split(console.group(1)), console.group(2)


def test_docs_worked_example_runs_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario, argv, expected = _worked_example()
    assert argv[:2] == ["swarmfold", "simulate"]
    (tmp_path / argv[2]).write_text(scenario, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    code = main(argv[1:], out=out)
    assert code == 0
    assert out.getvalue() == expected
