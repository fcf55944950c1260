"""Applying reported task statuses (core/task_status.py ``apply_reports``; spec §2, §4, quirk Q1).

Reports reach the core through sync answers (``TaskStatusesFetched``) and batch answers
(``BatchQueued``); both go through the same policies.
"""

from __future__ import annotations

import pytest

from swarmfold.core.commands import NoteAnomaly, QueueBatch
from swarmfold.core.events import BatchQueued
from swarmfold.core.resources import Resources

from .helpers import (
    assert_consistent,
    bind_all,
    cmd_like,
    feed,
    fire,
    idx,
    launch,
    nonzero,
    of_type,
    ready_ids,
    started,
    sync_answers,
    sync_at,
    task,
    topo,
    upstream_done,
)


def report(state, at, statuses, **kw):
    """Fire the timer, then answer only the statuses part of the sync; return state, commands.

    The other parts stay unanswered, so no scheduling pass follows and the commands are the
    ones the report itself produced.
    """
    state, sync = fire(state, at)
    events = sync_answers(state, sync, at, statuses, **kw)
    state, out = feed(state, events[0])
    return state, out, events[1:]


def running_tasks(*statuses_and_arrays, workflow_limit=0):
    """A state whose tasks start in the given (status, array) pairs, ids 1..n."""
    spec = topo(
        *[task(i, status=s, array=a) for i, (s, a) in enumerate(statuses_and_arrays, start=1)],
        workflow_limit=workflow_limit,
    )
    state, _ = started(spec)
    return state


# --- unknown status codes ------------------------------------------------------------------------


def test_unknown_status_code_is_noted_and_not_applied():
    state = running_tasks(("R", 1), ("R", 1))
    before = state
    state, out, _ = report(state, 30.0, {"X": [1], "D": [2]})

    assert out == [
        NoteAnomaly(
            command_id=out[0].command_id,
            kind="unknown_task_status",
            detail="task_status_updates: status code 'X' for 1 task(s), e.g. [1]; not applied",
        )
    ]
    assert state.task_status(1) == "R"
    assert state.task_status(2) == "D"  # the rest of the report still applies
    assert state.anomalies == before.anomalies + 1
    assert_consistent(state)


def test_unknown_status_code_in_a_batch_answer_is_noted_and_not_applied():
    state, commands = started(topo(task(1), task(2)))
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)
    state, out = feed(state, BatchQueued(batch.command_id, 0.5, {"Q": [1], "??": [2]}))

    # Not applied; a task reported with an unknown code is not "omitted" either (no re-queue):
    # the next sync settles it.
    assert out == [
        NoteAnomaly(
            command_id=out[0].command_id,
            kind="unknown_task_status",
            detail="queue_task_batch: status code '??' for 1 task(s), e.g. [2]; not applied",
        )
    ]
    assert state.task_status(2) == "G"
    assert ready_ids(state) == []
    assert_consistent(state)


# --- ERROR_RECOVERABLE (Q1) ------------------------------------------------------------------------


def test_error_recoverable_is_counted_transient_not_active_and_no_crash():
    state = running_tasks(("R", 1), ("R", 1))
    state, out, _ = report(state, 30.0, {"E": [1]})

    assert out == []
    assert state.task_status(1) == "E"
    assert state.count("E") == 1
    assert state.active_count == 1
    assert dict(state.active_by_array) == {1: 1}
    assert ready_ids(state) == []
    assert not state.all_tasks_final()
    assert_consistent(state)


@pytest.mark.parametrize(
    ("then", "expect_ready"), [("G", [1]), ("A", [1]), ("F", []), ("Q", [])]
)
def test_error_recoverable_moves_on_to_any_status(then, expect_ready):
    state = running_tasks(("R", 1), ("R", 1))  # 2 keeps the loop going
    state, _, rest = report(state, 30.0, {"E": [1]})
    state, _ = feed(state, *rest)
    state, out, _ = report(state, 60.0, {then: [1]})

    assert out == []
    assert state.task_status(1) == then
    assert ready_ids(state) == expect_ready
    assert state.count("E") == 0
    assert_consistent(state)


def test_error_recoverable_reported_by_a_batch_answer_is_not_requeued():
    state, commands = started(topo(task(1), task(2)))
    state, queued = bind_all(state, commands)
    (batch,) = of_type(queued, QueueBatch)
    state, out = feed(state, BatchQueued(batch.command_id, 0.5, {"Q": [1], "E": [2]}))

    assert out == []
    assert (state.task_status(1), state.task_status(2)) == ("Q", "E")
    assert ready_ids(state) == []
    assert_consistent(state)


