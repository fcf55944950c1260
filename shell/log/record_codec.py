"""Fast paths over the codec for event-log records: the same bytes, fewer Python steps.

A big run's records are mostly task-id lists (QueueBatch.task_ids, tasks_by_status) and,
when a run attaches over HTTP, the task and edge rows of its bootstrap pages. The codec
(un)structures them item by item through cattrs hooks; here fields whose JSON form is the
value itself are passed straight to ``json`` (which writes tuples as arrays), and such lists
are checked in bulk when read. Rows (``tuple[TaskRow, ...]``) are written as text, a
column per field; their nested values (resource tuples, shared by thousands of rows) go
through the codec once per distinct object, remembered by identity (never by equality:
``("cores", 1)`` equals ``("cores", 1.0)`` but is written differently). The bytes are
exactly the codec's (tested); anything else, and every decoding error, goes through the
codec itself.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from itertools import chain
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import Any

import attrs

from swarmfold.core.commands import COMMAND_TYPES
from swarmfold.core.events import EVENT_TYPES, TasksByStatus
from swarmfold.core.id_array import IdArray
from swarmfold.shell.log.codec import (
    TAG,
    CodecError,
    converter,
    ints_only,
    unstructure,
)
from swarmfold.shell.log.id_runs import compact_by_status, compact_ids, expand_ids

__all__ = ["decode_value", "dumps", "encode_value", "record_text"]

_MEMBERS = frozenset(EVENT_TYPES) | frozenset(COMMAND_TYPES)


_PLAIN = 0  # the value is its own JSON form
_FLOAT = 1  # float field: the codec always writes a float
_OPT_FLOAT = 2
_CODEC = 3  # anything else: the codec's hook for the field's type
_ROWS = 4  # tuple[<attrs class>, ...]: each row by the row class's own plan
_ID_LIST = 5  # tuple[int, ...]: plain, or as runs when long (shell/log/id_runs.py)
_ID_MAP = 6  # TasksByStatus: each list as _ID_LIST

_IDS = tuple[int, ...]
_BY_STATUS = TasksByStatus  # read-only, a FrozenDict
_PLAIN_TYPES: tuple[Any, ...] = (int, str, bool, int | None, str | None, _IDS, _BY_STATUS)

_Plan = tuple[tuple[str, int, Any], ...]
_ENCODE_PLANS: dict[type, tuple[str, _Plan]] = {}
_DECODE_PLANS: dict[type, tuple[_Plan, frozenset[str]] | None] = {}


def _field_kinds(cls: type) -> _Plan:
    hints = typing.get_type_hints(cls)
    plan = []
    for f in attrs.fields(cls):
        t = hints[f.name]
        plain = next((p for p in _PLAIN_TYPES if t == p), None)
        if plain is not None:
            plan.append((f.name, _PLAIN, plain))  # the canonical object: compared by identity
        elif t is float:
            plan.append((f.name, _FLOAT, t))
        elif t == float | None:
            plan.append((f.name, _OPT_FLOAT, t))
        else:
            plan.append((f.name, _CODEC, t))
    return tuple(plan)


def _row_class(t: Any) -> type | None:
    """``X`` when ``t`` is ``tuple[X, ...]`` of an attrs class ``X``."""
    args = typing.get_args(t)
    if typing.get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis:
        row = args[0]
        if isinstance(row, type) and attrs.has(row):
            return row
    return None


#: Values encoded by the codec, by ``id``; each entry keeps its object alive, so an id is
#: never reused while it is here.
_ENCODED: dict[int, tuple[Any, Any]] = {}
_MAX_ENCODED = 4096


def _encoded_once(value: Any, hook: Callable[[Any], Any]) -> Any:
    """``hook(value)``, computed once per object (the JSON is only dumped, never changed)."""
    hit = _ENCODED.get(id(value))
    if hit is None or hit[0] is not value:
        if len(_ENCODED) >= _MAX_ENCODED:
            _ENCODED.clear()
        hit = _ENCODED[id(value)] = (value, hook(value))
    return hit[1]


class _Rows:
    """Rows of one attrs class (``tuple[TaskRow, ...]``) written straight as JSON text, one
    C-level pass per field; ``data`` is the codec's hook for the whole field (the plain way)."""

    def __init__(self, field_type: Any, row_cls: type) -> None:
        self.row_cls = row_cls
        self.data = converter.get_unstructure_hook(field_type)
        # JSON keys are sorted: the text columns go in key order.
        self.by_key = sorted(
            (name, kind, t, attrgetter(name), converter.get_unstructure_hook(t) if kind == _CODEC else None)
            for name, kind, t in _field_kinds(row_cls)
        )

    def text(self, rows: Any) -> str | None:
        """The rows' JSON array, or ``None`` when a row is not of the class (``data`` then
        goes through the codec)."""
        if set(map(type, rows)) != {self.row_cls}:
            return None if rows else "[]"
        formats: list[str] = []
        columns: list[Any] = []
        for name, kind, t, get, hook in self.by_key:
            column = list(map(get, rows))
            spec = "%s"
            if kind == _PLAIN and t is int and ints_only(column):
                spec = "%d"
            elif kind == _PLAIN and t is str and set(map(type, column)) == {str}:
                column = list(map(encode_basestring_ascii, column))
            elif kind == _PLAIN and t is _IDS and _int_tuples(column):
                # One dumps for the whole column (``[[1,2],[],[3]]``), cut between the rows.
                spec = "[%s]"
                column = json.dumps(column, separators=(",", ":"))[2:-2].split("],[")
            elif kind == _PLAIN:
                column = list(map(dumps, column))
            elif kind in (_FLOAT, _OPT_FLOAT):
                column = [dumps(None if v is None else float(v)) for v in column]
            else:
                assert hook is not None
                distinct = {id(v): v for v in column}
                texts = {k: dumps(_encoded_once(v, hook)) for k, v in distinct.items()}
                column = [texts[id(v)] for v in column]
            formats.append(f"{dumps(name)}:{spec}")
            columns.append(column)
        row_format = "{" + ",".join(formats) + "}"
        return "[" + ",".join(map(row_format.__mod__, zip(*columns, strict=True))) + "]"


