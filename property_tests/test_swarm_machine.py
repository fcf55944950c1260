"""Stateful property test: the pure core against a model Jobmon server, with faults.

The machine itself ships as ``swarmfold.testing`` (``shell/testing/stateful.py``, where its
checks are described); this module runs it and keeps the regression tests of the core bugs it
found, as minimal examples.
"""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from swarmfold.core import SwarmConfig, decide, initial_state
from swarmfold.core.commands import Command, EvaluateResources, FetchArrayLimit, FetchTaskStatuses, QueueBatch
from swarmfold.core.events import ArrayLimitFetched, Event, RunStarted, TaskStatusesFetched, TimerFired
from swarmfold.core.invariants import check_commands, check_state, lost_tasks, no_task_double_queued
from swarmfold.core.state import IN_FLIGHT, SwarmState
from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec
from swarmfold.testing import ModelServer, SwarmMachine
from swarmfold.testing.model_server import SERVER_COMMANDS

TestSwarmMachine = SwarmMachine.TestCase


@pytest.mark.slow
def test_swarm_machine_long() -> None:
    """A longer search: more examples and longer runs (``-m slow``)."""
    current = settings()  # the loaded profile
    run_state_machine_as_test(
        SwarmMachine,
        settings=settings(current, max_examples=max(300, current.max_examples), stateful_step_count=150),
    )


# --- regression tests for the known core bugs (minimal examples found by the machine) -------


def _run_until_first_sync(spec: TopologySpec) -> tuple[SwarmState, list[Command]]:
    """Start ``spec`` (run status R) and fire the first sync; return the state and commands."""
    config = SwarmConfig(heartbeat_interval=30.0)
    d = decide(initial_state(), RunStarted(at=0.0, workflow_id=1, workflow_run_id=1, topology=spec,
                                           config=config, run_status="R"))
    d = decide(d.state, TimerFired(30.0))
    return d.state, list(d.commands)


def _answer_sync(state: SwarmState, commands: list[Command], report: dict[str, tuple[int, ...]],
                 limit: int) -> tuple[SwarmState, list[str]]:
    """Answer the heartbeat and sync parts among ``commands``; collect invariant messages."""
    server = ModelServer(TopologySpec(tasks=[], arrays=[], resource_sets=[]), random.Random(0))
    server.set_workflow_limit(limit)
    problems: list[str] = []
    for c in commands:
        if not isinstance(c, SERVER_COMMANDS) or isinstance(c, QueueBatch | EvaluateResources):
            continue
        if isinstance(c, FetchTaskStatuses):
            event: Event = TaskStatusesFetched(c.command_id, 30.0, report)
        elif isinstance(c, FetchArrayLimit):
            event = ArrayLimitFetched(c.command_id, 30.0, c.array_id, limit)
        else:
            event = server.answer(c, 30.0)
        d = decide(state, event)
        problems += check_state(d.state) + check_commands(state, d.commands, d.state) + lost_tasks(d.state)
        state = d.state
    return state, problems


def _two_task_spec(downstream_status: str) -> TopologySpec:
    return TopologySpec(
        tasks=[TaskSpec(1, 10, 1, status="D"),
               TaskSpec(2, 10, 1, upstream_ids=(1,), status=downstream_status)],
        arrays=[ArraySpec(10, "a", 5)],
        resource_sets=[ResourceSetSpec(1, "all.q", {"cores": 1})],
        workflow_limit=5,
    )


def test_adjusting_task_waits_for_a_reset_upstream() -> None:
    """One full sync reports upstream 1 reset D->G and its downstream 2 R->A.

    Task 2 must not be queued while task 1 is not DONE; the G bucket listed first made
    task_status._process_changes (code "A") enqueue it without ``ready_eligible``.
    """
    state, commands = _run_until_first_sync(_two_task_spec("R"))
    state, problems = _answer_sync(state, commands, {"G": (1,), "A": (2,)}, limit=5)
    assert problems == []


def test_adjusting_task_requeued_when_its_upstream_is_done_again() -> None:
    """Task 2 waits in the queue as A (capacity held by task 3); upstream 1 goes D->G->D.

    readiness.retract_done takes task 2 out of the queue; readiness.propagate_done_all only
    re-enqueues G tasks, so task 2 sits nowhere until a report names it again.
    """
    spec = TopologySpec(
        tasks=[TaskSpec(1, 10, 1, status="D"), TaskSpec(2, 10, 1, upstream_ids=(1,), status="A"),
               TaskSpec(3, 10, 1, status="R")],
        arrays=[ArraySpec(10, "a", 1)],
        resource_sets=[ResourceSetSpec(1, "all.q", {"cores": 1})],
        workflow_limit=1,
    )
    state, commands = _run_until_first_sync(spec)
    state, problems = _answer_sync(state, commands, {"G": (1,)}, limit=1)
    assert problems == []
    d = decide(state, TimerFired(60.0))
    state, problems = _answer_sync(d.state, list(d.commands), {"D": (1,)}, limit=1)
    assert problems == []


