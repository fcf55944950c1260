"""The route table: every server command has one route, and requests round-trip through it."""

from __future__ import annotations

import pytest

from swarmfold.core.commands import (
    FetchArrayLimit,
    FetchTaskStatuses,
    LogHeartbeat,
    QueueBatch,
    WakeAt,
)
from swarmfold.core.events import ArrayLimitFetched, TaskStatusesFetched
from swarmfold.core.protocol import SERVER_COMMANDS
from swarmfold.shell.http import routes
from swarmfold.shell.http.parsing import ResponseError


def test_every_server_command_has_a_route_on_the_swarm_table() -> None:
    assert set(routes.COMMAND_ROUTES) == set(SERVER_COMMANDS)
    for spec in routes.COMMAND_ROUTES.values():
        assert spec.route in routes.SWARM_ROUTES


def test_a_command_request_matches_back_to_its_route() -> None:
    command = QueueBatch(1, 17, (4, 5), 9, 2, 3)
    request = routes.request_for(command)
    assert request.method == "POST" and request.path == "/array/17/queue_task_batch"
    assert request.body == {"task_ids": [4, 5], "task_resources_id": 9, "workflow_run_id": 2, "cluster_id": 3}
    found = routes.match(request.method, request.path)
    assert found == (routes.QUEUE_TASK_BATCH, {"array_id": "17"})


def test_labels_name_routes_without_their_values() -> None:
    assert routes.QUEUE_TASK_BATCH.label == "POST /array/{id}/queue_task_batch"
    assert routes.GET_QUEUE.label == "GET /cluster/{id}/queue/{name}"
    assert routes.GET_CLUSTER.path(cluster_name="a b/c") == "/cluster/a%20b%2Fc"
    assert routes.match("GET", "/cluster/a%20b%2Fc") == (routes.GET_CLUSTER, {"cluster_name": "a b/c"})
    assert routes.match("DELETE", "/cluster/x") is None
    assert routes.match("GET", "/cluster/1/queue/q/extra") is None


def test_answers_become_events_and_bad_shapes_name_the_field() -> None:
    heartbeat = LogHeartbeat(3, 8, "R", 90.0)
    assert routes.request_for(heartbeat).body == {"status": "R", "next_report_increment": 90.0}
    sync = FetchTaskStatuses(4, 1, "2026-01-01 00:00:05")
    assert routes.request_for(sync).body == {"last_sync": "2026-01-01 00:00:05"}
    event = routes.answer_event(sync, 2.0, {"tasks_by_status": {"D": [1, 2]}, "time": "t"})
    assert event == TaskStatusesFetched(4, 2.0, {"D": (1, 2)}, "t")
    limit = FetchArrayLimit(5, 6)
    assert routes.answer_event(limit, 1.0, {"max_concurrently_running": 7}) == ArrayLimitFetched(5, 1.0, 6, 7)
    with pytest.raises(ResponseError) as info:
        routes.answer_event(limit, 1.0, {"max_concurrently_running": "many"})
    assert info.value.field == "$.max_concurrently_running"
    with pytest.raises(KeyError, match="WakeAt does not talk to the server"):
        routes.request_for(WakeAt(1, 2.0))
