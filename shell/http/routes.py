"""The route table: every Jobmon v3 route swarmfold speaks, and each server command's route.

One table, read by everyone who speaks the protocol:

- the gateway builds each command's request from it and turns the answer into the command's
  event (``COMMAND_ROUTES``);
- the server model answers requests by matching them against ``ROUTES`` (``match``), in
  process for the simulator and over HTTP for ``serve`` and the test server;
- the docs' catalogue of events and commands is generated from it and from
  ``swarmfold.core.protocol``.

A ``Route`` is a method and a path template (``/array/{array_id}/queue_task_batch``) under the
``/api/v3`` prefix; its ``label`` (``POST /array/{id}/queue_task_batch``) names it in logs and
errors. A ``CommandRoute`` says, for one core command, which route carries it, the request body,
the response parser (which checks the answer's shape and names the field of anything wrong) and
the event that reports the answer. Which event reports a *failure* is the core's business:
``swarmfold.core.protocol.failure_event``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from attrs import field, frozen

from swarmfold.core.commands import (
    BindResources,
    Command,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LoadEdgeChunk,
    LoadQueues,
    LoadTaskChunk,
    LogHeartbeat,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
)
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    EdgeChunkLoaded,
    Event,
    HeartbeatAcknowledged,
    ResourcesBound,
    StatusUpdateAcknowledged,
    TaskChunkLoaded,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.protocol import SERVER_COMMANDS
from swarmfold.shell.http.parsing import (
    parse_batch_answer,
    parse_bound_id,
    parse_edges,
    parse_limit,
    parse_run_status,
    parse_status_updates,
    parse_task_rows,
    parse_terminated,
    parse_triage_answer,
)

#: Every route is under this prefix on a Jobmon 3.6 server.
PREFIX = "/api/v3"

_PARAM = re.compile(r"\{(\w+)\}")


def _label_of(template: str) -> str:
    return _PARAM.sub(lambda m: "{id}" if m.group(1).endswith("id") else "{name}", template)


def _pattern_of(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)
    regex = "".join(
        re.escape(part) if k % 2 == 0 else f"(?P<{part}>[^/]+)" for k, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


@frozen
class Route:
    """One HTTP route: a method and a path template relative to ``PREFIX``."""

    method: str
    template: str
    label: str = field(init=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "label", f"{self.method} {_label_of(self.template)}")
        object.__setattr__(self, "_pattern", _pattern_of(self.template))

    @property
    def name(self) -> str:
        """The route's name: its last path segment that is not a parameter (``queue_task_batch``)."""
        return next(p for p in reversed(self.template.split("/")) if p and not p.startswith("{"))

    @property
    def params(self) -> tuple[str, ...]:
        """The names of the path parameters, in order."""
        return tuple(_PARAM.findall(self.template))

    def path(self, **params: Any) -> str:
        """The concrete path (without the prefix); string parameters are URL-quoted."""
        return _PARAM.sub(lambda m: quote(str(params[m.group(1)]), safe=""), self.template)

    def match(self, path: str) -> dict[str, str] | None:
        """The (URL-unquoted) path parameters if ``path`` (without the prefix) is this route."""
        found = self._pattern.match(path)
        return None if found is None else {k: unquote(v) for k, v in found.groupdict().items()}


# --- the routes ------------------------------------------------------------------------------
# The swarm's routes (spec §11).
QUEUE_TASK_BATCH = Route("POST", "/array/{array_id}/queue_task_batch")
BIND_RESOURCES = Route("POST", "/task/bind_resources")
LOG_HEARTBEAT = Route("POST", "/workflow_run/{workflow_run_id}/log_heartbeat")
UPDATE_RUN_STATUS = Route("PUT", "/workflow_run/{workflow_run_id}/update_status")
SET_STATUS_FOR_TRIAGING = Route("POST", "/workflow_run/{workflow_run_id}/set_status_for_triaging")
TASK_STATUS_UPDATES = Route("POST", "/workflow/{workflow_id}/task_status_updates")
WORKFLOW_LIMIT = Route("GET", "/workflow/{workflow_id}/get_max_concurrently_running")
ARRAY_LIMIT = Route("GET", "/array/{array_id}/get_array_max_concurrently_running")
TERMINATE_TASK_INSTANCES = Route("PUT", "/workflow_run/{workflow_run_id}/terminate_task_instances")
# Attaching to an existing run (the builder's database path).
FETCH_WORKFLOW_METADATA = Route("GET", "/workflow/{workflow_id}/fetch_workflow_metadata")
GET_TASKS = Route("GET", "/workflow/get_tasks/{workflow_id}")
GET_DOWNSTREAM_TASKS = Route("POST", "/task/get_downstream_tasks")
GET_CLUSTER = Route("GET", "/cluster/{cluster_name}")
GET_QUEUE = Route("GET", "/cluster/{cluster_id}/queue/{queue_name}")
TIME = Route("GET", "/time")
HEALTH = Route("GET", "/health")