# --- stale reports --------------------------------------------------------------------------------


@pytest.mark.parametrize(("final", "reported"), [("D", "R"), ("D", "Q"), ("F", "Q"), ("F", "A"), ("D", "E")])
def test_stale_report_moving_a_final_task_elsewhere_is_ignored(final, reported):
    state = running_tasks((final, 1), ("R", 1))
    before = state
    state, out, _ = report(state, 30.0, {reported: [1]})

    assert out == [
        NoteAnomaly(
            command_id=out[0].command_id,
            kind="stale_report",
            detail="task_status_updates: 1 report(s) would move a DONE/FATAL task "
            "somewhere other than REGISTERING; ignored",
        )
    ]
    assert state.status == before.status
    assert state.status_counts == before.status_counts
    assert state.active_by_array == before.active_by_array
    assert_consistent(state)


def test_stale_reports_are_noted_once_per_report_with_their_number():
    state = running_tasks(("D", 1), ("F", 1), ("R", 1))
    state, out, _ = report(state, 30.0, {"R": [1, 2], "D": [3]})

    assert out == [cmd_like(NoteAnomaly, kind="stale_report")]
    assert "2 report(s)" in out[0].detail
    assert [state.task_status(t) for t in (1, 2, 3)] == ["D", "F", "D"]
    assert_consistent(state)


def test_stale_report_keeps_the_downstream_count():
    state, _ = started(topo(task(1, status="D"), task(2, 1), workflow_limit=0))
    state, out, _ = report(state, 30.0, {"R": [1]})
    assert out == [cmd_like(NoteAnomaly, kind="stale_report")]
    assert upstream_done(state, 2) == 1
    assert ready_ids(state) == [2]


@pytest.mark.parametrize("final", ["D", "F"])
def test_done_or_fatal_may_be_reset_to_registering(final):
    state = running_tasks((final, 1), ("R", 1))
    state, out, _ = report(state, 30.0, {"G": [1]})

    assert out == []
    assert state.task_status(1) == "G"
    assert ready_ids(state) == [1]
    assert_consistent(state)


# --- counts stay exact --------------------------------------------------------------------------


def test_counts_and_active_by_array_follow_every_report():
    state, commands = started(
        topo(
            task(1, array=1), task(2, array=1), task(3, array=2), task(4, array=2),
            task(5, array=2, status="R"), task(6, 1, array=1), task(7, status="D", array=2),
        )
    )
    assert dict(state.active_by_array) == {2: 1}
    assert_consistent(state)

    state, seen = launch(state, commands)
    assert dict(state.status_counts) == {"Q": 4, "R": 1, "G": 1, "D": 1}
    assert dict(state.active_by_array) == {1: 2, 2: 3}
    assert_consistent(state)

    steps = [
        {"I": [1, 3], "O": [2], "R": [4]},
        {"R": [1, 2, 3], "D": [5]},
        {"D": [1], "A": [3], "E": [4], "F": [2]},
        {"G": [4], "D": [7], "X": [6]},
    ]
    at = 30.0
    for statuses in steps:
        state, _ = sync_at(state, at, statuses, workflow_limit=0)
        assert_consistent(state)
        at += 30.0

    assert nonzero(state.status_counts) == {"D": 3, "F": 1, "A": 1, "G": 2}
    assert nonzero(state.active_by_array) == {}
    assert state.active_count == 0
    assert ready_ids(state) == [3, 6, 4]  # A at the front; 6 (via 1) and 4 (E -> G) at the back
    assert state.resources_of(idx(state, 3)) == Resources("all.q", {"memory": 12, "runtime": 150, "cores": 1})


@pytest.mark.parametrize(
    "statuses",
    [
        # 1 ends REGISTERING: its downstream must not count it.
        {"D": [1], "G": [1]},
        # 1 ends DONE: it must not sit in the ready queue, and counts once.
        {"G": [1], "D": [1]},
    ],
    ids=["D-then-G", "G-then-D"],
)
def test_a_task_listed_twice_in_one_report_is_processed_by_its_final_status(statuses):
    state, _ = started(topo(task(1, status="D"), task(2, 1), workflow_limit=0))
    state, _, _ = report(state, 30.0, statuses)

    final = list(statuses)[-1]
    assert state.task_status(1) == final
    assert_consistent(state)  # incl. upstream_done == number of upstreams currently DONE
    assert ready_ids(state) == ([2] if final == "D" else [1])
