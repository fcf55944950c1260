"""The simulated swarm's requests: latency, faults, and the answer each gets from the server
model, as heap items of the simulation driver (``shell/sim/driver.py``).

``RequestFlow`` is mixed into the driver's ``_Simulation``: ``_send`` draws a request's latency
and fault and schedules its answer; ``_serve`` carries a command out against the
``ServerModel`` at the instant the server handles it; the ``fail``/``deliver`` items answer a
request whose work and answer were split (timeouts, late and duplicated reports).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import evolve as attrs_evolve

from swarmfold.core.commands import (
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LogHeartbeat,
    QueueBatch,
    UpdateWorkflowRunStatus,
)
from swarmfold.core.events import (
    BatchQueued,
    Event,
    TaskStatusesFetched,
)
from swarmfold.core.protocol import failure_event
from swarmfold.core.state import SwarmState
from swarmfold.shell.server.in_process import UnservedCommand, answer_command
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.invariants import InvariantChecker
from swarmfold.shell.sim.scenario import RouteLatency
from swarmfold.shell.sim.scenario.schema import FaultProfile

__all__ = ["ANSWER", "DELIVER", "FAIL", "PRIO_ANSWER", "SERVE", "RequestFlow", "SimulationError"]

#: Answers to the swarm come after the world's events at one instant (shell/sim/world.py).
PRIO_ANSWER = 4

# Heap item kinds of requests.
ANSWER = "answer"
SERVE = "serve"
FAIL = "fail"
DELIVER = "deliver"


class SimulationError(RuntimeError):
    """The simulation cannot go on (the core stalled, or asked for something unsupported)."""


class RequestFlow:
    """The request side of the simulation (see the module doc); the driver holds the state."""

    streams: dict[str, random.Random]
    server: ServerModel
    state: SwarmState
    checker: InvariantChecker | None
    faults: FaultProfile
    fault_routes: frozenset[str] | None
    request_faults: bool
    request_timeout: float | None
    latency_of: dict[str, RouteLatency]
    requests: dict[str, int]
    injected: dict[str, int]
    issuers: dict[int, tuple[int, Event, tuple[Any, ...]]]
    current: tuple[Event, tuple[Any, ...]] | None
    answers_pending: int
    failed_requests: int
    full_syncs: int
    decides: int
    duplicated: bool
    report_history: deque[Mapping[str, Sequence[int]]]
    world_events: list[tuple[float, str, str]]

    def push(self, t: float, prio: int, kind: str, payload: Any) -> None:
        raise NotImplementedError

    def _feed(self, event: Event) -> None:
        raise NotImplementedError

    def _send(self, c: Any, route: str, now: float) -> None:
        self.requests[route] = self.requests.get(route, 0) + 1
        lat = self.latency_of[route]
        typ = type(c)
        n = len(c.task_ids) if typ is QueueBatch else 0
        base = lat.seconds + lat.per_task * n
        if lat.jitter and base:
            base *= self.streams["latency"].uniform(1.0 - lat.jitter, 1.0 + lat.jitter)
        fate = None
        if self.request_faults and (self.fault_routes is None or route in self.fault_routes):
            fate, base = self._request_fault(base)
        f = self.faults
        if (
            typ is LogHeartbeat
            and f.heartbeat_failure_rate
            and fate is None
            and self.streams["heartbeats"].random() < f.heartbeat_failure_rate
        ):
            fate = "failed"
            self._count("heartbeat_failure")
        latency = round(base, 6)
        if typ is QueueBatch and self.checker is not None:
            self.checker.batch_issued(c, now)
            event, commands = self.current if self.current is not None else (c, ())
            self.issuers[c.command_id] = (self.decides, event, commands)
        delay = 0.0
        if typ is FetchTaskStatuses and f.late_report_rate and fate != "failed":
            reports = self.streams["reports"]
            if reports.random() < f.late_report_rate:
                delay = round(reports.uniform(0.0, f.late_report_seconds), 6)
                self._count("late_report")
        timeout = self.request_timeout
        self.answers_pending += 1
        timed_out = fate == "hang" or (timeout is not None and fate != "failed" and latency + delay > timeout)
        if typ is UpdateWorkflowRunStatus and (fate is not None or timed_out):
            what = "timed out" if timed_out else ("failed" if fate == "failed" else "lost its answer")
            self.world_events.append((now, "status_update_fault", f"update_status {c.status} {what}"))
        if timed_out:
            # The client gives up after ``timeout``; the server still does the work (and a late
            # status answer still arrives, after the failure: an answer the swarm no longer awaits).
            if fate != "hang":
                self._count("timeout")
            give_up = now + (timeout if timeout is not None else latency)
            self.push(give_up, PRIO_ANSWER, FAIL, (c, "injected fault: request timed out", True))
            # A hung request's answer never comes back; a slow one's comes after the give-up.
            late = None if fate == "hang" or not delay else delay
            self.push(now + latency, PRIO_ANSWER, SERVE, (c, latency, late, True))
            return
        if delay:
            self.push(now + latency, PRIO_ANSWER, SERVE, (c, latency, delay, False))
            return
        self.push(now + latency, PRIO_ANSWER, ANSWER, (c, latency, fate))

    def _count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1

    def _request_fault(self, latency: float) -> tuple[str | None, float]:
        f = self.faults
        rng = self.streams["faults"]
        fate = None
        if f.request_failure_rate or f.response_loss_rate or f.latency_spike_rate or f.timeout_rate:
            u = rng.random()
            if u < f.request_failure_rate:
                fate = "failed"
                self._count("request_failure")
            elif u < f.request_failure_rate + f.response_loss_rate:
                fate = "lost"
                self._count("response_loss")
            elif u < f.request_failure_rate + f.response_loss_rate + f.timeout_rate:
                fate = "hang"
                self._count("timeout")
        if f.latency_spike_rate and rng.random() < f.latency_spike_rate:
            latency += f.latency_spike_seconds
            self._count("latency_spike")
        return fate, latency

    def _answer(self, payload: tuple[Any, float, str | None], now: float) -> None:
        c, latency, fate = payload
        typ = type(c)
        if fate == "failed":
            self.failed_requests += 1
            if typ is QueueBatch and self.checker is not None:
                self.checker.batch_dropped(c)
                self.issuers.pop(c.command_id, None)
            self._feed(failure_event(c, now, "injected fault: request failed"))
            return
        event = self._serve(c, latency, now, abandoned=fate == "lost")
        if fate == "lost":
            self.failed_requests += 1
            event = failure_event(c, now, "injected fault: response lost")
        else:
            self._told(c, event, exact=not self.duplicated)
        self._feed(event)

    def _told(self, c: Any, event: Any, exact: bool) -> None:
        """The swarm is about to be given ``event``, the answer to ``c``: what it learns."""
        checker = self.checker
        if checker is None:
            return
        typ = type(c)
        if typ is FetchWorkflowLimit:
            checker.workflow_limit_seen(event.limit)
        elif typ is FetchArrayLimit:
            checker.array_limit_seen(c.array_id, event.limit)
        elif typ is FetchTaskStatuses or typ is QueueBatch:
            full = typ is FetchTaskStatuses and c.since is None
            checker.facts_delivered(event.tasks_by_status, exact, full)

    def _serve_split(self, payload: tuple[Any, float, float | None, bool], now: float) -> None:
        """The server does the work of a request whose answer comes apart from it."""
        c, latency, delay, failed = payload
        if not failed:
            self.answers_pending -= 1
        event = self._serve(c, latency, now, abandoned=failed)
        if delay is None:
            return  # the answer is lost: the client has given up, or will
        self.answers_pending += 1
        self.push(now + delay, PRIO_ANSWER, DELIVER, (c, event, failed))

    def _fail(self, payload: tuple[Any, str, bool], now: float) -> None:
        c, reason, _ = payload
        self.failed_requests += 1
        if type(c) is QueueBatch and self.checker is not None:
            self.checker.batch_abandoned(c)
        self._feed(failure_event(c, now, reason))

    def _deliver(self, payload: tuple[Any, Event, bool], now: float) -> None:
        """A late answer arrives (after the swarm was told the request failed, if ``stale``)."""
        c, event, stale = payload
        event = attrs_evolve(event, at=now)
        if not stale:
            self._told(c, event, exact=False)
        self._feed(event)

    def _serve(self, c: Any, latency: float, now: float, abandoned: bool = False) -> Event:
        """The server does the request's work at ``now`` and gives its answer as an event."""
        server = self.server
        typ = type(c)
        if typ is QueueBatch:
            answer, moved = server.queue_task_batch(c.task_ids, c.task_resources_id, now)
            if self.checker is not None:
                issuer = self.issuers.get(c.command_id)
                self.checker.batch_landed(
                    c, moved, now, abandoned=abandoned, record=None if issuer is None else issuer[0]
                )
                self.issuers.pop(c.command_id, None)
            return BatchQueued(c.command_id, now, answer, latency)
        try:
            event = answer_command(server, c, now)
        except UnservedCommand as exc:
            raise SimulationError(str(exc)) from None
        if isinstance(event, TaskStatusesFetched):
            if c.since is None:
                self.full_syncs += 1
            if self.faults.duplicate_report_rate:
                merged = self._duplicate(event.tasks_by_status)
                if merged is not event.tasks_by_status:
                    event = attrs_evolve(event, tasks_by_status=merged)
        return event

    def _duplicate(self, statuses: Mapping[str, Sequence[int]]) -> Mapping[str, Sequence[int]]:
        """Maybe add an earlier status answer's entries to this one (a duplicated report).

        Entries for tasks this answer names under the same status are listed twice; under
        another status, they are left out (the answer's own fact wins); the others are
        re-delivered as they were, stale if the task has moved on since."""
        history = self.report_history
        reports = self.streams["reports"]
        merged: Mapping[str, Sequence[int]] = statuses
        self.duplicated = False
        if history and reports.random() < self.faults.duplicate_report_rate:
            earlier = history[reports.randrange(len(history))]
            here = {tid: code for code, ids in statuses.items() for tid in ids}
            grown: dict[str, list[int]] = {code: list(ids) for code, ids in statuses.items()}
            added = 0
            for code, ids in earlier.items():
                extra = [tid for tid in ids if here.get(tid, code) == code]
                if extra:
                    grown.setdefault(code, []).extend(extra)
                    added += len(extra)
            merged = grown
            self._count("duplicate_report")
            self.duplicated = True
            if added:
                self.injected["duplicate_entries"] = self.injected.get("duplicate_entries", 0) + added
        history.append(statuses)
        return merged

    # --- the world -------------------------------------------------------------------------------

    # what the world's events mean to a simulation (``WorldLoop``): recorded, and told the swarm

