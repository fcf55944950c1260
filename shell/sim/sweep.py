"""``swarmfold sweep``: what-if sweeps of the concurrency limits, in parallel processes.

``swarmfold sweep SCENARIO --workflow-limit 100,200,500 --array-limit 2=10,20,40`` simulates
every point of the grid (the product of the listed values; limits not listed keep the
scenario's; the scenario's ``limit_changes`` of a swept limit are dropped, so a point's limit
holds for the whole run) with the same seed, one process per CPU, and prints a table: makespan, cluster
utilization, peak and mean active tasks, done/total, per point. ``--seeds A-B`` runs every point
with each of those seeds and reports, per point, the mean, p5, p50 and p95 of the makespan and
of the peak active count, marks the best point and the points not distinguishable from it
(``shell/sim/spread.py``). ``--dask ADDRESS`` runs the points on a ``dask.distributed``
cluster instead of local processes (``shell/sim/executor.py``): same seeds, same results.
``--plot FILE.png`` draws the makespan against each swept limit (with the p5-p95 band under
``--seeds``); ``--from-log LOG`` sweeps the scenario a recorded run implies
(``shell/sim/from_log.py``).

Exit codes: 0 every point ran and every invariant held; 1 a point violated an invariant or
could not finish; 2 bad input.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import attrs
from attrs import asdict, field, frozen

from swarmfold.core.config import UNLIMITED
from swarmfold.shell.sim.executor import DaskUnavailable, map_shared, progress_lines
from swarmfold.shell.sim.report import r6, rounded, seconds
from swarmfold.shell.sim.scenario import Scenario
from swarmfold.shell.sim.spread import Spread, indistinguishable, spread_of

__all__ = ["Axis", "SweepPoint", "add_parser", "parse_values", "render_sweep", "run_sweep"]

PROG = "swarmfold sweep"
EXIT_OK, EXIT_VIOLATIONS, EXIT_BAD_INPUT = 0, 1, 2

_RANGE = re.compile(r"^(\d+)-(\d+)(?::(\d+))?$")


@frozen
class Axis:
    """One swept limit: ``array_id`` None for the workflow's."""

    name: str
    array_id: int | None
    values: tuple[int, ...]


@frozen
class SweepPoint:
    """One point of the grid. ``limits`` maps each axis name to its value.

    Over several seeds: ``makespan``, ``utilization`` and ``mean_active`` are means over the
    seeds that finished, ``peak_active`` the highest peak, ``done``/``failed`` the fewest and
    most, ``final_status`` "D" only if every seed ended D; the spreads give the detail.
    """

    limits: dict[str, int]
    final_status: str | None = None
    makespan: float | None = None
    utilization: float | None = None
    peak_active: int | None = None
    mean_active: float | None = None
    done: int = 0
    failed: int = 0
    total_tasks: int = 0
    violations: dict[str, int] = field(factory=dict)
    error: str | None = None
    seeds: tuple[int, ...] = ()
    makespan_spread: Spread | None = None
    peak_active_spread: Spread | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_values(text: str, option: str) -> tuple[int, ...]:
    """``"10,20,40"``, ``"10-100:10"`` (inclusive, step 10), ``"unlimited"`` -> the limits."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = _RANGE.match(part)
        if part == "unlimited":
            values.append(UNLIMITED)
        elif part.isdigit():
            values.append(int(part))
        elif m is not None:
            low, high, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
            if high < low or step <= 0:
                raise ValueError(f"{option}: bad range {part!r} (expected LOW-HIGH or LOW-HIGH:STEP)")
            values.extend(range(low, high + 1, step))
        else:
            raise ValueError(
                f"{option}: expected comma-separated limits (N, LOW-HIGH[:STEP] or unlimited), got {part!r}"
            )
    return tuple(dict.fromkeys(values))


def parse_axes(workflow: str | None, arrays: Sequence[str]) -> list[Axis]:
    axes: list[Axis] = []
    if workflow is not None:
        axes.append(Axis("workflow_limit", None, parse_values(workflow, "--workflow-limit")))
    seen: set[int] = set()
    for text in arrays:
        key, sep, rest = text.partition("=")
        if not sep or not key.strip().isdigit():
            raise ValueError(f"--array-limit: expected ID=N[,N...], got {text!r}")
        array_id = int(key)
        if array_id in seen:
            raise ValueError(f"--array-limit: array {array_id} given twice")
        seen.add(array_id)
        axes.append(Axis(f"array {array_id}", array_id, parse_values(rest, f"--array-limit {array_id}")))
    return axes


def grid(axes: Sequence[Axis]) -> list[dict[str, int]]:
    """Every combination of the axes' values, the last axis varying fastest."""
    return [
        {axis.name: value for axis, value in zip(axes, combo, strict=True)}
        for combo in itertools.product(*(axis.values for axis in axes))
    ]


