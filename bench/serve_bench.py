"""Benchmark the runner over HTTP against ``swarmfold serve``, on instant tasks.

The workload is the core benchmark's reference workload (``shell/workload.py``: 10 layered
arrays, workflow limit 10,000, array limits 2,000) where every attempt takes 0 s and
succeeds; the cluster is unlimited and the distributor polls every 0.05 s. The server
(``JobmonServer``, time scale 1) runs in a **separate process**, so its CPU is not counted.
The client attaches with ``run_workflow_run`` (the code of ``swarmfold run``) and runs to
DONE with a ``--heartbeat`` interval (default 0.2 s).

Prints one JSON line per N::

    {"n": N, "client_cpu_s": c, "cpu_per_task_us": u, "requests": r, "requests_per_task": q, ...}

``client_cpu_s`` is the client process's user + system CPU (``getrusage(RUSAGE_SELF)``) over
the ``run_workflow_run`` call: the attach, ``decide``, the runner's threads, ``requests``,
gzip and JSON; ``attach_cpu_s`` is the part spent until the topology was built from the
loaded rows (``get_tasks``, ``get_downstream_tasks``, queue lookups), ``run_cpu_s`` the rest.
``requests`` counts every HTTP attempt the gateway made. For comparison the
line also holds the core benchmark's per-task CPU on the same workload (``core_cpu_per_task_us``,
``bench/core_bench.py`` in a fresh process, the core against its instant in-process server)
and the client's CPU per HTTP request measured right after the run (``http_cpu_per_request_us``,
``GET /time`` through the same gateway); ``budget_per_task_us`` is
``core_cpu_per_task_us + requests_per_task * http_cpu_per_request_us`` and ``within_budget``
says whether the client stayed under it.

With ``--repeat R`` each N runs R times (a fresh server each time) and the line of the run
with the median client CPU is printed, with every run's ``cpu_per_task_us`` sorted in
``runs_cpu_per_task_us``.

Usage: ``python bench/serve_bench.py [--n 10000] [--heartbeat 0.2] [--log] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

DEFAULT_NS = (10_000,)
#: ``GET /time`` requests timed to measure the client's CPU per HTTP request.
HTTP_PROBES = 300


def instant_scenario(n: int, seed: int = 0) -> Any:
    """The reference workload with instant, always successful attempts."""
    from swarmfold.shell.sim.scenario import (
        ArrayModel,
        DistributorSettings,
        DurationModel,
        scenario_from_topology,
    )
    from swarmfold.shell.workload import reference_workload

    spec = reference_workload(n, seed=seed, columnar=True)
    models = {a.array_id: ArrayModel(DurationModel("fixed", seconds=0.0)) for a in spec.arrays}
    return scenario_from_topology(
        spec, array_models=models, distributor=DistributorSettings(poll_interval=0.05),
        name=f"instant-{n}", seed=seed,
    )


def serve(n: int, seed: int) -> int:
    """Child: serve the scenario; print the URL line, then the server's snapshot at stdin EOF."""
    from swarmfold.shell.http.serve import JobmonServer

    server = JobmonServer(instant_scenario(n, seed), time_scale=1.0)
    server.start()
    print(json.dumps({"url": server.url, "workflow_id": server.workflow_id,
                      "workflow_run_id": server.workflow_run_id}), flush=True)
    sys.stdin.read()
    snap = server.snapshot()
    server.stop()
    print(json.dumps({"count_D": snap["count_D"], "run_status": snap["run_status"],
                      "violations": len(snap["violations"]), "errors": len(server.errors),
                      "server_requests": snap["requests"]}), flush=True)
    return 0


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def core_cpu_per_task_us(n: int, seed: int) -> float | None:
    """``bench/core_bench.py``'s ``client_s / n`` for this N, in a fresh process."""
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [sys.executable, os.path.join(here, "core_bench.py"), "--n", str(n), "--seed", str(seed)],
        capture_output=True, text=True, check=False,
    )
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        return float(data["client_s"]) / n * 1e6
    except (IndexError, KeyError, ValueError, TypeError):
        return None


def _attach_watch() -> Any:
    """A silent ``Progress`` noting the CPU and time when the core leaves the attach phase."""
    from swarmfold.shell.cli.progress import Progress

    class AttachWatch(Progress):
        cpu_at: float | None = None
        wall_at: float | None = None

        def update(self, state: Any, now: float, *, force: bool = False) -> None:
            if self.cpu_at is None and state.topology is not None:
                self.cpu_at = _cpu()
                self.wall_at = time.perf_counter()

        def close(self, state: Any, now: float) -> None:
            pass

    return AttachWatch(None, "off")


