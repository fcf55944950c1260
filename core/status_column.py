"""The task-status column: one byte per task (its status letter), in chunks shared by states.

A full sync reports the status of every task. Kept as bytes, the column is compared with such
a report by a gather and a count in C (``task_status._split``) instead of a Python step per
task, and it takes one byte a task instead of a pointer.

``StatusColumn`` is immutable. ``StatusColumnTx`` is its working copy for one ``decide`` call:
it copies a chunk the first time it writes into it (copy-on-write), so the input state's
column is never modified, and ``persistent()`` freezes the result. Both read as a sequence of
status letters (``column[i] == "G"``), as the per-task vector they replace did. Hot loops read
the live chunks directly: ``chunks[i >> CHUNK_BITS][i & CHUNK_MASK]`` is the letter's byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any, overload

from swarmfold.core.frozen import FrozenColumn

CHUNK_BITS = 12
CHUNK_SIZE = 1 << CHUNK_BITS
CHUNK_MASK = CHUNK_SIZE - 1
_LETTER = tuple(chr(b) for b in range(256))
#: ``letters_at`` joins the chunks once it reads at least one task in this many.
_JOIN_RATIO = 1024


def status_mask(marks: Callable[[str], bool]) -> bytes:
    """A ``bytes.translate`` table: 1 for each status letter ``marks`` accepts, else 0."""
    return bytes(1 if marks(chr(b)) else 0 for b in range(256))


def _chunked(data: bytes) -> tuple[bytes, ...]:
    return tuple(data[k:k + CHUNK_SIZE] for k in range(0, len(data), CHUNK_SIZE))


class StatusColumn(FrozenColumn[str]):
    """Immutable status letters, one byte each. Build with ``StatusColumn.of``.

    Its chunks are ``bytes`` or ``bytearray``s handed over by a ``StatusColumnTx``, which
    never writes to a chunk once handed over; nothing else writes to them either."""

    __slots__ = ("_chunks", "_n")

    def __init__(self, chunks: tuple[bytes | bytearray, ...] = (), n: int = 0) -> None:
        self._chunks = chunks
        self._n = n

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


class StatusColumnTx:
    """The working copy of a ``StatusColumn`` inside one ``decide`` call.

    ``chunks`` is the live list of chunks (``bytes`` until written, then an owned
    ``bytearray``): hot loops may read it directly, and write only through this object.
    """

    __slots__ = ("chunks", "_owned", "_n", "_base", "_joined")

    def __init__(self, base: StatusColumn) -> None:
        self._base = base
        self.chunks: list[bytes | bytearray] = list(base._chunks)
        self._owned = bytearray(len(self.chunks))
        self._n = base._n
        #: The chunks joined into one ``bytes``, kept until the next write.
        self._joined: bytes | bytearray | None = None

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> str:
        """The letter of task ``i`` (``0 <= i < len``)."""
        return _LETTER[self.chunks[i >> CHUNK_BITS][i & CHUNK_MASK]]

    def __setitem__(self, i: int, letter: str) -> None:
        self.fill((i,), letter)

    def fill(self, indexes: Iterable[int], letter: str) -> None:
        """Set every task of ``indexes`` to ``letter``."""
        code = ord(letter)
        chunks, owned = self.chunks, self._owned
        self._joined = None
        for i in indexes:
            c = i >> CHUNK_BITS
            chunk = chunks[c]
            if not owned[c]:
                chunk = chunks[c] = bytearray(chunk)
                owned[c] = 1
            chunk[i & CHUNK_MASK] = code  # type: ignore[index]  # a bytearray by now

    def letters_at(self, indexes: Sequence[int]) -> bytes:
        """The status bytes of ``indexes``, in order."""
        chunks = self.chunks
        if len(indexes) > 1:
            whole = self._joined
            if whole is None and (len(chunks) == 1 or len(indexes) * _JOIN_RATIO >= self._n):
                # Joining the chunks copies the column (about 0.05 ns a task); a gather
                # from the copy runs in C, about 50 ns a task faster than one chunk at a
                # time. The copy serves every read until the next write.
                whole = self._joined = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if whole is not None:
                return bytes(itemgetter(*indexes)(whole))
        return bytes([chunks[i >> CHUNK_BITS][i & CHUNK_MASK] for i in indexes])

    def tobytes(self) -> bytes:
        return bytes(self._joined) if self._joined is not None else b"".join(self.chunks)

    def persistent(self) -> StatusColumn:
        """The column as it stands. The chunks written so far are handed over to it as they
        are (no copy) and this copy gives up owning them: a later write copies them again,
        so the returned column never changes."""
        if not any(self._owned):
            return self._base
        self._owned = bytearray(len(self.chunks))
        self._base = StatusColumn(tuple(self.chunks), self._n)
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
