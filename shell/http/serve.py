"""``swarmfold serve``: the simulator's Jobmon server, distributor and cluster, over HTTP.

``JobmonServer(scenario)`` serves one workflow and its one workflow run on loopback, in real
time, with the routes and JSON of Jobmon 3.6 (spec §11, jobmon-protocol.md): the prefix
``/api/v3``, gzipped JSON answers, ``client_jobmon_version`` accepted on every request. Any
client of the real server can drive it; ``swarmfold run`` is the one it is made for.

Behind the routes is the simulator's :class:`ServerModel` (task, task-instance and
workflow-run state machines) and its :class:`Distributor` (polls, cluster slots, workers
drawing durations and outcomes from the scenario), exactly as ``swarmfold simulate`` uses
them. Only the clock differs: virtual time is ``(monotonic() - start) * time_scale``.
Everything scheduled in the world (worker starts and ends, distributor polls, reaper passes,
the scenario's limit changes, resume signals and distributor death) lives in a heap; before
each request the world is advanced to the request's virtual time, in time order with the
simulator's priorities, and then the request is served at that time. So a request observes
exactly what the simulator would show at that instant, and nothing needs a ticking thread.
One lock covers the model; JSON encoding and gzip happen outside it.

Durations the client sends are real seconds (``next_report_increment`` of a heartbeat): they
are multiplied by ``time_scale``. The client should run with the scenario's intervals
divided by ``time_scale`` (``client_config``); ``swarmfold serve`` prints the command line.
The workflow run starts LAUNCHED (``O``), as in the simulator: the distributor has already
moved the bound run to I and O, so the swarm's ``update_status(R)`` is the legal ``O -> R``.

What the model does not have, the HTTP layer makes up, consistently: the DAG id (the
workflow id unless given), node ids (``index + 1``), cluster names (``sim-<cluster_id>``) and
queue and cluster ids (the scenario's, else numbered from 1). The scenario's request faults
are served as HTTP errors (a failed request: 503, nothing done; a lost response: the work is
done, then 502); its latency models are not applied (the HTTP stack is the latency).

Besides the swarm's routes it serves the resume and concurrency routes a user calls
(``set_resume``, ``update_max_concurrently_running``, ``update_array_max_concurrently_running``
with the array id as ``task_template_version_id``) and ``GET /health``. Unknown routes answer
404 ``{"error": ...}``; malformed bodies 400.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from heapq import heappop, heappush
from http.server import ThreadingHTTPServer
from typing import Any, TextIO

import attrs

from swarmfold.core.config import SwarmConfig
from swarmfold.core.topology import Topology, build_topology
from swarmfold.shell.http.loopback import Connections, GzipJsonHandler
from swarmfold.shell.server.answers import RouteAnswers, served_route
from swarmfold.shell.sim.cluster import Distributor, WorkModel
from swarmfold.shell.sim.scenario import LimitChange, ResumeSignal, Scenario
from swarmfold.shell.sim.world import (
    PRIO_WORKER,
    WorldLoop,
    schedule_scripted_world,
    server_for,
)

__all__ = [
    "DEFAULT_ROUTE_PREFIX",
    "JobmonServer",
    "add_parser",
    "client_config",
    "main",
    "run_command",
]

DEFAULT_ROUTE_PREFIX = "/api/v3"

#: Route templates (as the gateway counts them) -> the simulator's route names (faults).
_SIM_ROUTE = {
    "POST /array/{id}/queue_task_batch": "queue_task_batch",
    "POST /task/bind_resources": "bind_resources",
    "POST /workflow_run/{id}/log_heartbeat": "log_heartbeat",
    "PUT /workflow_run/{id}/update_status": "update_status",
    "POST /workflow_run/{id}/set_status_for_triaging": "set_status_for_triaging",
    "POST /workflow/{id}/task_status_updates": "task_status_updates",
    "GET /workflow/{id}/get_max_concurrently_running": "get_max_concurrently_running",
    "GET /array/{id}/get_array_max_concurrently_running": "get_array_max_concurrently_running",
    "PUT /workflow_run/{id}/terminate_task_instances": "terminate_task_instances",
}


def client_config(scenario: Scenario, time_scale: float) -> SwarmConfig:
    """The scenario's swarm configuration on the client's (real) clock: every interval and
    the timeout divided by ``time_scale``."""
    c = scenario.config
    return attrs.evolve(
        c,
        heartbeat_interval=c.heartbeat_interval / time_scale,
        wedged_sync_interval=c.wedged_sync_interval / time_scale,
        timeout=c.timeout / time_scale,
    )


def run_command(server: JobmonServer) -> str:
    """The ``swarmfold run`` command line that drives ``server``'s workflow run with the
    scenario's configuration on the real clock (options at their defaults are left out,
    except the heartbeat interval)."""
    c = client_config(server.scenario, server.time_scale)
    d = SwarmConfig()
    parts = [
        f"swarmfold run --server {server.url} --workflow-id {server.workflow_id}",
        f"--workflow-run-id {server.workflow_run_id} --heartbeat-interval {c.heartbeat_interval:g}",
    ]
    for flag, value, default in (
        ("--report-by-buffer", c.report_by_buffer, d.report_by_buffer),
        ("--wedged-sync-interval", c.wedged_sync_interval, d.wedged_sync_interval),
        ("--timeout", c.timeout, d.timeout),
        ("--max-batch-size", c.max_batch_size, d.max_batch_size),
    ):
        if value != default:
            parts.append(f"{flag} {value:g}")
    if c.fail_fast:
        parts.append("--fail-fast")
    if c.adaptive_batching:
        parts.append("--adaptive-batching")
    return " ".join(parts)


class JobmonServer(RouteAnswers, WorldLoop):
    """One workflow of ``scenario`` behind a loopback HTTP server. ``start()``/``stop()``, or
    use it as a context manager; ``url`` is the base URL (without the route prefix).

    ``seed`` overrides the scenario's (worker outcomes and durations); ``clock`` is the real
    clock (seconds, monotonic). Attributes for tests: ``model`` (the ``ServerModel``),
    ``distributor``, ``violations`` (server-side checks, see ``_check_batch``),
    ``request_counts``, ``errors`` (handler crashes, answered 500).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        seed: int | None = None,
        dag_id: int | None = None,
        route_prefix: str = DEFAULT_ROUTE_PREFIX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        from swarmfold.shell.sim.driver import _sub_streams

        self.scenario = scenario
        self.host = host
        self.port = port
        self.time_scale = float(time_scale)
        self.seed = scenario.seed if seed is None else seed
        self.workflow_id = scenario.workflow_id
        self.workflow_run_id = scenario.workflow_run_id
        self.dag_id = scenario.workflow_id if dag_id is None else dag_id
        prefix = route_prefix.strip().strip("/")
        self.route_prefix = f"/{prefix}" if prefix else ""
        self.clock = clock
        topo = build_topology(scenario.topology)
        self.topology: Topology = topo
        self.model = server_for(scenario, topo)
        streams = _sub_streams(self.seed)
        self._heap: list[tuple[float, int, int, str, Any]] = []
        self._seq = 0
        self.distributor = Distributor(
            scenario,
            self.model,
            WorkModel(scenario, topo, streams["work"]),
            self.push,
            PRIO_WORKER,
            lost_worker_rate=scenario.faults.lost_worker_rate,
            fault_rng=streams["faults"],
        )
        self._fault_rng = streams["faults"]
        faults = scenario.faults
        self._fault_routes = None if faults.routes is None else frozenset(faults.routes)
        self._schedule_world()
        self.lock = threading.Lock()
        self._now = 0.0
        self._t0: float | None = None
        # Static per-task data for get_tasks and get_downstream_tasks.
        self._build_ids(topo)
        #: Limits in force since the start (the highest each): what a batch may never exceed.
        self._max_workflow_limit = self.model.workflow_limit
        self._max_array_limit: dict[int, int] = dict(self.model.array_limits)
        #: Server-side checks: a task queued with an upstream not DONE, a limit exceeded.
        self.violations: list[str] = []
        self.batches = 0
        self.request_counts: dict[str, int] = {}
        self.client_versions: set[str] = set()
        self.errors: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections = Connections()

    # --- the world ----------------------------------------------------------------------------

    def push(self, t: float, prio: int, kind: str, payload: Any) -> None:
        self._seq += 1
        heappush(self._heap, (t, prio, self._seq, kind, payload))

    def _schedule_world(self) -> None:
        schedule_scripted_world(self.scenario, self.push)

    def _advance_to(self, now: float) -> None:
        """Carry out everything scheduled up to ``now``, in time order (call under the lock)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            t, _, _, kind, payload = heappop(heap)
            if not self.world_step(kind, payload, t):
                raise RuntimeError(f"serve: unknown world event {kind!r}")

    # what the world's events mean here (``WorldLoop``): the model changes, nothing is reported

    def reap(self, t: float) -> None:
        self.model.reap(t)

    def change_limit(self, change: LimitChange) -> None:
        if change.array_id is None:
            self._set_workflow_limit(change.limit)
        else:
            self._set_array_limit(change.array_id, change.limit)

    def signal_resume(self, signal_: ResumeSignal) -> None:
        self.model.set_resume(reset_running_jobs=signal_.mode == "cold")

    def virtual_now(self) -> float:
        """The current virtual time (0 before ``start``)."""
        if self._t0 is None:
            return 0.0
        return (self.clock() - self._t0) * self.time_scale

    def _tick(self) -> float:
        """Advance the world to the current virtual time; return it (call under the lock)."""
        now = max(self._now, self.virtual_now())
        self._now = now
        self._advance_to(now)
        return now

    def advance(self) -> float:
        """Bring the world up to the current virtual time; return it."""
        with self.lock:
            return self._tick()

    def snapshot(self) -> dict[str, Any]:
        """The world now: the run status, task counts, peaks, attempts, checks."""
        with self.lock:
            now = self._tick()
            m = self.model
            return {
                "virtual_time": round(now, 3),
                **m.snapshot(),
                "peak_active": m.peak_total,
                "peak_by_array": dict(m.peak_by_array),
                "attempts": len(m.ti_status),
                "attempt_outcomes": dict(sorted(self.distributor.outcomes.items())),
                "batches": self.batches,
                "violations": list(self.violations),
                "requests": sum(self.request_counts.values()),
            }

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> JobmonServer:
        """Listen (on ``port``; 0 picks a free one) and serve in a background thread. Virtual
        time starts now."""
        if self._httpd is not None:
            return self
        server = self

        class Handler(_Handler):
            pass

        Handler.server_obj = server
        Handler.connections = self._connections
        httpd = _HTTPServer((self.host, self.port), Handler)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        if self._t0 is None:
            self._t0 = self.clock()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="swarmfold-serve", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection (the model is kept)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._httpd = None
        httpd.shutdown()
        httpd.server_close()
        self._connections.close_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> JobmonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- requests -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: Mapping[str, str], body: Any) -> tuple[int, Any]:
        """Serve one request (``path`` without the prefix): ``(HTTP status, JSON value)``."""
        version = query.get("client_jobmon_version")
        found = served_route(method, path)
        if found is not None:
            route, params = found
            template = route.label
            fate = self._fate(template)
            with self.lock:
                self.request_counts[template] = self.request_counts.get(template, 0) + 1
                if version is not None:
                    self.client_versions.add(version)
                if fate == "failed":
                    return 503, {"error": "injected fault: request failed"}
                now = self._tick()
                result = self.answer_route(route, params, query, body, now)
            if fate == "lost":
                return 502, {"error": "injected fault: response lost"}
            return result
        return 404, {"error": f"no route {method} {self.route_prefix}{path}"}

    def _fate(self, template: str) -> str | None:
        faults = self.scenario.faults
        if not (faults.request_failure_rate or faults.response_loss_rate):
            return None
        route = _SIM_ROUTE.get(template)
        if route is None or (self._fault_routes is not None and route not in self._fault_routes):
            return None
        with self.lock:
            u = self._fault_rng.random()
        if u < faults.request_failure_rate:
            return "failed"
        if u < faults.request_failure_rate + faults.response_loss_rate:
            return "lost"
        return None

class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the runner opens a dozen connections at once


class _Handler(GzipJsonHandler):
    server_obj: JobmonServer

    def serve(self, method: str) -> None:
        srv = self.server_obj
        path, query, raw = self.read_request()
        prefix = srv.route_prefix
        if prefix and not (path.startswith(prefix + "/") or path == prefix):
            self._answer(404, {"error": f"no route {method} {path} (routes are under {prefix})"})
            return
        path = path[len(prefix):]
        body: Any = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(400, {"error": "the request body is not valid JSON"})
                return
        try:
            status, value = srv.handle(method, path, query, body)
        except Exception as exc:  # a bug: answer 500 and keep serving
            detail = f"{method} {path}: {type(exc).__name__}: {exc}"
            srv.errors.append(detail)
            status, value = 500, {"error": f"internal error: {detail}"}
        self._answer(status, value)

    def _answer(self, status: int, value: Any) -> None:
        self.send_gzip_json(status, json.dumps(value, separators=(",", ":")), compresslevel=1)


# --- the ``swarmfold serve`` subcommand ----------------------------------------------------------


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subparser to ``sub`` (an ``add_subparsers`` result)."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="serve a scenario's simulated Jobmon server, distributor and cluster over HTTP",
        description="Serve the simulator's Jobmon 3.6 server, distributor and cluster for one "
        "scenario over HTTP on loopback, in real time (scaled by --time-scale), with the routes "
        "and JSON of Jobmon 3.6 under /api/v3. Point 'swarmfold run' at the printed URL. Serves "
        "until SIGINT or SIGTERM. Exit 0 after a signal; 2: bad input.",
    )
    parser.add_argument("scenario", metavar="SCENARIO", help="simulation scenario JSON file")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, metavar="P", help="port (default 0: a free one)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="simulated seconds per real second (default 1)")
    parser.add_argument("--seed", type=int, metavar="N", help="override the scenario's seed")
    parser.add_argument("--url-file", metavar="FILE",
                        help="write the server URL to FILE once it listens (for scripts)")
    parser.set_defaults(handler=main)
    return parser


def main(args: argparse.Namespace, out: TextIO) -> int:
    """``swarmfold serve``: serve until SIGINT or SIGTERM; returns the exit code."""
    import os

    from swarmfold.shell.sim.scenario import ScenarioError, load_scenario

    prog = "swarmfold serve"
    if not args.time_scale > 0:
        print(f"{prog}: error: --time-scale must be > 0, got {args.time_scale:g}", file=sys.stderr)
        return 2
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    server = JobmonServer(
        scenario, host=args.host, port=args.port, time_scale=args.time_scale, seed=args.seed
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as exc:
            print(f"{prog}: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 2
        name = scenario.name or args.scenario
        print(f"serving {name} on {server.url}{server.route_prefix} "
              f"(time scale {server.time_scale:g}: 1 s real = {server.time_scale:g} s simulated)", file=out)
        print(f"workflow {server.workflow_id}, workflow run {server.workflow_run_id}, dag {server.dag_id}: "
              f"{server.topology.size} tasks", file=out)
        print(f"run it with: {run_command(server)}", file=out)
        out.flush()
        if args.url_file:
            tmp = f"{args.url_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(server.url + "\n")
            os.replace(tmp, args.url_file)
        while not stop.wait(0.5):
            pass
        snap = server.snapshot()
        print(
            f"stopped at t={snap['virtual_time']:g} s (simulated): run {snap['run_status']}, "
            f"{snap['count_D']} done, {snap['count_F']} failed, {snap['requests']} requests, "
            f"{len(snap['violations'])} violation(s)",
            file=out,
        )
        return 0
    finally:
        server.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
