"""``DistributorProcess`` against a real child process that behaves as Jobmon's distributor."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from swarmfold.shell.jobmon.distributor import (
    DistributorError,
    DistributorProcess,
    DistributorUnavailable,
    jobmon_distributor_argv,
    require_jobmon_distributor,
)

STAND_IN = str(Path(__file__).with_name("stand_in_distributor.py"))


def stand_in(*flags: str) -> DistributorProcess:
    return DistributorProcess([sys.executable, STAND_IN, *flags])


def test_start_waits_for_alive_through_noise_and_stop_sees_shutdown() -> None:
    d = stand_in("--noise")
    d.start(timeout=20)
    assert d.pid is not None and d.returncode is None
    assert d.stop(grace=5) == 0
    assert d.stderr_tail().endswith("ALIVESHUTDOWN")


def test_a_distributor_that_exits_before_alive_is_a_named_error() -> None:
    d = stand_in("--exit-before-alive", "4")
    with pytest.raises(DistributorError, match=r"exited with code 4 before it was alive.*cannot reach"):
        d.start(timeout=20)


def test_a_silent_distributor_times_out_and_is_stopped() -> None:
    d = stand_in("--never-alive", "--ignore-sigterm")
    t0 = time.monotonic()
    with pytest.raises(DistributorError, match="did not print ALIVE within 0.5 s"):
        d.start(timeout=0.5)
    assert d.returncode is not None  # killed after the grace period
    assert time.monotonic() - t0 < 15


def test_death_after_alive_shows_in_returncode() -> None:
    d = stand_in("--die-after", "0.2")
    d.start(timeout=20)
    deadline = time.monotonic() + 10
    while d.returncode is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert d.returncode == 3


def test_missing_program_is_a_named_error() -> None:
    with pytest.raises(DistributorError, match="cannot start the distributor '/nonexistent/python'"):
        DistributorProcess(["/nonexistent/python"]).start(timeout=1)


def test_jobmon_command_line_and_missing_module() -> None:
    assert jobmon_distributor_argv("slurm", 12, python="py") == [
        "py", "-m", "jobmon.distributor.cli", "start", "--cluster_name", "slurm", "--workflow_run_id", "12"]
    try:
        import jobmon.distributor.cli  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        missing = "jobmon.distributor.cli is not importable.*--no-distributor"
        with pytest.raises(DistributorUnavailable, match=missing):
            require_jobmon_distributor()
