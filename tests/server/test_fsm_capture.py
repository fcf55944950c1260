"""The server state machines of ``shell/server/fsm.py`` against real Jobmon 3.6 traffic, and
every fake server of swarmfold against the tables.

The capture (tests/http/data/capture.jsonl) is the arbiter: each workflow-run status request
it holds (``update_status``, ``log_heartbeat``) is replayed, from the status the real run had
just before, against the tables and against each server that answers these routes: the
simulator's ``ServerModel``, the instant server of ``fold`` and the benchmark, the Hypothesis
machine's ``ModelServer`` and the HTTP test stub (over a real loopback socket). Each must
answer the status the real server answered. The task statuses the capture reports over time
must follow the task FSM or one of the raw writes.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from swarmfold.core.commands import LogHeartbeat, UpdateWorkflowRunStatus
from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec, build_topology
from swarmfold.shell.server import fsm
from swarmfold.shell.server.instant import InstantServer
from swarmfold.shell.server.model import ServerModel
from swarmfold.testing import ModelServer
from tests.http.jobmon_stub import JobmonStub, StubTask

CAPTURE = Path(__file__).resolve().parents[1] / "http" / "data" / "capture.jsonl"
RUN_ROUTE = re.compile(r"/api/v3/workflow_run/(\d+)/(update_status|log_heartbeat)$")
SET_RESUME = re.compile(r"/api/v3/workflow/(\d+)/set_resume$")
STATUSES = "GLBIORDESACHT"


def exchanges() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]


def run_requests() -> list[tuple[int, str, str, str, str]]:
    """``(seq, route, status before, requested, answered)`` for every captured run-status
    request, the status before tracked from run creation, earlier answers and resumes."""
    runs: dict[int, str] = {}
    workflow_of: dict[int, int] = {}
    found = []
    for x in exchanges():
        path = x["path"]
        if x["method"] == "POST" and path == "/api/v3/workflow_run" and x["status"] == 200:
            run_id = x["response_json"]["workflow_run_id"]
            runs[run_id] = x["response_json"]["status"]
            workflow_of[run_id] = x["request_json"]["workflow_id"]
        elif (m := SET_RESUME.search(path)) and x["status"] == 200:
            workflow_id = int(m.group(1))
            mode = "C" if x["request_json"]["reset_running_jobs"] else "H"
            active = [r for r, s in runs.items() if workflow_of[r] == workflow_id and s in "BR"]
            if active:
                runs[min(active)] = mode
        elif (m := RUN_ROUTE.search(path)) and x["status"] == 200:
            run_id, route = int(m.group(1)), m.group(2)
            answered = x["response_json"]["status"]
            found.append((x["seq"], route, runs[run_id], x["request_json"]["status"], answered))
            runs[run_id] = answered
    return found


RUN_REQUESTS = run_requests()


def test_the_capture_holds_accepted_untimely_and_refused_run_requests() -> None:
    verdicts = {fsm.run_transition(before, asked) for _, _, before, asked, _ in RUN_REQUESTS}
    assert verdicts == {fsm.ACCEPTED, fsm.UNTIMELY, fsm.REFUSED}
    assert len(RUN_REQUESTS) == 58


@pytest.mark.parametrize(("seq", "route", "before", "asked", "answered"), RUN_REQUESTS,
                         ids=[f"seq{r[0]}-{r[2]}to{r[3]}" for r in RUN_REQUESTS])
def test_the_run_table_answers_as_jobmon_did(
    seq: int, route: str, before: str, asked: str, answered: str
) -> None:
    verdict = fsm.run_transition(before, asked)
    assert answered == (asked if verdict == fsm.ACCEPTED else before)


# --- every fake server answers run-status requests as the table does -------------------------


def _spec() -> TopologySpec:
    return TopologySpec(tasks=[TaskSpec(1, 1, 1)], arrays=[ArraySpec(1, "a")],
                        resource_sets=[ResourceSetSpec(1, "q", {"cores": 1})])


def _sim_model(before: str, route: str, asked: str) -> str:
    server = ServerModel(build_topology(_spec()), run_status=before)
    if route == "log_heartbeat":
        return server.log_heartbeat(asked, 93.0, 1.0)
    return server.update_status(asked, 1.0)


def _instant(before: str, route: str, asked: str) -> str:
    server = InstantServer.for_topology(_spec(), run_status=before)
    command = (LogHeartbeat(1, 1, asked, 93.0) if route == "log_heartbeat"
               else UpdateWorkflowRunStatus(1, 1, asked))
    status: str = server.handle(command, 1.0).status  # type: ignore[union-attr]
    return status


def _hypothesis_model(before: str, route: str, asked: str) -> str:
    server = ModelServer(_spec(), random.Random(0), run_status=before)
    if route == "log_heartbeat":
        return server.log_heartbeat(asked, 93.0, 1.0)
    return server.update_status(asked)


SERVERS: dict[str, Callable[[str, str, str], str]] = {
    "simulator": _sim_model, "instant": _instant, "hypothesis": _hypothesis_model,
}
ALL_PAIRS = [(route, before, asked) for route in ("update_status", "log_heartbeat")
             for before in STATUSES for asked in STATUSES]


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_every_in_process_server_follows_the_run_table(server: str) -> None:
    answer = SERVERS[server]
    wrong = []
    for route, before, asked in ALL_PAIRS:
        expected = asked if fsm.run_transition(before, asked) == fsm.ACCEPTED else before
        got = answer(before, route, asked)
        if got != expected:
            wrong.append(f"{route} {before}->{asked}: {got}, table says {expected}")
    assert wrong == []


@pytest.fixture(scope="module")
def http_stub() -> Iterator[JobmonStub]:
    with JobmonStub([StubTask(1)]) as stub:
        yield stub


@pytest.mark.parametrize(("seq", "route", "before", "asked", "answered"), RUN_REQUESTS,
                         ids=[f"seq{r[0]}" for r in RUN_REQUESTS])
def test_the_http_stub_answers_the_captured_requests_as_jobmon_did(
    http_stub: JobmonStub, seq: int, route: str, before: str, asked: str, answered: str
) -> None:
    http_stub.set_run_status(before)
    url = f"{http_stub.url}/api/v3/workflow_run/1/{route}?client_jobmon_version=3.6.0"
    body: dict[str, Any] = {"status": asked}
    if route == "log_heartbeat":
        body["next_report_increment"] = 3.1
        response = requests.post(url, json=body, timeout=10)
    else:
        response = requests.put(url, json=body, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": answered}


# --- task statuses --------------------------------------------------------------------------


def _reachable() -> dict[str, set[str]]:
    """Every status reachable from each status by the task FSM and the raw writes."""
    edges: dict[str, set[str]] = defaultdict(set)
    for a, b in fsm.TASK:
        edges[a].add(b)
    for sources, target in fsm.RAW_TASK.values():
        for a in sources:
            edges[a].add(target)
    reach: dict[str, set[str]] = {}
    for start in "GQIORDEAF":
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    return reach


def test_captured_task_statuses_follow_the_task_table() -> None:
    reach = _reachable()
    last: dict[tuple[int, int], str] = {}
    checked = 0
    for x in exchanges():
        m = re.search(r"/api/v3/workflow/(\d+)/task_status_updates$", x["path"])
        if not m or x["status"] != 200:
            continue
        workflow_id = int(m.group(1))
        for status, task_ids in x["response_json"]["tasks_by_status"].items():
            for task_id in task_ids:
                key = (workflow_id, task_id)
                before = last.get(key)
                if before is not None and before != status:
                    assert status in reach[before], f"seq {x['seq']}: task {task_id} {before} -> {status}"
                    checked += 1
                last[key] = status
    assert checked > 50


def test_the_coupling_of_instance_and_task_statuses() -> None:
    assert fsm.task_after_instance("D", 1, 3) == ("D", "D")
    assert fsm.task_after_instance("E", 1, 3) == ("E", "G")
    assert fsm.task_after_instance("E", 3, 3) == ("E", "F")
    assert fsm.task_after_instance("Z", 1, 3) == ("E", "A")
    assert fsm.task_after_instance("F", 1, 3) == ("E", "F")
    for new, final in (("E", "G"), ("E", "A"), ("E", "F"), ("D", "D")):
        assert fsm.task_transition_allowed("R", new) and fsm.task_transition_allowed(new, final)


def test_no_second_status_table_outside_the_server_fsm_and_the_core() -> None:
    """One model of each thing: no other module defines a run, task or instance table."""
    root = Path(__file__).resolve().parents[2]
    table = re.compile(r"^\s*[A-Z_]*(TRANSITIONS|UNTIMELY)\w*\s*[:=]", re.M)
    offenders = [
        str(path.relative_to(root))
        for folder in ("shell", "tests", "property_tests", "bench")
        for path in (root / folder).rglob("*.py")
        if table.search(path.read_text(encoding="utf-8")) and path != root / "shell" / "server" / "fsm.py"
    ]
    assert offenders == []


@pytest.fixture(scope="module")
def served_model() -> Any:
    from swarmfold.shell.http.serve import JobmonServer
    from swarmfold.shell.sim.scenario import load_scenario

    return JobmonServer(load_scenario(Path(__file__).resolve().parents[2] / "examples" / "diamond.json"))


@pytest.mark.parametrize(("seq", "route", "before", "asked", "answered"), RUN_REQUESTS,
                         ids=[f"seq{r[0]}" for r in RUN_REQUESTS])
def test_the_server_models_answer_to_the_captured_requests_is_jobmons(
    served_model: Any, seq: int, route: str, before: str, asked: str, answered: str
) -> None:
    """``answer(request, now)`` of the model behind ``serve`` and the simulator."""
    from swarmfold.shell.http.routes import Request

    served_model.model.run_status = before
    body: dict[str, Any] = {"status": asked}
    method = "PUT"
    if route == "log_heartbeat":
        body["next_report_increment"] = 3.1
        method = "POST"
    response = served_model.answer(Request(method, f"/workflow_run/1/{route}", (), body), 10.0)
    assert (response.status, response.body) == (200, {"status": answered})
