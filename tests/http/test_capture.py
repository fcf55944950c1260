"""The gateway against the real Jobmon 3.6 capture (tests/http/data/capture.jsonl).

For every swarm exchange on one of the routes the gateway speaks, the test rebuilds the core
command from the captured request, lets the gateway send it through a replaying session that
answers with the captured response, and checks (1) the request the gateway sent is the one
Jobmon sent: method, path, query (``client_jobmon_version`` and the GET message), JSON body;
(2) the captured response parses into the answer event (never a failure event).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from swarmfold.core.commands import (
    BindResources,
    Command,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LoadEdgeChunk,
    LoadTaskChunk,
    LogHeartbeat,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
)
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    EdgeChunkLoaded,
    HeartbeatAcknowledged,
    ResourcesBound,
    StatusUpdateAcknowledged,
    TaskChunkLoaded,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.shell.http.gateway import JobmonGateway
from swarmfold.shell.http.parsing import (
    parse_bound_id,
    parse_edges,
    parse_limit,
    parse_metadata,
    parse_run_status,
    parse_server_time,
    parse_status_updates,
    parse_task_rows,
    parse_tasks_by_status,
)

HERE = Path(__file__).resolve().parent
CAPTURE_CANDIDATES = [
    HERE / "data" / "capture.jsonl",
    HERE.parents[2] / "shared" / "reference" / "jobmon-capture" / "capture.jsonl",
]
CAPTURE = next((p for p in CAPTURE_CANDIDATES if p.exists()), None)

pytestmark = pytest.mark.skipif(
    CAPTURE is None,
    reason="capture.jsonl not found in tests/http/data/ nor ../shared/reference/jobmon-capture/",
)

PREFIX = "/api/v3"


def _exchanges() -> list[dict[str, Any]]:
    assert CAPTURE is not None
    with CAPTURE.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def _swarm(pattern: str) -> list[dict[str, Any]]:
    rx = re.compile(pattern)
    return [x for x in _exchanges() if x["component"] == "swarm" and rx.fullmatch(x["path"][len(PREFIX):])]


class _Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self.content = json.dumps(body).encode()


class ReplaySession:
    """Stands in for ``requests.Session``: records what is sent, answers ``reply``."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []
        self.reply: Any = None

    def request(
        self, method: str, url: str, params: Any = None, json: Any = None, timeout: Any = None
    ) -> _Reply:
        self.sent.append({"method": method, "url": url, "params": dict(params or {}), "json": json})
        return _Reply(200, self.reply)

    def close(self) -> None:
        pass


def _gateway() -> tuple[JobmonGateway, ReplaySession]:
    session = ReplaySession()
    gw = JobmonGateway("http://jobmon.example", session=session, clock=lambda: 1.0)  # type: ignore[arg-type]
    return gw, session


def _ids(path: str) -> list[int]:
    return [int(x) for x in re.findall(r"/(\d+)(?=/|$)", path)]


def _command(x: dict[str, Any]) -> Command | None:
    """The core command that makes the gateway send the captured request."""
    path = x["path"][len(PREFIX):]
    body = x["request_json"]
    ids = _ids(path)
    if path.endswith("/log_heartbeat"):
        return LogHeartbeat(1, ids[0], body["status"], body["next_report_increment"])
    if path.endswith("/update_status"):
        return UpdateWorkflowRunStatus(1, ids[0], body["status"])
    if path.endswith("/terminate_task_instances"):
        return TerminateTaskInstances(1, ids[0])
    if path.endswith("/set_status_for_triaging"):
        return RequestTriage(1, ids[0])
    if path.endswith("/task_status_updates"):
        return FetchTaskStatuses(1, ids[0], body.get("last_sync"))
    if path.endswith("/get_max_concurrently_running") and path.startswith("/workflow/"):
        return FetchWorkflowLimit(1, ids[0])
    if path.endswith("/get_array_max_concurrently_running"):
        return FetchArrayLimit(1, ids[0])
    if path.endswith("/queue_task_batch"):
        return QueueBatch(1, ids[0], body["task_ids"], body["task_resources_id"], body["workflow_run_id"],
                          body["cluster_id"])
    if path == "/task/bind_resources":
        return BindResources(1, "null.q", body["queue_id"], body["requested_resources"],
                             body["task_resources_type_id"])
    if path.startswith("/workflow/get_tasks/"):
        q = x["query"]
        return LoadTaskChunk(1, ids[0], int(q["max_task_id"]), int(q["chunk_size"]))
    if path == "/task/get_downstream_tasks":
        return LoadEdgeChunk(1, body["dag_id"], body["task_ids"])
    return None


