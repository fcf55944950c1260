"""The task-status column: one byte per task (its status letter).

A full sync reports the status of every task. Kept as bytes, the column is compared with such
a report by a gather and a count in C (``task_status._split``) instead of a Python step per
task, and it takes one byte a task instead of a pointer.

``StatusColumn`` is immutable; ``StatusColumnTx`` is its working copy for one ``decide`` call.
Both are a ``RerootedColumn`` of bytes (core/rerooted_column.py): the versions of a run's
column share one ``array``, and a write costs one byte written and one kept to undo it, not a
copy of the chunk it falls in. Both read as a sequence of status letters
(``column[i] == "G"``), as the per-task vector they replace did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import overload

import numpy as np
import numpy.typing as npt

from swarmfold.core.index_list import index_array
from swarmfold.core.rerooted_column import RerootedColumn, RerootedColumnTx, gathered, through_numpy

_LETTER = tuple(chr(b) for b in range(256))


def status_mask(marks: Callable[[str], bool]) -> bytes:
    """A ``bytes.translate`` table: 1 for each status letter ``marks`` accepts, else 0."""
    return bytes(1 if marks(chr(b)) else 0 for b in range(256))


class StatusColumn(RerootedColumn[str]):
    """Immutable status letters, one byte each. Build with ``StatusColumn.of``."""

    __slots__ = ()
    TYPECODE = "B"

    @classmethod
    def of(cls, letters: str | bytes | Iterable[str]) -> StatusColumn:
        """A column of ``letters`` (a string, ASCII bytes or single letters)."""
        if isinstance(letters, StatusColumn):
            return letters
        if isinstance(letters, str):
            data = letters.encode("ascii")
        elif isinstance(letters, (bytes, bytearray)):
            data = bytes(letters)
        else:
            data = "".join(letters).encode("ascii")
        return cls._from_bytes(data)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> str: ...

    def __getitem__(self, i: int | slice) -> str:
        if isinstance(i, slice):
            return self.tobytes().decode("ascii")[i]
        if not -self._n <= i < self._n:
            raise IndexError(f"task index {i} out of range for {self._n} tasks")
        return _LETTER[self._rooted()[i]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tobytes().decode("ascii"))

    def tolist(self) -> list[str]:
        """Every status letter, as a list (as ``PVector.tolist``)."""
        return list(self.tobytes().decode("ascii"))

    def __repr__(self) -> str:
        letters = self.tobytes().decode("ascii")
        shown = letters if len(letters) <= 60 else letters[:57] + "..."
        return f"StatusColumn({shown!r})"


class StatusColumnTx(RerootedColumnTx):
    """The working copy of a ``StatusColumn`` inside one ``decide`` call: letters in, letters
    (or their bytes) out; many tasks at a time through numpy or ``itemgetter``."""

    __slots__ = ()

    def __getitem__(self, i: int) -> str:
        """The letter of task ``i`` (``0 <= i < len``)."""
        return _LETTER[self.values[i]]

    def __setitem__(self, i: int, letter: str) -> None:
        self.write(i, ord(letter))

    def fill(self, indexes: Sequence[int], letter: str | int) -> None:
        """Set every task of ``indexes`` to ``letter``."""
        super().fill(indexes, ord(letter) if isinstance(letter, str) else letter)

    def letters_at(self, indexes: Sequence[int]) -> bytes:
        """The status bytes of ``indexes``, in order."""
        values = self.values
        if through_numpy(len(values), len(indexes)):
            return self.view()[index_array(indexes)].tobytes()
        if len(indexes) > 1:
            return bytes(itemgetter(*indexes)(values))
        return bytes(gathered(values, indexes))

    def codes(self) -> npt.NDArray[np.uint8]:
        """Every status byte as a numpy array: a view of the working copy, read it only."""
        return self.view()

    def tobytes(self) -> bytes:
        return self.values.tobytes()


StatusColumn._TX = StatusColumnTx


def status_column(value: str | bytes | Iterable[str]) -> StatusColumn:
    """Field converter (mypy's attrs plugin takes a named function, not ``StatusColumn.of``)."""
    return StatusColumn.of(value)


EMPTY_STATUS_COLUMN = StatusColumn.of(b"")

__all__ = [
    "EMPTY_STATUS_COLUMN",
    "StatusColumn",
    "StatusColumnTx",
    "status_column",
    "status_mask",
]
