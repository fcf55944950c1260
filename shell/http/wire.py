"""One HTTP attempt on the wire, and how it can fail.

``JobmonGateway`` sends every attempt through a *wire*: ``send(method, url, query, body,
timeout) -> (status, body bytes)``. A wire never retries; the gateway's loop does (its
retry policy, budget and reports live in ``shell/http/gateway.py``).

- ``PooledWire`` (the default) sends through ``urllib3``'s connection pool, the transport
  that ``requests`` itself uses, without ``requests``' per-request session machinery
  (cookie jars, hooks, settings merges, URL re-parsing): about half the client CPU per
  request on loopback (docs/performance.md).
- ``SessionWire`` sends through a caller's ``requests.Session`` (``JobmonGateway(session=...)``),
  for proxies, certificates or authentication configured on it. (``PooledWire`` reads no
  proxy variables, and checks HTTPS certificates against the system's store, where
  ``requests`` uses ``certifi``'s bundle.)

Failures are told apart for the retry loop: ``WireDown`` (no answer: connect or read
timeout, refused or broken connection; retried), ``UndecodableBody`` (an answer whose
``Content-Encoding`` cannot be decoded; not retried) and ``RequestNotSent`` (the request
itself cannot be made, e.g. a body that is not JSON; not retried).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from swarmfold.shell.http.transport import excerpt

if TYPE_CHECKING:
    import requests

__all__ = [
    "PooledWire",
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
    # urllib3 messages repeat the pool repr; keep the informative tail.
    if "Caused by" in text:
        text = text[text.index("Caused by"):]
    return WireDown(f"{kind}: {excerpt(text, 160)}")


class PooledWire:
    """``urllib3.PoolManager`` with keep-alive, no retries of its own, redirects followed (as
    ``requests`` does), gzip answers decoded. Thread-safe."""

    def __init__(self, *, pool_size: int, user_agent: str) -> None:
        import urllib3

        self._urllib3 = urllib3
        self._headers = {
            "User-Agent": user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept": "*/*",
            "Connection": "keep-alive",
        }
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        # Connect and read errors are raised at once (False), any other error after no retry;
        # up to 30 redirects are followed, as requests does.
        self._retries = urllib3.Retry(
            total=None, connect=False, read=False, other=0, status=0, redirect=30, raise_on_redirect=True
        )
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=pool_size, block=False)

    def send(
        self, method: str, url: str, query: Mapping[str, Any], body: Any,
        timeout: float | tuple[float, float],
    ) -> tuple[int, bytes]:
        u3 = self._urllib3
        if query:
            url = f"{url}?{urlencode(query, doseq=True)}"
        data: bytes | None = None
        headers = self._headers
        if body is not None and method in ("POST", "PUT"):
            try:
                data = json.dumps(body, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise RequestNotSent(f"the body is not JSON: {exc}") from None
            headers = self._json_headers
        limit = (
            u3.Timeout(connect=timeout[0], read=timeout[1]) if isinstance(timeout, tuple)
            else u3.Timeout(connect=timeout, read=timeout)
        )
        try:
            response = self._pool.request(
                method, url, body=data, headers=headers, timeout=limit, retries=self._retries,
                preload_content=True, decode_content=True,
            )
        except Exception as exc:
            raise self._sorted(exc) from None
        return response.status, response.data

    def _sorted(self, exc: Exception) -> Exception:
        """What ``exc``, raised by urllib3 for one attempt, means to the retry loop."""
        exceptions = self._urllib3.exceptions
        if isinstance(exc, exceptions.MaxRetryError):
            if exc.reason is None or isinstance(exc.reason, exceptions.ResponseError):
                return RequestNotSent(excerpt(str(exc), 200))  # too many redirects
            exc = exc.reason  # the error itself, once retries were spent (none are allowed)
        if isinstance(exc, exceptions.DecodeError):
            return UndecodableBody(str(exc))
        if isinstance(exc, exceptions.NewConnectionError):  # before ConnectTimeoutError: a subclass
            return _down("connection error", exc)
        if isinstance(exc, exceptions.ConnectTimeoutError):
            return _down("connect timeout", exc)
        if isinstance(exc, exceptions.ReadTimeoutError):
            return _down("read timeout", exc)
        if isinstance(exc, exceptions.ProtocolError):
            broken = "IncompleteRead" in str(exc) or "Connection broken" in str(exc)
            return _down("connection broken mid-response" if broken else "connection error", exc)
        if isinstance(exc, exceptions.LocationValueError | ValueError | TypeError):
            return RequestNotSent(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, exceptions.HTTPError | OSError):
            return _down("connection error", exc)
        return exc  # not the wire's: a bug, which the gateway reports as an internal error

    def close(self) -> None:
        self._pool.clear()


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
