"""``swarmfold sweep``: what-if sweeps of the concurrency limits, in parallel processes.

``swarmfold sweep SCENARIO --workflow-limit 100,200,500 --array-limit 2=10,20,40`` simulates
every point of the grid (the product of the listed values; limits not listed keep the
scenario's; the scenario's ``limit_changes`` of a swept limit are dropped, so a point's limit
holds for the whole run) with the same seed, one process per CPU, and prints a table: makespan, cluster
utilization, peak and mean active tasks, done/total, per point. ``--plot FILE.png`` draws the
makespan against each swept limit; ``--from-log LOG`` sweeps the scenario a recorded run
implies (``shell/sim/from_log.py``).

Exit codes: 0 every point ran and every invariant held; 1 a point violated an invariant or
could not finish; 2 bad input.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TextIO

import attrs
from attrs import asdict, field, frozen

from swarmfold.core.config import UNLIMITED
from swarmfold.shell.sim.scenario import Scenario

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
    """One simulated point of the grid. ``limits`` maps each axis name to its value."""

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


_WORKER: tuple[Scenario, tuple[Axis, ...], int | None] | None = None


def _init_worker(scenario: Scenario, axes: tuple[Axis, ...], seed: int | None) -> None:
    global _WORKER
    _WORKER = (scenario, axes, seed)


def _run_in_worker(limits: dict[str, int]) -> SweepPoint:
    assert _WORKER is not None
    scenario, axes, seed = _WORKER
    return run_point(scenario, axes, limits, seed)


def run_sweep(
    scenario: Scenario,
    axes: Sequence[Axis],
    seed: int | None = None,
    jobs: int | None = None,
    progress: Callable[[SweepPoint], None] | None = None,
) -> list[SweepPoint]:
    """Simulate every point of the grid, in ``jobs`` processes (default ``os.cpu_count()``);
    the points come back in grid order."""
    points = grid(axes)
    scenario = without_swept_changes(scenario, axes)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(points)))
    results: list[SweepPoint] = []
    if jobs == 1:
        for limits in points:
            results.append(run_point(scenario, axes, limits, seed))
            if progress is not None:
                progress(results[-1])
        return results
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(scenario, tuple(axes), seed)
    ) as pool:
        for point in pool.map(_run_in_worker, points):
            results.append(point)
            if progress is not None:
                progress(point)
    return results


def _limit(value: int) -> str:
    return "unlimited" if value >= UNLIMITED else str(value)


def render_sweep(scenario: Scenario, axes: Sequence[Axis], points: Sequence[SweepPoint], seed: int) -> str:
    """The sweep's table, then the best point."""
    head = [axis.name for axis in axes]
    head += ["status", "makespan", "utilization", "peak active", "mean active", "done"]
    rows: list[list[str]] = []
    for p in points:
        cells = [_limit(p.limits[axis.name]) for axis in axes]
        if p.error is not None:
            rows.append(cells + ["stall", "-", "-", "-", "-", "-"])
            continue
        util = "n/a" if p.utilization is None else f"{100 * p.utilization:.1f}%"
        status = (p.final_status or "-") + (" !" if p.violations else "")
        done = f"{p.done}/{p.total_tasks}"
        rows.append(cells + [status, f"{p.makespan:g}", util, str(p.peak_active), f"{p.mean_active:g}", done])
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(head)]
    n_axes = len(axes)

    def line(cells: Sequence[str]) -> str:
        out = []
        for k, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            left = k == n_axes  # the status column reads better left-aligned
            out.append(cell.ljust(width) if left else cell.rjust(width))
        return "  " + "  ".join(out).rstrip()

    title = scenario.name or "scenario"
    lines = [f"{title}: sweep of {len(points)} point(s), seed {seed}"]
    lines.append(line(head))
    lines.extend(line(r) for r in rows)
    finished = [p for p in points if p.makespan is not None and p.final_status == "D" and not p.violations]
    if finished:
        best = min(finished, key=lambda p: (p.makespan, tuple(p.limits.values())))
        which = ", ".join(f"{k}={_limit(v)}" for k, v in best.limits.items())
        lines.append(f"  best         {which}: makespan {best.makespan:g} s")
    bad = [p for p in points if p.violations or p.error is not None]
    if bad:
        lines.append(
            f"  PROBLEMS     {len(bad)} point(s) violated an invariant or could not finish"
            " (marked ! or stall)"
        )
    else:
        lines.append("  invariants   ok at every point")
    return "\n".join(lines)


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
    p.add_argument("--jobs", type=int, metavar="N", help="processes (default: one per CPU)")
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


def run(args: argparse.Namespace, out: TextIO) -> int:
    from swarmfold.shell.log.eventlog import LogError
    from swarmfold.shell.sim.plot import PlotUnavailable
    from swarmfold.shell.sim.scenario import ScenarioError, with_limits

    try:
        axes = parse_axes(args.workflow_limit, args.array_limit)
        if not axes:
            raise ValueError("nothing to sweep: give --workflow-limit and/or --array-limit")
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs: must be >= 1, got {args.jobs}")
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
    points = run_sweep(scenario, axes, seed, args.jobs)
    if args.plot is not None:  # files first: a closed stdout must not lose the plot
        from swarmfold.shell.sim.plot import plot_sweep

        rows = [{**p.limits, "makespan": p.makespan} for p in points]
        try:
            title = f"{scenario.name}: makespan (seed {seed})"
            plot_sweep(rows, [a.name for a in axes], args.plot, title=title)
        except OSError as exc:
            print(f"{PROG}: error: {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.json:
        data = {"scenario": scenario.name, "seed": seed, "axes": [a.name for a in axes],
                "points": [p.to_dict() for p in points]}
        print(json.dumps(data, indent=2, sort_keys=True), file=out)
    else:
        print(render_sweep(scenario, axes, points, seed), file=out)
    return EXIT_VIOLATIONS if any(p.violations or p.error is not None for p in points) else EXIT_OK
