"""Benchmark the pure core on the reference workload.

Prints one JSON line per N::

    {"n": N, "tasks_per_s": x, "client_s": y, "peak_rss_mb": z, "final_status": "D", ...}

Each N runs in a fresh subprocess, so peak RSS is per N. In the child the workload is built
first (not timed); ``client_s`` is the time spent inside the core, from building the initial
state (the ``RunStarted`` decide call included) to the ``Finish`` summary, excluding the
instant fake server's time. ``tasks_per_s = N / client_s``.

Usage: ``python bench/core_bench.py [--n 10000 100000 1000000] [--repeat R] [--by-event]``
(``--repeat``: R fresh processes per N, the median one printed, with every ``client_s`` in
``runs_client_s``; ``--by-event``: ``by_event`` gives, per event kind, its calls, µs a call
and µs a task, a full sync's answer apart from the incremental ones)
"""

from __future__ import annotations

import resource
import time

DEFAULT_NS = (10_000, 100_000, 1_000_000)


def run_one(n: int, seed: int = 0, by_event: bool = False) -> dict[str, object]:
    """Build and drive the ``n``-task reference workload in this process; return the figures."""
    from swarmfold.core.config import SwarmConfig
    from swarmfold.shell.server.instant import drive
    from swarmfold.shell.workload import reference_workload

    t0 = time.perf_counter()
    spec = reference_workload(n, seed=seed, columnar=True)
    build_s = time.perf_counter() - t0
    # The reference server completes 1,000 tasks per sync: lift the run timeout out of the way.
    config = SwarmConfig(timeout=1e9)
    seconds_by_event: dict[str, list[float]] | None = {} if by_event else None
    t0 = time.perf_counter()
    result = drive(spec, config, seconds_by_event=seconds_by_event)
    drive_s = time.perf_counter() - t0
    summary = result.summary
    final_status = None if summary is None else summary.final_status
    assert final_status == "D", f"n={n}: run ended {final_status!r}, expected 'D'"
    assert summary is not None and summary.done_count == n, f"n={n}: {summary}"
    client_s = result.decide_seconds
    line: dict[str, object] = {
        "n": n,
        "tasks_per_s": round(n / client_s, 1) if client_s > 0 else None,
        "client_s": round(client_s, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final_status": final_status,
        "decide_calls": result.events,
        "commands": result.commands,
        "server_s": round(result.server_seconds, 4),
        "drive_s": round(drive_s, 4),
        "build_workload_s": round(build_s, 4),
        "virtual_s": result.virtual_seconds,
    }
    if seconds_by_event is not None:
        line["by_event"] = {
            kind: {
                "calls": int(calls),
                "us_per_call": round(seconds / calls * 1e6, 1),
                "us_per_task": round(seconds / n * 1e6, 3),
            }
            for kind, (calls, seconds) in sorted(seconds_by_event.items(), key=lambda kv: -kv[1][1])
        }
    return line


def main(argv: list[str] | None = None) -> int:
    import fresh_process  # bench/fresh_process.py (the script's own folder): one process per N

    return fresh_process.main(
        __doc__ or "", __file__, run_one, DEFAULT_NS, argv,
        flags={"by_event": "time decide per event kind (by_event in the line)"},
    )


if __name__ == "__main__":
    raise SystemExit(main())
