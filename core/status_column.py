"""The task-status column: one byte per task (its status letter), in chunks shared by states.

A full sync reports the status of every task. Kept as bytes, the column is compared with such
a report by a gather and a count in C (``task_status._split``) instead of a Python step per
task, and it takes one byte a task instead of a pointer.

``StatusColumn`` is immutable. ``StatusColumnTx`` is its working copy for one ``decide`` call:
it writes into one ``bytearray`` of the whole column (many tasks at a time through numpy),
never into the input state's chunks, and ``persistent()`` copies the chunks it wrote into a
new column that shares the rest. The ``bytearray`` is passed on with the new column, so the
next call writes into it without joining the chunks again (``StatusColumn._spare``). Both read
as a sequence of status letters (``column[i] == "G"``), as the per-task vector they replace did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from swarmfold.core.frozen import FrozenColumn

CHUNK_BITS = 12
CHUNK_SIZE = 1 << CHUNK_BITS
CHUNK_MASK = CHUNK_SIZE - 1
_LETTER = tuple(chr(b) for b in range(256))
#: Fewer tasks than this are written one by one; more through numpy. A read of this many
#: or more takes the whole column first.
_FEW = 16


def status_mask(marks: Callable[[str], bool]) -> bytes:
    """A ``bytes.translate`` table: 1 for each status letter ``marks`` accepts, else 0."""
    return bytes(1 if marks(chr(b)) else 0 for b in range(256))


def _chunked(data: bytes) -> tuple[bytes, ...]:
    return tuple(data[k:k + CHUNK_SIZE] for k in range(0, len(data), CHUNK_SIZE))


class StatusColumn(FrozenColumn[str]):
    """Immutable status letters, one byte each. Build with ``StatusColumn.of``.

    Its chunks are ``bytes`` (or ``bytearray``s nothing writes to). It may also hold, in
    ``_spare``, one ``bytearray`` of the whole column left by the ``StatusColumnTx`` that made
    it: the next working copy opened on this column takes it (at most one does) and writes
    into it instead of joining the chunks again. The spare is a cache, not the column's
    value: the column reads only its chunks, which never change."""

    __slots__ = ("_chunks", "_n", "_spare")

    def __init__(
        self, chunks: tuple[bytes | bytearray, ...] = (), n: int = 0, spare: bytearray | None = None
    ) -> None:
        self._chunks = chunks
        self._n = n
        self._spare: list[bytearray] = [] if spare is None else [spare]

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
        return cls(_chunked(data), len(data))

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> str: ...

    def __getitem__(self, i: int | slice) -> str:
        if isinstance(i, slice):
            return self.tobytes().decode("ascii")[i]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"task index {i} out of range for {self._n} tasks")
        return _LETTER[self._chunks[i >> CHUNK_BITS][i & CHUNK_MASK]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tobytes().decode("ascii"))

    def tobytes(self) -> bytes:
        """Every status letter, as one ``bytes`` (index ``i`` is task ``i``)."""
        return b"".join(self._chunks)

    def tolist(self) -> list[str]:
        """Every status letter, as a list (as ``PVector.tolist``)."""
        return list(self.tobytes().decode("ascii"))

    def evolver(self) -> StatusColumnTx:
        return StatusColumnTx(self)

    def same_column(self, other: StatusColumn) -> bool:
        return self._n == other._n and self.tobytes() == other.tobytes()

    def __hash__(self) -> int:
        return hash(self.tobytes())

    def __repr__(self) -> str:
        letters = self.tobytes().decode("ascii")
        shown = letters if len(letters) <= 60 else letters[:57] + "..."
        return f"StatusColumn({shown!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (StatusColumn.of, (self.tobytes(),))

    def _take_spare(self) -> bytearray:
        """The whole column as a ``bytearray`` the caller may write: the spare when no working
        copy has taken it yet (``list.pop`` is atomic), else a fresh join of the chunks."""
        try:
            return self._spare.pop()
        except IndexError:
            return bytearray(b"".join(self._chunks))


class StatusColumnTx:
    """The working copy of a ``StatusColumn`` inside one ``decide`` call.

    The first write (or a read of many tasks) takes the whole column as one ``bytearray``
    (the base column's spare, or a join of its chunks); writes and reads then go to it, many
    at a time through numpy or ``itemgetter``. ``persistent()`` copies the chunks written
    since into a new column, which shares the others with the base and keeps the working
    ``bytearray`` as its spare. Before that, reads of a few tasks read the base's chunks.
    """

    __slots__ = ("_base", "_n", "_whole", "_view", "_dirty")

    def __init__(self, base: StatusColumn) -> None:
        self._base = base
        self._n = base._n
        #: The whole column being written, and a numpy view of it; ``None`` until needed.
        self._whole: bytearray | None = None
        self._view: npt.NDArray[np.uint8] | None = None
        #: One byte per chunk: 1 for a chunk written since the last ``persistent()``.
        self._dirty = bytearray(len(base._chunks))

    def __len__(self) -> int:
        return self._n

    def _open(self) -> bytearray:
        whole = self._whole
        if whole is None:
            whole = self._whole = self._base._take_spare()
            self._view = np.frombuffer(whole, dtype=np.uint8)
        return whole

    def __getitem__(self, i: int) -> str:
        """The letter of task ``i`` (``0 <= i < len``)."""
        whole = self._whole
        if whole is not None:
            return _LETTER[whole[i]]
        return _LETTER[self._base._chunks[i >> CHUNK_BITS][i & CHUNK_MASK]]

    def __setitem__(self, i: int, letter: str) -> None:
        self.fill((i,), letter)

    def fill(self, indexes: Sequence[int], letter: str) -> None:
        """Set every task of ``indexes`` to ``letter``."""
        whole = self._open()
        code = ord(letter)
        if len(indexes) < _FEW:
            dirty = self._dirty
            for i in indexes:
                whole[i] = code
                dirty[i >> CHUNK_BITS] = 1
            return
        at = np.asarray(indexes, dtype=np.intp)
        self._view[at] = code  # type: ignore[index]  # opened above
        np.frombuffer(self._dirty, dtype=np.uint8)[at >> CHUNK_BITS] = 1

    def letters_at(self, indexes: Sequence[int]) -> bytes:
        """The status bytes of ``indexes``, in order."""
        whole = self._whole
        if whole is None and len(indexes) >= _FEW:
            whole = self._open()
        if whole is None:
            chunks = self._base._chunks
            return bytes([chunks[i >> CHUNK_BITS][i & CHUNK_MASK] for i in indexes])
        if len(indexes) > 1:
            return bytes(itemgetter(*indexes)(whole))
        return bytes([whole[i] for i in indexes])

    def codes(self) -> npt.NDArray[np.uint8]:
        """Every status byte as a numpy array: a view of the working copy, read it only."""
        self._open()
        view = self._view
        assert view is not None
        return view

    def tobytes(self) -> bytes:
        whole = self._whole
        return bytes(whole) if whole is not None else self._base.tobytes()

    def persistent(self) -> StatusColumn:
        """The column as it stands: the chunks written since the last call are copied out of
        the working ``bytearray``, which the new column keeps as its spare (this copy lets go
        of it: a later write takes it back from the new column, or joins afresh)."""
        whole = self._whole
        if whole is None:
            return self._base
        self._whole = self._view = None
        base = self._base
        written = np.flatnonzero(np.frombuffer(self._dirty, dtype=np.uint8)).tolist()
        if not written:
            if not base._spare:
                base._spare.append(whole)  # unchanged: the next working copy may take it
            return base
        chunks = list(base._chunks)
        data = memoryview(whole)
        for c in written:
            chunks[c] = bytes(data[c << CHUNK_BITS:(c + 1) << CHUNK_BITS])
        data.release()
        self._dirty = bytearray(len(chunks))
        self._base = StatusColumn(tuple(chunks), self._n, whole)
        return self._base


def status_column(value: str | bytes | Iterable[str]) -> StatusColumn:
    """Field converter (mypy's attrs plugin takes a named function, not ``StatusColumn.of``)."""
    return StatusColumn.of(value)


EMPTY_STATUS_COLUMN = StatusColumn()

__all__ = [
    "CHUNK_BITS",
    "CHUNK_MASK",
    "CHUNK_SIZE",
    "EMPTY_STATUS_COLUMN",
    "StatusColumn",
    "StatusColumnTx",
    "status_column",
    "status_mask",
]
