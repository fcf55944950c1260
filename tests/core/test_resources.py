"""Task resources (spec §5): the pure functions of core/resources.py, then the same rules
seen through ``decide`` (adjustment on ADJUSTING_RESOURCES, user callables, binding)."""

from __future__ import annotations

import pytest

from swarmfold.core.commands import (
    BindResources,
    EvaluateResources,
    Finish,
    QueueBatch,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.events import ResourceEvaluationFailed, ResourcesEvaluated, StatusUpdateAcknowledged
from swarmfold.core.resources import (
    Resources,
    adjust,
    callable_scales,
    choose_queue,
    coerce,
    freeze_requested,
    is_valid,
    scale_value,
    scaled,
    validated,
)
from swarmfold.core.topology import QueueSpec

from .helpers import (
    R1,
    WORKFLOW_RUN_ID,
    assert_consistent,
    bind_all,
    feed,
    fire,
    idx,
    launch,
    of_type,
    queue_all,
    ready_ids,
    started,
    sync_answers,
    sync_at,
    task,
    topo,
)

BOUNDS = {
    "small": {"memory": (1, 16), "cores": (1, 4)},
    "medium": {"memory": (1, 48)},
    "big": {"memory": (1, 64), "cores": (1, 64)},
}


def req(**values) -> tuple:
    return freeze_requested(values)


# --- scale_value / scaled ------------------------------------------------------------------------


def test_scale_value_is_ceil_of_v_times_one_plus_s():
    assert scale_value(8, 0.5) == 12
    assert scale_value(12, 0.5) == 18
    assert scale_value(10, 0.25) == 13  # ceil(12.5)
    assert scale_value(3, 0) == 3
    assert scale_value(2.5, 1) == 5
    assert isinstance(scale_value(2.5, 0.1), int)


def test_scaled_applies_numeric_scales_to_present_resources_only():
    requested = req(memory=8, runtime=100, cores=1)
    out = scaled(requested, [("memory", 0.5), ("runtime", 0.5), ("gpus", 1.0)], 0)
    assert out == req(memory=12, runtime=150, cores=1)
    assert "gpus" not in dict(out)


def test_scaled_leaves_string_values_alone():
    requested = req(memory=8, constraints="avx2")
    assert scaled(requested, [("constraints", 0.5), ("memory", 1)], 0) == req(memory=16, constraints="avx2")


@pytest.mark.parametrize(("k", "expected"), [(0, 16), (1, 32), (2, 64), (3, 64), (10, 64)])
def test_list_scale_gives_absolute_values_by_adjustment_index(k, expected):
    assert scaled(req(memory=8), [("memory", (16, 32, 64))], k) == req(memory=expected)


def test_empty_list_scale_keeps_the_value():
    assert scaled(req(memory=8), [("memory", ())], 3) == req(memory=8)


def test_callable_scale_takes_its_value_from_evaluated():
    scales = [("memory", "grow_memory"), ("runtime", 0.5)]
    assert scaled(req(memory=8, runtime=100), scales, 0, {"memory": 30}) == req(memory=30, runtime=150)
    # Not evaluated (yet): the value stays.
    assert scaled(req(memory=8, runtime=100), scales, 0) == req(memory=8, runtime=150)
    # An evaluated value for a resource without a callable scale is not taken from it.
    assert scaled(req(memory=8, runtime=100), [("memory", 0.5)], 0, {"runtime": 1}) == req(
        memory=12, runtime=100
    )


def test_callable_scales_lists_named_scales_of_present_resources():
    scales = [("memory", "f"), ("runtime", 0.5), ("cores", "g"), ("gpus", "h")]
    assert callable_scales(scales, req(memory=1, runtime=1, cores=1)) == (("memory", "f"), ("cores", "g"))
    assert callable_scales([("memory", 0.5)], req(memory=1)) == ()


# --- is_valid / coerce --------------------------------------------------------------------------


def test_is_valid_checks_inclusive_bounds_of_bounded_numeric_resources():
    bounds = BOUNDS["small"]
    assert is_valid(req(memory=1, cores=4), bounds)
    assert is_valid(req(memory=16), bounds)
    assert not is_valid(req(memory=17), bounds)
    assert not is_valid(req(memory=0), bounds)
    assert not is_valid(req(cores=5), bounds)
    assert is_valid(req(runtime=10**9), bounds)  # unbounded resource
    assert is_valid(req(memory="lots"), bounds)  # strings are not checked
    assert is_valid(req(memory=1000), {})


def test_coerce_clamps_into_bounds_and_keeps_types():
    bounds = {"memory": (1, 16), "runtime": (60.0, 3600.0)}
    out = coerce(req(memory=100, runtime=10.0, cores=99, queue_hint="x"), bounds)
    assert out == req(memory=16, runtime=60.0, cores=99, queue_hint="x")
    assert isinstance(dict(out)["memory"], int)
    assert isinstance(dict(out)["runtime"], float)
    assert coerce(req(memory=0), bounds) == req(memory=1)


def test_coerce_returns_the_same_object_when_nothing_changes():
    requested = req(memory=8, cores=2)
    assert coerce(requested, BOUNDS["small"]) is requested


def test_coerced_resources_are_valid_on_their_queue_even_with_fractional_bounds():
    bounds = {"memory": (0.5, 10.0)}
    assert is_valid(coerce(req(memory=0), bounds), bounds)


def test_validated_coerces_onto_the_current_queue():
    assert validated(Resources("small", req(memory=100)), BOUNDS) == Resources("small", req(memory=16))
    same = Resources("small", req(memory=8))
    assert validated(same, BOUNDS) is same


# --- fallback queues ------------------------------------------------------------------------------


def test_first_valid_queue_wins_with_values_unchanged():
    # 20 is invalid on small, valid on medium (and on big): medium wins, memory stays 20.
    out = choose_queue(req(memory=20), "small", ["medium", "big"], BOUNDS)
    assert out == Resources("medium", req(memory=20))


def test_current_queue_wins_when_valid():
    assert choose_queue(req(memory=8), "small", ["big"], BOUNDS) == Resources("small", req(memory=8))


def test_no_valid_queue_means_the_last_queue_coerced():
    out = choose_queue(req(memory=500, cores=100), "small", ["medium", "big"], BOUNDS)
    assert out == Resources("big", req(memory=64, cores=64))
    # Without fallbacks the "last queue" is the current one.
    assert choose_queue(req(memory=500), "small", [], BOUNDS) == Resources("small", req(memory=16))


def test_adjust_scales_then_falls_back():
    current = Resources("small", req(memory=12, cores=2))
    out = adjust(current, [("memory", 0.5)], ["big"], BOUNDS, 0)
    assert out == Resources("big", req(memory=18, cores=2))


def test_adjust_returns_current_object_when_nothing_changes():
    current = Resources("small", req(memory=8))
    assert adjust(current, [], ["big"], BOUNDS, 0) is current
    assert adjust(current, [("runtime", 0.5)], [], BOUNDS, 0) is current


# --- Resources ------------------------------------------------------------------------------------


def test_resources_are_equal_and_hashed_by_content():
    a = Resources("q", {"memory": 8, "cores": 1})
    b = Resources("q", (("cores", 1), ("memory", 8)))
    assert a == b
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1
    assert a != Resources("other", {"memory": 8, "cores": 1})
    assert a != Resources("q", {"memory": 9, "cores": 1})
    assert a.requested == (("cores", 1), ("memory", 8))
    assert a.with_values({"memory": 10, "gpus": 1}) == Resources("q", {"memory": 10, "cores": 1, "gpus": 1})


# --- through decide: ADJUSTING_RESOURCES ----------------------------------------------------------

QUEUES = [
    QueueSpec("small", queue_id=1, cluster_id=5, bounds={"memory": (1, 16)}),
    QueueSpec("big", queue_id=2, cluster_id=5, bounds={"memory": (1, 64)}),
]


def adjust_once(state, at):
    """Report task 1 ADJUSTING; return the state and the pass's commands (bound, queued)."""
    state, answered = sync_at(state, at, {"A": [1]})
    binds = of_type(answered, BindResources)
    state, queued = bind_all(state, answered, at=at, first_id=int(at))
    batches = of_type([*answered, *queued], QueueBatch)
    state, _ = queue_all(state, batches, at=at)
    return state, binds, batches


def test_adjusting_task_is_scaled_each_time_and_moves_to_the_fallback_queue():
    spec = topo(
        task(1, resource_scales={"memory": 0.5}, fallback_queues=["big"]),
        task(2, status="R"),  # keeps the loop alive
        resource_sets={1: ("small", {"memory": 8, "runtime": 100})},
        queues=QUEUES,
    )
    state, commands = started(spec)
    assert commands[0] == BindResources(
        command_id=1, queue="small", queue_id=1, requested=req(memory=8, runtime=100)
    )
    state, _ = launch(state, commands)

    seen = []
    at = 30.0
    for _ in range(6):
        state, binds, batches = adjust_once(state, at)
        (bind,) = binds
        (batch,) = batches
        assert batch.task_ids == (1,)
        assert batch.task_resources_id == int(at)
        assert batch.cluster_id == 5
        seen.append((bind.queue, bind.queue_id, dict(bind.requested)["memory"]))
        assert dict(bind.requested)["runtime"] == 100  # no scale for runtime on this task
        at += 30.0

    # 12 fits small; 18 does not: big (first valid), 27, 41, 62; 93 fits nowhere: last queue, coerced.
    assert seen == [
        ("small", 1, 12), ("big", 2, 18), ("big", 2, 27), ("big", 2, 41), ("big", 2, 62), ("big", 2, 64),
    ]
    assert_consistent(state)


def test_adjusting_task_with_list_scales_uses_absolute_values_by_attempt():
    spec = topo(
        task(1, resource_scales={"memory": [16, 32]}),
        task(2, status="R"),
    )
    state, commands = started(spec)
    state, _ = launch(state, commands)
    memories = []
    for at in (30.0, 60.0, 90.0):
        state, binds, _ = adjust_once(state, at)
        memories.append([dict(b.requested)["memory"] for b in binds])
    # The third adjustment re-uses 32, which is already bound: no new BindResources.
    assert memories == [[16], [32], []]
    assert state.inflight_total == 0
    assert state.resources_of(idx(state, 1)) == Resources("all.q", {**R1, "memory": 32})


def test_adjusted_task_enters_the_front_with_its_own_resources():
    state, commands = started(topo(task(1), task(2), task(3), workflow_limit=1))
    state, _ = launch(state, commands)
    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, {"A": [1]})
    state, out = feed(state, answers[0])
    assert out == []
    assert ready_ids(state) == [1, 2, 3]
    assert state.resources_of(idx(state, 1)) == Resources("all.q", {"memory": 12, "runtime": 150, "cores": 1})
    assert state.resources_of(idx(state, 2)) == Resources("all.q", R1)


