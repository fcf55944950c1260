"""A real loopback Jobmon server for tests: ``http.server.ThreadingHTTPServer`` on port 0.

It speaks the v3 routes the swarm uses (spec §11, jobmon-protocol.md), gzips every
response, insists on ``client_jobmon_version``, and records every request. Behind it is a
small in-memory model of one workflow (tasks, edges, limits, workflow runs):

* ``queue_task_batch`` moves G/A tasks to Q (recorded in ``queued`` with the run id);
* every ``task_status_updates`` call advances the model one step: tasks that were R finish
  (D, or F for ``fail``; ``hold`` keeps them R; at most ``completions_per_sync`` per call),
  then tasks in Q start (R). Tasks killed by ``terminate_task_instances`` go F;
* ``since`` works like the real server: a logical clock ticks once per status fetch, each
  change is stamped, and ``{"last_sync": t}`` returns changes stamped ``>= t``;
* workflow-run transitions follow the instant server's table (invalid ones keep the status).

Fault injection (``inject(pattern, fault, times=1)``, consumed in order per matching request):
``Fault.status(code)``, ``Fault.slow(seconds)`` (the request is still applied, after the
delay), ``Fault.malformed(text)``, ``Fault.body(value)`` (a 200 with ``value`` instead of the
answer; nothing is applied), ``Fault.transform(fn)`` (applied; the answer is rewritten) and
``Fault.drop()`` (the connection is closed without an answer). ``stop()`` closes the listening
socket and every open connection (connection refused); ``start()`` listens again on the same
port.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from swarmfold.shell.http.loopback import Connections, GzipJsonHandler
from swarmfold.shell.server.fsm import ACCEPTED, run_transition

UNLIMITED = 2_147_483_647
EPOCH = _dt.datetime(2026, 1, 1)
_FINAL = frozenset("DF")


def stub_time(version: int) -> str:
    return (EPOCH + _dt.timedelta(seconds=version)).strftime("%Y-%m-%d %H:%M:%S")


def parse_stub_time(text: str) -> int:
    return int((_dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S") - EPOCH).total_seconds())


@dataclass
class StubTask:
    task_id: int
    array_id: int = 1
    status: str = "G"
    upstream_ids: tuple[int, ...] = ()
    max_attempts: int = 3
    requested: dict[str, Any] = field(default_factory=lambda: {"cores": 1})
    queue: str = "null.q"
    cluster: str = "multiprocess"
    resource_scales: str = "{'memory': 0.5, 'runtime': 0.5}"
    fallback_queues: str = "[]"
    node_id: int = 0
    stamp: int = 0

    def __post_init__(self) -> None:
        if self.node_id == 0:
            self.node_id = self.task_id + 10_000


def layered_tasks(n: int, layers: int = 4, arrays: int = 2, first_id: int = 1) -> list[StubTask]:
    """``n`` tasks in ``layers`` layers; each task depends on up to 2 tasks of the layer above."""
    per = max(1, n // layers)
    tasks: list[StubTask] = []
    for k in range(n):
        layer = min(k // per, layers - 1)
        tid = first_id + k
        ups: tuple[int, ...] = ()
        if layer > 0:
            start = first_id + (layer - 1) * per
            ups = tuple(sorted({start + (k % per), start + ((k * 7 + 1) % per)}))
        tasks.append(StubTask(tid, array_id=1 + layer % arrays, upstream_ids=ups))
    return tasks


@dataclass
class Recorded:
    t: float
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    kind: str
    status: int = 0
    seconds: float = 0.0
    text: str = ""
    value: Any = None
    fn: Callable[[Any], Any] | None = None

    @staticmethod
    def http(code: int, text: str = '{"error": "injected"}') -> Fault:
        return Fault("status", status=code, text=text)

    @staticmethod
    def slow(seconds: float) -> Fault:
        return Fault("slow", seconds=seconds)

    @staticmethod
    def malformed(text: str = '{"tasks_by_status": {') -> Fault:
        return Fault("malformed", text=text)

    @staticmethod
    def body(value: Any) -> Fault:
        return Fault("body", value=value)

    @staticmethod
    def transform(fn: Callable[[Any], Any]) -> Fault:
        return Fault("transform", fn=fn)

    @staticmethod
    def drop() -> Fault:
        return Fault("drop")


class _Abort(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


class JobmonStub:
    """One workflow on a loopback Jobmon server. Use as a context manager."""

    def __init__(
        self,
        tasks: Iterable[StubTask],
        *,
        workflow_id: int = 1,
        dag_id: int = 7,
        workflow_run_id: int = 1,
        run_status: str = "O",
        workflow_limit: int = UNLIMITED,
        array_limits: dict[int, int] | None = None,
        completions_per_sync: int | None = None,
        hold: Iterable[int] = (),
        fail: Iterable[int] = (),
        prefix: str = "/api/v3",
        old_downstream_format: bool = False,
        batch_delay: float = 0.0,
        queue_ids: dict[str, int] | None = None,
    ) -> None:
        self.tasks: dict[int, StubTask] = {t.task_id: t for t in tasks}
        self.workflow_id = workflow_id
        self.dag_id = dag_id
        self.workflow_run_id = workflow_run_id
        self.runs: dict[int, str] = {workflow_run_id: run_status}
        self.workflow_limit = workflow_limit
        arrays = {t.array_id for t in self.tasks.values()}
        self.array_limits: dict[int, int] = {a: UNLIMITED for a in arrays}
        self.array_limits.update(array_limits or {})
        self.completions_per_sync = completions_per_sync
        self.hold: set[int] = set(hold)
        self.fail: set[int] = set(fail)
        self.prefix = prefix
        self.old_downstream_format = old_downstream_format
        self.batch_delay = batch_delay
        self.queue_ids: dict[str, int] = dict(queue_ids or {"null.q": 3})
        self.cluster_ids: dict[str, int] = {"multiprocess": 5}
        node_to_task = {t.node_id: t.task_id for t in self.tasks.values()}
        self.downstream_nodes: dict[int, list[int]] = {tid: [] for tid in self.tasks}
        for t in self.tasks.values():
            for up in t.upstream_ids:
                self.downstream_nodes[up].append(t.node_id)
        self._node_to_task = node_to_task
        self.version = 1
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.queued: list[tuple[int, int]] = []
        self.heartbeats: list[tuple[float, int, str, str, float]] = []
        self.binds: list[dict[str, Any]] = []
        self.dependency_violations: list[tuple[int, int]] = []
        self.limit_violations: list[str] = []
        self.killed: set[int] = set()
        self.max_active = 0
        self.faults: list[list[Any]] = []
        #: Requests being answered now and the most at once: ``"schedule"`` for binds and batches
        #: together, per path for run-status updates, by method otherwise; and in all.
        self.in_flight: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}
        self.in_flight_total = 0
        self.peak_in_flight_total = 0
        self._next_resources_id = 1
        self.bound_ids: set[int] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections = Connections()
        self.port = 0

    # --- server lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> JobmonStub:
        stub = self

        class Handler(_Handler):
            pass

        Handler.stub = stub
        Handler.connections = self._connections
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        server.shutdown()
        server.server_close()
        self._connections.close_all()

    def restart_after(self, seconds: float) -> threading.Thread:
        """Stop now, listen again on the same port after ``seconds`` (in a thread)."""
        self.stop()

        def later() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=later, daemon=True)
        thread.start()
        return thread

    def __enter__(self) -> JobmonStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test knobs --------------------------------------------------------------------------

    def inject(self, pattern: str, fault: Fault, times: int = 1, skip: int = 0) -> None:
        """Apply ``fault`` to the next ``times`` requests whose ``"METHOD /path"`` contains
        ``pattern``, after letting ``skip`` of them through (say, the attach's full sync)."""
        with self.lock:
            self.faults.append([pattern, fault, times, skip])

    def new_run(self, status: str = "B") -> int:
        """A new workflow run of the workflow (what a resume creates); returns its id."""
        with self.lock:
            wfr = max(self.runs) + 1
            self.runs[wfr] = status
            self.workflow_run_id = wfr
            return wfr

    def set_run_status(self, status: str, workflow_run_id: int | None = None) -> None:
        with self.lock:
            self.runs[workflow_run_id or self.workflow_run_id] = status

    def release(self, task_ids: Iterable[int]) -> None:
        with self.lock:
            self.hold.difference_update(task_ids)

    def statuses(self) -> dict[int, str]:
        with self.lock:
            return {tid: t.status for tid, t in self.tasks.items()}

    def requests_to(self, pattern: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if pattern in r.route]

    def queue_counts(self) -> dict[int, int]:
        """How many times each task was moved to Q."""
        out: dict[int, int] = {}
        with self.lock:
            for _, tid in self.queued:
                out[tid] = out.get(tid, 0) + 1
        return out

    # --- the model ------------------------------------------------------------------------------

    def _set(self, task: StubTask, status: str) -> None:
        task.status = status
        task.stamp = self.version

    def _active(self) -> int:
        return sum(1 for t in self.tasks.values() if t.status in "QIOR")

    def _advance(self) -> None:
        """One step of the fake distributor and workers."""
        running_status = self.runs.get(self.workflow_run_id, "")
        finished = 0
        cap = self.completions_per_sync
        for task in sorted(self.tasks.values(), key=lambda t: t.stamp):
            if task.status != "R":
                continue
            if task.task_id in self.killed:
                self._set(task, "F")
                continue
            if task.task_id in self.hold or (cap is not None and finished >= cap):
                continue
            self._set(task, "F" if task.task_id in self.fail else "D")
            finished += 1
        if running_status in ("C", "H"):
            return  # the distributor launches nothing more during a resume
        for task in self.tasks.values():
            if task.status == "Q":
                self._set(task, "R")

    # --- handlers: return (status, value) -------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        for m, pattern, name in _ROUTES:
            if m != method:
                continue
            match = pattern.fullmatch(path)
            if match:
                handler: Callable[..., tuple[int, Any]] = getattr(self, name)
                return handler(*match.groups(), query=query, body=body)
        return 404, {"error": f"no route {method} {path}"}

    def _wfr(self, wfr: str) -> int:
        wfr_id = int(wfr)
        if wfr_id not in self.runs:
            raise _Abort(404, f"no workflow run {wfr_id}")
        return wfr_id

    def _transition(self, wfr_id: int, status: str) -> str:
        current = self.runs[wfr_id]
        if run_transition(current, status) == ACCEPTED:
            self.runs[wfr_id] = status
        return self.runs[wfr_id]

    def log_heartbeat(self, wfr: str, *, query: Any, body: Any) -> tuple[int, Any]:
        wfr_id = self._wfr(wfr)
        _require(body, {"status": str, "next_report_increment": float})
        answered = self._transition(wfr_id, body["status"])
        self.heartbeats.append(
            (time.monotonic(), wfr_id, body["status"], answered, float(body["next_report_increment"]))
        )
        return 200, {"status": answered}

    def update_status(self, wfr: str, *, query: Any, body: Any) -> tuple[int, Any]:
        wfr_id = self._wfr(wfr)
        _require(body, {"status": str})
        return 200, {"status": self._transition(wfr_id, body["status"])}

    def terminate(self, wfr: str, *, query: Any, body: Any) -> tuple[int, Any]:
        wfr_id = self._wfr(wfr)
        _require(body, {})
        n = 0
        for task in self.tasks.values():
            if task.status in "OR":
                self.killed.add(task.task_id)
                n += 1
        return 200, {"workflow_run_id": wfr_id, "num_terminated": n}

    def triage(self, wfr: str, *, query: Any, body: Any) -> tuple[int, Any]:
        self._wfr(wfr)
        _require(body, {})
        return 200, {}

    def status_updates(self, wf: str, *, query: Any, body: Any) -> tuple[int, Any]:
        if int(wf) != self.workflow_id:
            return 200, {"tasks_by_status": {}, "time": stub_time(self.version)}
        if not isinstance(body, dict) or set(body) - {"last_sync"}:
            raise _Abort(400, f"bad body {body!r}")
        since: int | None = None
        if "last_sync" in body:
            try:
                since = parse_stub_time(body["last_sync"])
            except (TypeError, ValueError):
                raise _Abort(400, f"bad last_sync {body['last_sync']!r}") from None
        self._advance()
        out: dict[str, list[int]] = {}
        for task in self.tasks.values():
            if since is None or task.stamp >= since:
                out.setdefault(task.status, []).append(task.task_id)
        now = stub_time(self.version)
        self.version += 1
        return 200, {"tasks_by_status": out, "time": now}

    def workflow_limit_route(self, wf: str, *, query: Any, body: Any) -> tuple[int, Any]:
        if int(wf) != self.workflow_id:
            return 404, {"error": f"no workflow {wf}"}
        return 200, {"max_concurrently_running": self.workflow_limit}

    def array_limit_route(self, array: str, *, query: Any, body: Any) -> tuple[int, Any]:
        return 200, {"max_concurrently_running": self.array_limits.get(int(array), UNLIMITED)}

    def queue_task_batch(self, array: str, *, query: Any, body: Any) -> tuple[int, Any]:
        _require(body, {
            "task_ids": list, "task_resources_id": int, "workflow_run_id": int, "cluster_id": int,
        })
        if body["task_resources_id"] not in self.bound_ids:
            raise _Abort(400, f"unknown task_resources_id {body['task_resources_id']}")
        if body["workflow_run_id"] not in self.runs:
            raise _Abort(400, f"unknown workflow_run_id {body['workflow_run_id']}")
        if self.batch_delay:
            self.lock.release()
            try:
                time.sleep(self.batch_delay)
            finally:
                self.lock.acquire()
        out: dict[str, list[int]] = {}
        for tid in body["task_ids"]:
            task = self.tasks.get(tid)
            if task is None:
                continue
            if task.array_id != int(array):
                raise _Abort(400, f"task {tid} is not in array {array}")
            if task.status in "GA":
                for up in task.upstream_ids:
                    if self.tasks[up].status != "D":
                        self.dependency_violations.append((tid, up))
                self._set(task, "Q")
                self.queued.append((body["workflow_run_id"], tid))
            out.setdefault(task.status, []).append(tid)
        active = self._active()
        self.max_active = max(self.max_active, active)
        if active > self.workflow_limit:
            self.limit_violations.append(f"workflow: {active} active > {self.workflow_limit}")
        for array_id, limit in self.array_limits.items():
            n = sum(1 for t in self.tasks.values() if t.array_id == array_id and t.status in "QIOR")
            if n > limit:
                self.limit_violations.append(f"array {array_id}: {n} active > {limit}")
        return 200, {"tasks_by_status": out}

    def bind_resources(self, *, query: Any, body: Any) -> tuple[int, Any]:
        _require(body, {"queue_id": int, "task_resources_type_id": str, "requested_resources": dict})
        if body["queue_id"] not in self.queue_ids.values():
            raise _Abort(400, f"unknown queue_id {body['queue_id']}")
        self.binds.append(body)
        rid = self._next_resources_id
        self._next_resources_id += 1
        self.bound_ids.add(rid)
        return 200, rid

    def metadata(self, wf: str, *, query: Any, body: Any) -> tuple[int, Any]:
        if int(wf) != self.workflow_id:
            return 200, {"workflow": []}
        return 200, {"workflow": [self.workflow_id, self.dag_id, self.workflow_limit]}

    def get_tasks(self, wf: str, *, query: dict[str, str], body: Any) -> tuple[int, Any]:
        try:
            max_task_id = int(query["max_task_id"])
            chunk_size = int(query["chunk_size"])
        except (KeyError, ValueError):
            raise _Abort(400, f"bad query {query}") from None
        if int(wf) != self.workflow_id:
            return 200, {"tasks": {}}
        rows = {}
        for tid in sorted(self.tasks):
            task = self.tasks[tid]
            if task.status == "D" or tid <= max_task_id:
                continue
            rows[str(tid)] = [
                task.array_id, task.status, task.max_attempts, task.resource_scales,
                task.fallback_queues, json.dumps(task.requested), task.cluster, task.queue,
                self.array_limits.get(task.array_id, UNLIMITED),
            ]
            if len(rows) >= chunk_size:
                break
        return 200, {"tasks": rows}

    def downstream(self, *, query: Any, body: Any) -> tuple[int, Any]:
        _require(body, {"task_ids": list, "dag_id": int})
        if body["dag_id"] != self.dag_id:
            return 200, {"downstream_tasks": {}}
        out: dict[str, Any] = {}
        for tid in body["task_ids"]:
            task = self.tasks.get(tid)
            if task is None:
                continue
            nodes = self.downstream_nodes.get(tid) or None
            if self.old_downstream_format and nodes is not None:
                out[str(tid)] = [task.node_id, json.dumps(nodes)]
            else:
                out[str(tid)] = [task.node_id, nodes]
        return 200, {"downstream_tasks": out}

    def time_route(self, *, query: Any, body: Any) -> tuple[int, Any]:
        return 200, {"time": stub_time(self.version)}

    def cluster(self, name: str, *, query: Any, body: Any) -> tuple[int, Any]:
        cid = self.cluster_ids.get(unquote(name))
        if cid is None:
            return 200, {"cluster": []}
        return 200, {"cluster": [cid, unquote(name), unquote(name), None]}

    def queue(self, cid: str, name: str, *, query: Any, body: Any) -> tuple[int, Any]:
        qid = self.queue_ids.get(unquote(name))
        if qid is None or int(cid) not in self.cluster_ids.values():
            return 200, {"queue": []}
        return 200, {"queue": [qid, unquote(name), '{"cores": (1,20)}']}


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), name) for m, p, name in [
        ("POST", r"/workflow_run/(\d+)/log_heartbeat", "log_heartbeat"),
        ("PUT", r"/workflow_run/(\d+)/update_status", "update_status"),
        ("PUT", r"/workflow_run/(\d+)/terminate_task_instances", "terminate"),
        ("POST", r"/workflow_run/(\d+)/set_status_for_triaging", "triage"),
        ("POST", r"/workflow/(\d+)/task_status_updates", "status_updates"),
        ("GET", r"/workflow/(\d+)/get_max_concurrently_running", "workflow_limit_route"),
        ("GET", r"/array/(\d+)/get_array_max_concurrently_running", "array_limit_route"),
        ("POST", r"/array/(\d+)/queue_task_batch", "queue_task_batch"),
        ("POST", r"/task/bind_resources", "bind_resources"),
        ("GET", r"/workflow/(\d+)/fetch_workflow_metadata", "metadata"),
        ("GET", r"/workflow/get_tasks/(\d+)", "get_tasks"),
        ("POST", r"/task/get_downstream_tasks", "downstream"),
        ("GET", r"/time", "time_route"),
        ("GET", r"/cluster/(\d+)/queue/([^/]+)", "queue"),
        ("GET", r"/cluster/([^/]+)", "cluster"),
    ]
]


