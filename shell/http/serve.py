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
import bisect
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

from swarmfold.core.config import UNLIMITED, SwarmConfig
from swarmfold.core.topology import Topology, build_topology
from swarmfold.shell.http import routes
from swarmfold.shell.http.loopback import Connections, GzipJsonHandler
from swarmfold.shell.http.routes import Route
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.cluster import Distributor, WorkModel
from swarmfold.shell.sim.scenario import LimitChange, ResumeSignal, Scenario
from swarmfold.shell.sim.world import (
    PRIO_WORKER,
    WorldLoop,
    schedule_scripted_world,
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


class _Abort(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _require(body: Any, fields: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """``body`` as an object holding ``fields`` of the given kinds (bool is never an int)."""
    if not isinstance(body, dict):
        raise _Abort(400, f"expected a JSON object body, got {body!r:.80}")
    for name, kind in fields.items():
        if name not in body:
            raise _Abort(400, f"field {name!r} is required")
        value = body[name]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise _Abort(400, f"field {name!r}: unexpected value {value!r:.80}")
    return body


def _num(x: float) -> str:
    """``1.0`` -> ``"1"``, ``0.5`` -> ``"0.5"`` (queue parameters, as Jobmon stores them)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _int_param(query: Mapping[str, str], name: str) -> int:
    try:
        return int(query[name])
    except KeyError:
        raise _Abort(400, f"query parameter {name!r} is required") from None
    except ValueError:
        raise _Abort(400, f"query parameter {name!r}: expected an int, got {query[name]!r}") from None


class JobmonServer(WorldLoop):
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
        config = scenario.config
        self.model = ServerModel(
            topo,
            workflow_id=scenario.workflow_id,
            workflow_run_id=scenario.workflow_run_id,
            run_status="O",
            heartbeat_increment=config.next_report_increment,
            ti_report_increment=scenario.server.task_instance_heartbeat_interval * config.report_by_buffer,
        )
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

    # --- static data --------------------------------------------------------------------------

    def _build_ids(self, topo: Topology) -> None:
        ids = topo.task_ids
        n = topo.size
        order = sorted(range(n), key=ids.__getitem__)
        self._order = order
        self._sorted_ids = [ids[i] for i in order]
        # Queues: the scenario's ids, else numbered after the highest given id.
        names: dict[str, None] = dict.fromkeys(q.name for q in self.scenario.topology.queues)
        for res in set(topo.resources_of):
            names.setdefault(res.queue, None)
        for i in range(n):
            for q in topo.fallbacks_of[i]:
                names.setdefault(q, None)
        given_q = {name: qid for name, qid in topo.queue_ids.items() if qid}
        next_q = max(given_q.values(), default=0) + 1
        self.queue_ids: dict[str, int] = {}
        self.cluster_of_queue: dict[str, int] = {}
        for name in names:
            qid = given_q.get(name)
            if qid is None:
                qid, next_q = next_q, next_q + 1
            self.queue_ids[name] = qid
            self.cluster_of_queue[name] = topo.cluster_ids.get(name) or 1
        self.queue_of_id = {qid: name for name, qid in self.queue_ids.items()}
        self.cluster_names = {cid: f"sim-{cid}" for cid in sorted(set(self.cluster_of_queue.values()))}
        self.cluster_by_name = {name: cid for cid, name in self.cluster_names.items()}
        bounds = {q.name: q.bounds for q in self.scenario.topology.queues}
        self.queue_parameters = {
            name: "{" + ", ".join(f'"{r}": ({_num(lo)}, {_num(hi)})' for r, lo, hi in bounds.get(name, ()))
            + "}"
            for name in names
        }
        # One string triple per distinct resource set (Resources objects are shared).
        self._resource_strings: dict[int, tuple[str, str, str]] = {}

    def _row(self, i: int) -> list[Any]:
        topo = self.topology
        res = topo.resources_of[i]
        strings = self._resource_strings.get(id(res))
        if strings is None:
            strings = (
                json.dumps(dict(res.requested)),
                self.cluster_names[self.cluster_of_queue[res.queue]],
                res.queue,
            )
            self._resource_strings[id(res)] = strings
        scales = {name: list(v) if isinstance(v, tuple) else v for name, v in topo.scales_of[i]}
        a = topo.array_of[i]
        return [
            a,
            self.model.status[i],
            int(topo.max_attempts[i]),
            repr(scales),
            repr(list(topo.fallbacks_of[i])),
            strings[0],
            strings[1],
            strings[2],
            self.model.array_limits.get(a, UNLIMITED),
        ]

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
        self._limit_change(change)

    def signal_resume(self, signal: ResumeSignal) -> None:
        self._resume(signal)

    def _limit_change(self, change: LimitChange) -> None:
        if change.array_id is None:
            self._set_workflow_limit(change.limit)
        else:
            self._set_array_limit(change.array_id, change.limit)

    def _set_workflow_limit(self, limit: int) -> None:
        self.model.set_workflow_limit(limit)
        self._max_workflow_limit = max(self._max_workflow_limit, limit)

    def _set_array_limit(self, array_id: int, limit: int) -> None:
        self.model.set_array_limit(array_id, limit)
        self._max_array_limit[array_id] = max(self._max_array_limit.get(array_id, 0), limit)

    def _resume(self, signal_: ResumeSignal) -> None:
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
        found = routes.match(method, path, _SERVED)
        if found is not None and all(v.isdigit() for k, v in found[1].items() if k.endswith("_id")):
            route, params = found
            template = route.label
            handler: Callable[..., Any] = getattr(self, _HANDLERS[route])
            fate = self._fate(template)
            with self.lock:
                self.request_counts[template] = self.request_counts.get(template, 0) + 1
                if version is not None:
                    self.client_versions.add(version)
                if fate == "failed":
                    return 503, {"error": "injected fault: request failed"}
                now = self._tick()
                try:
                    result: tuple[int, Any] = handler(*params.values(), query=query, body=body, now=now)
                except _Abort as exc:
                    return exc.status, {"error": exc.message}
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

    def _workflow(self, wf: str) -> None:
        if int(wf) != self.workflow_id:
            raise _Abort(404, f"no workflow {wf}")

    def _run(self, wfr: str) -> None:
        if int(wfr) != self.workflow_run_id:
            raise _Abort(404, f"no workflow run {wfr}")

    # the swarm's routes

    def log_heartbeat(self, wfr: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._run(wfr)
        b = _require(body, {"status": str, "next_report_increment": (int, float)})
        increment = float(b["next_report_increment"]) * self.time_scale
        return 200, {"status": self.model.log_heartbeat(b["status"], increment, now)}

    def update_status(self, wfr: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._run(wfr)
        b = _require(body, {"status": str})
        return 200, {"status": self.model.update_status(b["status"], now)}

    def terminate(self, wfr: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._run(wfr)
        n = self.model.terminate_task_instances(now)
        return 200, {"workflow_run_id": self.workflow_run_id, "num_terminated": n}

    def triage(self, wfr: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._run(wfr)
        self.model.set_status_for_triaging(now)
        return 200, {}

    def status_updates(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        if int(wf) != self.workflow_id:
            return 200, {"tasks_by_status": {}, "time": self.model.time_string(now)}
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise _Abort(400, f"expected a JSON object body, got {body!r:.80}")
        since = body.get("last_sync")
        if since is not None and not isinstance(since, str):
            raise _Abort(400, f"field 'last_sync': expected a time string, got {since!r:.80}")
        try:
            tasks, when = self.model.task_status_updates(since, now)
        except ValueError:
            raise _Abort(400, f"field 'last_sync': not a time 'YYYY-MM-DD HH:MM:SS': {since!r:.80}") from None
        return 200, {"tasks_by_status": tasks, "time": when}

    def workflow_limit(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._workflow(wf)
        return 200, {"max_concurrently_running": self.model.get_max_concurrently_running()}

    def array_limit(self, array: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        array_id = int(array)
        if array_id not in self.model.array_limits and array_id not in self.model.active_by_array:
            raise _Abort(404, f"no array {array_id}")
        return 200, {"max_concurrently_running": self.model.get_array_max_concurrently_running(array_id)}

    def queue_task_batch(self, array: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        b = _require(body, {"task_ids": list, "task_resources_id": int, "workflow_run_id": int})
        array_id = int(array)
        model = self.model
        if b["workflow_run_id"] != self.workflow_run_id:
            raise _Abort(400, f"unknown workflow_run_id {b['workflow_run_id']}")
        tr = b["task_resources_id"]
        if not 0 < tr < len(model.task_resources):
            raise _Abort(400, f"unknown task_resources_id {tr}")
        task_ids = b["task_ids"]
        if not all(type(t) is int for t in task_ids):
            raise _Abort(400, "field 'task_ids': expected a list of ints")
        array_of = model.array_of
        for i in model.indexes_of(task_ids):
            if array_of[i] != array_id:
                raise _Abort(400, f"task {model.task_ids[i]} is not in array {array_id}")
        answer, moved = model.queue_task_batch(task_ids, tr, now)
        self._check_batch(array_id, moved, now)
        return 200, {"tasks_by_status": answer}

    def _check_batch(self, array_id: int, moved: list[int], now: float) -> None:
        """Dependencies and limits, as the server sees a batch land (the server enforces
        neither: the swarm does). A limit counts as exceeded only above the highest value it
        has had since the start (a lowered limit binds once the swarm has fetched it)."""
        self.batches += 1
        model = self.model
        up_left, task_ids = model.up_left, model.task_ids
        for i in moved:
            if up_left[i] != 0:
                self.violations.append(
                    f"t={now:.3f}: dependency: task {task_ids[i]} queued with {up_left[i]} "
                    "upstream(s) not DONE"
                )
        if model.active_total > self._max_workflow_limit:
            self.violations.append(
                f"t={now:.3f}: workflow_limit: {model.active_total} active > {self._max_workflow_limit}"
            )
        active = model.active_by_array.get(array_id, 0)
        limit = self._max_array_limit.get(array_id, UNLIMITED)
        if active > limit:
            self.violations.append(f"t={now:.3f}: array_limit: array {array_id}: {active} active > {limit}")

    def bind_resources(self, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        b = _require(body, {"queue_id": int, "task_resources_type_id": str, "requested_resources": dict})
        queue = self.queue_of_id.get(b["queue_id"])
        if queue is None:
            raise _Abort(400, f"unknown queue_id {b['queue_id']}")
        requested = tuple(sorted((str(k), v) for k, v in b["requested_resources"].items()))
        return 200, self.model.bind_resources(queue, requested)

    def metadata(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        if int(wf) != self.workflow_id:
            return 200, {"workflow": []}
        return 200, {"workflow": [self.workflow_id, self.dag_id, self.model.workflow_limit]}

    def get_tasks(self, wf: str, *, query: Mapping[str, str], body: Any, now: float) -> tuple[int, Any]:
        max_task_id = _int_param(query, "max_task_id")
        chunk_size = _int_param(query, "chunk_size")
        if int(wf) != self.workflow_id or chunk_size <= 0:
            return 200, {"tasks": {}}
        sorted_ids, order, status = self._sorted_ids, self._order, self.model.status
        floor = (sorted_ids[0] - 1 if sorted_ids else 0) if max_task_id == 0 else max_task_id
        rows: dict[str, list[Any]] = {}
        k = bisect.bisect_right(sorted_ids, floor)
        n = len(order)
        while k < n and len(rows) < chunk_size:
            i = order[k]
            if status[i] != "D":
                rows[str(sorted_ids[k])] = self._row(i)
            k += 1
        return 200, {"tasks": rows}

    def downstream(self, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        b = _require(body, {"task_ids": list, "dag_id": int})
        if b["dag_id"] != self.dag_id:
            return 200, {"downstream_tasks": {}}
        model = self.model
        offsets, flat = model.down_offsets, model.down_flat
        out: dict[str, Any] = {}
        ids = [t for t in b["task_ids"] if type(t) is int]
        for tid, i in zip(ids, (model.index_of.get(t) for t in ids), strict=True):
            if i is None:
                continue
            down = [flat[k] + 1 for k in range(offsets[i], offsets[i + 1])]
            out[str(tid)] = [i + 1, down or None]
        return 200, {"downstream_tasks": out}

    def time_route(self, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        return 200, {"time": self.model.time_string(now)}

    def cluster(self, name: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        cid = self.cluster_by_name.get(name)
        if cid is None:
            return 200, {"cluster": []}
        return 200, {"cluster": [cid, name, "sim", None]}

    def queue(self, cid: str, name: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        qid = self.queue_ids.get(name)
        if qid is None or self.cluster_of_queue.get(name) != int(cid):
            return 200, {"queue": []}
        return 200, {"queue": [qid, name, self.queue_parameters[name]]}

    # a user's routes

    def set_resume(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._workflow(wf)
        b = _require(body, {"reset_running_jobs": bool})
        self.model.set_resume(b["reset_running_jobs"])
        return 200, {}

    def update_workflow_limit(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._workflow(wf)
        b = _require(body, {"max_tasks": int})
        if b["max_tasks"] < 0:
            raise _Abort(400, "field 'max_tasks': must be >= 0")
        self._set_workflow_limit(b["max_tasks"])
        return 200, {"message": f"Workflow {wf} max_concurrently_running updated to {b['max_tasks']}"}

    def update_array_limit(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._workflow(wf)
        b = _require(body, {"max_tasks": int, "task_template_version_id": int})
        array_id = b["task_template_version_id"]
        if array_id not in self.model.array_limits and array_id not in self.model.active_by_array:
            raise _Abort(404, f"no array for task_template_version_id {array_id}")
        if b["max_tasks"] < 0:
            raise _Abort(400, "field 'max_tasks': must be >= 0")
        self._set_array_limit(array_id, b["max_tasks"])
        return 200, {"message": f"Array {array_id} max_concurrently_running updated to {b['max_tasks']}"}

    def health(self, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        return 200, {"status": "OK"}


#: The route table's routes (``shell/http/routes.py``) this server answers -> the handler.
_HANDLERS: dict[Route, str] = {
    routes.LOG_HEARTBEAT: "log_heartbeat",
    routes.UPDATE_RUN_STATUS: "update_status",
    routes.TERMINATE_TASK_INSTANCES: "terminate",
    routes.SET_STATUS_FOR_TRIAGING: "triage",
    routes.TASK_STATUS_UPDATES: "status_updates",
    routes.WORKFLOW_LIMIT: "workflow_limit",
    routes.ARRAY_LIMIT: "array_limit",
    routes.QUEUE_TASK_BATCH: "queue_task_batch",
    routes.BIND_RESOURCES: "bind_resources",
    routes.FETCH_WORKFLOW_METADATA: "metadata",
    routes.GET_TASKS: "get_tasks",
    routes.GET_DOWNSTREAM_TASKS: "downstream",
    routes.TIME: "time_route",
    routes.GET_QUEUE: "queue",
    routes.GET_CLUSTER: "cluster",
    routes.HEALTH: "health",
    routes.SET_RESUME: "set_resume",
    routes.UPDATE_WORKFLOW_LIMIT: "update_workflow_limit",
    routes.UPDATE_ARRAY_LIMIT: "update_array_limit",
}
_SERVED: tuple[Route, ...] = tuple(_HANDLERS)
assert set(routes.SWARM_ROUTES) | set(routes.USER_ROUTES) == set(_SERVED), "serve answers every route"


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
