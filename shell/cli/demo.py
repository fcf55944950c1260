"""``swarmfold demo``: the whole main job in one process.

1. an embedded ``JobmonServer`` serves the scenario's simulated Jobmon server, distributor
   and cluster on a free loopback port, ``--time-scale`` times faster than real time;
2. the runner attaches to the workflow run over HTTP (``run_workflow_run``, the code behind
   ``swarmfold run``) with the scenario's intervals scaled to the real clock, drives it to a
   final status and records every decision in an event log;
3. the run's summary is printed, with what the server saw (attempts, peaks, checks);
4. the log is replayed through the core (``swarmfold replay``): every recorded decision must
   come out the same.

Exit 0 only when the run ended DONE, the server saw no limit or dependency violation and the
replay matched; 1 otherwise; 2 for bad input. Without a SCENARIO the bundled example runs: a
copy of ``examples/three_array_pipeline.json`` (14 tasks in three arrays with limits, a limit
lowered mid-run; about 300 simulated seconds, 6 s at the default time scale of 50).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, TextIO

__all__ = ["BUNDLED_EXAMPLE", "DEFAULT_TIME_SCALE", "add_parser", "bundled_scenario", "main", "run_demo"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

DEFAULT_TIME_SCALE = 50.0
PROG = "swarmfold demo"

#: ``examples/three_array_pipeline.json``, bundled (a test keeps the two the same).
BUNDLED_EXAMPLE = """{
  "name": "three_array_pipeline",
  "seed": 7,
  "workflow": {"limit": 4, "heartbeat_interval": 10.0},
  "queues": [
    {"name": "all.q", "queue_id": 1, "cluster_id": 1,
     "bounds": {"cores": [1, 16], "memory": [1, 128], "runtime": [60, 86400]}}
  ],
  "arrays": [
    {"array_id": 1, "name": "extract", "limit": 3, "duration": {"distribution": "fixed", "seconds": 20.0}},
    {"array_id": 2, "name": "transform", "limit": 2,
     "duration": {"distribution": "uniform", "low": 15.0, "high": 45.0}},
    {"array_id": 3, "name": "load", "limit": 1, "duration": {"distribution": "fixed", "seconds": 30.0}}
  ],
  "resource_sets": [
    {"resource_set_id": 1, "queue": "all.q", "requested": {"cores": 1, "memory": 2, "runtime": 600}},
    {"resource_set_id": 2, "queue": "all.q", "requested": {"cores": 4, "memory": 16, "runtime": 3600}},
    {"resource_set_id": 3, "queue": "all.q", "requested": {"cores": 1, "memory": 4, "runtime": 1200}}
  ],
  "tasks": [
    {"task_id": 101, "array_id": 1, "resource_set_id": 1},
    {"task_id": 102, "array_id": 1, "resource_set_id": 1},
    {"task_id": 103, "array_id": 1, "resource_set_id": 1},
    {"task_id": 104, "array_id": 1, "resource_set_id": 1},
    {"task_id": 105, "array_id": 1, "resource_set_id": 1},
    {"task_id": 106, "array_id": 1, "resource_set_id": 1},
    {"task_id": 201, "array_id": 2, "resource_set_id": 2, "upstream_ids": [101]},
    {"task_id": 202, "array_id": 2, "resource_set_id": 2, "upstream_ids": [102]},
    {"task_id": 203, "array_id": 2, "resource_set_id": 2, "upstream_ids": [103]},
    {"task_id": 204, "array_id": 2, "resource_set_id": 2, "upstream_ids": [104]},
    {"task_id": 205, "array_id": 2, "resource_set_id": 2, "upstream_ids": [105]},
    {"task_id": 206, "array_id": 2, "resource_set_id": 2, "upstream_ids": [106]},
    {"task_id": 301, "array_id": 3, "resource_set_id": 3, "upstream_ids": [201, 202, 203]},
    {"task_id": 302, "array_id": 3, "resource_set_id": 3, "upstream_ids": [204, 205, 206]}
  ],
  "cluster": {"slots": 8},
  "distributor": {"poll_interval": 5.0},
  "limit_changes": [{"at": 60.0, "array_id": 2, "limit": 1}]
}
"""


def bundled_scenario() -> Any:
    """The bundled example as a compiled ``Scenario``."""
    from swarmfold.shell.sim.scenario import parse_scenario

    return parse_scenario(json.loads(BUNDLED_EXAMPLE), "three_array_pipeline (bundled)")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subparser to ``sub`` (an ``add_subparsers`` result)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="serve a scenario over HTTP, run it with the runner, print the summary, verify the replay",
        description="The main job end to end in one process: start the embedded Jobmon server "
        "(swarmfold serve) for a scenario, drive its workflow run over HTTP with the runner "
        "(swarmfold run) recording an event log, print the summary, then replay the log "
        "(swarmfold replay). Without SCENARIO the bundled three_array_pipeline example runs. "
        "Exit 0: the run ended DONE and the replay matched; 1: otherwise; 2: bad input.",
    )
    p.add_argument("scenario", nargs="?", metavar="SCENARIO",
                   help="simulation scenario JSON file (default: the bundled example)")
    p.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE, metavar="X",
                   help=f"simulated seconds per real second (default {DEFAULT_TIME_SCALE:g})")
    p.add_argument("--log", metavar="FILE",
                   help="where to record the event log (default: a new temporary directory)")
    p.add_argument("--seed", type=int, metavar="N", help="override the scenario's seed")
    p.add_argument("--progress", choices=("auto", "tty", "lines", "off"), default="off",
                   help="the runner's progress on stderr (default off)")
    p.set_defaults(handler=main)
    return p


def main(args: argparse.Namespace, out: TextIO) -> int:
    """Handle ``swarmfold demo``."""
    return run_demo(
        args.scenario, time_scale=args.time_scale, log_path=args.log, seed=args.seed,
        progress=args.progress, out=out,
    )


def run_demo(
    scenario_path: str | None = None,
    *,
    time_scale: float = DEFAULT_TIME_SCALE,
    log_path: str | None = None,
    seed: int | None = None,
    progress: str = "off",
    out: TextIO | None = None,
    install_signal_handlers: bool = True,
) -> int:
    """Serve, run, summarize, replay (see the module doc); returns the exit code."""
    from swarmfold.shell.http.attach_run import run_workflow_run
    from swarmfold.shell.http.runner import format_outcome
    from swarmfold.shell.http.serve import JobmonServer, client_config
    from swarmfold.shell.log.replay import format_result, replay
    from swarmfold.shell.sim.scenario import ScenarioError, load_scenario

    out = out if out is not None else sys.stdout
    if not time_scale > 0:
        print(f"{PROG}: error: --time-scale must be > 0, got {time_scale:g}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        scenario = bundled_scenario() if scenario_path is None else load_scenario(scenario_path)
    except ScenarioError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if log_path is None:
        log_path = os.path.join(tempfile.mkdtemp(prefix="swarmfold-demo-"), "demo.log")
    name = scenario.name or scenario_path or "scenario"
    with JobmonServer(scenario, time_scale=time_scale, seed=seed) as server:
        print(f"serving {name} on {server.url}{server.route_prefix} "
              f"(time scale {server.time_scale:g}: 1 s real = {server.time_scale:g} s simulated)", file=out)
        config = client_config(scenario, time_scale)
        print(f"running workflow {server.workflow_id}, run {server.workflow_run_id} "
              f"({server.topology.size} tasks) over HTTP, heartbeat every {config.heartbeat_interval:g} s",
              file=out)
        out.flush()
        outcome = run_workflow_run(
            server.url, server.workflow_id, server.workflow_run_id,
            config=config, log_path=log_path, progress=progress,
            install_signal_handlers=install_signal_handlers,
        )
        snap = server.snapshot()
    print(format_outcome(outcome, f"workflow {server.workflow_id} run {server.workflow_run_id}: "), file=out)
    outcomes = ", ".join(f"{v} {k}" for k, v in snap["attempt_outcomes"].items()) or "none"
    violations = snap["violations"]
    print(f"server: run {snap['run_status']}, {snap['attempts']} attempts ({outcomes}), "
          f"peak active {snap['peak_active']}, "
          f"{len(violations) or 'no'} limit or dependency violation{'' if len(violations) == 1 else 's'}",
          file=out)
    for v in violations[:10]:
        print(f"  {v}", file=out)
    ok = outcome.final_status == "D" and not violations
    if outcome.log_path is None or not os.path.exists(log_path):
        print(f"{PROG}: no event log was written", file=out)
        return EXIT_FAILED
    from swarmfold.shell.log.eventlog import LogError

    try:
        result = replay(log_path)
    except LogError as exc:
        print(f"replay: error: {exc}", file=out)
        return EXIT_FAILED
    for line in format_result(result):
        print(f"replay: {line}", file=out)
    ok = ok and result.ok and result.divergence is None and result.error is None
    if ok:
        print("demo: OK: the run ended DONE and its event log replays with the same decisions", file=out)
        return EXIT_OK
    why = []
    if outcome.final_status != "D":
        why.append(f"the run ended {outcome.final_status or outcome.failed_reason}")
    if violations:
        why.append("the server saw violations")
    if not result.ok:
        why.append("the replay did not match")
    print(f"demo: FAILED: {'; '.join(why)}", file=out)
    return EXIT_FAILED
