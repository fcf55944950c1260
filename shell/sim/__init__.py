"""``swarmfold simulate``: the production core against a simulated Jobmon server and cluster.

- :mod:`.scenario` — the scenario file format, its validation, and the compiled ``Scenario``;
- :mod:`.server_model` — the server side of Jobmon 3.6 (task, task-instance and workflow-run
  state machines, incremental syncs with 1-second ``status_date``, terminate, reaper);
- :mod:`.cluster` — the distributor (polls, launches) and the cluster (slots, durations);
- :mod:`.driver` — the virtual clock: a heap of ``(t, prio, seq, item)``, one seeded RNG;
- :mod:`.invariants` — online checks (limits, dependencies, double queueing, lost tasks);
- :mod:`.report` — the report, its text/JSON rendering and the timeline CSV.

Nothing here reads the wall clock or a global RNG: a ``(scenario, seed)`` pair gives the same
event log and the same report, byte for byte.
"""

from swarmfold.shell.sim.driver import SimResult, SimulationError, simulate
from swarmfold.shell.sim.report import SimReport
from swarmfold.shell.sim.scenario import Scenario, ScenarioError, load_scenario, scenario_to_topology

__all__ = [
    "Scenario",
    "ScenarioError",
    "SimReport",
    "SimResult",
    "SimulationError",
    "load_scenario",
    "scenario_to_topology",
    "simulate",
]
