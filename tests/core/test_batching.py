"""Scheduling passes and batches (spec §6.1, §5.3, §6.3) and the batch-answer policies."""

from __future__ import annotations

import pytest

from swarmfold.core.batching import schedule
from swarmfold.core.commands import BindResources, NoteAnomaly, QueueBatch, WakeAt
from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    BatchQueueFailed,
    ResourceBindFailed,
    ResourcesBound,
    TimerFired,
)
from swarmfold.core.resources import Resources
from swarmfold.core.state import IN_FLIGHT, Tx
from swarmfold.core.topology import QueueSpec

from .helpers import (
    R1,
    WORKFLOW_RUN_ID,
    assert_consistent,
    bind_all,
    cmd_like,
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

R2 = {"memory": 16, "runtime": 100, "cores": 1}
TWO_SETS = {1: ("all.q", R1), 2: ("all.q", R2)}
A, B, C = 1, 2, 3


def qb(command_id: int, array_id: int, task_ids: tuple[int, ...], tr_id: int = 100) -> QueueBatch:
    return QueueBatch(
        command_id=command_id, array_id=array_id, task_ids=task_ids, task_resources_id=tr_id,
        workflow_run_id=WORKFLOW_RUN_ID,
    )


def batches(commands) -> list[tuple[int, tuple[int, ...]]]:
    return [(c.array_id, c.task_ids) for c in of_type(commands, QueueBatch)]


def tasks(*ids: int, **kw):
    return [task(i, **kw) for i in ids]


# --- the worked example --------------------------------------------------------------------


def test_worked_example_first_pass():
    # queue [a1(A,r1), b1(B,r1), a2(A,r2), a3(A,r1)] -> [a1,a3], [b1], [a2]
    spec = topo(
        task(1, array=A, rs=1), task(2, array=B, rs=1), task(3, array=A, rs=2), task(4, array=A, rs=1),
        resource_sets=TWO_SETS,
    )
    state, commands = started(spec)
    assert commands == [
        BindResources(command_id=1, queue="all.q", queue_id=0, requested=Resources("all.q", R1).requested),
        BindResources(command_id=2, queue="all.q", queue_id=0, requested=Resources("all.q", R2).requested),
        WakeAt(command_id=3, at=30.0),
    ]
    state, queued = bind_all(state, commands, first_id=100)
    assert queued == [qb(4, A, (1, 4), 100), qb(5, B, (2,), 100), qb(6, A, (3,), 101)]
    assert_consistent(state)


def test_worked_example_with_resources_already_bound():
    # 10 (A,r1) and 11 (A,r2) run first so both resources are bound; then a1, b1, a2, a3 become
    # ready together when 10 completes, in topology order.
    spec = topo(
        task(10, array=A, rs=1),
        task(11, array=A, rs=2),
        task(1, 10, array=A, rs=1),
        task(2, 10, array=B, rs=1),
        task(3, 10, array=A, rs=2),
        task(4, 10, array=A, rs=1),
        resource_sets=TWO_SETS,
    )
    state, commands = started(spec)
    state, _ = launch(state, commands)

    state, answered = sync_at(state, 30.0, {"D": [10]})
    n = answered[0].command_id
    assert answered == [qb(n, A, (1, 4), 100), qb(n + 1, B, (2,), 100), qb(n + 2, A, (3,), 101)]
    assert_consistent(state)


# --- sizes and limits ---------------------------------------------------------------------------


def test_max_batch_size_splits_a_group_into_consecutive_batches():
    state, commands = started(topo(*tasks(1, 2, 3, 4, 5, 6, 7)), config=SwarmConfig(max_batch_size=3))
    assert commands == [
        BindResources(command_id=1, queue="all.q", queue_id=0, requested=Resources("all.q", R1).requested),
        WakeAt(command_id=2, at=30.0),
    ]
    state, queued = bind_all(state, commands)
    assert queued == [qb(3, A, (1, 2, 3)), qb(4, A, (4, 5, 6)), qb(5, A, (7,))]


def test_workflow_limit_caps_a_pass_and_the_rest_waits_in_order():
    state, commands = started(topo(*tasks(1, 2, 3, 4, 5), workflow_limit=2))
    state, seen = launch(state, commands)
    assert batches(seen) == [(A, (1, 2))]
    assert ready_ids(state) == [3, 4, 5]
    assert state.workflow_capacity() == 0

    state, answered = sync_at(state, 30.0, {"D": [1]})
    assert answered == [qb(answered[0].command_id, A, (3,))]
    state, _ = queue_all(state, answered, at=30.0)

    # A higher limit from the server frees room for the rest.
    state, answered = sync_at(state, 60.0, {}, workflow_limit=10)
    assert answered == [qb(answered[0].command_id, A, (4, 5))]


def test_per_array_limits_cap_each_array():
    spec = topo(
        *tasks(1, 2, 3, array=A), *tasks(4, 5, 6, array=B), arrays={A: 1, B: 2}
    )
    state, commands = started(spec)
    state, queued = bind_all(state, commands)
    assert queued == [qb(queued[0].command_id, A, (1,)), qb(queued[0].command_id + 1, B, (4, 5))]
    assert ready_ids(state) == [2, 3, 6]
    assert (state.array_capacity(A), state.array_capacity(B)) == (0, 0)
    assert_consistent(state)


def test_array_blocked_tasks_keep_their_place_in_fifo_order():
    # queue [a1, b1, a2, b2, a3] with A and B limited to 1
    spec = topo(
        task(1, array=A), task(2, array=B), task(3, array=A), task(4, array=B), task(5, array=A),
        arrays={A: 1, B: 1},
    )
    state, commands = started(spec)
    state, seen = launch(state, commands)
    assert batches(seen) == [(A, (1,)), (B, (2,))]
    assert ready_ids(state) == [3, 4, 5]

    # Capacity frees up (1 and 2 done): a2 (oldest) goes first, then b2; a3 joins a2's batch.
    state, answered = sync_at(state, 30.0, {"D": [1, 2]}, array_limits={A: 2, B: 1})
    assert batches(answered) == [(A, (3, 5)), (B, (4,))]
    assert ready_ids(state) == []


def test_array_blocked_task_stays_ahead_of_tasks_that_became_ready_later():
    spec = topo(task(1, array=A), task(2, array=A), task(3, 1, array=B), arrays={A: 1})
    state, commands = started(spec)
    state, _ = launch(state, commands)
    assert ready_ids(state) == [2]

    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, {"R": [1]})
    state, _ = feed(state, answers[0])
    assert ready_ids(state) == [2]
    state, _ = feed(state, *answers[1:])

    state, sync = fire(state, 60.0)
    answers = sync_answers(state, sync, 60.0, {"D": [1]}, array_limits={A: 1})
    state, _ = feed(state, answers[0])
    assert ready_ids(state) == [2, 3]
    state, answered = feed(state, *answers[1:])
    assert batches(answered) == [(A, (2,)), (B, (3,))]


