"""Initial fringe (spec §3.3) and readiness propagation (spec §4, quirk Q15).

Each test builds a state with ``started``, feeds events, and compares the exact commands.
A workflow limit of 0 keeps ready tasks in the ready queue so its order can be read.
"""

from __future__ import annotations

import pytest

from swarmfold.core.commands import (
    BindResources,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    Finish,
    QueueBatch,
    RequestTriage,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.events import StatusUpdateAcknowledged
from swarmfold.core.resources import Resources
from swarmfold.core.summary import RunSummary

from .helpers import (
    R1,
    WORKFLOW_ID,
    WORKFLOW_RUN_ID,
    assert_consistent,
    bind_all,
    chain,
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
    sync_of,
    task,
    topo,
    upstream_done,
)

BASE = Resources("all.q", R1)
#: R1 after one adjustment with the default scales (memory 0.5, runtime 0.5).
ADJUSTED = Resources("all.q", {"memory": 12, "runtime": 150, "cores": 1})


# --- §3.3 initial fringe ----------------------------------------------------------------------


def mixed_fringe(workflow_limit: int):
    return topo(
        task(5),
        task(3, status="A"),
        task(4, 5),
        task(2),
        task(1, status="A"),
        task(6, status="D"),
        task(7, 6),
        workflow_limit=workflow_limit,
    )


def test_fringe_adjusting_tasks_first_then_ready_registering_in_topology_order():
    state, commands = started(mixed_fringe(workflow_limit=0))

    # Nothing can be scheduled (limit 0): the only command is the wake-up for the first sync.
    assert commands == [WakeAt(command_id=1, at=30.0)]
    assert ready_ids(state) == [3, 1, 5, 2, 7]
    # A tasks got adjusted resources; G tasks keep their (validated) resources.
    assert state.resources_of(idx(state, 3)) == ADJUSTED
    assert state.resources_of(idx(state, 1)) == ADJUSTED
    assert state.resources_of(idx(state, 5)) == BASE
    assert 4 not in ready_ids(state)
    assert_consistent(state)


def test_fringe_order_is_the_batch_order_with_ample_capacity():
    state, commands = started(mixed_fringe(workflow_limit=100))

    assert commands == [
        BindResources(command_id=1, queue="all.q", queue_id=0, requested=ADJUSTED.requested),
        BindResources(command_id=2, queue="all.q", queue_id=0, requested=BASE.requested),
        WakeAt(command_id=3, at=30.0),
    ]
    state, queued = bind_all(state, commands, first_id=100)
    assert queued == [
        QueueBatch(command_id=4, array_id=1, task_ids=(3, 1), task_resources_id=100,
                   workflow_run_id=WORKFLOW_RUN_ID),
        QueueBatch(command_id=5, array_id=1, task_ids=(5, 2, 7), task_resources_id=101,
                   workflow_run_id=WORKFLOW_RUN_ID),
    ]
    assert_consistent(state)


def test_tasks_whose_upstreams_are_not_done_are_not_enqueued():
    spec = topo(*chain(1, 2, 3), task(5, status="D"), task(4, 1, 5))
    state, commands = started(spec)
    state, queued = bind_all(state, commands)

    assert of_type(queued, QueueBatch) == [
        QueueBatch(command_id=queued[0].command_id, array_id=1, task_ids=(1,), task_resources_id=100,
                   workflow_run_id=WORKFLOW_RUN_ID),
    ]
    assert upstream_done(state, 2) == 0
    assert upstream_done(state, 4) == 1  # 5 was DONE before the run; 1 is not yet
    assert state.task_status(4) == "G"
    assert_consistent(state)


def test_tasks_active_at_start_are_not_enqueued_and_count_as_active():
    spec = topo(task(1, status="R"), task(2, status="Q"), task(3))
    state, commands = started(spec)

    assert state.active_count == 2
    assert state.active_by_array == {1: 2}
    state, queued = bind_all(state, commands)
    assert [c.task_ids for c in of_type(queued, QueueBatch)] == [(3,)]


def test_initial_done_tasks_count_for_downstreams_and_previously_complete():
    spec = topo(task(1, status="D"), task(2, status="D"), task(3, 1, 2), task(4, 1, 3))
    state, commands = started(spec)

    assert state.num_previously_complete == 2
    assert upstream_done(state, 3) == 2
    assert upstream_done(state, 4) == 1
    assert ready_ids(state) == []  # 3 is already in flight (parked until its resources are bound)
    state, seen = launch(state, commands)
    assert [c.task_ids for c in of_type(seen, QueueBatch)] == [(3,)]

    state, answered = sync_at(state, 30.0, {"D": [3]})
    (batch,) = of_type(answered, QueueBatch)
    assert batch.task_ids == (4,)
    state, _ = queue_all(state, answered, at=30.0)

    state, answered = sync_at(state, 60.0, {"D": [4]})
    (final,) = answered
    assert final == UpdateWorkflowRunStatus(command_id=final.command_id, workflow_run_id=WORKFLOW_RUN_ID,
                                            status="D")
    state, finished = feed(state, StatusUpdateAcknowledged(final.command_id, 60.0, "D"))
    assert finished == [
        Finish(
            command_id=final.command_id + 1,
            summary=RunSummary(
                final_status="D",
                reason="all tasks done",
                total_tasks=4,
                done_count=4,
                failed_count=0,
                num_previously_complete=2,
                elapsed=60.0,
                tasks_by_status={"D": (1, 2, 3, 4)},
            ),
        )
    ]


# --- §4 propagation -----------------------------------------------------------------------------


def test_done_propagation_enqueues_newly_ready_downstreams_at_the_back():
    # Workflow limit 1: 1 runs, 2 waits in the ready queue; 3 and 4 depend on 1.
    spec = topo(task(1), task(2), task(3, 1), task(4, 1), workflow_limit=1)
    state, commands = started(spec)
    state, seen = launch(state, commands)
    assert [c.task_ids for c in of_type(seen, QueueBatch)] == [(1,)]
    assert ready_ids(state) == [2]

    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, {"D": [1]})
    state, after_statuses = feed(state, answers[0])

    assert after_statuses == []
    assert ready_ids(state) == [2, 3, 4]
    assert state.n_executions == 1
    assert_consistent(state)

    # The next pass (limit 1, nothing active) takes the head: 2, not a newly ready task.
    state, rest = feed(state, *answers[1:])
    assert of_type(rest, QueueBatch) == [
        QueueBatch(command_id=rest[0].command_id, array_id=1, task_ids=(2,), task_resources_id=100,
                   workflow_run_id=WORKFLOW_RUN_ID),
    ]
    assert ready_ids(state) == [3, 4]


