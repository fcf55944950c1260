"""What a simulation reports: the ``SimReport``, its text and JSON forms, and the timeline CSV.

Figures come from the server model (the ground truth: active = Q/I/O/R on the server), the
cluster (running workers, slots) and the swarm's own ``RunSummary`` (final status, done and
failed counts). Means are time-weighted over ``[0, makespan]``. Floats are rounded to
microseconds so that the JSON form is byte-stable and readable.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from attrs import field, frozen

__all__ = [
    "ArrayReport",
    "SimReport",
    "TIMELINE_BASE_COLUMNS",
    "percentile",
    "render_json",
    "render_text",
    "timeline_columns",
    "timeline_row",
    "write_timeline",
]

#: The timeline columns before the per-array ones.
TIMELINE_BASE_COLUMNS = (
    "time", "run_status", "workflow_limit", "active", "registering", "queued", "launched",
    "running", "adjusting", "done", "failed",
)

_RUN_STATUS_NAMES = {
    "G": "REGISTERED", "L": "LINKING", "B": "BOUND", "A": "ABORTED", "I": "INSTANTIATED",
    "O": "LAUNCHED", "R": "RUNNING", "D": "DONE", "S": "STOPPED", "E": "ERROR",
    "C": "COLD_RESUME", "H": "HOT_RESUME", "T": "TERMINATED",
}


def r6(x: float) -> float:
    """``x`` rounded to microseconds (``-0.0`` becomes ``0.0``)."""
    return round(x, 6) + 0.0


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in ``(0, 1]``) of already sorted values."""
    if not sorted_values:
        return None
    k = max(0, math.ceil(p * len(sorted_values)) - 1)
    return float(sorted_values[k])


@frozen
class ArrayReport:
    array_id: int
    name: str
    limit: int
    tasks: int
    done: int
    failed: int
    peak_active: int
    mean_active: float


@frozen
class SimReport:
    """The report of one simulation. ``violations`` counts invariant violations by kind."""

    scenario: str
    seed: int
    final_status: str
    outcome: str
    reason: str
    makespan: float
    total_tasks: int
    done: int
    failed: int
    attempts: int
    attempt_outcomes: dict[str, int]
    workflow_limit: int
    peak_active: int
    mean_active: float
    peak_running: int
    mean_running: float
    arrays: tuple[ArrayReport, ...]
    cluster_slots: int | None
    utilization: float | None
    busy_slot_seconds: float
    queue_wait_p50: float | None
    queue_wait_p95: float | None
    requests: dict[str, int]
    requests_total: int
    full_syncs: int
    failed_requests: int
    decide_calls: int
    commands: int
    anomalies: dict[str, int]
    violations: dict[str, int]
    violation_examples: tuple[str, ...]
    #: The fault knobs switched on (name -> value); empty without faults.
    fault_profile: dict[str, Any] = field(factory=dict)
    #: Injected faults by kind (how many times each fired).
    injected: dict[str, int] = field(factory=dict)
    #: Limit and double-queueing breaches caused by faults that misinformed the swarm.
    excused: dict[str, int] = field(factory=dict)
    #: How the run ended: ``final``, ``stopped`` (explained), ``timeout`` or ``unexplained``.
    end: str = ""
    end_detail: str = ""
    #: The event-log line (JSON) of the record that led to the first violation.
    first_bad_record: str | None = None

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())

    def to_dict(self) -> dict[str, Any]:
        from swarmfold.shell.log.codec import unstructure

        data: dict[str, Any] = unstructure(self)
        return data


def render_json(report: SimReport) -> str:
    """The report as indented JSON with sorted keys (byte-stable)."""
    return json.dumps(report.to_dict(), indent=2, sort_keys=True)


def rounded(x: float) -> str:
    """``x`` to the precision a reader uses: 3 significant digits, whole numbers from 100 up."""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def seconds(x: float | None) -> str:
    """A duration for people: ``"4.88 s"``, ``"754 s (12:34)"``; ``"n/a"`` for None."""
    if x is None:
        return "n/a"
    if x < 120:
        return f"{rounded(x)} s"
    whole = int(round(x))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    clock = f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
    return f"{rounded(x)} s ({clock})"



def _knob(value: Any) -> str:
    if isinstance(value, float):
        return rounded(value)
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _limit(x: int) -> str:
    return "unlimited" if x >= 2_147_483_647 else str(x)


