"""The model's two entry points answer alike: a command in process (``answer_command``, as the
simulator, the instant driver and the Hypothesis server call it) and the same command as an
HTTP request (the route table's request, ``RouteAnswers.answer`` as ``serve`` and the test stub
answer it, and the route table's parser, as the gateway reads it).

Two models of the same scenario receive the same commands at the same times, one through each
entry point; every answer event must be equal, and so must the models' statuses afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmfold.core.commands import (
    BindResources,
    Command,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LogHeartbeat,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
)
from swarmfold.core.events import Event, ResourcesBound, TaskStatusesFetched
from swarmfold.shell.http.routes import answer_event, request_for
from swarmfold.shell.http.serve import JobmonServer
from swarmfold.shell.server.in_process import answer_command
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.scenario import load_scenario
from swarmfold.shell.sim.world import server_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _over_http(server: JobmonServer, command: Command, now: float) -> Event:
    response = server.answer(request_for(command), now)
    assert response.status == 200, (command, response)
    return answer_event(command, now, response.body)


def _progress(model: ServerModel, now: float) -> None:
    """The same cluster step on either model: launch and run every instance; every other one
    finishes, the others' workers vanish (they miss their report-by date)."""
    for k, ti in enumerate(model.instantiate_and_launch(now)):
        model.log_running(ti, now)
        if k % 2 == 0:
            model.log_done(ti, now)
        else:
            model.worker_lost(ti, now)


@pytest.mark.parametrize("example", ["diamond.json", "three_array_pipeline.json"])
def test_in_process_and_http_answers_are_the_same(example: str) -> None:
    scenario = load_scenario(EXAMPLES / example)
    server = JobmonServer(scenario)  # not started: its answers are called directly
    in_process = server_for(scenario, server.topology)
    wfr, wf = scenario.workflow_run_id, scenario.workflow_id
    topo = server.topology
    first_array = topo.array_ids[0]
    firsts = tuple(t for i, t in enumerate(topo.task_ids) if topo.array_of[i] == first_array)
    res = topo.resources_of[0]

    def both(command: Command, now: float) -> Event:
        here = answer_command(in_process, command, now)
        there = _over_http(server, command, now)
        assert here == there, f"{type(command).__name__}: {here} != {there}"
        return here

    both(UpdateWorkflowRunStatus(1, wfr, "R"), 1.0)
    both(LogHeartbeat(2, wfr, "R", 93.0), 1.0)
    both(FetchWorkflowLimit(3, wf), 1.0)
    both(FetchArrayLimit(4, first_array), 1.0)
    bound = both(BindResources(5, res.queue, server.queue_ids[res.queue], tuple(res.requested)), 1.0)
    assert isinstance(bound, ResourcesBound)
    both(QueueBatch(6, first_array, firsts, bound.task_resources_id, wfr), 2.0)
    full = both(FetchTaskStatuses(7, wf, None), 2.0)
    assert isinstance(full, TaskStatusesFetched)
    for model in (in_process, server.model):
        _progress(model, 5.0)
    both(FetchTaskStatuses(8, wf, full.server_time), 6.0)
    late = 5.0 + in_process.ti_report_increment + 1.0  # past every lost worker's report-by date
    both(RequestTriage(9, wfr), late)
    for model in (in_process, server.model):
        assert model.resolve_triaged(late)  # the distributor: no exit status, an error
    both(TerminateTaskInstances(10, wfr), late + 1)
    both(FetchTaskStatuses(11, wf, None), late + 2)
    both(UpdateWorkflowRunStatus(12, wfr, "E"), late + 3)
    assert in_process.statuses_by_task() == server.model.statuses_by_task()
    assert in_process.run_status == server.model.run_status == "E"
