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

``run_workflow_run`` (``shell/http/attach_run.py``) is the attach-and-run entry point of
``swarmfold run``; ``RunOutcome`` (``shell/http/outcome.py``) is what a run gives back.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs

from swarmfold.core.commands import (
    Command,
    EvaluateResources,
    Fail,
    Finish,
    NoteAnomaly,
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
from swarmfold.core.protocol import BATCH, CONTROL, EXECUTED_LANES, HEARTBEAT, LOCAL, SYNC, lane_of
from swarmfold.core.state import SwarmState, initial_state
from swarmfold.core.statuses import RunStatus
from swarmfold.shell.cli.progress import Progress
from swarmfold.shell.http.gateway import (
    JobmonGateway,
    failure_event,
)
from swarmfold.shell.http.outcome import EXIT_BAD_INPUT, EXIT_NOT_DONE, EXIT_OK, RunOutcome, format_outcome
from swarmfold.shell.http.run_guards import DistributorWatch, RunLock, RunLocked

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_NOT_DONE",
    "EXIT_OK",
    "DistributorWatch",
    "RunLock",
    "RunLocked",
    "RunOutcome",
    "Runner",
    "format_outcome",
]

log = logging.getLogger("swarmfold.runner")

#: Longest the loop blocks before it looks at signals, limits and timers again.
POLL_SECONDS = 0.05
#: After Finish/Fail, how long late answers are awaited (and recorded).
DRAIN_SECONDS = 1.0

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
        distributor_probe: Callable[[], str | None] | None = None,
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
        self.distributor_probe = distributor_probe
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
        #: Whether this runner paused the cyclic garbage collector (``_pause_collector``).
        self._collector_paused = False

    # --- public ----------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a graceful stop (what SIGTERM/SIGINT do). Safe from a signal handler."""
        self._signals_seen += 1
        if self._signal is None:
            self._signal = signum

    def run(self, start: Event) -> RunOutcome:
        started = time.monotonic()
        self._pools = {
            HEARTBEAT: ThreadPoolExecutor(1, thread_name_prefix="swarmfold-heartbeat"),
            CONTROL: ThreadPoolExecutor(2, thread_name_prefix="swarmfold-control"),
            SYNC: ThreadPoolExecutor(self.sync_workers, thread_name_prefix="swarmfold-sync"),
            BATCH: ThreadPoolExecutor(self.max_concurrent_batches, thread_name_prefix="swarmfold-batch"),
        }
        restore = self._install_signals()
        watch = self._start_watch(getattr(start, "config", None) or SwarmConfig())
        detached: str | None = None
        if isinstance(start, AttachStarted):
            self._pause_collector()
        try:
            self._feed(start)
            detached = self._loop(started)
            if self._terminal is not None:
                self._cancel_unsent(None, "the run has ended")
                self._drain()
        finally:
            self._resume_collector()
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
            if self.gateway.gone is not None:
                log.error("[%s] %s", self.runner_id, self.gateway.gone)
                return self.gateway.gone_reason
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

    def _pause_collector(self) -> None:
        """Pause Python's cyclic garbage collector while the run attaches. Loading the task
        and edge pages only adds objects (rows, then the topology) and makes no reference
        cycles worth collecting, yet each time the heap grows by a quarter the collector
        rescans all of it: six full scans at 100,000 tasks, a tenth of the client's CPU
        (docs/performance.md). It resumes as soon as the topology is built, or when the run
        ends; a collector that was already off is left alone."""
        if gc.isenabled():
            gc.disable()
            self._collector_paused = True

    def _resume_collector(self) -> None:
        if self._collector_paused:
            self._collector_paused = False
            gc.enable()

    def _on_stop_signal(self) -> None:
        if not self._stop_fed:
            self._stop_fed = True
            name = signal.Signals(self._signal).name if self._signal else "stop"
            log.warning("[%s] %s received: stopping the workflow run (status STOPPED)", self.runner_id, name)
            # Batches not sent yet stay unsent: their tasks stay REGISTERING on the server.
            self._cancel_unsent(BATCH, "the run is stopping")
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
        if self._collector_paused and decision.state.topology is not None:
            self._resume_collector()
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
        """Each command to its lane (``core/protocol.py``): a server lane's pool, the sync pool
        for the shell's own work, or the loop itself (timer, note, end)."""
        for command in commands:
            lane = lane_of(command)
            if lane in EXECUTED_LANES:
                self._submit(SYNC if lane == LOCAL else lane, command)
            elif isinstance(command, WakeAt):
                self._wake = command
            elif isinstance(command, NoteAnomaly):
                self.anomalies += 1
                log.warning("[%s] anomaly %s: %s", self.runner_id, command.kind, command.detail)
            elif isinstance(command, Finish | Fail):
                self._terminal = command
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
        if (self.distributor_pid, self.distributor_command, self.distributor_probe) == (None, None, None):
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
                                 probe=self.distributor_probe, interval=interval)
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
        if reason in ("server_unreachable", "server_forgot_run"):
            message = f"{self.gateway.gone}; the run ends here, its event log is closed and replays"
            return RunOutcome(None, reason, EXIT_NOT_DONE, message=message, **common)
        message = (
            f"the runner stopped after {self.events} events (ticks={self.ticks})" if reason == "ticks"
            else f"the runner stopped after max_seconds={self.max_seconds:g}" if reason == "max_seconds"
            else "the runner stopped"
        ) + "; the workflow run was left as it is"
        return RunOutcome(None, reason, EXIT_NOT_DONE, message=message, **common)