# --- through decide: compute_resources callables ---------------------------------------------------


def test_compute_resources_callable_is_evaluated_then_merged_coerced_and_enqueued():
    spec = topo(
        task(1, compute_resources="size_me"),
        task(2, status="R"),
        resource_sets={1: ("small", {"memory": 8, "runtime": 100})},
        queues=QUEUES,
    )
    state, commands = started(spec)
    assert commands == [
        EvaluateResources(
            command_id=1, task_id=1, purpose="compute_resources", callables=(("*", "size_me"),),
            requested=req(memory=8, runtime=100),
        ),
        WakeAt(command_id=2, at=30.0),
    ]
    assert state.evaluating_count == 1
    assert ready_ids(state) == []

    state, out = feed(state, ResourcesEvaluated(1, 0.5, {"memory": 20, "gpus": 1}))
    assert out == []
    assert ready_ids(state) == [1]
    merged = Resources("small", {"memory": 16, "runtime": 100, "gpus": 1})  # 20 coerced onto small
    assert state.resources_of(idx(state, 1)) == merged
    assert_consistent(state)

    state, answered = sync_at(state, 30.0, {})
    n = answered[0].command_id
    assert answered == [BindResources(command_id=n, queue="small", queue_id=1, requested=merged.requested)]
    state, queued = bind_all(state, answered, at=30.0, first_id=7)
    assert queued == [
        QueueBatch(command_id=n + 1, array_id=1, task_ids=(1,), task_resources_id=7,
                   workflow_run_id=WORKFLOW_RUN_ID, cluster_id=5),
    ]