def test_array_limit_answer_for_an_unknown_array_is_ignored():
    state, commands = started(topo(*tasks(1, 2), arrays={A: 1}))
    state, _ = launch(state, commands)
    state, sync = fire(state, 30.0)
    events = sync_answers(state, sync, 30.0, {})
    events[-1] = ArrayLimitFetched(events[-1].command_id, 30.0, 99, 5)
    state, _ = feed(state, *events)
    assert dict(state.array_limits) == {A: 1}


# --- ADJUSTING_RESOURCES goes to the front ----------------------------------------------------


def test_adjusting_task_goes_to_the_front_with_scaled_resources():
    state, commands = started(topo(*tasks(1, 2, 3, 4), workflow_limit=1))
    state, seen = launch(state, commands)
    assert batches(seen) == [(A, (1,))]
    assert ready_ids(state) == [2, 3, 4]

    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, {"A": [1]})
    state, _ = feed(state, answers[0])
    assert ready_ids(state) == [1, 2, 3, 4]
    adjusted = Resources("all.q", {"memory": 12, "runtime": 150, "cores": 1})
    assert state.resources_of(idx(state, 1)) == adjusted

    state, answered = feed(state, *answers[1:])
    n = answered[0].command_id
    assert answered == [BindResources(command_id=n, queue="all.q", queue_id=0, requested=adjusted.requested)]
    state, queued = bind_all(state, answered, at=30.0, first_id=200)
    assert queued == [qb(n + 1, A, (1,), 200)]
    assert ready_ids(state) == [2, 3, 4]


def test_several_adjusting_tasks_enter_the_front_like_appendleft():
    state, commands = started(topo(*tasks(1, 2, 3, 4), workflow_limit=2))
    state, _ = launch(state, commands)
    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, {"A": [1, 2]})
    state, _ = feed(state, answers[0])
    assert ready_ids(state) == [2, 1, 3, 4]
    assert_consistent(state)


