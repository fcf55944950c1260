"""The Jobmon server model's answers to every route of the route table (``shell/http/routes.py``).

``RouteAnswers`` is mixed into a server that holds a ``ServerModel`` (``model``) and the
static data of its workflow (ids, queues, clusters); ``answer(request, now)`` gives the
server's ``Response`` to one ``Request``: status code and JSON body, as a Jobmon 3.6 server
gives it (tests/server/test_fsm_capture.py replays the captured run-status requests through it).
``swarmfold serve`` calls it for every HTTP request, after its own fault draw.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Mapping
from typing import Any

from swarmfold.core.config import UNLIMITED
from swarmfold.core.resources import Requested
from swarmfold.core.topology import Topology
from swarmfold.shell.http import routes
from swarmfold.shell.http.routes import Request, Response, Route
from swarmfold.shell.log.codec import ints_only
from swarmfold.shell.server import resume
from swarmfold.shell.server.model import ServerModel
from swarmfold.shell.sim.scenario import Scenario

__all__ = ["HANDLERS", "SERVED", "RouteAnswers", "served_route"]


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


#: The route table's routes (``shell/http/routes.py``) this server answers -> the handler.
HANDLERS: dict[Route, str] = {
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
    routes.INCREASE_RESOURCES: "increase_resources",
    routes.IS_RESUMABLE: "is_resumable",
    routes.SET_RESUME_STATE: "set_resume_state",
    routes.CREATE_WORKFLOW_RUN: "create_workflow_run",
}
SERVED: tuple[Route, ...] = tuple(HANDLERS)
assert set(routes.SWARM_ROUTES) | set(routes.USER_ROUTES) | set(routes.RESUME_ROUTES) == set(SERVED), (
    "serve answers every route"
)




def served_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route a request is for and its path parameters; None when no route matches or an
    id in the path is not a number (Jobmon's routes take integer ids)."""
    found = routes.match(method, path, SERVED)
    if found is None or not all(v.isdigit() for k, v in found[1].items() if k.endswith("_id")):
        return None
    return found


