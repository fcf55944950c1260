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

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from swarmfold.core.config import JOBMON_MAX_BATCH_SIZE, UNLIMITED, SwarmConfig
from swarmfold.core.errors import InvalidTopology
from swarmfold.core.resources import ResourceValue, Scale
from swarmfold.core.topology import (
    DEFAULT_RESOURCE_SCALES,
    ArraySpec,
    QueueSpec,
    ResourceSetSpec,
    TaskSpec,
    TopologySpec,
    build_topology,
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
]

#: Attempt outcomes and the task-instance status each one reports (spec §1.2).
OUTCOMES: Mapping[str, str] = {"done": "D", "error": "E", "resource_error": "Z", "fatal": "F"}
#: The swarm's server routes (spec §11), as named in latencies, faults and the report.
ROUTES: tuple[str, ...] = (
    "queue_task_batch",
    "bind_resources",
    "log_heartbeat",
    "update_status",
    "set_status_for_triaging",
    "task_status_updates",
    "get_max_concurrently_running",
    "get_array_max_concurrently_running",
    "terminate_task_instances",
)
DISTRIBUTIONS = ("fixed", "uniform", "exponential", "lognormal")
#: Initial task statuses a scenario may give (a new run's tasks are G, D from a previous run, or A).
INITIAL_STATUSES = ("G", "A", "D")


class ScenarioError(ValueError):
    """A scenario that cannot be simulated; ``errors`` holds one ``$.path: problem`` per line."""

    def __init__(self, errors: Sequence[str], source: str = "") -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + e for e in self.errors))


# --- the file format ------------------------------------------------------------------------


@frozen
class WorkflowSettings:
    """The workflow and the swarm's configuration (Jobmon defaults)."""

    workflow_id: int = 1
    workflow_run_id: int = 1
    limit: int = UNLIMITED
    heartbeat_interval: float = 30.0
    report_by_buffer: float = 3.1
    timeout: float = 36000.0
    fail_fast: bool = False
    wedged_sync_interval: float = 600.0
    max_batch_size: int = JOBMON_MAX_BATCH_SIZE
    fail_after_n_executions: int | None = None
    adaptive_batching: bool = False
    target_batch_seconds: float = 1.0


@frozen
class QueueDef:
    name: str
    queue_id: int = 0
    cluster_id: int = 0
    bounds: dict[str, tuple[float, float]] = field(factory=dict)


@frozen
class DurationModel:
    """How long an attempt runs: ``fixed`` (``seconds``), ``uniform`` (``low``, ``high``),
    ``exponential`` (``mean``) or ``lognormal`` (``median``, ``sigma``)."""

    distribution: str = "fixed"
    seconds: float | None = None
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    median: float | None = None
    sigma: float | None = None


@frozen
class FailureModel:
    """Per-attempt outcome probabilities; the rest of the mass is ``done``."""

    error: float = 0.0
    resource_error: float = 0.0
    fatal: float = 0.0


@frozen
class ArrayDef:
    array_id: int
    name: str = ""
    limit: int = UNLIMITED
    duration: DurationModel | None = None
    failures: FailureModel = FailureModel()


@frozen
class ResourceSetDef:
    resource_set_id: int
    queue: str
    requested: dict[str, ResourceValue] = field(factory=dict)


@frozen
class Attempt:
    """One attempt's outcome (``done``/``error``/``resource_error``/``fatal``) and run time."""

    outcome: str
    duration: float


@frozen
class TaskDef:
    task_id: int
    array_id: int
    resource_set_id: int
    upstream_ids: tuple[int, ...] = ()
    max_attempts: int = 3
    status: str = "G"
    resource_scales: dict[str, Scale] | None = None
    fallback_queues: tuple[str, ...] | None = None
    duration: float | None = None
    attempts: tuple[Attempt, ...] | None = None
    needs: dict[str, float] | None = None


@frozen
class ClusterSettings:
    """Slots: ``slots`` in total, or ``queue_slots`` per queue; neither means unlimited."""

    slots: int | None = None
    queue_slots: dict[str, int] | None = None


