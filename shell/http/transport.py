"""The transport's vocabulary: defaults, the retry policy, attempts as reported, and how a
failed answer is described (``shell/http/gateway.py`` retries, ``shell/http/wire.py`` sends)."""

from __future__ import annotations

import json
import random

from attrs import frozen

__all__ = [
    "DEFAULT_CLIENT_VERSION",
    "DEFAULT_ROUTE_PREFIX",
    "DEFAULT_TIMEOUT",
    "LOCKED",
    "LOCK_RETRY_SECONDS",
    "Attempt",
    "GatewayError",
    "RetryPolicy",
    "excerpt",
    "forgotten",
    "json_error",
    "retryable_status",
]

DEFAULT_ROUTE_PREFIX = "/api/v3"
DEFAULT_CLIENT_VERSION = "3.6.0"
#: Seconds to wait for the server (connect and read, each), per attempt.
DEFAULT_TIMEOUT = 20.0

#: A 5xx whose body says this is a database lock (Jobmon's server on SQLite): retried promptly.
LOCKED = "database is locked"
#: The delay before retry k of a locked answer is at most k times this (seconds).
LOCK_RETRY_SECONDS = 0.05



# --- errors --------------------------------------------------------------------------------


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


def excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def forgotten(status: int, detail: str) -> bool:
    """A 4xx that says the server does not know what the request names (an unknown resource,
    task, array or run id: Jobmon answers 404, swarmfold's server 400 ``unknown ...``)."""
    return 400 <= status < 500 and (status == 404 or "unknown" in detail.lower())


def retryable_status(status: int) -> bool:
    return status >= 500 or status == 423


def json_error(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)
