"""Fast paths over the codec for event-log records: the same bytes, fewer Python steps.

A big run's records are mostly task-id lists (QueueBatch.task_ids, tasks_by_status) and,
when a run attaches over HTTP, the task and edge rows of its bootstrap pages. The codec
(un)structures them item by item through cattrs hooks; here fields whose JSON form is the
value itself are passed straight to ``json`` (which writes tuples as arrays), and such lists
are checked in bulk when read. Rows (``tuple[TaskRow, ...]``) are written field by field
with the same plan; their nested values (resource tuples, shared by thousands of rows) go
through the codec once per distinct object, remembered by identity (never by equality:
``("cores", 1)`` equals ``("cores", 1.0)`` but is written differently). The bytes are
exactly the codec's (tested); anything else, and every decoding error, goes through the
codec itself.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

import attrs

from swarmfold.core.commands import COMMAND_TYPES
from swarmfold.core.events import EVENT_TYPES
from swarmfold.shell.log.codec import (
    TAG,
    converter,
    ints_only,
    unstructure,
)

__all__ = ["decode_value", "encode_value"]

_MEMBERS = frozenset(EVENT_TYPES) | frozenset(COMMAND_TYPES)


_PLAIN = 0  # the value is its own JSON form
_FLOAT = 1  # float field: the codec always writes a float
_OPT_FLOAT = 2
_CODEC = 3  # anything else: the codec's hook for the field's type
_ROWS = 4  # tuple[<attrs class>, ...]: each row by the row class's own plan

_IDS = tuple[int, ...]
_BY_STATUS = Mapping[str, tuple[int, ...]]  # TasksByStatus: read-only, a FrozenDict
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


def _rows_encoder(row_cls: type) -> Callable[[Any], list[dict[str, Any]]]:
    """Rows of ``row_cls`` as the codec writes them (a list of objects)."""
    plan = _field_kinds(row_cls)
    names = tuple(name for name, _, _ in plan)
    values_of = attrgetter(*names) if len(names) > 1 else (lambda row: (getattr(row, names[0]),))
    floats = tuple(k for k, (_, kind, _) in enumerate(plan) if kind in (_FLOAT, _OPT_FLOAT))
    coded = tuple(
        (k, converter.get_unstructure_hook(t)) for k, (_, kind, t) in enumerate(plan) if kind == _CODEC
    )

    def encode_rows(rows: Any) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            if type(row) is not row_cls:
                return [unstructure(r) for r in rows]  # the codec names the problem
            values = list(values_of(row))
            for k in floats:
                value = values[k]
                values[k] = None if value is None else float(value)
            for k, hook in coded:
                values[k] = _encoded_once(values[k], hook)
            out.append(dict(zip(names, values, strict=True)))
        return out

    return encode_rows


def _encode_plan(cls: type) -> tuple[str, _Plan]:
    plan: list[tuple[str, int, Any]] = []
    for name, kind, t in _field_kinds(cls):
        row_cls = _row_class(t) if kind == _CODEC else None
        if row_cls is not None:
            plan.append((name, _ROWS, _rows_encoder(row_cls)))
        else:
            plan.append((name, kind, converter.get_unstructure_hook(t) if kind == _CODEC else None))
    return cls.__name__, tuple(plan)


def encode_value(obj: Any) -> Any:
    """The codec's ``unstructure(obj)`` for an event or command, without per-item hooks."""
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
        elif kind == _FLOAT:
            out[field] = float(value)
        elif kind == _OPT_FLOAT:
            out[field] = None if value is None else float(value)
        else:
            assert hook is not None  # _CODEC and _ROWS fields always carry their hook
            out[field] = hook(value)
    return out


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


def _fast_value(kind: int, t: Any, value: Any) -> Any:
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
        raise _Slow
    if t is _BY_STATUS:
        if type(value) is dict and all(type(k) is str and _int_list(v) for k, v in value.items()):
            return {k: tuple(v) for k, v in value.items()}
        raise _Slow
    if value is None:
        if t in (int | None, str | None):
            return None
        raise _Slow
    if type(value) is (t if isinstance(t, type) else typing.get_args(t)[0]):
        return value
    raise _Slow


def decode_value(data: Any, union: dict[str, type], slow: Any) -> Any:
    """``slow(data)`` (the codec), faster for records made only of plain fields."""
    if type(data) is dict:
        cls = union.get(data.get(TAG))  # type: ignore[arg-type]
        entry = None if cls is None else _decode_plan(cls)
        if entry is not None and cls is not None:
            plan, keys = entry
            if data.keys() == keys:
                try:
                    return cls(**{name: _fast_value(kind, t, data[name]) for name, kind, t in plan})
                except _Slow:
                    pass
    return slow(data)




