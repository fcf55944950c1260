"""One HTTP attempt on the wire, and how it can fail.

``JobmonGateway`` sends every attempt through a *wire*: ``send(method, url, query, body,
timeout) -> (status, body bytes)``. A wire never retries; the gateway's loop does (its
retry policy, budget and reports live in ``shell/http/gateway.py``).

- ``ConnectionWire`` (the default) sends through the standard library's ``http.client``
  connections, kept alive in a pool of its own: on loopback, 160 µs of client CPU a
  request against urllib3's 280-320 and ``requests``' 700-800 (docs/performance.md). Its
  responses read their header fields without the ``email`` package (``_LeanResponse``),
  70 of the 220 µs ``http.client`` spends on a request on this project's CI machine.
- ``SessionWire`` sends through a caller's ``requests.Session`` (``JobmonGateway(session=...)``),
  for proxies, certificates or authentication configured on it. (``ConnectionWire`` reads
  no proxy variables, and checks HTTPS certificates against the system's store, where
  ``requests`` uses ``certifi``'s bundle.)

Failures are told apart for the retry loop: ``WireDown`` (no answer: connect or read
timeout, refused or broken connection; retried), ``UndecodableBody`` (an answer whose
``Content-Encoding`` cannot be decoded; not retried) and ``RequestNotSent`` (the request
itself cannot be made, e.g. a body that is not JSON; not retried).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import types
import zlib
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

from swarmfold.shell.http.transport import excerpt
from swarmfold.shell.json_text import dumps_body

if TYPE_CHECKING:
    import requests

__all__ = [
    "MAX_REDIRECTS",
    "ConnectionWire",
    "RequestNotSent",
    "SessionWire",
    "UndecodableBody",
    "Wire",
    "WireDown",
]


class WireDown(Exception):
    """No answer came: ``str`` says which way (``connect timeout: ...``, ``read timeout: ...``,
    ``connection error: ...``, ``connection broken mid-response: ...``). Retried."""


class UndecodableBody(Exception):
    """The answer's body cannot be decoded (its ``Content-Encoding`` is corrupt). Not retried."""


class RequestNotSent(Exception):
    """The request cannot be made at all (a bad URL, a body that is not JSON). Not retried."""


class Wire(Protocol):
    """Sends one attempt; raises ``WireDown``, ``UndecodableBody`` or ``RequestNotSent``."""

    def send(
        self, method: str, url: str, query: Mapping[str, Any], body: Any,
        timeout: float | tuple[float, float],
    ) -> tuple[int, bytes]: ...

    def close(self) -> None: ...


def _down(kind: str, exc: BaseException) -> WireDown:
    text = str(exc)
    # requests' messages (urllib3's) repeat the pool repr; keep the informative tail.
    if "Caused by" in text:
        text = text[text.index("Caused by"):]
    return WireDown(f"{kind}: {excerpt(text, 160)}")


