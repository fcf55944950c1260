"""Resume a workflow as Jobmon's ``resume_workflow_from_id`` does, then run it: ``swarmfold resume``.

The steps (protocol doc §3, Jobmon's ``WorkflowRunFactory``):

1. ``fetch_workflow_metadata`` (the workflow must exist);
2. ``increase_resources`` (unless ``increase_resources=False``: Jobmon's ``--keep-resources``);
3. ``set_resume`` (an active run goes C, cold, or H, hot) and ``is_resumable`` polled until no
   run of the workflow is alive, within ``resume_timeout``;
4. ``set_resume_state`` (the tasks not DONE back to G);
5. ``POST /workflow_run`` (a new run, L) and ``update_status B``;
6. the distributor: Jobmon's (``python -m jobmon.distributor.cli start ...``) started and
   awaited until it prints ``ALIVE``, or a given command line, or none (the user starts it);
   then the run is awaited until the distributor has launched it (O);
7. the new run is driven as ``swarmfold run`` drives one, watching the distributor (its
   death ends the run as Jobmon's does); at the end the distributor is stopped.

Everything is in the event log: the header's ``resume`` member holds the created run, the
resume kind and the distributor's command line and pid; its death is a ``DistributorDied``
event naming the exit code.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import attrs
from attrs import frozen

from swarmfold.core.config import SwarmConfig
from swarmfold.shell.http import routes
from swarmfold.shell.http.attach_run import bad_server_url, run_workflow_run
from swarmfold.shell.http.gateway import (
    DEFAULT_CLIENT_VERSION,
    DEFAULT_ROUTE_PREFIX,
    DEFAULT_TIMEOUT,
    GatewayError,
    JobmonGateway,
    RetryPolicy,
)
from swarmfold.shell.http.outcome import EXIT_BAD_INPUT, EXIT_NOT_DONE, RunOutcome
from swarmfold.shell.jobmon.distributor import (
    DistributorError,
    DistributorProcess,
    DistributorUnavailable,
    jobmon_distributor_argv,
    require_jobmon_distributor,
)

__all__ = ["JOBMON", "CreatedRun", "ResumeError", "prepare_resume", "resume_workflow"]

log = logging.getLogger("swarmfold.resume")

#: ``distributor=JOBMON``: start Jobmon's own distributor for the new run.
JOBMON = "jobmon"
#: Run statuses that mean the distributor has taken the run (the swarm may ask for R).
LAUNCHED = frozenset("OR")


class ResumeError(Exception):
    """The workflow could not be resumed; ``reason`` is the outcome's ``failed_reason``."""

    def __init__(self, reason: str, message: str, exit_code: int = EXIT_NOT_DONE) -> None:
        super().__init__(message)
        self.reason = reason
        self.exit_code = exit_code


@frozen
class CreatedRun:
    """What the preparation did: the new run and the facts the event log's header keeps."""

    workflow_run_id: int
    dag_id: int
    reset_running: bool
    resources_increased: tuple[int, ...] = ()
    waited_for_resumable: float = 0.0

    def header(self) -> dict[str, Any]:
        return {
            "workflow_run_id": self.workflow_run_id,
            "kind": "cold" if self.reset_running else "hot",
            "resources_increased": list(self.resources_increased),
            "waited_for_resumable": round(self.waited_for_resumable, 3),
        }


def _member(value: Any, name: str, route: str, kinds: type | tuple[type, ...]) -> Any:
    if not isinstance(value, dict) or name not in value or not isinstance(value[name], kinds):
        raise ResumeError("bad_answer", f"{route}: unexpected answer {value!r:.200} (no {name!r})")
    return value[name]


