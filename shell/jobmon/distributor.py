"""Jobmon's distributor as a child process: start it, wait for ``ALIVE``, watch it, stop it.

Jobmon's client starts ``python -m jobmon.distributor.cli start --cluster_name X
--workflow_run_id N`` for each workflow run and reads the child's stderr until ``ALIVE``
appears (the distributor writes it once its startup requests are done). When the run ends the
client sends SIGTERM and waits for ``SHUTDOWN`` on stderr, killing the process if it does not
come. ``DistributorProcess`` does the same for ``swarmfold resume``. Its stderr is kept (the
last ``TAIL_BYTES``) so a failure can show what the distributor said.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

__all__ = [
    "DistributorError",
    "DistributorProcess",
    "DistributorUnavailable",
    "jobmon_distributor_argv",
    "require_jobmon_distributor",
]

#: How much of the distributor's stderr is kept for error messages.
TAIL_BYTES = 4000
ALIVE = "ALIVE"
SHUTDOWN = "SHUTDOWN"


class DistributorUnavailable(RuntimeError):
    """Jobmon's distributor cannot be started here (``jobmon.distributor.cli`` is missing)."""


class DistributorError(RuntimeError):
    """The distributor did not start, or died."""


def require_jobmon_distributor() -> None:
    """Raise ``DistributorUnavailable`` unless ``jobmon.distributor.cli`` can be imported."""
    try:
        found = importlib.util.find_spec("jobmon.distributor.cli") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise DistributorUnavailable(
            "cannot start Jobmon's distributor: the module jobmon.distributor.cli is not importable "
            f"by {sys.executable} (install Jobmon's distributor, jobmon_core, with the cluster plugin "
            "you use), or start the distributor yourself and pass --no-distributor"
        )


def jobmon_distributor_argv(cluster_name: str, workflow_run_id: int, python: str | None = None) -> list[str]:
    """The command line Jobmon's own client uses to start a run's distributor."""
    return [
        python or sys.executable, "-m", "jobmon.distributor.cli", "start",
        "--cluster_name", cluster_name, "--workflow_run_id", str(workflow_run_id),
    ]


def _our_stderr() -> int:
    """Where the child's stdout goes: our stderr (Jobmon's distributor logs on stdout, which
    would mix its lines into ``--json`` output), or nowhere when stderr is not a real file."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL


class DistributorProcess:
    """One distributor child process. ``start`` returns once it printed ``ALIVE``."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.env = env
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = bytearray()
        self._alive = threading.Event()
        self._shutdown_seen = threading.Event()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def dead(self) -> str | None:
        """None while the process runs; else how it ended (a liveness probe for the runner)."""
        code = self.returncode
        if self._process is None or code is None:
            return None
        tail = self.stderr_tail().strip()[-400:]
        return (f"the distributor (pid {self._process.pid}) exited with code {code}"
                + (f"; its stderr ends: {tail!r}" if tail else ""))

    def stderr_tail(self) -> str:
        with self._lock:
            return bytes(self._stderr[-TAIL_BYTES:]).decode("utf-8", "replace")

    def start(self, timeout: float = 180.0) -> None:
        """Start the process and wait up to ``timeout`` seconds for ``ALIVE`` on its stderr.
        Raises ``DistributorError`` (after stopping the process) when it exits or stays silent."""
        try:
            self._process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=_our_stderr(), stderr=subprocess.PIPE,
                env=self.env, start_new_session=True,  # our SIGINT is for us; we stop it ourselves
            )
        except OSError as exc:
            raise DistributorError(f"cannot start the distributor {self.argv[0]!r}: {exc}") from exc
        self._reader = threading.Thread(target=self._read_stderr, name="swarmfold-distributor-stderr",
                                        daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._alive.wait(0.05):
            code = self._process.poll()
            if code is not None:
                self._reader.join(timeout=1.0)
                if self._alive.is_set():
                    break
                raise DistributorError(f"the distributor exited with code {code} before it was alive;"
                                       f" stderr: {self.stderr_tail()!r}")
            if time.monotonic() > deadline:
                self.stop(grace=5.0)
                raise DistributorError(f"the distributor did not print {ALIVE} within {timeout:g} s;"
                                       f" stderr: {self.stderr_tail()!r}")

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        stream = self._process.stderr
        while True:
            chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
            if not chunk:
                return
            with self._lock:
                self._stderr += chunk
                seen = bytes(self._stderr[-(len(chunk) + 16):])
                if len(self._stderr) > 4 * TAIL_BYTES:
                    del self._stderr[:-TAIL_BYTES]
            if ALIVE.encode() in seen:
                self._alive.set()
            if SHUTDOWN.encode() in seen:
                self._shutdown_seen.set()

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then wait up to ``grace`` seconds for the process to end (``SHUTDOWN``);
        SIGKILL its process group if it does not. Returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=1.0)
        return process.returncode
