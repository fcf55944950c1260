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
from one ``random.Random(seed)``, split into sub-streams (latency, work, faults) so that, for
example, latency draws never shift task durations. No wall clock is read: a
``(scenario, seed)`` pair gives byte-identical event logs and reports.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Mapping
from heapq import heappop, heappush
from pathlib import Path
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
from swarmfold.core.decide import decide
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    BatchQueueFailed,
    DistributorDied,
    Event,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    ResourceBindFailed,
    ResourcesBound,
    RunStarted,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    SyncPartFailed,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TerminateFailed,
    TimerFired,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.state import SwarmState, initial_state
from swarmfold.core.summary import RunSummary
from swarmfold.shell.sim.cluster import END, LOST, START, Distributor, WorkModel
from swarmfold.shell.sim.invariants import InvariantChecker, Violation
from swarmfold.shell.sim.report import (
    ArrayReport,
    SimReport,
    percentile,
    r6,
    timeline_columns,
    write_timeline,
)
from swarmfold.shell.sim.scenario import (
    LimitChange,
    ResumeSignal,
    RouteLatency,
    Scenario,
    with_limits,
)
from swarmfold.shell.sim.server_model import ServerModel, server_time

__all__ = ["ROUTE_OF", "SimResult", "SimulationError", "simulate"]

# Priorities at one instant (lower first).
PRIO_SIGNAL = 0
PRIO_WORKER = 1
PRIO_POLL = 2
PRIO_REAP = 3
PRIO_ANSWER = 4
PRIO_WAKE = 5
PRIO_SAMPLE = 6

# Heap item kinds the driver owns (the cluster's are START, END, LOST).
ANSWER = "answer"
WAKE = "wake"
POLL = "poll"
REAP = "reap"
LIMIT = "limit"
RESUME = "resume"
DISTRIBUTOR_DIES = "distributor_dies"
SAMPLE = "sample"

#: The route each server command calls (spec §11).
ROUTE_OF: Mapping[type, str] = {
    QueueBatch: "queue_task_batch",
    BindResources: "bind_resources",
    LogHeartbeat: "log_heartbeat",
    UpdateWorkflowRunStatus: "update_status",
    RequestTriage: "set_status_for_triaging",
    FetchTaskStatuses: "task_status_updates",
    FetchWorkflowLimit: "get_max_concurrently_running",
    FetchArrayLimit: "get_array_max_concurrently_running",
    TerminateTaskInstances: "terminate_task_instances",
}

#: The event that reports a failed request, by command class.
_FAILURE_OF: Mapping[type, Callable[[int, float, str], Event]] = {
    QueueBatch: BatchQueueFailed,
    BindResources: ResourceBindFailed,
    LogHeartbeat: HeartbeatFailed,
    UpdateWorkflowRunStatus: StatusUpdateFailed,
    RequestTriage: SyncPartFailed,
    FetchTaskStatuses: SyncPartFailed,
    FetchWorkflowLimit: SyncPartFailed,
    FetchArrayLimit: SyncPartFailed,
    TerminateTaskInstances: TerminateFailed,
}

#: ``Finish`` reasons that are not a normal end (no lost-task check after them).
_ABORT_PREFIXES = ("fail_fast", "transition_error", "resource_callable_failed", "the server set")

#: The virtual time after which a simulation that has not ended is an error.
_HORIZON_SLACK = 86_400.0


class SimulationError(RuntimeError):
    """The simulation cannot go on (the core stalled, or asked for something unsupported)."""


@define
class SimResult:
    """Everything one simulation produced."""

    report: SimReport
    summary: RunSummary
    outcome: Finish | Fail
    violations: list[Violation]
    timeline_columns: list[str]
    timeline: list[tuple[Any, ...]]
    state: SwarmState
    server: ServerModel
    anomalies: list[NoteAnomaly] = field(factory=list)
    #: Seconds spent inside ``decide`` (only with ``profile=True``; a measurement, not a result).
    decide_seconds: float | None = None


