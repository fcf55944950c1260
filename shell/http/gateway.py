"""The HTTP gateway to a Jobmon 3.6 server: one ``requests.Session`` for the v3 routes.

``JobmonGateway.execute(command)`` carries out one core command that talks to the server and
answers with the event the core expects: the response as data, or a failure naming what went
wrong. It never raises for a server command: transport errors, HTTP errors, malformed JSON
and unexpected shapes all become failure events (``SyncPartFailed``, ``BatchQueueFailed``,
``HeartbeatFailed`` ...) whose ``error`` names the route, the HTTP status and the offending
field, e.g. ``POST /workflow/1/task_status_updates: HTTP 200: $.tasks_by_status.R[2]:
expected an int, got 'x'``.

Transport conventions (spec §11, jobmon-protocol.md): every request carries the
``client_jobmon_version`` query parameter; POST and PUT send JSON bodies, GET messages go in
the query string; the server gzips its responses (``requests`` decodes them); the route
prefix defaults to ``/api/v3``.

Retries (Jobmon's ``Requester``): connection errors, timeouts, 5xx and 423 are retried with
exponential back-off and full jitter, within a budget of attempts and seconds (Jobmon's:
10 attempts / 300 s). Other 4xx are never retried, nor is a 2xx whose body is bad. The loop
is written out here (not ``urllib3.Retry``) so that every attempt is reported to an
``on_attempt`` observer, the seconds budget is honoured, and ``cancel()`` can cut a back-off
short when the runner stops. A heartbeat is retried only within its own report-by window.

The parsers (``parse_tasks_by_status``, ``parse_task_rows``, ``parse_edges`` ...) are pure
functions of decoded JSON and raise ``ResponseError(route, field, message)``.
"""

from __future__ import annotations

import ast
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
from attrs import frozen

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
    BatchQueueFailed,
    ChunkLoadFailed,
    EdgeChunkLoaded,
    EdgeRow,
    Event,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    QueuesLoaded,
    ResourceBindFailed,
    ResourcesBound,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    SyncPartFailed,
    TaskChunkLoaded,
    TaskRow,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TerminateFailed,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.topology import QueueSpec

__all__ = [
    "DEFAULT_CLIENT_VERSION",
    "DEFAULT_ROUTE_PREFIX",
    "DEFAULT_TIMEOUT",
    "SERVER_COMMANDS",
    "Attempt",
    "GatewayError",
    "JobmonGateway",
    "ResponseError",
    "RetryPolicy",
    "WorkflowMetadata",
    "failure_event",
    "parse_bound_id",
    "parse_downstream_ids",
    "parse_edges",
    "parse_limit",
    "parse_metadata",
    "parse_run_status",
    "parse_server_time",
    "parse_status_updates",
    "parse_task_rows",
    "parse_tasks_by_status",
    "parse_terminated",
]

if TYPE_CHECKING:  # ``requests`` is imported when a gateway is made: the CLI starts fast.
    import requests

DEFAULT_ROUTE_PREFIX = "/api/v3"
DEFAULT_CLIENT_VERSION = "3.6.0"
#: Seconds to wait for the server (connect and read, each), per attempt.
DEFAULT_TIMEOUT = 20.0

#: Core commands the gateway answers.
SERVER_COMMANDS: tuple[type, ...] = (
    QueueBatch,
    BindResources,
    LogHeartbeat,
    UpdateWorkflowRunStatus,
    RequestTriage,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    FetchArrayLimit,
    TerminateTaskInstances,
    LoadTaskChunk,
    LoadEdgeChunk,
    LoadQueues,
)


# --- errors --------------------------------------------------------------------------------


class ResponseError(ValueError):
    """A response body that does not have the shape the route promises.

    ``route`` is ``"METHOD /path"`` (without the prefix), ``field`` a JSON path into the
    body (``$.tasks["12"][1]``).
    """

    def __init__(self, route: str, field: str, message: str) -> None:
        self.route = route
        self.field = field
        self.message = message
        super().__init__(f"{route}: {field}: {message}")


class GatewayError(Exception):
    """A request of the attach bootstrap failed (the message names route and cause)."""


# --- retry policy ----------------------------------------------------------------------------


@frozen
class RetryPolicy:
    """Exponential back-off with full jitter, within ``max_attempts`` and ``max_seconds``.

    The delay before attempt ``k + 1`` is uniform in ``[0, min(backoff_max,
    backoff_base * 2**(k-1))]`` (full jitter). Jobmon's budget: 10 attempts / 300 s.
    """

    max_attempts: int = 10
    max_seconds: float = 300.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        cap: float = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return cap * rng.random()


@frozen
class Attempt:
    """One HTTP attempt, as reported to ``on_attempt``: ``status`` is the HTTP status or
    ``None`` for a transport error (then ``error`` says which)."""

    route: str
    attempt: int
    status: int | None
    duration: float
    error: str = ""
    will_retry: bool = False


