"""``decide`` is pure: same events, same states and commands; the input state is never touched."""

from __future__ import annotations

import copy

import pytest

from swarmfold.core import decide, fold, initial_state, is_terminal
from swarmfold.core.commands import Finish, NoteAnomaly
from swarmfold.core.events import (
    AttachStarted,
    EdgeChunkLoaded,
    EdgeRow,
    HeartbeatAcknowledged,
    StatusUpdateAcknowledged,
    TaskChunkLoaded,
    TaskRow,
    TriageRequested,
)
from swarmfold.core.topology import QueueSpec

from .lifecycle_helpers import WF_ID, WFR_ID, Run, Script, comparable, config, drive, start, task, topology


def _spec():
    """A diamond over two arrays: 4 needs 1 and 2, 5 needs 3, 6 needs 4 and 5."""
    return topology(
        task(1),
        task(2),
        task(3),
        task(4, 1, 2, array=2),
        task(5, 3, array=2),
        task(6, 4, 5, array=2),
        arrays=(1, 2),
    )


def _recorded_run() -> Run:
    """A whole run against a scripted server, with an adjustment and a stray answer."""
    reports = [
        {"R": (1, 2, 3)},
        {"D": (1, 2, 3)},
        {"A": (4,), "D": (5,)},
        {"D": (4,)},
        {"D": (6,)},
    ]
    run, commands = start(_spec(), config(wedged_sync_interval=15.0), run_status="B")
    run.feed(TriageRequested(9999, 0.0))  # an answer to no command: a NoteAnomaly
    drive(run, commands, Script(reports=reports).answer, now=0.0, until=1000.0)
    assert is_terminal(run.state)
    return run


def _recorded_attach() -> Run:
    run = Run()
    row = TaskRow(1, 1, "G", 3, (("memory", 0.5),), (), (("memory", 1),), "c", "q", 10)
    for event in (
        AttachStarted(0.0, WF_ID, WFR_ID, dag_id=3, workflow_limit=10, config=config(chunk_size=5),
                      queues=[QueueSpec("q")]),
        HeartbeatAcknowledged(1, 0.1, "B"),
        TaskChunkLoaded(2, 0.2, [row, TaskRow(2, 1, "G", 3, (), (), (("memory", 1),), "c", "q", 10)]),
        EdgeChunkLoaded(4, 0.3, [EdgeRow(1, 11, (12,)), EdgeRow(2, 12, ())]),
        StatusUpdateAcknowledged(5, 0.4, "R"),
    ):
        run.feed(event)
    return run


@pytest.fixture(scope="module")
def recorded() -> Run:
    return _recorded_run()


def test_the_recorded_run_covers_a_whole_lifecycle(recorded: Run) -> None:
    names = {type(c).__name__ for c in recorded.history}
    assert {
        "UpdateWorkflowRunStatus",
        "BindResources",
        "QueueBatch",
        "LogHeartbeat",
        "WakeAt",
        "RequestTriage",
        "FetchTaskStatuses",
        "NoteAnomaly",
        "Finish",
    } <= names
    assert any(isinstance(c, NoteAnomaly) and c.kind == "unexpected_answer" for c in recorded.history)
    since = [c.since for c in recorded.history if type(c).__name__ == "FetchTaskStatuses"]
    assert None in since and "T0" in since  # incremental and wedged full syncs
    (finish,) = [c for c in recorded.history if isinstance(c, Finish)]
    assert finish.summary.final_status == "D"


@pytest.mark.parametrize("make", [_recorded_run, _recorded_attach], ids=["run", "attach"])
def test_folding_the_same_events_twice_gives_equal_states_and_commands(make) -> None:
    run = make()
    state1, commands1 = fold(run.events)
    state2, commands2 = fold(run.events)
    assert comparable(state1) == comparable(state2) == comparable(run.state)
    assert commands1 == commands2 == run.history
    assert state1.topology is not state2.topology  # two builds, equal by value


@pytest.mark.parametrize("make", [_recorded_run, _recorded_attach], ids=["run", "attach"])
def test_decide_does_not_modify_its_input_state(make) -> None:
    events = make().events
    state = initial_state()
    for event in events:
        before = copy.deepcopy(state)
        statuses = list(state.status)
        pending = dict(state.pending)
        timing = state.timing
        decision = decide(state, event)
        assert comparable(state) == comparable(before), event
        assert list(state.status) == statuses == list(before.status)
        assert dict(state.pending) == pending
        assert state.timing is timing
        # A copy of the state decides exactly the same.
        again = decide(before, event)
        assert again.commands == decision.commands
        assert comparable(again.state) == comparable(decision.state)
        state = decision.state


def test_deciding_twice_from_one_state_gives_the_same_decision(recorded: Run) -> None:
    state = initial_state()
    for event in recorded.events:
        first = decide(state, event)
        second = decide(state, event)
        assert first.commands == second.commands
        assert comparable(first.state) == comparable(second.state)
        state = first.state
    assert comparable(state) == comparable(recorded.state)
