"""The scenario format as types: the file's classes, the compiled ``Scenario``, ``ScenarioError``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
from attrs import field, frozen

from swarmfold.core.config import JOBMON_MAX_BATCH_SIZE, UNLIMITED, SwarmConfig
from swarmfold.core.resources import ResourceValue, Scale
from swarmfold.core.topology import (
    TopologySpec,
)

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


#: The swarm's knobs a scenario's ``workflow`` holds: the fields it shares with ``SwarmConfig``.
CONFIG_FIELDS: tuple[str, ...] = tuple(
    f.name for f in attrs.fields(WorkflowSettings) if f.name in attrs.fields_dict(SwarmConfig)
)


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