def run_one(n: int, seed: int, heartbeat: float, with_log: bool) -> dict[str, Any]:
    """Client: start the server process, run the workflow over HTTP, measure."""
    from swarmfold.core.config import SwarmConfig
    from swarmfold.shell.http.attach_run import run_workflow_run
    from swarmfold.shell.http.gateway import JobmonGateway

    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", str(n), "--seed", str(seed)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        hello = json.loads(child.stdout.readline())
        # Import what the run imports lazily (requests, the event log) before measuring.
        import swarmfold.shell.log.eventlog  # noqa: F401

        warm = JobmonGateway(hello["url"])
        warm.server_time()  # one request: http.client & co. import lazily on first use
        warm.close()
        config = SwarmConfig(heartbeat_interval=heartbeat, timeout=1e9)
        with tempfile.TemporaryDirectory() as tmp:
            log_path = os.path.join(tmp, "run.log") if with_log else None
            watch = _attach_watch()
            c0, t0 = _cpu(), time.perf_counter()
            outcome = run_workflow_run(
                hello["url"], hello["workflow_id"], hello["workflow_run_id"], config=config,
                log_path=log_path, progress=watch, install_signal_handlers=False, lock_dir=tmp,
            )
            client_cpu = _cpu() - c0
            wall = time.perf_counter() - t0
            attach_cpu = (watch.cpu_at or c0) - c0
            attach_wall = (watch.wall_at or t0) - t0
        gateway = JobmonGateway(hello["url"])
        gateway.server_time()  # connect first
        c0 = _cpu()
        for _ in range(HTTP_PROBES):
            gateway.server_time()
        http_cpu = (_cpu() - c0) / HTTP_PROBES
        gateway.close()
        child.stdin.close()
        server = json.loads(child.stdout.readline())
    finally:
        if child.poll() is None:
            child.stdin.close()
        child.wait(timeout=30)
    assert outcome.final_status == "D", f"n={n}: run ended {outcome.final_status!r}: {outcome.message}"
    assert server["count_D"] == n and server["violations"] == 0, server
    requests_total = outcome.total_requests
    per_task_us = client_cpu / n * 1e6
    rpt = requests_total / n
    core_us = core_cpu_per_task_us(n, seed)
    budget = None if core_us is None else core_us + rpt * http_cpu * 1e6
    return {
        "n": n,
        "final_status": outcome.final_status,
        "client_cpu_s": round(client_cpu, 3),
        "cpu_per_task_us": round(per_task_us, 1),
        "attach_cpu_s": round(attach_cpu, 3),
        "run_cpu_s": round(client_cpu - attach_cpu, 3),
        "attach_wall_s": round(attach_wall, 3),
        "requests": requests_total,
        "requests_per_task": round(rpt, 4),
        "wall_s": round(wall, 3),
        "events": outcome.events,
        "heartbeat_s": heartbeat,
        "event_log": with_log,
        "http_cpu_per_request_us": round(http_cpu * 1e6, 1),
        "core_cpu_per_task_us": None if core_us is None else round(core_us, 2),
        "budget_per_task_us": None if budget is None else round(budget, 1),
        "within_budget": None if budget is None else per_task_us <= budget,
        "requests_by_route": dict(sorted(outcome.requests.items())),
        "server": server,
    }


def median_run(n: int, seed: int, heartbeat: float, with_log: bool, repeat: int) -> dict[str, Any]:
    """``run_one`` ``repeat`` times; the run of median client CPU, with every run's CPU a task
    (``runs_cpu_per_task_us``, sorted): this machine's CPU time varies ±15 % between runs."""
    import fresh_process  # bench/fresh_process.py (the script's own folder)

    runs = [run_one(n, seed, heartbeat, with_log) for _ in range(max(1, repeat))]
    return fresh_process.median_line(runs, "cpu_per_task_us")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_NS), help="task counts")
    parser.add_argument("--seed", type=int, default=0, help="workload seed")
    parser.add_argument("--heartbeat", type=float, default=0.2, metavar="S",
                        help="the client's heartbeat (and sync) interval, seconds (default 0.2)")
    parser.add_argument("--log", action="store_true", help="record the client's event log too")
    parser.add_argument("--repeat", type=int, default=1, metavar="R",
                        help="runs per N, each against a fresh server; the median run's line is printed")
    parser.add_argument("--serve", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.seed)
    status = 0
    for n in args.n:
        try:
            print(json.dumps(median_run(n, args.seed, args.heartbeat, args.log, args.repeat)), flush=True)
        except Exception as exc:  # report and go on with the next N
            print(json.dumps({"n": n, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
