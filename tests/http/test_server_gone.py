"""The runner gives up on a server that is gone: killed and never back, or answering only that it
no longer knows the run. It ends within the run-level bound (``unreachable_after``) with exit
code 1, a message naming the server, the route and the last failure, and an event log that
replays with the same decisions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from swarmfold.core.config import SwarmConfig
from swarmfold.shell.http.attach_run import run_workflow_run
from swarmfold.shell.http.gateway import RetryPolicy
from swarmfold.shell.log.replay import replay

from .jobmon_stub import Fault, JobmonStub, layered_tasks

BOUND = 1.5
PATIENT = RetryPolicy(max_attempts=10_000, max_seconds=60.0, backoff_base=0.02, backoff_max=0.1)


def start_run(stub: JobmonStub, tmp_path: Path) -> tuple[threading.Thread, list]:
    box: list = []

    def go() -> None:
        box.append(run_workflow_run(
            stub.url, stub.workflow_id, 1, config=SwarmConfig(heartbeat_interval=0.1), retry=PATIENT,
            unreachable_after=BOUND, timeout=0.5, progress="off", install_signal_handlers=False,
            lock_dir=str(tmp_path), log_path=tmp_path / "run.log",
        ))

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, box


def test_a_killed_server_ends_the_run_within_the_bound(tmp_path: Path) -> None:
    stub = JobmonStub(layered_tasks(12), hold=range(1, 13)).start()
    thread, box = start_run(stub, tmp_path)
    deadline = time.monotonic() + 20
    while not stub.requests_to("log_heartbeat") and time.monotonic() < deadline:
        time.sleep(0.05)
    stub.stop()  # killed, never back
    killed = time.monotonic()
    thread.join(timeout=30)
    assert box, "the runner did not end"
    took = time.monotonic() - killed
    outcome = box[0]
    assert outcome.exit_code == 1 and outcome.failed_reason == "server_unreachable"
    assert f"the server at {stub.url}" in outcome.message and "connection" in outcome.message
    assert took < BOUND + 5, took
    result = replay(tmp_path / "run.log")
    assert result.ok, result


def test_a_server_that_forgot_the_run_ends_it(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(12)) as stub:
        stub.inject("queue_task_batch", Fault.http(400, '{"error": "unknown task_resources_id 1"}'),
                    times=10_000)
        started = time.monotonic()
        thread, box = start_run(stub, tmp_path)
        thread.join(timeout=30)
    assert box, "the runner did not end"
    outcome = box[0]
    # Not retried, and not waited out: the first such answer ends the run.
    assert outcome.exit_code == 1 and outcome.failed_reason == "server_forgot_run"
    assert "no longer knows" in outcome.message
    assert "queue_task_batch" in outcome.message and "unknown task_resources_id 1" in outcome.message
    assert time.monotonic() - started < BOUND + 3
    assert replay(tmp_path / "run.log").ok


def test_stop_after_executions_ends_the_run_as_jobmons_hook_does(tmp_path: Path) -> None:
    import io
    import json

    from swarmfold.shell.cli import main

    with JobmonStub(layered_tasks(12), hold=range(8, 13)) as stub:  # tasks 1-7 can finish
        out = io.StringIO()
        code = main(["run", "--server", stub.url, "--workflow-id", "1", "--workflow-run-id", "1",
                     "--heartbeat-interval", "0.1", "--stop-after-executions", "3", "--json",
                     "--progress", "off", "--log", str(tmp_path / "run.log"), "--max-seconds", "60"],
                    out=out)
        assert stub.runs[1] == "E"
    data = json.loads(out.getvalue())
    assert code == 1 and data["failed_reason"] == "fail_after_n_executions"
    assert replay(tmp_path / "run.log").ok


def test_a_server_that_stops_answering_ends_the_run_within_the_bound(tmp_path: Path) -> None:
    """Port open, no answers: every request times out (0.5 s here) until the bound."""
    with JobmonStub(layered_tasks(12), hold=range(1, 13)) as stub:
        thread, box = start_run(stub, tmp_path)
        deadline = time.monotonic() + 20
        while not stub.requests_to("log_heartbeat") and time.monotonic() < deadline:
            time.sleep(0.05)
        stub.inject("/", Fault.slow(60.0), times=1_000_000)  # every route hangs
        stopped = time.monotonic()
        thread.join(timeout=30)
        took = time.monotonic() - stopped
    assert box, "the runner did not end"
    outcome = box[0]
    assert outcome.exit_code == 1 and outcome.failed_reason == "server_unreachable"
    assert "timeout" in outcome.message
    assert took < BOUND + 5, took
    assert replay(tmp_path / "run.log").ok
