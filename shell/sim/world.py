"""The simulated world's timed events and their loop step, shared by the simulation driver and
``serve``.

Both keep a heap of ``(t, priority, seq, kind, payload)``. At one instant, lower priorities
go first: scripted signals, then workers, then distributor polls, then the reaper (the
driver adds answers, wake-ups and samples after those).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarmfold.core.topology import Topology
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.cluster import END, LOST, START, Distributor
from swarmfold.shell.sim.scenario import LimitChange, ResumeSignal, Scenario

PRIO_SIGNAL = 0
PRIO_WORKER = 1
PRIO_POLL = 2
PRIO_REAP = 3

POLL = "poll"
REAP = "reap"
LIMIT = "limit"
RESUME = "resume"
DISTRIBUTOR_DIES = "distributor_dies"

Push = Callable[[float, int, str, Any], None]


def server_for(scenario: Scenario, topology: Topology) -> ServerModel:
    """The server model of ``scenario``'s workflow run, already launched (``O``): the
    distributor has moved it ``B -> I -> O`` and the swarm's ``R`` is legal."""
    config = scenario.config
    return ServerModel(
        topology,
        workflow_id=scenario.workflow_id,
        workflow_run_id=scenario.workflow_run_id,
        run_status="O",
        heartbeat_increment=config.next_report_increment,
        ti_report_increment=scenario.server.task_instance_heartbeat_interval * config.report_by_buffer,
    )


def schedule_scripted_world(scenario: Scenario, push: Push) -> None:
    """Push the scenario's scripted events and the first distributor poll and reaper pass."""
    for change in scenario.limit_changes:
        push(change.at, PRIO_SIGNAL, LIMIT, change)
    for signal in scenario.resumes:
        push(signal.at, PRIO_SIGNAL, RESUME, signal)
    if scenario.faults.distributor_dies_at is not None:
        push(scenario.faults.distributor_dies_at, PRIO_SIGNAL, DISTRIBUTOR_DIES, None)
    push(scenario.distributor.poll_interval, PRIO_POLL, POLL, None)
    push(scenario.server.reaper_poll_interval, PRIO_REAP, REAP, None)


class WorldLoop:
    """The world's side of the event loop, shared by the simulation driver and ``serve``.

    A subclass has ``scenario``, ``distributor`` and ``push``, and says what a reaper pass, a
    limit change, a resume signal and the distributor's death mean to it (the driver records
    them for its report and tells the swarm; ``serve`` only changes the model). ``world_step``
    carries out one popped event of a world kind and returns False for any other kind.
    """

    scenario: Scenario
    distributor: Distributor

    def push(self, t: float, prio: int, kind: str, payload: Any) -> None:
        raise NotImplementedError

    def reap(self, t: float) -> None:
        raise NotImplementedError

    def change_limit(self, change: LimitChange) -> None:
        raise NotImplementedError

    def signal_resume(self, signal: ResumeSignal) -> None:
        raise NotImplementedError

    def distributor_died(self, t: float) -> None:
        self.distributor.die()

    def world_step(self, kind: str, payload: Any, t: float) -> bool:
        """Carry out one world event (workers, distributor polls, the reaper, scripted
        signals); False if ``kind`` is not one."""
        if kind is END:
            self.distributor.worker_ended(payload[0], payload[1], t)
        elif kind is START:
            self.distributor.worker_started(payload, t)
        elif kind is POLL:
            self.distributor.poll(t)
            self.push(t + self.scenario.distributor.poll_interval, PRIO_POLL, POLL, None)
        elif kind is REAP:
            self.reap(t)
            self.push(t + self.scenario.server.reaper_poll_interval, PRIO_REAP, REAP, None)
        elif kind is LOST:
            self.distributor.worker_lost(payload, t)
        elif kind is LIMIT:
            self.change_limit(payload)
        elif kind is RESUME:
            self.signal_resume(payload)
        elif kind is DISTRIBUTOR_DIES:
            self.distributor_died(t)
        else:
            return False
        return True
