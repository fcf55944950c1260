"""Pages of rows in the event log, written a column per field (log version 3).

A run that attaches over HTTP records every ``get_tasks`` and ``get_downstream_tasks`` page:
``TaskChunkLoaded.tasks`` and ``EdgeChunkLoaded.edges``, one row per task. Written as an array
of row objects, every row repeats its field names and its resource tuples, and the writer
formats each row on its own. Version 3 writes such a field as::

    {"columns": {"array_id": [7, 7], ..., "requested_resources": {"index": [0, 0],
     "values": [[["cores", 1], ["memory", 2]]]}, ...}, "rows": 2}

A field of type ``int``, ``str`` or ``tuple[int, ...]`` is the array of its values, one per
row, each as the codec writes it. Any other field (the resource tuples) is a table: ``values``
holds each distinct value once, as the codec writes it, in the order of the first row that has
it, and ``index`` gives each row's entry. Values are told apart by their JSON text, so
``("cores", 1)`` and ``("cores", 1.0)`` are two entries. The form is canonical (the same rows
give the same bytes); an empty page, or rows of another class, stay the codec's array. Readers
take both forms. Only the event log uses this form; ``to_json`` keeps arrays of row objects.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from operator import attrgetter, is_
from typing import Any

import attrs

from swarmfold.core.row_page import RowPage
from swarmfold.shell.json_text import finite
from swarmfold.shell.log.codec import CodecError, _show, converter, ints_only, structure
from swarmfold.shell.log.id_runs import BITS, RUNS, compact_ids, expand_ids

__all__ = ["COLUMNS", "INDEX", "MAX_ROWS", "REPEAT", "ROWS", "VALUES", "RowColumns"]

COLUMNS = "columns"
ROWS = "rows"
INDEX = "index"
VALUES = "values"
REPEAT = "repeat"
#: The most rows one columns object may hold when read (a bound on what a damaged count can
#: make the reader allocate).
MAX_ROWS = 100_000_000

_INT = 0
_STR = 1
_INT_TUPLE = 2
_TABLE = 3
_KIND_NAMES = {_INT: "int", _STR: "str", _INT_TUPLE: "array of ints"}


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class RowColumns:
    """The columns form of ``tuple[row_cls, ...]`` fields: ``encode`` and ``decode``."""

    def __init__(self, row_cls: type, encoded: Callable[[Any, Callable[[Any], Any]], Any]) -> None:
        """``encoded(value, hook)`` is ``hook(value)``, remembered by identity (the writer's
        cache: a page's resource tuples are a few objects shared by every row)."""
        self.row_cls = row_cls
        self._encoded = encoded
        hints = typing.get_type_hints(row_cls)
        self.fields: list[tuple[str, int, Any]] = []
        for f in attrs.fields(row_cls):
            t = hints[f.name]
            kind = {int: _INT, str: _STR}.get(t, _INT_TUPLE if t == tuple[int, ...] else _TABLE)
            self.fields.append((f.name, kind, t))
        names = [name for name, _, _ in self.fields]
        self._values: Callable[[Any], Any] = attrgetter(*names)
        self._hooks = {
            name: converter.get_unstructure_hook(t) for name, kind, t in self.fields if kind == _TABLE
        }

    def encode(self, rows: Sequence[Any]) -> dict[str, Any] | None:
        """The columns object of ``rows``, or ``None`` when they stay the codec's array (no
        rows, a row of another class, a value the codec would write differently)."""
        if not rows:
            return None
        if isinstance(rows, RowPage) and rows.row_cls is self.row_cls:
            transposed: Any = rows.columns  # parsed or read as columns: no row is built
        elif set(map(type, rows)) != {self.row_cls}:
            return None
        else:
            # ``zip(*...)`` turns the rows' value tuples into columns, in C.
            transposed = zip(*map(self._values, rows), strict=True)
        columns: dict[str, Any] = {}
        for (name, kind, _), column in zip(self.fields, transposed, strict=True):
            if kind == _INT:
                if not ints_only(column):
                    return None
                columns[name] = _repeated(column) or compact_ids(column)
            elif kind == _STR:
                if set(map(type, column)) != {str}:
                    return None
                columns[name] = _repeated(column) or column
            elif kind == _INT_TUPLE:
                if set(map(type, column)) != {tuple} or not ints_only(chain.from_iterable(column)):
                    return None
                columns[name] = column
            else:
                columns[name] = self._table(column, self._hooks[name])
        return {COLUMNS: columns, ROWS: len(rows)}

    def tables_finite(self, written: dict[str, Any]) -> bool:
        """Every float in the value tables of ``written`` (an ``encode`` result) is finite;
        the other columns hold only ints and strings."""
        columns = written[COLUMNS]
        return all(finite(columns[name][VALUES]) for name, kind, _ in self.fields if kind == _TABLE)

    def _table(self, column: Sequence[Any], hook: Callable[[Any], Any]) -> dict[str, Any]:
        first = column[0]
        if all(map(is_, column, repeat(first))):  # one object in every row (checked in C)
            index = [0] * len(column)
            return {INDEX: _repeated(index) or index, VALUES: [self._encoded(first, hook)]}
        ids = list(map(id, column))
        entry_of_text: dict[str, int] = {}
        entry_of_id: dict[int, int] = {}
        values: list[Any] = []
        for key, value in dict(zip(ids, column, strict=True)).items():  # first row of each object
            data = self._encoded(value, hook)
            entry = entry_of_text.setdefault(_dumps(data), len(values))
            if entry == len(values):
                values.append(data)
            entry_of_id[key] = entry
        index = list(map(entry_of_id.__getitem__, ids))
        return {INDEX: _repeated(index) or index, VALUES: values}

    def decode(self, value: dict[str, Any], where: str) -> RowPage[Any]:
        """The rows a columns object stands for, as a ``RowPage``; ``CodecError`` naming the
        problem by its path (``$.tasks.columns.array_id[3]: expected int, got 'x'``), ``where``
        being ``.tasks``."""
        at = f"${where}"
        _keys(value, {COLUMNS, ROWS}, at, "a columns object")
        n = value[ROWS]
        if type(n) is not int or not 0 <= n <= MAX_ROWS:
            raise CodecError([f"{at}.{ROWS}: expected a row count from 0 to {MAX_ROWS}, got {_show(n)}"])
        columns = value[COLUMNS]
        if type(columns) is not dict:
            raise CodecError([f"{at}.{COLUMNS}: expected an object, got {_show(columns)}"])
        _keys(columns, {name for name, _, _ in self.fields}, f"{at}.{COLUMNS}", "the columns")
        decoded: list[Sequence[Any]] = []
        for name, kind, t in self.fields:
            path = f"{at}.{COLUMNS}.{name}"
            if kind == _TABLE:
                decoded.append(_decode_table(columns[name], t, n, path))
            else:
                decoded.append(_decode_plain(columns[name], kind, n, path))
        return RowPage(self.row_cls, decoded)


def _repeated(column: Sequence[Any]) -> dict[str, list[Any]] | None:
    """``{"repeat": [value, rows]}`` when every row holds the same value (ints or strings:
    equal means the same JSON), else ``None``."""
    n = len(column)
    if n > 1 and column.count(column[0]) == n:
        return {REPEAT: [column[0], n]}
    return None


def _keys(value: dict[str, Any], expected: set[str], at: str, what: str) -> None:
    missing = sorted(expected - value.keys())
    if missing:
        raise CodecError([f"{at}.{missing[0]}: required field missing"])
    extra = sorted(map(str, value.keys() - expected))
    if extra:
        raise CodecError([f"{at}: unknown field(s) in {what}: {', '.join(extra)}"])


def _array(value: Any, n: int, path: str) -> list[Any]:
    if type(value) is not list:
        raise CodecError([f"{path}: expected an array, got {_show(value)}"])
    if len(value) != n:
        raise CodecError([f"{path}: expected {n} items (the row count), got {len(value)}"])
    return value


def _decode_plain(value: Any, kind: int, n: int, path: str) -> Sequence[Any]:
    if type(value) is dict and kind != _INT_TUPLE:
        return _decode_short(value, kind, n, path)
    column = _array(value, n, path)
    if kind == _INT:
        good = ints_only(column)
    elif kind == _STR:
        good = set(map(type, column)) <= {str}
    else:
        good = set(map(type, column)) <= {list} and ints_only(chain.from_iterable(column))
    if good:
        return column if kind != _INT_TUPLE else list(map(tuple, column))
    for k, item in enumerate(column):
        if kind == _INT_TUPLE and type(item) is list:
            bad = next((j for j, v in enumerate(item) if type(v) is not int), None)
            if bad is not None:
                raise CodecError([f"{path}[{k}][{bad}]: expected int, got {_show(item[bad])}"])
        elif type(item) is not (int if kind == _INT else str if kind == _STR else list):
            raise CodecError([f"{path}[{k}]: expected {_KIND_NAMES[kind]}, got {_show(item)}"])
    raise AssertionError("unreachable: a bad item was named above")  # pragma: no cover


def _decode_short(value: dict[str, Any], kind: int, n: int, path: str) -> list[Any]:
    """A column written short: ``{"repeat": [value, rows]}``, or (ints) ``{"runs": [...]}``
    or ``{"bits": [...]}``."""
    if kind == _INT and (RUNS in value or BITS in value):
        try:
            ids = expand_ids(value)
        except CodecError as exc:
            raise CodecError([f"{path}{line[1:]}" for line in exc.errors]) from None
        if len(ids) != n:
            raise CodecError([f"{path}: {len(ids)} ids, expected {n} (the row count)"])
        return list(ids)
    _keys(value, {REPEAT}, path, "a repeated column")
    pair = value[REPEAT]
    if type(pair) is not list or len(pair) != 2:
        raise CodecError([f"{path}.{REPEAT}: expected [value, count], got {_show(pair)}"])
    item, count = pair
    if type(count) is not int or count != n:
        raise CodecError([f"{path}.{REPEAT}[1]: expected the row count {n}, got {_show(count)}"])
    if type(item) is not (str if kind == _STR else int):
        raise CodecError([f"{path}.{REPEAT}[0]: expected {_KIND_NAMES[kind]}, got {_show(item)}"])
    return [item] * n


def _decode_table(value: Any, t: Any, n: int, path: str) -> list[Any]:
    if type(value) is not dict:
        raise CodecError([f"{path}: expected an object of index and values, got {_show(value)}"])
    _keys(value, {INDEX, VALUES}, path, "a table")
    values = value[VALUES]
    if type(values) is not list:
        raise CodecError([f"{path}.{VALUES}: expected an array, got {_show(values)}"])
    raw_index = value[INDEX]
    if type(raw_index) is dict:
        index = _decode_short(raw_index, _INT, n, f"{path}.{INDEX}")
    else:
        index = _array(raw_index, n, f"{path}.{INDEX}")
    if not ints_only(index) or (index and not 0 <= min(index) <= max(index) < len(values)):
        k, bad = next((k, v) for k, v in enumerate(index) if type(v) is not int or not 0 <= v < len(values))
        raise CodecError([f"{path}.{INDEX}[{k}]: expected an entry of values (0 to {len(values) - 1}), "
                          f"got {_show(bad)}"])
    entries = []
    for j, data in enumerate(values):
        try:
            entries.append(structure(data, t))
        except CodecError as exc:  # the codec names the problem inside the value
            raise CodecError([f"{path}.{VALUES}[{j}]{line[1:]}" for line in exc.errors]) from None
    return list(map(entries.__getitem__, index))