def test_compute_resources_callable_runs_once_when_the_task_first_becomes_ready():
    spec = topo(task(1), task(2, 1, compute_resources="size_me"), task(3, status="R"))
    state, commands = started(spec)
    assert of_type(commands, EvaluateResources) == []
    state, _ = launch(state, commands)

    state, answered = sync_at(state, 30.0, {"D": [1]})
    (ev,) = of_type(answered, EvaluateResources)
    assert ev == EvaluateResources(
        command_id=ev.command_id, task_id=2, purpose="compute_resources", callables=(("*", "size_me"),),
        requested=Resources("all.q", R1).requested,
    )
    state, _ = feed(state, ResourcesEvaluated(ev.command_id, 30.5, {"cores": 4}))
    state, answered = sync_at(state, 60.0, {})
    state, seen = launch(state, answered, at=60.0)
    assert [b.task_ids for b in of_type(seen, QueueBatch)] == [(2,)]

    # A retry (back to G) re-uses the computed resources: no second evaluation, no new bind.
    state, answered = sync_at(state, 90.0, {"G": [2]})
    assert of_type(answered, EvaluateResources) == []
    assert of_type(answered, BindResources) == []
    assert [b.task_ids for b in of_type(answered, QueueBatch)] == [(2,)]
    assert state.resources_of(idx(state, 2)) == Resources("all.q", {**R1, "cores": 4})