# --- in-flight tasks hold capacity --------------------------------------------------------------


def test_in_flight_tasks_hold_workflow_and_array_capacity():
    state, commands = started(topo(*tasks(1, 2, 3, 4), arrays={A: 3}, workflow_limit=2))
    # The batch [1, 2] is parked until its resources are bound: already in flight.
    assert state.inflight_total == 2
    assert state.inflight_by_array == {A: 2}
    assert [state.place[idx(state, t)] == IN_FLIGHT for t in (1, 2, 3, 4)] == [True, True, False, False]
    assert state.workflow_capacity() == 0
    assert state.array_capacity(A) == 1

    # A second pass before any answer cannot exceed the limits.
    tx = Tx(state)
    assert schedule(tx) == 0
    assert tx.commands == []

    state, queued = bind_all(state, commands)
    assert batches(queued) == [(A, (1, 2))]
    tx = Tx(state)
    assert schedule(tx) == 0
    assert tx.commands == []

    # While the batch is unanswered the loop does not sync (no new pass either).
    state, fired = feed(state, TimerFired(at=30.0))
    assert [type(c).__name__ for c in fired] == ["LogHeartbeat"]
    assert_consistent(state)


def test_in_flight_tasks_hold_array_capacity_across_arrays():
    state, _ = started(topo(*tasks(1, 2, array=A), *tasks(3, array=B), arrays={A: 1, B: 5}))
    assert state.array_capacity(A) == 0
    assert state.array_capacity(B) == 4
    tx = Tx(state)
    assert schedule(tx) == 0


# --- limits shrinking mid-run ---------------------------------------------------------------------


def test_workflow_limit_shrinking_below_active_blocks_new_batches_until_active_drops():
    state, commands = started(topo(*tasks(1, 2, 3, 4, 5), workflow_limit=3))
    state, seen = launch(state, commands)
    assert batches(seen) == [(A, (1, 2, 3))]

    state, answered = sync_at(state, 30.0, {}, workflow_limit=1)
    assert of_type(answered, QueueBatch) == []
    assert state.workflow_limit == 1
    state, answered = sync_at(state, 60.0, {"D": [1]})
    assert of_type(answered, QueueBatch) == []
    state, answered = sync_at(state, 90.0, {"D": [2, 3]})
    assert answered == [qb(answered[0].command_id, A, (4,))]
    assert ready_ids(state) == [5]


def test_array_limit_shrinking_below_active_blocks_new_batches_until_active_drops():
    state, commands = started(topo(*tasks(1, 2, 3, 4, 5), arrays={A: 3}))
    state, seen = launch(state, commands)
    assert batches(seen) == [(A, (1, 2, 3))]

    state, answered = sync_at(state, 30.0, {}, array_limits={A: 1})
    assert of_type(answered, QueueBatch) == []
    assert state.array_limits[A] == 1
    state, answered = sync_at(state, 60.0, {"D": [1, 2]})
    assert of_type(answered, QueueBatch) == []
    state, answered = sync_at(state, 90.0, {"F": [3]})
    assert answered == [qb(answered[0].command_id, A, (4,))]


# --- binding -----------------------------------------------------------------------------------------


def test_bind_resources_once_per_distinct_resources_and_batches_parked_until_bound():
    spec = topo(
        *tasks(1, 2, 3, array=A), task(4, array=B),
        queues=[QueueSpec("all.q", queue_id=7, cluster_id=3)],
    )
    state, commands = started(spec, config=SwarmConfig(max_batch_size=2))
    assert commands == [
        BindResources(command_id=1, queue="all.q", queue_id=7, requested=Resources("all.q", R1).requested),
        WakeAt(command_id=2, at=30.0),
    ]
    assert of_type(commands, QueueBatch) == []
    assert state.inflight_total == 4

    state, queued = feed(state, ResourcesBound(command_id=1, at=0.5, task_resources_id=42))
    assert queued == [
        QueueBatch(command_id=3, array_id=A, task_ids=(1, 2), task_resources_id=42,
                   workflow_run_id=WORKFLOW_RUN_ID, cluster_id=3),
        QueueBatch(command_id=4, array_id=A, task_ids=(3,), task_resources_id=42,
                   workflow_run_id=WORKFLOW_RUN_ID, cluster_id=3),
        QueueBatch(command_id=5, array_id=B, task_ids=(4,), task_resources_id=42,
                   workflow_run_id=WORKFLOW_RUN_ID, cluster_id=3),
    ]
    assert_consistent(state)


