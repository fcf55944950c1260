"""The runner: the imperative loop that drives one workflow run against a Jobmon server.

One thread owns the state and calls ``decide``; commands that talk to the server run in
thread pools and come back as events on a queue (every outcome is an event: the gateway
never raises). The pools are lanes, so a burst of batches cannot delay the heartbeat:

* heartbeat: ``LogHeartbeat`` alone (the core never has two in flight);
* control: ``UpdateWorkflowRunStatus``, ``TerminateTaskInstances``;
* sync: the sync parts, attach chunks, ``BindResources`` and user callables;
* batch: ``QueueBatch``, at most ``max_concurrent_batches`` requests at a time.

Timers come from the core's ``WakeAt`` commands (only the latest counts): when the clock
reaches it the runner feeds ``TimerFired``. Every event is stamped with the runner's clock
(``time.monotonic`` since the start), clamped so the events fed to the core never go back
in time. Every ``(event, commands)`` pair is recorded in the event log when there is one.

SIGTERM or SIGINT stops the run gracefully, as in Jobmon: the runner feeds ``StopRequested``
and the core sets the run to STOPPED, then fails with ``stopped``. A second signal also
cancels pending retries. ``max_seconds`` and ``ticks`` (events fed) detach the runner
without touching the run. A lock per (server, workflow run) keeps two runners on one
machine from driving the same run, besides the event log's own lock.

``run_workflow_run`` is the attach-and-run entry point (``swarmfold run``): it fetches the
workflow's metadata and the server time, feeds ``AttachStarted`` and runs to a final status.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TextIO

import attrs
from attrs import frozen

from swarmfold.core.commands import (
    Command,
    EvaluateResources,
    Fail,
    Finish,
    LogHeartbeat,
    NoteAnomaly,
    QueueBatch,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.config import SwarmConfig
from swarmfold.core.decide import decide
from swarmfold.core.events import (
    AttachStarted,
    DistributorDied,
    Event,
    ResourceEvaluationFailed,
    StopRequested,
    TimerFired,
)
from swarmfold.core.state import SwarmState, initial_state
from swarmfold.core.statuses import RunStatus
from swarmfold.core.summary import RunSummary
from swarmfold.shell.cli.progress import Progress
from swarmfold.shell.http.gateway import (
    DEFAULT_CLIENT_VERSION,
    DEFAULT_ROUTE_PREFIX,
    DEFAULT_TIMEOUT,
    SERVER_COMMANDS,
    Attempt,
    GatewayError,
    JobmonGateway,
    RetryPolicy,
    failure_event,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_NOT_DONE",
    "EXIT_OK",
    "DistributorWatch",
    "RunLock",
    "RunLocked",
    "RunOutcome",
    "Runner",
    "add_run_arguments",
    "format_outcome",
    "main",
    "run_workflow_run",
]

log = logging.getLogger("swarmfold.runner")

EXIT_OK = 0
EXIT_NOT_DONE = 1
EXIT_BAD_INPUT = 2

#: Longest the loop blocks before it looks at signals, limits and timers again.
POLL_SECONDS = 0.05
#: After Finish/Fail, how long late answers are awaited (and recorded).
DRAIN_SECONDS = 1.0

_CONTROL = (UpdateWorkflowRunStatus, TerminateTaskInstances)


@frozen
class RunOutcome:
    """How a run ended for this runner.

    ``summary`` is the core's summary (``None`` when the run never started, e.g. the attach
    bootstrap failed); ``failed_reason`` is ``None`` when the core finished the run
    (``Finish``), else the ``Fail`` reason (``stopped``, ``timeout``, ``distributor_died``,
    ``attach_failed`` ...) or the runner's own (``not_found``, ``locked``, ``bootstrap_failed``,
    ``max_seconds``, ``ticks``, ``core_error``). ``exit_code`` is 0 only for DONE.
    """

    summary: RunSummary | None
    failed_reason: str | None
    exit_code: int
    log_path: str | None
    runner_id: str
    message: str = ""
    events: int = 0
    requests: dict[str, int] = attrs.field(factory=dict)
    anomalies: int = 0
    elapsed: float = 0.0

    @property
    def final_status(self) -> str | None:
        return None if self.summary is None else self.summary.final_status

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def to_dict(self) -> dict[str, Any]:
        from swarmfold.shell.log.codec import unstructure

        return {
            "final_status": self.final_status,
            "failed_reason": self.failed_reason,
            "message": self.message,
            "exit_code": self.exit_code,
            "log_path": self.log_path,
            "runner_id": self.runner_id,
            "events": self.events,
            "requests": dict(sorted(self.requests.items())),
            "total_requests": self.total_requests,
            "anomalies": self.anomalies,
            "elapsed": round(self.elapsed, 3),
            "summary": None if self.summary is None else unstructure(self.summary),
        }


def _status_name(code: str) -> str:
    names = {v: k for k, v in vars(RunStatus).items() if not k.startswith("_")}
    return names.get(code, code)


def format_outcome(outcome: RunOutcome, title: str = "") -> str:
    """The human summary of a run."""
    s = outcome.summary
    if s is None:
        head = f"{title}not run: {outcome.failed_reason}"
        lines = [head, f"  error     {outcome.message}"] if outcome.message else [head]
    else:
        lines = [f"{title}{_status_name(s.final_status)} ({s.final_status})"]
        if s.reason:
            lines.append(f"  reason    {s.reason}")
        lines.append(
            f"  tasks     {s.done_count} done, {s.failed_count} failed, {s.total_tasks} total"
            f" ({s.num_previously_complete} previously complete)"
        )
        if outcome.failed_reason is not None and outcome.message and outcome.message not in s.reason:
            lines.append(f"  failed    {outcome.failed_reason}: {outcome.message}")
    lines.append(f"  elapsed   {outcome.elapsed:.2f} s")
    lines.append(f"  events    {outcome.events}")
    lines.append(f"  requests  {outcome.total_requests}")
    if outcome.anomalies:
        lines.append(f"  anomalies {outcome.anomalies}")
    lines.append(f"  runner    {outcome.runner_id}")
    if outcome.log_path:
        lines.append(f"  log       {outcome.log_path}")
    return "\n".join(lines)


# --- the per-run lock ----------------------------------------------------------------------


class RunLocked(Exception):
    """Another runner on this machine drives the same workflow run."""


class RunLock:
    """An exclusive ``flock`` on ``<lock_dir>/swarmfold-<server hash>-wfr<id>.lock``.

    The file holds the holder's runner id; it is never deleted (deleting races with a
    waiting locker), only unlocked.
    """

    def __init__(self, server_url: str, workflow_run_id: int, runner_id: str, lock_dir: str | None = None):
        digest = hashlib.sha1(server_url.rstrip("/").encode()).hexdigest()[:12]
        directory = lock_dir if lock_dir is not None else tempfile.gettempdir()
        self.path = os.path.join(directory, f"swarmfold-{digest}-wfr{workflow_run_id}.lock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            who = f"runner {holder!r}" if holder else "another runner"
            raise RunLocked(
                f"workflow run {workflow_run_id} on {server_url} is already driven by {who} on this "
                f"machine (lock {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, runner_id.encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


# --- distributor liveness --------------------------------------------------------------------


class DistributorWatch:
    """Checks that the distributor is alive every ``interval`` seconds, in its own thread:
    a PID (alive and not a zombie) and/or a shell command (exit 0 = alive). Calls
    ``on_dead(detail)`` once when a check fails."""

    def __init__(
        self,
        on_dead: Callable[[str], None],
        *,
        pid: int | None = None,
        command: str | None = None,
        interval: float = 5.0,
        command_timeout: float = 30.0,
    ) -> None:
        self.on_dead = on_dead
        self.pid = pid
        self.command = command
        self.interval = interval
        self.command_timeout = command_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="swarmfold-distributor-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> str | None:
        """``None`` when alive, else why not."""
        if self.pid is not None:
            dead = _pid_dead(self.pid)
            if dead:
                return dead
        if self.command is not None:
            try:
                done = subprocess.run(
                    self.command, shell=True, capture_output=True, timeout=self.command_timeout, check=False
                )
            except subprocess.TimeoutExpired:
                return f"distributor check {self.command!r} did not answer within {self.command_timeout:g} s"
            except OSError as exc:
                return f"distributor check {self.command!r} could not run: {exc}"
            if done.returncode != 0:
                err = done.stderr.decode("utf-8", "replace").strip()[:200]
                tail = f": {err}" if err else ""
                return f"distributor check {self.command!r} exited {done.returncode}{tail}"
        return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            detail = self.check()
            if detail is not None:
                self.on_dead(detail)
                return


def _pid_dead(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"distributor process {pid} is gone"
    except PermissionError:
        pass  # it exists, owned by someone else
    # A zombie is dead too (our own child that was not reaped yet).
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[-1].split()
        if fields and fields[0] in (b"Z", b"X"):
            return f"distributor process {pid} has exited (zombie)"
    except OSError:
        pass
    return None


# --- the runner --------------------------------------------------------------------------------


class Runner:
    """Drives one workflow run: ``run(start_event) -> RunOutcome``.

    ``gateway`` executes server commands; ``clock`` stamps events (seconds); ``writer``
    (an ``EventLogWriter``) records every decision.
    """

    def __init__(
        self,
        gateway: JobmonGateway,
        *,
        runner_id: str,
        clock: Callable[[], float],
        writer: Any = None,
        log_path: str | None = None,
        max_seconds: float | None = None,
        ticks: int | None = None,
        distributor_pid: int | None = None,
        distributor_command: str | None = None,
        distributor_check_interval: float | None = None,
        progress: Progress | None = None,
        callables: Mapping[str, Callable[..., Any]] | None = None,
        max_concurrent_batches: int = 4,
        sync_workers: int = 8,
        install_signal_handlers: bool = True,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        if max_concurrent_batches < 1:
            raise ValueError(f"max_concurrent_batches must be >= 1, got {max_concurrent_batches}")
        self.gateway = gateway
        self.runner_id = runner_id
        self.clock = clock
        self.writer = writer
        self.log_path = log_path
        self.max_seconds = max_seconds
        self.ticks = ticks
        self.distributor_pid = distributor_pid
        self.distributor_command = distributor_command
        self.distributor_check_interval = distributor_check_interval
        self.progress = progress
        self.callables = callables
        self.max_concurrent_batches = max_concurrent_batches
        self.sync_workers = sync_workers
        self.install_signal_handlers = install_signal_handlers
        self.drain_seconds = drain_seconds

        self.state: SwarmState = initial_state()
        self.events = 0
        self.anomalies = 0
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._wake: WakeAt | None = None
        self._last_at = float("-inf")
        self._outstanding = 0
        self._terminal: Finish | Fail | None = None
        self._core_error: str | None = None
        self._signal: int | None = None
        self._signals_seen = 0
        self._stop_fed = False
        self._cancelled = False
        self._pools: dict[str, ThreadPoolExecutor] = {}
        #: Submitted commands whose answer is not posted yet, by lane.
        self._pending: dict[Future[None], tuple[str, Command]] = {}
        self._pending_lock = threading.Lock()

    # --- public ----------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a graceful stop (what SIGTERM/SIGINT do). Safe from a signal handler."""
        self._signals_seen += 1
        if self._signal is None:
            self._signal = signum

    def run(self, start: Event) -> RunOutcome:
        started = time.monotonic()
        self._pools = {
            "heartbeat": ThreadPoolExecutor(1, thread_name_prefix="swarmfold-heartbeat"),
            "control": ThreadPoolExecutor(2, thread_name_prefix="swarmfold-control"),
            "sync": ThreadPoolExecutor(self.sync_workers, thread_name_prefix="swarmfold-sync"),
            "batch": ThreadPoolExecutor(self.max_concurrent_batches, thread_name_prefix="swarmfold-batch"),
        }
        restore = self._install_signals()
        watch = self._start_watch(getattr(start, "config", None) or SwarmConfig())
        detached: str | None = None
        try:
            self._feed(start)
            detached = self._loop(started)
            if self._terminal is not None:
                self._cancel_unsent(None, "the run has ended")
                self._drain()
        finally:
            if watch is not None:
                watch.stop()
            restore()
            self.gateway.cancel()
            for pool in self._pools.values():
                pool.shutdown(wait=False, cancel_futures=True)
            if self.progress is not None:
                self.progress.close(self.state, self.clock())
        return self._outcome(detached, time.monotonic() - started)

    # --- the loop ----------------------------------------------------------------------------

    def _loop(self, started: float) -> str | None:
        """Feed events until the core ends the run; return why the runner detached, if it did."""
        q = self._queue
        clock = self.clock
        while self._terminal is None and self._core_error is None:
            if self._signal is not None:
                self._on_stop_signal()
            if self.ticks is not None and self.events >= self.ticks:
                return "ticks"
            if self.max_seconds is not None and time.monotonic() - started >= self.max_seconds:
                return "max_seconds"
            wake = self._wake
            now = clock()
            if wake is not None and now >= wake.at:
                self._wake = None
                self._feed(TimerFired(now, wake.command_id))
                continue
            timeout = POLL_SECONDS if wake is None else min(POLL_SECONDS, max(0.0, wake.at - now))
            try:
                event = q.get(timeout=timeout) if timeout > 0 else q.get_nowait()
            except queue.Empty:
                continue
            if not isinstance(event, DistributorDied):
                self._outstanding -= 1
            self._feed(event)
        return None

    def _on_stop_signal(self) -> None:
        if not self._stop_fed:
            self._stop_fed = True
            name = signal.Signals(self._signal).name if self._signal else "stop"
            log.warning("[%s] %s received: stopping the workflow run (status STOPPED)", self.runner_id, name)
            # Batches not sent yet stay unsent: their tasks stay REGISTERING on the server.
            self._cancel_unsent("batch", "the run is stopping")
            self._feed(StopRequested(self.clock(), f"{name} received by runner {self.runner_id}"))
        if self._signals_seen > 1 and not self._cancelled:
            self._cancelled = True
            log.warning("[%s] second signal: abandoning pending retries", self.runner_id)
            self.gateway.cancel()

    def _drain(self) -> None:
        """Record the answers still under way when the run ended (the core ignores them)."""
        deadline = time.monotonic() + self.drain_seconds
        while self._outstanding > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                event = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if not isinstance(event, DistributorDied):
                self._outstanding -= 1
            self._feed(event)

    def _feed(self, event: Event) -> None:
        if event.at < self._last_at:
            event = attrs.evolve(event, at=self._last_at)
        self._last_at = event.at
        try:
            decision = decide(self.state, event)
        except Exception as exc:  # a core refusal is recorded and ends the run, never escapes
            self._core_error = f"decide raised {type(exc).__name__}: {exc}"
            log.error("[%s] %s on %s", self.runner_id, self._core_error, type(event).__name__)
            self._record(event, ())
            return
        self.state = decision.state
        self.events += 1
        self._record(event, decision.commands)
        if self._terminal is None:
            self._dispatch(decision.commands)
        if self.progress is not None:
            self.progress.update(self.state, event.at)

    def _record(self, event: Event, commands: tuple[Command, ...]) -> None:
        writer = self.writer
        if writer is None:
            return
        try:
            writer.record(event, commands)
        except (OSError, ValueError) as exc:
            log.error("[%s] cannot write the event log %s: %s; going on without it",
                      self.runner_id, self.log_path, exc)
            self.writer = None

    def _dispatch(self, commands: tuple[Command, ...]) -> None:
        for command in commands:
            kind = type(command)
            if kind is WakeAt:
                self._wake = command  # type: ignore[assignment]
            elif kind is NoteAnomaly:
                self.anomalies += 1
                log.warning("[%s] anomaly %s: %s", self.runner_id, command.kind, command.detail)  # type: ignore[union-attr]
            elif kind is Finish or kind is Fail:
                self._terminal = command  # type: ignore[assignment]
            elif kind is QueueBatch:
                self._submit("batch", command)
            elif kind is LogHeartbeat:
                self._submit("heartbeat", command)
            elif kind in _CONTROL:
                self._submit("control", command)
            elif kind in SERVER_COMMANDS or kind is EvaluateResources:
                self._submit("sync", command)
            else:  # a command no lane carries out would never be answered: end loudly
                self._core_error = f"the runner cannot carry out {type(command).__name__}"
                log.error("[%s] %s: %r", self.runner_id, self._core_error, command)

    def _submit(self, lane: str, command: Command) -> None:
        self._outstanding += 1
        future = self._pools[lane].submit(self._execute, command)
        with self._pending_lock:
            if not future.done():
                self._pending[future] = (lane, command)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._pending_lock:
            self._pending.pop(future, None)

    def _cancel_unsent(self, lane: str | None, reason: str) -> int:
        """Cancel the commands of ``lane`` (all lanes: None) that no thread has started;
        each gets its failure event, so every command is still answered in the log."""
        with self._pending_lock:
            items = [(f, c) for f, (ln, c) in self._pending.items() if lane is None or ln == lane]
        n = 0
        for future, command in items:
            if future.cancel():
                n += 1
                error = f"not sent: {reason}"
                if isinstance(command, EvaluateResources):
                    self._queue.put(ResourceEvaluationFailed(command.command_id, self.clock(), error))
                else:
                    self._queue.put(failure_event(command, self.clock(), error))
        if n:
            log.warning("[%s] %d request(s) not sent: %s", self.runner_id, n, reason)
        return n

    def _execute(self, command: Command) -> None:
        """In a pool thread: carry out one command and post its answer. Never raises."""
        try:
            if isinstance(command, EvaluateResources):
                from swarmfold.shell.server.instant import evaluate_resources

                event = evaluate_resources(command, self.clock(), self.callables)
            else:
                event = self.gateway.execute(command)
        except BaseException as exc:  # the answer must always arrive
            error = f"internal error: {type(exc).__name__}: {exc}"
            if isinstance(command, EvaluateResources):
                event = ResourceEvaluationFailed(command.command_id, self.clock(), error)
            else:
                event = failure_event(command, self.clock(), error)
        self._queue.put(event)

    # --- signals, distributor, outcome -------------------------------------------------------

    def _install_signals(self) -> Callable[[], None]:
        if not self.install_signal_handlers or threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            self.request_stop(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, OSError):
                previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(sig, old)

        return restore

    def _start_watch(self, config: SwarmConfig) -> DistributorWatch | None:
        if self.distributor_pid is None and self.distributor_command is None:
            return None
        interval = self.distributor_check_interval
        if interval is None:
            interval = min(5.0, config.heartbeat_interval)
        fired = threading.Event()

        def on_dead(detail: str) -> None:
            if not fired.is_set():
                fired.set()
                log.error("[%s] %s", self.runner_id, detail)
                self._queue.put(DistributorDied(self.clock(), detail))

        watch = DistributorWatch(on_dead, pid=self.distributor_pid, command=self.distributor_command,
                                 interval=interval)
        watch.start()
        return watch

    def _outcome(self, detached: str | None, elapsed: float) -> RunOutcome:
        common: dict[str, Any] = {
            "log_path": self.log_path,
            "runner_id": self.runner_id,
            "events": self.events,
            "requests": dict(self.gateway.request_counts),
            "anomalies": self.anomalies,
            "elapsed": elapsed,
        }
        terminal = self._terminal
        if isinstance(terminal, Finish):
            code = EXIT_OK if terminal.summary.final_status == RunStatus.DONE else EXIT_NOT_DONE
            return RunOutcome(terminal.summary, None, code, **common)
        if isinstance(terminal, Fail):
            return RunOutcome(
                terminal.summary, terminal.reason, EXIT_NOT_DONE, message=terminal.message, **common
            )
        if self._core_error is not None:
            return RunOutcome(None, "core_error", EXIT_NOT_DONE, message=self._core_error, **common)
        reason = detached or "detached"
        message = (
            f"the runner stopped after {self.events} events (ticks={self.ticks})" if reason == "ticks"
            else f"the runner stopped after max_seconds={self.max_seconds:g}" if reason == "max_seconds"
            else "the runner stopped"
        ) + "; the workflow run was left as it is"
        return RunOutcome(None, reason, EXIT_NOT_DONE, message=message, **common)


