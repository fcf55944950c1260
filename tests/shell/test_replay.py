"""``replay``: the same decisions (exit 0), a divergence (1), unreadable input (2); drift;
and the worked examples of docs/cli-replay-explain.md, run for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from swarmfold.core.config import SwarmConfig
from swarmfold.core.decide import decide
from swarmfold.core.events import TaskStatusesFetched
from swarmfold.core.topology import TaskSpec
from swarmfold.shell.log.drift import drift_report, full_sync_drift
from swarmfold.shell.log.eventlog import read_log
from swarmfold.shell.log.replay import replay, state_summary
from swarmfold.shell.server.instant import InstantServer
from swarmfold.shell.sim.scenario import load_scenario

from . import EXAMPLE, ROOT, lines_of, record_run, run_cli, small_spec

DOC = ROOT / "docs" / "cli-replay-explain.md"


@pytest.fixture
def pipeline_log(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.log"
    scenario = load_scenario(EXAMPLE)
    record_run(path, scenario.topology, scenario.config)
    return path


def _rewrite(path: Path, line: int, edit: Any) -> None:
    """Apply ``edit`` to the JSON record on 1-based ``line`` and write it back."""
    lines = lines_of(path)
    record = json.loads(lines[line - 1])
    edit(record)
    lines[line - 1] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))


def test_a_recorded_fold_replays_with_the_same_decisions(pipeline_log: Path) -> None:
    result = replay(pipeline_log)
    assert result.ok and result.divergence is None and result.error is None
    assert result.records == 54 and result.commands == 55
    assert result.state.phase == "done" and result.state.summary is not None
    assert result.state.summary.final_status == "D"
    # The same from a log already in memory.
    again = replay(read_log(pipeline_log))
    assert again.ok and again.records == 54
    code, out = run_cli(["replay", str(pipeline_log)])
    assert code == 0
    assert out == f"{pipeline_log}: OK: 54 record(s) replay with the same decisions (55 command(s))\n"


def test_a_tampered_command_is_the_first_divergence(pipeline_log: Path) -> None:
    # Record 13 (line 14) sent QueueBatch(201, 202); pretend it had sent 201 and 203.
    def edit(record: dict[str, Any]) -> None:
        assert record["commands"][0]["task_ids"] == [201, 202]
        record["commands"][0]["task_ids"] = [201, 203]

    _rewrite(pipeline_log, 14, edit)
    result = replay(pipeline_log)
    assert not result.ok
    d = result.divergence
    assert d is not None
    assert (d.seq, d.line, result.records) == (13, 14, 13)
    assert d.expected[0].task_ids == (201, 203)  # type: ignore[union-attr]
    assert d.actual[0].task_ids == (201, 202)  # type: ignore[union-attr]
    assert any(
        "task_ids: recorded [201,203], replayed [201,202] (first difference at [1]: 203 vs 202)" in line
        for line in d.command_diff
    )
    # What the event changed, as a summary diff rather than a dump.
    # (The batch was already in flight, parked until its resources were bound.)
    assert d.state_diff == [
        "pending.Bind: [13] -> (absent)",
        "next_command_id: 14 -> 15",
        "pending.Batch: (absent) -> [14]",
    ]
    code, out = run_cli(["replay", str(pipeline_log)])
    assert code == 1
    assert f"{pipeline_log}: DIVERGED at record 13 (line 14): ResourcesBound(command_id=13, at=10)" in out
    assert "12 record(s) before it replay with the same decisions" in out
    assert "first difference: command #1" in out
    assert "state change when replaying record 13 (before -> after):" in out


def test_a_tampered_event_the_core_refuses_diverges_with_the_error(pipeline_log: Path) -> None:
    # Record 2 answers command 1 (the status update); make it claim to answer a batch.
    def edit(record: dict[str, Any]) -> None:
        record["event"] = {"type": "BatchQueued", "at": 0.0, "command_id": 1, "duration": None,
                           "tasks_by_status": {}}

    _rewrite(pipeline_log, 3, edit)
    result = replay(pipeline_log)
    assert result.divergence is not None and result.divergence.seq == 2
    assert result.divergence.error is not None
    assert "ProtocolViolation" in result.divergence.error
    assert result.divergence.actual == ()
    assert run_cli(["replay", str(pipeline_log)])[0] == 1


def test_an_extra_recorded_command_is_a_divergence(pipeline_log: Path) -> None:
    _rewrite(pipeline_log, 5, lambda r: r["commands"].append({"type": "WakeAt", "command_id": 99, "at": 1.0}))
    result = replay(pipeline_log)
    assert result.divergence is not None and result.divergence.seq == 4
    assert result.divergence.command_diff[0] == "recorded 1 command(s), replayed 0"


def test_unreadable_input_exits_2_naming_line_and_field(
    pipeline_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rewrite(pipeline_log, 21, lambda r: r["event"].__setitem__("at", "x"))
    result = replay(pipeline_log)
    assert not result.ok and result.divergence is None
    assert result.error is not None and (result.error.line, result.error.field) == (21, "$.event.at")
    assert result.records == 19  # everything before the bad line was folded and checked
    code, out = run_cli(["replay", str(pipeline_log)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"swarmfold replay: error: {pipeline_log}:21: $.event.at: expected float, got 'x'" in err
    assert "UNREADABLE at line 21: $.event.at" in out
    assert "the 19 record(s) before it replay with the same decisions" in out
    # --until before the bad line never reads it.
    assert run_cli(["replay", str(pipeline_log), "--until", "19"])[0] == 0


def test_a_torn_log_exits_2_and_shows_the_state_it_reached(pipeline_log: Path) -> None:
    data = pipeline_log.read_bytes()
    pipeline_log.write_bytes(data[:-30])
    code, out = run_cli(["replay", str(pipeline_log), "--show-state"])
    assert code == 2
    assert "UNREADABLE at line 55: $: torn last line" in out
    assert "state after record 53:" in out


def test_a_bad_header_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.log"
    path.write_text("not json\n")
    assert run_cli(["replay", str(path)])[0] == 2
    assert f"{path}:1: $: invalid JSON" in capsys.readouterr().err
    assert run_cli(["replay", str(tmp_path / "missing.log")])[0] == 2


def test_until_show_state(pipeline_log: Path) -> None:
    result = replay(pipeline_log, until=14)
    assert result.ok and result.records == 14 and result.stopped_at == 14
    summary = state_summary(result.state)
    assert summary["status_counts"]["Q"] == 2 and summary["status_counts"]["D"] == 5
    assert summary["arrays"]["2"] == {"name": "fit", "active": 2, "in_flight": 0, "ready": 4, "limit": 2}
    assert summary["ready"] == {"count": 4, "head": [203, 204, 205, 206]}
    code, out = run_cli(["replay", str(pipeline_log), "--until", "14", "--show-state"])
    assert code == 0
    assert "OK up to record 14: 14 record(s) replay with the same decisions" in out
    assert "state after record 14:" in out
    assert "  tasks        15: G 8, Q 2, D 5" in out
    assert "  array 2      2 active + 0 in flight, 4 ready / limit 2 (fit)  (full)" in out
    assert "  ready        4; head: 203, 204, 205, 206" in out
    assert "  workflow     2 active + 0 in flight / limit 8" in out
    assert replay(pipeline_log, until=0).state.phase == "new"


def test_json_output(pipeline_log: Path) -> None:
    code, out = run_cli(["replay", str(pipeline_log), "--until", "5", "--show-state", "--json"])
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True and data["records"] == 5 and data["stopped_at"] == 5
    assert data["divergence"] is None and data["error"] is None
    assert data["state"]["pending"]["Heartbeat"] == [5]


# --- drift --------------------------------------------------------------------------------


def test_full_sync_drift_sorts_tasks_into_the_three_sets(tmp_path: Path) -> None:
    path = tmp_path / "small.log"
    record_run(path, small_spec(), max_events=4)  # started; tasks 1 queued, 2-3 waiting
    state = replay(path).state
    assert [state.task_status(t) for t in (1, 2, 3, 4, 5)] == ["Q", "G", "G", "G", "G"]
    event = TaskStatusesFetched(
        command_id=999, at=5.0, tasks_by_status={"R": (1,), "G": (2, 4), "D": (3,), "Q": (77,)}
    )
    drift = full_sync_drift(state, event)
    assert drift.differed == [(1, "Q", "R"), (3, "G", "D")]
    assert drift.local_only == [5]
    assert drift.server_only == [77]
    assert not drift.clean
    clean = full_sync_drift(
        state, TaskStatusesFetched(command_id=1, at=5.0, tasks_by_status={"Q": (1,), "G": (2, 3, 4, 5)})
    )
    assert clean.clean


def test_drift_report_lists_every_full_sync_of_a_log(tmp_path: Path) -> None:
    path = tmp_path / "full.log"
    spec = small_spec(array_limit=10)
    # Every sync is a full sync; the server's workflow lacks task 3 and has a task 42.
    server_tasks = [t for t in spec.tasks if t.task_id != 3] + [TaskSpec(42, 2, 1, status="R")]
    server = InstantServer.for_topology(attrs.evolve(spec, tasks=server_tasks))
    record_run(path, spec, SwarmConfig(wedged_sync_interval=-1, timeout=100.0), server=server)
    report = drift_report(path)
    log = read_log(path)
    full = {
        c.command_id for r in log.records for c in r.commands
        if type(c).__name__ == "FetchTaskStatuses" and c.since is None  # type: ignore[union-attr]
    }
    assert len(report) == len(full) > 0
    first = report[0]
    assert first.drift.local_only == [3]
    assert first.drift.server_only == [42]
    # Queued at 0, reported R then D by the first full sync: local Q vs server D.
    assert (1, "Q", "D") in first.drift.differed
    # The report agrees with full_sync_drift on the state before that record.
    before = replay(path, until=first.seq - 1).state
    record = log.records[first.seq - 1]
    assert isinstance(record.event, TaskStatusesFetched)
    assert full_sync_drift(before, record.event) == first.drift
    assert decide(before, record.event).state.task_status(1) == "D"
    code, out = run_cli(["replay", str(path), "--drift"])
    assert f"drift: {len(report)} full sync(s)" in out
    assert f"  record {first.seq} (line {first.line}, command {first.command_id}" in out
    assert "    local only: 3" in out and "    server only: 42" in out
    assert code == 0


def test_no_full_sync_in_the_pipeline(pipeline_log: Path) -> None:
    assert drift_report(pipeline_log) == []
    _, out = run_cli(["replay", str(pipeline_log), "--drift"])
    assert "drift: no full sync in the replayed records" in out


# The worked examples in docs/cli-replay-explain.md are run by tests/test_cli_docs.py.
