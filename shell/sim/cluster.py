"""The distributor and the cluster: what happens to a task instance after it is queued.

- The **distributor** polls every ``poll_interval`` seconds. Each poll it kills the instances
  the server ordered to die (K), resolves triaged ones, then instantiates and launches every
  newly queued instance (Q → I → O) — all of them: like Jobmon's distributor it knows nothing
  of concurrency limits. Those are the swarm's job.
- The **cluster** has slots, in total or per queue (or unlimited). A launched instance waits
  in its pool's FIFO until a slot is free, then its worker starts (O → R, after
  ``start_delay``), runs for its drawn duration and reports its outcome.
- The **work model** draws each attempt's outcome and duration: a task's explicit attempts,
  else its duration (or its array's duration model) with its array's failure model. A task
  whose ``needs`` exceed what the attempt requested ends in a resource error half-way.

Randomness comes from the ``random.Random`` the driver hands in (a sub-stream of the seed).
"""

from __future__ import annotations

import math
import random
from array import array
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from swarmfold.core.topology import Topology
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.scenario import OUTCOMES, ArrayModel, DurationModel, Scenario

#: What a heap item is, for the cluster's own items (the driver owns the heap).
START = "start"
END = "end"
LOST = "lost"

#: Outcome names as reported (task-instance status -> report key).
OUTCOME_NAMES = {v: k for k, v in OUTCOMES.items()}

Push = Callable[[float, int, str, Any], None]


def duration_sampler(model: DurationModel | None, rng: random.Random) -> Callable[[], float]:
    """A function drawing one duration from ``model`` (the model was validated on load)."""
    if model is None:
        return lambda: 0.0
    d = model.distribution
    if d == "fixed":
        seconds = float(model.seconds or 0.0)
        return lambda: seconds
    if d == "uniform":
        low, high = float(model.low or 0.0), float(model.high or 0.0)
        uniform = rng.uniform
        return lambda: uniform(low, high)
    if d == "exponential":
        mean = float(model.mean or 0.0)
        if mean <= 0:
            return lambda: 0.0
        expo = rng.expovariate
        rate = 1.0 / mean
        return lambda: expo(rate)
    mu = math.log(float(model.median or 1.0))
    sigma = float(model.sigma or 0.0)
    lognorm = rng.lognormvariate
    return lambda: lognorm(mu, sigma)


_FIXED, _UNIFORM, _OTHER = 0, 1, 2


class WorkModel:
    """Draws ``(task-instance outcome status, duration)`` for each attempt of each task."""

    def __init__(self, scenario: Scenario, topo: Topology, rng: random.Random) -> None:
        self.rng = rng
        self.array_of = topo.array_of
        index_of = topo.index_of
        self.plans = {index_of[tid]: plan for tid, plan in scenario.task_plans.items() if tid in index_of}
        self.attempt_no = array("q", bytes(8 * topo.size))
        #: Per array: ``(kind, a, b, sampler)``; fixed and uniform are drawn inline.
        self.durations: dict[int, tuple[int, float, float, Callable[[], float]]] = {}
        self.failures: dict[int, tuple[float, float, float] | None] = {}
        for array_id in topo.array_ids:
            model = scenario.array_models.get(array_id, ArrayModel())
            d = model.duration
            sampler = duration_sampler(d, rng)
            if d is None or d.distribution == "fixed":
                self.durations[array_id] = (_FIXED, sampler(), 0.0, sampler)
            elif d.distribution == "uniform":
                low, high = float(d.low or 0.0), float(d.high or 0.0)
                self.durations[array_id] = (_UNIFORM, low, high - low, sampler)
            else:
                self.durations[array_id] = (_OTHER, 0.0, 0.0, sampler)
            f = model.failures
            if f.error or f.resource_error or f.fatal:
                cut = f.error + f.resource_error
                self.failures[array_id] = (f.error, cut, cut + f.fatal)
            else:
                self.failures[array_id] = None

    def draw(self, i: int, requested: Mapping[str, Any] | None = None) -> tuple[str, float]:
        """The ``k``-th attempt of task ``i``: ``("D"|"E"|"Z"|"F", seconds)``."""
        k = self.attempt_no[i]
        self.attempt_no[i] = k + 1
        plan = self.plans.get(i) if self.plans else None
        if plan is not None and plan.attempts:
            attempt = plan.attempts[min(k, len(plan.attempts) - 1)]
            outcome, seconds = OUTCOMES[attempt.outcome], attempt.duration
        else:
            a = self.array_of[i]
            if plan is not None and plan.duration is not None:
                seconds = plan.duration
            else:
                kind, x, y, sampler = self.durations[a]
                if kind == _UNIFORM:
                    seconds = x + y * self.rng.random()  # exactly ``rng.uniform(low, high)``
                elif kind == _FIXED:
                    seconds = x
                else:
                    seconds = sampler()
            cuts = self.failures[a]
            outcome = "D"
            if cuts is not None:
                u = self.rng.random()
                if u < cuts[0]:
                    outcome = "E"
                elif u < cuts[1]:
                    outcome = "Z"
                elif u < cuts[2]:
                    outcome = "F"
        if plan is not None and plan.needs and requested is not None:
            for name, needed in plan.needs:
                value = requested.get(name)
                if isinstance(value, int | float) and value < needed:
                    return "Z", seconds / 2
        return outcome, seconds