def _sub_streams(seed: int) -> dict[str, random.Random]:
    """Independent, deterministic sub-streams of one ``random.Random(seed)``."""
    root = random.Random(seed)
    return {name: random.Random(root.getrandbits(64)) for name in ("latency", "work", "faults")}


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
) -> SimResult:
    """Simulate one workflow run of ``scenario`` and report on it.

    ``seed`` defaults to the scenario's; ``workflow_limit``/``array_limits`` override the
    scenario's limits; ``log_path`` records the event log (the shell's format, source
    ``simulate``); ``timeline_path`` writes the timeline CSV, sampled every
    ``timeline_interval`` seconds (default: the heartbeat interval). ``profile=True``
    measures the time spent in ``decide`` (``SimResult.decide_seconds``; never in the report).
    """
    if workflow_limit is not None or array_limits:
        scenario = with_limits(scenario, workflow_limit, array_limits)
    seed = scenario.seed if seed is None else seed
    sim = _Simulation(scenario, seed, timeline_interval, check_invariants, max_decides, profile)
    writer = None
    if log_path is not None:
        from swarmfold.shell.eventlog import EventLogWriter, new_header

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


class _Simulation:
    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        timeline_interval: float | None,
        check_invariants: bool,
        max_decides: int | None,
        profile: bool = False,
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
        self.server = ServerModel(
            topo,
            workflow_id=scenario.workflow_id,
            workflow_run_id=scenario.workflow_run_id,
            run_status="O",
            heartbeat_increment=config.next_report_increment,
            ti_report_increment=scenario.server.task_instance_heartbeat_interval * config.report_by_buffer,
        )
        self.checker = InvariantChecker(self.server) if self.check_invariants else None
        self.distributor = Distributor(
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
        self._loop()
        return self._result()

    def _schedule_world(self) -> None:
        s = self.scenario
        for change in s.limit_changes:
            self.push(change.at, PRIO_SIGNAL, LIMIT, change)
        for signal in s.resumes:
            self.push(signal.at, PRIO_SIGNAL, RESUME, signal)
        if s.faults.distributor_dies_at is not None:
            self.push(s.faults.distributor_dies_at, PRIO_SIGNAL, DISTRIBUTOR_DIES, None)
        self.push(s.distributor.poll_interval, PRIO_POLL, POLL, None)
        self.push(s.server.reaper_poll_interval, PRIO_REAP, REAP, None)
        self.push(0.0, PRIO_SAMPLE, SAMPLE, None)

    def _loop(self) -> None:
        heap = self.heap
        distributor = self.distributor
        horizon = self.config.timeout + _HORIZON_SLACK + max(
            [c.at for c in self.scenario.limit_changes] + [r.at for r in self.scenario.resumes] + [0.0]
        )
        while self.outcome is None:
            t, _, _, kind, payload = heappop(heap)
            self.now = t
            if kind is END:
                distributor.worker_ended(payload[0], payload[1], t)
            elif kind is ANSWER:
                self.answers_pending -= 1
                self._answer(payload, t)
            elif kind is WAKE:
                if payload[0] == self.live_wake:
                    self.live_wake = None
                    self._feed(TimerFired(t, payload[1]))
            elif kind is START:
                distributor.worker_started(payload, t)
            elif kind is POLL:
                distributor.poll(t)
                self.push(t + self.scenario.distributor.poll_interval, PRIO_POLL, POLL, None)
            elif kind is SAMPLE:
                self._sample(t)
                if t > horizon:
                    raise SimulationError(
                        f"the run did not end by t={horizon:g} (virtual); "
                        f"the swarm is in phase {self.state.phase!r}"
                    )
                self.push(t + self.timeline_interval, PRIO_SAMPLE, SAMPLE, None)
            elif kind is REAP:
                self.server.reap(t)
                self.push(t + self.scenario.server.reaper_poll_interval, PRIO_REAP, REAP, None)
            elif kind is LOST:
                distributor.worker_lost(payload, t)
            elif kind is LIMIT:
                self._limit_change(payload)
            elif kind is RESUME:
                self._resume(payload)
            elif kind is DISTRIBUTOR_DIES:
                distributor.die()
                self._feed(DistributorDied(t, "the distributor process died (injected fault)"))
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
        self.state = decision.state
        self._after_decide(event, decision.commands)

    def _after_decide(self, event: Event, commands: tuple[Command, ...]) -> None:
        self.decides += 1
        self.commands += len(commands)
        if self.writer is not None:
            self.writer.record(event, commands)
        now = self.now
        for c in commands:
            typ = type(c)
            route = ROUTE_OF.get(typ)
            if route is not None:
                self._send(c, route, now)
            elif typ is WakeAt:
                self.wake_token += 1
                self.live_wake = self.wake_token
                self.push(max(now, c.at), PRIO_WAKE, WAKE, (self.wake_token, c.command_id))
            elif typ is NoteAnomaly:
                self.anomalies.append(c)
            elif typ is Finish or typ is Fail:
                self.outcome = c
                return
            elif typ is EvaluateResources:
                raise SimulationError(
                    f"task {c.task_id} needs a user callable ({c.purpose}); the simulator has none"
                )
            elif typ is LoadTaskChunk or typ is LoadEdgeChunk:
                raise SimulationError(f"the simulator starts runs with RunStarted; got {type(c).__name__}")
            else:
                raise SimulationError(f"unknown command {c!r}")
        if self.max_decides is not None and self.decides >= self.max_decides and self.outcome is None:
            raise SimulationError(f"no end after {self.decides} decide calls")

    def _send(self, c: Any, route: str, now: float) -> None:
        self.requests[route] = self.requests.get(route, 0) + 1
        lat = self.latency_of[route]
        n = len(c.task_ids) if type(c) is QueueBatch else 0
        base = lat.seconds + lat.per_task * n
        if lat.jitter and base:
            base *= self.streams["latency"].uniform(1.0 - lat.jitter, 1.0 + lat.jitter)
        fate = None
        if self.request_faults and (self.fault_routes is None or route in self.fault_routes):
            fate, base = self._request_fault(base)
        latency = round(base, 6)
        if type(c) is QueueBatch and self.checker is not None:
            self.checker.batch_issued(c, now)
        self.answers_pending += 1
        self.push(now + latency, PRIO_ANSWER, ANSWER, (c, latency, fate))

    def _request_fault(self, latency: float) -> tuple[str | None, float]:
        f = self.faults
        rng = self.streams["faults"]
        fate = None
        u = rng.random()
        if u < f.request_failure_rate:
            fate = "failed"
        elif u < f.request_failure_rate + f.response_loss_rate:
            fate = "lost"
        if f.latency_spike_rate and rng.random() < f.latency_spike_rate:
            latency += f.latency_spike_seconds
        return fate, latency

    def _answer(self, payload: tuple[Any, float, str | None], now: float) -> None:
        c, latency, fate = payload
        typ = type(c)
        if fate == "failed":
            self.failed_requests += 1
            if typ is QueueBatch and self.checker is not None:
                self.checker.batch_dropped(c)
            self._feed(_FAILURE_OF[typ](c.command_id, now, "injected fault: request failed"))
            return
        event = self._serve(c, latency, now)
        if fate == "lost":
            self.failed_requests += 1
            event = _FAILURE_OF[typ](c.command_id, now, "injected fault: response lost")
        elif self.checker is not None:  # what the swarm is told about limits, as it is told
            if typ is FetchWorkflowLimit:
                self.checker.workflow_limit_seen(event.limit)
            elif typ is FetchArrayLimit:
                self.checker.array_limit_seen(c.array_id, event.limit)
        self._feed(event)

    def _serve(self, c: Any, latency: float, now: float) -> Event:
        """The server does the request's work at ``now`` and gives its answer as an event."""
        server = self.server
        typ = type(c)
        if typ is QueueBatch:
            answer, moved = server.queue_task_batch(c.task_ids, c.task_resources_id, now)
            if self.checker is not None:
                self.checker.batch_landed(c, moved, now)
            return BatchQueued(c.command_id, now, answer, latency)
        if typ is FetchTaskStatuses:
            if c.since is None:
                self.full_syncs += 1
            statuses, time_string = server.task_status_updates(c.since, now)
            return TaskStatusesFetched(c.command_id, now, statuses, time_string)
        if typ is RequestTriage:
            server.set_status_for_triaging(now)
            return TriageRequested(c.command_id, now)
        if typ is FetchWorkflowLimit:
            return WorkflowLimitFetched(c.command_id, now, server.get_max_concurrently_running())
        if typ is FetchArrayLimit:
            limit = server.get_array_max_concurrently_running(c.array_id)
            return ArrayLimitFetched(c.command_id, now, c.array_id, limit)
        if typ is LogHeartbeat:
            return HeartbeatAcknowledged(
                c.command_id, now, server.log_heartbeat(c.status, c.next_report_increment, now)
            )
        if typ is UpdateWorkflowRunStatus:
            return StatusUpdateAcknowledged(c.command_id, now, server.update_status(c.status, now))
        if typ is TerminateTaskInstances:
            return TerminateAcknowledged(c.command_id, now, server.terminate_task_instances(now))
        if typ is BindResources:
            return ResourcesBound(c.command_id, now, server.bind_resources(c.queue, c.requested))
        raise SimulationError(f"the server model does not serve {typ.__name__}")

    # --- the world -------------------------------------------------------------------------------

    def _limit_change(self, change: LimitChange) -> None:
        if change.array_id is None:
            self.server.set_workflow_limit(change.limit)
        else:
            self.server.set_array_limit(change.array_id, change.limit)

    def _resume(self, signal: ResumeSignal) -> None:
        self.server.set_resume(reset_running_jobs=signal.mode == "cold")

    def _sample(self, t: float) -> None:
        server = self.server
        counts = server.counts
        row: list[Any] = [
            r6(t), server.run_status, server.workflow_limit, server.active_total, counts["G"],
            counts["Q"] + counts["I"], counts["O"], counts["R"], counts["A"], counts["D"], counts["F"],
        ]
        limits = server.array_limits
        for a in self.topo.array_ids:
            row += [server.active_by_array[a], limits.get(a)]
        self.timeline.append(tuple(row))

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
        if self.checker is not None:
            self.checker.at_end(summary, normal, end)
        return SimResult(
            report=self._report(outcome, end),
            summary=summary,
            outcome=outcome,
            violations=list(self.checker.violations) if self.checker is not None else [],
            timeline_columns=timeline_columns(self.topo.array_ids),
            timeline=self.timeline,
            state=self.state,
            server=self.server,
            anomalies=self.anomalies,
            decide_seconds=self.decide_seconds if self.profile else None,
        )

    def _report(self, outcome: Finish | Fail, end: float) -> SimReport:
        topo = self.topo
        summary = outcome.summary
        cluster = self.distributor.cluster
        server = self.server
        array_of = topo.array_of
        tasks_per_array = dict.fromkeys(topo.array_ids, 0)
        for a in array_of:
            tasks_per_array[a] += 1
        per_status: dict[str, dict[int, int]] = {}
        for code in ("D", "F"):
            counts = dict.fromkeys(topo.array_ids, 0)
            for i in server.indexes_of(summary.tasks_by_status.get(code, ())):
                counts[array_of[i]] += 1
            per_status[code] = counts
        span = end if end > 0 else 1.0
        arrays = tuple(
            ArrayReport(
                array_id=a,
                name=topo.array_names.get(a, f"array_{a}"),
                limit=server.array_limits.get(a, topo.array_limits.get(a, 0)),
                tasks=tasks_per_array[a],
                done=per_status["D"][a],
                failed=per_status["F"][a],
                peak_active=server.peak_by_array[a],
                mean_active=r6(server.area_by_array[a] / span),
            )
            for a in topo.array_ids
        )
        waits = sorted(self.distributor.queue_waits)
        p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
        capacity = cluster.capacity
        anomalies: dict[str, int] = {}
        for note in self.anomalies:
            anomalies[note.kind] = anomalies.get(note.kind, 0) + 1
        checker = self.checker
        outcomes = dict(sorted(self.distributor.outcomes.items()))
        return SimReport(
            scenario=self.scenario.name,
            seed=self.seed,
            final_status=summary.final_status,
            outcome="finish" if isinstance(outcome, Finish) else "fail",
            reason=summary.reason,
            makespan=r6(end),
            total_tasks=summary.total_tasks,
            done=summary.done_count,
            failed=summary.failed_count,
            attempts=len(server.ti_status),
            attempt_outcomes=outcomes,
            workflow_limit=server.workflow_limit,
            peak_active=server.peak_total,
            mean_active=r6(server.area_total / span),
            peak_running=cluster.peak_running,
            mean_running=r6(cluster.busy_area / span),
            arrays=arrays,
            cluster_slots=capacity,
            utilization=None if not capacity else r6(cluster.busy_area / (capacity * span)),
            busy_slot_seconds=r6(cluster.busy_area),
            queue_wait_p50=None if p50 is None else r6(p50),
            queue_wait_p95=None if p95 is None else r6(p95),
            requests=dict(sorted(self.requests.items())),
            requests_total=sum(self.requests.values()),
            full_syncs=self.full_syncs,
            failed_requests=self.failed_requests,
            decide_calls=self.decides,
            commands=self.commands,
            anomalies=dict(sorted(anomalies.items())),
            violations={} if checker is None else dict(sorted(checker.counts.items())),
            violation_examples=() if checker is None else tuple(str(v) for v in checker.violations[:10]),
        )
