"""Scenario files: decoding, validation with JSON paths, defaults, overrides, round trip."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from swarmfold.core.config import UNLIMITED
from swarmfold.shell.sim.scenario import (
    Attempt,
    ScenarioError,
    TaskPlan,
    dump_scenario,
    load_scenario,
    parse_scenario,
    scenario_to_dict,
    scenario_to_topology,
    with_limits,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIM_EXAMPLES = [
    EXAMPLES / f"{name}.json"
    for name in ("diamond", "three_array_pipeline", "failures_and_resource_errors", "cold_resume")
]

BASE: dict[str, Any] = {
    "arrays": [{"array_id": 1, "name": "a", "limit": 2, "duration": {"distribution": "fixed", "seconds": 5}}],
    "resource_sets": [{"resource_set_id": 1, "queue": "all.q", "requested": {"cores": 1}}],
    "queues": [{"name": "all.q"}],
    "tasks": [
        {"task_id": 1, "array_id": 1, "resource_set_id": 1},
        {"task_id": 2, "array_id": 1, "resource_set_id": 1, "upstream_ids": [1]},
    ],
}


def scenario(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def errors_of(data: Any) -> tuple[str, ...]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    return info.value.errors


def test_minimal_scenario_gets_jobmon_defaults() -> None:
    s = parse_scenario(scenario())
    assert s.config.heartbeat_interval == 30.0
    assert s.config.report_by_buffer == 3.1
    assert s.topology.workflow_limit == UNLIMITED == 2**31 - 1
    assert s.distributor.poll_interval == 10.0
    assert s.server.reaper_poll_interval == 300.0
    assert s.cluster.slots is None and s.cluster.queue_slots is None
    assert s.seed == 0 and s.workflow_id == 1 and s.workflow_run_id == 1
    assert s.faults.request_failure_rate == 0.0 and s.faults.lost_worker_rate == 0.0
    topo = scenario_to_topology(s)
    assert [t.task_id for t in topo.tasks] == [1, 2]
    assert topo.tasks[1].upstream_ids == (1,)


def test_array_limit_defaults_to_unlimited() -> None:
    data = scenario()
    del data["arrays"][0]["limit"]
    assert parse_scenario(data).topology.arrays[0].limit == UNLIMITED


@pytest.mark.parametrize("path", SIM_EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    s = load_scenario(path)
    assert s.source == str(path)
    assert s.topology.tasks


# --- decoding errors: JSON path and value -------------------------------------------------------


def test_missing_field_is_named_by_its_path() -> None:
    data = scenario()
    del data["tasks"][1]["array_id"]
    assert errors_of(data) == ("$.tasks[1].array_id: required field missing",)


def test_missing_top_level_section() -> None:
    data = scenario()
    del data["tasks"]
    assert "$.tasks: required field missing" in errors_of(data)


def test_wrong_type_names_path_and_value() -> None:
    data = scenario()
    data["tasks"][0]["array_id"] = "1"
    assert errors_of(data) == ("$.tasks[0].array_id: expected int, got '1'",)


def test_wrong_type_in_a_nested_section() -> None:
    data = scenario(workflow={"heartbeat_interval": "fast"})
    assert errors_of(data) == ("$.workflow.heartbeat_interval: expected float, got 'fast'",)


def test_unknown_field_is_rejected() -> None:
    data = scenario()
    data["tasks"][0]["colour"] = "blue"
    assert errors_of(data) == ("$.tasks[0]: unknown field(s): colour",)


def test_bool_is_not_an_int() -> None:
    data = scenario()
    data["tasks"][0]["max_attempts"] = True
    assert errors_of(data) == ("$.tasks[0].max_attempts: expected int, got True",)


def test_several_problems_are_all_reported() -> None:
    data = scenario()
    data["tasks"][0]["task_id"] = "x"
    data["arrays"][0]["limit"] = 1.5
    errors = errors_of(data)
    assert "$.tasks[0].task_id: expected int, got 'x'" in errors
    assert "$.arrays[0].limit: expected int, got 1.5" in errors


OLD_FOLD_FILE = Path(__file__).resolve().parents[1] / "data" / "old_formats" / "fold-pipeline.json"


def test_an_old_fold_file_reads_through_the_converter_as_the_same_workflow() -> None:
    old = load_scenario(OLD_FOLD_FILE)  # examples/pipeline.json before the one format
    new = load_scenario(EXAMPLES / "pipeline.json")
    assert old.topology == new.topology and old.config == new.config
    assert (old.workflow_id, old.workflow_run_id) == (new.workflow_id, new.workflow_run_id)


def test_an_old_fold_file_with_a_bad_field_names_its_path() -> None:
    data = json.loads(OLD_FOLD_FILE.read_text())
    data["topology"]["tasks"][2]["array_id"] = "x"
    assert errors_of(data) == ("$.topology.tasks[2].array_id: expected int, got 'x'",)


def test_invalid_json_and_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert str(info.value).startswith(f"{bad}: $: invalid JSON")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.json")


def test_error_message_is_prefixed_with_the_file(tmp_path: Path) -> None:
    data = scenario()
    data["tasks"][1]["upstream_ids"] = [99]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}: $.tasks[1].upstream_ids[0]: unknown task id 99"


# --- semantic errors -------------------------------------------------------------------------------


def test_unknown_upstream_task_id() -> None:
    data = scenario()
    data["tasks"][1]["upstream_ids"] = [1, 42]
    assert errors_of(data) == ("$.tasks[1].upstream_ids[1]: unknown task id 42",)


def test_unknown_array_and_resource_set_ids() -> None:
    data = scenario()
    data["tasks"][0]["array_id"] = 9
    data["tasks"][1]["resource_set_id"] = 8
    errors = errors_of(data)
    assert "$.tasks[0].array_id: unknown array id 9" in errors
    assert "$.tasks[1].resource_set_id: unknown resource set id 8" in errors


def test_duplicate_ids() -> None:
    data = scenario()
    data["tasks"][1]["task_id"] = 1
    data["arrays"].append({"array_id": 1})
    errors = errors_of(data)
    assert "$.tasks[1].task_id: duplicate task id 1 (also $.tasks[0])" in errors
    assert "$.arrays[1].array_id: duplicate array id 1 (also $.arrays[0])" in errors


def test_cycle_is_reported_with_the_task_ids_on_it() -> None:
    data = scenario()
    data["tasks"][0]["upstream_ids"] = [2]
    assert errors_of(data) in (
        ("$.tasks: dependency cycle among tasks: 1 -> 2 -> 1",),
        ("$.tasks: dependency cycle among tasks: 2 -> 1 -> 2",),
    )


def test_a_longer_cycle_names_every_task_on_it() -> None:
    data = scenario()
    data["tasks"].append({"task_id": 3, "array_id": 1, "resource_set_id": 1, "upstream_ids": [2]})
    data["tasks"].append({"task_id": 4, "array_id": 1, "resource_set_id": 1, "upstream_ids": [1]})
    data["tasks"][1]["upstream_ids"] = [3]  # 2 -> 3 -> 2
    (error,) = errors_of(data)
    assert error.startswith("$.tasks: dependency cycle among tasks: ")
    ids = error.rsplit(": ", 1)[1].split(" -> ")
    assert set(ids) == {"2", "3"} and ids[0] == ids[-1]


def test_self_dependency_is_a_cycle() -> None:
    data = scenario()
    data["tasks"][0]["upstream_ids"] = [1]
    (error,) = errors_of(data)
    assert error.startswith("$.tasks: dependency cycle among tasks: 1 -> 1")


def test_unknown_queue_references() -> None:
    data = scenario()
    data["resource_sets"][0]["queue"] = "nope.q"
    data["tasks"][0]["fallback_queues"] = ["long.q"]
    data["cluster"] = {"queue_slots": {"gpu.q": 2}}
    errors = errors_of(data)
    assert "$.resource_sets[0].queue: unknown queue 'nope.q'" in errors
    assert "$.tasks[0].fallback_queues[0]: unknown queue 'long.q'" in errors
    assert "$.cluster.queue_slots['gpu.q']: unknown queue 'gpu.q'" in errors


def test_attempt_outcomes_and_durations_are_checked() -> None:
    data = scenario()
    data["tasks"][0]["attempts"] = [{"outcome": "crashed", "duration": -1}]
    errors = errors_of(data)
    assert (
        "$.tasks[0].attempts[0].outcome: expected one of done, error, resource_error, fatal, got 'crashed'"
        in errors
    )
    assert "$.tasks[0].attempts[0].duration: must be >= 0, got -1.0" in errors


def test_a_task_without_any_duration_is_rejected() -> None:
    data = scenario()
    del data["arrays"][0]["duration"]
    data["tasks"][1]["duration"] = 3
    assert errors_of(data) == (
        "$.tasks[0]: task 1 has no duration: give 'attempts' or 'duration', or a duration model on array 1",
    )


def test_duration_models_are_checked() -> None:
    data = scenario()
    data["arrays"][0]["duration"] = {"distribution": "uniform", "low": 10}
    assert errors_of(data) == ("$.arrays[0].duration.high: required for distribution 'uniform'",)
    data["arrays"][0]["duration"] = {"distribution": "gamma", "mean": 1}
    assert errors_of(data) == (
        "$.arrays[0].duration.distribution: "
        "expected one of fixed, uniform, exponential, lognormal, got 'gamma'",
    )
    data["arrays"][0]["duration"] = {"distribution": "fixed", "seconds": 1, "mean": 2}
    assert errors_of(data) == ("$.arrays[0].duration.mean: not used by distribution 'fixed'",)


def test_probabilities_and_ranges() -> None:
    data = scenario(
        faults={"lost_worker_rate": 1.5, "routes": ["queue"]},
        distributor={"poll_interval": 0},
        latency={"routes": {"log_heartbeat": {"jitter": 2}}},
    )
    data["arrays"][0]["failures"] = {"error": 0.7, "resource_error": 0.5}
    errors = errors_of(data)
    assert "$.faults.lost_worker_rate: must be a probability in [0, 1], got 1.5" in errors
    assert any(e.startswith("$.faults.routes[0]: unknown route 'queue'") for e in errors)
    assert "$.distributor.poll_interval: must be > 0, got 0.0" in errors
    assert "$.latency.routes['log_heartbeat'].jitter: must be in [0, 1], got 2.0" in errors
    assert "$.arrays[0].failures: error + resource_error + fatal must be <= 1, got 1.2" in errors


def test_signals_are_checked() -> None:
    data = scenario(
        limit_changes=[{"at": 10, "limit": 3, "array_id": 7}],
        resumes=[{"at": 5, "mode": "lukewarm"}],
    )
    errors = errors_of(data)
    assert "$.limit_changes[0].array_id: unknown array id 7" in errors
    assert "$.resumes[0].mode: expected 'cold' or 'hot', got 'lukewarm'" in errors


def test_cluster_takes_slots_or_queue_slots_not_both() -> None:
    data = scenario(cluster={"slots": 2, "queue_slots": {"all.q": 1}})
    assert errors_of(data) == (
        "$.cluster: give either 'slots' (in total) or 'queue_slots' (per queue), not both",
    )


def test_callable_scales_and_bad_initial_status_are_rejected() -> None:
    data = scenario()
    data["tasks"][0]["resource_scales"] = {"memory": "mypkg:grow"}
    data["tasks"][1]["status"] = "R"
    errors = errors_of(data)
    assert (
        "$.tasks[0].resource_scales['memory']: callable scale 'mypkg:grow' is not supported by the simulator;"
        " give a number or a list" in errors
    )
    assert "$.tasks[1].status: expected one of G, A, D, got 'R'" in errors


# --- compiled scenario, overrides, round trip -----------------------------------------------------


def test_task_plans_hold_attempts_durations_and_needs() -> None:
    data = scenario()
    data["tasks"][0]["attempts"] = [{"outcome": "error", "duration": 1}, {"outcome": "done", "duration": 2}]
    data["tasks"][1]["duration"] = 7.5
    data["tasks"][1]["needs"] = {"memory": 8}
    s = parse_scenario(data)
    assert s.task_plans[1] == TaskPlan(attempts=(Attempt("error", 1.0), Attempt("done", 2.0)))
    assert s.task_plans[2] == TaskPlan(duration=7.5, needs=(("memory", 8.0),))


def test_with_limits_overrides_and_checks_ids() -> None:
    s = parse_scenario(scenario())
    t = with_limits(s, workflow_limit=3, array_limits={1: 1})
    assert t.topology.workflow_limit == 3
    assert t.topology.arrays[0].limit == 1
    assert s.topology.workflow_limit == UNLIMITED  # the original is unchanged
    with pytest.raises(ScenarioError, match=r"--array-limit 5=1: unknown array id 5"):
        with_limits(s, array_limits={5: 1})
    with pytest.raises(ScenarioError, match=r"--workflow-limit: must be >= 0"):
        with_limits(s, workflow_limit=-1)


@pytest.mark.parametrize("path", SIM_EXAMPLES, ids=lambda p: p.name)
def test_dump_and_load_round_trip(path: Path) -> None:
    s = load_scenario(path)
    again = parse_scenario(json.loads(dump_scenario(s)))
    assert again.topology == s.topology
    assert again.config == s.config
    assert dict(again.task_plans) == dict(s.task_plans)
    assert dict(again.array_models) == dict(s.array_models)
    assert (again.cluster, again.distributor, again.server, again.latency, again.faults) == (
        s.cluster, s.distributor, s.server, s.latency, s.faults,
    )
    assert (again.limit_changes, again.resumes, again.seed, again.name) == (
        s.limit_changes, s.resumes, s.seed, s.name,
    )
    assert scenario_to_dict(again) == scenario_to_dict(s)


def test_a_columnar_topology_dumps_to_task_rows() -> None:
    import inspect

    from swarmfold.core.topology import build_topology
    from swarmfold.shell.sim.scenario import ArrayModel, DurationModel, scenario_from_topology
    from swarmfold.shell.workload import reference_workload

    kwargs = {"columnar": True} if "columnar" in inspect.signature(reference_workload).parameters else {}
    spec = reference_workload(50, seed=1, **kwargs)
    models = {a.array_id: ArrayModel(DurationModel("fixed", seconds=1.0)) for a in spec.arrays}
    s = scenario_from_topology(spec, array_models=models)
    again = parse_scenario(json.loads(dump_scenario(s)))
    a, b = build_topology(s.topology), build_topology(again.topology)
    assert list(a.task_ids) == list(b.task_ids) == list(range(1, 51))
    assert [a.downstream[i] for i in range(50)] == [b.downstream[i] for i in range(50)]
    assert list(a.array_of) == list(b.array_of)
    assert a.resources_of == b.resources_of