# A user's routes (Jobmon's CLI and client), which ``swarmfold serve`` also answers.
SET_RESUME = Route("POST", "/workflow/{workflow_id}/set_resume")
UPDATE_WORKFLOW_LIMIT = Route("PUT", "/workflow/{workflow_id}/update_max_concurrently_running")
UPDATE_ARRAY_LIMIT = Route("PUT", "/workflow/{workflow_id}/update_array_max_concurrently_running")

# Resuming a workflow (``resume_workflow_from_id``, protocol doc §3), in the order they are sent.
INCREASE_RESOURCES = Route("POST", "/workflow/{workflow_id}/increase_resources")
IS_RESUMABLE = Route("GET", "/workflow/{workflow_id}/is_resumable")
SET_RESUME_STATE = Route("POST", "/task/{workflow_id}/set_resume_state")
CREATE_WORKFLOW_RUN = Route("POST", "/workflow_run")

#: The routes the swarm itself calls, in the order of the table above.
SWARM_ROUTES: tuple[Route, ...] = (
    QUEUE_TASK_BATCH, BIND_RESOURCES, LOG_HEARTBEAT, UPDATE_RUN_STATUS, SET_STATUS_FOR_TRIAGING,
    TASK_STATUS_UPDATES, WORKFLOW_LIMIT, ARRAY_LIMIT, TERMINATE_TASK_INSTANCES,
    FETCH_WORKFLOW_METADATA, GET_TASKS, GET_DOWNSTREAM_TASKS, GET_CLUSTER, GET_QUEUE, TIME, HEALTH,
)
#: The user routes above.
USER_ROUTES: tuple[Route, ...] = (SET_RESUME, UPDATE_WORKFLOW_LIMIT, UPDATE_ARRAY_LIMIT)
#: The routes a resume sends before the swarm starts (``SET_RESUME`` too, and ``UPDATE_RUN_STATUS``).
RESUME_ROUTES: tuple[Route, ...] = (INCREASE_RESOURCES, IS_RESUMABLE, SET_RESUME_STATE, CREATE_WORKFLOW_RUN)


# --- requests and answers --------------------------------------------------------------------


@frozen
class Request:
    """One request as a server sees it: method, path (without the prefix), query and JSON body."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None


@frozen
class Response:
    """A server's answer: the HTTP status code and the decoded JSON body."""

    status: int
    body: Any


@frozen
class CommandRoute:
    """How one server command travels: its route, request, answer parser and answer event.

    ``parse(body, label)`` checks the answer's shape and raises ``ResponseError`` naming the
    field; ``answer(command, at, parsed, duration)`` builds the success event. ``LoadQueues``
    is a short series of requests (cluster, then each queue), so its ``request`` gives only the
    first and the gateway carries out the rest (``composite``).
    """

    command: type
    route: Route
    request: Callable[[Any], Request]
    parse: Callable[[Any, str], Any]
    answer: Callable[[Any, float, Any, float | None], Event]
    #: The longest time worth retrying, if shorter than the retry policy's (the heartbeat's).
    budget: Callable[[Any], float] | None = None
    composite: bool = False


def _request(
    route: Route, body: Any = None, query: Mapping[str, Any] | None = None, **params: Any
) -> Request:
    pairs = tuple((k, str(v)) for k, v in (query or {}).items())
    return Request(route.method, route.path(**params), pairs, body)


def _queue_batch(c: QueueBatch) -> Request:
    return _request(QUEUE_TASK_BATCH, {
        "task_ids": list(c.task_ids),
        "task_resources_id": c.task_resources_id,
        "workflow_run_id": c.workflow_run_id,
        "cluster_id": c.cluster_id,
    }, array_id=c.array_id)


def _bind(c: BindResources) -> Request:
    return _request(BIND_RESOURCES, {
        "queue_id": c.queue_id,
        "task_resources_type_id": c.task_resources_type_id,
        "requested_resources": dict(c.requested),
    })


def _heartbeat(c: LogHeartbeat) -> Request:
    body = {"status": c.status, "next_report_increment": float(c.next_report_increment)}
    return _request(LOG_HEARTBEAT, body, workflow_run_id=c.workflow_run_id)


def _statuses(c: FetchTaskStatuses) -> Request:
    body = {} if c.since is None else {"last_sync": c.since}
    return _request(TASK_STATUS_UPDATES, body, workflow_id=c.workflow_id)


def _task_chunk(c: LoadTaskChunk) -> Request:
    query = {"max_task_id": c.after_task_id, "chunk_size": c.chunk_size}
    return _request(GET_TASKS, query=query, workflow_id=c.workflow_id)


def _load_queues(c: LoadQueues) -> Request:
    cluster = c.queues[0][0] if c.queues else ""
    return _request(GET_CLUSTER, cluster_name=cluster)


def _unused_parse(body: Any, label: str) -> Any:
    return body