class ConnectionWire:
    """The standard library's ``http.client`` connections, kept alive in a pool (at most
    ``pool_size`` idle ones per host); redirects followed as ``requests`` follows them, gzip
    and deflate answers decoded. Thread-safe: each attempt holds a connection of its own.

    An idle connection the server has closed in the meantime is found before it is used (its
    socket reads as ready) and replaced, so a kept-alive connection never costs a retry."""

    def __init__(self, *, pool_size: int, user_agent: str) -> None:
        self._headers = {
            "User-Agent": user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept": "*/*",
            "Connection": "keep-alive",
        }
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._pool_size = pool_size
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def send(
        self, method: str, url: str, query: Mapping[str, Any], body: Any,
        timeout: float | tuple[float, float],
    ) -> tuple[int, bytes]:
        data: bytes | None = None
        headers = self._headers
        if body is not None and method in ("POST", "PUT"):
            try:
                data = dumps_body(body)
            except (TypeError, ValueError) as exc:
                raise RequestNotSent(f"the body is not JSON: {exc}") from None
            headers = self._json_headers
        if query:
            url = f"{url}?{urlencode(query, doseq=True)}"
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        for _ in range(MAX_REDIRECTS + 1):
            status, content, encoding, location = self._attempt(
                method, url, data, headers, connect, read
            )
            if status not in _REDIRECTS or location is None:
                return status, _decoded(content, encoding)
            url = urljoin(url, location)
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, data, headers = "GET", None, self._headers  # as browsers and requests do
        raise RequestNotSent(f"more than {MAX_REDIRECTS} redirects, the last to {url}")

    def _attempt(
        self, method: str, url: str, data: bytes | None, headers: Mapping[str, str],
        connect: float, read: float,
    ) -> tuple[int, bytes, str, str | None]:
        """One request and its whole answer: ``(status, raw body, Content-Encoding, Location)``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RequestNotSent(f"not an http(s) URL: {url!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise RequestNotSent(f"bad port in {url!r}: {exc}") from None
        key = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._take(key, connect)
        try:
            conn.sock.settimeout(read)  # connected by _take
            try:
                conn.request(method, target, body=data, headers=headers)
                response = conn.getresponse()
            except (ValueError, http.client.InvalidURL) as exc:  # e.g. a URL that is not ASCII
                raise RequestNotSent(f"cannot send {method} {excerpt(url, 120)}: {_named(exc)}") from None
            except TimeoutError as exc:
                raise WireDown(f"read timeout: {exc or 'no answer in time'} ({read:g} s)") from None
            except (OSError, http.client.HTTPException) as exc:
                raise WireDown(f"connection error: {_named(exc)}") from None
            try:
                content = response.read()
            except TimeoutError as exc:
                raise WireDown(f"read timeout: {exc or 'the answer stopped'} ({read:g} s)") from None
            except (OSError, http.client.HTTPException) as exc:
                raise WireDown(f"connection broken mid-response: {_named(exc)}") from None
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._give_back(key, conn)
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        return response.status, content, encoding, response.getheader("Location")

    def _take(self, key: tuple[str, str, int], connect: float) -> http.client.HTTPConnection:
        """An idle connection to ``key`` that is still open, or a new one, connected."""
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                kept = idle.pop()
                if kept.sock is not None and not _dropped(kept.sock):
                    return kept
                kept.close()
        scheme, host, port = key
        conn: http.client.HTTPConnection
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            conn = http.client.HTTPSConnection(host, port, timeout=connect, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect)
        conn.response_class = _LeanResponse
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            why = exc or "no answer in time"
            raise WireDown(f"connect timeout: {host}:{port}: {why} ({connect:g} s)") from None
        except OSError as exc:
            conn.close()
            raise WireDown(f"connection error: {host}:{port}: {_named(exc)}") from None
        return conn

    def _give_back(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._pool_size:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection (a later request opens new ones)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


class HeaderFields:
    """A response's header fields as ``http.client`` and this wire read them (``get``,
    ``get_all``, ``items``), names matched in any case; the stand-in for the ``email``
    package's ``HTTPMessage``."""

    __slots__ = ("_fields",)

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field named ``name``'s value, as ``HTTPMessage.get`` gives it."""
        key = name.lower()
        return next((value for field, value in self._fields if field.lower() == key), default)

    def get_all(self, name: str, default: Any = None) -> list[str] | Any:
        key = name.lower()
        values = [value for field, value in self._fields if field.lower() == key]
        return values or default

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)


#: ``http.client``'s limits on a header line's length and on the number of header lines.
_MAX_LINE: int = getattr(http.client, "_MAXLINE", 65536)
_MAX_HEADERS: int = getattr(http.client, "_MAXHEADERS", 100)


def read_header_fields(fp: IO[bytes], _class: Any = None) -> HeaderFields:
    """``http.client.parse_headers`` without the ``email`` package: the lines up to the
    blank one, with its limits (line length, field count), each ``Name: value`` kept as the
    email package keeps it; a folded line continues the field before it (joined with a
    space); a line without a colon is dropped (the email parser keeps it as a defect,
    unread)."""
    fields: list[tuple[str, str]] = []
    count = 0
    while True:
        line = fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        count += 1
        if count > _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return HeaderFields(fields)
        text = line.decode("iso-8859-1")
        if text[:1] in (" ", "\t"):
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {text.strip()}".strip())
            continue
        name, colon, value = text.partition(":")
        if colon:  # as the email package keeps it: the name as written, the value's left end stripped
            fields.append((name, value.lstrip(" \t").rstrip("\r\n")))


def _lean_begin() -> Callable[..., None] | None:
    """``HTTPResponse.begin`` reading its header fields with ``read_header_fields``: the
    standard library's own code, its ``parse_headers`` name bound to ours. ``None`` when this
    Python's ``begin`` does not read its headers through that name (then responses stay
    stock)."""
    begin = http.client.HTTPResponse.begin
    code = getattr(begin, "__code__", None)
    if code is None or "parse_headers" not in code.co_names:
        return None
    namespace = dict(vars(http.client), parse_headers=read_header_fields)
    return types.FunctionType(code, namespace, begin.__name__, begin.__defaults__, begin.__closure__)


class _LeanResponse(http.client.HTTPResponse):
    """``http.client``'s response, its header fields read by ``read_header_fields``."""


_BEGIN = _lean_begin()
if _BEGIN is not None:
    _LeanResponse.begin = _BEGIN  # type: ignore[method-assign]


#: Redirects followed for one attempt, as ``requests`` does.
MAX_REDIRECTS = 30
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive socket that reads as ready has been closed by the server (or has
    sent something unasked): either way it cannot carry the next request. ``poll`` where
    there is one (``select`` cannot watch a descriptor past 1,023)."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _decoded(content: bytes, encoding: str) -> bytes:
    """The body under its ``Content-Encoding`` (gzip, deflate, identity; another is left as
    it came, as urllib3 and requests leave it); ``UndecodableBody`` when it is corrupt."""
    if not content or encoding in ("", "identity"):
        return content
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(content)
            except zlib.error:
                return zlib.decompress(content, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error as exc:
        raise UndecodableBody(f"{encoding} body: {exc}") from None
    return content


def _named(exc: BaseException) -> str:
    text = excerpt(str(exc), 160)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SessionWire:
    """A caller's ``requests.Session``; what it raises is sorted the same way."""

    def __init__(self, session: requests.Session) -> None:
        self.session = session

    def send(
        self, method: str, url: str, query: Mapping[str, Any], body: Any,
        timeout: float | tuple[float, float],
    ) -> tuple[int, bytes]:
        import requests

        try:
            response = self.session.request(
                method, url, params=query, json=body if method in ("POST", "PUT") else None,
                timeout=timeout,
            )
            return response.status_code, response.content
        except requests.exceptions.ContentDecodingError as exc:
            raise UndecodableBody(str(exc)) from None
        except requests.exceptions.ConnectTimeout as exc:
            raise _down("connect timeout", exc) from None
        except requests.Timeout as exc:
            raise _down("read timeout", exc) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            raise _down("connection broken mid-response", exc) from None
        except requests.ConnectionError as exc:
            raise _down("connection error", exc) from None
        except requests.RequestException as exc:
            raise RequestNotSent(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self.session.close()