@pytest.mark.parametrize(
    ("report", "expected_batch", "left_ready"),
    [
        # Edges walked: 1->10, 1->12, 2->10 (10 ready), 2->13 (ready), 3->11 (ready), 3->12 (ready).
        ([1, 2, 3], (10, 13, 11), [12]),
        # 3->11 (ready), 3->12, 1->10, 1->12 (ready), 2->10 (ready), 2->13 (ready).
        ([3, 1, 2], (11, 12, 10), [13]),
    ],
)
def test_downstreams_made_ready_by_one_report_queue_in_the_order_their_last_upstream_came_in(
    report, expected_batch, left_ready
):
    # Three roots done in one report; 10 and 12 have two upstreams in that report, so each
    # becomes ready at the edge of its second one (not at its first, not in index order).
    spec = topo(task(1), task(2), task(3), task(10, 2, 1), task(11, 3), task(12, 1, 3), task(13, 2),
                workflow_limit=3)
    state, commands = started(spec)
    state, seen = launch(state, commands)
    assert [c.task_ids for c in of_type(seen, QueueBatch)] == [(1, 2, 3)]

    state, answered = sync_at(state, 30.0, {"D": report})
    assert [c.task_ids for c in of_type(answered, QueueBatch)] == [expected_batch]
    assert ready_ids(state) == left_ready
    assert [upstream_done(state, t) for t in (10, 11, 12, 13)] == [2, 1, 2, 1]
    assert_consistent(state)


def test_fatal_upstream_means_downstream_never_runs_and_run_ends_in_error():
    state, commands = started(topo(*chain(1, 2)))
    state, _ = launch(state, commands)

    state, answered = sync_at(state, 30.0, {"F": [1]})
    # Nothing active, nothing ready, not all final: one full sync before giving up.
    n = answered[0].command_id
    assert answered == [
        RequestTriage(command_id=n, workflow_run_id=WORKFLOW_RUN_ID),
        FetchTaskStatuses(command_id=n + 1, workflow_id=WORKFLOW_ID, since=None),
        FetchWorkflowLimit(command_id=n + 2, workflow_id=WORKFLOW_ID),
        FetchArrayLimit(command_id=n + 3, array_id=1),
    ]
    assert ready_ids(state) == []
    assert state.task_status(2) == "G"

    state, answered = feed(state, *sync_answers(state, sync_of(answered), 30.0, {"F": [1], "G": [2]}))
    assert answered == [
        UpdateWorkflowRunStatus(command_id=n + 4, workflow_run_id=WORKFLOW_RUN_ID, status="E"),
    ]
    state, finished = feed(state, StatusUpdateAcknowledged(n + 4, 30.0, "E"))
    assert finished == [
        Finish(
            command_id=n + 5,
            summary=RunSummary(
                final_status="E",
                reason="1 task(s) failed",
                total_tasks=2,
                done_count=0,
                failed_count=1,
                num_previously_complete=0,
                elapsed=30.0,
                tasks_by_status={"F": (1,), "G": (2,)},
            ),
        )
    ]


