"""The JSON codec: exact round trips of every event and command, byte-stable output, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from swarmfold.core.commands import (
    COMMAND_TYPES,
    BindResources,
    Command,
    EvaluateResources,
    Fail,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    Finish,
    LoadEdgeChunk,
    LoadQueues,
    LoadTaskChunk,
    LogHeartbeat,
    NoteAnomaly,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import (
    EVENT_TYPES,
    ArrayLimitFetched,
    AttachStarted,
    BatchQueued,
    BatchQueueFailed,
    ChunkLoadFailed,
    DistributorDied,
    EdgeChunkLoaded,
    EdgeRow,
    Event,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    QueuesLoaded,
    ResourceBindFailed,
    ResourceEvaluationFailed,
    ResourcesBound,
    ResourcesEvaluated,
    RunStarted,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    StopRequested,
    SyncPartFailed,
    TaskChunkLoaded,
    TaskRow,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TerminateFailed,
    TimerFired,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.summary import RunSummary
from swarmfold.core.topology import (
    ArraySpec,
    QueueSpec,
    ResourceSetSpec,
    TaskSpec,
    TopologySpec,
)
from swarmfold.shell.log.codec import (
    CodecError,
    command_from_dict,
    command_to_dict,
    event_from_dict,
    event_to_dict,
    from_json,
    structure,
    to_json,
    unstructure,
)

# --- samples: every field away from its default -----------------------------------------

CONFIG = SwarmConfig(
    heartbeat_interval=10.0,
    report_by_buffer=2.5,
    wedged_sync_interval=-1.0,
    fail_fast=True,
    timeout=7200.0,
    fail_after_n_executions=3,
    max_batch_size=250,
    adaptive_batching=True,
    target_batch_seconds=0.5,
    chunk_size=100,
)

QUEUES = (
    QueueSpec("all.q", queue_id=1, cluster_id=3, bounds=(("memory", 0.5, 64.0), ("cores", 1.0, 8.0))),
    QueueSpec("long.q", queue_id=2, cluster_id=3, bounds=(("memory", 1.0, 512.0),)),
)

TOPOLOGY = TopologySpec(
    tasks=(
        TaskSpec(task_id=11, array_id=2, resource_set_id=5, max_attempts=5),
        TaskSpec(
            task_id=12,
            array_id=2,
            resource_set_id=5,
            upstream_ids=(11,),
            resource_scales=(("memory", 0.75), ("cores", 1), ("runtime", (3600, 7200.5, 14400))),
            fallback_queues=("long.q",),
        ),
        TaskSpec(
            task_id=13,
            array_id=3,
            resource_set_id=6,
            upstream_ids=(11, 12),
            status="A",
            resource_scales=(("memory", "pkg.scales:double_memory"), ("runtime", 0.5)),
            fallback_queues=("all.q", "long.q"),
            compute_resources="pkg.resources:for_task",
        ),
        TaskSpec(task_id=14, array_id=3, resource_set_id=6, status="D", fallback_queues=()),
    ),
    arrays=(ArraySpec(2, name="prep", limit=10), ArraySpec(3, name="fit", limit=4)),
    resource_sets=(
        ResourceSetSpec(5, "all.q", {"memory": 4, "cores": 2, "runtime": 3600.0}),
        ResourceSetSpec(6, "long.q", {"memory": 12.5, "runtime": 86400, "project": "proj_x"}),
    ),
    queues=QUEUES,
    workflow_limit=100,
    default_resource_scales=(("memory", 0.25), ("runtime", (7200, 14400))),
)

SUMMARY = RunSummary(
    final_status="E",
    reason="fail_after_n_executions",
    total_tasks=4,
    done_count=2,
    failed_count=1,
    num_previously_complete=1,
    elapsed=123.375,
    tasks_by_status={"F": (13,), "D": (11, 14), "R": (12,)},
)

TASK_ROWS = (
    TaskRow(
        task_id=21,
        array_id=2,
        status="G",
        max_attempts=3,
        resource_scales=(("memory", 0.5), ("runtime", (60, 120.5)), ("cores", "pkg:cores")),
        fallback_queues=("long.q",),
        requested_resources=(("cores", 1), ("memory", 2.5), ("project", "proj_x")),
        cluster_name="slurm",
        queue_name="all.q",
        array_limit=7,
    ),
    TaskRow(
        task_id=22,
        array_id=2,
        status="Z",
        max_attempts=1,
        resource_scales=(),
        fallback_queues=(),
        requested_resources=(("memory", 8),),
        cluster_name="slurm",
        queue_name="long.q",
        array_limit=7,
    ),
)

EVENT_SAMPLES: list[Any] = [
    RunStarted(
        at=12.25,
        workflow_id=7,
        workflow_run_id=42,
        topology=TOPOLOGY,
        config=CONFIG,
        run_status="R",
        server_time="2024-05-01 12:00:00",
    ),
    AttachStarted(
        at=1.5,
        workflow_id=7,
        workflow_run_id=43,
        dag_id=9,
        workflow_limit=100,
        config=CONFIG,
        run_status="H",
        server_time="2024-05-01 12:00:01",
        queues=QUEUES,
    ),
    TaskChunkLoaded(command_id=3, at=2.5, tasks=TASK_ROWS),
    EdgeChunkLoaded(command_id=4, at=3.0, edges=(EdgeRow(21, 101, (102, 103)), EdgeRow(22, 102))),
    QueuesLoaded(command_id=6, at=3.5, queues=(QueueSpec("long.q", 4, 2, (("memory", 1, 1024),)),)),
    ChunkLoadFailed(command_id=5, at=3.5, error="HTTP 502 from /workflow/get_tasks/7"),
    TaskStatusesFetched(
        command_id=6,
        at=4.0,
        tasks_by_status={"R": (12, 13), "D": (11,), "Z": ()},
        server_time="2024-05-01 12:00:04",
    ),
    TaskStatusesFetched(command_id=60, at=4.25, tasks_by_status={}),
    TriageRequested(command_id=7, at=4.5),
    WorkflowLimitFetched(command_id=8, at=5.0, limit=250),
    ArrayLimitFetched(command_id=9, at=5.5, array_id=2, limit=10),
    SyncPartFailed(command_id=10, at=6.0, error="timed out after 30.0s"),
    BatchQueued(command_id=11, at=6.5, tasks_by_status={"Q": (14, 15), "D": (16,)}, duration=0.125),
    BatchQueued(command_id=61, at=6.75, tasks_by_status={"Q": (17,)}),
    BatchQueueFailed(command_id=12, at=7.0, error="HTTP 500"),
    ResourcesBound(command_id=13, at=7.5, task_resources_id=5001),
    ResourceBindFailed(command_id=14, at=8.0, error="HTTP 400: bad queue"),
    ResourcesEvaluated(
        command_id=15, at=8.5, values={"memory": 12, "runtime": 5400.5, "queue": "long.q"}
    ),
    ResourceEvaluationFailed(command_id=16, at=9.0, error="ZeroDivisionError: division by zero"),
    HeartbeatAcknowledged(command_id=17, at=9.5, status="R"),
    HeartbeatFailed(command_id=18, at=10.0, error="connection refused"),
    StatusUpdateAcknowledged(command_id=19, at=10.5, status="D"),
    StatusUpdateFailed(command_id=20, at=11.0, error="HTTP 409"),
    TerminateAcknowledged(command_id=21, at=11.5, num_terminated=4),
    TerminateFailed(command_id=22, at=12.0, error="HTTP 503"),
    TimerFired(at=12.5, command_id=23),
    TimerFired(at=13.0),
    DistributorDied(at=13.5, detail="distributor pid 4242 exited with 137"),
    StopRequested(at=14.0, reason="SIGTERM"),
]

COMMAND_SAMPLES: list[Any] = [
    QueueBatch(
        command_id=1,
        array_id=2,
        task_ids=(11, 12),
        task_resources_id=5001,
        workflow_run_id=42,
        cluster_id=3,
    ),
    BindResources(
        command_id=2,
        queue="long.q",
        queue_id=2,
        requested={"memory": 12, "runtime": 5400.5, "project": "proj_x"},
        task_resources_type_id="V",
    ),
    EvaluateResources(
        command_id=3,
        task_id=13,
        purpose="resource_scales",
        callables=(("memory", "pkg.scales:double_memory"), ("cores", "pkg:cores")),
        requested=(("cores", 2), ("memory", 8.5), ("project", "proj_x")),
    ),
    LogHeartbeat(command_id=4, workflow_run_id=42, status="R", next_report_increment=25.0),
    UpdateWorkflowRunStatus(command_id=5, workflow_run_id=42, status="D"),
    RequestTriage(command_id=6, workflow_run_id=42),
    FetchTaskStatuses(command_id=7, workflow_id=7, since="2024-05-01 12:00:04"),
    FetchTaskStatuses(command_id=70, workflow_id=7, since=None),
    FetchWorkflowLimit(command_id=8, workflow_id=7),
    FetchArrayLimit(command_id=9, array_id=2),
    TerminateTaskInstances(command_id=10, workflow_run_id=42),
    WakeAt(command_id=11, at=123.75),
    LoadTaskChunk(command_id=12, workflow_id=7, after_task_id=100, chunk_size=500),
    LoadEdgeChunk(command_id=13, dag_id=9, task_ids=(11, 12, 13)),
    LoadQueues(command_id=14, queues=(("slurm", "all.q"), ("slurm", "long.q"))),
    NoteAnomaly(command_id=14, kind="unknown_status", detail="task 22 reported status 'Z'"),
    Finish(command_id=15, summary=SUMMARY),
    Fail(command_id=16, reason="timeout", message="run exceeded 7200.0s", summary=SUMMARY),
]


def _name(value: object) -> str:
    return type(value).__name__


# --- coverage of the samples -------------------------------------------------------------


def test_every_event_type_has_a_sample() -> None:
    missing = {t.__name__ for t in EVENT_TYPES} - {_name(e) for e in EVENT_SAMPLES}
    assert not missing, f"add samples for new event types: {sorted(missing)}"


def test_every_command_type_has_a_sample() -> None:
    missing = {t.__name__ for t in COMMAND_TYPES} - {_name(c) for c in COMMAND_SAMPLES}
    assert not missing, f"add samples for new command types: {sorted(missing)}"


# --- round trips ------------------------------------------------------------------------


def _assert_round_trip(value: Any, union: Any) -> None:
    text = to_json(value)
    assert to_json(value) == text, "to_json is not byte-stable"
    back = from_json(text, union)
    assert type(back) is type(value)
    assert back == value
    # Kinds survive, not just equality (1 == 1.0): re-encoding gives the same bytes.
    assert to_json(back) == text
    # The member class itself decodes its tagged form too.
    assert from_json(text, type(value)) == value
    data = json.loads(text)
    assert data["type"] == _name(value)
    # unstructure gives plain JSON data, already canonical.
    assert unstructure(value) == data
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("event", EVENT_SAMPLES, ids=_name)
def test_event_round_trip(event: Event) -> None:
    _assert_round_trip(event, Event)
    as_dict = event_to_dict(event)
    assert next(iter(as_dict)) == "type"
    assert event_from_dict(as_dict) == event
    assert event_from_dict(json.loads(json.dumps(as_dict))) == event


@pytest.mark.parametrize("command", COMMAND_SAMPLES, ids=_name)
def test_command_round_trip(command: Command) -> None:
    _assert_round_trip(command, Command)
    as_dict = command_to_dict(command)
    assert next(iter(as_dict)) == "type"
    assert command_from_dict(as_dict) == command
    assert command_from_dict(json.loads(json.dumps(as_dict))) == command


@pytest.mark.parametrize(
    "value", [TOPOLOGY, CONFIG, SUMMARY, QUEUES[0], TASK_ROWS[0]], ids=_name
)
def test_plain_values_round_trip(value: Any) -> None:
    text = to_json(value)
    assert "type" not in json.loads(text)
    back = from_json(text, type(value))
    assert back == value
    assert to_json(back) == text


def test_primitive_unions_keep_their_kind() -> None:
    event = from_json(to_json(EVENT_SAMPLES[0]), Event)
    assert isinstance(event, RunStarted)
    scales = dict(event.topology.tasks[1].resource_scales or ())
    assert type(scales["memory"]) is float
    assert type(scales["cores"]) is int
    assert scales["runtime"] == (3600, 7200.5, 14400)
    assert [type(v) for v in scales["runtime"]] == [int, float, int]  # type: ignore[union-attr]
    assert dict(event.topology.tasks[2].resource_scales or ())["memory"] == "pkg.scales:double_memory"
    requested = dict(event.topology.resource_sets[1].requested)
    assert (type(requested["memory"]), type(requested["runtime"]), type(requested["project"])) == (
        float,
        int,
        str,
    )
    sample = next(e for e in EVENT_SAMPLES if isinstance(e, ResourcesEvaluated))
    evaluated = from_json(to_json(sample), Event)
    assert isinstance(evaluated, ResourcesEvaluated)
    assert [type(evaluated.values[k]) for k in ("memory", "runtime", "queue")] == [int, float, str]


def test_scale_lists_from_json_become_tuples() -> None:
    task = from_json('{"task_id":1,"array_id":2,"resource_set_id":3,'
                     '"resource_scales":[["memory",[1,2.5]],["runtime","f"]]}', TaskSpec)
    assert task.resource_scales == (("memory", (1, 2.5)), ("runtime", "f"))


def test_dict_keys_are_sorted_whatever_the_insertion_order() -> None:
    a = BatchQueued(command_id=1, at=2.0, tasks_by_status={"Q": (1,), "D": (2,), "A": ()})
    b = BatchQueued(command_id=1, at=2.0, tasks_by_status={"A": (), "D": (2,), "Q": (1,)})
    assert to_json(a) == to_json(b)
    assert '"tasks_by_status":{"A":[],"D":[2],"Q":[1]}' in to_json(a)
    assert list(unstructure(a)["tasks_by_status"]) == ["A", "D", "Q"]
    assert list(unstructure(SUMMARY)["tasks_by_status"]) == ["D", "F", "R"]


def test_output_is_compact_and_sorted() -> None:
    text = to_json(WakeAt(command_id=11, at=123.75))
    assert text == '{"at":123.75,"command_id":11,"type":"WakeAt"}'


def test_float_fields_are_written_as_floats() -> None:
    assert to_json(WakeAt(command_id=1, at=5)) == to_json(WakeAt(command_id=1, at=5.0))
    back = from_json('{"type":"WakeAt","command_id":1,"at":5}', Command)
    assert isinstance(back, WakeAt) and type(back.at) is float


# --- errors -----------------------------------------------------------------------------


def _run_started() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(to_json(EVENT_SAMPLES[0]))
    return data


def _error(data: Any, cls: Any = Event) -> CodecError:
    with pytest.raises(CodecError) as info:
        from_json(json.dumps(data), cls)
    assert isinstance(info.value, ValueError)
    return info.value


def test_wrong_type_names_path_and_value() -> None:
    data = _run_started()
    data["topology"]["tasks"][3]["array_id"] = "x"
    error = _error(data)
    assert str(error) == "$.topology.tasks[3].array_id: expected int, got 'x'"
    assert error.errors == (str(error),)


def test_missing_field_names_path() -> None:
    data = _run_started()
    del data["topology"]["tasks"][1]["array_id"]
    assert str(_error(data)) == "$.topology.tasks[1].array_id: required field missing"


def test_every_problem_is_reported() -> None:
    data = _run_started()
    data["workflow_id"] = True
    data["at"] = "12.25"
    data["topology"]["tasks"][1]["resource_scales"][2][1] = [3600, "lots"]
    data["topology"]["resource_sets"][0]["requested"][0][1] = None
    data["config"]["timeout"] = -1
    data["colour"] = "blue"
    errors = _error(data).errors
    assert "$.workflow_id: expected int, got True" in errors
    assert "$.at: expected float, got '12.25'" in errors
    assert "$.topology.tasks[1].resource_scales[2][1][1]: expected a number, got 'lots'" in errors
    assert (
        "$.topology.resource_sets[0].requested[0][1]: expected a number or a string, got None"
        in errors
    )
    assert any(e.startswith("$.config: ") and "timeout" in e for e in errors)
    assert "$: unknown field(s): colour" in errors


def test_mapping_paths_name_the_key() -> None:
    data = {"type": "BatchQueued", "command_id": 1, "at": 2.0, "tasks_by_status": {"Q": [1, "2"]}}
    assert str(_error(data)) == "$.tasks_by_status['Q'][1]: expected int, got '2'"


def test_wrong_shape_names_path() -> None:
    data = _run_started()
    data["topology"]["queues"][0]["bounds"][0] = ["memory", 0.5]
    data["topology"]["arrays"] = {"2": "prep"}
    data["config"] = 5
    errors = _error(data).errors
    assert any(e.startswith("$.topology.queues[0].bounds[0]: expected an array of 3 items") for e in errors)
    assert any(e.startswith("$.topology.arrays: expected an array") for e in errors)
    assert "$.config: expected an object, got 5" in errors


def test_unknown_tag_is_named() -> None:
    error = _error({"type": "RunExploded", "at": 1.0})
    assert str(error).startswith("$.type: unknown Event type 'RunExploded'")
    assert "RunStarted" in str(error)


def test_command_tag_is_not_an_event() -> None:
    error = _error(json.loads(to_json(WakeAt(command_id=1, at=2.0))), Event)
    assert str(error).startswith("$.type: unknown Event type 'WakeAt'")
    with pytest.raises(CodecError, match=r"^\$\.type: unknown Command type 'TimerFired'"):
        command_from_dict({"type": "TimerFired", "at": 1.0})


def test_missing_or_odd_tag() -> None:
    assert str(_error({"at": 1.0})) == "$.type: required field missing"
    assert str(_error({"type": 3, "at": 1.0})).startswith("$.type: unknown Event type 3")
    assert str(_error([1, 2])) == "$: expected an object with a 'type' tag, got [1, 2]"


def test_member_class_checks_the_tag() -> None:
    text = to_json(WakeAt(command_id=1, at=2.0))
    with pytest.raises(CodecError, match=r"^\$\.type: expected 'RunStarted', got 'WakeAt'$"):
        from_json(text, RunStarted)
    assert structure({"command_id": 1, "at": 2.0}, WakeAt) == WakeAt(command_id=1, at=2.0)


def test_invalid_json() -> None:
    with pytest.raises(CodecError, match=r"^\$: invalid JSON"):
        from_json('{"type": "WakeAt",', Command)


def test_encoding_a_non_event_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="WakeAt is not a member of Event"):
        event_to_dict(WakeAt(command_id=1, at=2.0))  # type: ignore[arg-type]
