"""Simulation scenarios: the JSON file format, its validation, and the compiled ``Scenario``.

The file format (documented in ``docs/scenario-format.md``) is a tree of attrs classes decoded
by the strict codec of :mod:`swarmfold.shell.log.codec`: a wrong JSON kind, a missing field or an
unknown field is reported with its JSON path. Then the semantic checks run (unknown ids,
duplicates, ranges, the dependency cycle check of ``build_topology``), again naming the JSON
path and the offending value. Every problem is collected before anything is simulated.

``load_scenario`` returns a compiled :class:`Scenario`: the core's ``TopologySpec`` and
``SwarmConfig`` plus what only the simulation needs (duration and failure models per array,
per-task plans, the cluster, the distributor, latencies, limit changes, resume signals,
faults, the seed). A ``Scenario`` can also be built in memory (``scenario_from_topology``,
used by the benchmark), and written back as a file (``scenario_to_dict``): a later
``--from-log`` only has to fill ``task_plans`` with the outcomes and durations it observed.
"""

from __future__ import annotations

from swarmfold.shell.sim.scenario.loading import compile_scenario, load_scenario, parse_scenario
from swarmfold.shell.sim.scenario.schema import (
    DISTRIBUTIONS,
    INITIAL_STATUSES,
    OUTCOMES,
    ROUTES,
    ArrayDef,
    ArrayModel,
    Attempt,
    ClusterSettings,
    DistributorSettings,
    DurationModel,
    FailureModel,
    FaultProfile,
    LatencySettings,
    LimitChange,
    QueueDef,
    ResourceSetDef,
    ResumeSignal,
    RouteLatency,
    Scenario,
    ScenarioError,
    ScenarioFile,
    ServerSettings,
    TaskDef,
    TaskPlan,
    WorkflowSettings,
    scenario_to_topology,
)
from swarmfold.shell.sim.scenario.writing import (
    dump_scenario,
    scenario_from_topology,
    scenario_to_dict,
    scenario_to_file,
    with_limits,
)

__all__ = [
    "OUTCOMES",
    "ROUTES",
    "ArrayDef",
    "ArrayModel",
    "Attempt",
    "ClusterSettings",
    "DistributorSettings",
    "DurationModel",
    "FailureModel",
    "FaultProfile",
    "LatencySettings",
    "LimitChange",
    "QueueDef",
    "ResourceSetDef",
    "ResumeSignal",
    "RouteLatency",
    "Scenario",
    "ScenarioError",
    "ScenarioFile",
    "ServerSettings",
    "TaskDef",
    "TaskPlan",
    "WorkflowSettings",
    "compile_scenario",
    "dump_scenario",
    "load_scenario",
    "parse_scenario",
    "scenario_from_topology",
    "scenario_to_dict",
    "scenario_to_topology",
    "with_limits",
    "DISTRIBUTIONS",
    "INITIAL_STATUSES",
    "scenario_to_file",
]
