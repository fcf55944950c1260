"""One scenario format: every bundled example runs under every command that takes a scenario."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from swarmfold.shell.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.json"))
IDS = [e.stem for e in EXAMPLES]


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_fold_simulate_and_sweep_take_every_example(example: Path) -> None:
    code, out = cli("fold", str(example))
    assert code == 0 and "DONE (D)" in out, out
    code, out = cli("simulate", str(example))
    assert code == 0 and "invariants   ok" in out, out
    code, out = cli("sweep", str(example), "--workflow-limit", "1,unlimited", "--jobs", "1")
    assert code == 0 and "invariants   ok at every point" in out, out


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_scenario_from_log_round_trips_every_example(example: Path, tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    assert cli("simulate", str(example), "--log", str(log))[0] == 0
    rebuilt = tmp_path / "from-log.json"
    code, out = cli("scenario-from-log", str(log), "-o", str(rebuilt))
    assert code == 0, out
    code, out = cli("fold", str(rebuilt))
    assert code in (0, 1) and "tasks " in out, out  # 1: the rebuilt run need not end DONE
    code, out = cli("simulate", str(rebuilt))
    assert code == 0 and "invariants   ok" in out, out


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_demo_serves_and_runs_every_example_over_http(example: Path) -> None:
    code, out = cli("demo", str(example))
    assert "replay: " in out and ": OK: " in out, out
    assert code == (0 if "DONE (D)" in out else 1)
