"""Property: ``decide(state, event)`` modifies neither its state nor its event.

Random small DAGs (``topologies`` of the swarm machine) are run against the model server:
each step answers an outstanding command (faithfully or with a failure, in any order),
moves a task on the server, or lets the clock reach the next ``WakeAt``. Before every
``decide`` the state and the event are copied deeply into plain tuples, the topology and
every payload included; after it, both must still equal their copies. At the end of the run,
every state of it, read again in a shuffled order, must still equal its copy: the per-task
columns of a run's states share one array each (core/rerooted_column.py), re-rooted at
whichever state is read.

A second property checks the guard that makes this hold for anyone else, too: the shared
topology and an event's payload refuse writes.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmfold.core import SwarmConfig, decide, initial_state, is_terminal
from swarmfold.core.commands import Command, EvaluateResources, WakeAt
from swarmfold.core.events import Event, ResourcesEvaluated, RunStarted, TaskStatusesFetched, TimerFired
from swarmfold.core.state import SwarmState
from swarmfold.core.topology import TopologySpec
from swarmfold.testing.model_server import ModelServer, server_time
from swarmfold.testing.strategies import configs, evaluate, topologies

_SCALARS = (str, bytes, int, float, bool, type(None))


def deep(value: Any) -> Any:
    """A plain, deep copy of ``value``: tuples of tuples, with type names; no shared objects."""
    if isinstance(value, _SCALARS):
        return value
    if attrs.has(type(value)):
        return (type(value).__name__, tuple((f.name, deep(getattr(value, f.name)))
                                             for f in attrs.fields(type(value))))
    if isinstance(value, Mapping):
        return (type(value).__name__, tuple((deep(k), deep(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset) or type(value).__name__ == "PSet":
        return (type(value).__name__, tuple(sorted((deep(v) for v in value), key=repr)))
    if isinstance(value, memoryview | array):
        return (type(value).__name__, tuple(value.tolist()))
    if isinstance(value, Iterable):
        return (type(value).__name__, tuple(deep(v) for v in value))
    raise TypeError(f"deep: no plain form for {type(value).__name__}")


def _awaited(commands: Iterable[Command], state: SwarmState) -> list[Command]:
    return [c for c in commands if c.command_id in state.pending]


def _checked(state: SwarmState, event: Event) -> tuple[SwarmState, tuple[Command, ...]]:
    """``decide``, asserting that neither input changed (deeply)."""
    state_before, event_before = deep(state), deep(event)
    decision = decide(state, event)
    assert deep(event) == event_before, f"decide modified its event {type(event).__name__}"
    assert deep(state) == state_before, f"decide modified its state on {type(event).__name__}"
    return decision.state, decision.commands


@settings(max_examples=100)
@given(
    spec=topologies(),
    config=configs,
    seed=st.integers(0, 2**32 - 1),
    steps=st.lists(st.tuples(st.sampled_from("aaaafpt"), st.integers(0, 1 << 16)), min_size=40, max_size=160),
)
def test_decide_modifies_neither_its_state_nor_its_event(
    spec: TopologySpec, config: SwarmConfig, seed: int, steps: list[tuple[str, int]]
) -> None:
    server = ModelServer(spec, random.Random(seed), run_status="R",
                         heartbeat_increment=config.next_report_increment)
    now = 0.0
    event: Event = RunStarted(now, 1, 1, spec, config, "R", server_time(now))
    state, commands = _checked(initial_state(), event)
    history = [(state, deep(state))]
    outstanding = _awaited(commands, state)
    wake = next((c for c in reversed(commands) if isinstance(c, WakeAt)), None)
    for kind, pick in steps:
        if is_terminal(state):
            break
        if kind in "af" and outstanding:
            command = outstanding.pop(pick % len(outstanding))
            if kind == "a":
                event = server.answer(command, now, evaluate)
            elif isinstance(command, EvaluateResources):
                event = ResourcesEvaluated(command.command_id, now, evaluate(command))
            else:
                event = server.fail(command, now, applied=bool(pick & 1))
        elif kind == "p" and server.active_tasks():
            active = server.active_tasks()
            server.advance(active[pick % len(active)], ("step", "error", "fatal")[pick % 3], now)
            continue
        else:
            now = max(now + 0.5, wake.at if wake is not None else now)
            event = TimerFired(now)
        state, commands = _checked(state, event)
        history.append((state, deep(state)))
        outstanding += _awaited(commands, state)
        wake = next((c for c in reversed(commands) if isinstance(c, WakeAt)), wake)
    random.Random(seed).shuffle(history)
    for k, (earlier, copy) in enumerate(history):
        assert deep(earlier) == copy, f"state {k} of the shuffled history reads differently now"


# --- the guards --------------------------------------------------------------------------------


@settings(max_examples=40)
@given(spec=topologies())
def test_the_topology_refuses_every_write(spec: TopologySpec) -> None:
    state = decide(initial_state(), RunStarted(0.0, 1, 1, spec, SwarmConfig(), "R")).state
    topo = state.topology
    assert topo is not None
    for name in ("task_ids", "num_upstreams", "down_offsets", "down_flat", "max_attempts"):
        column = getattr(topo, name)
        if len(column):
            with pytest.raises(TypeError):
                column[0] = 0
    for name in ("index_of", "array_limits", "array_names", "bounds_of", "queue_ids", "cluster_ids",
                 "compute_resources_of"):
        mapping = getattr(topo, name)
        with pytest.raises((TypeError, AttributeError)):
            mapping[next(iter(mapping), 0)] = 0
    for column in (topo.scales_of, topo.fallbacks_of, topo.downstream, topo.index_of):
        with pytest.raises(AttributeError):
            column.n = 0  # type: ignore[union-attr]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        topo.task_ids = ()  # type: ignore[misc]


def test_event_payloads_refuse_writes() -> None:
    event = TaskStatusesFetched(1, 0.0, {"D": [1, 2]})
    assert event.tasks_by_status == {"D": (1, 2)}
    for write in (
        lambda m: m.__setitem__("G", (3,)),
        lambda m: m.update({"G": (3,)}),
        lambda m: m.pop("D"),
        lambda m: m.clear(),
        lambda m: m.setdefault("G", ()),
        lambda m: m.__delitem__("D"),
    ):
        with pytest.raises(TypeError):
            write(event.tasks_by_status)
    event.tasks_by_status.__init__({"G": (3,)})  # type: ignore[misc]
    assert event.tasks_by_status == {"D": (1, 2)}
    values = ResourcesEvaluated(2, 0.0, {"cores": 2}).values
    with pytest.raises(TypeError):
        values["cores"] = 3  # type: ignore[index]
    assert hash(event) == hash(TaskStatusesFetched(1, 0.0, {"D": (1, 2)}))