@frozen
class DistributorSettings:
    poll_interval: float = 10.0
    start_delay: float = 0.0


@frozen
class ServerSettings:
    reaper_poll_interval: float = 300.0
    task_instance_heartbeat_interval: float = 90.0


@frozen
class RouteLatency:
    """``(seconds + per_task * n) * uniform(1 - jitter, 1 + jitter)``; ``n`` = tasks in a batch."""

    seconds: float = 0.02
    jitter: float = 0.5
    per_task: float = 0.0


@frozen
class LatencySettings:
    default: RouteLatency = RouteLatency()
    routes: dict[str, RouteLatency] = field(factory=dict)

    def of(self, route: str) -> RouteLatency:
        return self.routes.get(route, self.default)


@frozen
class LimitChange:
    """At ``at``, the server's limit becomes ``limit``: the workflow's, or ``array_id``'s."""

    at: float
    limit: int
    array_id: int | None = None


@frozen
class ResumeSignal:
    """At ``at``, another process asks to resume the workflow: ``cold`` (C) or ``hot`` (H)."""

    at: float
    mode: str


@frozen
class FaultProfile:
    """Fault knobs; everything off by default. ``routes`` limits request faults to some routes.

    - ``request_failure_rate``: a request fails before the server sees it (a 5xx answer);
    - ``response_loss_rate``: the server does the work, but the answer is lost (a failure);
    - ``timeout_rate``: the server does the work, but the answer never comes back: the client
      gives up after ``request_timeout`` seconds (a failure);
    - ``request_timeout``: the client's timeout: a request whose answer would take longer
      (latency spikes, late reports) fails after this many seconds (None: the client waits);
    - ``latency_spike_rate`` / ``latency_spike_seconds``: extra latency on some requests;
    - ``late_report_rate`` / ``late_report_seconds``: a status answer is delivered up to
      ``late_report_seconds`` after the server computed it (stale by then); past
      ``request_timeout`` the swarm first gets a failure and the answer arrives afterwards;
    - ``duplicate_report_rate``: a status answer also carries the entries of an earlier status
      answer again (duplicated, or stale when the task has moved on since);
    - ``heartbeat_failure_rate``: a heartbeat fails (a 5xx answer), on top of the request faults;
    - ``lost_worker_rate``: a running worker dies silently half-way (triage, then U);
    - ``distributor_dies_at``: the distributor process dies at that time;
    - ``limit_changes_per_hour``: random changes of the workflow's or an array's limit on the
      server (a Poisson process over virtual time);
    - ``resumes_per_hour``: random resume signals (cold or hot) from another process.
    """

    request_failure_rate: float = 0.0
    response_loss_rate: float = 0.0
    lost_worker_rate: float = 0.0
    latency_spike_rate: float = 0.0
    latency_spike_seconds: float = 0.0
    distributor_dies_at: float | None = None
    routes: tuple[str, ...] | None = None
    timeout_rate: float = 0.0
    request_timeout: float | None = None
    late_report_rate: float = 0.0
    late_report_seconds: float = 0.0
    duplicate_report_rate: float = 0.0
    heartbeat_failure_rate: float = 0.0
    limit_changes_per_hour: float = 0.0
    resumes_per_hour: float = 0.0

    @property
    def any_request_faults(self) -> bool:
        return bool(
            self.request_failure_rate
            or self.response_loss_rate
            or self.latency_spike_rate
            or self.timeout_rate
            or self.request_timeout is not None
        )

    @property
    def any_report_faults(self) -> bool:
        return bool(self.late_report_rate or self.duplicate_report_rate)

    @property
    def any(self) -> bool:
        """True if any fault is switched on."""
        return self != FaultProfile()


