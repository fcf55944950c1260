"""The simulation driver: the production ``decide`` on a virtual clock (deterministic simulation).

A heap of ``(t, prio, seq, kind, payload)`` holds everything that will happen: answers to the
swarm's requests, its wake-up, worker starts and ends, distributor polls, reaper passes,
limit changes and resume signals, timeline samples. The clock jumps to the next entry
(simpy-style); ``prio`` orders what happens at the same instant (signals, then workers, the
distributor, the reaper, then answers to the swarm, then its timer), ``seq`` breaks the
remaining ties in insertion order.

Commands are carried out against the :class:`ServerModel`: a request sent at ``t`` with a
latency ``L`` drawn from its route's model is processed by the server at ``t + L`` and answered
by an event with ``at = t + L``. Only the latest ``WakeAt`` counts. Every random number comes
from one ``random.Random(seed)``, split into sub-streams (latency, work, faults, and for the
newer fault kinds world, reports, heartbeats) so that, for example, latency draws never shift
task durations. No wall clock is read: a ``(scenario, seed)`` pair gives byte-identical event
logs and reports.

Faults (``scenario.faults``, see :mod:`.faults` for the seeded draw of a whole profile) are
injected here: request failures, lost answers, timeouts (the server does the work, the client
gives up after ``request_timeout``), latency spikes, late and duplicated status answers,
heartbeat failures, random limit changes and resume signals, the distributor's death. A
request whose answer is split from its work (timeouts, late answers) is carried out by a
``serve`` item and answered by a later ``fail``/``deliver`` item.
"""

from __future__ import annotations

import gc
import random
from collections import deque
from collections.abc import Mapping, Sequence
from heapq import heappop, heappush
from pathlib import Path
from time import perf_counter
from typing import Any

from swarmfold.core.commands import (
    Command,
    EvaluateResources,
    Fail,
    Finish,
    LoadEdgeChunk,
    LoadTaskChunk,
    NoteAnomaly,
    WakeAt,
)
from swarmfold.core.config import UNLIMITED
from swarmfold.core.decide import decide
from swarmfold.core.events import (
    DistributorDied,
    Event,
    RunStarted,
    TimerFired,
)
from swarmfold.core.protocol import SERVER_COMMANDS
from swarmfold.core.state import SwarmState, initial_state
from swarmfold.shell.http.routes import COMMAND_ROUTES
from swarmfold.shell.server.in_process import ANSWERED_IN_PROCESS
from swarmfold.shell.server.model import server_time
from swarmfold.shell.sim.cluster import Distributor, WorkModel
from swarmfold.shell.sim.faults import explain_end
from swarmfold.shell.sim.invariants import InvariantChecker, Violation
from swarmfold.shell.sim.report import (
    timeline_columns,
    timeline_row,
    write_timeline,
)
from swarmfold.shell.sim.request_flow import (
    ANSWER,
    DELIVER,
    FAIL,
    SERVE,
    RequestFlow,
    SimulationError,
)
from swarmfold.shell.sim.scenario import (
    LimitChange,
    ResumeSignal,
    RouteLatency,
    Scenario,
    with_limits,
)
from swarmfold.shell.sim.sim_report import RecordingDistributor, SimResult, build_report, record_line
from swarmfold.shell.sim.world import (
    PRIO_SIGNAL,
    PRIO_WORKER,
    WorldLoop,
    schedule_scripted_world,
    server_for,
)

__all__ = ["ROUTE_OF", "SimResult", "SimulationError", "simulate"]

# Priorities at one instant (lower first), after those of the world (shell/sim/world.py) and
# the answers (shell/sim/request_flow.py).
PRIO_WAKE = 5
PRIO_SAMPLE = 6

# Heap item kinds the driver owns (the cluster's are START, END, LOST).
WAKE = "wake"
SAMPLE = "sample"
RANDOM_LIMIT = "random_limit"
RANDOM_RESUME = "random_resume"

#: How many earlier status answers a duplicated report may draw from.
_REPORT_HISTORY = 8