def _int_tuples(column: list[Any]) -> bool:
    """Every item is a tuple of ints (an edge row's downstream ids), checked in C."""
    return set(map(type, column)) == {tuple} and ints_only(chain.from_iterable(column))


def dumps(data: Any, default: Callable[[Any], Any] | None = None) -> str:
    """The log's JSON: sorted keys, compact (``default`` as ``json.dumps`` takes it)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=default)


def _encode_plan(cls: type) -> tuple[str, _Plan]:
    plan: list[tuple[str, int, Any]] = []
    for name, kind, t in _field_kinds(cls):
        row_cls = _row_class(t) if kind == _CODEC else None
        if row_cls is not None:
            plan.append((name, _ROWS, _Rows(t, row_cls)))
        elif t is _IDS or t is _BY_STATUS:
            plan.append((name, _ID_LIST if t is _IDS else _ID_MAP, None))
        else:
            plan.append((name, kind, converter.get_unstructure_hook(t) if kind == _CODEC else None))
    return cls.__name__, tuple(plan)


class _RawRows:
    """Stands in a record for rows already written as JSON text (``record_text``)."""


_RAW = _RawRows()
#: What ``_RAW`` is dumped as before the rows' text replaces it; a string that happens to
#: hold the same text makes ``record_text`` write the record the plain way instead.
_RAW_TOKEN = "\x00swarmfold rows\x00"
_RAW_DUMPED = json.dumps(_RAW_TOKEN)


def _raw_default(value: Any) -> Any:
    if value is _RAW:
        return _RAW_TOKEN
    raise TypeError(f"{type(value).__name__} is not JSON")


def encode_value(obj: Any, raw_rows: list[str] | None = None) -> Any:
    """The codec's ``unstructure(obj)`` for an event or command, without per-item hooks.

    With ``raw_rows``, rows fields are written as JSON text appended there, and stand in
    the data as a placeholder (``record_text`` puts the text in its place)."""
    cls = type(obj)
    entry = _ENCODE_PLANS.get(cls)
    if entry is None:
        if cls not in _MEMBERS:
            return unstructure(obj)  # the codec names the problem
        entry = _ENCODE_PLANS[cls] = _encode_plan(cls)
    name, plan = entry
    out: dict[str, Any] = {TAG: name}
    for field, kind, hook in plan:
        value = getattr(obj, field)
        if kind == _PLAIN:
            out[field] = value
        elif kind == _ID_LIST:
            out[field] = compact_ids(value)
        elif kind == _ID_MAP:
            out[field] = compact_by_status(value)
        elif kind == _FLOAT:
            out[field] = float(value)
        elif kind == _OPT_FLOAT:
            out[field] = None if value is None else float(value)
        elif kind == _ROWS:
            text = None if raw_rows is None else hook.text(value)
            if raw_rows is None or text is None:
                out[field] = hook.data(value)
            else:
                raw_rows.append(text)
                out[field] = _RAW
        else:
            assert hook is not None  # _CODEC fields always carry their hook
            out[field] = hook(value)
    return out


def record_text(seq: int, runner_id: str, event: Any, commands: Any) -> str:
    """One log record as the codec writes it (sorted keys, compact), without its newline."""
    raw_rows: list[str] = []
    text = dumps(_record(seq, runner_id, event, commands, raw_rows), default=_raw_default)
    if not raw_rows:
        return text
    pieces = text.split(_RAW_DUMPED)
    if len(pieces) != len(raw_rows) + 1:  # the token also stands in a string of the record
        return dumps(_record(seq, runner_id, event, commands, None))
    out = [pieces[0]]
    for rows, piece in zip(raw_rows, pieces[1:], strict=True):
        out += (rows, piece)
    return "".join(out)


def _record(
    seq: int, runner_id: str, event: Any, commands: Any, raw_rows: list[str] | None
) -> dict[str, Any]:
    """The record's data; with ``raw_rows``, rows stand in it as placeholders (``encode_value``)."""
    return {
        "commands": [encode_value(c, raw_rows) for c in commands],
        "event": encode_value(event, raw_rows),
        "runner_id": runner_id,
        "seq": seq,
    }


