"""The semantic checks of a decoded scenario file, each naming its JSON path and value."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from swarmfold.core.resources import Scale
from swarmfold.shell.sim.scenario.schema import (
    DISTRIBUTIONS,
    INITIAL_STATUSES,
    OUTCOMES,
    ROUTES,
    ArrayDef,
    ClusterSettings,
    DurationModel,
    FailureModel,
    FaultProfile,
    LatencySettings,
    QueueDef,
    ResourceSetDef,
    RouteLatency,
    ScenarioFile,
    TaskDef,
    WorkflowSettings,
)


class ScenarioChecker:
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
