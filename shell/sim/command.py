"""``swarmfold simulate``: the subcommand's arguments and handler (registered by shell/cli.py).

Exit codes: 0 the simulation ran and every invariant held (whatever the run's final status);
1 an invariant was violated, or the simulation could not finish; 2 bad input (the scenario
file, an override, an output path).
"""

from __future__ import annotations

import argparse
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
        "makespan, statuses, active tasks, utilization, queue waits and requests. Exit 0: the "
        "invariants held; 1: an invariant was violated or the run could not finish; 2: bad input.",
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario JSON file")
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
    p.add_argument("--log", metavar="FILE", help="record the event log (JSONL, as the shell records)")
    p.add_argument("--timeline", metavar="FILE.csv", help="write the timeline as CSV")
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


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Handle ``swarmfold simulate``."""
    from swarmfold.shell.sim.driver import SimulationError, simulate
    from swarmfold.shell.sim.report import render_json, render_text
    from swarmfold.shell.sim.scenario import ScenarioError, load_scenario, with_limits

    try:
        array_limits = _array_limits(args.array_limit)
        scenario = load_scenario(args.scenario)
        scenario = with_limits(scenario, args.workflow_limit, array_limits)
    except (ScenarioError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from swarmfold.shell.eventlog import LogLocked

    try:
        result = simulate(scenario, args.seed, log_path=args.log, timeline_path=args.timeline)
    except (OSError, LogLocked) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SimulationError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_VIOLATIONS
    report = result.report
    print(render_json(report) if args.json else render_text(report), file=out)
    return EXIT_VIOLATIONS if report.violations else EXIT_OK