# --- the checks themselves catch what they claim to (no vacuous invariants) ------------------


def _queued_state() -> SwarmState:
    """A running swarm: 1 -> 3, 2 -> 3, 4 independent; workflow limit 1: task 1 is in flight
    (parked until its resources are bound), 2 and 4 wait in the ready queue, 3 for 1 and 2."""
    spec = TopologySpec(
        tasks=[TaskSpec(1, 10, 1), TaskSpec(2, 10, 1), TaskSpec(3, 11, 1, upstream_ids=(1, 2)),
               TaskSpec(4, 11, 1)],
        arrays=[ArraySpec(10, "a", 5), ArraySpec(11, "b", 5)],
        resource_sets=[ResourceSetSpec(1, "all.q", {"cores": 1})],
        workflow_limit=1,
    )
    state = decide(initial_state(), RunStarted(at=0.0, workflow_id=1, workflow_run_id=1, topology=spec,
                                               run_status="R")).state
    assert check_state(state) == []
    assert state.ready_count == 2 and state.inflight_total == 1
    return state


def _kinds(messages: list[str]) -> set[str]:
    return {m.split(":", 1)[0] for m in messages}


@pytest.mark.parametrize(
    ("corrupt", "kind"),
    [
        (lambda s: attrs.evolve(s, status_counts=s.status_counts.set("G", 9)), "status_counts"),
        (lambda s: attrs.evolve(s, active_by_array=s.active_by_array.set(10, 1)), "active_by_array"),
        (lambda s: attrs.evolve(s, ready_count=s.ready_count + 1), "ready_count"),
        (lambda s: attrs.evolve(s, inflight_total=0), "inflight_total"),
        (lambda s: attrs.evolve(s, upstream_done=s.upstream_done.set(2, 1)), "upstream_done"),
        (lambda s: attrs.evolve(s, place=s.place.set(3, IN_FLIGHT)), "in_flight"),
        (lambda s: attrs.evolve(s, place=s.place.set(3, 0)), "ready_count"),
        (lambda s: attrs.evolve(s, status=s.status.set(1, "Q"),
                                status_counts=s.status_counts.set("G", 3).set("Q", 1),
                                active_by_array=s.active_by_array.set(10, 1)), "ready_status"),
        (lambda s: attrs.evolve(s, status=s.status.set(0, "D"),
                                status_counts=s.status_counts.set("G", 3).set("D", 1)), "upstream_done"),
        (lambda s: attrs.evolve(s, pending=s.pending.set(77, s.pending[1])), "batches_outstanding"),
    ],
)
def test_check_state_catches_corruption(corrupt: Any, kind: str) -> None:
    assert kind in _kinds(check_state(corrupt(_queued_state())))


def test_check_commands_catches_bad_batches() -> None:
    state = _queued_state()
    ids = state.topology.task_ids  # type: ignore[union-attr]

    def batch(array_id: int, *task_ids: int) -> QueueBatch:
        return QueueBatch(command_id=99, array_id=array_id, task_ids=task_ids, task_resources_id=1,
                          workflow_run_id=1)

    roomy = attrs.evolve(state, workflow_limit=5)
    assert check_commands(roomy, [batch(11, ids[3])]) == []
    assert check_commands(roomy, [batch(10, ids[1]), batch(11, ids[3])]) == []
    # task 1 in flight holds the only slot: no new batch fits
    assert "workflow_limit" in _kinds(check_commands(state, [batch(11, ids[3])]))
    tight = attrs.evolve(roomy, array_limits=roomy.array_limits.set(10, 1))
    assert "array_limit" in _kinds(check_commands(tight, [batch(10, ids[1])]))
    assert "batch_array" in _kinds(check_commands(state, [batch(10, ids[3])]))
    assert "batch_upstreams" in _kinds(check_commands(state, [batch(11, ids[2])]))
    assert check_commands(state, [batch(10, ids[0])]) == []  # the parked batch, released
    assert "double_queued" in _kinds(check_commands(roomy, [batch(10, ids[1], ids[0])]))
    assert "double_queued" in _kinds(check_commands(state, [batch(11, ids[3]), batch(11, ids[3])]))
    assert no_task_double_queued(roomy, [batch(10, ids[0], ids[1])]) != []
    assert no_task_double_queued(roomy, [batch(10, ids[1])]) == []
    small = attrs.evolve(state, config=SwarmConfig(max_batch_size=1))
    assert "batch_size" in _kinds(check_commands(small, [batch(10, ids[1], ids[0])]))
