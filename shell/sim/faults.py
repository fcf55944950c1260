"""Seeded fault injection (swarm testing) and many-seed runs.

In the manner of TigerBeetle's VOPR, the seed draws the fault rates of its own run
(``draw_fault_profile``): each kind of fault is switched on for that run with its own
probability (FoundationDB's BUGGIFY activates each site with p = 0.25), then fires at a rate
drawn for the run. Different seeds so explore different mixes of faults: many lost answers
and no latency spikes on one seed, the distributor dying on another.

The kinds (fields of ``FaultProfile``; the driver injects them):

==========================  ===============================================================
kind                        what happens
==========================  ===============================================================
``request_failure``         a 5xx answer: the request fails before the server sees it
``response_loss``           the server does the work, the answer is dropped
``timeout``                 the server does the work, the client gives up after its timeout
``latency_spike``           a slow call (seconds more)
``late_report``             a status answer arrives late (stale; past the timeout, it arrives
                            after the swarm was told the request failed)
``duplicate_report``        a status answer re-delivers an earlier answer's entries
``heartbeat_failure``       a heartbeat fails (the reaper may end the run)
``lost_worker``             a worker dies silently (triage, U)
``distributor_death``       the distributor dies
``limit_change``            users change the workflow's or an array's limit
``resume_signal``           another process asks for a cold or hot resume
==========================  ===============================================================

Times are scaled by a **horizon**: the makespan of the scenario without faults (its own seed),
so a drawn death time or resume rate means the same on a 5-minute and a 5-hour scenario.

``explain_end`` says how a run ended: **final** (DONE, or ERROR with failed tasks), **stopped**
for a reason something injected or configured explains (the distributor died, a resume signal,
the reaper after lapsed heartbeats, fail-fast), **timeout** (the swarm's own timeout) or
**unexplained** (an invariant violation). ``run_seeds`` runs many seeds in parallel processes
and ``render_seed_summary`` prints the table of ``swarmfold simulate --seeds``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from swarmfold.shell.sim.executor import map_shared
from swarmfold.shell.sim.report import _RUN_STATUS_NAMES
from swarmfold.shell.sim.scenario import ROUTES, FaultProfile, Scenario

if TYPE_CHECKING:
    from swarmfold.core.commands import Fail, Finish

__all__ = [
    "FAULT_KINDS",
    "SeedResult",
    "draw_fault_profile",
    "explain_end",
    "fault_horizon",
    "kinds_on",
    "parse_seeds",
    "profile_summary",
    "render_seed_summary",
    "run_seed",
    "run_seeds",
    "with_drawn_faults",
]

#: Fault kinds, in the order ``draw_fault_profile`` considers them.
FAULT_KINDS = (
    "request_failure",
    "response_loss",
    "timeout",
    "latency_spike",
    "late_report",
    "duplicate_report",
    "heartbeat_failure",
    "lost_worker",
    "distributor_death",
    "limit_change",
    "resume_signal",
)

#: Per kind: the probability it is switched on for a run.
ACTIVATION: Mapping[str, float] = {
    "request_failure": 0.4,
    "response_loss": 0.4,
    "timeout": 0.3,
    "latency_spike": 0.5,
    "late_report": 0.3,
    "duplicate_report": 0.4,
    "heartbeat_failure": 0.35,
    "lost_worker": 0.3,
    "distributor_death": 0.25,
    "limit_change": 0.4,
    "resume_signal": 0.25,
}
#: Up to this many tasks, many-seed runs also check the core's own invariants at every step.
DEEP_CHECK_TASKS = 200
#: The probability that request faults are confined to a few routes.
ROUTE_SUBSET_P = 0.3


def _r(x: float) -> float:
    return round(x, 4)


def draw_fault_profile(rng: random.Random, horizon: float = 600.0) -> FaultProfile:
    """This run's faults, drawn from ``rng`` (swarm testing).

    Each kind is switched on with its ``ACTIVATION`` probability, then given a rate drawn for
    the run; ``horizon`` (seconds, the fault-free makespan) scales the times: the
    distributor's death, and the rates of limit changes and resume signals. The draws always
    happen in the same order, so a seed always gives the same profile.
    """
    horizon = max(horizon, 1.0)
    on = {kind: rng.random() < ACTIVATION[kind] for kind in FAULT_KINDS}
    request_failure = _r(rng.uniform(0.01, 0.2))
    response_loss = _r(rng.uniform(0.01, 0.15))
    timeout_rate = _r(rng.uniform(0.01, 0.1))
    request_timeout = _r(rng.uniform(5.0, 60.0))
    spike_rate, spike_seconds = _r(rng.uniform(0.02, 0.3)), _r(rng.uniform(0.5, 30.0))
    late_rate, late_seconds = _r(rng.uniform(0.05, 0.5)), _r(rng.uniform(1.0, 60.0))
    duplicate_rate = _r(rng.uniform(0.05, 0.5))
    heartbeat_rate = _r(rng.uniform(0.05, 0.6))
    lost_worker_rate = _r(rng.uniform(0.01, 0.2))
    dies_at = _r(rng.uniform(0.1, 1.5) * horizon)
    limit_changes = _r(rng.uniform(1.0, 8.0) * 3600.0 / horizon)
    resumes = _r(rng.uniform(0.2, 1.5) * 3600.0 / horizon)
    subset = rng.random() < ROUTE_SUBSET_P
    routes = tuple(sorted(rng.sample(ROUTES, rng.randint(1, 4)), key=ROUTES.index))
    timeouts = on["timeout"] or on["late_report"]
    return FaultProfile(
        request_failure_rate=request_failure if on["request_failure"] else 0.0,
        response_loss_rate=response_loss if on["response_loss"] else 0.0,
        timeout_rate=timeout_rate if on["timeout"] else 0.0,
        request_timeout=request_timeout if timeouts else None,
        latency_spike_rate=spike_rate if on["latency_spike"] else 0.0,
        latency_spike_seconds=spike_seconds if on["latency_spike"] else 0.0,
        late_report_rate=late_rate if on["late_report"] else 0.0,
        late_report_seconds=late_seconds if on["late_report"] else 0.0,
        duplicate_report_rate=duplicate_rate if on["duplicate_report"] else 0.0,
        heartbeat_failure_rate=heartbeat_rate if on["heartbeat_failure"] else 0.0,
        lost_worker_rate=lost_worker_rate if on["lost_worker"] else 0.0,
        distributor_dies_at=dies_at if on["distributor_death"] else None,
        limit_changes_per_hour=limit_changes if on["limit_change"] else 0.0,
        resumes_per_hour=resumes if on["resume_signal"] else 0.0,
        routes=routes if subset else None,
    )


def kinds_on(profile: FaultProfile) -> tuple[str, ...]:
    """The fault kinds a profile switches on, in ``FAULT_KINDS`` order."""
    p = profile
    flags = {
        "request_failure": p.request_failure_rate > 0,
        "response_loss": p.response_loss_rate > 0,
        "timeout": p.timeout_rate > 0,
        "latency_spike": p.latency_spike_rate > 0 and p.latency_spike_seconds > 0,
        "late_report": p.late_report_rate > 0,
        "duplicate_report": p.duplicate_report_rate > 0,
        "heartbeat_failure": p.heartbeat_failure_rate > 0,
        "lost_worker": p.lost_worker_rate > 0,
        "distributor_death": p.distributor_dies_at is not None,
        "limit_change": p.limit_changes_per_hour > 0,
        "resume_signal": p.resumes_per_hour > 0,
    }
    return tuple(k for k in FAULT_KINDS if flags[k])


def profile_summary(profile: FaultProfile) -> dict[str, Any]:
    """The knobs of a profile that differ from their defaults (empty: no faults)."""
    default = FaultProfile()
    out: dict[str, Any] = {}
    for a in attrs.fields(FaultProfile):
        value = getattr(profile, a.name)
        if value != getattr(default, a.name):
            out[a.name] = list(value) if isinstance(value, tuple) else value
    return out


def _seed_rng(seed: int) -> random.Random:
    """The stream a seed's fault profile is drawn from (apart from the run's own streams)."""
    return random.Random(f"swarmfold-faults-{seed}")


def fault_horizon(scenario: Scenario) -> float:
    """The fault-free makespan of ``scenario`` with its own seed (at least 10 heartbeats)."""
    from swarmfold.shell.sim.driver import SimulationError, simulate

    floor = 10.0 * scenario.config.heartbeat_interval
    try:
        result = simulate(attrs.evolve(scenario, faults=FaultProfile()), check_invariants=False)
    except SimulationError:
        return floor
    return max(result.report.makespan, floor)


def with_drawn_faults(scenario: Scenario, seed: int, horizon: float | None = None) -> Scenario:
    """``scenario`` with the fault profile ``seed`` draws (in place of the scenario's own)."""
    if horizon is None:
        horizon = fault_horizon(scenario)
    return attrs.evolve(scenario, faults=draw_fault_profile(_seed_rng(seed), horizon))


# --- how a run ended ---------------------------------------------------------------------------


def explain_end(
    outcome: Finish | Fail,
    scenario: Scenario,
    world_events: Sequence[tuple[float, str, str]],
    injected: Mapping[str, int] | None = None,
) -> tuple[str, str]:
    """``(kind, detail)``: how the run ended and what explains it.

    ``kind`` is ``final``, ``stopped``, ``timeout`` or ``unexplained``; ``detail`` starts with
    a short label (``all tasks done``, ``distributor died``, ``resumed``, ``reaped``, ...).
    """
    from swarmfold.core.commands import Fail

    summary = outcome.summary
    reason = summary.reason
    status = summary.final_status

    def first(*kinds: str) -> tuple[float, str, str] | None:
        return next((e for e in world_events if e[1] in kinds), None)

    if isinstance(outcome, Fail):
        if outcome.reason == "distributor_died":
            died = first("distributor_died")
            if died is not None:
                return "stopped", f"distributor died: at t={died[0]:g}"
        elif outcome.reason == "timeout":
            return "timeout", f"timeout: the swarm's timeout ({scenario.config.timeout:g} s) passed"
        elif outcome.reason == "fail_after_n_executions" and scenario.config.fail_after_n_executions:
            return "stopped", f"fail_after_n_executions: {scenario.config.fail_after_n_executions}"
        return "unexplained", f"the run failed: {reason}"
    moved = first("reaped", "resume")
    if "; the server kept" in reason or reason.startswith(("the server set the run", "transition_error")):
        if moved is not None:
            label = "reaped" if moved[1] == "reaped" else "resumed"
            return "stopped", f"{label}: {moved[2]} at t={moved[0]:g}; {reason}"
        refused = first("status_update_fault")
        if refused is not None and ("request failed" in reason or "; the server kept" in reason):
            # The core does not retry a failed run-status update: it ends, and says so.
            return "stopped", f"status update failed: {refused[2]} at t={refused[0]:g}; {reason}"
        return "unexplained", f"the server changed the run's status unprompted: {reason}"
    if reason.startswith("drained after resume signal"):
        resumed = first("resume")
        if resumed is not None:
            return "stopped", f"resumed: {resumed[2]} at t={resumed[0]:g}"
        return "unexplained", f"drained after a resume signal nobody sent: {reason}"
    if status == "D" and reason == "all tasks done":
        return "final", "all tasks done"
    if status == "E" and (reason.endswith("task(s) failed") or reason == "no runnable work left"):
        return "final", f"tasks failed: {reason}"
    if reason.startswith("fail_fast") and scenario.config.fail_fast:
        return "stopped", f"fail fast: {reason}"
    return "unexplained", f"ended {status}: {reason}"


# --- many seeds --------------------------------------------------------------------------------


_SEEDS = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")


def parse_seeds(spec: str) -> list[int]:
    """``"1-500"``, ``"3"``, ``"1,5,9-12"`` -> the seeds, in order, without repeats."""
    seeds: list[int] = []
    seen: set[int] = set()
    for part in spec.split(","):
        m = _SEEDS.match(part)
        if m is None:
            raise ValueError(f"--seeds: expected N, A-B or a comma-separated list of them, got {spec!r}")
        low = int(m.group(1))
        high = int(m.group(2)) if m.group(2) is not None else low
        if high < low:
            raise ValueError(f"--seeds: range {part.strip()!r} goes backwards")
        if high - low > 1_000_000:
            raise ValueError(f"--seeds: range {part.strip()!r} is too long (at most 1,000,001 seeds)")
        for s in range(low, high + 1):
            if s not in seen:
                seen.add(s)
                seeds.append(s)
    return seeds


@frozen
class SeedResult:
    """One seed of a many-seed run."""

    seed: int
    end: str  # final, stopped, timeout, stall (the simulation could not go on), unexplained
    end_detail: str
    final_status: str | None = None
    outcome: str | None = None
    reason: str = ""
    makespan: float | None = None
    done: int = 0
    failed: int = 0
    total_tasks: int = 0
    violations: dict[str, int] = attrs.field(factory=dict)
    excused: dict[str, int] = attrs.field(factory=dict)
    first_violation: str | None = None
    first_bad_record: str | None = None
    injected: dict[str, int] = attrs.field(factory=dict)
    faults_on: tuple[str, ...] = ()
    anomalies: dict[str, int] = attrs.field(factory=dict)

    @property
    def failing(self) -> bool:
        """An invariant was violated, or the run stalled or timed out."""
        return bool(self.violations) or self.end in ("stall", "timeout", "unexplained")

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["faults_on"] = list(self.faults_on)
        data["failing"] = self.failing
        return data


def run_seed(scenario: Scenario, seed: int, faults: bool, horizon: float | None = None) -> SeedResult:
    """Simulate one seed (with its drawn faults if ``faults``) and say how it went."""
    from swarmfold.shell.sim.driver import SimulationError, simulate

    if faults:
        scenario = with_drawn_faults(scenario, seed, horizon)
    on = kinds_on(scenario.faults)
    try:
        result = simulate(scenario, seed, deep_checks=scenario.topology.task_count <= DEEP_CHECK_TASKS)
    except SimulationError as exc:
        return SeedResult(seed=seed, end="stall", end_detail=f"stall: {exc}", faults_on=on)
    r = result.report
    first = str(result.violations[0]) if result.violations else None
    return SeedResult(
        seed=seed,
        end=r.end,
        end_detail=r.end_detail,
        final_status=r.final_status,
        outcome=r.outcome,
        reason=r.reason,
        makespan=r.makespan,
        done=r.done,
        failed=r.failed,
        total_tasks=r.total_tasks,
        violations=dict(r.violations),
        excused=dict(r.excused),
        first_violation=first,
        first_bad_record=r.first_bad_record,
        injected=dict(r.injected),
        faults_on=on,
        anomalies=dict(r.anomalies),
    )


def _seed_item(shared: tuple[Scenario, bool, float | None], seed: int) -> SeedResult:
    scenario, faults, horizon = shared
    return run_seed(scenario, seed, faults, horizon)


def run_seeds(
    scenario: Scenario,
    seeds: Sequence[int],
    *,
    faults: bool = False,
    jobs: int | None = None,
    horizon: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    dask: str | None = None,
) -> list[SeedResult]:
    """Simulate every seed, in ``jobs`` local processes (default: one per CPU) or on the dask
    scheduler at ``dask`` (``shell/sim/executor.py``), in seed order either way.

    With ``faults`` each seed draws its own fault profile, with times scaled by ``horizon``
    (default: ``fault_horizon(scenario)``, computed once).
    """
    if faults and horizon is None:
        horizon = fault_horizon(scenario)
    return map_shared(_seed_item, (scenario, faults, horizon), list(seeds), jobs=jobs, dask=dask,
                      progress=progress)


# --- the summary table -------------------------------------------------------------------------




def _label(detail: str) -> str:
    return detail.split(":", 1)[0]


def _counts(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _join(counts: Mapping[str, int], order: Sequence[str] | None = None) -> str:
    keys = list(order) if order is not None else sorted(counts, key=lambda k: (-counts[k], k))
    return ", ".join(f"{k} {counts[k]}" for k in keys if counts.get(k)) or "none"


def _seed_ranges(seeds: Sequence[int]) -> str:
    out: list[str] = []
    ordered = sorted(seeds)
    k = 0
    while k < len(ordered):
        j = k
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[k]) if j == k else f"{ordered[k]}-{ordered[j]}")
        k = j + 1
    return ",".join(out)


