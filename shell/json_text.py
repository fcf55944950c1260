"""JSON on the shell's hot paths: server answers read, request bodies and event-log records
written, event logs read.

``orjson`` parses a 500-task ``get_tasks`` page in 40 % of the standard library's time and
dumps event-log records in a seventh (docs/performance.md, tenth section), so
the HTTP gateway and wire and the event log go through here. Everything else (scenarios,
reports, the server model's answers) keeps the standard library's ``json``.

Nothing the standard library accepted is refused, and nothing is written differently in
meaning:

- ``loads`` falls back to ``json.loads`` on any input orjson refuses. The standard library
  accepts a little more (``NaN`` and ``Infinity``, lone surrogate escapes); such input reads
  exactly as before, and input neither accepts raises the standard library's
  ``JSONDecodeError`` (or ``UnicodeDecodeError``), with its message. orjson would read an
  integer past 64 bits as a float, silently: input with a run of 19 digits or more (where
  every such integer is) is read by the standard library too. Finding such a run costs a
  sixth of orjson's parse (one ``bytes.translate`` and one substring search).
- ``dumps_sorted`` writes what ``json.dumps(data, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False)`` writes, up to how a float is spelled (``1e+16`` is ``1e16``). orjson
  would write a non-finite float (``NaN``) as ``null``, so data holding one is written by
  the standard library instead (``NaN``, read back by ``loads``); ``finite`` tells. So is
  data orjson refuses (an integer past 64 bits).
- ``dumps_body`` means what ``json.dumps(data, allow_nan=False)`` means: orjson's text unless
  it holds a ``null`` (a ``None``, or a NaN it wrote so) or orjson refuses the data; then the
  standard library writes it, or raises its ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["dumps_body", "dumps_sorted", "finite", "loads"]

_SORTED = orjson.OPT_SORT_KEYS


#: ``bytes.translate`` table: every digit to ``0``, every other byte to a space.
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
#: The shortest integer past 64 bits (``-9223372036854775809``) has 19 digits.
_LONG_RUN = b"0" * 19


def loads(data: bytes | str) -> Any:
    """The JSON value of ``data`` (UTF-8 bytes or text), as ``json.loads`` reads it."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: only the standard library reads it
            return json.loads(data)
    else:
        raw = data
    if _LONG_RUN not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data if isinstance(data, str) else raw.decode("utf-8"))


def dumps_sorted(data: Any, default: Callable[[Any], Any] | None = None, *, all_finite: bool = True) -> bytes:
    """``data`` as compact UTF-8 JSON with sorted keys. ``all_finite=False`` (the caller found
    a non-finite float with ``finite``) writes it with the standard library, ``NaN`` and all,
    as is data orjson refuses; what neither can write raises the standard library's error."""
    if all_finite:
        try:
            return orjson.dumps(data, default=default, option=_SORTED)
        except TypeError:  # an integer past 64 bits, or what neither can write (raised below)
            pass
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)
    return text.encode("utf-8")


def dumps_body(data: Any) -> bytes:
    """A request body: what ``json.dumps(data, allow_nan=False)`` means, as UTF-8 bytes
    (``ValueError`` for a non-finite float, ``TypeError`` for what is not JSON). orjson
    writes it unless its text holds a ``null`` (a ``None``, or a NaN it would have written
    so) or it refuses the data; then the standard library writes it, or raises."""
    try:
        written = orjson.dumps(data)
    except TypeError:  # an integer past 64 bits, or what neither can write (raised below)
        pass
    else:
        if b"null" not in written:
            return written
    return json.dumps(data, allow_nan=False).encode("utf-8")


def finite(data: Any) -> bool:
    """No float anywhere in ``data`` (dicts, lists and tuples, walked) is NaN or infinite."""
    kind = type(data)
    if kind is float:
        return math.isfinite(data)
    if kind is dict:
        return all(map(finite, data.values()))
    if kind is list or kind is tuple:
        return all(map(finite, data))
    return True
