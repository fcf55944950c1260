"""Small drivers for lifecycle, timing, attach and determinism tests.

``Run`` feeds events into ``decide`` one at a time and returns the exact commands of each
step, so a test can assert them (dask ``WorkerState`` style). ``answer_sync`` answers the
parts of one sync. ``Script`` is a tiny scripted server for tests that need many
iterations on a virtual clock (``drive``); such tests still assert specific commands.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from swarmfold.core import decide, initial_state
from swarmfold.core.commands import (
    BindResources,
    Command,
    Fail,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    Finish,
    LogHeartbeat,
    NoteAnomaly,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.config import UNLIMITED, SwarmConfig
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    Event,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    ResourcesBound,
    RunStarted,
    StatusUpdateAcknowledged,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TimerFired,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.state import SwarmState
from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec

C = TypeVar("C")

WF_ID = 7
WFR_ID = 70
QUEUE = "all.q"
REQUESTED = {"memory": 1, "runtime": 60}


# --- topologies ---------------------------------------------------------------------------


def task(task_id: int, *upstreams: int, status: str = "G", array: int = 1) -> TaskSpec:
    return TaskSpec(task_id, array, 1, upstream_ids=upstreams, status=status)


def topology(*tasks: TaskSpec, arrays: Sequence[int] = (1,), workflow_limit: int = UNLIMITED) -> TopologySpec:
    """One resource set on one queue, arrays with unlimited concurrency."""
    return TopologySpec(
        tasks=tasks,
        arrays=[ArraySpec(a) for a in arrays],
        resource_sets=[ResourceSetSpec(1, QUEUE, REQUESTED)],
        workflow_limit=workflow_limit,
    )


def config(**kwargs: Any) -> SwarmConfig:
    """A 10 s heartbeat, report-by buffer 3 (so next_report_increment is exactly 30)."""
    kwargs.setdefault("heartbeat_interval", 10.0)
    kwargs.setdefault("report_by_buffer", 3.0)
    return SwarmConfig(**kwargs)


# --- command lists --------------------------------------------------------------------------


def of(commands: Iterable[Command], cls: type[C]) -> list[C]:
    return [c for c in commands if isinstance(c, cls)]


def one(commands: Iterable[Command], cls: type[C]) -> C:
    found = of(commands, cls)
    assert len(found) == 1, f"expected exactly one {cls.__name__} in {list(commands)}"
    return found[0]


def kinds(commands: Iterable[Command]) -> list[str]:
    return [type(c).__name__ for c in commands]


def ids0(commands: Iterable[Command]) -> list[Command]:
    """The commands with ``command_id`` zeroed, to compare with literal expectations."""
    return [attrs.evolve(c, command_id=0) for c in commands]


def without_wake(commands: Iterable[Command]) -> list[Command]:
    return [c for c in commands if not isinstance(c, WakeAt)]


# --- stepping -------------------------------------------------------------------------------


class Run:
    """The state of one run plus every command emitted so far."""

    def __init__(self, state: SwarmState | None = None) -> None:
        self.state = state if state is not None else initial_state()
        self.history: list[Command] = []
        self.events: list[Event] = []

    def feed(self, event: Event) -> list[Command]:
        self.events.append(event)
        decision = decide(self.state, event)
        self.state = decision.state
        self.history.extend(decision.commands)
        return list(decision.commands)

    @property
    def timing(self) -> Any:
        return self.state.timing


def start(
    spec: TopologySpec,
    cfg: SwarmConfig | None = None,
    *,
    at: float = 0.0,
    run_status: str = "B",
    server_time: str | None = "T0",
) -> tuple[Run, list[Command]]:
    run = Run()
    commands = run.feed(
        RunStarted(at, WF_ID, WFR_ID, spec, cfg or config(), run_status=run_status, server_time=server_time)
    )
    return run, commands


def queue_initial(run: Run, commands: Sequence[Command], at: float, resources_id: int = 100) -> list[Command]:
    """Bind the resources and answer every batch with Q; return the last step's commands."""
    out: list[Command] = []
    for bind in of(commands, BindResources):
        out = run.feed(ResourcesBound(bind.command_id, at, resources_id))
        for batch in of(out, QueueBatch):
            out = run.feed(BatchQueued(batch.command_id, at, {"Q": batch.task_ids}))
    return out


def running(
    spec: TopologySpec, cfg: SwarmConfig | None = None, *, at: float = 0.0, server_time: str | None = "T0"
) -> Run:
    """A run started in R (no start update) whose first batches are answered Q."""
    run, commands = start(spec, cfg, at=at, run_status="R", server_time=server_time)
    queue_initial(run, commands, at)
    return run


def answer_sync(
    run: Run,
    commands: Sequence[Command],
    at: float,
    statuses: Mapping[str, Sequence[int]] | None = None,
    *,
    server_time: str | None = None,
    workflow_limit: int = UNLIMITED,
    array_limit: int = UNLIMITED,
) -> list[Command]:
    """Answer the sync parts among ``commands``: triage and limits first, statuses last.

    Returns every command emitted while answering (the last answer completes the sync).
    """
    out: list[Command] = []
    for c in of(commands, RequestTriage):
        out += run.feed(TriageRequested(c.command_id, at))
    for c in of(commands, FetchWorkflowLimit):
        out += run.feed(WorkflowLimitFetched(c.command_id, at, workflow_limit))
    for c in of(commands, FetchArrayLimit):
        out += run.feed(ArrayLimitFetched(c.command_id, at, c.array_id, array_limit))
    for c in of(commands, FetchTaskStatuses):
        out += run.feed(TaskStatusesFetched(c.command_id, at, dict(statuses or {}), server_time))
    return out


