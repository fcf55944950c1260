"""``swarmfold simulate``: the subcommand's arguments and handler (registered by shell/cli/__init__.py).

One run: ``swarmfold simulate SCENARIO [--seed N] [--faults] [--log FILE] [--timeline FILE.csv]
[--plot FILE.png]``. Many seeds: ``swarmfold simulate SCENARIO --seeds 1-500 [--faults]`` prints a
summary table (``--per-seed`` adds a row per seed). ``--from-log LOG`` replaces SCENARIO with the
scenario a recorded run implies.

Exit codes: 0 the simulation ran and every invariant held (whatever the run's final status;
with ``--seeds``: no seed failed); 1 an invariant was violated, or the simulation could not
finish (with ``--seeds``: a seed failed, stalled or timed out); 2 bad input (the scenario file,
an override, an output path, the log).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any, TextIO

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_BAD_INPUT = 2

PROG = "swarmfold simulate"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``simulate`` subparser to ``sub`` (an ``add_subparsers`` result)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate",
        help="simulate a scenario: the core against a simulated Jobmon server, distributor and cluster",
        description="Run a scenario (docs/scenario-format.md) through the production core against "
        "a simulated Jobmon 3.6 server, distributor and cluster on a virtual clock, and report "
        "makespan, statuses, active tasks, utilization, queue waits and requests. --faults lets the "
        "seed draw the run's faults; --seeds runs many seeds (docs/cli-simulate.md). Exit 0: the "
        "invariants held; 1: an invariant was violated or the run could not finish; 2: bad input.",
    )
    p.add_argument("scenario", nargs="?", metavar="SCENARIO", help="scenario JSON file")
    p.add_argument("--from-log", metavar="LOG", help="simulate the scenario built from this event log")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--seed", type=int, metavar="N", help="override the scenario's seed")
    p.add_argument("--workflow-limit", type=int, metavar="N", help="override the workflow limit")
    p.add_argument(
        "--array-limit",
        action="append",
        default=[],
        metavar="ID=N",
        help="override one array's limit (repeatable)",
    )
    p.add_argument("--faults", action="store_true", help="let the seed draw this run's fault profile")
    p.add_argument("--seeds", metavar="A-B", help="simulate many seeds (1-500, 1,5,9-12) and summarize")
    p.add_argument("--per-seed", action="store_true", help="with --seeds: one table row per seed")
    p.add_argument("--jobs", type=int, metavar="N", help="with --seeds: processes (default: one per CPU)")
    p.add_argument("--dask", metavar="ADDRESS", help="with --seeds: run the seeds on this dask.distributed"
                   " scheduler (needs pip install 'swarmfold[dask]')")
    p.add_argument("--log", metavar="FILE", help="record the event log (JSONL, as the shell records)")
    p.add_argument("--timeline", metavar="FILE.csv", help="write the timeline as CSV")
    p.add_argument(
        "--plot", metavar="FILE.png", help="plot active tasks per array and a Gantt chart (matplotlib)"
    )
    p.set_defaults(handler=run)
    return p


def _array_limits(values: list[str]) -> dict[int, int]:
    out: dict[int, int] = {}
    for text in values:
        key, sep, value = text.partition("=")
        try:
            if not sep:
                raise ValueError
            out[int(key)] = int(value)
        except ValueError:
            raise ValueError(f"--array-limit: expected ID=N with integers, got {text!r}") from None
    return out


def reproduce_command(args: argparse.Namespace, seed: int, log: str | None = None) -> str:
    """The command line that runs exactly this seed again (and records its log)."""
    parts = ["swarmfold", "simulate"]
    if args.from_log is not None:
        parts += ["--from-log", args.from_log]
    else:
        parts.append(args.scenario)
    if args.faults:
        parts.append("--faults")
    parts += ["--seed", str(seed)]
    if args.workflow_limit is not None:
        parts += ["--workflow-limit", str(args.workflow_limit)]
    for text in args.array_limit:
        parts += ["--array-limit", text]
    if log is not None:
        parts += ["--log", log]
    return shlex.join(parts)


def _check_options(args: argparse.Namespace) -> None:
    if args.seeds is not None:
        given = (
            ("--seed", args.seed), ("--log", args.log), ("--timeline", args.timeline), ("--plot", args.plot)
        )
        clash = [name for name, value in given if value is not None]
        if clash:
            raise ValueError(f"--seeds runs many seeds: it cannot be combined with {', '.join(clash)}")
    elif args.per_seed or args.jobs is not None or args.dask is not None:
        raise ValueError("--per-seed, --jobs and --dask go with --seeds")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs: must be >= 1, got {args.jobs}")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Handle ``swarmfold simulate``."""
    from swarmfold.shell.log.eventlog import LogError
    from swarmfold.shell.sim.plot import PlotUnavailable
    from swarmfold.shell.sim.scenario import ScenarioError, with_limits
    from swarmfold.shell.sim.sweep import load_input

    try:
        _check_options(args)
        if args.plot is not None:
            from swarmfold.shell.sim.plot import require_matplotlib

            require_matplotlib()
        array_limits = _array_limits(args.array_limit)
        scenario = load_input(args.scenario, args.from_log, PROG)
        scenario = with_limits(scenario, args.workflow_limit, array_limits)
    except (ScenarioError, LogError, ValueError, PlotUnavailable) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.seeds is not None:
        return _run_seeds(args, scenario, out)
    return _run_one(args, scenario, out)


