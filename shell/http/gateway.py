"""The HTTP gateway to a Jobmon 3.6 server: one connection pool for the v3 routes.

``JobmonGateway.execute(command)`` carries out one core command that talks to the server and
answers with the event the core expects: the response as data, or a failure naming what went
wrong. It never raises for a server command: transport errors, HTTP errors, malformed JSON
and unexpected shapes all become failure events (``SyncPartFailed``, ``BatchQueueFailed``,
``HeartbeatFailed`` ...) whose ``error`` names the route, the HTTP status and the offending
field, e.g. ``POST /workflow/1/task_status_updates: HTTP 200: $.tasks_by_status.R[2]:
expected an int, got 'x'``.

Transport conventions (spec §11, jobmon-protocol.md): every request carries the
``client_jobmon_version`` query parameter; POST and PUT send JSON bodies, GET messages go in
the query string; the server gzips its responses (the wire decodes them, ``shell/http/wire.py``); the route
prefix defaults to ``/api/v3``.

Retries (Jobmon's ``Requester``): connection errors, timeouts, 5xx and 423 are retried with
exponential back-off and full jitter, within a budget of attempts and seconds (Jobmon's:
10 attempts / 300 s). Other 4xx are never retried, nor is a 2xx whose body is bad. The loop
is written out here (not ``urllib3.Retry``) so that every attempt is reported to an
``on_attempt`` observer, the seconds budget is honoured, and ``cancel()`` can cut a back-off
short when the runner stops. A heartbeat is retried only within its own report-by window.

The answers are parsed by ``shell/http/parsing.py`` (pure functions of decoded JSON that raise
``ResponseError(route, field, message)``); its names are re-exported here.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from swarmfold.core.commands import (
    BindResources,
    Command,
    LoadQueues,
)
from swarmfold.core.events import (
    Event,
    TaskChunkLoaded,
)
from swarmfold.core.protocol import failure_event as protocol_failure
from swarmfold.shell.http.parsing import (
    ResponseError,
    WorkflowMetadata,
    parse_bound_id,
    parse_downstream_ids,
    parse_edges,
    parse_limit,
    parse_metadata,
    parse_queue,
    parse_run_status,
    parse_server_time,
    parse_status_updates,
    parse_task_rows,
    parse_tasks_by_status,
    parse_terminated,
    shown,
)
from swarmfold.shell.http.queue_directory import QueueDirectory
from swarmfold.shell.http.routes import (
    BIND_RESOURCES,
    COMMAND_ROUTES,
    FETCH_WORKFLOW_METADATA,
    QUEUE_TASK_BATCH,
    TASK_STATUS_UPDATES,
    TIME,
    UPDATE_RUN_STATUS,
    Route,
)
from swarmfold.shell.http.transport import (
    DEFAULT_CLIENT_VERSION,
    DEFAULT_ROUTE_PREFIX,
    DEFAULT_TIMEOUT,
    LOCK_RETRY_SECONDS,
    LOCKED,
    Attempt,
    GatewayError,
    RetryPolicy,
    excerpt,
    forgotten,
    json_error,
    retryable_status,
)
from swarmfold.shell.http.wire import (
    ConnectionWire,
    RequestNotSent,
    SessionWire,
    UndecodableBody,
    Wire,
    WireDown,
)
from swarmfold.shell.json_text import loads

#: Writes that go one at a time, by group (on SQLite, two at once stall Jobmon's server on
#: "database is locked" for up to 25 s): the scheduling writes, binds and batches, one after
#: the other as Jobmon's ``Scheduler.tick`` sends them; run-status updates apart.
SERIALIZED_WRITES: tuple[tuple[Route, ...], ...] = ((BIND_RESOURCES, QUEUE_TASK_BATCH), (UPDATE_RUN_STATUS,))

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
    "parse_queue",
    "parse_run_status",
    "parse_server_time",
    "parse_status_updates",
    "parse_task_rows",
    "parse_tasks_by_status",
    "parse_terminated",
]

if TYPE_CHECKING:  # ``requests`` is imported only for a caller's session: the CLI starts fast.
    import requests

#: Core commands the gateway answers.
SERVER_COMMANDS: tuple[type, ...] = tuple(COMMAND_ROUTES)


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


class JobmonGateway:
    """Speaks the Jobmon v3 routes the swarm uses. Thread-safe: ``execute`` may be called
    from many threads at once (one shared connection pool: ``shell/http/wire.py``).

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
        unreachable_after: float | None = None,
        max_parallel_requests: int | None = None,
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
        #: The run-level bound: a route that has not been answered with success for this many
        #: seconds (default: the retry policy's seconds, Jobmon's 300) means the server is gone
        #: or no longer knows the run. ``gone`` then says why, and every request stops.
        self.unreachable_after = policy.max_seconds if unreachable_after is None else unreachable_after
        self.gone: str | None = None
        #: The outcome's reason once ``gone`` is set.
        self.gone_reason = "server_unreachable"
        self._last_success: dict[str, float] = {}
        if max_parallel_requests is not None and max_parallel_requests < 1:
            raise ValueError(f"max_parallel_requests must be >= 1, got {max_parallel_requests}")
        #: At most this many requests on the wire at once, all lanes together (None: no cap).
        self.max_parallel_requests = max_parallel_requests
        self._slots = (
            None if max_parallel_requests is None else threading.BoundedSemaphore(max_parallel_requests)
        )
        #: One lock per group of ``SERIALIZED_WRITES``, shared by the group's routes.
        self._write_locks: dict[Route, threading.Lock] = {}
        for group in SERIALIZED_WRITES:
            lock = threading.Lock()
            self._write_locks.update(dict.fromkeys(group, lock))
        from swarmfold import __version__

        #: How each attempt goes over the wire (``shell/http/wire.py``): http.client connections, or
        #: the caller's ``requests.Session`` (then it is the caller's to close).
        self.wire: Wire
        self._own_wire = session is None
        if session is None:
            # Like Jobmon's aiohttp session (trust_env=False): no proxy variables or ~/.netrc
            # lookups. Pass your own ``requests.Session`` to use them.
            self.wire = ConnectionWire(pool_size=pool_size, user_agent=f"swarmfold/{__version__}")
        else:
            session.headers.setdefault("User-Agent", f"swarmfold/{__version__}")
            self.wire = SessionWire(session)
        self._cancel = threading.Event()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._lock = threading.Lock()
        self.queues = QueueDirectory(self._ask)
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
        if self._own_wire:
            self.wire.close()

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
                with self._slot(route):
                    status, content = self.wire.send(method, self.url(path), query, body, self.timeout)
            except UndecodableBody as exc:
                self._report(route, attempt, None, t0, f"undecodable body: {exc}", False)
                raise _Failed(
                    f"{route}: the response body cannot be decoded (Content-Encoding): "
                    f"{excerpt(str(exc), 160)}"
                ) from None
            except WireDown as exc:
                last = str(exc)
            except RequestNotSent as exc:
                self._report(route, attempt, None, t0, str(exc), False)
                raise _Failed(f"{route}: request failed: {exc}") from None
            else:
                duration = time.monotonic() - t0
                if 200 <= status < 300:
                    self._last_success[template] = time.monotonic()
                    self._report(route, attempt, status, t0, "", False)
                    try:
                        decoded = loads(content) if content.strip() else None
                    except (ValueError, UnicodeDecodeError) as exc:
                        raise _Failed(
                            f"{route}: HTTP {status}: $: invalid JSON in the response body: "
                            f"{json_error(exc)}; body starts {shown(content[:80])}"
                        ) from None
                    return _Response(decoded, duration, status, route)
                detail = excerpt(content.decode("utf-8", "replace"))
                if not retryable_status(status):
                    self._report(route, attempt, status, t0, detail, False)
                    answered = f"HTTP {status}: {detail or '(empty body)'}"
                    if forgotten(status, detail):  # an answer that will never change
                        self._forgot(route, answered)
                    else:
                        self._judge(template, route, answered, started, max_seconds)
                    raise _Failed(f"{route}: HTTP {status} (not retried): {detail or '(empty body)'}")
                last = f"HTTP {status}: {detail or '(empty body)'}"
            self._judge(template, route, last, started, max_seconds)
            elapsed = time.monotonic() - started
            delay = self._jitter(attempt)
            if LOCKED in last:  # a SQLite lock clears in milliseconds: retry promptly
                delay = min(delay, LOCK_RETRY_SECONDS * attempt)
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

    def _forgot(self, route: str, answered: str) -> None:
        """An answer that will never change: the server no longer knows what the run refers
        to. Every request stops now (``gone``); the run ends with ``server_forgot_run``."""
        if self.gone is None:
            self.gone = (
                f"the server at {self.base_url} no longer knows what the run refers to (restarted "
                f"without its data?); last request {route}: {answered}"
            )
            self.gone_reason = "server_forgot_run"
            self._cancel.set()

    @contextlib.contextmanager
    def _slot(self, route: str) -> Iterator[None]:
        """One of the ``max_parallel_requests`` slots for the time of one attempt."""
        slots = self._slots
        if slots is None:
            yield
            return
        while not slots.acquire(timeout=0.05):
            if self._cancel.is_set():
                raise _Failed(f"{route}: cancelled (the runner is stopping) while waiting for a request slot")
        try:
            yield
        finally:
            slots.release()

    def _judge(self, template: str, route: str, failure: str, started: float, budget: float) -> None:
        """The run-level bound: raise ``_Failed`` (and stop every request) once ``template`` has
        had no successful answer for ``unreachable_after`` seconds (counted from its first
        request when it never had one). Within one request whose own retry budget is not
        longer, that budget decides alone (its failure is the core's to handle)."""
        now = time.monotonic()
        since = self._last_success.setdefault(template, started)
        judged = since < started or self.unreachable_after < budget
        if self.gone is None and judged and now - since > self.unreachable_after:
            self.gone = (
                f"the server at {self.base_url} answered no {template} request with success for "
                f"{now - since:.0f} s (limit {self.unreachable_after:g} s); last request {route}: {failure}"
            )
            self._cancel.set()
        if self.gone is not None:
            raise _Failed(f"{route}: {self.gone}")

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
        route = FETCH_WORKFLOW_METADATA
        try:
            r = self._request(route.method, route.path(workflow_id=workflow_id), route.label)
            result: WorkflowMetadata | None = r.parse(parse_metadata)
            return result
        except _Failed as exc:
            raise GatewayError(str(exc)) from None

    def server_time(self) -> str:
        """``GET /time`` -> the server's time string. Raises ``GatewayError``."""
        try:
            result: str = self._request(TIME.method, TIME.path(), TIME.label).parse(parse_server_time)
            return result
        except _Failed as exc:
            raise GatewayError(str(exc)) from None

    def done_task_count(self, workflow_id: int) -> int:
        """How many of the workflow's tasks are DONE: one full status sync
        (``task_status_updates`` with ``{}`` lists every task). Raises ``GatewayError``."""
        route = TASK_STATUS_UPDATES
        try:
            r = self._request(route.method, route.path(workflow_id=workflow_id), route.label, body={})
            tasks, _ = r.parse(parse_status_updates)
            return len(tasks.get("D", ()))
        except _Failed as exc:
            raise GatewayError(str(exc)) from None

    def call(self, route: Route, body: Any = None, query: dict[str, Any] | None = None, **params: Any) -> Any:
        """One request on ``route`` (path parameters as keywords) with the usual retries and
        run-level bound; the decoded JSON answer. Raises ``GatewayError``. For the requests
        outside the swarm's loop (a resume's preparation)."""
        try:
            r = self._request(route.method, route.path(**params), route.label, body=body, params=query)
            return r.body
        except _Failed as exc:
            raise GatewayError(str(exc)) from None

    # --- commands -> events ------------------------------------------------------------------

    def execute(self, command: Command) -> Event:
        """Carry out one server command; answer with its event. Never raises for a server
        command (``COMMAND_ROUTES``); any other command is a caller bug (``TypeError``).

        The request, the answer's parser and the answer event come from the route table
        (``shell/http/routes.py``), the failure event from the protocol (``core/protocol.py``).
        """
        spec = COMMAND_ROUTES.get(type(command))
        if spec is None:
            raise TypeError(f"JobmonGateway.execute: {type(command).__name__} does not talk to the server")
        try:
            if isinstance(command, LoadQueues):
                return self.queues.load_queues(command, self.clock())
            if isinstance(command, BindResources) and command.queue_id == 0 and self.resolve_queue_ids:
                command = attrs.evolve(command, queue_id=self.queues.queue_id(command.queue))
            request = spec.request(command)
            lock = self._write_locks.get(spec.route)
            with lock if lock is not None else contextlib.nullcontext():
                r = self._request(
                    request.method, request.path, spec.route.label, body=request.body,
                    params=dict(request.query) or None,
                    budget=None if spec.budget is None else spec.budget(command),
                )
            event = spec.answer(command, self.clock(), r.parse(spec.parse), r.duration)
            if isinstance(event, TaskChunkLoaded):
                self.queues.learn(event.tasks)
            return event
        except _Failed as exc:
            return protocol_failure(command, self.clock(), str(exc))
        except Exception as exc:  # never let a surprise escape: it becomes the failure event
            return protocol_failure(
                command, self.clock(),
                f"{type(command).__name__}: internal error in the gateway: {type(exc).__name__}: {exc}",
            )

    def _ask(self, route: Route, parser: Callable[..., Any], **params: Any) -> Any:
        """Send one bodiless request on ``route`` and parse its answer (for the queue directory)."""
        return self._request(route.method, route.path(**params), route.label).parse(parser)


def failure_event(command: Command, at: float, error: str) -> Event:
    """The failure event that answers ``command`` (a server command) with ``error``."""
    if type(command) not in COMMAND_ROUTES:
        raise TypeError(f"{type(command).__name__} does not talk to the server")
    return protocol_failure(command, at, error)