def tick(
    run: Run,
    at: float,
    statuses: Mapping[str, Sequence[int]] | None = None,
    *,
    heartbeat: str = "R",
    server_time: str | None = None,
) -> tuple[list[Command], list[Command]]:
    """Fire the timer at ``at``, answer its heartbeat with ``heartbeat``, then the sync.

    Returns the timer's commands and the commands emitted by the answers.
    """
    timer = run.feed(TimerFired(at))
    out: list[Command] = []
    for hb in of(timer, LogHeartbeat):
        out += run.feed(HeartbeatAcknowledged(hb.command_id, at, heartbeat))
    out += answer_sync(run, timer, at, statuses, server_time=server_time)
    return timer, out


def sync_commands(since: str | None, first_id: int, arrays: Sequence[int] = (1,)) -> list[Command]:
    """The exact commands of one sync whose first command id is ``first_id``."""
    commands: list[Command] = [
        RequestTriage(first_id, WFR_ID),
        FetchTaskStatuses(first_id + 1, WF_ID, since),
        FetchWorkflowLimit(first_id + 2, WF_ID),
    ]
    commands += [FetchArrayLimit(first_id + 3 + k, a) for k, a in enumerate(arrays)]
    return commands


def comparable(state: SwarmState) -> tuple[Any, ...]:
    """The state as a value: ``Topology`` compares by identity, so compare its fields."""
    topo = state.topology
    topo_fields = None if topo is None else attrs.astuple(topo, recurse=False)
    return (attrs.evolve(state, topology=None), topo_fields)


# --- a scripted server on a virtual clock -------------------------------------------------


@attrs.define
class Script:
    """Answers every server command at the current virtual time.

    ``run_status``: what heartbeats and status updates answer (``None`` for an update means
    "accept the requested status"). ``heartbeat_fails``: heartbeats answer HeartbeatFailed.
    ``reports``: the ``tasks_by_status`` of successive status fetches (then empty ones).
    """

    run_status: str = "R"
    accept_updates: bool = True
    heartbeat_fails: bool = False
    reports: deque[dict[str, tuple[int, ...]]] = attrs.field(factory=deque, converter=deque)
    calls: dict[str, int] = attrs.field(factory=dict)

    def answer(self, command: Command, at: float) -> Event | None:
        name = type(command).__name__
        self.calls[name] = self.calls.get(name, 0) + 1
        cid = command.command_id
        if isinstance(command, LogHeartbeat):
            if self.heartbeat_fails:
                return HeartbeatFailed(cid, at, "503")
            return HeartbeatAcknowledged(cid, at, self.run_status)
        if isinstance(command, UpdateWorkflowRunStatus):
            if self.accept_updates:
                self.run_status = command.status
            return StatusUpdateAcknowledged(cid, at, self.run_status)
        if isinstance(command, BindResources):
            return ResourcesBound(cid, at, 100)
        if isinstance(command, QueueBatch):
            return BatchQueued(cid, at, {"Q": command.task_ids})
        if isinstance(command, RequestTriage):
            return TriageRequested(cid, at)
        if isinstance(command, FetchTaskStatuses):
            report = self.reports.popleft() if self.reports else {}
            return TaskStatusesFetched(cid, at, report, f"S{self.calls[name]}")
        if isinstance(command, FetchWorkflowLimit):
            return WorkflowLimitFetched(cid, at, UNLIMITED)
        if isinstance(command, FetchArrayLimit):
            return ArrayLimitFetched(cid, at, command.array_id, UNLIMITED)
        if isinstance(command, TerminateTaskInstances):
            return TerminateAcknowledged(cid, at, 0)
        return None


def drive(
    run: Run,
    commands: Sequence[Command],
    answer: Callable[[Command, float], Event | None],
    *,
    now: float,
    until: float,
) -> list[tuple[float, Command]]:
    """Answer commands at once; when nothing is pending, jump the clock to the last WakeAt.

    Stops at Finish/Fail, or when the next wake-up is after ``until``. Returns every
    command with the virtual time it was emitted at.
    """
    emitted: list[tuple[float, Command]] = [(now, c) for c in commands]
    events: deque[Event] = deque()
    wake: float | None = None

    def take(cs: Sequence[Command]) -> bool:
        nonlocal wake
        for c in cs:
            if isinstance(c, Finish | Fail):
                return True
            if isinstance(c, WakeAt):
                wake = c.at
            elif not isinstance(c, NoteAnomaly):
                ev = answer(c, now)
                if ev is not None:
                    events.append(ev)
        return False

    finished = take(commands)
    steps = 0
    while not finished:
        steps += 1
        assert steps < 100_000, "drive did not converge"
        if events:
            cs = run.feed(events.popleft())
        else:
            if wake is None or wake > until:
                break
            now, wake = wake, None
            cs = run.feed(TimerFired(now))
        emitted += [(now, c) for c in cs]
        finished = take(cs)
    return emitted


__all__ = [
    "QUEUE",
    "REQUESTED",
    "WFR_ID",
    "WF_ID",
    "Run",
    "Script",
    "answer_sync",
    "comparable",
    "config",
    "drive",
    "ids0",
    "kinds",
    "of",
    "one",
    "queue_initial",
    "running",
    "start",
    "sync_commands",
    "task",
    "tick",
    "topology",
    "without_wake",
]