def _int_list(value: Any) -> bool:
    return type(value) is list and ints_only(value)


class _Slow(Exception):
    """The fast decoder declines; the codec decodes (or names the error)."""


def _decode_plan(cls: type) -> tuple[_Plan, frozenset[str]] | None:
    if cls not in _DECODE_PLANS:
        plan = _field_kinds(cls)
        fast = all(kind != _CODEC for _, kind, _ in plan)
        _DECODE_PLANS[cls] = (plan, frozenset([TAG, *(n for n, _, _ in plan)])) if fast else None
    return _DECODE_PLANS[cls]


def _fast_value(name: str, kind: int, t: Any, value: Any) -> Any:
    if kind == _FLOAT or (kind == _OPT_FLOAT and value is not None):
        if type(value) is float:
            return value
        if type(value) is int:
            return float(value)
        raise _Slow
    if kind == _OPT_FLOAT:
        return None
    if t is _IDS:
        if _int_list(value):
            return tuple(value)
        if type(value) is dict:
            return _expand_at(f".{name}", value)
        raise _Slow
    if t is _BY_STATUS:
        if type(value) is dict and all(
            type(k) is str and (_int_list(v) or type(v) is dict) for k, v in value.items()
        ):
            return {
                k: tuple(v) if type(v) is list else _expand_at(f".{name}[{k!r}]", v) for k, v in value.items()
            }
        raise _Slow
    if value is None:
        if t in (int | None, str | None):
            return None
        raise _Slow
    if type(value) is (t if isinstance(t, type) else typing.get_args(t)[0]):
        return value
    raise _Slow


def _expand_at(where: str, value: dict[str, Any]) -> tuple[int, ...] | IdArray:
    """``expand_ids(value)``, its errors' paths prefixed with ``where`` (``.task_ids``)."""
    try:
        return expand_ids(value)
    except CodecError as exc:
        raise CodecError([f"${where}{line[1:]}" for line in exc.errors]) from None


def _plain_ids(plan: _Plan, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every id runs object of its id fields expanded, for the codec."""
    out = dict(data)
    for name, _, t in plan:
        value = out.get(name)
        if t is _IDS and type(value) is dict:
            out[name] = _expand_at(f".{name}", value)
        elif t is _BY_STATUS and type(value) is dict:
            out[name] = {
                k: _expand_at(f".{name}[{k!r}]", v) if type(v) is dict else v for k, v in value.items()
            }
    return out


def decode_value(data: Any, union: dict[str, type], slow: Any) -> Any:
    """``slow(data)`` (the codec), faster for records made only of plain fields. Id lists
    may be runs objects (``shell/log/id_runs.py``); the codec gets them expanded."""
    if type(data) is dict:
        cls = union.get(data.get(TAG))  # type: ignore[arg-type]
        entry = None if cls is None else _decode_plan(cls)
        if entry is not None and cls is not None:
            plan, keys = entry
            if data.keys() == keys:
                try:
                    return cls(**{name: _fast_value(name, kind, t, data[name]) for name, kind, t in plan})
                except _Slow:
                    pass
            data = _plain_ids(plan, data)
    return slow(data)
