"""Scenarios built in memory, overridden limits, and the file form written back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from swarmfold.core.config import SwarmConfig
from swarmfold.core.topology import (
    TaskSpec,
    TopologySpec,
)
from swarmfold.shell.sim.scenario.schema import (
    CONFIG_FIELDS,
    ArrayDef,
    ArrayModel,
    FailureModel,
    QueueDef,
    ResourceSetDef,
    Scenario,
    ScenarioError,
    ScenarioFile,
    TaskDef,
    WorkflowSettings,
)

# --- building in memory, overriding, writing back ---------------------------------------------


def scenario_from_topology(
    topology: TopologySpec,
    *,
    config: SwarmConfig | None = None,
    array_models: Mapping[int, ArrayModel] | None = None,
    **settings: Any,
) -> Scenario:
    """A scenario around an existing topology (the benchmark's reference workload, a log's).

    ``settings`` are any other ``Scenario`` fields (``cluster``, ``distributor``, ``seed``...).
    No per-task object is created, so this scales to millions of tasks.
    """
    return Scenario(
        topology=topology,
        config=config or SwarmConfig(),
        array_models=dict(array_models or {}),
        **settings,
    )


def with_limits(
    scenario: Scenario,
    workflow_limit: int | None = None,
    array_limits: Mapping[int, int] | None = None,
) -> Scenario:
    """The scenario with its workflow and/or array limits replaced (CLI overrides)."""
    errors: list[str] = []
    if workflow_limit is not None and workflow_limit < 0:
        errors.append(f"--workflow-limit: must be >= 0, got {workflow_limit}")
    known = {a.array_id for a in scenario.topology.arrays}
    for array_id, limit in (array_limits or {}).items():
        if array_id not in known:
            errors.append(f"--array-limit {array_id}={limit}: unknown array id {array_id}")
        elif limit < 0:
            errors.append(f"--array-limit {array_id}={limit}: must be >= 0")
    if errors:
        raise ScenarioError(errors, scenario.source)
    topology = scenario.topology
    if workflow_limit is not None:
        topology = attrs.evolve(topology, workflow_limit=workflow_limit)
    if array_limits:
        topology = attrs.evolve(
            topology,
            arrays=tuple(
                attrs.evolve(a, limit=array_limits[a.array_id]) if a.array_id in array_limits else a
                for a in topology.arrays
            ),
        )
    return attrs.evolve(scenario, topology=topology)


def scenario_to_file(scenario: Scenario) -> ScenarioFile:
    """The file form of a scenario (every task as a ``TaskDef``)."""
    spec = scenario.topology
    c = scenario.config
    plans = scenario.task_plans
    rows: list[TaskSpec] = []
    table = getattr(spec, "task_table", None)
    if table is not None:
        statuses = table.statuses or "G" * len(table)
        for i in range(len(table)):
            off = table.upstream_offsets
            rows.append(
                TaskSpec(
                    task_id=table.task_ids[i],
                    array_id=table.array_ids[i],
                    resource_set_id=table.resource_set_ids[i],
                    upstream_ids=tuple(table.upstream_ids[off[i]:off[i + 1]]),
                    max_attempts=table.max_attempts[i] if len(table.max_attempts) else 3,
                    status=statuses[i],
                )
            )
    rows.extend(spec.tasks)

    def task_def(t: TaskSpec) -> TaskDef:
        plan = plans.get(t.task_id)
        return TaskDef(
            task_id=t.task_id,
            array_id=t.array_id,
            resource_set_id=t.resource_set_id,
            upstream_ids=tuple(t.upstream_ids),
            max_attempts=t.max_attempts,
            status=t.status,
            resource_scales=None if t.resource_scales is None else dict(t.resource_scales),
            fallback_queues=t.fallback_queues,
            duration=None if plan is None else plan.duration,
            attempts=(plan.attempts or None) if plan is not None else None,
            needs=dict(plan.needs) if plan is not None and plan.needs else None,
        )

    models = scenario.array_models
    return ScenarioFile(
        name=scenario.name,
        seed=scenario.seed,
        workflow=WorkflowSettings(
            workflow_id=scenario.workflow_id,
            workflow_run_id=scenario.workflow_run_id,
            limit=spec.workflow_limit,
            **{name: getattr(c, name) for name in CONFIG_FIELDS},
        ),
        queues=tuple(
            QueueDef(q.name, q.queue_id, q.cluster_id, {r: (lo, hi) for r, lo, hi in q.bounds})
            for q in spec.queues
        ),
        arrays=tuple(
            ArrayDef(
                a.array_id,
                a.name,
                a.limit,
                models[a.array_id].duration if a.array_id in models else None,
                models[a.array_id].failures if a.array_id in models else FailureModel(),
            )
            for a in spec.arrays
        ),
        resource_sets=tuple(
            ResourceSetDef(rs.resource_set_id, rs.queue, dict(rs.requested)) for rs in spec.resource_sets
        ),
        default_resource_scales=dict(spec.default_resource_scales),
        tasks=tuple(task_def(t) for t in rows),
        cluster=scenario.cluster,
        distributor=scenario.distributor,
        server=scenario.server,
        latency=scenario.latency,
        limit_changes=scenario.limit_changes,
        resumes=scenario.resumes,
        faults=scenario.faults,
    )


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario as JSON data in the file format (``load`` of it gives the same run)."""
    from swarmfold.shell.log.codec import unstructure

    data: dict[str, Any] = unstructure(scenario_to_file(scenario))
    return data


def dump_scenario(scenario: Scenario) -> str:
    """The scenario as an indented JSON document in the file format."""
    return json.dumps(scenario_to_dict(scenario), indent=1, sort_keys=True) + "\n"
