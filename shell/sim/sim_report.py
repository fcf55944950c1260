"""What a simulation gives back beyond its log: ``SimResult``, the ``SimReport`` built at its
end, and the distributor that also records each worker's span (for plots)."""

from __future__ import annotations

import json
from typing import Any

from attrs import define, field

from swarmfold.core.commands import Command, Fail, Finish, NoteAnomaly
from swarmfold.core.events import Event
from swarmfold.core.state import SwarmState
from swarmfold.core.summary import RunSummary
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.cluster import Distributor
from swarmfold.shell.sim.faults import profile_summary
from swarmfold.shell.sim.invariants import Violation
from swarmfold.shell.sim.report import ArrayReport, SimReport, percentile, r6

__all__ = ["RecordingDistributor", "SimResult", "build_report", "record_line"]

#: How many characters of the first bad record the report keeps.
RECORD_CHARS = 2000


@define
class SimResult:
    """Everything one simulation produced."""

    report: SimReport
    summary: RunSummary
    outcome: Finish | Fail
    violations: list[Violation]
    timeline_columns: list[str]
    timeline: list[tuple[Any, ...]]
    state: SwarmState
    server: ServerModel
    anomalies: list[NoteAnomaly] = field(factory=list)
    #: Seconds spent inside ``decide`` (only with ``profile=True``; a measurement, not a result).
    decide_seconds: float | None = None
    #: What happened in the world outside the swarm: ``(t, kind, detail)``.
    world_events: list[tuple[float, str, str]] = field(factory=list)
    #: Per task instance (``record_spans=True``): ``(task_id, array_id, queued_at, started_at,
    #: ended_at, status)``; ``started_at``/``ended_at`` are None when it never started/ended.
    spans: list[tuple[int, int, float, float | None, float | None, str]] | None = None


def record_line(seq: int, event: Event, commands: tuple[Command, ...], runner_id: str) -> str:
    """The event-log line of one record, cut to ``RECORD_CHARS`` (for a violation's report)."""
    from swarmfold.shell.log.codec import unstructure

    line = json.dumps(
        {
            "commands": [unstructure(c) for c in commands],
            "event": unstructure(event),
            "runner_id": runner_id,
            "seq": seq,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return line if len(line) <= RECORD_CHARS else line[: RECORD_CHARS - 3] + "..."


def build_report(sim: Any, outcome: Finish | Fail, end: float) -> SimReport:
    """The report of a finished simulation ``sim`` (the driver's ``_Simulation``)."""
    topo = sim.topo
    summary = outcome.summary
    cluster = sim.distributor.cluster
    server = sim.server
    array_of = topo.array_of
    tasks_per_array = dict.fromkeys(topo.array_ids, 0)
    for a in array_of:
        tasks_per_array[a] += 1
    per_status: dict[str, dict[int, int]] = {}
    for code in ("D", "F"):
        counts = dict.fromkeys(topo.array_ids, 0)
        for i in server.indexes_of(summary.tasks_by_status.get(code, ())):
            counts[array_of[i]] += 1
        per_status[code] = counts
    span = end if end > 0 else 1.0
    arrays = tuple(
        ArrayReport(
            array_id=a,
            name=topo.array_names.get(a, f"array_{a}"),
            limit=server.array_limits.get(a, topo.array_limits.get(a, 0)),
            tasks=tasks_per_array[a],
            done=per_status["D"][a],
            failed=per_status["F"][a],
            peak_active=server.peak_by_array[a],
            mean_active=r6(server.area_by_array[a] / span),
        )
        for a in topo.array_ids
    )
    waits = sorted(sim.distributor.queue_waits)
    p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
    capacity = cluster.capacity
    anomalies: dict[str, int] = {}
    for note in sim.anomalies:
        anomalies[note.kind] = anomalies.get(note.kind, 0) + 1
    checker = sim.checker
    outcomes = dict(sorted(sim.distributor.outcomes.items()))
    return SimReport(
        scenario=sim.scenario.name,
        seed=sim.seed,
        final_status=summary.final_status,
        outcome="finish" if isinstance(outcome, Finish) else "fail",
        reason=summary.reason,
        makespan=r6(end),
        total_tasks=summary.total_tasks,
        done=summary.done_count,
        failed=summary.failed_count,
        attempts=len(server.ti_status),
        attempt_outcomes=outcomes,
        workflow_limit=server.workflow_limit,
        peak_active=server.peak_total,
        mean_active=r6(server.area_total / span),
        peak_running=cluster.peak_running,
        mean_running=r6(cluster.busy_area / span),
        arrays=arrays,
        cluster_slots=capacity,
        utilization=None if not capacity else r6(cluster.busy_area / (capacity * span)),
        busy_slot_seconds=r6(cluster.busy_area),
        queue_wait_p50=None if p50 is None else r6(p50),
        queue_wait_p95=None if p95 is None else r6(p95),
        requests=dict(sorted(sim.requests.items())),
        requests_total=sum(sim.requests.values()),
        full_syncs=sim.full_syncs,
        failed_requests=sim.failed_requests,
        decide_calls=sim.decides,
        commands=sim.commands,
        anomalies=dict(sorted(anomalies.items())),
        violations={} if checker is None else dict(sorted(checker.counts.items())),
        violation_examples=() if checker is None else tuple(str(v) for v in checker.violations[:10]),
        fault_profile=profile_summary(sim.scenario.faults),
        injected=dict(sorted(sim.injected.items())),
        excused={} if checker is None else dict(sorted(checker.excused.items())),
        end=sim.end_kind,
        end_detail=sim.end_detail,
        first_bad_record=sim.first_bad,
    )


class RecordingDistributor(Distributor):
    """The distributor, also keeping when each instance's worker started and ended (plots)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started_at: dict[int, float] = {}
        self.ended_at: dict[int, float] = {}

    def worker_started(self, ti: int, now: float) -> None:
        super().worker_started(ti, now)
        if ti in self.slot_of and self.server.ti_status[ti] == "R":
            self.started_at[ti] = now

    def _release(self, ti: int, now: float) -> None:
        if ti in self.slot_of and ti in self.started_at:
            self.ended_at.setdefault(ti, now)
        super()._release(ti, now)

    def spans(self, end: float) -> list[tuple[int, int, float, float | None, float | None, str]]:
        server = self.server
        task_ids, array_of = server.task_ids, server.array_of
        out = []
        for ti, i in enumerate(server.ti_task):
            out.append((
                task_ids[i], array_of[i], server.ti_queued_at[ti], self.started_at.get(ti),
                self.ended_at.get(ti), server.ti_status[ti],
            ))
        return out