def _run_one(args: argparse.Namespace, scenario: Any, out: TextIO) -> int:
    from swarmfold.shell.log.eventlog import LogLocked
    from swarmfold.shell.sim.driver import SimulationError, simulate
    from swarmfold.shell.sim.report import render_json, render_text

    seed = scenario.seed if args.seed is None else args.seed
    if args.faults:
        from swarmfold.shell.sim.faults import with_drawn_faults

        scenario = with_drawn_faults(scenario, seed)
    try:
        result = simulate(
            scenario, seed, log_path=args.log, timeline_path=args.timeline, record_spans=args.plot is not None
        )
    except (OSError, LogLocked) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SimulationError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        if args.faults:
            print(f"{PROG}: reproduce: {reproduce_command(args, seed)}", file=sys.stderr)
        return EXIT_VIOLATIONS
    report = result.report
    if args.plot is not None:  # files first: a closed stdout must not lose the plot
        from swarmfold.shell.sim.plot import plot_run

        try:
            plot_run(result, args.plot)
        except OSError as exc:
            print(f"{PROG}: error: {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.json:
        print(render_json(report), file=out)
    else:
        print(render_text(report), file=out)
        if report.violations:
            log = args.log or f"seed-{seed}.jsonl"
            print(f"  reproduce    {reproduce_command(args, seed, None if args.log else log)}", file=out)
            record = result.violations[0].record if result.violations else None
            if record is not None:
                then = f"swarmfold replay {shlex.quote(log)} --until {record} --show-state"
                print(f"               then: {then}", file=out)
    return EXIT_VIOLATIONS if report.violations else EXIT_OK


def _run_seeds(args: argparse.Namespace, scenario: Any, out: TextIO) -> int:
    from swarmfold.shell.sim.executor import DaskUnavailable, progress_lines
    from swarmfold.shell.sim.faults import (
        aggregate,
        fault_horizon,
        parse_seeds,
        render_seed_summary,
        run_seeds,
    )

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    horizon = fault_horizon(scenario) if args.faults else None
    progress = progress_lines(PROG, "seeds", sys.stderr) if args.dask is not None else None
    try:
        results = run_seeds(scenario, seeds, faults=args.faults, jobs=args.jobs, horizon=horizon,
                            dask=args.dask, progress=progress)
    except DaskUnavailable as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    def reproduce(seed: int) -> str:
        return reproduce_command(args, seed, f"seed-{seed}.jsonl")

    if args.json:
        data = {
            "scenario": scenario.name,
            "faults": bool(args.faults),
            "horizon": horizon,
            "summary": aggregate(results),
            "seeds": [
                {**r.to_dict(), "reproduce": reproduce(r.seed) if r.failing else None} for r in results
            ],
        }
        print(json.dumps(data, indent=2, sort_keys=True), file=out)
    else:
        print(
            render_seed_summary(
                results, title=scenario.name or "scenario", faults=args.faults, reproduce=reproduce,
                per_seed=args.per_seed, horizon=horizon,
            ),
            file=out,
        )
    return EXIT_VIOLATIONS if any(r.failing for r in results) else EXIT_OK