def _require(body: Any, fields: dict[str, type]) -> None:
    if not isinstance(body, dict):
        raise _Abort(400, f"expected a JSON object body, got {body!r}")
    if set(body) != set(fields):
        raise _Abort(400, f"expected fields {sorted(fields)}, got {sorted(body)}")
    for name, kind in fields.items():
        value = body[name]
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise _Abort(400, f"field {name}: expected {kind.__name__}, got {value!r}")


class _Handler(GzipJsonHandler):
    stub: JobmonStub

    def serve(self, method: str) -> None:
        stub = self.stub
        path, query, raw = self.read_request()
        if "bind_resources" in path or "queue_task_batch" in path:
            key = "schedule"  # the scheduling writes, together
        elif "update_status" in path:
            key = f"{method} {path}"
        else:
            key = method
        with stub.lock:
            stub.in_flight[key] = stub.in_flight.get(key, 0) + 1
            stub.in_flight_total += 1
            stub.peak_in_flight[key] = max(stub.peak_in_flight.get(key, 0), stub.in_flight[key])
            stub.peak_in_flight_total = max(stub.peak_in_flight_total, stub.in_flight_total)
        try:
            self._serve(stub, method, path, query, raw)
        finally:
            with stub.lock:
                stub.in_flight[key] -= 1
                stub.in_flight_total -= 1

    def _serve(self, stub: JobmonStub, method: str, path: str, query: dict[str, str], raw: bytes) -> None:
        body: Any = None
        record = Recorded(time.monotonic(), method, "", query, None, headers={
            "Content-Type": self.headers.get("Content-Type", ""),
            "Accept-Encoding": self.headers.get("Accept-Encoding", ""),
        })
        if not path.startswith(stub.prefix + "/"):
            record.path = path
            self._answer(record, 404, json.dumps({"error": f"not under {stub.prefix}"}))
            return
        record.path = path[len(stub.prefix):]
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(record, 400, json.dumps({"error": "invalid JSON body"}))
                return
        record.body = body
        fault: Fault | None = None
        with stub.lock:
            for rule in stub.faults:
                if rule[2] > 0 and rule[0] in record.route:
                    if rule[3] > 0:
                        rule[3] -= 1
                        continue
                    rule[2] -= 1
                    fault = rule[1]
                    break
        if fault is not None:
            if fault.kind == "drop":
                self._record(record, 0)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.kind == "status":
                self._answer(record, fault.status, fault.text)
                return
            if fault.kind == "malformed":
                self._answer(record, 200, fault.text)
                return
            if fault.kind == "body":
                self._answer(record, 200, json.dumps(fault.value))
                return
            if fault.kind == "slow":
                time.sleep(fault.seconds)
        if "client_jobmon_version" not in query:
            self._answer(record, 400, json.dumps({"error": "client_jobmon_version missing"}))
            return
        try:
            with stub.lock:
                status, value = stub.handle(method, record.path, query, body)
        except _Abort as exc:
            status, value = exc.status, {"error": exc.message}
        if fault is not None and fault.kind == "transform" and fault.fn is not None and status == 200:
            value = fault.fn(value)
        self._answer(record, status, json.dumps(value))

    def _record(self, record: Recorded, status: int) -> None:
        record.status = status
        with self.stub.lock:
            self.stub.requests.append(record)

    def _answer(self, record: Recorded, status: int, text: str) -> None:
        self._record(record, status)
        self.send_gzip_json(status, text)
