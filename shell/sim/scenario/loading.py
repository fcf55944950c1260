"""Reading a scenario: JSON, decoding with the strict codec, the checks, compiling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swarmfold.core.config import SwarmConfig
from swarmfold.core.errors import InvalidTopology
from swarmfold.core.topology import (
    DEFAULT_RESOURCE_SCALES,
    ArraySpec,
    QueueSpec,
    ResourceSetSpec,
    TaskSpec,
    TopologySpec,
    build_topology,
)
from swarmfold.shell.sim.scenario.checks import ScenarioChecker
from swarmfold.shell.sim.scenario.schema import (
    CONFIG_FIELDS,
    ArrayModel,
    Scenario,
    ScenarioError,
    ScenarioFile,
    TaskPlan,
)

#: The largest scenario file read (about ten million tasks): a larger one is a ``ScenarioError``,
#: not a read that exhausts memory.
MAX_SCENARIO_BYTES = 1 << 30

# --- loading ----------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read, decode and validate a scenario file. Raises ``ScenarioError``."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SCENARIO_BYTES + 1)
        if len(raw) > MAX_SCENARIO_BYTES:
            raise ScenarioError([f"$: file larger than {MAX_SCENARIO_BYTES:,} bytes: not a scenario"], source)
        text = raw.decode("utf-8")
    except OSError as exc:
        raise ScenarioError([f"cannot read: {exc.strerror or exc}"], source) from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError([f"$: not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"],
                            source) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ScenarioError([f"$: invalid JSON: {exc}"], source) from exc
    except RecursionError:
        raise ScenarioError(["$: invalid JSON: nested too deeply to decode"], source) from None
    return parse_scenario(data, source)


def parse_scenario(data: Any, source: str = "") -> Scenario:
    """Decode and validate scenario data (as from ``json.loads``). Raises ``ScenarioError``."""
    from swarmfold.shell.log.codec import CodecError, structure
    from swarmfold.shell.sim.fold_format import is_fold_format, scenario_from_fold_format

    if is_fold_format(data):  # the old ``fold`` shape, through its converter
        scenario: Scenario = scenario_from_fold_format(data, source)
        return scenario
    try:
        file: ScenarioFile = structure(data, ScenarioFile)
    except CodecError as exc:
        raise ScenarioError(exc.errors, source) from exc
    return compile_scenario(file, source)


def compile_scenario(file: ScenarioFile, source: str = "") -> Scenario:
    """Check a decoded file and build the ``Scenario``. Raises ``ScenarioError``."""
    errors = ScenarioChecker(file).run()
    if errors:
        raise ScenarioError(errors, source)
    w = file.workflow
    config = SwarmConfig(**{name: getattr(w, name) for name in CONFIG_FIELDS})
    topology = TopologySpec(
        tasks=tuple(
            TaskSpec(
                task_id=t.task_id,
                array_id=t.array_id,
                resource_set_id=t.resource_set_id,
                upstream_ids=t.upstream_ids,
                max_attempts=t.max_attempts,
                status=t.status,
                resource_scales=t.resource_scales,
                fallback_queues=t.fallback_queues,
            )
            for t in file.tasks
        ),
        arrays=tuple(ArraySpec(a.array_id, a.name, a.limit) for a in file.arrays),
        resource_sets=tuple(
            ResourceSetSpec(rs.resource_set_id, rs.queue, rs.requested) for rs in file.resource_sets
        ),
        queues=tuple(QueueSpec(q.name, q.queue_id, q.cluster_id, q.bounds) for q in file.queues),
        workflow_limit=w.limit,
        default_resource_scales=(
            DEFAULT_RESOURCE_SCALES if file.default_resource_scales is None else file.default_resource_scales
        ),
    )
    try:
        build_topology(topology)
    except InvalidTopology as exc:  # what the checks above leave: a dependency cycle
        raise ScenarioError([f"$.tasks: {exc}"], source) from exc
    plans = {
        t.task_id: TaskPlan(
            duration=t.duration,
            attempts=t.attempts or (),
            needs=tuple(sorted((t.needs or {}).items())),
        )
        for t in file.tasks
        if t.duration is not None or t.attempts or t.needs
    }
    return Scenario(
        topology=topology,
        config=config,
        workflow_id=w.workflow_id,
        workflow_run_id=w.workflow_run_id,
        name=file.name or (Path(source).stem if source else ""),
        seed=file.seed,
        array_models={a.array_id: ArrayModel(a.duration, a.failures) for a in file.arrays},
        task_plans=plans,
        cluster=file.cluster,
        distributor=file.distributor,
        server=file.server,
        latency=file.latency,
        limit_changes=file.limit_changes,
        resumes=file.resumes,
        faults=file.faults,
        source=source,
    )
