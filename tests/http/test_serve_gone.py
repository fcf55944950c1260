"""A real ``swarmfold serve`` process goes away under a real ``swarmfold run`` process, three
ways: killed and never back, stopped (port open, no answers), restarted with a fresh world. Each
run ends within its run-level bound (``--server-timeout``) with exit code 1, a JSON outcome
``server_unreachable`` naming the last failure, and an event log that replays."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from swarmfold.shell.log.replay import replay

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "three_array_pipeline.json"
BOUND = 2.0
SLACK = 8.0  # process start-up, the request timeout in flight, the log's close


def start_serve(tmp_path: Path, name: str, port: int = 0) -> tuple[subprocess.Popen[str], str]:
    url_file = tmp_path / f"{name}.url"
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmfold", "serve", str(EXAMPLE), "--time-scale", "5",
         "--port", str(port), "--url-file", str(url_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    deadline = time.monotonic() + 30
    while not (url_file.exists() and url_file.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
        time.sleep(0.05)
    return proc, url_file.read_text().strip()


def start_run(url: str, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "swarmfold", "run", "--server", url, "--workflow-id", "1",
         "--workflow-run-id", "1", "--heartbeat-interval", "0.2", "--wedged-sync-interval", "1",
         "--http-timeout", "0.5", "--server-timeout", str(BOUND), "--progress", "off", "--json",
         "--log", str(tmp_path / "run.log")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_records(log: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_bytes().count(b"\n") >= count):
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


@contextmanager
def reaped(*procs: subprocess.Popen[str]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                with_signal(proc, signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=10)


def with_signal(proc: subprocess.Popen[str], sig: int) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)


def ended(run: subprocess.Popen[str], since: float, tmp_path: Path,
          reason: str = "server_unreachable") -> tuple[dict, float]:
    out, err = run.communicate(timeout=BOUND + 60)
    took = time.monotonic() - since
    assert run.returncode == 1, err[-2000:]
    assert "Traceback" not in err
    outcome = json.loads(out)
    assert outcome["failed_reason"] == reason, (outcome["failed_reason"], outcome["message"])
    result = replay(tmp_path / "run.log")
    assert result.ok, result
    print(f"ended {took:.1f} s after the fault: {outcome['message']}")
    return outcome, took


def test_serve_killed_and_never_back(tmp_path: Path) -> None:
    serve, url = start_serve(tmp_path, "serve")
    run = start_run(url, tmp_path)
    with reaped(serve, run):
        wait_for_records(tmp_path / "run.log", 40)
        serve.kill()
        killed = time.monotonic()
        outcome, took = ended(run, killed, tmp_path)
    assert "connection" in outcome["message"] and url in outcome["message"]
    assert took < BOUND + SLACK, took


def test_serve_stopped_port_open_no_answers(tmp_path: Path) -> None:
    serve, url = start_serve(tmp_path, "serve")
    run = start_run(url, tmp_path)
    with reaped(serve, run):
        wait_for_records(tmp_path / "run.log", 40)
        with_signal(serve, signal.SIGSTOP)
        stopped = time.monotonic()
        outcome, took = ended(run, stopped, tmp_path)
    assert "timeout" in outcome["message"], outcome["message"]
    assert took < BOUND + SLACK, took


@pytest.mark.skipif(sys.platform != "linux", reason="rebinding the same port at once needs SO_REUSEADDR")
def test_serve_restarted_with_a_fresh_world(tmp_path: Path) -> None:
    """The fresh server answers every route, but knows none of the run's bound resources. The
    wedged-sync full sync shows the queued tasks back in G, the swarm queues them again (as
    Jobmon's would) and the server answers 400 unknown task_resources_id: an answer that will
    never change, so the run ends at once (``server_forgot_run``)."""
    serve, url = start_serve(tmp_path, "serve")
    run = start_run(url, tmp_path)
    port = int(url.rsplit(":", 1)[1])
    fresh: subprocess.Popen[str] | None = None
    try:
        wait_for_records(tmp_path / "run.log", 40)
        serve.kill()
        serve.wait(timeout=10)
        fresh, _ = start_serve(tmp_path, "fresh", port)
        restarted = time.monotonic()
        outcome, took = ended(run, restarted, tmp_path, "server_forgot_run")
    finally:
        for proc in (serve, run, fresh):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert "queue_task_batch" in outcome["message"] and "unknown task_resources_id" in outcome["message"]
    # one wedged-sync interval (1 s) to see the reset, then the first batch ends it
    assert took < 1.0 + SLACK, took