@frozen
class ScenarioFile:
    """The top-level object of a scenario file."""

    tasks: tuple[TaskDef, ...]
    arrays: tuple[ArrayDef, ...]
    resource_sets: tuple[ResourceSetDef, ...]
    queues: tuple[QueueDef, ...] = ()
    name: str = ""
    seed: int = 0
    workflow: WorkflowSettings = WorkflowSettings()
    default_resource_scales: dict[str, Scale] | None = None
    cluster: ClusterSettings = ClusterSettings()
    distributor: DistributorSettings = DistributorSettings()
    server: ServerSettings = ServerSettings()
    latency: LatencySettings = LatencySettings()
    limit_changes: tuple[LimitChange, ...] = ()
    resumes: tuple[ResumeSignal, ...] = ()
    faults: FaultProfile = FaultProfile()


# --- the compiled scenario ----------------------------------------------------------------


@frozen
class ArrayModel:
    """What the simulation draws attempts from for the tasks of one array."""

    duration: DurationModel | None = None
    failures: FailureModel = FailureModel()


@frozen
class TaskPlan:
    """What one task does, when the array's model is not enough.

    ``attempts[k]`` is the ``k``-th attempt of the task in this simulation (the last one
    repeats); else ``duration`` with the array's failure model; ``needs`` are resource values
    below which an attempt ends in a resource error half-way through.
    """

    duration: float | None = None
    attempts: tuple[Attempt, ...] = ()
    needs: tuple[tuple[str, float], ...] = ()


@frozen(eq=False)
class Scenario:
    """Everything one simulation needs. Build it with ``load_scenario`` or in memory."""

    topology: TopologySpec
    config: SwarmConfig = SwarmConfig()
    workflow_id: int = 1
    workflow_run_id: int = 1
    name: str = ""
    seed: int = 0
    array_models: Mapping[int, ArrayModel] = field(factory=dict)
    task_plans: Mapping[int, TaskPlan] = field(factory=dict)
    cluster: ClusterSettings = ClusterSettings()
    distributor: DistributorSettings = DistributorSettings()
    server: ServerSettings = ServerSettings()
    latency: LatencySettings = LatencySettings()
    limit_changes: tuple[LimitChange, ...] = ()
    resumes: tuple[ResumeSignal, ...] = ()
    faults: FaultProfile = FaultProfile()
    source: str = ""


def scenario_to_topology(scenario: Scenario) -> TopologySpec:
    """The core's topology of a scenario (its limits included)."""
    return scenario.topology


# --- loading ----------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read, decode and validate a scenario file. Raises ``ScenarioError``."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"cannot read: {exc.strerror or exc}"], source) from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ScenarioError([f"$: invalid JSON: {exc}"], source) from exc
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
    errors = _Checker(file).run()
    if errors:
        raise ScenarioError(errors, source)
    w = file.workflow
    config = SwarmConfig(
        heartbeat_interval=w.heartbeat_interval,
        report_by_buffer=w.report_by_buffer,
        wedged_sync_interval=w.wedged_sync_interval,
        fail_fast=w.fail_fast,
        timeout=w.timeout,
        fail_after_n_executions=w.fail_after_n_executions,
        max_batch_size=w.max_batch_size,
        adaptive_batching=w.adaptive_batching,
        target_batch_seconds=w.target_batch_seconds,
    )
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


