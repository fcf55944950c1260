"""``ModelServer``: the one server model under the machine's driver and faults.

Every status change goes through the ``ServerModel`` it holds (no state of its own), and its
answers are ``answer_command``'s, with the injected faults on top.
"""

from __future__ import annotations

import random

from swarmfold.core.commands import (
    FetchTaskStatuses,
    LogHeartbeat,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
)
from swarmfold.core.events import (
    BatchQueued,
    BatchQueueFailed,
    StatusUpdateFailed,
    TaskStatusesFetched,
)
from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec
from swarmfold.shell.server.in_process import answer_command
from swarmfold.shell.server.model import ServerModel, server_time
from swarmfold.testing import ModelServer


def _server(**statuses: str) -> ModelServer:
    """Tasks 1 -> 2, and 3 (statuses by ``t1=...``), one array, ``max_attempts`` 2."""
    tasks = [TaskSpec(1, 10, 1, status=statuses.get("t1", "G"), max_attempts=2),
             TaskSpec(2, 10, 1, upstream_ids=(1,), status=statuses.get("t2", "G"), max_attempts=2),
             TaskSpec(3, 10, 1, status=statuses.get("t3", "G"), max_attempts=2)]
    spec = TopologySpec(tasks=tasks, arrays=[ArraySpec(10, "a", 5)],
                        resource_sets=[ResourceSetSpec(1, "all.q", {"cores": 1})], workflow_limit=5)
    return ModelServer(spec, random.Random(0), now=0.0, ti_report_increment=10.0)


def _queue(server: ModelServer, *task_ids: int, now: float = 1.0) -> None:
    event = server.answer(QueueBatch(1, 10, task_ids, 1, 1), now)
    assert isinstance(event, BatchQueued)


def test_all_state_is_the_models() -> None:
    server = _server()
    assert isinstance(server.model, ServerModel)
    _queue(server, 1, 3)
    server.set_workflow_limit(3)
    server.set_array_limit(10, 2)
    assert server.status == server.model.statuses_by_task() == {1: "Q", 2: "G", 3: "Q"}
    assert server.attempts == {1: 1, 2: 0, 3: 1}
    assert (server.workflow_limit, dict(server.array_limits)) == (3, {10: 2})
    assert server.run_status == server.model.run_status == "R"


def test_a_step_is_launch_run_done_through_the_cluster_side() -> None:
    server = _server()
    _queue(server, 1, 3)
    assert [server.advance(1, "step", 2.0) for _ in range(3)] == ["O", "R", "D"]
    assert server.status[3] == "Q"  # only the chosen instance was launched
    assert server.active_tasks() == [3]
    assert server.advance(1, "step", 3.0) == "D"  # nothing left to move


def test_errors_follow_the_attempts() -> None:
    server = _server()
    _queue(server, 1, 3)
    assert server.advance(1, "error", 2.0) == "O"  # an error needs a launched instance
    assert server.advance(1, "error", 2.0) == "G"  # attempt 1 of 2: retry
    _queue(server, 1, now=3.0)
    server.advance(1, "step", 3.0)
    assert server.advance(1, "resource_error", 3.0) == "F"  # attempts exhausted
    server.advance(3, "step", 4.0)
    assert server.advance(3, "resource_error", 4.0) == "A"
    _queue(server, 3, now=5.0)
    server.advance(3, "step", 5.0)
    assert server.advance(3, "fatal", 5.0) == "F"


def test_a_lost_worker_is_triaged_then_resolved_as_an_error() -> None:
    server = _server()
    _queue(server, 1)
    server.advance(1, "step", 1.0)
    server.advance(1, "step", 1.0)
    assert server.advance(1, "lost", 2.0) == "R"
    assert server.active_tasks() == []  # silent until triaged
    server.answer(RequestTriage(2, 1), 5.0)
    assert server.active_tasks() == []  # not overdue yet
    server.answer(RequestTriage(3, 1), 12.0)
    assert server.active_tasks() == [1]
    assert server.advance(1, "step", 12.0) == "G"  # resolved as U: retry


def test_terminate_kills_launched_and_orphans_queued_instances() -> None:
    server = _server(t3="R")  # task 3 starts running: it gets an instance of its own
    _queue(server, 1)
    assert server.active_tasks() == [1, 3]
    server.answer(TerminateTaskInstances(2, 1), 2.0)
    assert server.orphaned == {1} and server.killed == {3}
    assert server.active_tasks() == [3]
    assert server.advance(3, "step", 3.0) == "F"  # the distributor kills it


def test_resume_and_the_reaper() -> None:
    server = _server(t3="R")
    assert server.resume("C") and server.run_status == "C" and server.run_status_forced
    assert server.reap(1.0) is None  # the heartbeat has not lapsed
    assert server.reap(200.0) is None  # the running instance is ordered to die first
    server.advance(3, "step", 200.0)
    assert server.reap(201.0) == "T"
    assert not server.resume("H")


def test_a_cli_change_without_a_status_date_bump_is_missed_by_incremental_syncs() -> None:
    server = _server(t1="D")
    server.cli_set_status(1, "G", 5.0, bump=False)
    event = server.answer(FetchTaskStatuses(1, 1, server_time(5.0)), 6.0)
    assert isinstance(event, TaskStatusesFetched) and event.tasks_by_status == {}
    server.cli_set_status(1, "D", 7.0, bump=True)
    server.cli_set_status(1, "G", 7.0, bump=True)
    event = server.answer(FetchTaskStatuses(2, 1, server_time(6.0)), 8.0)
    assert event.tasks_by_status == {"G": (1,)}
    assert server.attempts[1] == 0


def test_stale_and_phantom_content_rides_on_the_next_answer_only() -> None:
    server = _server()
    _queue(server, 1)
    server.inject_stale(0, stale_first=False)
    server.inject_phantom(3, "E")
    server.advance(1, "step", 2.0)
    event = server.answer(FetchTaskStatuses(2, 1, None), 2.0)
    assert event.tasks_by_status == {"Q": (1,), "G": (2,), "E": (3,)}
    event = server.answer(FetchTaskStatuses(3, 1, None), 2.0)
    assert event.tasks_by_status == {"O": (1,), "G": (2, 3)}


def test_answers_are_answer_commands() -> None:
    server, twin = _server(), _server().model
    for command in (QueueBatch(1, 10, (1, 3), 1, 1), LogHeartbeat(2, 1, "R", 93.0),
                    UpdateWorkflowRunStatus(3, 1, "D"), FetchTaskStatuses(4, 1, None)):
        duration = 0.01 * len(command.task_ids) if isinstance(command, QueueBatch) else None
        assert server.answer(command, 1.0) == answer_command(twin, command, 1.0, duration)


def test_a_failed_answer_may_have_been_carried_out() -> None:
    server = _server()
    event = server.fail(QueueBatch(1, 10, (1,), 1, 1), 1.0, applied=True)
    assert isinstance(event, BatchQueueFailed) and server.status[1] == "Q"
    assert isinstance(server.fail(UpdateWorkflowRunStatus(2, 1, "E"), 1.0), StatusUpdateFailed)
    assert server.run_status == "R"
    server.fail(UpdateWorkflowRunStatus(3, 1, "E"), 1.0, applied=True)
    assert server.run_status == "E"


def test_early_starts_are_recorded() -> None:
    server = _server()
    _queue(server, 2)
    assert server.early_starts == [(2, (1,))]
