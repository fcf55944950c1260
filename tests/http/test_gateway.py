"""``JobmonGateway`` over real HTTP against the loopback stub: request shapes, retries,
timeouts, refused connections, and bad answers turned into failure events."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from swarmfold.core.commands import (
    BindResources,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LoadEdgeChunk,
    LoadQueues,
    LoadTaskChunk,
    LogHeartbeat,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    BatchQueueFailed,
    ChunkLoadFailed,
    EdgeChunkLoaded,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    QueuesLoaded,
    ResourceBindFailed,
    ResourcesBound,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    SyncPartFailed,
    TaskChunkLoaded,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TerminateFailed,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.topology import QueueSpec
from swarmfold.shell.http.gateway import (
    Attempt,
    GatewayError,
    JobmonGateway,
    ResponseError,
    RetryPolicy,
    WorkflowMetadata,
    failure_event,
    parse_edges,
    parse_metadata,
    parse_queue,
    parse_task_rows,
    parse_tasks_by_status,
)
from swarmfold.shell.server.model import server_time

from .conftest import FAST_RETRY, gateway_for
from .jobmon_stub import Fault, JobmonStub, StubTask, layered_tasks

V = {"client_jobmon_version": "3.6.0"}


def _only(stub: JobmonStub, pattern: str) -> Any:
    hits = stub.requests_to(pattern)
    assert len(hits) == 1, [h.route for h in hits]
    return hits[0]


# --- request shapes ------------------------------------------------------------------------------


@pytest.fixture
def still_stub() -> Iterator[JobmonStub]:
    """The stub with its clock standing at second 1: every change falls in that second."""
    with JobmonStub(layered_tasks(12, layers=3), clock=lambda: 1.0) as server:
        yield server


def test_every_route_sends_the_jobmon_request_shape(still_stub: JobmonStub) -> None:
    stub = still_stub
    gw = gateway_for(stub)

    meta = gw.fetch_workflow_metadata(1)
    assert meta == WorkflowMetadata(1, 7, 2_147_483_647)
    r = _only(stub, "fetch_workflow_metadata")
    assert (r.method, r.path, r.query, r.body) == ("GET", "/workflow/1/fetch_workflow_metadata", V, None)

    assert gw.server_time() == server_time(1)
    r = _only(stub, "GET /time")
    assert (r.path, r.query, r.body) == ("/time", V, None)

    e = gw.execute(LoadTaskChunk(1, 1, 0, 5))
    assert isinstance(e, TaskChunkLoaded) and [t.task_id for t in e.tasks] == [1, 2, 3, 4, 5]
    r = _only(stub, "get_tasks")
    assert (r.method, r.path, r.body) == ("GET", "/workflow/get_tasks/1", None)
    assert r.query == {**V, "max_task_id": "0", "chunk_size": "5"}

    e = gw.execute(LoadEdgeChunk(2, 7, (1, 2)))
    assert isinstance(e, EdgeChunkLoaded) and [x.task_id for x in e.edges] == [1, 2]
    r = _only(stub, "get_downstream_tasks")
    assert (r.method, r.path, r.query, r.body) == ("POST", "/task/get_downstream_tasks", V,
                                                   {"task_ids": [1, 2], "dag_id": 7})

    e = gw.execute(BindResources(3, "null.q", 3, {"cores": 1}))
    assert isinstance(e, ResourcesBound) and e.task_resources_id == 1
    r = _only(stub, "bind_resources")
    assert (r.method, r.query, r.body) == ("POST", V, {
        "queue_id": 3, "task_resources_type_id": "O", "requested_resources": {"cores": 1}})

    e = gw.execute(QueueBatch(4, 1, (1, 2), 1, 1, 5))
    assert isinstance(e, BatchQueued) and e.tasks_by_status == {"Q": (1, 2)}
    assert e.duration is not None and e.duration >= 0
    r = _only(stub, "queue_task_batch")
    assert (r.method, r.path, r.query, r.body) == ("POST", "/array/1/queue_task_batch", V, {
        "task_ids": [1, 2], "task_resources_id": 1, "workflow_run_id": 1, "cluster_id": 5})

    e = gw.execute(LogHeartbeat(5, 1, "B", 93.0))  # O -> B is not a run transition: refused
    assert isinstance(e, HeartbeatAcknowledged) and e.status == "O"
    r = _only(stub, "log_heartbeat")
    assert (r.method, r.path, r.query, r.body) == ("POST", "/workflow_run/1/log_heartbeat", V,
                                                   {"status": "B", "next_report_increment": 93.0})

    e = gw.execute(UpdateWorkflowRunStatus(6, 1, "R"))
    assert isinstance(e, StatusUpdateAcknowledged) and e.status == "R"
    r = _only(stub, "update_status")
    assert (r.method, r.path, r.query, r.body) == ("PUT", "/workflow_run/1/update_status", V, {"status": "R"})

    e = gw.execute(RequestTriage(7, 1))
    assert isinstance(e, TriageRequested)
    r = _only(stub, "set_status_for_triaging")
    assert (r.method, r.path, r.query, r.body) == ("POST", "/workflow_run/1/set_status_for_triaging", V, {})

    e = gw.execute(FetchTaskStatuses(8, 1, None))
    assert isinstance(e, TaskStatusesFetched) and e.server_time == server_time(1)
    assert set(e.tasks_by_status) == {"G", "R"}
    e = gw.execute(FetchTaskStatuses(9, 1, server_time(1)))
    assert isinstance(e, TaskStatusesFetched) and e.tasks_by_status == {"D": (1, 2)}
    full, incremental = stub.requests_to("task_status_updates")
    assert (full.method, full.path, full.query) == ("POST", "/workflow/1/task_status_updates", V)
    assert full.body == {}
    assert incremental.body == {"last_sync": server_time(1)}

    e = gw.execute(FetchWorkflowLimit(10, 1))
    assert isinstance(e, WorkflowLimitFetched) and e.limit == 2_147_483_647
    r = _only(stub, "get_max_concurrently_running")
    assert (r.method, r.path, r.query, r.body) == ("GET", "/workflow/1/get_max_concurrently_running", V, None)

    e = gw.execute(FetchArrayLimit(11, 2))
    assert isinstance(e, ArrayLimitFetched) and (e.array_id, e.limit) == (2, 2_147_483_647)
    r = _only(stub, "get_array_max_concurrently_running")
    assert (r.method, r.path, r.query) == ("GET", "/array/2/get_array_max_concurrently_running", V)

    e = gw.execute(TerminateTaskInstances(12, 1))
    assert isinstance(e, TerminateAcknowledged) and e.num_terminated == 0
    r = _only(stub, "terminate_task_instances")
    assert (r.method, r.path, r.query, r.body) == ("PUT", "/workflow_run/1/terminate_task_instances", V, {})

    # JSON bodies on POST/PUT, gzip accepted everywhere, nothing failed.
    for r in stub.requests:
        assert "gzip" in r.headers["Accept-Encoding"]
        assert r.status == 200, r.route
        if r.method in ("POST", "PUT"):
            assert r.headers["Content-Type"] == "application/json"


def test_responses_are_gzipped_and_the_prefix_is_configurable() -> None:
    with JobmonStub([StubTask(1)], prefix="/custom/v9") as stub:
        raw = requests.get(f"{stub.url}/custom/v9/time", params=V, stream=True)
        assert raw.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(raw.raw.read()).startswith(b'{"time"')
        gw = gateway_for(stub)
        assert gw.route_prefix == "/custom/v9"
        assert isinstance(gw.execute(FetchWorkflowLimit(1, 1)), WorkflowLimitFetched)
        default = JobmonGateway(stub.url, retry=FAST_RETRY)
        event = default.execute(FetchWorkflowLimit(1, 1))
        assert isinstance(event, SyncPartFailed)
        assert "GET /workflow/1/get_max_concurrently_running: HTTP 404 (not retried)" in event.error


def test_client_version_is_configurable(stub: JobmonStub) -> None:
    gw = gateway_for(stub, client_version="3.6.1")
    gw.execute(FetchWorkflowLimit(1, 1))
    assert stub.requests[-1].query == {"client_jobmon_version": "3.6.1"}


def test_bind_resolves_the_queue_id_from_the_task_rows(stub: JobmonStub) -> None:
    gw = gateway_for(stub)
    gw.execute(LoadTaskChunk(1, 1, 0, 500))
    for k in range(3):
        e = gw.execute(BindResources(2 + k, "null.q", 0, {"cores": 1 + k}))
        assert isinstance(e, ResourcesBound)
    assert [r.body["queue_id"] for r in stub.requests_to("bind_resources")] == [3, 3, 3]
    paths = [r.path for r in stub.requests_to("/cluster/")]
    assert paths == ["/cluster/multiprocess", "/cluster/5/queue/null.q"]


# --- retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 502, 503, 504, 423])
def test_5xx_and_423_are_retried(stub: JobmonStub, code: int) -> None:
    attempts: list[Attempt] = []
    gw = gateway_for(stub, on_attempt=attempts.append)
    stub.inject("log_heartbeat", Fault.http(code), times=3)
    e = gw.execute(LogHeartbeat(1, 1, "B", 10.0))
    assert isinstance(e, HeartbeatAcknowledged)
    assert [r.status for r in stub.requests_to("log_heartbeat")] == [code, code, code, 200]
    assert [(a.attempt, a.status, a.will_retry) for a in attempts] == [
        (1, code, True), (2, code, True), (3, code, True), (4, 200, False)]


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_never_retried(stub: JobmonStub, code: int) -> None:
    gw = gateway_for(stub)
    stub.inject("queue_task_batch", Fault.http(code, '{"error": "nope"}'), times=5)
    e = gw.execute(QueueBatch(9, 1, (1,), 1, 1))
    assert isinstance(e, BatchQueueFailed) and e.command_id == 9
    assert len(stub.requests_to("queue_task_batch")) == 1
    assert e.error.startswith(f"POST /array/1/queue_task_batch: HTTP {code} (not retried)")
    assert '{"error": "nope"}' in e.error


def test_the_attempt_budget_is_honoured(stub: JobmonStub) -> None:
    gw = gateway_for(stub, retry=RetryPolicy(max_attempts=3, max_seconds=30, backoff_base=0.01))
    stub.inject("task_status_updates", Fault.http(503), times=10)
    e = gw.execute(FetchTaskStatuses(4, 1, None))
    assert isinstance(e, SyncPartFailed)
    assert len(stub.requests_to("task_status_updates")) == 3
    assert "POST /workflow/1/task_status_updates: gave up after 3 attempt(s)" in e.error
    assert "retry budget spent (3 attempts" in e.error and "last: HTTP 503" in e.error


def test_the_seconds_budget_is_honoured(stub: JobmonStub) -> None:
    gw = gateway_for(stub, retry=RetryPolicy(max_attempts=1000, max_seconds=0.3, backoff_base=0.05,
                                             backoff_max=0.05))
    stub.inject("get_max_concurrently_running", Fault.http(500), times=1000)
    t0 = time.monotonic()
    e = gw.execute(FetchWorkflowLimit(1, 1))
    assert time.monotonic() - t0 < 2.0
    assert isinstance(e, SyncPartFailed) and "/ 0.3 s" in e.error


def test_jobmon_budget_is_the_default() -> None:
    gw = JobmonGateway("http://127.0.0.1:9")
    assert (gw.retry.max_attempts, gw.retry.max_seconds) == (10, 300.0)
    gw2 = JobmonGateway("http://127.0.0.1:9", max_attempts=2, max_retry_seconds=5)
    assert (gw2.retry.max_attempts, gw2.retry.max_seconds) == (2, 5)


def test_dropped_connections_are_retried(stub: JobmonStub) -> None:
    gw = gateway_for(stub)
    stub.inject("update_status", Fault.drop(), times=2)
    e = gw.execute(UpdateWorkflowRunStatus(1, 1, "R"))
    assert isinstance(e, StatusUpdateAcknowledged) and e.status == "R"
    assert [r.status for r in stub.requests_to("update_status")] == [0, 0, 200]


def test_timeouts_are_retried_and_measured(stub: JobmonStub) -> None:
    attempts: list[Attempt] = []
    gw = gateway_for(stub, timeout=0.25, on_attempt=attempts.append)
    stub.inject("queue_task_batch", Fault.slow(0.6), times=1)
    gw.execute(BindResources(1, "null.q", 3, {"cores": 1}))
    e = gw.execute(QueueBatch(2, 1, (1, 2), 1, 1))
    assert isinstance(e, BatchQueued) and e.tasks_by_status == {"Q": (1, 2)}
    assert "read timeout" in attempts[-2].error and attempts[-2].will_retry
    # duration measures the attempt that answered, not the timed-out one
    assert e.duration is not None and e.duration < 0.25


def test_a_slow_answer_within_the_timeout_is_measured(stub: JobmonStub) -> None:
    gw = gateway_for(stub, timeout=2.0)
    gw.execute(BindResources(1, "null.q", 3, {"cores": 1}))
    stub.inject("queue_task_batch", Fault.slow(0.2))
    e = gw.execute(QueueBatch(2, 1, (1,), 1, 1))
    assert isinstance(e, BatchQueued) and e.duration is not None and e.duration >= 0.2


def test_persistent_timeouts_become_a_failure_event(stub: JobmonStub) -> None:
    gw = gateway_for(stub, timeout=0.1, retry=RetryPolicy(max_attempts=2, backoff_base=0.01))
    stub.inject("log_heartbeat", Fault.slow(0.4), times=2)
    e = gw.execute(LogHeartbeat(3, 1, "R", 3.1))
    assert isinstance(e, HeartbeatFailed) and e.command_id == 3
    assert "POST /workflow_run/1/log_heartbeat: gave up after 2 attempt(s)" in e.error
    assert "read timeout" in e.error


def test_connection_refused_then_the_server_comes_back(stub: JobmonStub) -> None:
    gw = gateway_for(stub, retry=RetryPolicy(max_attempts=50, max_seconds=20, backoff_base=0.05,
                                             backoff_max=0.1))
    gw.execute(FetchWorkflowLimit(1, 1))  # a pooled keep-alive connection exists
    stub.restart_after(0.5)
    t0 = time.monotonic()
    e = gw.execute(FetchWorkflowLimit(2, 1))
    assert isinstance(e, WorkflowLimitFetched), e
    assert time.monotonic() - t0 >= 0.4


def test_connection_refused_within_budget_is_a_failure_naming_the_cause(stub: JobmonStub) -> None:
    gw = gateway_for(stub, retry=RetryPolicy(max_attempts=3, backoff_base=0.01))
    stub.stop()
    e = gw.execute(TerminateTaskInstances(5, 1))
    assert isinstance(e, TerminateFailed)
    assert "PUT /workflow_run/1/terminate_task_instances: gave up after 3 attempt(s)" in e.error
    assert "connection error" in e.error
    with pytest.raises(GatewayError, match="fetch_workflow_metadata: gave up"):
        gw.fetch_workflow_metadata(1)


def test_cancel_cuts_the_back_off_short(stub: JobmonStub) -> None:
    gw = gateway_for(stub, retry=RetryPolicy(max_attempts=10, max_seconds=100, backoff_base=5.0,
                                             backoff_max=5.0))
    stub.inject("set_status_for_triaging", Fault.http(503), times=10)
    import threading

    threading.Timer(0.2, gw.cancel).start()
    t0 = time.monotonic()
    e = gw.execute(RequestTriage(1, 1))
    assert time.monotonic() - t0 < 3.0
    assert isinstance(e, SyncPartFailed) and "cancelled" in e.error


# --- bad answers become failure events ---------------------------------------------------------------


def test_malformed_json_is_a_failure_naming_route_and_status(stub: JobmonStub) -> None:
    gw = gateway_for(stub)
    stub.inject("task_status_updates", Fault.malformed('{"tasks_by_status": {"R": [1,'))
    e = gw.execute(FetchTaskStatuses(3, 1, None))
    assert isinstance(e, SyncPartFailed) and e.command_id == 3
    assert e.error.startswith("POST /workflow/1/task_status_updates: HTTP 200: $: invalid JSON")
    assert len(stub.requests_to("task_status_updates")) == 1  # a bad 200 is not retried


@pytest.mark.parametrize(
    ("pattern", "command", "body", "kind", "field", "message"),
    [
        ("task_status_updates", FetchTaskStatuses(1, 1, None),
         {"tasks_by_status": {"R": [1, "x"]}, "time": None},
         SyncPartFailed, '$.tasks_by_status["R"][1]', "expected an int, got 'x'"),
        ("task_status_updates", FetchTaskStatuses(1, 1, None), {"time": "t"},
         SyncPartFailed, "$.tasks_by_status", "required field missing"),
        ("log_heartbeat", LogHeartbeat(1, 1, "R", 3.0), {"state": "R"},
         HeartbeatFailed, "$.status", "required field missing"),
        ("update_status", UpdateWorkflowRunStatus(1, 1, "R"), {"status": 7},
         StatusUpdateFailed, "$.status", "expected a string, got 7"),
        ("get_max_concurrently_running", FetchWorkflowLimit(1, 1), {"max_concurrently_running": "9"},
         SyncPartFailed, "$.max_concurrently_running", "expected an int"),
        ("queue_task_batch", QueueBatch(1, 1, (1,), 1, 1), [1, 2],
         BatchQueueFailed, "$", "expected an object"),
        ("bind_resources", BindResources(1, "null.q", 3, {"cores": 1}), {"id": 3},
         ResourceBindFailed, "$", "expected an int"),
        ("get_tasks", LoadTaskChunk(1, 1, 0, 10), {"tasks": {"5": [1, "G", 3]}},
         ChunkLoadFailed, '$.tasks["5"]', "expected 9 items, got 3"),
        ("get_downstream_tasks", LoadEdgeChunk(1, 7, (1,)), {"downstream_tasks": {"1": [10001, "[1, 'x']"]}},
         ChunkLoadFailed, '$.downstream_tasks["1"][1]', "expected a JSON list string"),
    ],
)
def test_unexpected_shapes_name_route_status_and_field(
    stub: JobmonStub, pattern: str, command: Any, body: Any, kind: type, field: str, message: str
) -> None:
    gw = gateway_for(stub)
    stub.inject(pattern, Fault.body(body))
    e = gw.execute(command)
    assert isinstance(e, kind), e
    assert e.command_id == command.command_id  # type: ignore[attr-defined]
    assert f"HTTP 200: {field}: {message}" in e.error  # type: ignore[attr-defined]
    route = stub.requests_to(pattern)[-1].route
    assert e.error.startswith(route)  # type: ignore[attr-defined]


def test_unknown_status_codes_are_data_not_errors(stub: JobmonStub) -> None:
    gw = gateway_for(stub)
    stub.inject("task_status_updates", Fault.body({"tasks_by_status": {"Z": [1], "R": [2]}, "time": "x"}))
    e = gw.execute(FetchTaskStatuses(1, 1, None))
    assert isinstance(e, TaskStatusesFetched) and e.tasks_by_status == {"Z": (1,), "R": (2,)}
    stub.inject("log_heartbeat", Fault.body({"status": "?"}))
    e2 = gw.execute(LogHeartbeat(2, 1, "R", 3.0))
    assert isinstance(e2, HeartbeatAcknowledged) and e2.status == "?"


def test_execute_never_raises_for_server_commands() -> None:
    class Exploding:
        headers: dict[str, str] = {}

        def request(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("boom")

    gw = JobmonGateway("http://x", session=Exploding(), clock=lambda: 4.5)  # type: ignore[arg-type]
    e = gw.execute(QueueBatch(1, 1, (1,), 1, 1))
    assert isinstance(e, BatchQueueFailed) and e.at == 4.5
    assert "internal error in the gateway: RuntimeError: boom" in e.error
    with pytest.raises(TypeError, match="WakeAt does not talk to the server"):
        gw.execute(WakeAt(1, 3.0))
    assert isinstance(failure_event(LoadTaskChunk(1, 1, 0, 5), 1.0, "x"), ChunkLoadFailed)


def test_answers_are_stamped_with_the_injected_clock(stub: JobmonStub) -> None:
    gw = gateway_for(stub, clock=lambda: 123.25)
    assert gw.execute(RequestTriage(1, 1)).at == 123.25
    stub.inject("set_status_for_triaging", Fault.http(404))
    assert gw.execute(RequestTriage(2, 1)).at == 123.25


# --- the pure parsers ----------------------------------------------------------------------------------


def test_parse_task_rows_reads_python_literals_and_json() -> None:
    body = {"tasks": {
        "12": [2, "A", 5, "{'memory': [2, 4, 8], 'runtime': 0.25}", "['long.q', 'all.q']",
               '{"memory": 2, "runtime": 60, "project": "p"}', "slurm", "all.q", 100],
        "9": [1, "G", 3, "{}", "[]", "{'cores': 1}", "slurm", "all.q", 7],
    }}
    rows = parse_task_rows(body)
    assert [r.task_id for r in rows] == [9, 12]
    r = rows[1]
    assert r.resource_scales == (("memory", (2, 4, 8)), ("runtime", 0.25))
    assert r.fallback_queues == ("long.q", "all.q")
    assert r.requested_resources == (("memory", 2), ("project", "p"), ("runtime", 60))
    assert rows[0].requested_resources == (("cores", 1),) and rows[0].array_limit == 7


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ([1, "G", 3, "{'memory': <function f>}", "[]", "{}", "c", "q", 1], '$.tasks["3"][3]', "not a Python"),
        ([1, "G", 3, "{'memory': 'f'}", "[]", "{}", "c", "q", 1], '$.tasks["3"][3]', "non-numeric"),
        ([1, "G", 3, "{}", "'all.q'", "{}", "c", "q", 1], '$.tasks["3"][4]', "list of names"),
        ([1, "G", 3, "{}", "[]", '{"m": [1]}', "c", "q", 1], '$.tasks["3"][5]', "number or a string"),
        ([1, "G", "3", "{}", "[]", "{}", "c", "q", 1], '$.tasks["3"][2]', "expected an int"),
        ([1, "G", 3, "{}", "[]", "{}", "c", None, 1], '$.tasks["3"][7]', "expected a string"),
        ([True, "G", 3, "{}", "[]", "{}", "c", "q", 1], '$.tasks["3"][0]', "expected an int, got True"),
    ],
)
def test_parse_task_rows_names_the_bad_field(row: list[Any], field: str, message: str) -> None:
    with pytest.raises(ResponseError) as info:
        parse_task_rows({"tasks": {"3": row}}, "GET /workflow/get_tasks/1")
    assert info.value.route == "GET /workflow/get_tasks/1"
    assert info.value.field == field
    assert message in info.value.message


def test_parse_task_rows_rejects_bad_keys() -> None:
    with pytest.raises(ResponseError, match=r'\$\.tasks\["x1"\]: expected a task id key'):
        parse_task_rows({"tasks": {"x1": []}})
    with pytest.raises(ResponseError, match=r"\$\.tasks: expected an object"):
        parse_task_rows({"tasks": []})


def test_parse_edges_accepts_lists_nulls_and_quoted_strings() -> None:
    edges = parse_edges({"downstream_tasks": {
        "3": [30, [40, 50]], "1": [10, None], "2": [20, "[30]"], "4": [40, "null"]}})
    assert [(e.task_id, e.node_id, e.downstream_node_ids) for e in edges] == [
        (1, 10, ()), (2, 20, (30,)), (3, 30, (40, 50)), (4, 40, ())]
    with pytest.raises(ResponseError, match=r'\$\.downstream_tasks\["3"\]\[1\]\[0\]: expected an int'):
        parse_edges({"downstream_tasks": {"3": [30, ["40"]]}})


def test_parse_metadata_and_tasks_by_status() -> None:
    assert parse_metadata({"workflow": []}) is None
    assert parse_metadata({"workflow": [2, 3, 4]}) == WorkflowMetadata(2, 3, 4)
    with pytest.raises(ResponseError, match=r"\$\.workflow: expected \[workflow_id"):
        parse_metadata({"workflow": [2]})
    assert parse_tasks_by_status({}) == {}
    with pytest.raises(ResponseError, match=r'\$\.tasks_by_status\["D"\]: expected an array'):
        parse_tasks_by_status({"D": 5})


def test_load_queues_looks_up_cluster_then_queue_and_parses_bounds(stub: JobmonStub) -> None:
    gw = gateway_for(stub)
    e = gw.execute(LoadQueues(9, (("multiprocess", "null.q"), ("multiprocess", "nowhere.q"))))
    assert isinstance(e, QueuesLoaded) and e.command_id == 9
    # The known queue comes back with the server's ids, its bounds and its cluster type's
    # coercion (multiprocess: validate cores, change nothing); the unknown one is left out.
    assert e.queues == (QueueSpec("null.q", queue_id=3, cluster_id=5, bounds=(("cores", 1.0, 20.0),),
                                  coercion="validate_cores"),)
    paths = [(r.method, r.path) for r in stub.requests if r.path.startswith("/cluster/")]
    assert paths == [("GET", "/cluster/multiprocess"), ("GET", "/cluster/5/queue/null.q"),
                     ("GET", "/cluster/5/queue/nowhere.q")]


def test_parse_queue_reads_python_literal_bounds() -> None:
    assert parse_queue({"queue": []}) is None
    params = "{'memory': (0.128, 1010), 'runtime': (10, 604800), 'x': 'y'}"
    assert parse_queue({"queue": [3, "all.q", params]}) == (
        3, (("memory", 0.128, 1010.0), ("runtime", 10.0, 604800.0)))
    with pytest.raises(ResponseError, match=r"\$\.queue\[2\]"):
        parse_queue({"queue": [3, "all.q", "[1, 2]"]})


def test_a_database_lock_is_retried_promptly() -> None:
    """Jobmon's server on SQLite answers 500 "database is locked" under parallel writes: the
    gateway retries it at once (50 ms steps), not after its exponential back-off."""
    from swarmfold.core.commands import BindResources
    from swarmfold.core.events import ResourcesBound

    from .jobmon_stub import Fault, JobmonStub, StubTask

    slow_backoff = RetryPolicy(max_attempts=10, max_seconds=60.0, backoff_base=5.0, backoff_max=30.0)
    with JobmonStub([StubTask(1)]) as stub:
        locked = '{"error": "(sqlite3.OperationalError) database is locked"}'
        stub.inject("bind_resources", Fault.http(500, locked), times=3)
        gw = JobmonGateway(stub.url, retry=slow_backoff, seed=1)
        t0 = time.monotonic()
        event = gw.execute(BindResources(1, "null.q", 3, {"cores": 1}))
        took = time.monotonic() - t0
        gw.close()
    assert isinstance(event, ResourcesBound)
    assert len(stub.requests_to("bind_resources")) == 4
    assert took < 1.0, took  # three back-offs of up to 5, 10, 20 s otherwise