def prepare_resume(
    gw: JobmonGateway,
    workflow_id: int,
    *,
    reset_running: bool = False,
    resume_timeout: float = 180.0,
    increase_resources: bool = True,
    next_report_increment: float = 93.0,
    jobmon_version: str = DEFAULT_CLIENT_VERSION,
    user: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CreatedRun:
    """Steps 1-5 of the module doc: a new workflow run of ``workflow_id``, BOUND. Raises
    ``ResumeError`` (no such workflow, a run that does not end within ``resume_timeout``, a
    refused new run) or ``GatewayError`` (the server failed)."""
    meta = gw.fetch_workflow_metadata(workflow_id)
    if meta is None:
        raise ResumeError("not_found", f"the server at {gw.base_url} knows no workflow {workflow_id}",
                          EXIT_BAD_INPUT)
    increased: tuple[int, ...] = ()
    if increase_resources:
        answer = gw.call(routes.INCREASE_RESOURCES, body={}, workflow_id=workflow_id)
        ids = _member(answer, "updated_task_ids", "increase_resources", list)
        increased = tuple(int(t) for t in ids)
        if increased:
            log.info("increased the resources of %d task(s) after a resource error", len(increased))
    gw.call(routes.SET_RESUME, body={"reset_running_jobs": reset_running}, workflow_id=workflow_id)
    started = clock()
    # Jobmon polls every timeout / 10 s; swarmfold at most every 2 s, so a short wait stays short.
    poll = min(round(resume_timeout / 10.0, 1), 2.0) or 0.1
    while True:
        answer = gw.call(routes.IS_RESUMABLE, workflow_id=workflow_id)
        if _member(answer, "workflow_is_resumable", "is_resumable", bool):
            break
        waited = clock() - started
        if waited > resume_timeout:
            pending = answer.get("pending_kill_self", 0) if isinstance(answer, dict) else 0
            stuck = f"; {pending} task instance(s) still in KILL_SELF" if pending else ""
            raise ResumeError(
                "not_resumable",
                f"workflow {workflow_id}: the previous workflow run did not exit within "
                f"{resume_timeout:g} s{stuck}",
            )
        log.info("waiting for the previous run of workflow %d to exit (%.0f s left)", workflow_id,
                 resume_timeout - waited)
        sleep(poll)
    waited = clock() - started
    answer = gw.call(routes.SET_RESUME_STATE, body={"reset_if_running": reset_running},
                     workflow_id=workflow_id)
    if isinstance(answer, dict) and answer.get("err_msg"):
        raise ResumeError("not_resumable", f"set_resume_state: {answer['err_msg']}")
    answer = gw.call(routes.CREATE_WORKFLOW_RUN, body={
        "workflow_id": workflow_id,
        "user": user if user is not None else getpass.getuser(),
        "jobmon_version": jobmon_version,
        "next_report_increment": next_report_increment,
    })
    run_id = answer.get("workflow_run_id") if isinstance(answer, dict) else None
    if not isinstance(run_id, int) or isinstance(run_id, bool):
        why = answer.get("err_msg") if isinstance(answer, dict) else None
        raise ResumeError("not_resumable", f"POST /workflow_run: no new run: {why or repr(answer)[:200]}")
    status = _member(gw.call(routes.UPDATE_RUN_STATUS, body={"status": "B"}, workflow_run_id=run_id),
                     "status", "update_status", str)
    if status != "B":
        raise ResumeError("not_resumable", f"workflow run {run_id}: update_status B answered {status!r}")
    return CreatedRun(run_id, meta.dag_id, reset_running, increased, waited)


def wait_for_launch(
    gw: JobmonGateway,
    workflow_run_id: int,
    *,
    timeout: float,
    next_report_increment: float,
    still_alive: Callable[[], str | None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll the run's status until its distributor has launched it (O, or R), within
    ``timeout``. The poll is a heartbeat reporting B, which changes nothing (B -> B is not a
    transition) and answers the run's status. Raises ``ResumeError``."""
    started = clock()
    while True:
        body = {"status": "B", "next_report_increment": next_report_increment}
        answer = gw.call(routes.LOG_HEARTBEAT, body=body, workflow_run_id=workflow_run_id)
        status: str = _member(answer, "status", "log_heartbeat", str)
        if status in LAUNCHED:
            return status
        if status not in ("B", "I"):
            raise ResumeError("not_launched", f"workflow run {workflow_run_id} is {status}, not launched")
        dead = still_alive()
        if dead is not None:
            raise ResumeError("distributor_died", dead)
        if clock() - started > timeout:
            raise ResumeError(
                "not_launched",
                f"workflow run {workflow_run_id} is still {status} after {timeout:g} s: no distributor "
                "has launched it",
            )
        sleep(0.2)


def _distributor_argv(distributor: str | Sequence[str] | None, cluster_name: str | None,
                      workflow_run_id: int) -> list[str] | None:
    if distributor is None:
        return None
    if distributor == JOBMON:  # resume_workflow has checked the cluster name
        return jobmon_distributor_argv(cluster_name or "", workflow_run_id)
    words = shlex.split(distributor) if isinstance(distributor, str) else list(distributor)
    fill = {"workflow_run_id": str(workflow_run_id), "cluster_name": cluster_name or ""}
    return [w.format(**fill) for w in words]


@contextlib.contextmanager
def _interrupts_raise() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` (as SIGINT does) while the run is prepared, so a
    distributor already started is stopped on the way out."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resume_workflow(
    server_url: str,
    workflow_id: int,
    *,
    cluster_name: str | None = None,
    reset_running: bool = False,
    resume_timeout: float = 180.0,
    increase_resources: bool = True,
    distributor: str | Sequence[str] | None = JOBMON,
    distributor_check_interval: float | None = None,
    config: SwarmConfig | None = None,
    route_prefix: str = DEFAULT_ROUTE_PREFIX,
    client_version: str = DEFAULT_CLIENT_VERSION,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    unreachable_after: float | None = None,
    user: str | None = None,
    say: TextIO | None = None,
    **run_options: Any,
) -> RunOutcome:
    """Resume workflow ``workflow_id`` on the Jobmon server at ``server_url`` and run the new
    workflow run to a final status (module doc). ``distributor`` is ``JOBMON`` (start Jobmon's
    distributor for ``cluster_name``; a clear error when ``jobmon.distributor.cli`` is not
    importable), a command line (``{workflow_run_id}`` and ``{cluster_name}`` are filled in)
    or None (start your own; the run waits for it within ``resume_timeout``). The other
    keywords are ``run_workflow_run``'s. Never raises for what the server or the distributor
    does: the outcome says how it ended."""
    config = config if config is not None else SwarmConfig()
    increment = config.heartbeat_interval * config.report_by_buffer
    say = say if say is not None else sys.stderr
    t0 = time.monotonic()

    def not_run(reason: str, code: int, message: str) -> RunOutcome:
        log.error("%s", message)
        return RunOutcome(None, reason, code, run_options.get("log_path"), "", message=message,
                          elapsed=time.monotonic() - t0)

    bad_url = bad_server_url(server_url)
    if bad_url is not None:
        return not_run("bad_input", EXIT_BAD_INPUT, bad_url)
    if distributor == JOBMON:
        try:
            require_jobmon_distributor()
        except DistributorUnavailable as exc:
            return not_run("distributor_unavailable", EXIT_BAD_INPUT, str(exc))
        if not cluster_name:
            return not_run("bad_input", EXIT_BAD_INPUT,
                           "starting Jobmon's distributor needs the cluster name (--cluster NAME)")
    process: DistributorProcess | None = None
    gw = JobmonGateway(server_url, route_prefix=route_prefix, client_version=client_version, timeout=timeout,
                       retry=retry, unreachable_after=unreachable_after,
                       max_parallel_requests=run_options.get("max_parallel_requests"))
    try:
        with _interrupts_raise():
            try:
                created = prepare_resume(
                    gw, workflow_id, reset_running=reset_running, resume_timeout=resume_timeout,
                    increase_resources=increase_resources, next_report_increment=increment,
                    jobmon_version=client_version, user=user,
                )
                argv = _distributor_argv(distributor, cluster_name, created.workflow_run_id)
                print(f"workflow {workflow_id}: created workflow run {created.workflow_run_id} "
                      f"({'cold' if reset_running else 'hot'} resume)", file=say)
                if argv is None:
                    run_id = created.workflow_run_id
                    example = jobmon_distributor_argv(cluster_name or "CLUSTER", run_id, "python")
                    print(f"start its distributor, e.g.: {shlex.join(example)}", file=say)
                    probe: Callable[[], str | None] | None = None
                else:
                    process = DistributorProcess(argv)
                    process.start(timeout=resume_timeout)
                    probe = process.dead
                    print(f"distributor started (pid {process.pid}): {shlex.join(argv)}", file=say)
                wait_for_launch(gw, created.workflow_run_id, timeout=resume_timeout,
                                next_report_increment=increment, still_alive=probe or (lambda: None))
            except ResumeError as exc:
                return not_run(exc.reason, exc.exit_code, str(exc))
            except GatewayError as exc:
                return not_run("bootstrap_failed", EXIT_NOT_DONE, str(exc))
            except DistributorError as exc:
                return not_run("distributor_failed", EXIT_NOT_DONE, str(exc))
            except KeyboardInterrupt:
                return not_run("stopped", EXIT_NOT_DONE, "interrupted while the resume was prepared")
        gw.close()
        prepared = dict(gw.request_counts)
        header = {"resume": {**created.header(),
                             "distributor": None if process is None else {"argv": argv, "pid": process.pid}}}
        outcome = run_workflow_run(
            server_url, workflow_id, created.workflow_run_id, config=config, route_prefix=route_prefix,
            client_version=client_version, timeout=timeout, retry=retry, unreachable_after=unreachable_after,
            distributor_probe=probe, distributor_check_interval=distributor_check_interval,
            header_extra=header, **run_options,
        )
        requests = dict(outcome.requests)
        for route, count in prepared.items():  # the preparation's requests count too
            requests[route] = requests.get(route, 0) + count
        return attrs.evolve(outcome, elapsed=time.monotonic() - t0, requests=requests)
    finally:
        gw.close()
        if process is not None:
            code = process.stop()
            print(f"distributor (pid {process.pid}) stopped: exit code {code}", file=say)
