"""Benchmark ``swarmfold simulate`` on the core benchmark's reference workload, with durations.

The workload is ``shell/workload.py``'s reference workload (10 layered arrays, limits 10,000
for the workflow and 2,000 per array). Every array draws attempt durations from
``uniform(30 s, 90 s)``; no failures; the cluster has 12,000 slots; the distributor polls every
10 s; latencies are the scenario defaults (20 ms +-50%); heartbeat 30 s (Jobmon defaults).

Prints one JSON line per N, like ``bench/core_bench.py``::

    {"n": N, "wall_s": x, "decide_s": y, "sim_s": z, "peak_rss_mb": m, "final_status": "D", ...}

Each N runs in a fresh subprocess, so peak RSS is per N. ``wall_s`` is the time of the whole
``simulate`` call (the workload is built first, not timed); ``decide_s`` is the part spent
inside the core's ``decide``; ``sim_s = wall_s - decide_s`` is the simulator's own cost
(server model, cluster, heap, invariant checks, report). ``cpu_s`` is the process CPU time of
the call (robust to other processes sharing the machine). Budgets: 100k tasks 6 s, 1M tasks
60 s and 1 GB peak RSS; ``within_budget`` says whether the run met them.

Usage: ``python bench/sim_bench.py [--n 100000 1000000] [--seed 0]``
"""

from __future__ import annotations

import inspect
import resource
import time

DEFAULT_NS = (100_000, 1_000_000)
#: Wall-clock budgets in seconds per N (issue 3); peak RSS budget in MB.
BUDGET_S = {100_000: 6.0, 1_000_000: 60.0}
BUDGET_RSS_MB = 1024.0


def reference_scenario(n: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """The benchmark scenario: the reference workload with uniform(30, 90) s durations."""
    from swarmfold.shell.sim.scenario import (
        ArrayModel,
        ClusterSettings,
        DurationModel,
        scenario_from_topology,
    )
    from swarmfold.shell.workload import reference_workload

    kwargs = {"columnar": True} if "columnar" in inspect.signature(reference_workload).parameters else {}
    spec = reference_workload(n, seed=seed, **kwargs)
    models = {a.array_id: ArrayModel(DurationModel("uniform", low=30.0, high=90.0)) for a in spec.arrays}
    return scenario_from_topology(
        spec, array_models=models, cluster=ClusterSettings(slots=12_000), name=f"reference-{n}", seed=seed
    )


def run_one(n: int, seed: int = 0) -> dict[str, object]:
    """Build and simulate the ``n``-task reference scenario in this process; return the figures."""
    from swarmfold.shell.sim.driver import simulate

    t0 = time.perf_counter()
    scenario = reference_scenario(n, seed)
    build_s = time.perf_counter() - t0
    c0 = time.process_time()
    t0 = time.perf_counter()
    result = simulate(scenario, profile=True)
    wall_s = time.perf_counter() - t0
    cpu_s = time.process_time() - c0
    report = result.report
    assert report.final_status == "D", f"n={n}: run ended {report.final_status!r}, expected 'D'"
    assert report.done == n, f"n={n}: {report.done} done"
    decide_s = result.decide_seconds or 0.0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    budget = BUDGET_S.get(n)
    return {
        "n": n,
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "decide_s": round(decide_s, 3),
        "sim_s": round(wall_s - decide_s, 3),
        "tasks_per_s": round(n / wall_s, 1) if wall_s > 0 else None,
        "peak_rss_mb": round(rss_mb, 1),
        "final_status": report.final_status,
        "makespan_s": report.makespan,
        "decide_calls": report.decide_calls,
        "requests": report.requests_total,
        "full_syncs": report.full_syncs,
        "peak_active": report.peak_active,
        "violations": report.violation_count,
        "build_workload_s": round(build_s, 3),
        "budget_s": budget,
        "within_budget": (budget is None or wall_s <= budget) and rss_mb <= BUDGET_RSS_MB,
    }


def main(argv: list[str] | None = None) -> int:
    import fresh_process  # bench/fresh_process.py (the script's own folder): one process per N

    return fresh_process.main(__doc__ or "", __file__, run_one, DEFAULT_NS, argv, median_key="wall_s")


if __name__ == "__main__":
    raise SystemExit(main())
