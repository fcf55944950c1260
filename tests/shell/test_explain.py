"""``explain``: why a task is or is not running, at a record of a recorded run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swarmfold.core.config import SwarmConfig
from swarmfold.shell.log.eventlog import read_log
from swarmfold.shell.log.explain import ExplainError, HistoryEntry, explain
from swarmfold.shell.sim.scenario import load_scenario

from . import EXAMPLE, lines_of, record_run, run_cli, small_spec

CONFIG = SwarmConfig(heartbeat_interval=10.0)


@pytest.fixture
def small_log(tmp_path: Path) -> Path:
    """Array 1 (tasks 1-3) has limit 1; task 4 needs task 1; task 5 needs tasks 2 and 4.

    Record 3 sends QueueBatch(1); record 4 is its answer (task 1 QUEUED); record 8 is the
    sync that reports task 1 DONE; record 11 sends QueueBatch(2) and QueueBatch(4).
    """
    path = tmp_path / "small.log"
    result = record_run(path, small_spec(array_limit=1), CONFIG)
    assert result.final_status == "D"
    return path


def test_a_task_blocked_by_the_array_limit(small_log: Path) -> None:
    e = explain(small_log, 2, at=4)
    assert (e.at, e.line, e.status, e.place) == (4, 5, "G", "ready")
    assert e.upstreams_not_done == () and e.num_upstreams == 0
    (binding,) = e.binding_limits
    assert (binding.scope, binding.array_id, binding.active, binding.in_flight, binding.limit) == (
        "array", 1, 1, 0, 1,
    )
    assert (e.queue_position, e.queue_length, e.ahead_in_array) == (1, 2, 0)
    assert e.why.startswith(
        "ready (position 1 of 2 in the ready queue), but the limit binds: array 1 (first)"
    )
    assert e.attempts == 0
    # Task 3 waits behind task 2 for the same single slot.
    e3 = explain(small_log, 3, at=4)
    assert (e3.queue_position, e3.ahead_in_array) == (2, 1)
    assert e3.binding_limits[0].scope == "array"


def test_a_task_blocked_by_an_upstream(small_log: Path) -> None:
    e = explain(small_log, 4, at=4)
    assert (e.status, e.place) == ("G", "nowhere")
    assert e.upstreams_not_done == ((1, "Q"),)
    assert e.why == "not ready: 1 of its 1 upstream(s) are not DONE: 1 (Q)"
    e5 = explain(small_log, 5, at=4)
    assert e5.upstreams_not_done == ((2, "G"), (4, "G")) and e5.num_upstreams == 2
    # Once task 1 is DONE (record 8), task 4 has no upstream left to wait for.
    after = explain(small_log, 4, at=8)
    assert after.upstreams_not_done == () and after.place == "ready"


def test_a_task_in_flight_and_a_running_task(small_log: Path) -> None:
    e = explain(small_log, 1, at=3)
    assert e.place == "in_flight"
    assert e.why == "it is in flight: QueueBatch 4 was sent and awaits the server's answer"
    assert e.attempts == 1 and e.attempt_records == ((3, 4),)
    running = explain(small_log, 1, at=4)
    assert running.status == "Q"
    assert running.why.startswith("it is active on the server (Q, QUEUED)")


def test_history_attempts_and_resources_at_the_end(small_log: Path) -> None:
    e = explain(small_log, 1)
    assert e.at == len(read_log(small_log).records)
    assert e.status == "D" and e.why == "it is DONE"
    assert e.history == (
        HistoryEntry(1, "G", "RunStarted", "G"),
        HistoryEntry(4, "Q", "BatchQueued", "Q"),
        HistoryEntry(8, "D", "TaskStatusesFetched", "D"),
    )
    assert e.attempts == 1 and e.max_attempts == 3
    assert (e.resources_queue, e.resources) == ("all.q", {"memory": 2, "runtime": 60})
    assert e.phase == "done" and e.run_status == "D"


def test_a_task_blocked_by_the_workflow_limit(tmp_path: Path) -> None:
    path = tmp_path / "wf.log"
    record_run(path, small_spec(array_limit=10, workflow_limit=1), CONFIG)
    e = explain(path, 2, at=4)
    assert [(lim.scope, lim.binds) for lim in e.limits] == [("workflow", True), ("array", False)]
    assert "the limit binds: workflow: 1 active + 0 in flight / limit 1 (full: binds)" in e.why


def test_the_pipeline_fit_array_limit(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.log"
    scenario = load_scenario(EXAMPLE)
    record_run(path, scenario.topology, scenario.config)
    e = explain(path, 203, at=14)
    assert e.binding_limits[0].describe() == "array 2 (fit): 2 active + 0 in flight / limit 2 (full: binds)"
    assert explain(path, 304, at=10).upstreams_not_done == ((206, "G"), (301, "G"))


def test_unknown_task_and_bad_at(small_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ExplainError, match="task 99 is not in the workflow"):
        explain(small_log, 99)
    assert run_cli(["explain", str(small_log), "--task", "99"])[0] == 2
    assert "task 99 is not in the workflow (5 tasks, ids 1..5)" in capsys.readouterr().err
    assert run_cli(["explain", str(small_log), "--task", "1", "--at", "0"])[0] == 2
    e = explain(small_log, 1, at=10_000)
    assert e.note is not None and "explained at the last one" in e.note


def test_explain_survives_a_torn_log(small_log: Path) -> None:
    data = small_log.read_bytes()
    small_log.write_bytes(data[:-10])
    n = len(lines_of(small_log)) - 2  # whole records left
    e = explain(small_log, 1)
    assert e.at == n
    assert e.note is not None and "log unreadable at" in e.note and "torn last line" in e.note


def test_cli_text_and_json(small_log: Path) -> None:
    code, out = run_cli(["explain", str(small_log), "--task", "2", "--at", "4"])
    assert code == 0
    assert out.splitlines()[:3] == [
        f"task 2 after record 4 of {small_log} (line 5)",
        "  status      G (REGISTERING); place: ready",
        "  why         ready (position 1 of 2 in the ready queue), but the limit binds: "
        "array 1 (first): 1 active + 0 in flight / limit 1 (full: binds)",
    ]
    assert "  queue       position 1 of 2; 0 task(s) of array 1 ahead of it" in out
    code, out = run_cli(["explain", str(small_log), "--task", "4", "--at", "4", "--json"])
    assert code == 0
    data = json.loads(out)
    assert data["upstreams_not_done"] == [[1, "Q"]]
    assert data["limits"][1]["binds"] is False and data["limits"][1]["array_id"] == 2
