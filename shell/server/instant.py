"""The instant server of ``fold`` and the benchmark, and its virtual-clock drive loop.

``InstantServer`` is the one server model (``ServerModel``) under an instant-completion
driver: nothing happens between requests, and each task-status fetch first launches and runs
what was queued since the previous one, then finishes the ``completions_per_sync`` oldest
running instances (the benchmark's reference workload). Answers come from
``shell/server/in_process.py``, as the simulator's do.

``drive`` runs one workflow run through the pure core on a virtual clock: it feeds
``RunStarted`` at ``t=0``, carries out the commands in order, answers server commands at the
current virtual time, and when no event is pending jumps the clock to the latest ``WakeAt``.
Nothing fed to the core depends on the wall clock or on random numbers, so a drive is
deterministic; ``time.perf_counter`` only measures where the time goes.
"""

from __future__ import annotations

import importlib
from collections import deque
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any

from attrs import define, field

from swarmfold.core.commands import (
    Command,
    EvaluateResources,
    Fail,
    FetchTaskStatuses,
    Finish,
    LoadEdgeChunk,
    LoadTaskChunk,
    NoteAnomaly,
    WakeAt,
)
from swarmfold.core.config import SwarmConfig
from swarmfold.core.decide import decide
from swarmfold.core.events import (
    Event,
    ResourceEvaluationFailed,
    ResourcesEvaluated,
    RunStarted,
    TaskStatusesFetched,
    TimerFired,
)
from swarmfold.core.state import SwarmState, initial_state
from swarmfold.core.summary import RunSummary
from swarmfold.core.topology import Topology, TopologySpec, build_topology
from swarmfold.shell.server.in_process import ANSWERED_IN_PROCESS, UnservedCommand, answer_command
from swarmfold.shell.server.model import ServerModel, server_time


class DriveError(RuntimeError):
    """The driver cannot go on: the core asked for something the instant shell cannot do,
    or it stalled (no pending event and no ``WakeAt``)."""


class InstantServer:
    """The one server model (``ServerModel``) under the instant-completion driver.

    Nothing happens between requests: the cluster moves only when the swarm fetches task
    statuses. Then, before the server answers, the distributor launches every instance queued
    since the previous fetch and each starts running (``Q -> I -> O -> R``), and the
    ``completions_per_sync`` oldest running instances finish (``R -> D``), oldest first. Every
    task succeeds on its first attempt; every other answer is the model's own.

    The real server answers an incremental sync with every change of the second it is asked
    from, so changes of that second come twice. With ``repeat_last_second=False`` (the default,
    the benchmark's reference workload, on which Jobmon's swarm was measured too) the driver
    passes each change on once: an incremental answer leaves out the entries the swarm was
    already told. With ``True`` the swarm gets the model's answers as they are.

    The model is built from the core's topology when the drive starts (``start``), so the
    drive shares the topology with the core; ``for_topology`` builds one for a spec up front.
    ``calls`` counts the commands handled, by command class name.
    """

    def __init__(
        self, *, run_status: str = "O", completions_per_sync: int = 1000, repeat_last_second: bool = False
    ) -> None:
        self.run_status_at_start = run_status
        self.completions_per_sync = completions_per_sync
        self.repeat_last_second = repeat_last_second
        #: Per task index: the status letter the swarm was last told (0: none yet).
        self._told = bytearray()
        self.model: ServerModel | None = None
        self.calls: dict[str, int] = {}
        #: Running instances, oldest launch first (the next to finish).
        self.running: deque[int] = deque()

    @classmethod
    def for_topology(cls, spec: TopologySpec, **kwargs: Any) -> InstantServer:
        """A started server holding ``spec``'s tasks at their initial statuses and its limits."""
        server = cls(**kwargs)
        server.start(build_topology(spec))
        return server

    def start(self, topology: Topology) -> ServerModel:
        """Build the model of ``topology`` (once; later calls return the same model)."""
        if self.model is None:
            self.model = ServerModel(topology, run_status=self.run_status_at_start)
            self._told = bytearray(len(self.model.status))
        return self.model

    @property
    def run_status(self) -> str:
        return self.run_status_at_start if self.model is None else self.model.run_status

    @property
    def statuses(self) -> Mapping[int, str]:
        """Task id -> the server's status (empty before ``start``)."""
        return {} if self.model is None else self.model.statuses_by_task()

    def progress(self, now: float) -> None:
        """The cluster's move before a status fetch: launch and run what was queued, then
        finish the oldest running instances."""
        model = self._model()
        running = self.running
        for ti in model.instantiate_and_launch(now):
            if model.log_running(ti, now):
                running.append(ti)
        ti_status = model.ti_status
        done = 0
        while running and done < self.completions_per_sync:
            ti = running.popleft()
            if ti_status[ti] == "R":
                model.log_done(ti, now)
                done += 1

    def handle(self, command: Command, at: float) -> Event:
        """Answer one server command with its event, at virtual time ``at``."""
        name = type(command).__name__
        self.calls[name] = self.calls.get(name, 0) + 1
        fetch = command if isinstance(command, FetchTaskStatuses) else None
        if fetch is not None:
            self.progress(at)
        try:
            event = answer_command(self._model(), command, at)
        except UnservedCommand as exc:
            raise DriveError(f"the instant server does not serve {name}") from exc
        if fetch is None or self.repeat_last_second:
            return event
        assert isinstance(event, TaskStatusesFetched)
        return self._once(event, full=fetch.since is None)

    def _once(self, event: TaskStatusesFetched, full: bool) -> TaskStatusesFetched:
        """``event`` less the entries the swarm was already told (a full answer is whole)."""
        model = self._model()
        told = self._told
        if full:
            told[:] = "".join(model.status).encode("ascii")
            return event
        kept: dict[str, list[int]] = {}
        for code, task_ids in event.tasks_by_status.items():
            letter = ord(code)
            fresh = []
            for task_id, i in zip(task_ids, model.indexes_of(task_ids), strict=True):
                if told[i] != letter:
                    told[i] = letter
                    fresh.append(task_id)
            if fresh:
                kept[code] = fresh
        return TaskStatusesFetched(event.command_id, event.at, kept, event.server_time)

    def _model(self) -> ServerModel:
        if self.model is None:
            raise DriveError("the instant server has no workflow yet: call start(topology) first")
        return self.model


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