class _Checker:
    """The semantic checks; every problem becomes one ``$.path: message`` line."""

    def __init__(self, file: ScenarioFile) -> None:
        self.file = file
        self.errors: list[str] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def positive(self, path: str, value: float | int | None) -> None:
        if value is not None and not value > 0:
            self.err(path, f"must be > 0, got {value!r}")

    def non_negative(self, path: str, value: float | int | None) -> None:
        if value is not None and not value >= 0:
            self.err(path, f"must be >= 0, got {value!r}")

    def probability(self, path: str, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            self.err(path, f"must be a probability in [0, 1], got {value!r}")

    def finite(self, path: str, value: float | None) -> bool:
        if value is not None and not math.isfinite(value):
            self.err(path, f"must be a finite number, got {value!r}")
            return False
        return True

    def run(self) -> list[str]:
        f = self.file
        self.check_workflow(f.workflow)
        queue_names = self.check_queues(f.queues)
        arrays = self.check_arrays(f.arrays)
        known_queues = set(queue_names) | {rs.queue for rs in f.resource_sets}
        resource_sets = self.check_resource_sets(f.resource_sets, queue_names)
        self.check_scales("$.default_resource_scales", f.default_resource_scales)
        self.check_tasks(f.tasks, arrays, resource_sets, queue_names)
        self.check_cluster(f.cluster, known_queues)
        self.positive("$.distributor.poll_interval", f.distributor.poll_interval)
        self.non_negative("$.distributor.start_delay", f.distributor.start_delay)
        self.positive("$.server.reaper_poll_interval", f.server.reaper_poll_interval)
        self.positive("$.server.task_instance_heartbeat_interval", f.server.task_instance_heartbeat_interval)
        self.check_latency(f.latency)
        for k, change in enumerate(f.limit_changes):
            p = f"$.limit_changes[{k}]"
            self.non_negative(f"{p}.at", change.at)
            self.non_negative(f"{p}.limit", change.limit)
            if change.array_id is not None and change.array_id not in arrays:
                self.err(f"{p}.array_id", f"unknown array id {change.array_id}")
        for k, signal in enumerate(f.resumes):
            p = f"$.resumes[{k}]"
            self.non_negative(f"{p}.at", signal.at)
            if signal.mode not in ("cold", "hot"):
                self.err(f"{p}.mode", f"expected 'cold' or 'hot', got {signal.mode!r}")
        self.check_faults(f.faults)
        return self.errors

    def check_workflow(self, w: WorkflowSettings) -> None:
        p = "$.workflow"
        self.non_negative(f"{p}.limit", w.limit)
        for name in ("heartbeat_interval", "report_by_buffer", "timeout", "target_batch_seconds"):
            value = getattr(w, name)
            if self.finite(f"{p}.{name}", value):
                self.positive(f"{p}.{name}", value)
        self.positive(f"{p}.max_batch_size", w.max_batch_size)
        self.positive(f"{p}.fail_after_n_executions", w.fail_after_n_executions)

    def check_queues(self, queues: Sequence[QueueDef]) -> dict[str, int]:
        names: dict[str, int] = {}
        for k, q in enumerate(queues):
            if q.name in names:
                self.err(
                    f"$.queues[{k}].name", f"duplicate queue name {q.name!r} (also $.queues[{names[q.name]}])"
                )
            else:
                names[q.name] = k
            for resource, (low, high) in q.bounds.items():
                if low > high:
                    self.err(f"$.queues[{k}].bounds[{resource!r}]", f"min {low!r} is above max {high!r}")
        return names

    def check_arrays(self, arrays: Sequence[ArrayDef]) -> dict[int, int]:
        ids: dict[int, int] = {}
        for k, a in enumerate(arrays):
            p = f"$.arrays[{k}]"
            if a.array_id in ids:
                self.err(
                    f"{p}.array_id", f"duplicate array id {a.array_id} (also $.arrays[{ids[a.array_id]}])"
                )
            else:
                ids[a.array_id] = k
            self.non_negative(f"{p}.limit", a.limit)
            if a.duration is not None:
                self.check_duration(f"{p}.duration", a.duration)
            self.check_failures(f"{p}.failures", a.failures)
        return ids

    def check_duration(self, p: str, d: DurationModel) -> None:
        needed = {
            "fixed": ("seconds",),
            "uniform": ("low", "high"),
            "exponential": ("mean",),
            "lognormal": ("median", "sigma"),
        }.get(d.distribution)
        if needed is None:
            self.err(
                f"{p}.distribution", f"expected one of {', '.join(DISTRIBUTIONS)}, got {d.distribution!r}"
            )
            return
        for name in ("seconds", "low", "high", "mean", "median", "sigma"):
            value = getattr(d, name)
            if name in needed:
                if value is None:
                    self.err(f"{p}.{name}", f"required for distribution {d.distribution!r}")
                elif self.finite(f"{p}.{name}", value):
                    self.non_negative(f"{p}.{name}", value)
            elif value is not None:
                self.err(f"{p}.{name}", f"not used by distribution {d.distribution!r}")
        if d.distribution == "uniform" and d.low is not None and d.high is not None and d.low > d.high:
            self.err(f"{p}.low", f"{d.low!r} is above high {d.high!r}")
        if d.distribution == "lognormal" and d.median is not None and d.median <= 0:
            self.err(f"{p}.median", f"must be > 0, got {d.median!r}")

    def check_failures(self, p: str, fm: FailureModel) -> None:
        for name in ("error", "resource_error", "fatal"):
            self.probability(f"{p}.{name}", getattr(fm, name))
        total = fm.error + fm.resource_error + fm.fatal
        if total > 1.0 + 1e-12:
            self.err(p, f"error + resource_error + fatal must be <= 1, got {total!r}")

    def check_resource_sets(
        self, sets: Sequence[ResourceSetDef], queues: Mapping[str, int]
    ) -> dict[int, int]:
        ids: dict[int, int] = {}
        for k, rs in enumerate(sets):
            p = f"$.resource_sets[{k}]"
            if rs.resource_set_id in ids:
                first = ids[rs.resource_set_id]
                self.err(
                    f"{p}.resource_set_id",
                    f"duplicate resource set id {rs.resource_set_id} (also $.resource_sets[{first}])",
                )
            else:
                ids[rs.resource_set_id] = k
            if queues and rs.queue not in queues:
                self.err(f"{p}.queue", f"unknown queue {rs.queue!r}")
        return ids

    def check_scales(self, p: str, scales: Mapping[str, Scale] | None) -> None:
        for resource, scale in (scales or {}).items():
            if isinstance(scale, str):
                self.err(
                    f"{p}[{resource!r}]",
                    f"callable scale {scale!r} is not supported by the simulator; give a number or a list",
                )
            elif isinstance(scale, int | float) and not scale >= 0:
                self.err(f"{p}[{resource!r}]", f"must be >= 0, got {scale!r}")

    def check_tasks(
        self,
        tasks: Sequence[TaskDef],
        arrays: Mapping[int, int],
        resource_sets: Mapping[int, int],
        queues: Mapping[str, int],
    ) -> None:
        ids: dict[int, int] = {}
        for k, t in enumerate(tasks):
            if t.task_id in ids:
                self.err(
                    f"$.tasks[{k}].task_id", f"duplicate task id {t.task_id} (also $.tasks[{ids[t.task_id]}])"
                )
            else:
                ids[t.task_id] = k
        models = {a.array_id: a for a in self.file.arrays}
        for k, t in enumerate(tasks):
            p = f"$.tasks[{k}]"
            if t.array_id not in arrays:
                self.err(f"{p}.array_id", f"unknown array id {t.array_id}")
            if t.resource_set_id not in resource_sets:
                self.err(f"{p}.resource_set_id", f"unknown resource set id {t.resource_set_id}")
            for j, up in enumerate(t.upstream_ids):
                if up not in ids:
                    self.err(f"{p}.upstream_ids[{j}]", f"unknown task id {up}")
            self.positive(f"{p}.max_attempts", t.max_attempts)
            if t.status not in INITIAL_STATUSES:
                self.err(f"{p}.status", f"expected one of {', '.join(INITIAL_STATUSES)}, got {t.status!r}")
            self.check_scales(f"{p}.resource_scales", t.resource_scales)
            for j, q in enumerate(t.fallback_queues or ()):
                if queues and q not in queues:
                    self.err(f"{p}.fallback_queues[{j}]", f"unknown queue {q!r}")
            if t.duration is not None and self.finite(f"{p}.duration", t.duration):
                self.non_negative(f"{p}.duration", t.duration)
            if t.attempts is not None and not t.attempts:
                self.err(f"{p}.attempts", "must list at least one attempt (or be left out)")
            for j, attempt in enumerate(t.attempts or ()):
                if attempt.outcome not in OUTCOMES:
                    self.err(
                        f"{p}.attempts[{j}].outcome",
                        f"expected one of {', '.join(OUTCOMES)}, got {attempt.outcome!r}",
                    )
                if self.finite(f"{p}.attempts[{j}].duration", attempt.duration):
                    self.non_negative(f"{p}.attempts[{j}].duration", attempt.duration)
            for resource, value in (t.needs or {}).items():
                self.finite(f"{p}.needs[{resource!r}]", value)
            model = models.get(t.array_id)
            if not t.attempts and t.duration is None and model is not None and model.duration is None:
                self.err(
                    p,
                    f"task {t.task_id} has no duration: give 'attempts' or 'duration', "
                    f"or a duration model on array {t.array_id}",
                )

    def check_cluster(self, c: ClusterSettings, queues: set[str]) -> None:
        if c.slots is not None and c.queue_slots is not None:
            self.err("$.cluster", "give either 'slots' (in total) or 'queue_slots' (per queue), not both")
        self.positive("$.cluster.slots", c.slots)
        for name, slots in (c.queue_slots or {}).items():
            if name not in queues:
                self.err(f"$.cluster.queue_slots[{name!r}]", f"unknown queue {name!r}")
            self.non_negative(f"$.cluster.queue_slots[{name!r}]", slots)

    def check_route_latency(self, p: str, r: RouteLatency) -> None:
        for name in ("seconds", "per_task"):
            value = getattr(r, name)
            if self.finite(f"{p}.{name}", value):
                self.non_negative(f"{p}.{name}", value)
        if not 0.0 <= r.jitter <= 1.0:
            self.err(f"{p}.jitter", f"must be in [0, 1], got {r.jitter!r}")

    def check_latency(self, lat: LatencySettings) -> None:
        self.check_route_latency("$.latency.default", lat.default)
        for route, r in lat.routes.items():
            p = f"$.latency.routes[{route!r}]"
            if route not in ROUTES:
                self.err(p, f"unknown route {route!r}; expected one of: {', '.join(ROUTES)}")
            self.check_route_latency(p, r)

    def check_faults(self, fp: FaultProfile) -> None:
        p = "$.faults"
        for name in (
            "request_failure_rate", "response_loss_rate", "lost_worker_rate", "latency_spike_rate",
            "timeout_rate", "late_report_rate", "duplicate_report_rate", "heartbeat_failure_rate",
        ):
            self.probability(f"{p}.{name}", getattr(fp, name))
        if fp.request_failure_rate + fp.response_loss_rate + fp.timeout_rate > 1.0:
            self.err(p, "request_failure_rate + response_loss_rate + timeout_rate must be <= 1")
        for name in (
            "latency_spike_seconds", "late_report_seconds", "limit_changes_per_hour", "resumes_per_hour"
        ):
            value = getattr(fp, name)
            if self.finite(f"{p}.{name}", value):
                self.non_negative(f"{p}.{name}", value)
        self.non_negative(f"{p}.distributor_dies_at", fp.distributor_dies_at)
        if fp.request_timeout is not None and self.finite(f"{p}.request_timeout", fp.request_timeout):
            self.positive(f"{p}.request_timeout", fp.request_timeout)
        if fp.timeout_rate and fp.request_timeout is None:
            self.err(f"{p}.request_timeout", "required when timeout_rate is above 0 (the client's timeout)")
        for j, route in enumerate(fp.routes or ()):
            if route not in ROUTES:
                self.err(f"{p}.routes[{j}]", f"unknown route {route!r}; expected one of: {', '.join(ROUTES)}")


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
            heartbeat_interval=c.heartbeat_interval,
            report_by_buffer=c.report_by_buffer,
            timeout=c.timeout,
            fail_fast=c.fail_fast,
            wedged_sync_interval=c.wedged_sync_interval,
            max_batch_size=c.max_batch_size,
            fail_after_n_executions=c.fail_after_n_executions,
            adaptive_batching=c.adaptive_batching,
            target_batch_seconds=c.target_batch_seconds,
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
