"""What guards one run from the outside: a lock per workflow run, and the distributor's liveness.

``RunLock`` keeps two runners on one machine from driving the same run (besides the event
log's own lock). ``DistributorWatch`` checks, in its own thread, that the distributor is alive
(a pid, or a command that must exit 0) and reports its death once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable

__all__ = ["DistributorWatch", "RunLock", "RunLocked"]

log = logging.getLogger("swarmfold.runner")


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
    a PID (alive and not a zombie), a shell command (exit 0 = alive) and/or a ``probe``
    (returns None while alive, else why not). Calls ``on_dead(detail)`` once when a check fails."""

    def __init__(
        self,
        on_dead: Callable[[str], None],
        *,
        pid: int | None = None,
        command: str | None = None,
        probe: Callable[[], str | None] | None = None,
        interval: float = 5.0,
        command_timeout: float = 30.0,
    ) -> None:
        self.on_dead = on_dead
        self.pid = pid
        self.command = command
        self.probe = probe
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
        if self.probe is not None:
            dead = self.probe()
            if dead:
                return dead
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