def _add_seconds(
    seconds_by_event: dict[str, list[float]], event: Event, full_sync_ids: set[int], seconds: float
) -> None:
    """Count one ``decide`` call of ``event``'s kind (``drive``'s ``seconds_by_event``)."""
    kind = type(event).__name__
    if type(event) is TaskStatusesFetched and event.command_id in full_sync_ids:
        kind += " (full)"
    calls_and_seconds = seconds_by_event.setdefault(kind, [0, 0.0])
    calls_and_seconds[0] += 1
    calls_and_seconds[1] += seconds


def _is_full_sync(command: Command) -> bool:
    return type(command) is FetchTaskStatuses and command.since is None


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
    seconds_by_event: dict[str, list[float]] | None = None,
) -> DriveResult:
    """Run one workflow run through the core against ``server`` on a virtual clock.

    ``record``, when given, receives one ``(event, commands)`` pair per ``decide`` call.
    ``callables`` resolves the names in ``EvaluateResources`` commands.
    ``seconds_by_event``, when given, receives ``[calls, seconds in decide]`` per event kind
    (the event's class name; a full sync's answer is ``TaskStatusesFetched (full)``).
    """
    if server is None:
        server = InstantServer()
    if config is None:
        config = SwarmConfig()
    handle = server.handle
    handlers = ANSWERED_IN_PROCESS
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

    full_sync_ids: set[int] = set()  # command ids of full syncs (``seconds_by_event``)

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
        seconds = perf_counter() - t0
        decide_s += seconds
        if seconds_by_event is not None:
            _add_seconds(seconds_by_event, event, full_sync_ids, seconds)
        state = decision.state
        if server.model is None and state.topology is not None:
            server.start(state.topology)
        commands = decision.commands
        n_events += 1
        n_commands += len(commands)
        if record is not None:
            record.append((event, commands))
        for command in commands:
            if type(command) in handlers:
                if seconds_by_event is not None and _is_full_sync(command):
                    full_sync_ids.add(command.command_id)
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
