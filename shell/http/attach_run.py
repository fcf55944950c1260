"""Attach to a workflow run on a Jobmon server and run it: the entry point of ``swarmfold run``.

``run_workflow_run`` fetches the workflow's metadata and the server time, feeds
``AttachStarted`` and lets the ``Runner`` drive the run to a final status.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import attrs

from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import AttachStarted
from swarmfold.shell.cli.progress import Progress
from swarmfold.shell.http.gateway import (
    DEFAULT_CLIENT_VERSION,
    DEFAULT_ROUTE_PREFIX,
    DEFAULT_TIMEOUT,
    Attempt,
    GatewayError,
    JobmonGateway,
    RetryPolicy,
)
from swarmfold.shell.http.outcome import EXIT_BAD_INPUT, EXIT_NOT_DONE, RunOutcome
from swarmfold.shell.http.run_guards import RunLock, RunLocked
from swarmfold.shell.http.runner import Runner

__all__ = ["bad_server_url", "run_workflow_run"]

log = logging.getLogger("swarmfold.runner")

_SELECTOR = re.compile(r"(task|array):[0-9]+")


def bad_server_url(server_url: str) -> str | None:
    """Why ``server_url`` cannot be a Jobmon server's URL, or None."""
    if server_url.startswith(("http://", "https://")):
        return None
    return f"--server must be an http:// or https:// URL, got {server_url!r}"


