"""``RowPage``: a page of ``TaskRow`` or ``EdgeRow`` kept as one column per field.

A run that attaches over HTTP loads every task in pages of 500 rows (``get_tasks``) and their
edges (``get_downstream_tasks``). The HTTP parser and the event log's reader get such a page
as columns; building an object per row, then reading each field back out of every object to
write the log or build the topology, is most of the attach's cost. A ``RowPage`` keeps the
columns: the log writer and the attach read them as they are (``column``), and the rows are
built only when something reads the page as rows.

It is an immutable sequence of rows: items, iteration and slices give rows, and it equals (and
hashes as) the tuple of the same rows, so an event holding one equals the same event holding
a tuple. The rows are built once, on first need, and kept (a cache, not part of the value).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any, Generic, TypeVar, overload

import attrs

R = TypeVar("R")


def rows_of(cls: type[R], *columns: Sequence[Any]) -> list[R]:
    """``list(map(cls, *columns))`` for a frozen attrs row class without validators or
    post-init step (``TaskRow``, ``EdgeRow``), built a column at a time in C: each slot set
    through its descriptor, each converter mapped over its column. A page of 500 rows costs
    about half what calling the class a row does, and the rows are the same."""
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise ValueError(f"rows_of: columns of different lengths {sorted(lengths)}")
    rows: list[R] = list(map(object.__new__, repeat(cls, lengths.pop())))
    for f, column in zip(attrs.fields(cls), columns, strict=True):  # type: ignore[arg-type]
        values = column if f.converter is None else map(f.converter, column)
        deque(map(getattr(cls, f.name).__set__, rows, values), maxlen=0)
    return rows


class RowPage(Sequence[R], Generic[R]):
    """Rows of ``row_cls`` as columns in the class's field order, all of one length; nothing
    writes to the columns again. Build with ``RowPage(TaskRow, columns)``."""

    __slots__ = ("row_cls", "_columns", "_names", "_rows")

    def __init__(self, row_cls: type[R], columns: Sequence[Sequence[Any]]) -> None:
        names = tuple(f.name for f in attrs.fields(row_cls))  # type: ignore[arg-type]
        if len(columns) != len(names):
            raise ValueError(
                f"RowPage of {row_cls.__name__}: {len(names)} columns needed, got {len(columns)}"
            )
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            raise ValueError(
                f"RowPage of {row_cls.__name__}: columns of different lengths {sorted(lengths)}"
            )
        self.row_cls = row_cls
        self._columns = tuple(columns)
        self._names = names
        self._rows: tuple[R, ...] | None = None

    def column(self, name: str) -> Sequence[Any]:
        """One field of every row, in order (the column itself: read it only)."""
        return self._columns[self._names.index(name)]

    @property
    def columns(self) -> tuple[Sequence[Any], ...]:
        """Every column, in the row class's field order."""
        return self._columns

    @property
    def rows(self) -> tuple[R, ...]:
        """The rows, built on first need (in C, ``rows_of``) and kept."""
        rows = self._rows
        if rows is None:
            rows = self._rows = tuple(rows_of(self.row_cls, *self._columns))
        return rows

    def __len__(self) -> int:
        return len(self._columns[0])

    @overload
    def __getitem__(self, i: int) -> R: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[R, ...]: ...

    def __getitem__(self, i: int | slice) -> R | tuple[R, ...]:
        return self.rows[i]

    def __iter__(self) -> Iterator[R]:
        return iter(self.rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowPage):
            if self.row_cls is other.row_cls and self._columns == other._columns:
                return True
            return self.rows == other.rows
        if isinstance(other, (tuple, list)):
            return len(other) == len(self) and self.rows == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.rows)

    def __repr__(self) -> str:
        return f"RowPage({self.row_cls.__name__}, {len(self)} rows)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RowPage, (self.row_cls, self._columns))


def column_of(rows: Sequence[Any], name: str) -> Sequence[Any]:
    """One field of every row: a ``RowPage``'s column as it is, else read from each row."""
    if isinstance(rows, RowPage):
        return rows.column(name)
    return [getattr(row, name) for row in rows]


__all__ = ["RowPage", "column_of", "rows_of"]