def test_bound_resources_are_reused_without_a_new_bind():
    state, commands = started(topo(*tasks(1, 2), workflow_limit=1))
    state, seen = launch(state, commands)
    assert len(of_type(seen, QueueBatch)) == 1
    state, answered = sync_at(state, 30.0, {"D": [1]})
    assert answered == [qb(answered[0].command_id, A, (2,), 100)]


def test_bind_failure_requeues_the_parked_batches_at_the_front_in_order():
    state, commands = started(topo(*tasks(1, 2, 3, 4, 5), workflow_limit=3), SwarmConfig(max_batch_size=2))
    (bind,) = of_type(commands, BindResources)
    state, out = feed(state, ResourceBindFailed(bind.command_id, 0.5, "boom"))
    assert out == [cmd_like(NoteAnomaly, kind="bind_resources_failed")]
    assert ready_ids(state) == [1, 2, 3, 4, 5]
    assert state.inflight_total == 0
    assert_consistent(state)

    state, answered = sync_at(state, 30.0, {})
    n = answered[0].command_id
    assert answered == [
        BindResources(command_id=n, queue="all.q", queue_id=0, requested=Resources("all.q", R1).requested)
    ]
    state, queued = bind_all(state, answered, at=30.0)
    assert batches(queued) == [(A, (1, 2)), (A, (3,))]


# --- batch answers ---------------------------------------------------------------------------


def test_batch_queue_failure_puts_tasks_back_at_the_front_and_they_go_next_pass():
    state, commands = started(topo(*tasks(1, 2, 3, 4, 5), workflow_limit=3), SwarmConfig(max_batch_size=2))
    state, queued = bind_all(state, commands)
    first, second = of_type(queued, QueueBatch)
    assert (first.task_ids, second.task_ids) == ((1, 2), (3,))
    assert ready_ids(state) == [4, 5]

    state, out = feed(state, BatchQueueFailed(first.command_id, 0.5, "HTTP 503"))
    assert out == [
        NoteAnomaly(
            command_id=out[0].command_id,
            kind="batch_queue_failed",
            detail="array 1, 2 task(s): HTTP 503; re-queued at the front",
        )
    ]
    assert ready_ids(state) == [1, 2, 4, 5]
    assert_consistent(state)
    state, _ = feed(state, BatchQueued(second.command_id, 0.5, {"Q": [3]}))

    state, answered = sync_at(state, 30.0, {})
    assert answered == [qb(answered[0].command_id, A, (1, 2))]
    assert ready_ids(state) == [4, 5]


def test_batch_answer_omitting_a_task_requeues_it_at_the_front():
    state, commands = started(topo(*tasks(1, 2, 3, 4), workflow_limit=3))
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)
    assert batch.task_ids == (1, 2, 3)

    state, out = feed(state, BatchQueued(batch.command_id, 0.5, {"Q": [1, 3]}))
    assert out == [cmd_like(NoteAnomaly, kind="batch_answer_incomplete")]
    assert ready_ids(state) == [2, 4]
    assert_consistent(state)

    state, answered = sync_at(state, 30.0, {})
    assert answered == [qb(answered[0].command_id, A, (2,))]


def test_batch_answer_leaving_a_task_registering_reenqueues_it():
    state, commands = started(topo(*tasks(1, 2)))
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)

    state, out = feed(state, BatchQueued(batch.command_id, 0.5, {"Q": [1], "G": [2]}))
    assert out == []
    assert ready_ids(state) == [2]
    assert_consistent(state)


def test_batch_answer_with_done_for_a_stale_registering_task_propagates():
    state, commands = started(topo(task(1), task(2, 1)))
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)

    state, out = feed(state, BatchQueued(batch.command_id, 0.5, {"D": [1]}))
    assert out == []
    assert ready_ids(state) == [2]
    assert state.n_executions == 1
    assert_consistent(state)


# --- adaptive batch size -------------------------------------------------------------------------


def adaptive(max_batch_size: int = 10) -> SwarmConfig:
    return SwarmConfig(adaptive_batching=True, max_batch_size=max_batch_size, target_batch_seconds=1.0)