@frozen
class WorkflowMetadata:
    """``fetch_workflow_metadata``: ``[workflow_id, dag_id, max_concurrently_running]``."""

    workflow_id: int
    dag_id: int
    max_concurrently_running: int


# --- parsers (pure) ----------------------------------------------------------------------------


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(field: str, key: Any) -> str:
    return f"{field}[{json.dumps(key)}]" if isinstance(key, str) else f"{field}[{key}]"


def _int(route: str, field: str, value: Any) -> int:
    if type(value) is not int:  # bool is not an int here
        raise ResponseError(route, field, f"expected an int, got {_show(value)}")
    return value


def _str(route: str, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ResponseError(route, field, f"expected a string, got {_show(value)}")
    return value


def _dict(route: str, field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResponseError(route, field, f"expected an object, got {_show(value)}")
    return value


def _list(route: str, field: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ResponseError(route, field, f"expected an array, got {_show(value)}")
    return value


def _member(route: str, field: str, body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise ResponseError(route, f"{field}.{name}", "required field missing")
    return body[name]


def _id_key(route: str, field: str, key: str) -> int:
    try:
        value = int(key)
    except ValueError:
        raise ResponseError(route, field, f"expected a task id key, got {_show(key)}") from None
    if str(value) != key.strip():
        raise ResponseError(route, field, f"expected a task id key, got {_show(key)}")
    return value


def parse_tasks_by_status(
    body: Any, route: str = "task_status_updates", field: str = "$.tasks_by_status"
) -> dict[str, tuple[int, ...]]:
    """``{"<status>": [task_id, ...]}`` -> ``{status: (ids...)}``. Unknown status codes are
    kept: they are data (the core notes them); a non-int id is an error."""
    mapping = _dict(route, field, body)
    out: dict[str, tuple[int, ...]] = {}
    for code, ids in mapping.items():
        if type(ids) is list and all(type(v) is int for v in ids):
            out[code] = tuple(ids)  # the common case, checked in one pass
            continue
        where = _key(field, code)
        items = _list(route, where, ids)
        out[code] = tuple(_int(route, f"{where}[{k}]", v) for k, v in enumerate(items))
    return out


def parse_status_updates(body: Any, route: str = "task_status_updates") -> tuple[
    dict[str, tuple[int, ...]], str | None
]:
    """``task_status_updates``: ``({status: ids}, time or None)``."""
    data = _dict(route, "$", body)
    tasks = parse_tasks_by_status(_member(route, "$", data, "tasks_by_status"), route)
    when = data.get("time")
    if when is not None:
        _str(route, "$.time", when)
    return tasks, when


def parse_run_status(body: Any, route: str = "log_heartbeat") -> str:
    """``{"status": "<code>"}`` -> the code (an unknown code is data, kept as it is)."""
    data = _dict(route, "$", body)
    return _str(route, "$.status", _member(route, "$", data, "status"))


def parse_limit(body: Any, route: str = "get_max_concurrently_running") -> int:
    """``{"max_concurrently_running": int}``."""
    data = _dict(route, "$", body)
    value = _int(route, "$.max_concurrently_running", _member(route, "$", data, "max_concurrently_running"))
    if value < 0:
        raise ResponseError(route, "$.max_concurrently_running", f"expected >= 0, got {value}")
    return value


def parse_bound_id(body: Any, route: str = "bind_resources") -> int:
    """``bind_resources`` answers a bare int (the TaskResources id)."""
    return _int(route, "$", body)


def parse_terminated(body: Any, route: str = "terminate_task_instances") -> int | None:
    """``{"workflow_run_id": int, "num_terminated": int}``; Jobmon ignores it, so only the
    kind of ``num_terminated`` is checked when present."""
    data = _dict(route, "$", body)
    value = data.get("num_terminated")
    return None if value is None else _int(route, "$.num_terminated", value)


def parse_server_time(body: Any, route: str = "time") -> str:
    """``{"time": "YYYY-MM-DD HH:MM:SS"}`` -> the string (opaque to the core: quirk Q14)."""
    data = _dict(route, "$", body)
    return _str(route, "$.time", _member(route, "$", data, "time"))


def parse_metadata(body: Any, route: str = "fetch_workflow_metadata") -> WorkflowMetadata | None:
    """``{"workflow": [workflow_id, dag_id, max_concurrently_running]}``; ``[]`` -> None."""
    data = _dict(route, "$", body)
    row = _list(route, "$.workflow", _member(route, "$", data, "workflow"))
    if not row:
        return None
    if len(row) < 3:
        raise ResponseError(route, "$.workflow", f"expected [workflow_id, dag_id, limit], got {_show(row)}")
    return WorkflowMetadata(
        _int(route, "$.workflow[0]", row[0]),
        _int(route, "$.workflow[1]", row[1]),
        _int(route, "$.workflow[2]", row[2]),
    )


def _literal(route: str, field: str, text: Any, what: str) -> Any:
    """A Python-literal string (``"{'memory': 0.5}"``), safely; JSON is accepted too."""
    if not isinstance(text, str):
        # Newer servers might send the decoded value; take it as it is.
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        raise ResponseError(route, field, f"{what}: not a Python or JSON literal: {_show(text)}") from None


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _by_text(parse: Callable[[str, str, Any], Any]) -> Callable[[str, str, Any], Any]:
    """Memoise a row-string parser on the string itself: 10,000 rows usually share a handful
    of distinct strings. Results are immutable tuples; errors are never cached (they name
    the row's field path)."""
    cache: dict[str, Any] = {}

    def parse_cached(route: str, field: str, text: Any) -> Any:
        if not isinstance(text, str):
            return parse(route, field, text)
        value = cache.get(text)
        if value is None:
            value = parse(route, field, text)
            if len(cache) < 4096:
                cache[text] = value
        return value

    parse_cached.__doc__ = parse.__doc__
    return parse_cached


@_by_text
def _scales(route: str, field: str, text: Any) -> tuple[tuple[str, Any], ...]:
    value = _literal(route, field, text, "resource_scales")
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ResponseError(route, field, f"resource_scales: expected a dict, got {_show(value)}")
    out: list[tuple[str, Any]] = []
    for name, scale in value.items():
        if not isinstance(name, str):
            raise ResponseError(route, field, f"resource_scales: key {_show(name)} is not a string")
        if _number(scale):
            out.append((name, scale))
        elif isinstance(scale, list | tuple) and all(_number(v) for v in scale):
            out.append((name, tuple(scale)))
        else:
            raise ResponseError(
                route, field,
                f"resource_scales[{name!r}]: a number or a list of numbers is required to attach "
                f"(Jobmon cannot resume non-numeric custom scales either), got {_show(scale)}",
            )
    return tuple(out)


@_by_text
def _fallbacks(route: str, field: str, text: Any) -> tuple[str, ...]:
    value = _literal(route, field, text, "fallback_queues")
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(q, str) for q in value):
        raise ResponseError(route, field, f"fallback_queues: expected a list of names, got {_show(value)}")
    return tuple(value)


@_by_text
def _requested(route: str, field: str, text: Any) -> tuple[tuple[str, Any], ...]:
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except ValueError:
            value = _literal(route, field, text, "requested_resources")
    else:
        value = text
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ResponseError(route, field, f"requested_resources: expected an object, got {_show(value)}")
    out: list[tuple[str, Any]] = []
    for name, v in value.items():
        if not isinstance(name, str) or not (_number(v) or isinstance(v, str)):
            raise ResponseError(
                route, field,
                f"requested_resources[{name!r}]: expected a number or a string, got {_show(v)}",
            )
        out.append((name, v))
    return tuple(sorted(out))


#: Length of a ``get_tasks`` row.
TASK_ROW_LENGTH = 9


class _Recheck(Exception):
    """Raised by a fast parser when something is off: the checked parser names it."""


def parse_task_rows(body: Any, route: str = "get_tasks") -> tuple[TaskRow, ...]:
    """``{"tasks": {"<id>": [array_id, status, max_attempts, resource_scales_str,
    fallback_queues_str, requested_resources_json_str, cluster_name, queue_name,
    array_max_concurrently_running]}}`` -> rows in ascending task id order.

    Well-formed rows take a fast path; anything odd is re-parsed by the checked parser,
    whose error names the exact field."""
    try:
        return _fast_task_rows(body, route)
    except (_Recheck, ResponseError, LookupError, TypeError, ValueError, AttributeError):
        return _checked_task_rows(body, route)


def _fast_task_rows(body: Any, route: str) -> tuple[TaskRow, ...]:
    rows: list[TaskRow] = []
    for key, items in body["tasks"].items():
        task_id = int(key)
        if str(task_id) != key or type(items) is not list or len(items) < TASK_ROW_LENGTH:
            raise _Recheck
        array_id, status, max_attempts, scales, fallbacks, requested, cluster, queue, limit = items[:9]
        if not (
            type(array_id) is int and type(status) is str and type(max_attempts) is int
            and type(cluster) is str and type(queue) is str and type(limit) is int
        ):
            raise _Recheck
        rows.append(TaskRow(
            task_id, array_id, status, max_attempts, _scales(route, "", scales),
            _fallbacks(route, "", fallbacks), _requested(route, "", requested), cluster, queue, limit,
        ))
    rows.sort(key=lambda r: r.task_id)
    return tuple(rows)


def _checked_task_rows(body: Any, route: str) -> tuple[TaskRow, ...]:
    data = _dict(route, "$", body)
    tasks = _dict(route, "$.tasks", _member(route, "$", data, "tasks"))
    rows: list[TaskRow] = []
    for key, row in tasks.items():
        where = _key("$.tasks", key)
        task_id = _id_key(route, where, key)
        items = _list(route, where, row)
        if len(items) < TASK_ROW_LENGTH:
            raise ResponseError(
                route, where, f"expected {TASK_ROW_LENGTH} items, got {len(items)}: {_show(items)}"
            )
        rows.append(TaskRow(
            task_id=task_id,
            array_id=_int(route, f"{where}[0]", items[0]),
            status=_str(route, f"{where}[1]", items[1]),
            max_attempts=_int(route, f"{where}[2]", items[2]),
            resource_scales=_scales(route, f"{where}[3]", items[3]),
            fallback_queues=_fallbacks(route, f"{where}[4]", items[4]),
            requested_resources=_requested(route, f"{where}[5]", items[5]),
            cluster_name=_str(route, f"{where}[6]", items[6]),
            queue_name=_str(route, f"{where}[7]", items[7]),
            array_limit=_int(route, f"{where}[8]", items[8]),
        ))
    rows.sort(key=lambda r: r.task_id)
    return tuple(rows)


def parse_downstream_ids(
    value: Any, route: str = "get_downstream_tasks", field: str = "$"
) -> tuple[int, ...]:
    """Downstream node ids: a list, ``null``, or (servers answering clients <= 3.4.23) a
    quoted JSON string of a list."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ResponseError(route, field, f"expected a JSON list string, got {_show(value)}") from None
        if value is None:
            return ()
    items = _list(route, field, value)
    return tuple(_int(route, f"{field}[{k}]", v) for k, v in enumerate(items))


def parse_edges(body: Any, route: str = "get_downstream_tasks") -> tuple[EdgeRow, ...]:
    """``{"downstream_tasks": {"<task_id>": [node_id, [downstream_node_id, ...] | null]}}``."""
    try:
        return _fast_edges(body)
    except (_Recheck, LookupError, TypeError, ValueError, AttributeError):
        return _checked_edges(body, route)


def _fast_edges(body: Any) -> tuple[EdgeRow, ...]:
    edges: list[EdgeRow] = []
    for key, items in body["downstream_tasks"].items():
        task_id = int(key)
        if str(task_id) != key or type(items) is not list or len(items) < 2 or type(items[0]) is not int:
            raise _Recheck
        downstream = items[1]
        if downstream is None:
            ids: tuple[int, ...] = ()
        elif type(downstream) is list and all(type(v) is int for v in downstream):
            ids = tuple(downstream)
        else:
            raise _Recheck  # quoted JSON strings (old servers) and anything odd
        edges.append(EdgeRow(task_id, items[0], ids))
    edges.sort(key=lambda e: e.task_id)
    return tuple(edges)


def _checked_edges(body: Any, route: str) -> tuple[EdgeRow, ...]:
    data = _dict(route, "$", body)
    tasks = _dict(route, "$.downstream_tasks", _member(route, "$", data, "downstream_tasks"))
    edges: list[EdgeRow] = []
    for key, row in tasks.items():
        where = _key("$.downstream_tasks", key)
        task_id = _id_key(route, where, key)
        items = _list(route, where, row)
        if len(items) < 2:
            raise ResponseError(route, where, f"expected [node_id, downstream_node_ids], got {_show(items)}")
        edges.append(EdgeRow(
            task_id,
            _int(route, f"{where}[0]", items[0]),
            parse_downstream_ids(items[1], route, f"{where}[1]"),
        ))
    edges.sort(key=lambda e: e.task_id)
    return tuple(edges)


def parse_cluster_id(body: Any, route: str = "cluster") -> int:
    """``{"cluster": [id, name, type, connection_parameters]}`` -> id."""
    row = _list(route, "$.cluster", _member(route, "$", _dict(route, "$", body), "cluster"))
    if not row:
        raise ResponseError(route, "$.cluster", "empty: no such cluster")
    return _int(route, "$.cluster[0]", row[0])


def parse_queue(body: Any, route: str = "queue") -> tuple[int, tuple[tuple[str, float, float], ...]] | None:
    """``{"queue": [id, name, parameters_str]}`` -> ``(id, bounds)``; ``None`` for ``[]``.

    ``parameters_str`` is a Python literal such as ``'{"cores": (1, 20)}'``: each entry with
    a ``(min, max)`` pair of numbers is a bound.
    """
    row = _list(route, "$.queue", _member(route, "$", _dict(route, "$", body), "queue"))
    if not row:
        return None
    queue_id = _int(route, "$.queue[0]", row[0])
    params = _literal(route, "$.queue[2]", row[2] if len(row) > 2 else "{}", "queue parameters") or {}
    if not isinstance(params, dict):
        raise ResponseError(route, "$.queue[2]", f"queue parameters: expected a mapping, got {_show(params)}")
    bounds = []
    for name, value in sorted(params.items()):
        if (
            isinstance(value, list | tuple) and len(value) == 2
            and all(_number(v) for v in value)
        ):
            bounds.append((str(name), float(value[0]), float(value[1])))
    return queue_id, tuple(bounds)


def parse_queue_id(body: Any, route: str = "queue") -> int:
    """``{"queue": [id, name, parameters_str]}`` -> id."""
    row = _list(route, "$.queue", _member(route, "$", _dict(route, "$", body), "queue"))
    if not row:
        raise ResponseError(route, "$.queue", "empty: no such queue")
    return _int(route, "$.queue[0]", row[0])


# --- the gateway -------------------------------------------------------------------------------


class _Failed(Exception):
    """A call that did not produce a usable answer; ``str`` is the whole description."""


@frozen
class _Response:
    body: Any
    duration: float  # seconds of the attempt that answered
    status: int
    route: str

    def parse(self, parser: Callable[..., Any]) -> Any:
        """``parser(body, route)``; a ``ResponseError`` becomes ``_Failed`` naming the status."""
        try:
            return parser(self.body, self.route)
        except ResponseError as exc:
            raise _Failed(f"{self.route}: HTTP {self.status}: {exc.field}: {exc.message}") from None


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _retryable_status(status: int) -> bool:
    return status >= 500 or status == 423


class JobmonGateway:
    """Speaks the Jobmon v3 routes the swarm uses. Thread-safe: ``execute`` may be called
    from many threads at once (one shared ``requests.Session`` and connection pool).

    ``clock`` gives the ``at`` of every answer event (the runner passes its clock);
    ``on_attempt`` sees every HTTP attempt (for logging); ``cancel()`` stops pending
    back-offs so a stopping runner is not held up by retries.
    """

    def __init__(
        self,
        base_url: str,
        *,
        route_prefix: str = DEFAULT_ROUTE_PREFIX,
        client_version: str = DEFAULT_CLIENT_VERSION,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_attempts: int | None = None,
        max_retry_seconds: float | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_attempt: Callable[[Attempt], None] | None = None,
        pool_size: int = 32,
        resolve_queue_ids: bool = True,
        seed: int | None = None,
    ) -> None:
        policy = retry if retry is not None else RetryPolicy()
        if max_attempts is not None:
            policy = attrs.evolve(policy, max_attempts=max_attempts)
        if max_retry_seconds is not None:
            policy = attrs.evolve(policy, max_seconds=max_retry_seconds)
        if policy.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {policy.max_attempts}")
        self.base_url = base_url.rstrip("/")
        prefix = route_prefix.strip()
        self.route_prefix = ("/" + prefix.strip("/")) if prefix.strip("/") else ""
        self.client_version = client_version
        self.timeout = timeout
        self.retry = policy
        self.clock = clock
        self.on_attempt = on_attempt
        self.resolve_queue_ids = resolve_queue_ids
        import requests
        from requests.adapters import HTTPAdapter

        self._requests = requests
        self._retryable_errors = (
            requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError
        )
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            # Like Jobmon's aiohttp session (trust_env=False): no proxy variables or ~/.netrc
            # lookups per request, which cost more CPU than the request itself on loopback.
            # Pass your own session to use them.
            session.trust_env = False
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        from swarmfold import __version__

        session.headers.setdefault("User-Agent", f"swarmfold/{__version__}")
        self.session = session
        self._cancel = threading.Event()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._lock = threading.Lock()
        #: ``queue name -> cluster name``, learned from ``get_tasks`` rows.
        self._cluster_of_queue: dict[str, str] = {}
        self._queue_ids: dict[tuple[str, str], int] = {}
        self._cluster_ids: dict[str, int] = {}
        #: Requests sent (attempts), by route template (``POST /array/{id}/queue_task_batch``).
        self.request_counts: dict[str, int] = {}

    # --- lifecycle ---------------------------------------------------------------------

    def cancel(self) -> None:
        """Give up pending back-offs from now on (requests under way still finish)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def close(self) -> None:
        self.cancel()
        if self._own_session:
            self.session.close()

    # --- transport -----------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{self.route_prefix}{path}"

    def _count(self, template: str) -> None:
        with self._lock:
            self.request_counts[template] = self.request_counts.get(template, 0) + 1

    def _jitter(self, attempt: int) -> float:
        with self._rng_lock:
            return self.retry.delay(attempt, self._rng)

    def _request(
        self,
        method: str,
        path: str,
        template: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        budget: float | None = None,
    ) -> _Response:
        """Send with retries; return the decoded JSON body or raise ``_Failed``."""
        requests = self._requests
        route = f"{method} {path}"
        query: dict[str, Any] = {"client_jobmon_version": self.client_version}
        if params:
            query.update(params)
        policy = self.retry
        max_seconds = policy.max_seconds if budget is None else min(policy.max_seconds, budget)
        started = time.monotonic()
        last = ""
        attempt = 0
        while True:
            attempt += 1
            t0 = time.monotonic()
            self._count(template)
            status: int | None = None
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    params=query,
                    json=body if method in ("POST", "PUT") else None,
                    timeout=self.timeout,
                )
                status = response.status_code
                content = response.content
            except requests.exceptions.ContentDecodingError as exc:
                self._report(route, attempt, status, t0, f"undecodable body: {exc}", False)
                raise _Failed(
                    f"{route}: the response body cannot be decoded (Content-Encoding): "
                    f"{_excerpt(str(exc), 160)}"
                ) from None
            except self._retryable_errors as exc:
                last = _transport_error(exc)
            except requests.RequestException as exc:
                self._report(route, attempt, None, t0, str(exc), False)
                raise _Failed(f"{route}: request failed: {type(exc).__name__}: {exc}") from None
            else:
                duration = time.monotonic() - t0
                if 200 <= status < 300:
                    self._report(route, attempt, status, t0, "", False)
                    try:
                        decoded = json.loads(content.decode("utf-8")) if content.strip() else None
                    except (ValueError, UnicodeDecodeError) as exc:
                        raise _Failed(
                            f"{route}: HTTP {status}: $: invalid JSON in the response body: "
                            f"{_json_error(exc)}; body starts {_show(content[:80])}"
                        ) from None
                    return _Response(decoded, duration, status, route)
                detail = _excerpt(content.decode("utf-8", "replace"))
                if not _retryable_status(status):
                    self._report(route, attempt, status, t0, detail, False)
                    raise _Failed(f"{route}: HTTP {status} (not retried): {detail or '(empty body)'}")
                last = f"HTTP {status}: {detail or '(empty body)'}"
            elapsed = time.monotonic() - started
            delay = self._jitter(attempt)
            give_up = (
                attempt >= policy.max_attempts
                or elapsed + delay >= max_seconds
                or self._cancel.is_set()
            )
            self._report(route, attempt, status, t0, last, not give_up)
            if give_up:
                why = "cancelled (the runner is stopping)" if self._cancel.is_set() else (
                    f"retry budget spent ({policy.max_attempts} attempts / {max_seconds:g} s)"
                )
                raise _Failed(
                    f"{route}: gave up after {attempt} attempt(s) in {elapsed:.2f} s, {why}; last: {last}"
                )
            if self._cancel.wait(delay):
                raise _Failed(
                    f"{route}: gave up after {attempt} attempt(s), cancelled (the runner is stopping); "
                    f"last: {last}"
                )

    def _report(
        self, route: str, attempt: int, status: int | None, t0: float, error: str, retry: bool
    ) -> None:
        if self.on_attempt is not None:
            # An observer must never break a request.
            with contextlib.suppress(Exception):
                self.on_attempt(Attempt(route, attempt, status, time.monotonic() - t0, error, retry))

    # --- the attach bootstrap --------------------------------------------------------------

    def fetch_workflow_metadata(self, workflow_id: int) -> WorkflowMetadata | None:
        """``GET /workflow/{id}/fetch_workflow_metadata``; None when the server knows no such
        workflow (``{"workflow": []}``). Raises ``GatewayError`` when the call fails."""
        path = f"/workflow/{workflow_id}/fetch_workflow_metadata"
        try:
            r = self._request("GET", path, "GET /workflow/{id}/fetch_workflow_metadata")
            result: WorkflowMetadata | None = r.parse(parse_metadata)
            return result
        except _Failed as exc:
            raise GatewayError(str(exc)) from None

    def server_time(self) -> str:
        """``GET /time`` -> the server's time string. Raises ``GatewayError``."""
        try:
            result: str = self._request("GET", "/time", "GET /time").parse(parse_server_time)
            return result
        except _Failed as exc:
            raise GatewayError(str(exc)) from None

    # --- commands -> events ------------------------------------------------------------------

    def execute(self, command: Command) -> Event:
        """Carry out one server command; answer with its event. Never raises for a server
        command (``SERVER_COMMANDS``); any other command is a caller bug (``TypeError``)."""
        spec = _ROUTES.get(type(command))
        if spec is None:
            raise TypeError(f"JobmonGateway.execute: {type(command).__name__} does not talk to the server")
        try:
            return spec.run(self, command)
        except _Failed as exc:
            return spec.failure(command, self.clock(), str(exc))
        except Exception as exc:  # never let a surprise escape: it becomes the failure event
            return spec.failure(
                command, self.clock(),
                f"{type(command).__name__}: internal error in the gateway: {type(exc).__name__}: {exc}",
            )

    # one method per command: request, parse, build the answer event

    def _queue_batch(self, c: QueueBatch) -> Event:
        r = self._request(
            "POST", f"/array/{c.array_id}/queue_task_batch", "POST /array/{id}/queue_task_batch",
            body={
                "task_ids": list(c.task_ids),
                "task_resources_id": c.task_resources_id,
                "workflow_run_id": c.workflow_run_id,
                "cluster_id": c.cluster_id,
            },
        )
        return BatchQueued(c.command_id, self.clock(), r.parse(parse_batch_answer), r.duration)

    def _bind(self, c: BindResources) -> Event:
        queue_id = c.queue_id
        if queue_id == 0 and self.resolve_queue_ids:
            queue_id = self._resolve_queue_id(c.queue)
        r = self._request("POST", "/task/bind_resources", "POST /task/bind_resources", body={
            "queue_id": queue_id,
            "task_resources_type_id": c.task_resources_type_id,
            "requested_resources": dict(c.requested),
        })
        return ResourcesBound(c.command_id, self.clock(), r.parse(parse_bound_id))

    def _resolve_queue_id(self, queue: str) -> int:
        """The server's id of ``queue`` on the cluster its tasks named (learned from
        ``get_tasks``, as Jobmon's builder fetches ``/cluster/{name}`` and
        ``/cluster/{id}/queue/{name}``); 0 when no cluster is known for it."""
        with self._lock:
            cluster = self._cluster_of_queue.get(queue)
            if cluster is None:
                return 0
            known = self._queue_ids.get((cluster, queue))
        if known is not None:
            return known
        cluster_id = self._cluster_id(cluster)
        path = f"/cluster/{cluster_id}/queue/{quote(queue, safe='')}"
        queue_id: int = self._request("GET", path, "GET /cluster/{id}/queue/{name}").parse(parse_queue_id)
        with self._lock:
            self._queue_ids[(cluster, queue)] = queue_id
        return queue_id

    def _cluster_id(self, cluster: str) -> int:
        with self._lock:
            known = self._cluster_ids.get(cluster)
        if known is not None:
            return known
        path = f"/cluster/{quote(cluster, safe='')}"
        cluster_id: int = self._request("GET", path, "GET /cluster/{name}").parse(parse_cluster_id)
        with self._lock:
            self._cluster_ids[cluster] = cluster_id
        return cluster_id

    def _load_queues(self, c: LoadQueues) -> Event:
        """Each ``(cluster, queue)``: its id and bounds (``cluster.get_queue`` in Jobmon)."""
        found: list[QueueSpec] = []
        for cluster, queue in c.queues:
            cluster_id = self._cluster_id(cluster)
            path = f"/cluster/{cluster_id}/queue/{quote(queue, safe='')}"
            parsed = self._request("GET", path, "GET /cluster/{id}/queue/{name}").parse(parse_queue)
            if parsed is None:
                continue
            queue_id, bounds = parsed
            with self._lock:
                self._queue_ids[(cluster, queue)] = queue_id
                self._cluster_of_queue.setdefault(queue, cluster)
            found.append(QueueSpec(queue, queue_id=queue_id, cluster_id=cluster_id, bounds=bounds))
        return QueuesLoaded(c.command_id, self.clock(), tuple(found))

    def _heartbeat(self, c: LogHeartbeat) -> Event:
        r = self._request(
            "POST", f"/workflow_run/{c.workflow_run_id}/log_heartbeat",
            "POST /workflow_run/{id}/log_heartbeat",
            body={"status": c.status, "next_report_increment": float(c.next_report_increment)},
            # Past the report-by window a retried heartbeat is moot; the core retries anyway.
            budget=max(1.0, c.next_report_increment),
        )
        return HeartbeatAcknowledged(c.command_id, self.clock(), r.parse(parse_run_status))

    def _update_status(self, c: UpdateWorkflowRunStatus) -> Event:
        r = self._request("PUT", f"/workflow_run/{c.workflow_run_id}/update_status",
                          "PUT /workflow_run/{id}/update_status", body={"status": c.status})
        return StatusUpdateAcknowledged(c.command_id, self.clock(), r.parse(parse_run_status))

    def _triage(self, c: RequestTriage) -> Event:
        r = self._request("POST", f"/workflow_run/{c.workflow_run_id}/set_status_for_triaging",
                          "POST /workflow_run/{id}/set_status_for_triaging", body={})
        r.parse(parse_triage_answer)
        return TriageRequested(c.command_id, self.clock())

    def _statuses(self, c: FetchTaskStatuses) -> Event:
        body = {} if c.since is None else {"last_sync": c.since}
        r = self._request("POST", f"/workflow/{c.workflow_id}/task_status_updates",
                          "POST /workflow/{id}/task_status_updates", body=body)
        tasks, when = r.parse(parse_status_updates)
        return TaskStatusesFetched(c.command_id, self.clock(), tasks, when)

    def _workflow_limit(self, c: FetchWorkflowLimit) -> Event:
        r = self._request("GET", f"/workflow/{c.workflow_id}/get_max_concurrently_running",
                          "GET /workflow/{id}/get_max_concurrently_running")
        return WorkflowLimitFetched(c.command_id, self.clock(), r.parse(parse_limit))

    def _array_limit(self, c: FetchArrayLimit) -> Event:
        r = self._request("GET", f"/array/{c.array_id}/get_array_max_concurrently_running",
                          "GET /array/{id}/get_array_max_concurrently_running")
        return ArrayLimitFetched(c.command_id, self.clock(), c.array_id, r.parse(parse_limit))

    def _terminate(self, c: TerminateTaskInstances) -> Event:
        r = self._request("PUT", f"/workflow_run/{c.workflow_run_id}/terminate_task_instances",
                          "PUT /workflow_run/{id}/terminate_task_instances", body={})
        return TerminateAcknowledged(c.command_id, self.clock(), r.parse(parse_terminated))

    def _task_chunk(self, c: LoadTaskChunk) -> Event:
        r = self._request(
            "GET", f"/workflow/get_tasks/{c.workflow_id}", "GET /workflow/get_tasks/{id}",
            params={"max_task_id": c.after_task_id, "chunk_size": c.chunk_size},
        )
        rows: tuple[TaskRow, ...] = r.parse(parse_task_rows)
        with self._lock:
            for row in rows:
                self._cluster_of_queue.setdefault(row.queue_name, row.cluster_name)
                for q in row.fallback_queues:
                    self._cluster_of_queue.setdefault(q, row.cluster_name)
        return TaskChunkLoaded(c.command_id, self.clock(), rows)

    def _edge_chunk(self, c: LoadEdgeChunk) -> Event:
        r = self._request("POST", "/task/get_downstream_tasks", "POST /task/get_downstream_tasks", body={
            "task_ids": list(c.task_ids), "dag_id": c.dag_id,
        })
        return EdgeChunkLoaded(c.command_id, self.clock(), r.parse(parse_edges))


def parse_batch_answer(body: Any, route: str) -> dict[str, tuple[int, ...]]:
    """``queue_task_batch``: ``{"tasks_by_status": {status: [ids]}}``."""
    return parse_tasks_by_status(_member(route, "$", _dict(route, "$", body), "tasks_by_status"), route)


def parse_triage_answer(body: Any, route: str) -> None:
    """``set_status_for_triaging`` answers ``{}``; any object will do, ``null`` too."""
    if body is not None:
        _dict(route, "$", body)


def _transport_error(exc: BaseException) -> str:
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        kind = "connect timeout"
    elif isinstance(exc, requests.Timeout):
        kind = "read timeout"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
        kind = "connection broken mid-response"
    else:
        kind = "connection error"
    text = str(exc)
    # urllib3 messages repeat the pool repr; keep the informative tail.
    if "Caused by" in text:
        text = text[text.index("Caused by"):]
    return f"{kind}: {_excerpt(text, 160)}"


def _json_error(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


@frozen
class _Route:
    run: Callable[[JobmonGateway, Any], Event]
    failure: Callable[[Any, float, str], Event]


def _sync_failed(c: Any, at: float, error: str) -> Event:
    return SyncPartFailed(c.command_id, at, error)


_ROUTES: dict[type, _Route] = {
    QueueBatch: _Route(JobmonGateway._queue_batch, lambda c, at, e: BatchQueueFailed(c.command_id, at, e)),
    BindResources: _Route(JobmonGateway._bind, lambda c, at, e: ResourceBindFailed(c.command_id, at, e)),
    LogHeartbeat: _Route(JobmonGateway._heartbeat, lambda c, at, e: HeartbeatFailed(c.command_id, at, e)),
    UpdateWorkflowRunStatus: _Route(
        JobmonGateway._update_status, lambda c, at, e: StatusUpdateFailed(c.command_id, at, e)
    ),
    RequestTriage: _Route(JobmonGateway._triage, _sync_failed),
    FetchTaskStatuses: _Route(JobmonGateway._statuses, _sync_failed),
    FetchWorkflowLimit: _Route(JobmonGateway._workflow_limit, _sync_failed),
    FetchArrayLimit: _Route(JobmonGateway._array_limit, _sync_failed),
    TerminateTaskInstances: _Route(
        JobmonGateway._terminate, lambda c, at, e: TerminateFailed(c.command_id, at, e)
    ),
    LoadTaskChunk: _Route(JobmonGateway._task_chunk, lambda c, at, e: ChunkLoadFailed(c.command_id, at, e)),
    LoadEdgeChunk: _Route(JobmonGateway._edge_chunk, lambda c, at, e: ChunkLoadFailed(c.command_id, at, e)),
    LoadQueues: _Route(JobmonGateway._load_queues, lambda c, at, e: ChunkLoadFailed(c.command_id, at, e)),
}


def failure_event(command: Command, at: float, error: str) -> Event:
    """The failure event that answers ``command`` (a server command) with ``error``."""
    spec = _ROUTES.get(type(command))
    if spec is None:
        raise TypeError(f"{type(command).__name__} does not talk to the server")
    return spec.failure(command, at, error)
