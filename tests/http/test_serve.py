"""``swarmfold serve``: the simulator's server over HTTP, driven by the real runner.

Each run uses a high time scale so a scenario of a few simulated minutes takes about a second.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from swarmfold.shell.cli.demo import BUNDLED_EXAMPLE, run_demo
from swarmfold.shell.http.attach_run import run_workflow_run
from swarmfold.shell.http.runner import RunOutcome
from swarmfold.shell.http.serve import JobmonServer, client_config
from swarmfold.shell.log.replay import replay
from swarmfold.shell.sim.scenario import Scenario, load_scenario, parse_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCALE = 100.0


def _run(server: JobmonServer, tmp_path: Path, **kwargs: Any) -> RunOutcome:
    return run_workflow_run(
        server.url, server.workflow_id, server.workflow_run_id,
        config=client_config(server.scenario, server.time_scale),
        log_path=tmp_path / "run.log", progress="off", install_signal_handlers=False,
        lock_dir=str(tmp_path), **kwargs,
    )


def _get(server: JobmonServer, path: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{server.url}/api/v3{path}", params={"client_jobmon_version": "3.6.0", **params}, timeout=5
    )


def _limited_scenario() -> Scenario:
    """20 tasks in two arrays (limits 2 and 3, workflow limit 4), 8 slots: the limits bind."""
    tasks: list[dict[str, Any]] = [{"task_id": k, "array_id": 1, "resource_set_id": 1} for k in range(1, 11)]
    tasks += [
        {"task_id": 100 + k, "array_id": 2, "resource_set_id": 1, "upstream_ids": [k]} for k in range(1, 11)
    ]
    return parse_scenario({
        "name": "limited",
        "workflow": {"limit": 4, "heartbeat_interval": 10.0},
        "queues": [{"name": "all.q"}],
        "arrays": [
            {"array_id": 1, "limit": 2, "duration": {"distribution": "uniform", "low": 5.0, "high": 15.0}},
            {"array_id": 2, "limit": 3, "duration": {"distribution": "fixed", "seconds": 8.0}},
        ],
        "resource_sets": [{"resource_set_id": 1, "queue": "all.q", "requested": {"cores": 1}}],
        "tasks": tasks,
        "cluster": {"slots": 8},
        "distributor": {"poll_interval": 2.0},
    })


def test_routes_speak_jobmon_json(tmp_path: Path) -> None:
    with JobmonServer(load_scenario(EXAMPLES / "diamond.json"), time_scale=SCALE) as server:
        r = _get(server, "/workflow/1/fetch_workflow_metadata")
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
        assert r.json() == {"workflow": [1, server.dag_id, 10]}
        assert _get(server, "/workflow/9/fetch_workflow_metadata").json() == {"workflow": []}
        assert _get(server, "/time").json()["time"].startswith("2026-01-01 00:00:")
        tasks = _get(server, "/workflow/get_tasks/1", max_task_id=0, chunk_size=2).json()["tasks"]
        assert list(tasks) == ["1", "2"]
        assert tasks["1"] == [1, "G", 3, "{'memory': 0.5, 'runtime': 0.5}", "[]",
                              '{"cores": 1, "memory": 2}', "sim-1", "all.q", 10]
        assert list(_get(server, "/workflow/get_tasks/1", max_task_id=2, chunk_size=5).json()["tasks"]) == [
            "3", "4"
        ]
        down = requests.post(
            f"{server.url}/api/v3/task/get_downstream_tasks", params={"client_jobmon_version": "3.6.0"},
            json={"task_ids": [1, 4], "dag_id": server.dag_id}, timeout=5,
        ).json()["downstream_tasks"]
        assert down == {"1": [1, [2, 3]], "4": [4, None]}
        assert _get(server, "/cluster/sim-1").json()["cluster"][:2] == [1, "sim-1"]
        queue = _get(server, "/cluster/1/queue/all.q").json()["queue"]
        assert queue == [1, "all.q", '{"cores": (1, 8), "memory": (1, 64)}']
        assert _get(server, "/cluster/1/queue/nope.q").json() == {"queue": []}
        missing = requests.get(f"{server.url}/api/v3/no/such/route", timeout=5)
        assert missing.status_code == 404 and "error" in missing.json()
        # No client_jobmon_version is fine too; the versions seen are kept.
        assert requests.get(f"{server.url}/api/v3/health", timeout=5).json() == {"status": "OK"}
        assert server.client_versions == {"3.6.0"}
        bad = requests.put(
            f"{server.url}/api/v3/workflow_run/1/update_status", json={"state": "R"}, timeout=5
        )
        assert bad.status_code == 400
        raw = requests.get(f"{server.url}/api/v3/time", stream=True, timeout=5).raw.read()
        assert "time" in json.loads(gzip.decompress(raw))
        assert server.errors == []


def test_run_against_serve_ends_done_and_the_log_replays(tmp_path: Path) -> None:
    with JobmonServer(load_scenario(EXAMPLES / "diamond.json"), time_scale=SCALE) as server:
        outcome = _run(server, tmp_path)
        snap = server.snapshot()
    assert outcome.final_status == "D", outcome
    assert outcome.exit_code == 0
    assert outcome.summary is not None and outcome.summary.done_count == 4
    assert snap["run_status"] == "D" and snap["count_D"] == 4 and snap["violations"] == []
    assert server.errors == []
    result = replay(tmp_path / "run.log")
    assert result.ok and result.divergence is None and result.error is None
    assert result.records == outcome.events


def test_cold_resume_scheduled_in_the_scenario_ends_terminated(tmp_path: Path) -> None:
    with JobmonServer(load_scenario(EXAMPLES / "cold_resume.json"), time_scale=SCALE) as server:
        outcome = _run(server, tmp_path)
        snap = server.snapshot()
    assert outcome.final_status == "T", outcome
    assert outcome.exit_code == 1
    assert snap["run_status"] == "T"
    assert snap["count_Q"] + snap["count_I"] + snap["count_O"] + snap["count_R"] == 0
    assert replay(tmp_path / "run.log").ok


def test_limits_hold_on_the_server(tmp_path: Path) -> None:
    with JobmonServer(_limited_scenario(), time_scale=SCALE) as server:
        outcome = _run(server, tmp_path)
        server.advance()
        model = server.model
    assert outcome.final_status == "D", outcome
    assert server.violations == []
    assert model.peak_total <= 4
    assert model.peak_by_array[1] <= 2 and model.peak_by_array[2] <= 3
    assert model.peak_total == 4  # the workflow limit was reached: it did bind
    assert set(model.status) == {"D"}
    assert server.batches > 2


def test_user_routes_change_limits_and_resume(tmp_path: Path) -> None:
    with JobmonServer(_limited_scenario(), time_scale=SCALE) as server:
        base = f"{server.url}/api/v3"
        r = requests.put(
            f"{base}/workflow/1/update_max_concurrently_running", json={"max_tasks": 7}, timeout=5
        )
        assert r.status_code == 200
        limit = _get(server, "/workflow/1/get_max_concurrently_running").json()
        assert limit == {"max_concurrently_running": 7}
        r = requests.put(f"{base}/workflow/1/update_array_max_concurrently_running",
                         json={"max_tasks": 1, "task_template_version_id": 2}, timeout=5)
        assert r.status_code == 200
        assert _get(server, "/array/2/get_array_max_concurrently_running").json() == {
            "max_concurrently_running": 1
        }
        assert _get(server, "/array/9/get_array_max_concurrently_running").status_code == 404
        requests.put(f"{base}/workflow_run/1/update_status", json={"status": "R"}, timeout=5)
        assert requests.post(f"{base}/workflow/1/set_resume", json={"reset_running_jobs": True},
                             timeout=5).json() == {}
        hb = requests.post(f"{base}/workflow_run/1/log_heartbeat",
                           json={"status": "R", "next_report_increment": 1.0}, timeout=5)
        assert hb.json() == {"status": "C"}


def test_demo_exits_0(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_demo(time_scale=SCALE, log_path=str(tmp_path / "demo.log"), out=out,
                    install_signal_handlers=False)
    text = out.getvalue()
    assert code == 0, text
    assert "DONE (D)" in text
    assert "14 done, 0 failed, 14 total" in text
    assert "replay: " in text and "OK:" in text
    assert "demo: OK" in text


def test_bundled_example_is_the_file_in_examples() -> None:
    assert json.loads(BUNDLED_EXAMPLE) == json.loads((EXAMPLES / "three_array_pipeline.json").read_text())


def test_serve_command_prints_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmfold", "serve", str(EXAMPLES / "diamond.json"), "--time-scale", "100",
         "--url-file", str(url_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not url_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        url = url_file.read_text().strip()
        meta = requests.get(f"{url}/api/v3/workflow/1/fetch_workflow_metadata", timeout=5).json()
        assert meta["workflow"][0] == 1
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"on {url}/api/v3" in out
    assert "workflow 1, workflow run 1, dag 1: 4 tasks" in out
    assert "--heartbeat-interval 0.1" in out
    assert "stopped at t=" in out


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_time_scale_must_be_positive(scale: float) -> None:
    with pytest.raises(ValueError, match="time_scale"):
        JobmonServer(load_scenario(EXAMPLES / "diamond.json"), time_scale=scale)