#: The route each server command calls (spec §11), by name: the scenario's latencies are per route.
ROUTE_OF: Mapping[type, str] = {
    c: COMMAND_ROUTES[c].route.name for c in SERVER_COMMANDS if c in ANSWERED_IN_PROCESS
}

#: ``Finish`` reasons that are not a normal end (no lost-task check after them).
_ABORT_PREFIXES = ("fail_fast", "transition_error", "resource_callable_failed", "the server set")

#: The virtual time after which a simulation that has not ended is an error.
_HORIZON_SLACK = 86_400.0


def _sub_streams(seed: int) -> dict[str, random.Random]:
    """Independent, deterministic sub-streams of one ``random.Random(seed)``."""
    root = random.Random(seed)
    names = ("latency", "work", "faults", "world", "reports", "heartbeats")
    return {name: random.Random(root.getrandbits(64)) for name in names}


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    *,
    workflow_limit: int | None = None,
    array_limits: Mapping[int, int] | None = None,
    log_path: str | Path | None = None,
    timeline_path: str | Path | None = None,
    timeline_interval: float | None = None,
    check_invariants: bool = True,
    max_decides: int | None = None,
    profile: bool = False,
    record_spans: bool = False,
    deep_checks: bool = False,
) -> SimResult:
    """Simulate one workflow run of ``scenario`` and report on it.

    ``seed`` defaults to the scenario's; ``workflow_limit``/``array_limits`` override the
    scenario's limits; ``log_path`` records the event log (the shell's format, source
    ``simulate``); ``timeline_path`` writes the timeline CSV, sampled every
    ``timeline_interval`` seconds (default: the heartbeat interval). ``profile=True``
    measures the time spent in ``decide`` (``SimResult.decide_seconds``; never in the report).
    ``record_spans=True`` keeps every task instance's queue, start and end times (for plots).
    ``deep_checks=True`` also runs the core's own invariants (``check_state``,
    ``check_commands``) after every ``decide``: O(tasks) each, so for small scenarios only.
    """
    if workflow_limit is not None or array_limits:
        scenario = with_limits(scenario, workflow_limit, array_limits)
    seed = scenario.seed if seed is None else seed
    sim = _Simulation(
        scenario, seed, timeline_interval, check_invariants, max_decides, profile, record_spans, deep_checks
    )
    writer = None
    if log_path is not None:
        from swarmfold.shell.log.eventlog import EventLogWriter, new_header

        header = new_header(
            "simulate",
            scenario.workflow_id,
            scenario.workflow_run_id,
            scenario.config,
            runner_id=f"sim-{seed}",
            extra={"scenario": scenario.source or scenario.name, "seed": seed},
            created_at=server_time(0.0).replace(" ", "T") + "+00:00",
        )
        writer = EventLogWriter(log_path, header)
    # The run allocates millions of short-lived objects and makes no reference cycles worth
    # collecting; the cyclic GC would rescan the whole (large) heap again and again. Pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        result = sim.run(writer)
    finally:
        if gc_was_enabled:
            gc.enable()
        if writer is not None:
            writer.close()
    if timeline_path is not None:
        write_timeline(timeline_path, result.timeline_columns, result.timeline)
    return result