def test_callable_scale_is_evaluated_when_the_task_enters_adjusting():
    spec = topo(task(1, resource_scales={"memory": "grow", "runtime": 0.5}), task(2, status="R"))
    state, commands = started(spec)
    state, _ = launch(state, commands)

    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, {"A": [1]})
    state, out = feed(state, answers[0])
    assert out == [
        EvaluateResources(
            command_id=out[0].command_id, task_id=1, purpose="resource_scales",
            callables=(("memory", "grow"),), requested=Resources("all.q", R1).requested,
        )
    ]
    assert ready_ids(state) == []
    state, _ = feed(state, *answers[1:])

    state, out = feed(state, ResourcesEvaluated(out[0].command_id, 31.0, {"memory": 30}))
    assert out == []
    assert ready_ids(state) == [1]
    assert state.resources_of(idx(state, 1)) == Resources("all.q", {"memory": 30, "runtime": 150, "cores": 1})
    assert_consistent(state)


def test_callable_failure_ends_the_run_in_error_after_the_status_update():
    state, commands = started(topo(task(1, compute_resources="broken"), task(2)))
    (ev,) = of_type(commands, EvaluateResources)
    state, _ = launch(state, commands)

    state, out = feed(state, ResourceEvaluationFailed(ev.command_id, 1.0, "FileNotFoundError: x"))
    assert out == [UpdateWorkflowRunStatus(command_id=out[0].command_id, workflow_run_id=WORKFLOW_RUN_ID,
                                           status="E")]
    assert state.evaluating_count == 0

    state, out = feed(state, StatusUpdateAcknowledged(out[0].command_id, 1.5, "E"))
    (finish,) = out
    assert isinstance(finish, Finish)
    assert finish.summary.final_status == "E"
    assert finish.summary.reason == (
        "resource_callable_failed: task 1: compute_resources callable failed: FileNotFoundError: x"
    )
    assert finish.summary.elapsed == 1.5
    # The run is over: later events change nothing.
    state2, out = feed(state, ResourcesEvaluated(ev.command_id, 2.0, {"memory": 1}))
    assert (state2, out) == (state, [])


def test_queue_coercion_rules_split_what_is_validated_from_what_is_clamped():
    from swarmfold.core.resources import choose_queue
    from swarmfold.core.topology import QueueSpec

    bounds = (("cores", 1, 20), ("memory", 1, 64))
    slurm = QueueSpec("q", bounds=bounds)
    multi = QueueSpec("q", bounds=bounds, coercion="validate_cores")
    seq = QueueSpec("q", bounds=bounds, coercion="none")
    assert slurm.validated_bounds() == slurm.clamped_bounds() == {"cores": (1, 20), "memory": (1, 64)}
    assert multi.validated_bounds() == {"cores": (1, 20)} and multi.clamped_bounds() == {}
    assert seq.validated_bounds() == seq.clamped_bounds() == {}
    big = (("cores", 40), ("memory", 100))
    for spec, expected in ((slurm, (("cores", 20), ("memory", 64))), (multi, big), (seq, big)):
        got = choose_queue(big, "q", (), {"q": spec.validated_bounds()}, {"q": spec.clamped_bounds()})
        assert got.requested == expected
    # multiprocess validates cores: a fallback queue that fits the cores is chosen, memory unchecked
    fits = QueueSpec("big.q", bounds=(("cores", 1, 64), ("memory", 1, 8)), coercion="validate_cores")
    validated = {"q": multi.validated_bounds(), "big.q": fits.validated_bounds()}
    got = choose_queue(big, "q", ("big.q",), validated, {"q": {}, "big.q": {}})
    assert (got.queue, got.requested) == ("big.q", big)
