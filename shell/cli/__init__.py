"""The ``swarmfold`` command line.

Subcommands register themselves in ``build_parser``; each is a function
``(args) -> exit code``. ``fold`` drives a scenario file (docs/scenario-format.md; the old
``fold`` shape is read through ``shell/sim/fold_format.py``) through the core against the
instant fake server on a virtual clock (``--log FILE`` records every decide step in an event
log); ``replay`` and ``explain`` read event logs (docs/cli-replay-explain.md).

Exit codes of ``fold``: 0 the run ended DONE; 1 it ended otherwise; 2 bad input (file, JSON,
fields). ``replay``: 0 the same decisions; 1 a divergence; 2 unreadable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from swarmfold.core.errors import InvalidConfig, InvalidTopology
from swarmfold.core.statuses import RunStatus
from swarmfold.core.summary import RunSummary

EXIT_OK = 0
EXIT_NOT_DONE = 1
EXIT_BAD_INPUT = 2

#: ``"D" -> "DONE"`` and so on.
RUN_STATUS_NAMES: dict[str, str] = {
    value: name for name, value in vars(RunStatus).items() if not name.startswith("_")
}


def status_name(status: str) -> str:
    """``"D"`` -> ``"DONE"``; unknown codes are shown as they are."""
    return RUN_STATUS_NAMES.get(status, status)


def format_summary(summary: RunSummary, *, events: int, commands: int, title: str = "") -> str:
    """The human summary of a finished run."""
    lines = [
        f"{title}{status_name(summary.final_status)} ({summary.final_status})",
        f"  tasks     {summary.done_count} done, {summary.failed_count} failed,"
        f" {summary.total_tasks} total ({summary.num_previously_complete} previously complete)",
        f"  elapsed   {summary.elapsed:g} s (virtual)",
        f"  events    {events}",
        f"  commands  {commands}",
    ]
    if summary.reason:
        lines.insert(1, f"  reason    {summary.reason}")
    return "\n".join(lines)


# --- subcommands ---------------------------------------------------------------------------


def cmd_fold(args: argparse.Namespace, out: TextIO) -> int:
    """``swarmfold fold SCENARIO [--json] [--log FILE]``."""
    from swarmfold.core.commands import Fail
    from swarmfold.shell.log.codec import to_json
    from swarmfold.shell.server.instant import DriveError, drive
    from swarmfold.shell.sim.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"swarmfold fold: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    writer = recorder = None
    if args.log is not None:
        from swarmfold.shell.log.eventlog import EventLogWriter, LogLocked, LogRecorder, new_header

        header = new_header(
            "fold", scenario.workflow_id, scenario.workflow_run_id, scenario.config,
            extra={"scenario": str(args.scenario)},
        )
        try:
            writer = EventLogWriter(args.log, header)
        except (LogLocked, OSError) as exc:
            print(f"swarmfold fold: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        recorder = LogRecorder(writer)
    try:
        result = drive(
            scenario.topology,
            scenario.config,
            workflow_id=scenario.workflow_id,
            workflow_run_id=scenario.workflow_run_id,
            record=recorder,
        )
    except (InvalidTopology, InvalidConfig) as exc:
        print(f"swarmfold fold: error: {args.scenario}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DriveError as exc:
        print(f"swarmfold fold: error: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
    except OSError as exc:  # the event log could not be written
        print(f"swarmfold fold: error: {args.log}: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
    finally:
        if writer is not None:
            writer.close()
    outcome = result.outcome
    if outcome is None:  # no max_events here, so this cannot happen
        print("swarmfold fold: error: the run did not end", file=sys.stderr)
        return EXIT_NOT_DONE
    summary = outcome.summary
    if args.json:
        print(to_json(summary), file=out)
    else:
        print(
            format_summary(
                summary,
                events=result.events,
                commands=result.commands,
                title=f"{args.scenario}: ",
            ),
            file=out,
        )
        if isinstance(outcome, Fail) and outcome.message not in summary.reason:
            print(f"  failed    {outcome.reason}: {outcome.message}", file=out)
    return EXIT_OK if summary.final_status == RunStatus.DONE else EXIT_NOT_DONE


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    """``swarmfold replay LOG [--until N] [--show-state] [--drift] [--json]``."""
    from swarmfold.shell.log.replay import main as replay_main

    return replay_main(args, out)


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    """``swarmfold run --server URL --workflow-id W --workflow-run-id R [--log FILE] [--json]``."""
    from swarmfold.shell.http.run_command import main as run_main

    return run_main(args, out)


def cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    """``swarmfold explain LOG --task ID [--at N] [--json]``."""
    from swarmfold.shell.log.explain import main as explain_main

    return explain_main(args, out)


Handler = Callable[[argparse.Namespace, TextIO], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subparser sets ``handler``."""
    parser = argparse.ArgumentParser(
        prog="swarmfold",
        description="A deterministic, event-sourced re-implementation of the Jobmon swarm.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fold = sub.add_parser(
        "fold",
        help="run a scenario file against the instant fake server on a virtual clock",
        description="Drive a scenario through the core against the instant fake server.",
    )
    fold.add_argument("scenario", metavar="SCENARIO", help="scenario JSON file")
    fold.add_argument("--json", action="store_true", help="print the RunSummary as JSON")
    fold.add_argument("--log", metavar="FILE", help="record every decide step in an event log (JSONL)")
    fold.set_defaults(handler=cmd_fold)

    replay = sub.add_parser(
        "replay",
        help="re-fold an event log and check that the core makes the same decisions",
        description="Re-fold an event log through the core and compare every decision. Exit 0: "
        "the same decisions; 1: a divergence (the first differing record is shown); 2: "
        "unreadable input (the line and field are named).",
    )
    replay.add_argument("log", metavar="LOG", help="event log (JSONL)")
    replay.add_argument("--until", type=int, metavar="N", help="stop after record N")
    replay.add_argument("--show-state", action="store_true", help="print a summary of the state reached")
    replay.add_argument("--drift", action="store_true", help="list what every full sync found")
    replay.add_argument("--json", action="store_true", help="print the result as JSON")
    replay.set_defaults(handler=cmd_replay)

    explain = sub.add_parser(
        "explain",
        help="say why a task is or is not running at a point of a recorded run",
        description="Replay an event log up to record N (default: the end) and explain one task: "
        "upstreams not DONE, the binding limit, queue position, attempts, history, resources.",
    )
    explain.add_argument("log", metavar="LOG", help="event log (JSONL)")
    explain.add_argument("--task", type=int, required=True, metavar="ID", help="task id")
    explain.add_argument("--at", type=int, metavar="N", help="explain the state after record N")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.set_defaults(handler=cmd_explain)

    from swarmfold.shell.sim.command import add_parser as add_simulate_parser

    add_simulate_parser(sub)

    from swarmfold.shell.sim.from_log import add_parser as add_from_log_parser
    from swarmfold.shell.sim.sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)
    add_from_log_parser(sub)

    from swarmfold.shell.http.run_command import add_run_arguments

    run = sub.add_parser(
        "run",
        help="attach to a workflow run on a Jobmon server and run it to a final status",
        description="Build the state of a workflow run from a Jobmon server and run it. Exit 0: "
        "DONE; 1: any other end (stopped, error, timeout, ...); 2: bad input (unknown workflow, "
        "bad option, the run or log locked by another runner).",
    )
    add_run_arguments(run)
    run.set_defaults(handler=cmd_run)

    from swarmfold.shell.cli.demo import add_parser as add_demo_parser
    from swarmfold.shell.http.serve import add_parser as add_serve_parser
    from swarmfold.shell.jobmon.resume_command import add_parser as add_resume_parser

    add_resume_parser(sub)

    add_serve_parser(sub)
    add_demo_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``swarmfold`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return handler(args, out if out is not None else sys.stdout)
    except BrokenPipeError:
        # The reader went away (``swarmfold ... | head``): not an error of ours. Point stdout
        # at devnull so that the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
