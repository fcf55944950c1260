"""``swarmfold resume`` over loopback against the project's server model (``serve`` in-process):
a new workflow run created as Jobmon's resume creates it, a distributor that is a real
subprocess (the stand-in), the run driven to a final status, and every fact in the event log."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from swarmfold.core.config import SwarmConfig
from swarmfold.shell.cli import main
from swarmfold.shell.http.attach_run import run_workflow_run
from swarmfold.shell.http.outcome import RunOutcome
from swarmfold.shell.http.serve import JobmonServer, client_config
from swarmfold.shell.jobmon.resume import JOBMON, resume_workflow
from swarmfold.shell.log.eventlog import read_header
from swarmfold.shell.log.replay import replay
from swarmfold.shell.sim.scenario import load_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STAND_IN = Path(__file__).resolve().parent / "stand_in_distributor.py"
SCALE = 30.0


def first_run(server: JobmonServer, tmp_path: Path, **config: Any) -> RunOutcome:
    return run_workflow_run(
        server.url, server.workflow_id, 1,
        config=SwarmConfig(**{**_cfg(server), **config}),
        log_path=tmp_path / "run1.log", progress="off", install_signal_handlers=False,
        lock_dir=str(tmp_path),
    )


def _cfg(server: JobmonServer) -> dict[str, Any]:
    c = client_config(server.scenario, server.time_scale)
    return {"heartbeat_interval": c.heartbeat_interval, "wedged_sync_interval": c.wedged_sync_interval}


def resume(server: JobmonServer, tmp_path: Path, **kwargs: Any) -> RunOutcome:
    kwargs.setdefault("distributor", None)
    return resume_workflow(
        server.url, server.workflow_id, config=SwarmConfig(**_cfg(server)),
        log_path=tmp_path / "resume.log", progress="off", install_signal_handlers=False,
        lock_dir=str(tmp_path), resume_timeout=30.0, **{"say": io.StringIO(), **kwargs},
    )


def first_run_in_background(
    server: JobmonServer, tmp_path: Path
) -> tuple[threading.Thread, list[RunOutcome]]:
    """Run 1 driven by another swarm in a thread; returns once the server has it RUNNING."""
    box: list[RunOutcome] = []
    thread = threading.Thread(target=lambda: box.append(first_run(server, tmp_path)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while server.snapshot()["run_status"] != "R" and time.monotonic() < deadline:
        time.sleep(0.05)
    return thread, box


def stand_in(*flags: str) -> list[str]:
    return [sys.executable, str(STAND_IN), "--run", "{workflow_run_id}", *flags]


def test_a_run_stopped_in_error_resumes_to_done_with_jobmons_totals(tmp_path: Path) -> None:
    with JobmonServer(load_scenario(EXAMPLES / "three_array_pipeline.json"), time_scale=SCALE) as server:
        stopped = first_run(server, tmp_path, fail_after_n_executions=5)
        assert stopped.final_status == "E" and stopped.failed_reason == "fail_after_n_executions"
        outcome = resume(server, tmp_path)
        snap = server.snapshot()
    assert outcome.exit_code == 0 and outcome.final_status == "D", outcome
    assert outcome.workflow_run_id == 2
    # the preparation's requests are counted with the run's
    prepared = ("POST /workflow_run", "GET /workflow/{id}/is_resumable", "POST /task/{id}/set_resume_state")
    for route in prepared:
        assert outcome.requests.get(route, 0) >= 1, outcome.requests
    summary = outcome.summary
    assert summary is not None
    done_before = stopped.summary.done_count if stopped.summary else -1
    assert (summary.total_tasks, summary.done_count) == (14, 14)
    # the tasks DONE when the resume began: those run 1 saw, and any of its hot tasks that
    # finished in between
    assert done_before <= summary.num_previously_complete < 14
    assert snap["run_status"] == "D" and snap["violations"] == []
    header = read_header(tmp_path / "resume.log")
    assert header.workflow_run_id == 2
    assert header.extra["resume"]["workflow_run_id"] == 2 and header.extra["resume"]["kind"] == "hot"
    assert replay(tmp_path / "resume.log").ok


def test_a_cold_resume_stops_the_active_run_first(tmp_path: Path) -> None:
    """Run 1 is being driven by another swarm: the resume asks for a cold resume (C), that swarm
    drains and ends TERMINATED, and only then is run 2 created and run to DONE."""
    with JobmonServer(load_scenario(EXAMPLES / "three_array_pipeline.json"), time_scale=50.0) as server:
        thread, box = first_run_in_background(server, tmp_path)
        outcome = resume(server, tmp_path, reset_running=True)
        thread.join(30)
    assert box and box[0].final_status == "T", box
    assert outcome.final_status == "D" and outcome.workflow_run_id == 2, outcome
    assert read_header(tmp_path / "resume.log").extra["resume"]["kind"] == "cold"
    assert replay(tmp_path / "run1.log").ok and replay(tmp_path / "resume.log").ok


def test_a_run_that_does_not_exit_in_time_is_not_resumed(tmp_path: Path) -> None:
    with JobmonServer(load_scenario(EXAMPLES / "three_array_pipeline.json"), time_scale=5.0) as server:
        thread, box = first_run_in_background(server, tmp_path)
        # Hot: run 1's tasks run on (minutes at this scale), so run 1 stays H past the wait.
        started = time.monotonic()
        outcome = resume_workflow(server.url, 1, distributor=None, resume_timeout=1.0, progress="off",
                                  install_signal_handlers=False, lock_dir=str(tmp_path), say=io.StringIO())
        took = time.monotonic() - started
        server.model.update_status("T", 0.0)  # let the first swarm end
        thread.join(30)
    assert outcome.failed_reason == "not_resumable" and outcome.exit_code == 1, outcome
    assert "did not exit within 1 s" in outcome.message
    assert took < 6


def test_the_distributor_is_started_recorded_and_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "stand-in.pid"
    said = io.StringIO()
    with JobmonServer(load_scenario(EXAMPLES / "diamond.json"), time_scale=SCALE) as server:
        first_run(server, tmp_path, fail_after_n_executions=1)
        outcome = resume(server, tmp_path, distributor=stand_in("--pid-file", str(marker)), say=said)
    assert outcome.final_status == "D", outcome
    recorded = read_header(tmp_path / "resume.log").extra["resume"]["distributor"]
    assert recorded["argv"][2:4] == ["--run", "2"]
    pid = int(marker.read_text())
    assert recorded["pid"] == pid
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert f"distributor started (pid {pid})" in said.getvalue()
    assert f"distributor (pid {pid}) stopped: exit code 0" in said.getvalue()


def test_the_distributors_death_ends_the_run_as_jobmons_does(tmp_path: Path) -> None:
    scenario = load_scenario(EXAMPLES / "three_array_pipeline.json")
    with JobmonServer(scenario, time_scale=20.0) as server:
        first_run(server, tmp_path, fail_after_n_executions=1)
        outcome = resume(server, tmp_path, distributor=stand_in("--die-after", "1.0"),
                         distributor_check_interval=0.1)
        snap = server.snapshot()
    assert outcome.failed_reason == "distributor_died", outcome
    assert "exited with code 3" in outcome.message
    assert snap["run_status"] == "E"
    result = replay(tmp_path / "resume.log")
    assert result.ok
    died = [line for line in (tmp_path / "resume.log").read_text().splitlines() if "DistributorDied" in line]
    assert died and "exited with code 3" in died[0]


def test_jobmons_distributor_missing_is_a_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("jobmon") else real(name, *a))
    with JobmonServer(load_scenario(EXAMPLES / "diamond.json"), time_scale=SCALE) as server:
        outcome = resume_workflow(server.url, 1, cluster_name="sim-1", distributor=JOBMON, progress="off",
                                  install_signal_handlers=False, say=io.StringIO())
        assert server.model.workflow_run_id == 1  # nothing was created
    assert outcome.exit_code == 2 and outcome.failed_reason == "distributor_unavailable"
    assert "jobmon.distributor.cli" in outcome.message and "--no-distributor" in outcome.message


def test_an_unknown_workflow_is_bad_input(tmp_path: Path) -> None:
    with JobmonServer(load_scenario(EXAMPLES / "diamond.json"), time_scale=SCALE) as server:
        outcome = resume_workflow(server.url, 7, distributor=None, progress="off",
                                  install_signal_handlers=False, say=io.StringIO())
    assert outcome.exit_code == 2 and outcome.failed_reason == "not_found"
    assert "knows no workflow 7" in outcome.message


def test_a_done_workflow_is_not_resumed(tmp_path: Path) -> None:
    with JobmonServer(load_scenario(EXAMPLES / "diamond.json"), time_scale=SCALE) as server:
        assert first_run(server, tmp_path).final_status == "D"
        outcome = resume(server, tmp_path)
    assert outcome.failed_reason == "not_resumable" and "not in a resume-able state" in outcome.message


def test_the_cli_resumes_and_prints_the_new_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with JobmonServer(load_scenario(EXAMPLES / "diamond.json"), time_scale=SCALE) as server:
        first_run(server, tmp_path, fail_after_n_executions=1)
        out = io.StringIO()
        code = main(["resume", "--server", server.url, "--workflow-id", "1", "--no-distributor",
                     "--heartbeat-interval", "0.1", "--progress", "off", "--json",
                     "--log", str(tmp_path / "cli.log")], out=out)
    data = json.loads(out.getvalue())
    assert code == 0 and data["final_status"] == "D" and data["workflow_run_id"] == 2
    err = capsys.readouterr().err
    assert "created workflow run 2 (hot resume)" in err
    assert "python -m jobmon.distributor.cli start --cluster_name CLUSTER --workflow_run_id 2" in err