class Cluster:
    """Slots and FIFO waiting lines: one pool in total, one per queue, or none (unlimited).

    ``busy_area`` integrates the number of occupied slots over time: a start adds ``-t``, an
    end ``+t``, and ``finish(end)`` adds ``running * end``.
    """

    def __init__(self, slots: int | None, queue_slots: Mapping[str, int] | None) -> None:
        self.total_slots = slots
        self.queue_slots = dict(queue_slots) if queue_slots is not None else None
        self.free: dict[str, int] = {}
        if slots is not None:
            self.free["*"] = slots
        elif queue_slots is not None:
            self.free.update(queue_slots)
        self.waiting: dict[str, deque[int]] = {name: deque() for name in self.free}
        self.running = 0
        self.peak_running = 0
        self.busy_area = 0.0

    @property
    def capacity(self) -> int | None:
        if self.total_slots is not None:
            return self.total_slots
        if self.queue_slots is not None:
            return sum(self.queue_slots.values())
        return None

    def pool_of(self, queue: str) -> str | None:
        """The pool an instance on ``queue`` takes a slot from (None: no limit)."""
        if self.total_slots is not None:
            return "*"
        if self.queue_slots is not None and queue in self.queue_slots:
            return queue
        return None

    def finish(self, end: float) -> None:
        """Close the busy-slot integral at ``end``."""
        self.busy_area += self.running * end


class Distributor:
    """The distributor process and the cluster it submits to, driven by the driver's heap."""

    def __init__(
        self,
        scenario: Scenario,
        server: ServerModel,
        work: WorkModel,
        push: Push,
        prio: int,
        *,
        lost_worker_rate: float = 0.0,
        fault_rng: random.Random | None = None,
    ) -> None:
        self.server = server
        self.work = work
        self.push = push
        self.prio = prio
        self.start_delay = scenario.distributor.start_delay
        self.cluster = Cluster(scenario.cluster.slots, scenario.cluster.queue_slots)
        self.lost_worker_rate = lost_worker_rate
        self.fault_rng = fault_rng
        #: Pool holding each started instance's slot (None: an unlimited queue).
        self.slot_of: dict[int, str | None] = {}
        #: Pool of each TaskResources id (cached).
        self._pool_of_resources: dict[int, str | None] = {}
        self.queue_waits = array("d")
        self.outcomes: dict[str, int] = {}
        self.alive = True

    # --- the poll ----------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        if not self.alive:
            return
        server = self.server
        if server.run_status == "B":  # a new run (a resume): its distributor starts, B -> I -> O
            server.update_status("I", now)
            server.update_status("O", now)
        for ti in server.transition_to_killed(now):
            self._count("killed")
            self._release(ti, now)
        server.resolve_triaged(now)
        launched = server.instantiate_and_launch(now)
        if not launched:
            return
        cluster = self.cluster
        free = cluster.free
        waiting = cluster.waiting
        pools = self._pool_of_resources
        ti_resources = server.ti_resources
        start = self._start
        for ti in launched:
            tr = ti_resources[ti]
            if tr in pools:
                pool = pools[tr]
            else:
                pool = pools[tr] = cluster.pool_of(server.task_resources[tr][0])
            if pool is None:
                start(ti, None, now)
            elif free[pool] > 0 and not waiting[pool]:
                free[pool] -= 1
                start(ti, pool, now)
            else:
                waiting[pool].append(ti)

    def _start(self, ti: int, pool: str | None, now: float) -> None:
        """Give ``ti`` its slot; its worker starts now, or after ``start_delay``."""
        self.slot_of[ti] = pool
        cluster = self.cluster
        cluster.running += 1
        if cluster.running > cluster.peak_running:
            cluster.peak_running = cluster.running
        cluster.busy_area -= now
        if self.start_delay > 0:
            self.push(now + self.start_delay, self.prio, START, ti)
        else:
            self.worker_started(ti, now)

    def worker_started(self, ti: int, now: float) -> None:
        server = self.server
        if ti not in self.slot_of:  # killed while starting
            return
        if not server.log_running(ti, now):
            self._release(ti, now)
            return
        self.queue_waits.append(now - server.ti_queued_at[ti])
        work = self.work
        requested = None
        if work.plans:
            requested = dict(server.task_resources[server.ti_resources[ti]][1])
        outcome, seconds = work.draw(server.ti_task[ti], requested)
        rate = self.lost_worker_rate
        if rate and self.fault_rng is not None and self.fault_rng.random() < rate:
            self.push(now + seconds / 2, self.prio, LOST, ti)
            return
        self.push(now + seconds, self.prio, END, (ti, outcome))

    def worker_ended(self, ti: int, outcome: str, now: float) -> None:
        if ti not in self.slot_of:  # killed meanwhile: the process is gone
            return
        self._release(ti, now)
        if outcome == "D":
            self.server.log_done(ti, now)
            outcomes = self.outcomes
            outcomes["done"] = outcomes.get("done", 0) + 1
        else:
            self.server.log_error(ti, outcome, now)
            self._count(OUTCOME_NAMES[outcome])

    def worker_lost(self, ti: int, now: float) -> None:
        if ti not in self.slot_of:
            return
        self._release(ti, now)
        self.server.worker_lost(ti, now)
        self._count("lost")

    def _release(self, ti: int, now: float) -> None:
        """Free ``ti``'s slot (if it held one) and start the next waiting instance."""
        slot_of = self.slot_of
        if ti not in slot_of:  # still waiting: it is skipped when its turn comes
            return
        pool = slot_of.pop(ti)
        cluster = self.cluster
        cluster.running -= 1
        cluster.busy_area += now
        if pool is None:
            return
        waiting = cluster.waiting[pool]
        if waiting:
            ti_status = self.server.ti_status
            while waiting:
                nxt = waiting.popleft()
                if ti_status[nxt] == "O":
                    self._start(nxt, pool, now)
                    return
        cluster.free[pool] += 1

    def _count(self, kind: str) -> None:
        self.outcomes[kind] = self.outcomes.get(kind, 0) + 1

    def die(self) -> None:
        """The distributor process died: no more polls (running workers go on)."""
        self.alive = False