def run_workflow_run(
    server_url: str,
    workflow_id: int,
    workflow_run_id: int,
    *,
    config: SwarmConfig | None = None,
    log_path: str | os.PathLike[str] | None = None,
    max_seconds: float | None = None,
    ticks: int | None = None,
    distributor_pid: int | None = None,
    distributor_command: str | None = None,
    distributor_check_interval: float | None = None,
    distributor_probe: Callable[[], str | None] | None = None,
    header_extra: Mapping[str, Any] | None = None,
    progress: str | Progress = "auto",
    progress_stream: TextIO | None = None,
    route_prefix: str = DEFAULT_ROUTE_PREFIX,
    client_version: str = DEFAULT_CLIENT_VERSION,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    unreachable_after: float | None = None,
    max_concurrent_batches: int = 4,
    max_parallel_requests: int | None = None,
    callables: Mapping[str, Callable[..., Any]] | None = None,
    compute_resources: Mapping[str, Callable[..., Any]] | None = None,
    runner_id: str | None = None,
    lock_dir: str | None = None,
    install_signal_handlers: bool = True,
    gateway: JobmonGateway | None = None,
    on_runner: Callable[[Runner], None] | None = None,
) -> RunOutcome:
    """Attach to workflow run ``workflow_run_id`` of workflow ``workflow_id`` on the Jobmon
    server at ``server_url`` and run it to a final status.

    Builds the state from the server (``fetch_workflow_metadata``, ``/time``, then the core
    loads tasks and edges in chunks), then runs the main loop. Never raises for anything the
    server or the run does: the outcome says how it ended (``exit_code`` 0 only for DONE).
    ``on_runner`` sees the ``Runner`` before it starts (keep it to call ``request_stop``).
    ``distributor_probe`` (None while alive, else why not) watches a distributor this process
    started; ``header_extra`` adds facts to the event log's header (a resume's).
    ``compute_resources`` maps ``"task:<id>"`` or ``"array:<id>"`` to a callable returning a
    task's requested resources, called once when the task becomes ready (Jobmon's
    ``compute_resources_callable``); its answers are in the event log, so a replay calls none.
    """
    from swarmfold.shell.log.eventlog import EventLogWriter, LogLocked, default_runner_id, new_header

    config = config if config is not None else SwarmConfig()
    runner_id = runner_id if runner_id is not None else default_runner_id()
    path = None if log_path is None else os.fspath(log_path)
    t0 = time.monotonic()

    def clock() -> float:
        return time.monotonic() - t0

    def not_run(reason: str, code: int, message: str, requests: dict[str, int] | None = None) -> RunOutcome:
        log.error("[%s] %s", runner_id, message)
        return RunOutcome(None, reason, code, path, runner_id, message=message,
                          requests=requests or {}, elapsed=clock(), workflow_run_id=workflow_run_id)

    bad_url = bad_server_url(server_url)
    if bad_url is not None:
        return not_run("bad_input", EXIT_BAD_INPUT, bad_url)
    selectors = dict(compute_resources or {})
    bad = [k for k in selectors if not _SELECTOR.fullmatch(str(k))]
    if bad:
        return not_run("bad_input", EXIT_BAD_INPUT,
                       f"compute_resources: keys must be 'task:<id>' or 'array:<id>', got {bad[0]!r}")
    callables = {**(callables or {}), **selectors}
    try:
        run_lock = RunLock(server_url, workflow_run_id, runner_id, lock_dir)
    except RunLocked as exc:
        return not_run("locked", EXIT_BAD_INPUT, str(exc))
    except OSError as exc:
        where = lock_dir or tempfile.gettempdir()
        return not_run("bad_input", EXIT_BAD_INPUT, f"cannot open the run lock in {where}: {exc}")
    writer: Any = None
    gw: JobmonGateway | None = None
    try:
        if path is not None:
            header = new_header(
                "run", workflow_id, workflow_run_id, config, runner_id=runner_id,
                extra={
                    "server": server_url,
                    "route_prefix": route_prefix,
                    "client_jobmon_version": client_version,
                    **(header_extra or {}),
                },
            )
            try:
                writer = EventLogWriter(path, header)
            except LogLocked as exc:
                return not_run("locked", EXIT_BAD_INPUT, str(exc))
            except OSError as exc:
                return not_run("bad_input", EXIT_BAD_INPUT, f"{path}: cannot write the event log: {exc}")

        def on_attempt(a: Attempt) -> None:
            if a.error:
                log.warning("[%s] %s: attempt %d: %s%s", runner_id, a.route, a.attempt, a.error,
                            "; retrying" if a.will_retry else "")

        gw = gateway if gateway is not None else JobmonGateway(
            server_url, route_prefix=route_prefix, client_version=client_version, timeout=timeout,
            retry=retry, clock=clock, on_attempt=on_attempt, unreachable_after=unreachable_after,
            pool_size=1 + 2 + 8 + max_concurrent_batches + 2, max_parallel_requests=max_parallel_requests,
        )
        try:
            meta = gw.fetch_workflow_metadata(workflow_id)
        except GatewayError as exc:
            return not_run("bootstrap_failed", EXIT_NOT_DONE, str(exc), dict(gw.request_counts))
        if meta is None:
            return not_run(
                "not_found", EXIT_BAD_INPUT,
                f"GET {route_prefix}/workflow/{workflow_id}/fetch_workflow_metadata: the server at "
                f"{server_url} knows no workflow {workflow_id} (it answered an empty workflow)",
                dict(gw.request_counts),
            )
        try:
            server_time = gw.server_time()
            previously_complete = gw.done_task_count(workflow_id)
        except GatewayError as exc:
            return not_run("bootstrap_failed", EXIT_NOT_DONE, str(exc), dict(gw.request_counts))

        if isinstance(progress, Progress):
            reporter: Progress | None = progress
        else:
            reporter = Progress(progress_stream, progress, label=runner_id)
            if not reporter.enabled:
                reporter = None
        runner = Runner(
            gw,
            runner_id=runner_id,
            clock=clock,
            writer=writer,
            log_path=path,
            max_seconds=max_seconds,
            ticks=ticks,
            distributor_pid=distributor_pid,
            distributor_command=distributor_command,
            distributor_check_interval=distributor_check_interval,
            distributor_probe=distributor_probe,
            progress=reporter,
            callables=callables,
            max_concurrent_batches=max_concurrent_batches,
            install_signal_handlers=install_signal_handlers,
        )
        start = AttachStarted(
            at=clock(),
            workflow_id=workflow_id,
            workflow_run_id=workflow_run_id,
            dag_id=meta.dag_id,
            workflow_limit=meta.max_concurrently_running,
            config=config,
            run_status="B",
            server_time=server_time,
            previously_complete=previously_complete,
            compute_resources=tuple((key, key) for key in sorted(selectors)),
        )
        if on_runner is not None:
            on_runner(runner)
        outcome = runner.run(start)
        return attrs.evolve(outcome, elapsed=clock(), workflow_run_id=workflow_run_id)
    finally:
        if writer is not None:
            writer.close()
        if gw is not None and gateway is None:
            gw.close()
        run_lock.release()