def _unsent_answer(c: Any, at: float, parsed: Any, duration: float | None) -> Event:
    raise TypeError(f"{type(c).__name__} is carried out by the gateway as a series of requests")


#: ``command type -> CommandRoute`` for every command that talks to the server.
COMMAND_ROUTES: Mapping[type, CommandRoute] = {
    r.command: r
    for r in (
        CommandRoute(
            QueueBatch, QUEUE_TASK_BATCH, _queue_batch, parse_batch_answer,
            lambda c, at, v, d: BatchQueued(c.command_id, at, v, d),
        ),
        CommandRoute(
            BindResources, BIND_RESOURCES, _bind, parse_bound_id,
            lambda c, at, v, d: ResourcesBound(c.command_id, at, v),
        ),
        CommandRoute(
            LogHeartbeat, LOG_HEARTBEAT, _heartbeat, parse_run_status,
            lambda c, at, v, d: HeartbeatAcknowledged(c.command_id, at, v),
            # Past the report-by window a retried heartbeat is moot; the core retries anyway.
            budget=lambda c: max(1.0, c.next_report_increment),
        ),
        CommandRoute(
            UpdateWorkflowRunStatus, UPDATE_RUN_STATUS,
            lambda c: _request(UPDATE_RUN_STATUS, {"status": c.status}, workflow_run_id=c.workflow_run_id),
            parse_run_status,
            lambda c, at, v, d: StatusUpdateAcknowledged(c.command_id, at, v),
        ),
        CommandRoute(
            RequestTriage, SET_STATUS_FOR_TRIAGING,
            lambda c: _request(SET_STATUS_FOR_TRIAGING, {}, workflow_run_id=c.workflow_run_id),
            parse_triage_answer,
            lambda c, at, v, d: TriageRequested(c.command_id, at),
        ),
        CommandRoute(
            FetchTaskStatuses, TASK_STATUS_UPDATES, _statuses, parse_status_updates,
            lambda c, at, v, d: TaskStatusesFetched(c.command_id, at, v[0], v[1]),
        ),
        CommandRoute(
            FetchWorkflowLimit, WORKFLOW_LIMIT,
            lambda c: _request(WORKFLOW_LIMIT, workflow_id=c.workflow_id),
            parse_limit,
            lambda c, at, v, d: WorkflowLimitFetched(c.command_id, at, v),
        ),
        CommandRoute(
            FetchArrayLimit, ARRAY_LIMIT,
            lambda c: _request(ARRAY_LIMIT, array_id=c.array_id),
            parse_limit,
            lambda c, at, v, d: ArrayLimitFetched(c.command_id, at, c.array_id, v),
        ),
        CommandRoute(
            TerminateTaskInstances, TERMINATE_TASK_INSTANCES,
            lambda c: _request(TERMINATE_TASK_INSTANCES, {}, workflow_run_id=c.workflow_run_id),
            parse_terminated,
            lambda c, at, v, d: TerminateAcknowledged(c.command_id, at, v),
        ),
        CommandRoute(
            LoadTaskChunk, GET_TASKS, _task_chunk, parse_task_rows,
            lambda c, at, v, d: TaskChunkLoaded(c.command_id, at, v),
        ),
        CommandRoute(
            LoadEdgeChunk, GET_DOWNSTREAM_TASKS,
            lambda c: _request(GET_DOWNSTREAM_TASKS, {"task_ids": list(c.task_ids), "dag_id": c.dag_id}),
            parse_edges,
            lambda c, at, v, d: EdgeChunkLoaded(c.command_id, at, v),
        ),
        CommandRoute(LoadQueues, GET_CLUSTER, _load_queues, _unused_parse, _unsent_answer, composite=True),
    )
}

assert set(COMMAND_ROUTES) == set(SERVER_COMMANDS), "every server command needs a route"


def command_route(command: Command | type) -> CommandRoute:
    """The route of a server command (``KeyError`` names a command with no route)."""
    kind = command if isinstance(command, type) else type(command)
    try:
        return COMMAND_ROUTES[kind]
    except KeyError:
        raise KeyError(f"{kind.__name__} does not talk to the server") from None


def request_for(command: Command) -> Request:
    """The request that carries ``command`` (the first one, for a composite command)."""
    return command_route(command).request(command)


def answer_event(
    command: Command, at: float, body: Any, duration: float | None = None, route: str | None = None
) -> Event:
    """Parse a 2xx answer's body for ``command`` and build its answer event.

    Raises ``ResponseError`` (naming the field, and ``route`` or the route's label) when the
    body has the wrong shape.
    """
    spec = command_route(command)
    return spec.answer(command, at, spec.parse(body, route or spec.route.label), duration)


def match(
    method: str, path: str, routes: tuple[Route, ...] = SWARM_ROUTES
) -> tuple[Route, dict[str, str]] | None:
    """The route a request is for and its path parameters (``path`` without the prefix)."""
    for route in routes:
        if route.method != method:
            continue
        params = route.match(path)
        if params is not None:
            return route, params
    return None