class _Simulation(WorldLoop, RequestFlow):
    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        timeline_interval: float | None,
        check_invariants: bool,
        max_decides: int | None,
        profile: bool = False,
        record_spans: bool = False,
        deep_checks: bool = False,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.config = scenario.config
        self.streams = _sub_streams(seed)
        self.timeline_interval = timeline_interval or scenario.config.heartbeat_interval
        self.check_invariants = check_invariants
        self.max_decides = max_decides
        self.profile = profile
        self.decide_seconds = 0.0
        self.heap: list[tuple[float, int, int, str, Any]] = []
        self.seq = 0
        self.now = 0.0
        self.state = initial_state()
        self.outcome: Finish | Fail | None = None
        self.wake_token = 0
        self.live_wake: int | None = None
        self.answers_pending = 0
        self.decides = 0
        self.commands = 0
        self.requests: dict[str, int] = {}
        self.failed_requests = 0
        self.full_syncs = 0
        self.anomalies: list[NoteAnomaly] = []
        self.timeline: list[tuple[Any, ...]] = []
        self.writer: Any = None
        faults = scenario.faults
        self.faults = faults
        self.fault_routes = None if faults.routes is None else frozenset(faults.routes)
        self.request_faults = faults.any_request_faults
        self.request_timeout = faults.request_timeout
        self.record_spans = record_spans
        self.deep_checks = deep_checks
        #: Injected faults by kind (for the report).
        self.injected: dict[str, int] = {}
        self.world_events: list[tuple[float, str, str]] = []
        self.report_history: deque[Mapping[str, Sequence[int]]] = deque(maxlen=_REPORT_HISTORY)
        #: The record being carried out, and the records that issued batches still on their way.
        self.current: tuple[Event, tuple[Command, ...]] | None = None
        self.issuers: dict[int, tuple[int, Event, tuple[Command, ...]]] = {}
        self.first_bad: str | None = None
        self.duplicated = False
        self.end_kind = ""
        self.end_detail = ""
        lat = scenario.latency
        self.latency_of: dict[str, RouteLatency] = {r: lat.of(r) for r in ROUTE_OF.values()}

    # --- the heap --------------------------------------------------------------------------------

    def push(self, t: float, prio: int, kind: str, payload: Any) -> None:
        self.seq += 1
        heappush(self.heap, (t, prio, self.seq, kind, payload))

    # --- the run ---------------------------------------------------------------------------------

    def run(self, writer: Any) -> SimResult:
        scenario = self.scenario
        config = self.config
        self.writer = writer
        started = RunStarted(
            at=0.0,
            workflow_id=scenario.workflow_id,
            workflow_run_id=scenario.workflow_run_id,
            topology=scenario.topology,
            config=config,
            run_status="B",
            server_time=server_time(0.0),
        )
        t0 = perf_counter() if self.profile else 0.0
        decision = decide(self.state, started)
        if self.profile:
            self.decide_seconds += perf_counter() - t0
        self.state = decision.state
        topo = self.state.topology
        assert topo is not None
        self.topo = topo
        self.server = server_for(scenario, topo)
        f = scenario.faults
        tracking = bool(
            f.response_loss_rate or f.timeout_rate or f.request_timeout is not None or f.any_report_faults
        )
        self.checker = (
            InvariantChecker(self.server, tracking=tracking, on_violation=self._on_violation)
            if self.check_invariants
            else None
        )
        self.distributor = (RecordingDistributor if self.record_spans else Distributor)(
            scenario,
            self.server,
            WorkModel(scenario, topo, self.streams["work"]),
            self.push,
            PRIO_WORKER,
            lost_worker_rate=scenario.faults.lost_worker_rate,
            fault_rng=self.streams["faults"],
        )
        self._schedule_world()
        self._after_decide(started, decision.commands)
        del decision  # the first state: the loop must not keep it alive
        self._loop()
        return self._result()

    def _schedule_world(self) -> None:
        s = self.scenario
        schedule_scripted_world(s, self.push)
        if s.faults.limit_changes_per_hour > 0:
            self._next_random(0.0, s.faults.limit_changes_per_hour, RANDOM_LIMIT)
        if s.faults.resumes_per_hour > 0:
            self._next_random(0.0, s.faults.resumes_per_hour, RANDOM_RESUME)
        self.push(0.0, PRIO_SAMPLE, SAMPLE, None)

    def _next_random(self, t: float, per_hour: float, kind: str) -> None:
        """Schedule the next event of a Poisson process of ``per_hour`` events per hour."""
        self.push(t + self.streams["world"].expovariate(per_hour / 3600.0), PRIO_SIGNAL, kind, None)

    def _loop(self) -> None:
        heap = self.heap
        horizon = self.config.timeout + _HORIZON_SLACK + max(
            [c.at for c in self.scenario.limit_changes] + [r.at for r in self.scenario.resumes] + [0.0]
        )
        world_step = self.world_step
        while self.outcome is None:
            t, _, _, kind, payload = heappop(heap)
            self.now = t
            if kind is ANSWER:
                self.answers_pending -= 1
                self._answer(payload, t)
            elif kind is WAKE:
                if payload[0] == self.live_wake:
                    self.live_wake = None
                    self._feed(TimerFired(t, payload[1]))
            elif kind is SAMPLE:
                self._sample(t)
                if t > horizon:
                    raise SimulationError(
                        f"the run did not end by t={horizon:g} (virtual); "
                        f"the swarm is in phase {self.state.phase!r}"
                    )
                self.push(t + self.timeline_interval, PRIO_SAMPLE, SAMPLE, None)
            elif kind is SERVE:
                self._serve_split(payload, t)
            elif kind is FAIL:
                self.answers_pending -= 1
                self._fail(payload, t)
            elif kind is DELIVER:
                self.answers_pending -= 1
                self._deliver(payload, t)
            elif kind is RANDOM_LIMIT:
                self._random_limit(t)
            elif kind is RANDOM_RESUME:
                self._random_resume(t)
            elif not world_step(kind, payload, t):
                raise SimulationError(f"unknown event kind {kind!r} at t={t:g}")
            if self.outcome is None and self.answers_pending == 0 and self.live_wake is None:
                raise SimulationError(f"stalled at t={t:g}: no request in flight and no WakeAt")

    # --- the swarm -------------------------------------------------------------------------------

    def _feed(self, event: Event) -> None:
        if self.profile:
            t0 = perf_counter()
            decision = decide(self.state, event)
            self.decide_seconds += perf_counter() - t0
        else:
            decision = decide(self.state, event)
        before = self.state
        self.state = decision.state
        self._after_decide(event, decision.commands)
        if self.deep_checks and self.checker is not None:
            self._deep_check(before, decision.commands)

    def _deep_check(self, before: SwarmState, commands: tuple[Command, ...]) -> None:
        """The core's own state and command invariants after this decision (small runs)."""
        from swarmfold.core.invariants import check_commands, check_state

        assert self.checker is not None
        for kind, messages in (
            ("core_state", check_state(self.state)),
            ("core_commands", check_commands(before, commands, self.state)),
        ):
            if messages:
                self.checker.violate(self.now, kind, "; ".join(messages[:3]))

    def _after_decide(self, event: Event, commands: tuple[Command, ...]) -> None:
        self.decides += 1
        self.commands += len(commands)
        self.current = (event, commands)
        if self.checker is not None:
            self.checker.record = self.decides
        if self.writer is not None:
            self.writer.record(event, commands)
        now = self.now
        for c in commands:
            route = ROUTE_OF.get(type(c))
            if route is not None:
                self._send(c, route, now)
            elif isinstance(c, WakeAt):
                self.wake_token += 1
                self.live_wake = self.wake_token
                self.push(max(now, c.at), PRIO_WAKE, WAKE, (self.wake_token, c.command_id))
            elif isinstance(c, NoteAnomaly):
                self.anomalies.append(c)
            elif isinstance(c, Finish | Fail):
                self.outcome = c
                return
            elif isinstance(c, EvaluateResources):
                raise SimulationError(
                    f"task {c.task_id} needs a user callable ({c.purpose}); the simulator has none"
                )
            elif isinstance(c, LoadTaskChunk | LoadEdgeChunk):
                raise SimulationError(f"the simulator starts runs with RunStarted; got {type(c).__name__}")
            else:
                raise SimulationError(f"unknown command {c!r}")
        if self.max_decides is not None and self.decides >= self.max_decides and self.outcome is None:
            raise SimulationError(f"no end after {self.decides} decide calls")

    def reap(self, t: float) -> None:
        before = self.server.run_status
        if self.server.reap(t):
            what = f"the reaper moved the run {before} -> {self.server.run_status}"
            self.world_events.append((t, "reaped", what))

    def distributor_died(self, t: float) -> None:
        self.distributor.die()
        self._count("distributor_death")
        self.world_events.append((t, "distributor_died", "the distributor process died"))
        self._feed(DistributorDied(t, "the distributor process died (injected fault)"))

    def change_limit(self, change: LimitChange) -> None:
        if change.array_id is None:
            self.server.set_workflow_limit(change.limit)
            what = f"workflow limit -> {_show_limit(change.limit)}"
        else:
            self.server.set_array_limit(change.array_id, change.limit)
            what = f"array {change.array_id} limit -> {_show_limit(change.limit)}"
        self.world_events.append((self.now, "limit_change", what))

    def signal_resume(self, signal: ResumeSignal) -> None:
        accepted = self.server.set_resume(reset_running_jobs=signal.mode == "cold")
        effect = f"the run went {self.server.run_status}" if accepted else "ignored"
        kind = "resume" if accepted else "resume_ignored"
        self.world_events.append((self.now, kind, f"{signal.mode} resume signal ({effect})"))

    def _random_limit(self, t: float) -> None:
        """A user changes a limit (injected): the workflow's, or one array's, by a drawn factor."""
        world = self.streams["world"]
        topo = self.topo
        arrays = topo.array_ids
        k = world.randrange(len(arrays) + 1)
        array_id = None if k == len(arrays) else arrays[k]
        if array_id is None:
            original, base = topo.workflow_limit, topo.size
        else:
            original = topo.array_limits.get(array_id, UNLIMITED)
            base = sum(1 for a in topo.array_of if a == array_id)
        if original < UNLIMITED:
            base = original
        # One change in five puts the original limit back; the others scale it by 0.2..1.5.
        limit = original if world.random() < 0.2 else max(1, round(base * world.uniform(0.2, 1.5)))
        self._count("limit_change")
        self.change_limit(LimitChange(at=t, limit=limit, array_id=array_id))
        self._next_random(t, self.faults.limit_changes_per_hour, RANDOM_LIMIT)

    def _random_resume(self, t: float) -> None:
        """Another process asks to resume the workflow (injected): cold or hot."""
        world = self.streams["world"]
        mode = "cold" if world.random() < 0.5 else "hot"
        self._count("resume_signal")
        self.signal_resume(ResumeSignal(at=t, mode=mode))
        self._next_random(t, self.faults.resumes_per_hour, RANDOM_RESUME)

    def _on_violation(self, v: Violation) -> None:
        """Keep the event-log record that led to the first violation, as its log line."""
        if self.first_bad is not None:
            return
        record: tuple[Event, tuple[Command, ...]] | None = None
        if v.record == self.decides and self.current is not None:
            record = self.current
        else:
            for seq, event, commands in self.issuers.values():
                if seq == v.record:
                    record = (event, commands)
                    break
        if record is None or v.record is None:
            self.first_bad = f"record {v.record}" if v.record is not None else None
            return
        self.first_bad = record_line(v.record, record[0], record[1], f"sim-{self.seed}")

    def _sample(self, t: float) -> None:
        self.timeline.append(timeline_row(self.server, t, self.topo.array_ids))

    # --- the result ------------------------------------------------------------------------------

    def _result(self) -> SimResult:
        outcome = self.outcome
        assert outcome is not None
        end = self.now
        self._sample(end)
        self.server.close(end)
        self.distributor.cluster.finish(end)
        summary = outcome.summary
        normal = isinstance(outcome, Finish) and summary.final_status in ("D", "E") and not any(
            summary.reason.startswith(p) for p in _ABORT_PREFIXES
        )
        checker = self.checker
        if checker is not None:
            checker.record = self.decides
            checker.at_end(summary, normal, end)
        self.end_kind, self.end_detail = explain_end(
            outcome, self.scenario, self.world_events, self.injected
        )
        if checker is not None and self.end_kind == "unexplained":
            checker.violate(end, "unexplained_end", self.end_detail)
        spans = None
        if self.record_spans:
            spans = self.distributor.spans(end)  # type: ignore[attr-defined]
        return SimResult(
            report=build_report(self, outcome, end),
            summary=summary,
            outcome=outcome,
            violations=list(self.checker.violations) if self.checker is not None else [],
            timeline_columns=timeline_columns(self.topo.array_ids),
            timeline=self.timeline,
            state=self.state,
            server=self.server,
            anomalies=self.anomalies,
            decide_seconds=self.decide_seconds if self.profile else None,
            world_events=self.world_events,
            spans=spans,
        )


def _show_limit(limit: int) -> str:
    return "unlimited" if limit >= UNLIMITED else str(limit)