ANSWERS = {
    LogHeartbeat: HeartbeatAcknowledged,
    UpdateWorkflowRunStatus: StatusUpdateAcknowledged,
    TerminateTaskInstances: TerminateAcknowledged,
    RequestTriage: TriageRequested,
    FetchTaskStatuses: TaskStatusesFetched,
    FetchWorkflowLimit: WorkflowLimitFetched,
    FetchArrayLimit: ArrayLimitFetched,
    QueueBatch: BatchQueued,
    BindResources: ResourcesBound,
    LoadTaskChunk: TaskChunkLoaded,
    LoadEdgeChunk: EdgeChunkLoaded,
}


def test_every_captured_swarm_request_is_sent_alike_and_its_answer_parses() -> None:
    seen: Counter[str] = Counter()
    for x in _exchanges():
        if x["component"] != "swarm":
            continue
        command = _command(x)
        if command is None:
            continue
        gw, session = _gateway()
        session.reply = x["response_json"]
        event = gw.execute(command)
        where = f"capture seq {x['seq']} {x['method']} {x['path']}"
        assert isinstance(event, ANSWERS[type(command)]), f"{where}: {event}"
        sent = session.sent[-1]
        assert sent["method"] == x["method"], where
        assert urlsplit(sent["url"]).path == x["path"], where
        assert {k: str(v) for k, v in sent["params"].items()} == x["query"], where
        if x["method"] in ("POST", "PUT"):
            assert sent["json"] == x["request_json"], where
        else:
            assert sent["json"] is None, where
        seen[type(command).__name__] += 1
    # Every one of the 11 command routes occurs in the capture.
    assert set(seen) == {c.__name__ for c in ANSWERS}, seen
    assert seen["FetchTaskStatuses"] == 52 and seen["LogHeartbeat"] == 37 and seen["QueueBatch"] == 10


def test_captured_answers_carry_the_values() -> None:
    gw, session = _gateway()
    x = _swarm(r"/workflow/get_tasks/\d+")[0]
    session.reply = x["response_json"]
    event = gw.execute(_command(x))  # type: ignore[arg-type]
    assert isinstance(event, TaskChunkLoaded)
    row = event.tasks[0]
    assert (row.task_id, row.array_id, row.status, row.max_attempts) == (28, 3, "G", 1)
    assert row.resource_scales == (("memory", 0.5), ("runtime", 0.5))
    assert row.fallback_queues == ()
    assert row.requested_resources == (("cores", 1),)
    assert (row.cluster_name, row.queue_name, row.array_limit) == ("multiprocess", "null.q", 2147483647)

    x = _swarm(r"/task/get_downstream_tasks")[0]
    edges = parse_edges(x["response_json"])
    assert [(e.task_id, e.node_id, e.downstream_node_ids) for e in edges] == [(28, 27, (28,)), (29, 28, ())]


def test_parsers_accept_every_captured_swarm_response() -> None:
    counts: Counter[str] = Counter()
    for x in _exchanges():
        if x["component"] != "swarm":
            continue
        path = x["path"][len(PREFIX):]
        body = x["response_json"]
        if path.endswith("/task_status_updates"):
            tasks, when = parse_status_updates(body)
            assert when is None or re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", when)
            assert all(isinstance(i, int) for ids in tasks.values() for i in ids)
        elif path.endswith("/queue_task_batch"):
            parse_tasks_by_status(body["tasks_by_status"])
        elif path.endswith(("/log_heartbeat", "/update_status")):
            assert parse_run_status(body) in "GLBAIORDSECHT"
        elif path.endswith("_max_concurrently_running"):
            assert parse_limit(body) == 2147483647
        elif path == "/task/bind_resources":
            assert parse_bound_id(body) >= 1
        elif path == "/time":
            parse_server_time(body)
        elif path.endswith("/fetch_workflow_metadata"):
            meta = parse_metadata(body)
            assert meta is not None and (meta.workflow_id, meta.dag_id) == (2, 2)
        elif path.startswith("/workflow/get_tasks/"):
            assert len(parse_task_rows(body)) == 2
        elif path == "/task/get_downstream_tasks":
            parse_edges(body)
        else:
            continue
        counts[path.rsplit("/", 1)[-1]] += 1
    assert counts["task_status_updates"] == 52
    assert counts["get_array_max_concurrently_running"] == 88
    assert counts["time"] == 4 and counts["bind_resources"] == 4
    assert counts["fetch_workflow_metadata"] == 1 and counts["get_downstream_tasks"] == 1


def test_update_status_refusal_from_the_capture_is_data() -> None:
    """seq 715: update_status B answered O (a refused transition is still a 200)."""
    x = next(x for x in _exchanges() if x["seq"] == 715)
    gw, session = _gateway()
    session.reply = x["response_json"]
    event = gw.execute(_command(x))  # type: ignore[arg-type]
    assert isinstance(event, StatusUpdateAcknowledged) and event.status == "O"
