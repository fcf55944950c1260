"""Jobmon's ``compute_resources_callable`` for an attached run: callables given by task or
array, called once per task when it becomes ready, their answers in the event log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarmfold.core.config import SwarmConfig
from swarmfold.shell.http.attach_run import run_workflow_run
from swarmfold.shell.log.replay import replay

from .jobmon_stub import JobmonStub, layered_tasks


def attach(stub: JobmonStub, tmp_path: Path, **kwargs: Any) -> Any:
    return run_workflow_run(
        stub.url, 1, 1, config=SwarmConfig(heartbeat_interval=0.1), progress="off",
        install_signal_handlers=False, lock_dir=str(tmp_path), log_path=tmp_path / "run.log",
        route_prefix=stub.prefix, **kwargs,
    )


def test_callables_by_array_and_by_task_size_the_tasks_they_name(tmp_path: Path) -> None:
    calls: list[str] = []

    def by_array() -> dict[str, int]:
        calls.append("array")
        return {"cores": 3}

    def by_task() -> dict[str, int]:
        calls.append("task")
        return {"cores": 5}

    tasks = layered_tasks(8, layers=2, arrays=2)  # layer 0: array 1, layer 1: array 2
    with JobmonStub(tasks) as stub:
        outcome = attach(stub, tmp_path, compute_resources={"array:1": by_array, "task:2": by_task})
        bound = {b.body["requested_resources"]["cores"] for b in stub.requests_to("bind_resources")}
    assert outcome.exit_code == 0, outcome
    # array 1 holds tasks 1-4; task 2's own callable wins over its array's
    assert sorted(calls) == ["array"] * 3 + ["task"]
    assert bound == {1, 3, 5}
    result = replay(tmp_path / "run.log")  # no callable given: the recorded answers are used
    assert result.ok


def test_a_bad_selector_is_bad_input(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(2, layers=1)) as stub:
        outcome = attach(stub, tmp_path, compute_resources={"template:x": dict})
    assert outcome.exit_code == 2 and "'task:<id>' or 'array:<id>'" in outcome.message