def aggregate(results: Sequence[SeedResult]) -> dict[str, Any]:
    """The figures of the summary table, as plain data."""
    excused_seeds: dict[str, int] = {}
    excused: dict[str, int] = {}
    violations: dict[str, int] = {}
    injected: dict[str, int] = {}
    faults_on: dict[str, int] = {}
    for r in results:
        for k, v in r.excused.items():
            excused[k] = excused.get(k, 0) + v
            excused_seeds[k] = excused_seeds.get(k, 0) + 1
        for k, v in r.violations.items():
            violations[k] = violations.get(k, 0) + v
        for k, v in r.injected.items():
            injected[k] = injected.get(k, 0) + v
        for k in r.faults_on:
            faults_on[k] = faults_on.get(k, 0) + 1
    return {
        "seeds": len(results),
        "ends": _counts(r.end for r in results),
        "end_labels": _counts(_label(r.end_detail) for r in results),
        "final_status": _counts(r.final_status for r in results if r.final_status is not None),
        "violations": dict(sorted(violations.items())),
        "seeds_with_violations": sum(1 for r in results if r.violations),
        "excused": dict(sorted(excused.items())),
        "seeds_with_excused": dict(sorted(excused_seeds.items())),
        "injected": dict(sorted(injected.items())),
        "faults_on": {k: faults_on[k] for k in FAULT_KINDS if k in faults_on},
        "failing_seeds": [r.seed for r in results if r.failing],
    }


