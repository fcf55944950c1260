"""``swarmfold simulate``: the production core against a simulated Jobmon server and cluster.

- :mod:`.scenario` — the scenario file format, its validation, and the compiled ``Scenario``;
- :mod:`swarmfold.shell.server.model` — the server side of Jobmon 3.6 (task, task-instance and workflow-run
  state machines, incremental syncs with 1-second ``status_date``, terminate, reaper);
- :mod:`.cluster` — the distributor (polls, launches) and the cluster (slots, durations);
- :mod:`.driver` — the virtual clock: a heap of ``(t, prio, seq, item)``, one seeded RNG;
- :mod:`.invariants` — online checks (limits, dependencies, double queueing, lost tasks);
- :mod:`.report` — the report, its text/JSON rendering and the timeline CSV;
- :mod:`.faults` — seeded fault profiles (swarm testing), how runs end, many-seed runs;
- :mod:`.sweep` — the ``sweep`` subcommand: what-if grids of limits in parallel processes;
- :mod:`.from_log` — a scenario from a recorded run (``--from-log``, ``scenario-from-log``);
- :mod:`.plot` — PNG plots of a run and of a sweep (the optional ``plot`` extra);
- :mod:`.command` — the ``simulate`` subcommand.

Nothing here reads the wall clock or a global RNG: a ``(scenario, seed)`` pair gives the same
event log and the same report, byte for byte.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Scenario": "scenario",
    "ScenarioError": "scenario",
    "load_scenario": "scenario",
    "scenario_to_topology": "scenario",
    "SimReport": "report",
    "SimResult": "driver",
    "SimulationError": "driver",
    "simulate": "driver",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the public names lazily, so ``swarmfold --help`` stays fast."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