def render_text(report: SimReport) -> str:
    """The human-readable report."""
    status = _RUN_STATUS_NAMES.get(report.final_status, report.final_status)
    title = report.scenario or "scenario"
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(report.attempt_outcomes.items())) or "none"
    lines = [
        f"{title} (seed {report.seed}): {status} ({report.final_status}) after {seconds(report.makespan)}",
        f"  reason       {report.reason}",
        f"  tasks        {report.done} done, {report.failed} failed, {report.total_tasks} total",
        f"  attempts     {report.attempts} ({outcomes})",
        f"  active       peak {report.peak_active}, mean {rounded(report.mean_active)}"
        f" (workflow limit {_limit(report.workflow_limit)})",
    ]
    labels = [f"{a.name} [{a.array_id}]" for a in report.arrays]
    width = max([11, *(len(label) + 2 for label in labels)])
    for label, a in zip(labels, report.arrays, strict=True):
        lines.append(
            f"    {label.ljust(width)}peak {a.peak_active}, mean {rounded(a.mean_active)},"
            f" limit {_limit(a.limit)}; {a.done}/{a.tasks} done, {a.failed} failed"
        )
    if report.cluster_slots is None:
        cluster = f"unlimited slots, peak running {report.peak_running}, mean {rounded(report.mean_running)}"
    else:
        util = "n/a" if report.utilization is None else f"{100 * report.utilization:.1f}%"
        cluster = (
            f"{report.cluster_slots} slots, utilization {util},"
            f" peak running {report.peak_running}, mean {rounded(report.mean_running)}"
        )
    lines.append(f"  cluster      {cluster}")
    lines.append(
        f"  queue wait   p50 {seconds(report.queue_wait_p50)}, p95 {seconds(report.queue_wait_p95)}"
    )
    routes = ", ".join(f"{k} {v}" for k, v in sorted(report.requests.items(), key=lambda kv: (-kv[1], kv[0])))
    lines.append(f"  requests     {report.requests_total}: {routes}")
    extra = f"  syncs        {report.full_syncs} full"
    if report.failed_requests:
        extra += f"; {report.failed_requests} failed request(s)"
    lines.append(extra)
    lines.append(f"  core         {report.decide_calls} decide calls, {report.commands} commands")
    if report.anomalies:
        lines.append(
            "  anomalies    " + ", ".join(f"{k} {v}" for k, v in sorted(report.anomalies.items()))
        )
    if report.fault_profile:
        knobs = ", ".join(f"{k} {_knob(v)}" for k, v in report.fault_profile.items())
        lines.append(f"  faults       {knobs}")
        injected = ", ".join(f"{k} {v}" for k, v in report.injected.items()) or "none fired"
        lines.append(f"  injected     {injected}")
        if report.excused:
            lines.append(
                "  excused      " + ", ".join(f"{k} {v}" for k, v in report.excused.items())
                + " (the swarm was misinformed by an injected fault)"
            )
    if report.fault_profile or report.end not in ("", "final"):
        lines.append(f"  end          {report.end}: {report.end_detail}")
    if report.violations:
        lines.append(
            f"  INVARIANTS   {report.violation_count} violation(s): "
            + ", ".join(f"{k} {v}" for k, v in sorted(report.violations.items()))
        )
        lines.extend(f"    - {v}" for v in report.violation_examples)
        if report.first_bad_record:
            lines.append(f"  first bad record: {report.first_bad_record}")
    else:
        lines.append("  invariants   ok (limits, dependencies, no double queueing, no lost task)")
    return "\n".join(lines)


def timeline_columns(array_ids: Iterable[int]) -> list[str]:
    cols = list(TIMELINE_BASE_COLUMNS)
    for a in array_ids:
        cols += [f"active_{a}", f"limit_{a}"]
    return cols


def timeline_row(server: Any, t: float, array_ids: Iterable[int]) -> tuple[Any, ...]:
    """One timeline sample of ``server`` (a ``ServerModel``) at ``t``, in ``timeline_columns`` order."""
    counts = server.counts
    row: list[Any] = [
        r6(t), server.run_status, server.workflow_limit, server.active_total, counts["G"],
        counts["Q"] + counts["I"], counts["O"], counts["R"], counts["A"], counts["D"], counts["F"],
    ]
    limits = server.array_limits
    for a in array_ids:
        row += [server.active_by_array[a], limits.get(a)]
    return tuple(row)


def write_timeline(
    target: str | Path | TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Write the timeline as CSV (a header line, then one row per sample)."""
    if isinstance(target, str | Path):
        with open(target, "w", newline="", encoding="utf-8") as fh:
            write_timeline(fh, columns, rows)
        return
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(row)