def render_seed_summary(
    results: Sequence[SeedResult],
    *,
    title: str,
    faults: bool,
    reproduce: Callable[[int], str],
    per_seed: bool = False,
    horizon: float | None = None,
    max_failing_shown: int = 20,
) -> str:
    """The text table of ``swarmfold simulate --seeds``."""
    agg = aggregate(results)
    seeds = [r.seed for r in results]
    head = f"{title}: {len(results)} seed(s) ({_seed_ranges(seeds)})"
    if faults:
        head += ", faults drawn per seed"
        if horizon is not None:
            head += f" (horizon {horizon:g} s)"
    lines = [head]
    if per_seed:
        lines.append(
            f"  {'seed':>6}  {'end':<11} {'status':<6} {'makespan':>10}  {'done':>11}  "
            f"{'violations':<12} faults on"
        )
        for r in results:
            done = f"{r.done}/{r.total_tasks}" if r.total_tasks else "-"
            viol = ",".join(f"{k}:{v}" for k, v in sorted(r.violations.items())) or "-"
            span = "-" if r.makespan is None else f"{r.makespan:.6g}"
            lines.append(
                f"  {r.seed:>6}  {r.end:<11} {r.final_status or '-':<6} {span:>10}  {done:>11}  "
                f"{viol:<12} {','.join(r.faults_on) or '-'}"
            )
    ends = agg["ends"]
    lines.append(
        f"  runs         {len(results)}: {ends.get('final', 0)} final, {ends.get('stopped', 0)} stopped"
        f" (explained), {ends.get('timeout', 0)} timeout(s), {ends.get('stall', 0)} stall(s),"
        f" {ends.get('unexplained', 0)} unexplained"
    )
    statuses = {_RUN_STATUS_NAMES.get(k, k): v for k, v in agg["final_status"].items()}
    lines.append(f"  final status {_join(statuses)}")
    lines.append(f"  ends         {_join(agg['end_labels'])}")
    if faults:
        lines.append(f"  faults on    {_join(agg['faults_on'], list(agg['faults_on']))} (seeds)")
        lines.append(f"  injected     {_join(agg['injected'])}")
    if agg["excused"]:
        in_seeds = agg["seeds_with_excused"]
        lines.append(
            "  excused      "
            + ", ".join(f"{k} {v} in {in_seeds[k]} seed(s)" for k, v in agg["excused"].items())
            + " (the swarm was misinformed by a fault)"
        )
    if agg["violations"]:
        lines.append(
            f"  INVARIANTS   violated in {agg['seeds_with_violations']}/{len(results)} seed(s): "
            + _join(agg["violations"])
        )
    else:
        lines.append(
            f"  invariants   ok in {len(results)}/{len(results)} seed(s)"
            " (limits, dependencies, no double queueing, no lost task, explained end)"
        )
    failing = [r for r in results if r.failing]
    if not failing:
        lines.append("  failing      none")
        return "\n".join(lines)
    lines.append(f"  FAILING      {len(failing)} seed(s): {_seed_ranges([r.seed for r in failing])}")
    for r in failing[:max_failing_shown]:
        why = r.first_violation or r.end_detail
        lines.append(f"    seed {r.seed}: {why}")
        if r.first_bad_record:
            lines.append(f"      first bad record: {r.first_bad_record}")
        lines.append(f"      reproduce: {reproduce(r.seed)}")
    if len(failing) > max_failing_shown:
        lines.append(f"    ... and {len(failing) - max_failing_shown} more (--json lists them all)")
    return "\n".join(lines)
