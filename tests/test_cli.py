"""The ``swarmfold`` CLI: ``fold`` on the bundled example and on malformed scenarios."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from swarmfold.shell.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pipeline.json"


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def _scenario(tmp_path: Path, data: Any, name: str = "scenario.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def test_fold_example_pipeline_is_done() -> None:
    code, out = _run(["fold", str(EXAMPLE)])
    assert code == 0, out
    assert "DONE (D)" in out
    assert "15 done, 0 failed, 15 total" in out
    assert "events" in out and "commands" in out


def test_fold_json_prints_the_run_summary() -> None:
    code, out = _run(["fold", str(EXAMPLE), "--json"])
    assert code == 0
    summary = json.loads(out)
    assert summary["final_status"] == "D"
    assert summary["done_count"] == summary["total_tasks"] == 15
    assert sorted(summary["tasks_by_status"]["D"]) == [
        101,
        102,
        103,
        104,
        105,
        201,
        202,
        203,
        204,
        205,
        206,
        301,
        302,
        303,
        304,
    ]


def test_fold_is_deterministic() -> None:
    assert _run(["fold", str(EXAMPLE), "--json"]) == _run(["fold", str(EXAMPLE), "--json"])


def test_fold_missing_field_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _example()
    del data["tasks"][3]["array_id"]
    path = _scenario(tmp_path, data)
    code, _ = _run(["fold", path])
    assert code == 2
    err = capsys.readouterr().err
    assert path in err
    assert "$.tasks[3].array_id" in err


def test_fold_wrong_type_and_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _example()
    data["workflow"]["workflow_id"] = "seven"
    code, _ = _run(["fold", _scenario(tmp_path, data)])
    assert code == 2
    assert "$.workflow.workflow_id: expected int, got 'seven'" in capsys.readouterr().err
    data = _example()
    data["workflow"]["heartbeat_interval"] = -1
    code, _ = _run(["fold", _scenario(tmp_path, data)])
    assert code == 2
    assert "$.workflow.heartbeat_interval: must be > 0" in capsys.readouterr().err


def test_fold_unknown_field_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _example()
    data["tasks"][0]["colour"] = "blue"
    code, _ = _run(["fold", _scenario(tmp_path, data)])
    assert code == 2
    assert "colour" in capsys.readouterr().err


def test_fold_invalid_topology_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _example()
    data["tasks"][0]["upstream_ids"] = [304]  # closes a cycle
    code, _ = _run(["fold", _scenario(tmp_path, data)])
    assert code == 2
    assert "cycle" in capsys.readouterr().err


def test_fold_bad_json_and_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path, '{"workflow_id": 1,', name="broken.json")
    assert _run(["fold", path])[0] == 2
    assert "broken.json" in capsys.readouterr().err
    missing = str(tmp_path / "nope.json")
    assert _run(["fold", missing])[0] == 2
    assert "nope.json" in capsys.readouterr().err


def test_fold_run_not_done_exits_1(tmp_path: Path) -> None:
    data = _example()
    data["workflow"]["timeout"] = 15.0  # the instant server needs 50 s (virtual)
    code, out = _run(["fold", _scenario(tmp_path, data)])
    assert code == 1
    assert "ERROR (E)" in out and "timeout" in out


def test_no_subcommand_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "fold" in capsys.readouterr().err


def test_python_dash_m_swarmfold_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "swarmfold", "fold", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "DONE" in proc.stdout


def test_a_closed_pipe_ends_quietly() -> None:
    """``swarmfold simulate ... | true``: the reader is gone before the report is written; no
    BrokenPipeError traceback, exit 0."""
    example = str(Path(__file__).resolve().parents[1] / "examples" / "three_array_pipeline.json")
    proc = subprocess.run(
        f"{sys.executable} -m swarmfold simulate {example} --seeds 1-40 --per-seed --jobs 1 | true; "
        "exit ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