@pytest.mark.parametrize(
    ("n_tasks", "duration", "expected"),
    [
        (10, 5.0, 6),  # 10 tasks took 5 s: rate target 2, blended (2 + 10) / 2
        (10, 1e-9, 10),  # very fast: capped at max_batch_size
        (10, 0.5, 10),  # blended 15, capped
        (4, 0.5, 9),  # 4 tasks in 0.5 s: rate target 8, blended with the current 10
        (1, 1e6, 5),  # very slow: halves toward the (near-zero) rate target
    ],
)
def test_adaptive_batch_size_moves_within_bounds(n_tasks, duration, expected):
    state, commands = started(topo(*tasks(*range(1, n_tasks + 1))), adaptive())
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)
    assert state.batch_size == 10

    state, _ = feed(state, BatchQueued(batch.command_id, 1.0, {"Q": batch.task_ids}, duration=duration))
    assert state.batch_size == expected
    assert 1 <= state.batch_size <= 10


def test_adaptive_batch_size_is_used_by_the_next_pass():
    ids = range(1, 21)
    state, commands = started(topo(*tasks(*ids), workflow_limit=10), adaptive())
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)
    assert batch.task_ids == tuple(range(1, 11))
    state, _ = feed(state, BatchQueued(batch.command_id, 5.0, {"Q": batch.task_ids}, duration=5.0))
    assert state.batch_size == 6

    state, answered = sync_at(state, 30.0, {"D": list(range(1, 11))})
    assert batches(answered) == [(A, (11, 12, 13, 14, 15, 16)), (A, (17, 18, 19, 20))]


@pytest.mark.parametrize("config", [SwarmConfig(max_batch_size=10), adaptive()], ids=["off", "no-duration"])
def test_batch_size_unchanged_without_adaptive_batching_or_duration(config):
    state, commands = started(topo(*tasks(1, 2, 3)), config)
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)
    duration = 100.0 if not config.adaptive_batching else None
    state, _ = feed(state, BatchQueued(batch.command_id, 1.0, {"Q": batch.task_ids}, duration=duration))
    assert state.batch_size == 10


@pytest.mark.parametrize(
    "listing",
    ["as_sent", "reversed", "one_twice", "split_over_two_statuses", "one_left_out"],
)
def test_a_batch_answer_listing_the_batch_as_sent_decides_as_any_other_listing(listing):
    """The answer that names exactly the batch, in the order sent, takes a shortcut past the
    "each task listed once" check; every other listing is checked. All decide alike."""
    n = 100  # above bulk_status_threshold: the group is applied at once
    state, commands = started(topo(*tasks(*range(1, n + 1))))
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)
    sent = list(batch.task_ids)
    answers = {
        "as_sent": {"Q": sent},
        "reversed": {"Q": sent[::-1]},
        "one_twice": {"Q": sent + sent[:1]},
        "split_over_two_statuses": {"Q": sent[:-1], "I": sent[-1:]},
        "one_left_out": {"Q": sent[:-1]},
    }
    after, out = feed(state, BatchQueued(batch.command_id, 0.5, answers[listing]))
    assert_consistent(after)
    letters = [after.status[idx(after, t)] for t in sent]
    if listing == "split_over_two_statuses":
        assert letters == ["Q"] * (n - 1) + ["I"]
    elif listing == "one_left_out":
        assert letters == ["Q"] * (n - 1) + ["G"]
        assert ready_ids(after) == sent[-1:]
        assert out == [cmd_like(NoteAnomaly, kind="batch_answer_incomplete")]
    else:
        assert letters == ["Q"] * n
        assert ready_ids(after) == [] and out == []
    assert after.inflight_total == 0
    assert sum(after.active_by_array.values()) == n - (listing == "one_left_out")


def test_the_batch_as_taken_is_not_part_of_the_pending_record() -> None:
    """``PendingBatch.taken`` (the indexes with their numpy array) speeds landing; states
    with and without it are the same value."""
    from swarmfold.core.index_list import IndexList
    from swarmfold.core.state import PendingBatch

    resources = Resources("q", {"memory": 1})
    bare = PendingBatch(1, (4, 5), resources, (5, 6))
    taken = PendingBatch(1, (4, 5), resources, (5, 6), IndexList([4, 5]))
    assert bare == taken and hash(bare) == hash(taken) and repr(bare) == repr(taken)
