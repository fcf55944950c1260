"""The ``swarmfold resume`` subcommand: Jobmon's ``jobmon workflow resume`` / ``resume_workflow_from_id``."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from swarmfold.shell.http.outcome import EXIT_BAD_INPUT
from swarmfold.shell.http.run_command import add_swarm_arguments, print_outcome, swarm_settings
from swarmfold.shell.jobmon.resume import JOBMON, resume_workflow

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    """Register ``swarmfold resume``."""
    parser = sub.add_parser(
        "resume",
        help="resume a workflow as Jobmon does: a new workflow run, its distributor, then run it",
        description="Resume workflow W on a Jobmon server as Jobmon's resume_workflow_from_id does: "
        "increase the resources of tasks that failed with a resource error, ask the active run to "
        "stop (hot: running tasks go on; --reset-running: cold, they are killed), wait until no run "
        "is alive, reset the tasks, create a new workflow run, start Jobmon's distributor for it and "
        "run it to a final status. Exit 0: DONE; 1: any other end; 2: bad input (unknown workflow, "
        "Jobmon's distributor not installed, a bad option).",
    )
    parser.add_argument("--server", required=True, metavar="URL",
                        help="Jobmon server URL (without the route prefix)")
    parser.add_argument("--workflow-id", "-w", type=int, required=True, metavar="W")
    parser.add_argument("--cluster", "-c", metavar="NAME",
                        help="cluster to run on (Jobmon's --cluster); needed to start Jobmon's distributor")
    parser.add_argument("--reset-running", action="store_true",
                        help="cold resume: kill the tasks still running (default: hot, they go on)")
    parser.add_argument("--timeout", "-t", dest="resume_timeout", type=float, default=180.0, metavar="S",
                        help="seconds to wait for the previous run to exit and for the distributor "
                        "(default 180, as Jobmon)")
    parser.add_argument("--keep-resources", action="store_true",
                        help="do not increase the resources of tasks that failed with a resource error")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--no-distributor", action="store_true",
                     help="start no distributor: you start one for the new run (its id is printed)")
    who.add_argument("--start-distributor", metavar="CMD",
                     help="start this command instead of Jobmon's distributor; {workflow_run_id} and "
                     "{cluster_name} are filled in; it must print ALIVE on stderr")
    add_swarm_arguments(parser, timeout_flag="--execution-timeout")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace, out: TextIO) -> int:
    """``swarmfold resume``; returns the exit code."""
    settings = swarm_settings(args, "resume")
    if settings is None:
        return EXIT_BAD_INPUT
    distributor: str | None = JOBMON
    if args.no_distributor:
        distributor = None
    elif args.start_distributor:
        distributor = args.start_distributor
    outcome = resume_workflow(
        args.server,
        args.workflow_id,
        cluster_name=args.cluster,
        reset_running=args.reset_running,
        resume_timeout=args.resume_timeout,
        increase_resources=not args.keep_resources,
        distributor=distributor,
        **settings,
    )
    run = f" run {outcome.workflow_run_id}" if outcome.workflow_run_id is not None else ""
    print_outcome(outcome, f"workflow {args.workflow_id}{run}: ", args.json, out)
    return outcome.exit_code