# --- attach and run ----------------------------------------------------------------------------


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
    progress: str | Progress = "auto",
    progress_stream: TextIO | None = None,
    route_prefix: str = DEFAULT_ROUTE_PREFIX,
    client_version: str = DEFAULT_CLIENT_VERSION,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    max_concurrent_batches: int = 4,
    callables: Mapping[str, Callable[..., Any]] | None = None,
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
                          requests=requests or {}, elapsed=clock())

    if not server_url.startswith(("http://", "https://")):
        return not_run("bad_input", EXIT_BAD_INPUT,
                       f"--server must be an http:// or https:// URL, got {server_url!r}")
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
            retry=retry, clock=clock, on_attempt=on_attempt,
            pool_size=1 + 2 + 8 + max_concurrent_batches + 2,
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
        )
        if on_runner is not None:
            on_runner(runner)
        outcome = runner.run(start)
        return attrs.evolve(outcome, elapsed=clock())
    finally:
        if writer is not None:
            writer.close()
        if gw is not None and gateway is None:
            gw.close()
        run_lock.release()


# --- the ``swarmfold run`` subcommand ----------------------------------------------------------


def add_run_arguments(parser: Any) -> None:
    """The options of ``swarmfold run`` (Jobmon's defaults where Jobmon has one)."""
    d = SwarmConfig()
    parser.add_argument("--server", required=True, metavar="URL",
                        help="Jobmon server URL (without the route prefix)")
    parser.add_argument("--workflow-id", type=int, required=True, metavar="W")
    parser.add_argument("--workflow-run-id", type=int, required=True, metavar="R")
    parser.add_argument("--log", metavar="FILE", help="record every decision in an event log (JSONL)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--heartbeat-interval", type=float, default=d.heartbeat_interval, metavar="S",
                        help=f"seconds between heartbeats and syncs (default {d.heartbeat_interval:g})")
    parser.add_argument("--report-by-buffer", type=float, default=d.report_by_buffer, metavar="X",
                        help=f"report-by = interval * X (default {d.report_by_buffer:g})")
    parser.add_argument("--wedged-sync-interval", type=float, default=d.wedged_sync_interval, metavar="S",
                        help=f"seconds between full syncs; < 0: always (default {d.wedged_sync_interval:g})")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failed task")
    parser.add_argument("--timeout", type=float, default=d.timeout, metavar="S",
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
    parser.add_argument("--max-concurrent-batches", type=int, default=4, metavar="N")
    parser.add_argument("--distributor-pid", type=int, metavar="PID",
                        help="fail the run (distributor_died) when this process is gone")
    parser.add_argument("--distributor-command", metavar="CMD",
                        help="shell command run periodically; a non-zero exit means the distributor died")
    parser.add_argument("--progress", choices=("auto", "tty", "lines", "off"), default="auto",
                        help="progress on stderr: a live line on a TTY, log lines otherwise")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every retried request")


def main(args: Any, out: TextIO) -> int:
    """``swarmfold run``: attach to a workflow run and run it; returns the exit code."""
    import json
    import sys

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
        )
        retry = RetryPolicy(max_attempts=args.retry_attempts, max_seconds=args.retry_seconds)
        if args.retry_attempts < 1 or args.max_concurrent_batches < 1 or args.http_timeout <= 0:
            raise InvalidConfig("--retry-attempts, --max-concurrent-batches and --http-timeout must be > 0")
    except InvalidConfig as exc:
        print(f"swarmfold run: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    outcome = run_workflow_run(
        args.server,
        args.workflow_id,
        args.workflow_run_id,
        config=config,
        log_path=args.log,
        max_seconds=args.max_seconds,
        distributor_pid=args.distributor_pid,
        distributor_command=args.distributor_command,
        progress=args.progress,
        route_prefix=args.route_prefix,
        client_version=args.client_version,
        timeout=args.http_timeout,
        retry=retry,
        max_concurrent_batches=args.max_concurrent_batches,
    )
    if args.json:
        print(json.dumps(outcome.to_dict(), sort_keys=True), file=out)
    else:
        title = f"workflow {args.workflow_id} run {args.workflow_run_id}: "
        print(format_outcome(outcome, title), file=out)
    return outcome.exit_code
