"""The harness of the benchmarks: each N measured in a fresh child process.

A fresh process per N keeps peak RSS (``ru_maxrss``) per N and leaves no warm caches
from a smaller run. ``main(doc, run_one, default_ns, argv)`` parses ``--n`` and ``--seed`` (and the
script's own on/off ``flags``, handed to the child and to ``run_one``); the child is this
same script with ``--one N`` and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def main(
    doc: str,
    script: str,
    run_one: Callable[..., dict[str, Any]],
    default_ns: Sequence[int],
    argv: list[str] | None = None,
    median_key: str = "client_s",
    flags: Mapping[str, str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=list(default_ns), help="task counts")
    parser.add_argument("--seed", type=int, default=0, help="workload (and simulation) seed")
    parser.add_argument("--repeat", type=int, default=1, metavar="R",
                        help=f"children per N; the median one by {median_key} is printed")
    parser.add_argument("--one", type=int, metavar="N", help=argparse.SUPPRESS)
    for name, help_text in (flags or {}).items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, action="store_true", help=help_text)
    args = parser.parse_args(argv)
    flag_values = {name: getattr(args, name) for name in flags or {}}
    flag_args = [f"--{name.replace('_', '-')}" for name, on in flag_values.items() if on]

    if args.one is not None:
        print(json.dumps(run_one(args.one, args.seed, **flag_values)), flush=True)
        return 0

    status = 0
    for n in args.n:
        runs: list[dict[str, Any]] = []
        for _ in range(max(1, args.repeat)):
            proc = subprocess.run(
                [sys.executable, script, "--one", str(n), "--seed", str(args.seed), *flag_args],
                check=False, stdout=subprocess.PIPE, text=True,
            )
            if proc.returncode != 0:
                runs = []
                break
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if not runs:
            print(json.dumps({"n": n, "error": f"child exited {proc.returncode}"}), flush=True)
            status = 1
            continue
        print(json.dumps(median_line(runs, median_key)), flush=True)
    return status


def median_line(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run of median ``key`` (the lower one of an even count), with every run's ``key``
    sorted under ``runs_<key>`` when there are several."""
    runs = sorted(runs, key=lambda r: float(r.get(key) or 0.0))
    line = runs[(len(runs) - 1) // 2]
    if len(runs) > 1:
        line[f"runs_{key}"] = [r.get(key) for r in runs]
    return line
