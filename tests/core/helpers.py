"""Small builders and matchers for dask-WorkerState-style tests of ``decide``.

Tests build a state, feed events, and compare the EXACT commands that come back. Command
ids come from a counter in the state, so tests read ids from the emitted commands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import frozen
from hypothesis import strategies as st

from swarmfold.core.batching import queue_order
from swarmfold.core.commands import (
    BindResources,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LogHeartbeat,
    QueueBatch,
    RequestTriage,
)
from swarmfold.core.config import UNLIMITED, SwarmConfig
from swarmfold.core.decide import decide
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    HeartbeatAcknowledged,
    ResourcesBound,
    RunStarted,
    TaskRow,
    TaskStatusesFetched,
    TimerFired,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.state import EVALUATING, IN_FLIGHT, SwarmState, in_ready_queue, initial_state
from swarmfold.core.statuses import ACTIVE
from swarmfold.core.topology import ArraySpec, QueueSpec, ResourceSetSpec, TaskSpec, TopologySpec

WORKFLOW_ID = 1
WORKFLOW_RUN_ID = 10
#: Requested resources of resource set 1 unless a test says otherwise.
R1 = {"memory": 8, "runtime": 100, "cores": 1}


# --- building topologies -----------------------------------------------------------------


def task(
    task_id: int, *upstreams: int, array: int = 1, rs: int = 1, status: str = "G", **kw: Any
) -> TaskSpec:
    """``task(3, 1, 2)`` is task 3 with upstreams 1 and 2 (array 1, resource set 1, G)."""
    return TaskSpec(task_id, array, rs, upstream_ids=upstreams, status=status, **kw)


def topo(
    *tasks: TaskSpec,
    arrays: Mapping[int, int] | None = None,
    resource_sets: Mapping[int, tuple[str, Mapping[str, Any]]] | None = None,
    queues: Sequence[QueueSpec] = (),
    workflow_limit: int = UNLIMITED,
    **kw: Any,
) -> TopologySpec:
    """A small TopologySpec.

    ``arrays`` maps array id -> limit (every array used by a task gets ``UNLIMITED`` unless
    given); ``resource_sets`` maps id -> ``(queue, requested)`` (default: set 1 = ``R1`` on
    ``all.q``).
    """
    limits = dict(arrays or {})
    for t in tasks:
        limits.setdefault(t.array_id, UNLIMITED)
    sets = dict(resource_sets or {1: ("all.q", R1)})
    return TopologySpec(
        tasks=tasks,
        arrays=[ArraySpec(a, limit=lim) for a, lim in sorted(limits.items())],
        resource_sets=[ResourceSetSpec(i, q, req) for i, (q, req) in sorted(sets.items())],
        queues=queues,
        workflow_limit=workflow_limit,
        **kw,
    )


def chain(*ids: int, **kw: Any) -> list[TaskSpec]:
    """Tasks ``ids[0] -> ids[1] -> ...``."""
    return [task(t, *([ids[k - 1]] if k else []), **kw) for k, t in enumerate(ids)]


# --- driving decide ----------------------------------------------------------------------


def started(
    spec: TopologySpec,
    config: SwarmConfig | None = None,
    run_status: str = "R",
    at: float = 0.0,
    server_time: str | None = "t0",
) -> tuple[SwarmState, list[Any]]:
    """The state after ``RunStarted`` (default ``run_status='R'``: no start update needed)."""
    d = decide(
        initial_state(),
        RunStarted(
            at=at,
            workflow_id=WORKFLOW_ID,
            workflow_run_id=WORKFLOW_RUN_ID,
            topology=spec,
            config=config or SwarmConfig(),
            run_status=run_status,
            server_time=server_time,
        ),
    )
    return d.state, list(d.commands)


def feed(state: SwarmState, *events: Any) -> tuple[SwarmState, list[Any]]:
    """Fold ``events`` one by one; return the state and every command, in order."""
    commands: list[Any] = []
    for event in events:
        d = decide(state, event)
        state = d.state
        commands.extend(d.commands)
    return state, commands


def of_type(commands: Iterable[Any], *types: type) -> list[Any]:
    return [c for c in commands if isinstance(c, types)]


def bind_all(
    state: SwarmState, commands: Iterable[Any], at: float = 0.0, first_id: int = 100
) -> tuple[SwarmState, list[Any]]:
    """Answer every ``BindResources`` in ``commands`` (ids ``first_id``, ``first_id+1``, ...)."""
    events = [
        ResourcesBound(command_id=c.command_id, at=at, task_resources_id=first_id + k)
        for k, c in enumerate(of_type(commands, BindResources))
    ]
    return feed(state, *events)


def queue_all(
    state: SwarmState, commands: Iterable[Any], at: float = 0.0, status: str = "Q"
) -> tuple[SwarmState, list[Any]]:
    """Answer every ``QueueBatch`` in ``commands``: every task came back as ``status``."""
    events = [
        BatchQueued(command_id=c.command_id, at=at, tasks_by_status={status: c.task_ids})
        for c in of_type(commands, QueueBatch)
    ]
    return feed(state, *events)


def launch(state: SwarmState, commands: list[Any], at: float = 0.0) -> tuple[SwarmState, list[Any]]:
    """Bind every resource request, then answer every batch Q; return all commands seen."""
    state, bound = bind_all(state, commands, at)
    state, queued = queue_all(state, [*commands, *bound], at)
    return state, [*bound, *queued]


@frozen
class Sync:
    """The commands of one sync (spec §7)."""

    triage: RequestTriage
    statuses: FetchTaskStatuses
    workflow_limit: FetchWorkflowLimit
    array_limits: tuple[FetchArrayLimit, ...]


def sync_of(commands: Sequence[Any]) -> Sync:
    """The (single) sync among ``commands``."""
    (triage,) = of_type(commands, RequestTriage)
    (statuses,) = of_type(commands, FetchTaskStatuses)
    (wf,) = of_type(commands, FetchWorkflowLimit)
    return Sync(triage, statuses, wf, tuple(of_type(commands, FetchArrayLimit)))


def sync_answers(
    state: SwarmState,
    sync: Sync,
    at: float,
    statuses: Mapping[str, Sequence[int]] | None = None,
    workflow_limit: int | None = None,
    array_limits: Mapping[int, int] | None = None,
    server_time: str | None = None,
) -> list[Any]:
    """Answers to every part of ``sync``: statuses FIRST, then triage, then the limits.

    Limits not given are answered with the state's current ones (nothing changes).
    """
    limits = dict(array_limits or {})
    events: list[Any] = [
        TaskStatusesFetched(sync.statuses.command_id, at, dict(statuses or {}), server_time),
        TriageRequested(sync.triage.command_id, at),
        WorkflowLimitFetched(
            sync.workflow_limit.command_id,
            at,
            state.workflow_limit if workflow_limit is None else workflow_limit,
        ),
    ]
    for c in sync.array_limits:
        limit = limits.get(c.array_id, state.array_limits[c.array_id])
        events.append(ArrayLimitFetched(c.command_id, at, c.array_id, limit))
    return events


def fire(state: SwarmState, at: float, run_status: str = "R") -> tuple[SwarmState, Sync]:
    """The clock reaches ``at``: acknowledge the heartbeat it sends, return the sync it starts."""
    state, commands = feed(state, TimerFired(at=at))
    state, _ = feed(
        state,
        *[HeartbeatAcknowledged(c.command_id, at, run_status) for c in of_type(commands, LogHeartbeat)],
    )
    return state, sync_of(commands)


def sync_at(
    state: SwarmState, at: float, statuses: Mapping[str, Sequence[int]] | None = None, **kw: Any
) -> tuple[SwarmState, list[Any]]:
    """``fire`` then answer the whole sync; return the commands the answers produced."""
    state, sync = fire(state, at)
    return feed(state, *sync_answers(state, sync, at, statuses, **kw))


# --- looking inside a state ----------------------------------------------------------------


def ready_ids(state: SwarmState) -> list[int]:
    """Task ids of the ready queue, in Jobmon deque order."""
    assert state.topology is not None
    ids = state.topology.task_ids
    return [ids[i] for i in queue_order(state.ready_groups, state.place)]


def idx(state: SwarmState, task_id: int) -> int:
    assert state.topology is not None
    return state.topology.index_of[task_id]


def upstream_done(state: SwarmState, task_id: int) -> int:
    return state.upstream_done[idx(state, task_id)]


def nonzero(m: Mapping[Any, int]) -> dict[Any, int]:
    return {k: v for k, v in m.items() if v}


def assert_consistent(state: SwarmState) -> None:
    """Every running index equals a recount from the per-task vectors."""
    topo_ = state.topology
    assert topo_ is not None
    status = list(state.status)
    assert nonzero(state.status_counts) == dict(Counter(status))
    active: Counter[int] = Counter(a for a, s in zip(topo_.array_of, status, strict=True) if s in ACTIVE)
    assert nonzero(state.active_by_array) == dict(active)
    place = list(state.place)
    in_queue = queue_order(state.ready_groups, state.place)
    assert len(in_queue) == len(set(in_queue)), "a task is in the ready queue twice"
    assert sorted(in_queue) == [i for i, p in enumerate(place) if in_ready_queue(p)]
    assert state.ready_count == len(in_queue)
    assert all(status[i] in ("G", "A") for i in in_queue), "a task not in G/A sits in the ready queue"
    inflight = [i for i, p in enumerate(place) if p == IN_FLIGHT]
    assert state.inflight_total == len(inflight)
    assert nonzero(state.inflight_by_array) == dict(Counter(topo_.array_of[i] for i in inflight))
    assert state.evaluating_count == sum(1 for p in place if p == EVALUATING)
    done_ups = [0] * topo_.size
    for i, downs in enumerate(topo_.downstream):
        if status[i] == "D":
            for d in downs:
                done_ups[d] += 1
    assert list(state.upstream_done) == done_ups


class cmd_like:  # noqa: N801 - reads like a constructor in assertions
    """Partial matcher: ``cmd_like(QueueBatch, array_id=1) == command``."""

    def __init__(self, cls: type, **fields: Any) -> None:
        self.cls = cls
        self.fields = fields

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self.cls):
            return False
        return all(getattr(other, k) == v for k, v in self.fields.items())

    def __hash__(self) -> int:  # pragma: no cover - matchers are not hashed
        return id(self)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{self.cls.__name__}~({inner})"


def task_row_lists(max_size: int) -> Any:
    """Hypothesis: lists of ``TaskRow`` with ids past 64 bits, a non-ASCII status, shared and
    distinct resource tuples, and equal values of different kinds (``1`` and ``1.0``)."""
    names = st.text("abq.", min_size=1, max_size=3)
    return st.lists(
        st.builds(
            TaskRow,
            task_id=st.integers(-(2**70), 2**70),
            array_id=st.integers(0, 3),
            status=st.sampled_from(["G", "Q", "D", "A", "Ä"]),
            max_attempts=st.integers(1, 3),
            resource_scales=st.sampled_from([(), (("memory", 0.5),), (("runtime", (0.5, 1)),)]),
            fallback_queues=st.lists(names, max_size=2).map(tuple),
            requested_resources=st.lists(
                st.tuples(names, st.integers(0, 3) | st.sampled_from([1.0, 2.0, "x"])), max_size=2
            ).map(tuple),
            cluster_name=names,
            queue_name=names,
            array_limit=st.integers(0, 5),
        ),
        max_size=max_size,
    )