def without_swept_changes(scenario: Scenario, axes: Sequence[Axis]) -> Scenario:
    """The scenario without its ``limit_changes`` of the swept limits: a point's limit holds
    for the whole run (the changes of limits not swept stay)."""
    swept = {axis.array_id for axis in axes}  # None: the workflow's
    kept = tuple(c for c in scenario.limit_changes if c.array_id not in swept)
    if len(kept) == len(scenario.limit_changes):
        return scenario
    return attrs.evolve(scenario, limit_changes=kept)


def _overrides(axes: Sequence[Axis], limits: dict[str, int]) -> tuple[int | None, dict[int, int]]:
    workflow: int | None = None
    arrays: dict[int, int] = {}
    for axis in axes:
        if axis.array_id is None:
            workflow = limits[axis.name]
        else:
            arrays[axis.array_id] = limits[axis.name]
    return workflow, arrays


def run_point(
    scenario: Scenario, axes: Sequence[Axis], limits: dict[str, int], seed: int | None
) -> SweepPoint:
    """Simulate one point of the grid."""
    from swarmfold.shell.sim.driver import SimulationError, simulate

    workflow, arrays = _overrides(axes, limits)
    try:
        r = simulate(scenario, seed, workflow_limit=workflow, array_limits=arrays).report
    except SimulationError as exc:
        return SweepPoint(limits=limits, error=str(exc))
    return SweepPoint(
        limits=limits,
        final_status=r.final_status,
        makespan=r.makespan,
        utilization=r.utilization,
        peak_active=r.peak_active,
        mean_active=r.mean_active,
        done=r.done,
        failed=r.failed,
        total_tasks=r.total_tasks,
        violations=dict(r.violations),
    )


def _run_item(
    shared: tuple[Scenario, tuple[Axis, ...]], item: tuple[dict[str, int], int | None]
) -> SweepPoint:
    scenario, axes = shared
    limits, seed = item
    return run_point(scenario, axes, limits, seed)


def combine(limits: dict[str, int], runs: Sequence[SweepPoint], seeds: Sequence[int | None]) -> SweepPoint:
    """One point from its runs, one per seed (see ``SweepPoint``)."""
    finished = [r for r in runs if r.error is None and r.makespan is not None]
    makespans = [r.makespan for r in finished if r.makespan is not None]
    peaks = [float(r.peak_active) for r in finished if r.peak_active is not None]
    violations: dict[str, int] = {}
    for r in runs:
        for kind, count in r.violations.items():
            violations[kind] = violations.get(kind, 0) + count
    errors = [f"seed {seed}: {r.error}" for r, seed in zip(runs, seeds, strict=True) if r.error is not None]
    statuses = {r.final_status for r in runs}
    utilizations = [r.utilization for r in finished if r.utilization is not None]
    actives = [r.mean_active for r in finished if r.mean_active is not None]
    return SweepPoint(
        limits=limits,
        final_status="D" if statuses == {"D"} else next((st for st in (r.final_status for r in runs)
                                                          if st != "D"), None),
        makespan=_mean(makespans),
        utilization=_mean(utilizations),
        peak_active=int(max(peaks)) if peaks else None,
        mean_active=_mean(actives),
        done=min((r.done for r in runs), default=0),
        failed=max((r.failed for r in runs), default=0),
        total_tasks=max((r.total_tasks for r in runs), default=0),
        violations=violations,
        error="; ".join(errors) or None,
        seeds=tuple(s for s in seeds if s is not None),
        makespan_spread=spread_of(makespans),
        peak_active_spread=spread_of(peaks),
    )


def _mean(values: Sequence[float]) -> float | None:
    return r6(sum(values) / len(values)) if values else None


def run_sweep(
    scenario: Scenario,
    axes: Sequence[Axis],
    seed: int | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    seeds: Sequence[int] | None = None,
    dask: str | None = None,
) -> list[SweepPoint]:
    """Simulate every point of the grid with each seed (``seeds``, or the one ``seed``), in
    ``jobs`` local processes (default one per CPU) or on the dask scheduler at ``dask``; the
    points come back in grid order, the same wherever they ran."""
    points = grid(axes)
    scenario = without_swept_changes(scenario, axes)
    run_seeds: list[int | None] = list(seeds) if seeds else [seed]
    items = [(limits, s) for limits in points for s in run_seeds]
    runs = map_shared(_run_item, (scenario, tuple(axes)), items, jobs=jobs, dask=dask, progress=progress)
    k = len(run_seeds)
    return [combine(limits, runs[i * k:(i + 1) * k], run_seeds) for i, limits in enumerate(points)]


def _limit(value: int) -> str:
    return "unlimited" if value >= UNLIMITED else str(value)


