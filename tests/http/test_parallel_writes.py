"""Scheduling writes (binds and batches) go one at a time, as Jobmon sends them, and the number
of requests on the wire can be capped (parallel writes stall Jobmon's server on SQLite)."""

from __future__ import annotations

from pathlib import Path

from swarmfold.core.config import SwarmConfig
from swarmfold.shell.http.attach_run import run_workflow_run
from swarmfold.shell.http.gateway import RetryPolicy
from swarmfold.shell.http.outcome import RunOutcome
from swarmfold.shell.log.replay import replay

from .jobmon_stub import Fault, JobmonStub, layered_tasks


def run(stub: JobmonStub, tmp_path: Path, **kwargs: object) -> RunOutcome:
    return run_workflow_run(
        stub.url, stub.workflow_id, 1, config=SwarmConfig(heartbeat_interval=0.1),
        retry=RetryPolicy(max_attempts=20, max_seconds=30, backoff_base=0.01, backoff_max=0.05),
        timeout=5.0, progress="off", install_signal_handlers=False, lock_dir=str(tmp_path),
        log_path=tmp_path / "run.log", route_prefix=stub.prefix, **kwargs,  # type: ignore[arg-type]
    )


def distinct_resources(n: int) -> list:
    tasks = layered_tasks(n, layers=1)
    for k, task in enumerate(tasks):
        task.requested = {"cores": 1 + k % 6}  # six resource sets: six binds in one pass
    return tasks


def test_binds_and_batches_are_sent_one_at_a_time(tmp_path: Path) -> None:
    """As Jobmon's ``Scheduler.tick``: bind, then queue, one write after the other (on SQLite a
    bind beside a batch stalled Jobmon's server for about 50 s)."""
    tasks = distinct_resources(24) + layered_tasks(24, layers=1, first_id=100)
    with JobmonStub(tasks) as stub:
        stub.inject("bind_resources", Fault.slow(0.1), times=100)
        stub.inject("queue_task_batch", Fault.slow(0.05), times=100)
        outcome = run(stub, tmp_path)
        binds = len(stub.requests_to("bind_resources"))
        batches = len(stub.requests_to("queue_task_batch"))
        peak = stub.peak_in_flight["schedule"]
    assert outcome.exit_code == 0, outcome
    assert binds == 6 and batches >= 6 and peak == 1
    assert replay(tmp_path / "run.log").ok


def test_max_parallel_requests_caps_every_lane_together(tmp_path: Path) -> None:
    with JobmonStub(distinct_resources(24)) as stub:
        stub.inject("task_status_updates", Fault.slow(0.05), times=100)
        stub.inject("get_array_max", Fault.slow(0.05), times=100)
        outcome = run(stub, tmp_path, max_parallel_requests=1)
        peak = stub.peak_in_flight_total
    assert outcome.exit_code == 0, outcome
    assert peak == 1


def test_without_a_cap_the_lanes_overlap(tmp_path: Path) -> None:
    """The control for the test above: the same run does overlap requests when uncapped."""
    with JobmonStub(distinct_resources(24)) as stub:
        stub.inject("task_status_updates", Fault.slow(0.05), times=100)
        stub.inject("get_array_max", Fault.slow(0.05), times=100)
        outcome = run(stub, tmp_path)
        peak = stub.peak_in_flight_total
    assert outcome.exit_code == 0, outcome
    assert peak > 1
