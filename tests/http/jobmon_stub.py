"""A real loopback Jobmon server for tests: the server model of ``swarmfold serve`` over HTTP.

Its state is a ``ServerModel`` and every route is answered by ``RouteAnswers``
(``shell/server/answers.py``), as ``swarmfold serve`` answers. What the stub adds is what tests
need:

* the HTTP layer: ``ThreadingHTTPServer`` on port 0, gzipped answers, ``client_jobmon_version``
  required, every request recorded (``requests``, ``requests_to``), requests in flight counted;
* fault injection (``inject(pattern, fault, times=1, skip=0)``, consumed in order per matching
  request): ``Fault.http(code)``, ``Fault.slow(seconds)`` (the request is still applied, after
  the delay), ``Fault.malformed(text)``, ``Fault.body(value)`` (a 200 with ``value``; nothing is
  applied), ``Fault.transform(fn)`` (applied; the answer is rewritten) and ``Fault.drop()`` (the
  connection is closed without an answer). ``stop()`` closes the listening socket and every open
  connection (connection refused); ``start()`` listens again on the same port;
* a progress driver standing in for the distributor and the workers, through the model's
  cluster-side routes. At every ``task_status_updates`` of the workflow, before the answer: the
  distributor kills the instances told to die (``transition_to_killed``: the task F); running
  tasks finish (``log_done``: D, or a fatal ``log_error`` for ids in ``fail``: F), except those
  in ``hold`` and beyond ``completions_per_sync``; then, unless the run is C or H, the
  distributor launches the queued instances (Q→I→O) and their workers start (O→R).

Time is the model's: seconds since the stub was made (``clock`` replaces it), status dates to
the second. ``{"last_sync": t}`` answers every task whose status changed in a second ``>= t``,
so a change in the second of a sync is reported again, as by the real server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from swarmfold.core.config import UNLIMITED
from swarmfold.core.specs import NO_COERCION, ArraySpec, QueueSpec, ResourceSetSpec, TaskSpec, TopologySpec
from swarmfold.core.statuses import RESUME_SIGNALS
from swarmfold.core.topology import build_topology
from swarmfold.shell.http import routes
from swarmfold.shell.http.loopback import Connections, GzipJsonHandler
from swarmfold.shell.server import resume
from swarmfold.shell.server.answers import RouteAnswers, served_route
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.scenario import Scenario

#: The statuses a new run passes through as it is created, bound and its distributor starts.
_NEW_RUN_PATH = "LBIO"


@dataclass
class StubTask:
    """One task of the stub's workflow (its queues are bounded to 1-20 cores)."""

    task_id: int
    array_id: int = 1
    status: str = "G"
    upstream_ids: tuple[int, ...] = ()
    max_attempts: int = 3
    requested: dict[str, Any] = field(default_factory=lambda: {"cores": 1})
    queue: str = "null.q"
    cluster: str = "multiprocess"


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


def _topology(
    tasks: list[StubTask], workflow_limit: int, array_limits: dict[int, int],
    queue_ids: dict[str, int], cluster_ids: dict[str, int],
) -> TopologySpec:
    """The stub's tasks as a topology: one resource set per distinct (queue, request). The server
    holds requests as sent (no coercion): the swarm's cluster plugin coerces them."""
    sets: dict[tuple[str, tuple[tuple[str, Any], ...]], int] = {}
    specs = []
    for t in tasks:
        rs = sets.setdefault((t.queue, tuple(sorted(t.requested.items()))), len(sets) + 1)
        specs.append(TaskSpec(t.task_id, t.array_id, rs, t.upstream_ids, t.max_attempts, t.status))
    cluster_of = {t.queue: t.cluster for t in tasks}
    array_ids = sorted({t.array_id for t in tasks})
    return TopologySpec(
        tasks=specs,
        arrays=[ArraySpec(a, limit=array_limits.get(a, UNLIMITED)) for a in array_ids],
        resource_sets=[ResourceSetSpec(rs, queue, dict(req)) for (queue, req), rs in sets.items()],
        queues=[QueueSpec(q, queue_id=queue_ids.get(q, 0), cluster_id=cluster_ids[c],
                          bounds=(("cores", 1, 20),), coercion=NO_COERCION) for q, c in cluster_of.items()],
        workflow_limit=workflow_limit,
    )


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
    """What an injected fault does to a request (see the module doc)."""

    kind: str  # "answer" (nothing applied), "slow", "transform" or "drop"
    status: int = 200
    text: str = ""
    seconds: float = 0.0
    fn: Callable[[Any], Any] | None = None

    @staticmethod
    def http(code: int, text: str = '{"error": "injected"}') -> Fault:
        return Fault("answer", status=code, text=text)

    @staticmethod
    def slow(seconds: float) -> Fault:
        return Fault("slow", seconds=seconds)

    @staticmethod
    def malformed(text: str = '{"tasks_by_status": {') -> Fault:
        return Fault("answer", text=text)

    @staticmethod
    def body(value: Any) -> Fault:
        return Fault("answer", text=json.dumps(value))

    @staticmethod
    def transform(fn: Callable[[Any], Any]) -> Fault:
        return Fault("transform", fn=fn)

    @staticmethod
    def drop() -> Fault:
        return Fault("drop")


