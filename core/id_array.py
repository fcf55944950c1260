"""``IdArray``: a long list of task ids kept as one int64 array instead of Python ints.

A full sync lists every task of the workflow. Given as a tuple, a million ids are a million
Python ints that the server side builds and the core turns back into an array to compare
them with its status column in bulk (``task_status._split``). An ``IdArray`` skips both
steps: the in-process server model answers a full sync with them, and the event log's
reader gives them where it expands a run-length list (shell/log/id_runs.py).

It is an immutable sequence of ints: items, iteration and slices give Python ints, and it
equals (and hashes as) the tuple of the same ids, so an event holding one equals the same
event holding a tuple. Its array is read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

IdColumn = npt.NDArray[np.int64]
#: Readers give a list of more ids than this as an ``IdArray`` (the HTTP parser, the event
#: log's reader), a shorter one as a tuple.
PACK_ABOVE = 4096


class IdArray(Sequence[int]):
    """Immutable task ids over a read-only int64 array. Build with ``IdArray.of``."""

    __slots__ = ("_ids",)

    def __init__(self, ids: IdColumn) -> None:
        """``ids``: a one-dimensional int64 array nothing writes to again (made read-only)."""
        if ids.dtype != np.int64 or ids.ndim != 1:
            raise TypeError(f"IdArray takes a 1-dimensional int64 array, got {ids.ndim}-d {ids.dtype}")
        if ids.flags.writeable:
            ids = ids.view()
            ids.flags.writeable = False
        self._ids = ids

    @classmethod
    def of(cls, ids: Iterable[int]) -> IdArray:
        """``ids`` (any iterable of ints within 64 bits) as an ``IdArray``."""
        if isinstance(ids, IdArray):
            return ids
        return cls(np.array(list(ids), dtype=np.int64))

    @property
    def array(self) -> IdColumn:
        """The ids as a read-only int64 array (no copy)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, i: int) -> int: ...

    @overload
    def __getitem__(self, i: slice) -> IdArray: ...

    def __getitem__(self, i: int | slice) -> int | IdArray:
        if isinstance(i, slice):
            return IdArray(self._ids[i])
        return int(self._ids[i])

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids.tolist())

    def tolist(self) -> list[int]:
        ids: list[int] = self._ids.tolist()
        return ids

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IdArray):
            return bool(np.array_equal(self._ids, other._ids))
        if isinstance(other, (tuple, list)):
            return len(other) == len(self._ids) and self._ids.tolist() == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._ids.tolist()))

    def __repr__(self) -> str:
        ids = self._ids
        shown = ", ".join(map(str, ids[:8].tolist())) + (", ..." if len(ids) > 8 else "")
        return f"IdArray([{shown}], {len(ids)} ids)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (IdArray.of, (self._ids.tolist(),))


def id_column(ids: Sequence[int]) -> IdColumn | None:
    """``ids`` as an int64 array: an ``IdArray``'s own (no copy), else converted; ``None``
    when an id does not fit in 64 bits (or is not an int)."""
    if isinstance(ids, IdArray):
        return ids.array
    try:
        return np.fromiter(ids, dtype=np.int64, count=len(ids))
    except (OverflowError, TypeError, ValueError):
        return None


def packed(ids: list[int]) -> tuple[int, ...] | IdArray:
    """A list of ints as a reader gives it: an ``IdArray`` above ``PACK_ABOVE`` ids (when
    they fit in 64 bits), else a tuple."""
    if len(ids) > PACK_ABOVE:
        try:
            return IdArray(np.array(ids, dtype=np.int64))
        except OverflowError:
            pass
    return tuple(ids)


__all__ = ["PACK_ABOVE", "IdArray", "id_column", "packed"]