def render_sweep(
    scenario: Scenario, axes: Sequence[Axis], points: Sequence[SweepPoint], seed: int | None
) -> str:
    """The sweep's table, then the best point (and, over several seeds, the points not
    distinguishable from it)."""
    many = any(len(p.seeds) > 1 for p in points)
    head = [axis.name for axis in axes] + ["status"]
    head += ["makespan mean", "p5", "p50", "p95", "peak p50", "peak p95"] if many else [
        "makespan", "utilization", "peak active", "mean active"]
    head += ["done", ""]
    best = best_point(points)
    rows: list[list[str]] = []
    for p in points:
        cells = [_limit(p.limits[axis.name]) for axis in axes]
        mark = "best" if p is best else "~best" if best is not None and _close(best, p) else ""
        if p.makespan is None:
            rows.append(cells + ["stall"] + ["-"] * (len(head) - len(cells) - 2) + [mark])
            continue
        status = (p.final_status or "-") + (" !" if p.violations or p.error else "")
        done = f"{p.done}/{p.total_tasks}"
        if many and p.makespan_spread is not None and p.peak_active_spread is not None:
            m, k = p.makespan_spread, p.peak_active_spread
            figures = [_s(m.mean), _s(m.p5), _s(m.p50), _s(m.p95),
                       f"{k.p50:.0f}", f"{k.p95:.0f}"]
        else:
            util = "n/a" if p.utilization is None else f"{100 * p.utilization:.1f}%"
            mean_active = "-" if p.mean_active is None else rounded(p.mean_active)
            figures = [_s(p.makespan), util, str(p.peak_active), mean_active]
        rows.append(cells + [status, *figures, done, mark])
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(head)]
    n_axes = len(axes)

    def line(cells: Sequence[str]) -> str:
        out = []
        for k, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            left = k in (n_axes, len(cells) - 1)  # status and mark read better left-aligned
            out.append(cell.ljust(width) if left else cell.rjust(width))
        return "  " + "  ".join(out).rstrip()

    title = scenario.name or "scenario"
    seeds = points[0].seeds if points else ()
    which_seeds = f"{len(seeds)} seeds ({_seed_range(seeds)}) per point" if many else f"seed {seed}"
    lines = [f"{title}: sweep of {len(points)} point(s), {which_seeds}"]
    lines.append(line(head))
    lines.extend(line(r) for r in rows)
    if best is not None:
        which = _where(best)
        if many and best.makespan_spread is not None:
            m = best.makespan_spread
            lines.append(f"  best         {which}: mean makespan {seconds(m.mean)},"
                         f" p5-p95 {rounded(m.p5)}-{rounded(m.p95)} s")
            close = [p for p in points if p is not best and _close(best, p)]
            if close:
                lines.append(f"  not distinguishable from the best (95%, marked ~best): {len(close)}"
                             " point(s): " + "; ".join(_where(p) for p in close))
            else:
                lines.append("  the best is distinguishable from every other point (95%)")
        else:
            lines.append(f"  best         {which}: makespan {seconds(best.makespan)}")
            lines.append("  one seed per point: use --seeds A-B to tell noise from a better limit")
    bad = [p for p in points if p.violations or p.error is not None]
    if bad:
        lines.append(
            f"  PROBLEMS     {len(bad)} point(s) violated an invariant or could not finish"
            " (marked ! or stall)"
        )
    else:
        lines.append("  invariants   ok at every point")
    return "\n".join(lines)


def _s(x: float) -> str:
    return f"{rounded(x)} s"


def best_point(points: Sequence[SweepPoint]) -> SweepPoint | None:
    """The finished point (every seed D, no violation) with the lowest mean makespan."""
    finished = [p for p in points if p.makespan is not None and p.final_status == "D" and not p.violations
                and p.error is None]
    if not finished:
        return None
    return min(finished, key=lambda p: (p.makespan, tuple(p.limits.values())))


def _close(best: SweepPoint, other: SweepPoint) -> bool:
    a, b = best.makespan_spread, other.makespan_spread
    if a is None or b is None or a.n < 2 or b.n < 2 or other.final_status != "D" or other.violations:
        return False
    return indistinguishable(a, b)


def _where(p: SweepPoint) -> str:
    return ", ".join(f"{k}={_limit(v)}" for k, v in p.limits.items())


def _seed_range(seeds: Sequence[int]) -> str:
    if seeds and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


