"""Fast paths over the codec for event-log records: the codec's data, fewer Python steps.

A big run's records are mostly task-id lists (QueueBatch.task_ids, tasks_by_status) and,
when a run attaches over HTTP, the task and edge rows of its bootstrap pages. The codec
(un)structures them item by item through cattrs hooks; here fields whose JSON form is the
value itself are passed straight to ``json`` (which writes tuples as arrays), and such lists
are checked in bulk when read. Two log-only forms make records smaller: long id lists as runs
(``id_runs.py``, version 2) and pages of rows as columns (``row_columns.py``, version 3), whose
nested values (resource tuples, shared by thousands of rows) go through the codec once per
distinct object, remembered by identity (never by equality: ``("cores", 1)`` equals
``("cores", 1.0)`` but is written differently). Everything else is exactly the codec's data
(tested), and every decoding error goes through the codec itself or names its path.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from swarmfold.core.commands import COMMAND_TYPES
from swarmfold.core.events import EVENT_TYPES, EdgeRow, TaskRow, TasksByStatus
from swarmfold.core.id_array import IdArray
from swarmfold.shell.json_text import dumps_sorted, finite
from swarmfold.shell.log.codec import (
    TAG,
    CodecError,
    converter,
    ints_only,
    unstructure,
)
from swarmfold.shell.log.id_runs import compact_by_status, compact_ids, expand_ids
from swarmfold.shell.log.row_columns import RowColumns

__all__ = ["decode_value", "dumps", "encode_value", "record_bytes", "record_text"]

_MEMBERS = frozenset(EVENT_TYPES) | frozenset(COMMAND_TYPES)


_PLAIN = 0  # the value is its own JSON form
_FLOAT = 1  # float field: the codec always writes a float
_OPT_FLOAT = 2
_CODEC = 3  # anything else: the codec's hook for the field's type
_ROWS = 4  # Sequence[TaskRow | EdgeRow]: a page of rows, written as columns (row_columns.py)
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


#: The rows of the server's pages (``get_tasks``, ``get_downstream_tasks``): their fields are
#: written as columns.
_PAGE_ROWS = (TaskRow, EdgeRow)


def _row_class(t: Any) -> type | None:
    """``X`` when ``t`` is ``Sequence[X]`` of a page's row class ``X`` (a tuple of rows or
    a ``RowPage``)."""
    args = typing.get_args(t)
    if typing.get_origin(t) is Sequence and len(args) == 1 and args[0] in _PAGE_ROWS:
        return args[0]  # type: ignore[no-any-return]
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


def dumps(data: Any, default: Callable[[Any], Any] | None = None) -> str:
    """The log's JSON: sorted keys, compact (``default`` as ``json.dumps`` takes it)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=default)


def _encode_plan(cls: type) -> tuple[str, _Plan]:
    plan: list[tuple[str, int, Any]] = []
    for name, kind, t in _field_kinds(cls):
        row_cls = _row_class(t) if kind == _CODEC else None
        if row_cls is not None:
            plan.append((name, _ROWS, (_row_columns(row_cls), converter.get_unstructure_hook(t))))
        elif t is _IDS or t is _BY_STATUS:
            plan.append((name, _ID_LIST if t is _IDS else _ID_MAP, None))
        else:
            plan.append((name, kind, converter.get_unstructure_hook(t) if kind == _CODEC else None))
    return cls.__name__, tuple(plan)


def encode_value(obj: Any) -> Any:
    """The log's data for an event or command: the codec's ``unstructure(obj)``, without
    per-item hooks, with long id lists as runs and pages of rows as columns."""
    return _encoded(obj)[0]


def _encoded(obj: Any) -> tuple[Any, bool]:
    """``(encode_value(obj), every float in it is finite)``: only float fields, the codec's
    nested values and the value tables of row pages can hold a float, so only they are
    looked at (``json_text.finite``)."""
    cls = type(obj)
    entry = _ENCODE_PLANS.get(cls)
    if entry is None:
        if cls not in _MEMBERS:
            return unstructure(obj), True  # the codec names the problem
        entry = _ENCODE_PLANS[cls] = _encode_plan(cls)
    name, plan = entry
    out: dict[str, Any] = {TAG: name}
    ok = True
    for field, kind, hook in plan:
        value = getattr(obj, field)
        if kind == _PLAIN:
            out[field] = value
        elif kind == _ID_LIST:
            out[field] = compact_ids(value)
        elif kind == _ID_MAP:
            out[field] = compact_by_status(value)
        elif kind == _FLOAT:
            out[field] = value = float(value)
            ok = ok and finite(value)
        elif kind == _OPT_FLOAT:
            out[field] = value = None if value is None else float(value)
            ok = ok and finite(value)
        elif kind == _ROWS:
            columns, data = hook
            written = columns.encode(value)
            if written is None:
                out[field] = written = data(value)
                ok = ok and finite(written)
            else:
                out[field] = written
                ok = ok and columns.tables_finite(written)
        else:
            assert hook is not None  # _CODEC fields always carry their hook
            out[field] = written = hook(value)
            ok = ok and finite(written)
    return out, ok


def record_text(seq: int, runner_id: str, event: Any, commands: Any) -> str:
    """One log record as written (sorted keys, compact), without its newline."""
    return record_bytes(seq, runner_id, event, commands).decode("utf-8")


def record_bytes(seq: int, runner_id: str, event: Any, commands: Any) -> bytes:
    """One log record as UTF-8 bytes (sorted keys, compact), without its newline."""
    ok = True
    encoded_commands = []
    for command in commands:
        data, finite_command = _encoded(command)
        encoded_commands.append(data)
        ok = ok and finite_command
    encoded_event, finite_event = _encoded(event)
    record = {"commands": encoded_commands, "event": encoded_event, "runner_id": runner_id, "seq": seq}
    return dumps_sorted(record, all_finite=ok and finite_event)


_ROW_COLUMNS: dict[type, RowColumns] = {}


def _row_columns(row_cls: type) -> RowColumns:
    columns = _ROW_COLUMNS.get(row_cls)
    if columns is None:
        columns = _ROW_COLUMNS[row_cls] = RowColumns(row_cls, _encoded_once)
    return columns


def _int_list(value: Any) -> bool:
    return type(value) is list and ints_only(value)


class _Slow(Exception):
    """The fast decoder declines; the codec decodes (or names the error)."""


def _decode_plan(cls: type) -> tuple[_Plan, frozenset[str]] | None:
    if cls not in _DECODE_PLANS:
        plan = tuple(
            (name, _ROWS, _row_columns(row_cls))
            if kind == _CODEC and (row_cls := _row_class(t)) else (name, kind, t)
            for name, kind, t in _field_kinds(cls)
        )
        fast = all(kind != _CODEC for _, kind, _ in plan)
        _DECODE_PLANS[cls] = (plan, frozenset([TAG, *(n for n, _, _ in plan)])) if fast else None
    return _DECODE_PLANS[cls]


def _fast_value(name: str, kind: int, t: Any, value: Any) -> Any:
    if kind == _ROWS:
        if type(value) is dict:
            return t.decode(value, f".{name}")
        raise _Slow  # an array of row objects (versions 1 and 2): the codec reads it
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
    """``data`` with every id runs object expanded and every columns object read back into the
    codec's array of rows, for the codec."""
    out = dict(data)
    for name, kind, t in plan:
        value = out.get(name)
        if kind == _ROWS:
            if type(value) is dict:  # the codec reads the rows' array; a bad columns object is named here
                out[name] = [converter.unstructure(row) for row in t.decode(value, f".{name}")]
        elif t is _IDS and type(value) is dict:
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
