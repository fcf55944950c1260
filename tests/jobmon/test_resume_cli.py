"""``swarmfold resume`` as a user runs it: real processes for the server (``swarmfold serve``),
the first run, the resume and its distributor (the stand-in, started by the resume)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from swarmfold.shell.log.eventlog import read_header
from swarmfold.shell.log.replay import replay

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STAND_IN = Path(__file__).resolve().parent / "stand_in_distributor.py"
SWARMFOLD = [sys.executable, "-m", "swarmfold"]


def serve(tmp_path: Path, scale: str) -> tuple[subprocess.Popen[str], str]:
    url_file = tmp_path / "url"
    proc = subprocess.Popen([*SWARMFOLD, "serve", str(EXAMPLES / "three_array_pipeline.json"), "--time-scale",
                             scale, "--url-file", str(url_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 30
    while not (url_file.exists() and url_file.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
        time.sleep(0.05)
    return proc, url_file.read_text().strip()


def stop_first_run(url: str) -> None:
    argv = [*SWARMFOLD, "run", "--server", url, "--workflow-id", "1", "--workflow-run-id", "1",
            "--heartbeat-interval", "0.1", "--progress", "off", "--stop-after-executions", "2"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "ERROR (E)" in done.stdout, done.stdout + done.stderr


def resume_argv(url: str, tmp_path: Path) -> list[str]:
    start = shlex.join([sys.executable, str(STAND_IN), "--run", "{workflow_run_id}",
                        "--pid-file", str(tmp_path / "distributor.pid")])
    return [*SWARMFOLD, "resume", "--server", url, "--workflow-id", "1", "--start-distributor", start,
            "--heartbeat-interval", "0.1", "--progress", "off", "--json",
            "--log", str(tmp_path / "resume.log")]


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_resume_drives_the_workflow_to_done_starting_its_own_distributor(tmp_path: Path) -> None:
    server, url = serve(tmp_path, "25")
    try:
        stop_first_run(url)
        done = subprocess.run(resume_argv(url, tmp_path), capture_output=True, text=True, timeout=120,
                              check=False)
    finally:
        server.kill()
        server.wait(10)
    assert done.returncode == 0, done.stdout + done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["final_status"] == "D" and outcome["workflow_run_id"] == 2
    assert outcome["summary"]["total_tasks"] == 14
    pid = int((tmp_path / "distributor.pid").read_text())
    assert read_header(tmp_path / "resume.log").extra["resume"]["distributor"]["pid"] == pid
    assert gone(pid)
    assert replay(tmp_path / "resume.log").ok


def test_sigterm_stops_the_resumed_run_and_its_distributor(tmp_path: Path) -> None:
    server, url = serve(tmp_path, "10")
    try:
        stop_first_run(url)
        proc = subprocess.Popen(resume_argv(url, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        log = tmp_path / "resume.log"
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_bytes().count(b"\n") > 20):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        server.kill()
        server.wait(10)
    assert proc.returncode == 1, err
    outcome = json.loads(out)
    assert outcome["final_status"] == "S" and outcome["failed_reason"] == "stopped"
    assert gone(int((tmp_path / "distributor.pid").read_text()))
    assert replay(tmp_path / "resume.log").ok