@pytest.mark.parametrize(
    "report",
    [{"D": [1], "G": [2]}, {"G": [2], "D": [1]}],
    ids=["upstream-first", "downstream-first"],
)
def test_no_double_enqueue_when_upstream_done_and_downstream_registering_arrive_together(report):
    state, commands = started(topo(task(1, status="R"), task(2, 1)))
    assert commands == [WakeAt(command_id=1, at=30.0)]

    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, report)
    state, after_statuses = feed(state, answers[0])
    assert after_statuses == []
    assert ready_ids(state) == [2]
    assert state.ready_count == 1
    assert_consistent(state)

    state, rest = feed(state, *answers[1:])
    state, queued = bind_all(state, rest)
    assert [c.task_ids for c in of_type(queued, QueueBatch)] == [(2,)]


@pytest.mark.parametrize(
    "report",
    [{"D": [1], "G": [2]}, {"G": [2], "D": [1]}],
    ids=["upstream-first", "downstream-first"],
)
def test_no_double_enqueue_when_downstream_changes_into_registering_in_the_same_report(report):
    # 2 was FATAL (e.g. set by the CLI) and is reset to G while its upstream completes.
    state, _ = started(topo(task(1, status="R"), task(2, 1, status="F")))

    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, report)
    state, after_statuses = feed(state, answers[0])

    assert after_statuses == []
    assert ready_ids(state) == [2]
    assert_consistent(state)


def test_same_report_twice_changes_nothing_and_enqueues_nothing_twice():
    state, commands = started(topo(task(1, status="R"), task(2, 1), task(3)))
    state, _ = launch(state, commands)
    # Freeze scheduling (limit 0) so ready tasks stay visible in the queue.
    state, _ = sync_at(state, 30.0, {"D": [1]}, workflow_limit=0)
    # 3 was queued at the start; 2 became ready through 1.
    assert ready_ids(state) == [2]
    before = state

    state, sync = fire(state, 60.0)
    answers = sync_answers(state, sync, 60.0, {"D": [1], "G": [2]})
    state, after_statuses = feed(state, answers[0])

    assert after_statuses == []
    assert ready_ids(state) == [2]
    assert state.n_executions == 1
    assert upstream_done(state, 2) == 1
    assert state.status == before.status
    assert state.status_counts == before.status_counts
    assert_consistent(state)


def test_statuses_for_unknown_task_ids_are_ignored_silently():
    state, _ = started(topo(task(1, status="R"), task(2, 1)))
    state, sync = fire(state, 30.0)
    before = state
    answers = sync_answers(state, sync, 30.0, {"D": [999], "F": [1000], "R": [1]})
    state, after_statuses = feed(state, answers[0])

    assert after_statuses == []  # no NoteAnomaly either
    assert state.status == before.status
    assert state.status_counts == before.status_counts
    assert state.anomalies == before.anomalies
    assert_consistent(state)


def test_done_to_registering_reset_retracts_the_count_and_redone_counts_again():
    # Q15: Jobmon raises when an upstream enters D twice; here the count follows D exactly.
    spec = topo(task(1, status="D"), task(2, 1), task(3, 1, 4), task(4), workflow_limit=0)
    state, _ = started(spec)
    assert ready_ids(state) == [2, 4]
    assert (upstream_done(state, 2), upstream_done(state, 3)) == (1, 1)

    state, sync = fire(state, 30.0)
    answers = sync_answers(state, sync, 30.0, {"G": [1]})
    state, after_statuses = feed(state, answers[0])
    assert after_statuses == []
    # 2 left the ready queue (its upstream is no longer DONE); 1 itself is ready again.
    assert ready_ids(state) == [4, 1]
    assert (upstream_done(state, 2), upstream_done(state, 3)) == (0, 0)
    assert_consistent(state)
    state, _ = feed(state, *answers[1:])

    state, sync = fire(state, 60.0)
    answers = sync_answers(state, sync, 60.0, {"D": [1]})
    state, after_statuses = feed(state, answers[0])
    assert after_statuses == []
    assert ready_ids(state) == [4, 2]
    assert (upstream_done(state, 2), upstream_done(state, 3)) == (1, 1)
    assert state.n_executions == 1
    assert_consistent(state)
    state, _ = feed(state, *answers[1:])

    # DONE reported again: no overshoot.
    state, _ = sync_at(state, 90.0, {"D": [1]})
    assert (upstream_done(state, 2), upstream_done(state, 3)) == (1, 1)
    assert_consistent(state)
