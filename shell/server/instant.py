"""An instant, in-process fake Jobmon server and a virtual-clock driver loop.

``InstantServer`` answers every server command at once, with no I/O. Its task progress model
is the benchmark's reference workload: each task-status fetch completes the
``completions_per_sync`` oldest in-flight tasks (FIFO; they become ``D``) and reports the tasks
queued since the previous fetch as ``R``. Every task succeeds on its first attempt.

``drive`` runs one workflow run through the pure core on a virtual clock: it feeds
``RunStarted`` at ``t=0``, carries out the commands in order, answers server commands at the
current virtual time, and when no event is pending jumps the clock to the latest ``WakeAt``.
Nothing fed to the core depends on the wall clock or on random numbers, so a drive is
deterministic; ``time.perf_counter`` only measures where the time goes.
"""

from __future__ import annotations

import datetime as _dt
import importlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import Any

from attrs import define, field

from swarmfold.core.commands import (
    BindResources,
    Command,
    EvaluateResources,
    Fail,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    Finish,
    LoadEdgeChunk,
    LoadTaskChunk,
    LogHeartbeat,
    NoteAnomaly,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.config import UNLIMITED, SwarmConfig
from swarmfold.core.decide import decide
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    Event,
    HeartbeatAcknowledged,
    ResourceEvaluationFailed,
    ResourcesBound,
    ResourcesEvaluated,
    RunStarted,
    StatusUpdateAcknowledged,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TimerFired,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.state import SwarmState, initial_state
from swarmfold.core.summary import RunSummary
from swarmfold.core.topology import TopologySpec
from swarmfold.shell.server.fsm import ACCEPTED, run_transition

#: Virtual ``t=0`` on the fake server's clock.
EPOCH = _dt.datetime(2026, 1, 1)
#: The server time string of ``t=0``.
EPOCH_STRING = "2026-01-01 00:00:00"

_QUEUEABLE = frozenset("GA")
_IN_FLIGHT = frozenset("QIOR")


def server_time(at: float) -> str:
    """The server's ``"YYYY-MM-DD HH:MM:SS"`` time at virtual time ``at`` (1 s resolution)."""
    return (EPOCH + _dt.timedelta(seconds=int(at))).strftime("%Y-%m-%d %H:%M:%S")


class DriveError(RuntimeError):
    """The driver cannot go on: the core asked for something the instant shell cannot do,
    or it stalled (no pending event and no ``WakeAt``)."""


class InstantServer:
    """An in-memory Jobmon server that answers at once.

    Its run starts LAUNCHED (``O``), as a real run is once its distributor has started
    (``B -> I -> O``); run-status requests follow the run FSM of ``shell/server/fsm.py``.

    ``statuses`` maps task id to its server-side status. ``calls`` counts the commands
    handled, by command class name.
    """

    def __init__(
        self,
        statuses: Mapping[int, str],
        *,
        workflow_limit: int = UNLIMITED,
        array_limits: Mapping[int, int] | None = None,
        run_status: str = "O",
        completions_per_sync: int = 1000,
    ) -> None:
        self.statuses: dict[int, str] = dict(statuses)
        self.workflow_limit = workflow_limit
        self.array_limits: dict[int, int] = dict(array_limits or {})
        self.run_status = run_status
        self.completions_per_sync = completions_per_sync
        self.calls: dict[str, int] = {}
        #: In-flight tasks, oldest first (queued, not yet done).
        self.in_flight: deque[int] = deque()
        #: Tasks queued since the previous status fetch, in queue order.
        self.queued_since_sync: list[int] = []
        #: Tasks whose status changed since the previous status fetch (an ordered set).
        self.changed: dict[int, None] = {}
        self._next_resources_id = 1

    @classmethod
    def from_topology(cls, spec: TopologySpec, **kwargs: Any) -> InstantServer:
        """A server holding ``spec``'s tasks at their initial statuses and its limits."""
        kwargs.setdefault("workflow_limit", spec.workflow_limit)
        kwargs.setdefault("array_limits", {a.array_id: a.limit for a in spec.arrays})
        statuses = {t.task_id: t.status for t in spec.tasks}
        table = spec.task_table
        if table is not None:
            statuses.update(zip(table.task_ids, table.statuses or "G" * len(table), strict=True))
        return cls(statuses, **kwargs)

    # --- the server operations ---------------------------------------------------------

    def queue_task_batch(self, task_ids: Iterable[int]) -> dict[str, list[int]]:
        """Move the ``G``/``A`` tasks among ``task_ids`` to ``Q``; answer the current status
        of every requested (known) id."""
        statuses = self.statuses
        answer: dict[str, list[int]] = {}
        for tid in task_ids:
            status = statuses.get(tid)
            if status is None:
                continue
            if status in _QUEUEABLE:
                status = statuses[tid] = "Q"
                self.in_flight.append(tid)
                self.queued_since_sync.append(tid)
                self.changed[tid] = None
            bucket = answer.get(status)
            if bucket is None:
                answer[status] = [tid]
            else:
                bucket.append(tid)
        return answer

    def transition_run(self, status: str) -> str:
        """Try to move the workflow run to ``status``; return the status held afterwards."""
        if run_transition(self.run_status, status) == ACCEPTED:
            self.run_status = status
        return self.run_status

    def bind_resources(self) -> int:
        """A fresh TaskResources id."""
        rid = self._next_resources_id
        self._next_resources_id += 1
        return rid

    def task_status_updates(self, full: bool) -> dict[str, list[int]]:
        """One sync: advance the progress model, then report changed (or, if ``full``, all)
        tasks by status."""
        statuses = self.statuses
        changed = self.changed
        for tid in self.queued_since_sync:
            if statuses[tid] == "Q":
                statuses[tid] = "R"
        self.queued_since_sync = []
        in_flight = self.in_flight
        done = 0
        while in_flight and done < self.completions_per_sync:
            tid = in_flight.popleft()
            if statuses[tid] in _IN_FLIGHT:
                statuses[tid] = "D"
                changed[tid] = None
                done += 1
        source: Iterable[int] = statuses if full else changed
        answer: dict[str, list[int]] = {}
        for tid in source:
            status = statuses[tid]
            bucket = answer.get(status)
            if bucket is None:
                answer[status] = [tid]
            else:
                bucket.append(tid)
        self.changed = {}
        return answer

    def set_task_status(self, task_id: int, status: str) -> None:
        """Test hook: force a task's status (seen by the next fetch)."""
        self.statuses[task_id] = status
        self.changed[task_id] = None

    # --- command dispatch ----------------------------------------------------------------

    def handle(self, command: Command, at: float) -> Event:
        """Answer one server command with its event, at virtual time ``at``."""
        name = type(command).__name__
        self.calls[name] = self.calls.get(name, 0) + 1
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise DriveError(f"the instant server does not serve {name}")
        return handler(self, command, at)


def _queue(server: InstantServer, c: QueueBatch, at: float) -> Event:
    return BatchQueued(c.command_id, at, server.queue_task_batch(c.task_ids))


def _bind(server: InstantServer, c: BindResources, at: float) -> Event:
    return ResourcesBound(c.command_id, at, server.bind_resources())


def _heartbeat(server: InstantServer, c: LogHeartbeat, at: float) -> Event:
    return HeartbeatAcknowledged(c.command_id, at, server.transition_run(c.status))


def _update(server: InstantServer, c: UpdateWorkflowRunStatus, at: float) -> Event:
    return StatusUpdateAcknowledged(c.command_id, at, server.transition_run(c.status))


def _triage(server: InstantServer, c: RequestTriage, at: float) -> Event:
    return TriageRequested(c.command_id, at)


def _fetch(server: InstantServer, c: FetchTaskStatuses, at: float) -> Event:
    answer = server.task_status_updates(full=c.since is None)
    return TaskStatusesFetched(c.command_id, at, answer, server_time(at))


def _wf_limit(server: InstantServer, c: FetchWorkflowLimit, at: float) -> Event:
    return WorkflowLimitFetched(c.command_id, at, server.workflow_limit)


def _array_limit(server: InstantServer, c: FetchArrayLimit, at: float) -> Event:
    limit = server.array_limits.get(c.array_id, UNLIMITED)
    return ArrayLimitFetched(c.command_id, at, c.array_id, limit)


def _terminate(server: InstantServer, c: TerminateTaskInstances, at: float) -> Event:
    return TerminateAcknowledged(c.command_id, at, 0)


_HANDLERS: dict[type, Callable[[InstantServer, Any, float], Event]] = {
    QueueBatch: _queue,
    BindResources: _bind,
    LogHeartbeat: _heartbeat,
    UpdateWorkflowRunStatus: _update,
    RequestTriage: _triage,
    FetchTaskStatuses: _fetch,
    FetchWorkflowLimit: _wf_limit,
    FetchArrayLimit: _array_limit,
    TerminateTaskInstances: _terminate,
}


# --- user callables ------------------------------------------------------------------------


def resolve_callable(name: str, registry: Mapping[str, Callable[..., Any]] | None) -> Callable[..., Any]:
    """Find a user callable: in ``registry`` first, else import ``"package.module:attr"``."""
    if registry is not None and name in registry:
        return registry[name]
    module, sep, attr = name.partition(":")
    if not sep:
        raise LookupError(f"unknown callable {name!r} (not registered; not 'module:attr')")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{name!r} is not callable")
    return obj  # type: ignore[no-any-return]


def evaluate_resources(
    command: EvaluateResources, at: float, registry: Mapping[str, Callable[..., Any]] | None
) -> Event:
    """Run the callables of an ``EvaluateResources`` command; failures become an event."""
    try:
        if command.purpose == "compute_resources":
            result = resolve_callable(command.callables[0][1], registry)()
            if not isinstance(result, dict):
                raise TypeError(f"{command.callables[0][1]!r} returned {type(result).__name__}, not dict")
            values = {str(k): v for k, v in result.items()}
        else:
            current = dict(command.requested)
            values = {
                resource: resolve_callable(fn, registry)(current[resource])
                for resource, fn in command.callables
            }
    except Exception as exc:  # a user callable may raise anything
        return ResourceEvaluationFailed(command.command_id, at, f"{type(exc).__name__}: {exc}")
    return ResourcesEvaluated(command.command_id, at, values)


# --- the driver ----------------------------------------------------------------------------


@define
class DriveResult:
    """What one drive produced. ``outcome`` is the ``Finish``/``Fail`` command, or ``None``
    when ``max_events`` stopped the drive first."""

    outcome: Finish | Fail | None
    state: SwarmState
    events: int
    commands: int
    decide_seconds: float
    server_seconds: float
    virtual_seconds: float
    anomalies: list[NoteAnomaly] = field(factory=list)

    @property
    def summary(self) -> RunSummary | None:
        return None if self.outcome is None else self.outcome.summary

    @property
    def final_status(self) -> str | None:
        return None if self.outcome is None else self.outcome.summary.final_status


_TERMINAL = (Finish, Fail)


def drive(
    topology_spec: TopologySpec,
    config: SwarmConfig | None = None,
    *,
    server: InstantServer | None = None,
    max_events: int | None = None,
    record: list[tuple[Event, tuple[Command, ...]]] | None = None,
    workflow_id: int = 1,
    workflow_run_id: int = 1,
    callables: Mapping[str, Callable[..., Any]] | None = None,
) -> DriveResult:
    """Run one workflow run through the core against ``server`` on a virtual clock.

    ``record``, when given, receives one ``(event, commands)`` pair per ``decide`` call.
    ``callables`` resolves the names in ``EvaluateResources`` commands.
    """
    if server is None:
        server = InstantServer.from_topology(topology_spec)
    if config is None:
        config = SwarmConfig()
    handle = server.handle
    handlers = _HANDLERS
    now = 0.0
    pending: deque[Event] = deque()
    pending.append(
        RunStarted(
            at=now,
            workflow_id=workflow_id,
            workflow_run_id=workflow_run_id,
            topology=topology_spec,
            config=config,
            run_status=server.run_status,
            server_time=server_time(now),
        )
    )
    wake: WakeAt | None = None
    outcome: Finish | Fail | None = None
    anomalies: list[NoteAnomaly] = []
    n_events = n_commands = 0
    decide_s = server_s = 0.0

    t0 = perf_counter()
    state = initial_state()
    decide_s += perf_counter() - t0

    while outcome is None:
        if max_events is not None and n_events >= max_events:
            break
        if not pending:
            if wake is None:
                raise DriveError(f"stalled at t={now}: no pending event and no WakeAt")
            now = max(now, wake.at)
            pending.append(TimerFired(now, wake.command_id))
            wake = None
        event = pending.popleft()
        t0 = perf_counter()
        decision = decide(state, event)
        decide_s += perf_counter() - t0
        state = decision.state
        commands = decision.commands
        n_events += 1
        n_commands += len(commands)
        if record is not None:
            record.append((event, commands))
        for command in commands:
            if type(command) in handlers:
                t0 = perf_counter()
                answer = handle(command, now)
                server_s += perf_counter() - t0
                pending.append(answer)
            elif isinstance(command, WakeAt):
                wake = command
            elif isinstance(command, NoteAnomaly):
                anomalies.append(command)
            elif isinstance(command, _TERMINAL):
                outcome = command
                break
            elif isinstance(command, EvaluateResources):
                pending.append(evaluate_resources(command, now, callables))
            elif isinstance(command, (LoadTaskChunk, LoadEdgeChunk)):
                raise DriveError(f"the instant driver starts runs with RunStarted; got {command!r}")
            else:
                raise DriveError(f"unknown command {command!r}")

    return DriveResult(
        outcome=outcome,
        state=state,
        events=n_events,
        commands=n_commands,
        decide_seconds=decide_s,
        server_seconds=server_s,
        virtual_seconds=now,
        anomalies=anomalies,
    )