class JobmonStub(RouteAnswers):
    """One workflow on a loopback Jobmon server. Use as a context manager.

    The run starts LAUNCHED (``run_status="O"``), as a real run is once its distributor started.
    ``old_downstream_format`` quotes downstream node lists as JSON strings (older servers);
    ``batch_delay`` makes every ``queue_task_batch`` take that long. A cluster's type is its name.
    """

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
        cluster_ids: dict[str, int] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        task_list = list(tasks)
        clusters = dict(cluster_ids or {"multiprocess": 5})
        for t in task_list:
            clusters.setdefault(t.cluster, max(clusters.values(), default=0) + 1)
        spec = _topology(task_list, workflow_limit, array_limits or {}, queue_ids or {"null.q": 3}, clusters)
        self.scenario = Scenario(topology=spec, workflow_id=workflow_id, workflow_run_id=workflow_run_id)
        self.topology = build_topology(spec)
        start = time.monotonic()
        self._clock = clock or (lambda: time.monotonic() - start)
        self._now = 0.0
        self.model = ServerModel(self.topology, workflow_id=workflow_id, workflow_run_id=workflow_run_id,
                                 run_status=run_status, now=self.now())
        self.workflow_id = workflow_id
        self.workflow_run_id = workflow_run_id
        self.dag_id = dag_id
        self.prefix = self.route_prefix = prefix
        self.time_scale = 1.0
        self._build_ids(self.topology)
        self.cluster_names = {cid: name for name, cid in clusters.items()}
        self.cluster_by_name = clusters
        self.cluster_types = dict(self.cluster_names)
        self._max_workflow_limit = workflow_limit
        self._max_array_limit = dict(self.model.array_limits)
        #: Server-side checks of every batch (``RouteAnswers._check_batch``): dependencies, limits.
        self.violations: list[str] = []
        self.batches = 0
        self.completions_per_sync = completions_per_sync
        self.hold: set[int] = set(hold)
        self.fail: set[int] = set(fail)
        self.old_downstream_format = old_downstream_format
        self.batch_delay = batch_delay
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        #: ``(workflow_run_id, task_id)`` of every move to Q, in order.
        self.queued: list[tuple[int, int]] = []
        #: ``(monotonic time, workflow_run_id, status asked, status answered, increment)``.
        self.heartbeats: list[tuple[float, int, str, str, float]] = []
        self.faults: list[list[Any]] = []
        #: Requests being answered now and the most at once: ``"schedule"`` for binds and batches
        #: together, per path for run-status updates, by method otherwise; and in all.
        self.in_flight: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}
        self.in_flight_total = 0
        self.peak_in_flight_total = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections = Connections()
        self.port = 0

    # --- server lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> JobmonStub:
        class Handler(_Handler):
            pass

        Handler.stub = self
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
        """A new workflow run, as a resume creates it (``POST /workflow_run``: L), moved along
        the run FSM to ``status`` (B when bound, then I and O as its distributor starts);
        returns its id. Refused, as by the server, while a run of the workflow is alive."""
        if status not in _NEW_RUN_PATH:
            raise ValueError(f"a new run goes {'->'.join(_NEW_RUN_PATH)}, not to {status!r}")
        with self.lock:
            now = self.now()
            answer = resume.create_workflow_run(self.model, 93.0, now)
            if answer["workflow_run_id"] is None:
                raise RuntimeError(answer["err_msg"])
            for step in _NEW_RUN_PATH[1:_NEW_RUN_PATH.index(status) + 1]:
                self.model.update_status(step, now)
            assert self.model.run_status == status
            self.workflow_run_id = self.model.workflow_run_id
            return self.workflow_run_id

    def set_run_status(self, status: str, workflow_run_id: int | None = None) -> None:
        """Test setup: put a run in ``status`` directly (its later changes go through the model)."""
        with self.lock:
            wfr = workflow_run_id or self.model.workflow_run_id
            if wfr == self.model.workflow_run_id:
                self.model.run_status = status
            else:
                self.model.past_runs[wfr] = status

    def release(self, task_ids: Iterable[int]) -> None:
        """Let held tasks finish at the next status fetch."""
        with self.lock:
            self.hold.difference_update(task_ids)

    @property
    def runs(self) -> dict[int, str]:
        """The status of every workflow run, by id."""
        with self.lock:
            return {**self.model.past_runs, self.model.workflow_run_id: self.model.run_status}

    @property
    def max_active(self) -> int:
        """The most tasks active (Q, I, O, R) at once."""
        return self.model.peak_total

    def statuses(self) -> dict[int, str]:
        with self.lock:
            return dict(self.model.statuses_by_task())

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

    # --- the server ----------------------------------------------------------------------------

    def now(self) -> float:
        """The server's time in seconds; it never goes back (call under the lock)."""
        self._now = max(self._now, self._clock())
        return self._now

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        """One request (``path`` without the prefix): ``(HTTP status, JSON value)``."""
        found = served_route(method, path)
        if found is None:
            return 404, {"error": f"no route {method} {self.prefix}{path}"}
        route, params = found
        if route == routes.QUEUE_TASK_BATCH and self.batch_delay:
            time.sleep(self.batch_delay)
        with self.lock:
            now = self.now()
            if route == routes.TASK_STATUS_UPDATES and int(params["workflow_id"]) == self.workflow_id:
                self._progress(now)
            status, value = self.answer_route(route, params, query, body, now)
            if route == routes.LOG_HEARTBEAT and status == 200:
                self.heartbeats.append((time.monotonic(), int(params["workflow_run_id"]), body["status"],
                                        value["status"], float(body["next_report_increment"])))
        if route == routes.GET_DOWNSTREAM_TASKS and status == 200 and self.old_downstream_format:
            value["downstream_tasks"] = {
                k: [node, json.dumps(down) if down is not None else None]
                for k, (node, down) in value["downstream_tasks"].items()
            }
        return status, value

    def _progress(self, now: float) -> None:
        """The distributor and the workers, one step (see the module doc)."""
        model = self.model
        model.transition_to_killed(now)
        finished = 0
        for ti in list(model.live):
            if model.ti_status[ti] != "R":
                continue
            task_id = model.task_ids[model.ti_task[ti]]
            if task_id in self.hold:
                continue
            if self.completions_per_sync is not None and finished >= self.completions_per_sync:
                break
            if task_id in self.fail:
                model.log_error(ti, "F", now)
            else:
                model.log_done(ti, now)
            finished += 1
        if model.run_status in RESUME_SIGNALS:
            return  # the distributor launches nothing more during a resume
        for ti in model.instantiate_and_launch(now):
            model.log_running(ti, now)

    def _check_batch(self, array_id: int, moved: list[int], now: float) -> None:
        super()._check_batch(array_id, moved, now)
        wfr, task_ids = self.model.workflow_run_id, self.model.task_ids
        self.queued.extend((wfr, task_ids[i]) for i in moved)


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
            if fault.kind == "answer":
                self._answer(record, fault.status, fault.text)
                return
            if fault.kind == "slow":
                time.sleep(fault.seconds)
        if "client_jobmon_version" not in query:
            self._answer(record, 400, json.dumps({"error": "client_jobmon_version missing"}))
            return
        try:
            status, value = stub.handle(method, record.path, query, body)
        except Exception as exc:  # a bug in the model or the stub: answer 500, keep serving
            status, value = 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
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
