"""Benchmark replay against the core benchmark (issue 4 §7).

For each N: drive the reference workload through the core (as bench/core_bench.py does),
recording the event log; then, in a fresh process, replay the log (read, decode, re-fold,
compare every command) and time it. Prints one JSON line per N::

    {"n": N, "core_s": x, "replay_s": y, "ratio": y / x, "records": r, "log_mb": m}

``core_s`` is the time inside ``decide`` for the recorded run; the target is ratio <= 2.

Usage: ``python bench/replay_bench.py [--n 10000 100000 1000000] [--dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

DEFAULT_NS = (10_000, 100_000, 1_000_000)


def record(n: int, path: str) -> dict[str, object]:
    """Drive the reference workload with a log; return the core's time."""
    from swarmfold.core.config import SwarmConfig
    from swarmfold.shell.log.eventlog import EventLogWriter, LogRecorder, new_header
    from swarmfold.shell.server.instant import drive
    from swarmfold.shell.workload import reference_workload

    spec = reference_workload(n, columnar=True)
    config = SwarmConfig(timeout=1e9)
    header = new_header("fold", 1, 1, config, runner_id="bench", created_at="2026-01-01T00:00:00+00:00")
    with EventLogWriter(path, header) as writer:
        result = drive(spec, config, record=LogRecorder(writer))
    assert result.summary is not None and result.summary.final_status == "D"
    return {"core_s": result.decide_seconds, "records": result.events}


def replay_time(path: str) -> float:
    from swarmfold.shell.log.replay import replay

    t0 = time.perf_counter()
    result = replay(path)
    elapsed = time.perf_counter() - t0
    assert result.ok, result.divergence
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_NS))
    parser.add_argument("--dir", default=None, help="where to keep the logs (default: a temp dir)")
    parser.add_argument("--record", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--replay", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.record:
        print(json.dumps(record(args.n[0], args.record)))
        return 0
    if args.replay:
        print(json.dumps({"replay_s": replay_time(args.replay)}))
        return 0
    directory = args.dir or tempfile.mkdtemp(prefix="swarmfold-replay-bench-")
    os.makedirs(directory, exist_ok=True)
    for n in args.n:
        path = os.path.join(directory, f"reference-{n}.log")
        rec = _child(["--record", path, "--n", str(n)])
        rep = _child(["--replay", path])
        core_s, replay_s = float(rec["core_s"]), float(rep["replay_s"])
        print(json.dumps({
            "n": n, "core_s": round(core_s, 3), "replay_s": round(replay_s, 3),
            "ratio": round(replay_s / core_s, 2), "records": rec["records"],
            "log_mb": round(os.path.getsize(path) / 1e6, 1),
        }), flush=True)
        if args.dir is None:
            os.remove(path)
    return 0


def _child(extra: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *extra], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


if __name__ == "__main__":
    raise SystemExit(main())