class RouteAnswers:
    """Every route's answer from the model (see the module doc)."""

    model: ServerModel
    scenario: Scenario
    time_scale: float
    topology: Topology
    workflow_id: int
    workflow_run_id: int
    dag_id: int
    route_prefix: str
    violations: list[str]
    batches: int
    _max_workflow_limit: int
    _max_array_limit: dict[int, int]

    def answer(self, request: Request, now: float) -> Response:
        """The server's answer to ``request`` (``path`` without the prefix) at time ``now``."""
        found = served_route(request.method, request.path)
        if found is None:
            return Response(404, {"error": f"no route {request.method} {self.route_prefix}{request.path}"})
        status, body = self.answer_route(found[0], found[1], dict(request.query), request.body, now)
        return Response(status, body)

    def answer_route(
        self, route: Route, params: Mapping[str, str], query: Mapping[str, str], body: Any, now: float
    ) -> tuple[int, Any]:
        """``answer`` once the route is known: ``(HTTP status, JSON value)``."""
        handler: Callable[..., tuple[int, Any]] = getattr(self, HANDLERS[route])
        try:
            return handler(*params.values(), query=query, body=body, now=now)
        except _Abort as exc:
            return exc.status, {"error": exc.message}

    # --- limits (the batch checks allow the highest value each limit has had) ------------------

    def _set_workflow_limit(self, limit: int) -> None:
        self.model.set_workflow_limit(limit)
        self._max_workflow_limit = max(self._max_workflow_limit, limit)

    def _set_array_limit(self, array_id: int, limit: int) -> None:
        self.model.set_array_limit(array_id, limit)
        self._max_array_limit[array_id] = max(self._max_array_limit.get(array_id, 0), limit)

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
        #: The cluster type ``GET /cluster/{name}`` answers (it picks the swarm's coercion).
        self.cluster_types: dict[int, str] = dict.fromkeys(self.cluster_names, "sim")
        bounds = {q.name: q.bounds for q in self.scenario.topology.queues}
        self.queue_parameters = {
            name: "{" + ", ".join(f'"{r}": ({_num(lo)}, {_num(hi)})' for r, lo, hi in bounds.get(name, ()))
            + "}"
            for name in names
        }
        # One string triple per distinct (queue, requested) a task holds.
        self._resource_strings: dict[tuple[str, Requested], tuple[str, str, str]] = {}

    def _row(self, i: int) -> list[Any]:
        topo = self.topology
        held = self.model.current_resources(i)
        strings = self._resource_strings.get(held)
        if strings is None:
            queue, requested = held
            strings = (
                json.dumps(dict(requested)),
                self.cluster_names[self.cluster_of_queue[queue]],
                queue,
            )
            self._resource_strings[held] = strings
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

    def _workflow(self, wf: str) -> None:
        if int(wf) != self.workflow_id:
            raise _Abort(404, f"no workflow {wf}")

    def _run(self, wfr: str) -> None:
        if int(wfr) != self.model.workflow_run_id:
            raise _Abort(404, f"no workflow run {wfr}")

    def _past_run(self, wfr: str) -> str | None:
        """An earlier run's last status (its requests change nothing: every run it could
        still make is refused), None for the current run; 404 for an unknown run."""
        if int(wfr) == self.model.workflow_run_id:
            return None
        status = self.model.past_runs.get(int(wfr))
        if status is None:
            raise _Abort(404, f"no workflow run {wfr}")
        return status

    # the swarm's routes

    def log_heartbeat(self, wfr: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        b = _require(body, {"status": str, "next_report_increment": (int, float)})
        past = self._past_run(wfr)
        if past is not None:
            return 200, {"status": past}
        increment = float(b["next_report_increment"]) * self.time_scale
        return 200, {"status": self.model.log_heartbeat(b["status"], increment, now)}

    def update_status(self, wfr: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        b = _require(body, {"status": str})
        past = self._past_run(wfr)
        if past is not None:
            return 200, {"status": past}
        return 200, {"status": self.model.update_status(b["status"], now)}

    def terminate(self, wfr: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._run(wfr)
        n = self.model.terminate_task_instances(now)
        return 200, {"workflow_run_id": self.model.workflow_run_id, "num_terminated": n}

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
        if b["workflow_run_id"] != self.model.workflow_run_id:
            raise _Abort(400, f"unknown workflow_run_id {b['workflow_run_id']}")
        tr = b["task_resources_id"]
        if not 0 < tr < len(model.task_resources):
            raise _Abort(400, f"unknown task_resources_id {tr}")
        task_ids = b["task_ids"]
        if not ints_only(task_ids):
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
        return 200, {"cluster": [cid, name, self.cluster_types.get(cid, "sim"), None]}

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

    # resuming (shell/server/resume.py)

    def increase_resources(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._workflow(wf)
        return 200, resume.increase_resources(self.model, now)

    def is_resumable(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._workflow(wf)
        return 200, {"workflow_is_resumable": resume.is_resumable(self.model),
                     "pending_kill_self": resume.pending_kill_self(self.model)}

    def set_resume_state(self, wf: str, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        self._workflow(wf)
        b = _require(body, {"reset_if_running": bool})
        return 200, resume.set_resume_state(self.model, b["reset_if_running"], now)

    def create_workflow_run(self, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        b = _require(body, {"workflow_id": int, "user": str, "jobmon_version": str,
                            "next_report_increment": (int, float)})
        if b["workflow_id"] != self.workflow_id:
            return 200, {"workflow_run_id": None, "err_msg": f"No workflow exists for ID {b['workflow_id']}"}
        increment = float(b["next_report_increment"]) * self.time_scale
        return 200, resume.create_workflow_run(self.model, increment, now)

    def health(self, *, query: Any, body: Any, now: float) -> tuple[int, Any]:
        return 200, {"status": "OK"}


