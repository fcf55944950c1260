"""The upstream-done column: one small count per task, as one frozen numpy array.

A group of completions bumps the counts of their downstreams. Kept as an array, the bump is
a scatter-add and the readiness test a gather and a compare, each one numpy call for the
whole group (``readiness.propagate_done_all``), instead of a Python step per edge.

``CountColumn`` is immutable: its array is read-only. ``CountColumnTx`` is its working copy
for one ``decide`` call: it copies the array the first time it writes (copy-on-write), so
the input state's column is never modified, and ``persistent()`` freezes the result. Both
read as a sequence of ``int`` (``column[i] == 2``), as the per-task vector they replace did.
Vectorised code reads ``values`` and writes ``writable()``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from swarmfold.core.frozen import FrozenColumn

#: The widest count: a task has at most this many upstreams' completions counted (int32).
COUNT_DTYPE = np.int32
Counts = npt.NDArray[np.signedinteger[Any]]


def dtype_for(most: int) -> type[np.signedinteger[Any]]:
    """The narrowest signed dtype holding counts up to ``most``: a column a fourth of the
    size (one byte a task when no task has 128 upstreams) is a fourth of the copy that the
    first write of a ``decide`` call makes."""
    for dtype in (np.int8, np.int16):
        if most <= np.iinfo(dtype).max:
            return dtype
    return COUNT_DTYPE


def _frozen(values: Counts) -> Counts:
    values.flags.writeable = False
    return values


class CountColumn(FrozenColumn[int]):
    """Immutable per-task counts. Build with ``CountColumn.of`` or ``CountColumn.zeros``."""

    __slots__ = ("_values",)

    def __init__(self, values: Counts) -> None:
        """``values`` must be a read-only int32 array that nothing writes to again."""
        self._values = values

    @classmethod
    def of(cls, counts: Iterable[int]) -> CountColumn:
        """A column of ``counts`` (any iterable of ints; a column is returned as it is)."""
        if isinstance(counts, CountColumn):
            return counts
        return cls(_frozen(np.array(list(counts), dtype=COUNT_DTYPE)))

    @classmethod
    def zeros(cls, n: int, most: int | None = None) -> CountColumn:
        """``n`` zero counts, none of which will exceed ``most`` (unknown: the widest)."""
        return cls(_frozen(np.zeros(n, dtype=COUNT_DTYPE if most is None else dtype_for(most))))

    @classmethod
    def for_upstreams(cls, num_upstreams: Sequence[int]) -> CountColumn:
        """Zero DONE-upstream counts for tasks with ``num_upstreams`` upstreams each, as
        narrow as the largest allows: a count never exceeds its task's upstreams (Q15)."""
        needed = int_view(num_upstreams)
        return cls.zeros(len(needed), most=int(needed.max()) if len(needed) else 0)

    @property
    def values(self) -> Counts:
        """The read-only array (index ``i`` is task ``i``)."""
        return self._values

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> list[int]: ...

    def __getitem__(self, i: int | slice) -> int | list[int]:
        if isinstance(i, slice):
            return self._values[i].tolist()  # type: ignore[no-any-return]
        return int(self._values[i])

    def __iter__(self) -> Iterator[int]:
        return iter(self.tolist())

    def tolist(self) -> list[int]:
        """Every count, as a list of ``int`` (as ``PVector.tolist``)."""
        return self._values.tolist()  # type: ignore[no-any-return]

    def evolver(self) -> CountColumnTx:
        return CountColumnTx(self)

    def same_column(self, other: CountColumn) -> bool:
        return bool(np.array_equal(self._values, other._values))

    def __hash__(self) -> int:
        return hash(self._values.astype(COUNT_DTYPE).tobytes())  # whatever the width

    def __repr__(self) -> str:
        counts = self.tolist()
        shown = repr(counts) if len(counts) <= 20 else repr(counts[:20])[:-1] + ", ...]"
        return f"CountColumn({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CountColumn.of, (self.tolist(),))


class CountColumnTx:
    """The working copy of a ``CountColumn`` inside one ``decide`` call.

    ``values`` is the current array, for reading (it may be the input column's own);
    ``writable()`` is the array to write to, copied from the input on the first call.
    """

    __slots__ = ("_base", "_own")

    def __init__(self, base: CountColumn) -> None:
        self._base = base
        self._own: Counts | None = None

    @property
    def values(self) -> Counts:
        own = self._own
        return self._base._values if own is None else own

    def writable(self) -> Counts:
        """The array to write to (a private copy of the input column's)."""
        own = self._own
        if own is None:
            own = self._own = self._base._values.copy()
        return own

    def __len__(self) -> int:
        return len(self._base._values)

    def __getitem__(self, i: int) -> int:
        return int(self.values[i])

    def __setitem__(self, i: int, count: int) -> None:
        self.writable()[i] = count

    def persistent(self) -> CountColumn:
        """The column as it stands. The written array is handed over to it (no copy) and
        this copy gives it up: a later write copies it again, so the returned column never
        changes."""
        own = self._own
        if own is None:
            return self._base
        self._own = None
        self._base = CountColumn(_frozen(own))
        return self._base


def count_column(value: Iterable[int]) -> CountColumn:
    """Field converter (mypy's attrs plugin takes a named function, not ``CountColumn.of``)."""
    return CountColumn.of(value)


def int_view(column: Sequence[int]) -> npt.NDArray[np.int64]:
    """A read-only int64 array of an int column: a view of a 64-bit ``array`` or
    ``memoryview`` (the topology's columns: no copy), else a copy."""
    if (isinstance(column, array) and column.typecode == "q") or (
        isinstance(column, memoryview) and column.format == "q"
    ):
        return np.frombuffer(column, dtype=np.int64)
    return np.array(column, dtype=np.int64)


EMPTY_COUNT_COLUMN = CountColumn.zeros(0)

__all__ = [
    "COUNT_DTYPE",
    "CountColumn",
    "CountColumnTx",
    "EMPTY_COUNT_COLUMN",
    "count_column",
    "dtype_for",
    "int_view",
]