# --- the subcommand ----------------------------------------------------------------------------


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "sweep",
        help="what-if sweep: simulate a grid of workflow/array limits in parallel processes",
        description="Simulate a scenario (or the scenario a recorded run implies, --from-log) for "
        "every combination of the listed limits, in parallel processes, and print makespan, "
        "utilization and peak active tasks per point (docs/cli-simulate.md). Exit 0: every point "
        "held its invariants; 1: a point violated one or could not finish; 2: bad input.",
    )
    p.add_argument("scenario", nargs="?", metavar="SCENARIO", help="scenario JSON file")
    p.add_argument("--from-log", metavar="LOG", help="sweep the scenario built from this event log")
    p.add_argument(
        "--workflow-limit", metavar="N,N,...", help="workflow limits to try (N, LOW-HIGH[:STEP], unlimited)"
    )
    p.add_argument(
        "--array-limit", action="append", default=[], metavar="ID=N,N,...",
        help="limits to try for one array (repeatable)",
    )
    p.add_argument("--seed", type=int, metavar="N", help="the seed of every point (default: the scenario's)")
    p.add_argument("--seeds", metavar="A-B", help="run every point with each of these seeds (1-20, 1,5,9-12)"
                   " and report the spread")
    p.add_argument("--jobs", type=int, metavar="N", help="processes (default: one per CPU)")
    p.add_argument("--dask", metavar="ADDRESS", help="run the points on this dask.distributed scheduler"
                   " (tcp://host:port; needs pip install 'swarmfold[dask]')")
    p.add_argument("--json", action="store_true", help="print the points as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="plot makespan against each swept limit")
    p.set_defaults(handler=run)
    return p


def load_input(scenario: str | None, from_log: str | None, prog: str) -> Scenario:
    """The scenario of ``SCENARIO`` or ``--from-log LOG`` (exactly one). Raises ValueError."""
    from swarmfold.shell.sim.scenario import load_scenario

    if (scenario is None) == (from_log is None):
        raise ValueError("give a SCENARIO file or --from-log LOG (one of them)")
    if from_log is not None:
        from swarmfold.shell.sim.from_log import scenario_from_log

        return scenario_from_log(from_log)
    assert scenario is not None
    return load_scenario(scenario)


def _band(spread: Spread | None) -> dict[str, float | None]:
    if spread is None or spread.n < 2:
        return {"p5": None, "p95": None}
    return {"p5": spread.p5, "p95": spread.p95}


def run(args: argparse.Namespace, out: TextIO) -> int:
    from swarmfold.shell.log.eventlog import LogError
    from swarmfold.shell.sim.faults import parse_seeds
    from swarmfold.shell.sim.plot import PlotUnavailable
    from swarmfold.shell.sim.scenario import ScenarioError, with_limits

    try:
        axes = parse_axes(args.workflow_limit, args.array_limit)
        if not axes:
            raise ValueError("nothing to sweep: give --workflow-limit and/or --array-limit")
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs: must be >= 1, got {args.jobs}")
        if args.jobs is not None and args.dask is not None:
            raise ValueError("--jobs and --dask: give one (--jobs is for local processes)")
        if args.seeds is not None and args.seed is not None:
            raise ValueError("--seed and --seeds: give one")
        seeds = None if args.seeds is None else parse_seeds(args.seeds)
        if args.plot is not None:
            from swarmfold.shell.sim.plot import require_matplotlib

            require_matplotlib()
        scenario = load_input(args.scenario, args.from_log, PROG)
        for axis in axes:  # check every value once, with the scenario's own checks
            for value in axis.values:
                if axis.array_id is None:
                    with_limits(scenario, workflow_limit=value)
                else:
                    with_limits(scenario, array_limits={axis.array_id: value})
    except (ScenarioError, LogError, ValueError, PlotUnavailable) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    seed = scenario.seed if args.seed is None else args.seed
    progress = progress_lines(PROG, "runs", sys.stderr) if args.dask is not None else None
    try:
        points = run_sweep(scenario, axes, seed, args.jobs, seeds=seeds, dask=args.dask,
                           progress=progress)
    except DaskUnavailable as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.plot is not None:  # files first: a closed stdout must not lose the plot
        from swarmfold.shell.sim.plot import plot_sweep

        rows = [{**p.limits, "makespan": p.makespan, **_band(p.makespan_spread)} for p in points]
        try:
            which = f"mean and p5-p95 over {len(seeds)} seeds" if seeds else f"seed {seed}"
            title = f"{scenario.name}: makespan ({which})"
            plot_sweep(rows, [a.name for a in axes], args.plot, title=title)
        except OSError as exc:
            print(f"{PROG}: error: {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.json:
        data = {"scenario": scenario.name, "seed": None if seeds else seed, "seeds": seeds,
                "axes": [a.name for a in axes],
                "points": [p.to_dict() for p in points]}
        print(json.dumps(data, indent=2, sort_keys=True), file=out)
    else:
        print(render_sweep(scenario, axes, points, None if seeds else seed), file=out)
    return EXIT_VIOLATIONS if any(p.violations or p.error is not None for p in points) else EXIT_OK
