"""The ``swarmfold run`` subcommand: its options and its entry point."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from swarmfold.core.config import SwarmConfig
from swarmfold.shell.http.attach_run import run_workflow_run
from swarmfold.shell.http.gateway import (
    DEFAULT_CLIENT_VERSION,
    DEFAULT_ROUTE_PREFIX,
    DEFAULT_TIMEOUT,
    RetryPolicy,
)
from swarmfold.shell.http.runner import EXIT_BAD_INPUT, format_outcome

__all__ = ["add_run_arguments", "add_swarm_arguments", "main", "print_outcome", "swarm_settings"]

def add_run_arguments(parser: Any) -> None:
    """The options of ``swarmfold run`` (Jobmon's defaults where Jobmon has one)."""
    parser.add_argument("--server", required=True, metavar="URL",
                        help="Jobmon server URL (without the route prefix)")
    parser.add_argument("--workflow-id", type=int, required=True, metavar="W")
    parser.add_argument("--workflow-run-id", type=int, required=True, metavar="R")
    add_swarm_arguments(parser, timeout_flag="--timeout")
    parser.add_argument("--distributor-pid", type=int, metavar="PID",
                        help="fail the run (distributor_died) when this process is gone")
    parser.add_argument("--distributor-command", metavar="CMD",
                        help="shell command run periodically; a non-zero exit means the distributor died")


def add_swarm_arguments(parser: Any, timeout_flag: str) -> None:
    """The options ``run`` and ``resume`` share: the log, the swarm's settings, HTTP and
    retries. ``timeout_flag`` names the workflow timeout (``resume`` calls it
    ``--execution-timeout``, as Jobmon's CLI does)."""
    d = SwarmConfig()
    parser.add_argument("--log", metavar="FILE", help="record every decision in an event log (JSONL)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--heartbeat-interval", type=float, default=d.heartbeat_interval, metavar="S",
                        help=f"seconds between heartbeats and syncs (default {d.heartbeat_interval:g})")
    parser.add_argument("--report-by-buffer", type=float, default=d.report_by_buffer, metavar="X",
                        help=f"report-by = interval * X (default {d.report_by_buffer:g})")
    parser.add_argument("--wedged-sync-interval", type=float, default=d.wedged_sync_interval, metavar="S",
                        help=f"seconds between full syncs; < 0: always (default {d.wedged_sync_interval:g})")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failed task")
    parser.add_argument(timeout_flag, dest="timeout", type=float, default=d.timeout, metavar="S",
                        help=f"workflow timeout in seconds (default {d.timeout:g})")
    parser.add_argument("--max-batch-size", type=int, default=d.max_batch_size, metavar="N",
                        help=f"tasks per queue_task_batch, the cap (default {d.max_batch_size})")
    parser.add_argument("--adaptive-batching", action="store_true",
                        help="size batches from measured queue_task_batch durations (capped)")
    parser.add_argument("--chunk-size", type=int, default=d.chunk_size, metavar="N",
                        help=f"tasks per get_tasks / get_downstream_tasks chunk (default {d.chunk_size})")
    parser.add_argument("--max-seconds", type=float, metavar="S",
                        help="detach after S seconds (the run is left as it is)")
    parser.add_argument("--route-prefix", default=DEFAULT_ROUTE_PREFIX, metavar="P")
    parser.add_argument("--client-version", default=DEFAULT_CLIENT_VERSION, metavar="V",
                        help="client_jobmon_version sent with every request")
    parser.add_argument("--http-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"seconds per HTTP attempt (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--retry-attempts", type=int, default=RetryPolicy().max_attempts, metavar="N")
    parser.add_argument("--retry-seconds", type=float, default=RetryPolicy().max_seconds, metavar="S")
    parser.add_argument("--stop-after-executions", type=int, metavar="N",
                        help="end the run in ERROR once N tasks have been seen DONE (Jobmon's test hook "
                        "fail_after_n_executions), e.g. to reproduce Jobmon's stop/resume tests")
    parser.add_argument("--server-timeout", type=float, metavar="S",
                        help="end the run (exit 1) when a route has had no successful answer for S "
                        "seconds: the server is gone or has forgotten the run (default: --retry-seconds)")
    parser.add_argument("--max-concurrent-batches", type=int, default=4, metavar="N",
                        help="threads that send queue_task_batch (default 4); the batches and binds "
                        "themselves go one at a time, as Jobmon's scheduler sends them")
    parser.add_argument("--max-parallel-requests", type=int, metavar="N",
                        help="at most N requests on the wire at once, all lanes together (default: no "
                        "cap; 1-2 suit Jobmon's test server on SQLite). Binds and run-status updates "
                        "are always sent one at a time")
    parser.add_argument("--progress", choices=("auto", "tty", "lines", "off"), default="auto",
                        help="progress on stderr: a live line on a TTY, log lines otherwise")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every retried request")


def swarm_settings(args: Any, command: str) -> dict[str, Any] | None:
    """The keyword arguments of ``run_workflow_run`` that ``add_swarm_arguments`` gives; None
    (after printing the error) for a bad value."""
    from swarmfold.core.errors import InvalidConfig

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    try:
        config = SwarmConfig(
            heartbeat_interval=args.heartbeat_interval,
            report_by_buffer=args.report_by_buffer,
            wedged_sync_interval=args.wedged_sync_interval,
            fail_fast=args.fail_fast,
            timeout=args.timeout,
            max_batch_size=args.max_batch_size,
            adaptive_batching=args.adaptive_batching,
            chunk_size=args.chunk_size,
            fail_after_n_executions=args.stop_after_executions,
        )
        retry = RetryPolicy(max_attempts=args.retry_attempts, max_seconds=args.retry_seconds)
        parallel = args.max_parallel_requests
        if args.retry_attempts < 1 or args.max_concurrent_batches < 1 or args.http_timeout <= 0 or (
            parallel is not None and parallel < 1
        ):
            raise InvalidConfig(
                "--retry-attempts, --max-concurrent-batches, --max-parallel-requests and "
                "--http-timeout must be > 0"
            )
    except InvalidConfig as exc:
        print(f"swarmfold {command}: error: {exc}", file=sys.stderr)
        return None
    return {
        "config": config,
        "log_path": args.log,
        "max_seconds": args.max_seconds,
        "progress": args.progress,
        "route_prefix": args.route_prefix,
        "client_version": args.client_version,
        "timeout": args.http_timeout,
        "retry": retry,
        "unreachable_after": args.server_timeout,
        "max_concurrent_batches": args.max_concurrent_batches,
        "max_parallel_requests": args.max_parallel_requests,
    }


def print_outcome(outcome: Any, title: str, as_json: bool, out: TextIO) -> None:
    """The outcome as JSON (``--json``) or as text under ``title``."""
    import json

    if as_json:
        print(json.dumps(outcome.to_dict(), sort_keys=True), file=out)
    else:
        print(format_outcome(outcome, title), file=out)


def main(args: Any, out: TextIO) -> int:
    """``swarmfold run``: attach to a workflow run and run it; returns the exit code."""
    settings = swarm_settings(args, "run")
    if settings is None:
        return EXIT_BAD_INPUT
    outcome = run_workflow_run(
        args.server,
        args.workflow_id,
        args.workflow_run_id,
        distributor_pid=args.distributor_pid,
        distributor_command=args.distributor_command,
        **settings,
    )
    print_outcome(outcome, f"workflow {args.workflow_id} run {args.workflow_run_id}: ", args.json, out)
    return outcome.exit_code
