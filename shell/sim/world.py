"""The simulated world's timed events, shared by the simulation driver and ``serve``.

Both keep a heap of ``(t, priority, seq, kind, payload)``. At one instant, lower priorities
go first: scripted signals, then workers, then distributor polls, then the reaper (the
driver adds answers, wake-ups and samples after those).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarmfold.shell.sim.scenario import Scenario

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
