"""The upstream-done column: one small count per task.

A group of completions bumps the counts of their downstreams. Kept as an array, the bump is
a scatter-add and the readiness test a gather and a compare, each one numpy call for the
whole group (``readiness.propagate_done_all``), instead of a Python step per edge.

``CountColumn`` is immutable; ``CountColumnTx`` is its working copy for one ``decide`` call.
Both are a ``RerootedColumn`` (core/rerooted_column.py): the versions of a run's column share
one ``array``, and a bump costs the entries it writes (kept to undo them), not a copy of the
column. Both read as a sequence of ``int`` (``column[i] == 2``), as the per-task vector they
replace did. Vectorised code reads ``view()`` and writes through ``add_at``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from swarmfold.core.frozen import INT_TYPECODES, frozen_ints
from swarmfold.core.rerooted_column import RerootedColumn, RerootedColumnTx, numpy_view

#: The widest count: a task has at most this many upstreams' completions counted (int32).
COUNT_DTYPE = np.int32
Counts = npt.NDArray[np.signedinteger[Any]]
_TYPECODE = {np.dtype(np.int8): "b", np.dtype(np.int16): "h", np.dtype(np.int32): "i"}


def dtype_for(most: int) -> type[np.signedinteger[Any]]:
    """The narrowest signed dtype holding counts up to ``most``: a column a fourth of the
    size (one byte a task when no task has 128 upstreams) keeps more of it in the CPU's
    caches."""
    for dtype in (np.int8, np.int16):
        if most <= np.iinfo(dtype).max:
            return dtype
    return COUNT_DTYPE


class CountColumn(RerootedColumn[int]):
    """Immutable per-task counts. Build with ``CountColumn.of`` or ``CountColumn.zeros``."""

    __slots__ = ()

    @classmethod
    def of(cls, counts: Iterable[int] | npt.NDArray[Any]) -> CountColumn:
        """A column of ``counts`` (any iterable of ints, kept as int32; a numpy array of
        int8, int16 or int32 keeps its width; a column is returned as it is)."""
        if isinstance(counts, CountColumn):
            return counts
        if isinstance(counts, np.ndarray) and counts.dtype in _TYPECODE:
            return cls._of_array(array(_TYPECODE[counts.dtype], counts.tobytes()))
        return cls._of_array(array(_TYPECODE[np.dtype(COUNT_DTYPE)], counts))

    @classmethod
    def zeros(cls, n: int, most: int | None = None) -> CountColumn:
        """``n`` zero counts, none of which will exceed ``most`` (unknown: the widest)."""
        return cls.of(np.zeros(n, dtype=COUNT_DTYPE if most is None else dtype_for(most)))

    @classmethod
    def for_upstreams(cls, num_upstreams: Sequence[int]) -> CountColumn:
        """Zero DONE-upstream counts for tasks with ``num_upstreams`` upstreams each, as
        narrow as the largest allows: a count never exceeds its task's upstreams (Q15)."""
        needed = ints_view(num_upstreams)
        return cls.zeros(len(needed), most=int(needed.max()) if len(needed) else 0)

    @property
    def values(self) -> Counts:
        """The counts as a read-only numpy array of their own (a copy: index ``i`` is task ``i``)."""
        values = numpy_view(self._rooted()).copy()
        values.flags.writeable = False
        return values

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> list[int]: ...

    def __getitem__(self, i: int | slice) -> int | list[int]:
        if isinstance(i, slice):
            return self._rooted()[i].tolist()
        return self._rooted()[i]

    def __iter__(self) -> Iterator[int]:
        return iter(self.tolist())

    def tolist(self) -> list[int]:
        """Every count, as a list of ``int`` (as ``PVector.tolist``)."""
        return self._rooted().tolist()

    def same_column(self, other: CountColumn) -> bool:
        return self.tolist() == other.tolist()  # whatever the widths

    def __hash__(self) -> int:
        return hash(numpy_view(self._rooted()).astype(COUNT_DTYPE).tobytes())  # whatever the width

    def __repr__(self) -> str:
        counts = self.tolist()
        shown = repr(counts) if len(counts) <= 20 else repr(counts[:20])[:-1] + ", ...]"
        return f"CountColumn({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CountColumn.of, (self.values,))


class CountColumnTx(RerootedColumnTx):
    """The working copy of a ``CountColumn`` inside one ``decide`` call: ``view()`` to read
    in numpy, ``add_at`` to bump many counts at once."""

    __slots__ = ()

    def __getitem__(self, i: int) -> int:
        return self.values[i]

    __setitem__ = RerootedColumnTx.write

    def add_at(self, indexes: npt.NDArray[np.int64] | Sequence[int], delta: int) -> None:
        """Add ``delta`` to the count of each of ``indexes`` (an index listed twice, twice)."""
        view, at = self._kept_at(indexes)
        np.add.at(view, at, delta)


CountColumn._TX = CountColumnTx


def count_column(value: Iterable[int]) -> CountColumn:
    """Field converter (mypy's attrs plugin takes a named function, not ``CountColumn.of``)."""
    return CountColumn.of(value)


def int_view(column: Sequence[int]) -> npt.NDArray[np.int64]:
    """An int64 array of an int column: ``ints_view`` (a view of a 64-bit ``array`` or
    ``memoryview``, the topology's columns: no copy), widened to 64 bits when narrower."""
    view = ints_view(column)
    return view if view.dtype == np.int64 else view.astype(np.int64)


def narrowest_ints(values: npt.NDArray[Any]) -> memoryview:
    """Small non-negative ints (upstream counts, codes into a table) as a read-only view of
    the narrowest signed array holding them (``dtype_for``): a million one-byte entries
    stay in the CPU's caches where eight-byte ones do not."""
    most = int(values.max()) if len(values) else 0
    narrow = array(_TYPECODE[np.dtype(dtype_for(most))])
    narrow.frombytes(values.astype(np.dtype(narrow.typecode)).tobytes())
    return frozen_ints(narrow)


def ints_view(column: Sequence[int]) -> Counts:
    """A read-only numpy array of an int column at its own width: a view of an ``array`` or
    ``memoryview`` of ints (no copy), else an int64 copy."""
    if isinstance(column, (array, memoryview)):
        fmt = column.typecode if isinstance(column, array) else column.format
        if fmt in INT_TYPECODES:
            view: Counts = np.frombuffer(column, dtype=fmt)
            return view
    return np.array(column, dtype=np.int64)


EMPTY_COUNT_COLUMN = CountColumn.zeros(0)

__all__ = [
    "COUNT_DTYPE",
    "CountColumn",
    "ints_view",
    "narrowest_ints",
    "CountColumnTx",
    "EMPTY_COUNT_COLUMN",
    "count_column",
    "dtype_for",
    "int_view",
]
