"""A per-task column of ints whose versions share one array: persistent by rerooting.

A run's states follow one another, and each ``decide`` call writes a few hundred entries of
columns up to a million entries long, at random places (a DAG's edges are random). Copying
the column costs what exists; a persistent vector (a 32-way trie) costs a path copy, an
allocation and a cache miss per level for each write, and the freeing of the copied nodes
later. Here every version of a column shares one mutable ``array``, which holds the value of
exactly one version, the *root*. Every other version keeps only the entries where it differs
from its neighbour toward the root. Reading a version that is not the root first *re-roots*
the array at it: the entries on the way are undone, and the versions passed keep the entries
to redo them. This is Baker's shallow binding, as in Conchon and Filliâtre's persistent
arrays (2007). A fold that only ever reads its newest state pays one array write per write,
and nothing per version.

A version's value never changes; only where it is stored does. ``decide`` stays pure: its
input state reads the same before and after, and any older state can still be read (it is
re-rooted on first read, at the cost of the entries written since). The array is shared, so
the versions of one column must be read from one thread at a time, as each shell driver
does (each run has its own columns).

``RerootedColumn`` is the immutable value (``IntColumn`` holds ints; the status column holds
letters as bytes on the same storage); ``RerootedColumnTx`` is its working copy for one
``decide`` call. The working copy reads and writes the shared array directly (``values``; writes go
through ``write``/``fill``, which keep the old entries), and ``persistent()`` turns those
old entries into the input version's way back. Anything else that touches the column while a
working copy is open (a read of any version, another working copy) first *detaches* the
working copy onto a private copy of the array, so that no one ever sees an uncommitted
write.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, repeat
from operator import eq, itemgetter
from typing import Any, Self, TypeVar

import numpy as np
import numpy.typing as npt

from swarmfold.core.frozen import FrozenColumn
from swarmfold.core.index_list import IndexList, index_array

T = TypeVar("T")


#: A column longer than this is read through numpy when ``MANY`` or more entries are read at
#: once: its entries no longer sit in the CPU's caches, and numpy's loop has many reads in
#: flight where ``itemgetter`` waits for each (measured at 1M tasks, cold: 40 against 150 ns
#: a byte, 65 against 200 ns an int64). Shorter columns are read faster by ``itemgetter``.
BIG_COLUMN = 1 << 16
MANY = 32


def through_numpy(column_length: int, count: int) -> bool:
    """Whether ``count`` entries of a column ``column_length`` long are read or written
    through numpy (``BIG_COLUMN``, ``MANY``) rather than one at a time."""
    return count >= MANY and column_length > BIG_COLUMN
#: A family whose versions were handed more undo entries than its length (and at least this
#: many) is cut: the next version starts a family of its own, on a copy of the array. Whoever
#: holds an old version then keeps at most about one column's worth of entries alive (as a
#: persistent vector's old version keeps at most its own nodes), not every write since; the
#: copy costs a byte or eight per entry written, once per column length of writes.
CUT_AFTER = 4096


def gathered(values: Sequence[int], indexes: Sequence[int]) -> Sequence[int]:
    """``values[i]`` for each of ``indexes``, in order (in C)."""
    if len(indexes) > 1:
        return itemgetter(*indexes)(values)  # type: ignore[no-any-return]
    return [values[i] for i in indexes]


def numpy_view(values: array[int]) -> npt.NDArray[Any]:
    """``values`` as a numpy array sharing its memory."""
    return np.frombuffer(values, dtype=values.typecode)


class _Shared:
    """The array one family of versions shares, the version whose value it holds, and the
    working copy writing into it (if any)."""

    __slots__ = ("values", "root", "writer", "kept")

    def __init__(self, values: array[int]) -> None:
        self.values = values
        self.root: RerootedColumn[Any] | None = None
        self.writer: RerootedColumnTx | None = None
        #: Undo entries handed to the family's versions so far (``CUT_AFTER``).
        self.kept = 0

    def detach_writer(self) -> None:
        """Give the open working copy a private copy of the array (its writes included) and
        undo its writes here, so the family again holds exactly its root's value."""
        writer = self.writer
        if writer is None:
            return
        self.writer = None
        private = self.values
        self.values = array(private.typecode, private)
        _undo(self.values, writer._written, writer._old)
        writer._shared = _Shared(private)
        writer._detached = True


def _undo(values: array[int], indexes: Sequence[int], old: Sequence[int]) -> None:
    """Write ``old`` back at ``indexes``, latest first: the earliest old value of an index
    written twice wins."""
    for i, value in zip(reversed(indexes), reversed(old), strict=True):
        values[i] = value


class RerootedColumn(FrozenColumn[T]):
    """An immutable column, one entry a task, stored in an ``array`` that its versions share.

    Subclasses set ``TYPECODE`` (the array's) and ``_TX`` (their working copy's class) and
    say how an entry reads (``__getitem__``)."""

    __slots__ = ("_shared", "_n", "_toward", "_indexes", "_old")
    TYPECODE = "q"
    _TX: type[RerootedColumnTx] = None  # type: ignore[assignment]  # set by each subclass

    def __init__(self, shared: _Shared, n: int) -> None:
        """The root version of ``shared`` (use the builders)."""
        self._shared = shared
        self._n = n
        #: Not the root: the neighbour toward the root, and the entries (written in this
        #: order, the earliest old value wins) that turn its value into this one's.
        self._toward: RerootedColumn[T] | None = None
        self._indexes: Sequence[int] = []
        self._old: Sequence[int] = []
        shared.root = self

    @classmethod
    def _of_array(cls, values: array[int]) -> Self:
        return cls(_Shared(values), len(values))

    @classmethod
    def _from_bytes(cls, data: bytes) -> Self:
        values = array(cls.TYPECODE)
        values.frombytes(data)
        return cls._of_array(values)

    # --- reading ------------------------------------------------------------------------
    def _rooted(self) -> array[int]:
        """The shared array, holding this version's value."""
        shared = self._shared
        if shared.writer is not None:
            shared.detach_writer()
        if shared.root is not self:
            self._reroot()
        return shared.values

    def _reroot(self) -> None:
        """Make this version the root: walk toward the root, then undo the entries on the way
        back, nearest the root first, each passed version keeping the entries to redo them."""
        path: list[RerootedColumn[T]] = []
        version: RerootedColumn[T] = self
        while version._toward is not None:
            path.append(version)
            version = version._toward
        if version is not self._shared.root:
            raise RuntimeError("rerooted column: a version is not linked to its family's root (a bug)")
        values = self._shared.values
        for version in reversed(path):  # nearest the root first
            root = version._toward
            assert root is not None
            indexes, old = version._indexes, version._old
            touched = list(dict.fromkeys(indexes))
            root._indexes, root._old = touched, gathered(values, touched)
            _undo(values, indexes, old)
            root._toward = version
            version._toward, version._indexes, version._old = None, [], []
        self._shared.root = self

    def __len__(self) -> int:
        return self._n

    def tobytes(self) -> bytes:
        """The entries as the array's bytes."""
        return self._rooted().tobytes()

    def same_column(self, other: Self) -> bool:
        return self._n == other._n and self.tobytes() == other.tobytes()

    def __hash__(self) -> int:
        return hash(self.tobytes())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self)._from_bytes, (self.tobytes(),))

    def evolver(self) -> Any:
        return self._TX(self)


class RerootedColumnTx:
    """The working copy of a ``RerootedColumn`` for one ``decide`` call.

    ``values`` is the array to read (in C: ``values[i]``, ``itemgetter``); every write goes
    through ``write``, ``fill`` or ``assign``, which keep the entries they overwrite.
    ``persistent()`` freezes the result (a later write opens a new working copy of it);
    ``abort()`` undoes the writes.
    """

    __slots__ = ("_base", "_shared", "values", "_written", "_old", "_detached", "_done", "_view", "_viewed")

    def __init__(self, base: RerootedColumn[Any]) -> None:
        self._open(base)

    def _open(self, base: RerootedColumn[Any]) -> None:
        self._base = base
        self.values = base._rooted()
        shared = self._shared = base._shared
        shared.writer = self
        self._written: list[int] = []
        self._old: list[int] = []
        self._detached = False
        self._done = False
        self._view: npt.NDArray[Any] | None = None
        self._viewed: object = None

    def view(self) -> npt.NDArray[Any]:
        """``values`` as a numpy array (the same memory): read it, or write through
        ``fill``/``assign``/``add_at``, which keep the entries they overwrite."""
        view = self._view
        if view is None or self._viewed is not self.values:
            view = self._view = numpy_view(self.values)
            self._viewed = self.values
        return view

    def at(self, indexes: Sequence[int]) -> Sequence[int]:
        """``values[i]`` for each of ``indexes``, in order: through numpy for many entries
        of a big column, else ``itemgetter``."""
        if through_numpy(len(self.values), len(indexes)):
            return self.view()[index_array(indexes)].tolist()  # type: ignore[no-any-return]
        return gathered(self.values, indexes)

    def __len__(self) -> int:
        return len(self.values)

    def write(self, i: int, value: int) -> None:
        """Set entry ``i`` to ``value``."""
        if self._done:
            self._open(self._base)
        values = self.values
        self._written.append(i)
        self._old.append(values[i])
        values[i] = value

    def fill(self, indexes: Sequence[int], value: int) -> None:
        """Set every entry of ``indexes`` to ``value``."""
        if self._done:
            self._open(self._base)
        values = self.values
        if through_numpy(len(values), len(indexes)):
            view, at = self._kept_at(indexes)
            view[at] = value
            return
        self._written.extend(indexes)
        self._old.extend(gathered(values, indexes))
        for i in indexes:
            values[i] = value

    def replace(self, indexes: Sequence[int], old: int, new: int) -> list[int]:
        """Set the entries of ``indexes`` that hold ``old`` to ``new``; return those indexes,
        in order (an ``IndexList`` through numpy). One read serves both the test and the
        entries kept for undo."""
        if self._done:
            self._open(self._base)
        values = self.values
        replaced: list[int]
        if through_numpy(len(values), len(indexes)):
            view = self.view()
            at = index_array(indexes)
            holds = view[at] == old
            if not holds.all():
                at = at[holds]
            replaced = IndexList.of_array(at)
            view[at] = new
        else:
            replaced = list(compress(indexes, map(eq, gathered(values, indexes), repeat(old))))
            for i in replaced:
                values[i] = new
        self._written.extend(replaced)
        self._old.extend(repeat(old, len(replaced)))
        return replaced

    def _kept_at(
        self, indexes: Sequence[int] | npt.NDArray[Any]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
        """Keep the entries of ``indexes`` (about to be written through numpy); return the
        numpy view to write and ``indexes`` as an index array."""
        if self._done:
            self._open(self._base)
        view = self.view()
        at = index_array(indexes)
        # A list or tuple of ints is kept as it is (``at.tolist()`` would make the same ints).
        self._written.extend(indexes if isinstance(indexes, (list, tuple)) else at.tolist())
        self._old.extend(view[at].tolist())
        return view, at

    def assign(self, indexes: Sequence[int], new_values: Iterable[int]) -> None:
        """Set the entries of ``indexes`` to ``new_values``, pairwise."""
        if self._done:
            self._open(self._base)
        values = self.values
        self._written.extend(indexes)
        self._old.extend(self.at(indexes))
        for i, value in zip(indexes, new_values, strict=True):
            values[i] = value

    def persistent(self) -> Any:
        """The column as written: a new root version; the input version keeps its way back."""
        base = self._base
        if self._done:
            return base
        self._done = True
        shared = self._shared
        if self._detached:
            self._base = type(base)(shared, len(self.values))
            return self._base
        shared.writer = None
        written = self._written
        if not written:
            return base
        shared.kept += len(written)
        if shared.kept > max(base._n, CUT_AFTER):
            # Cut: the new version gets a copy of the array; the writes are undone here, so
            # the input version stays this family's root and needs no way back.
            values = self.values
            self.values = array(values.typecode, values)
            _undo(values, written, self._old)
            self._shared = _Shared(self.values)
            column = type(base)(self._shared, base._n)
        else:
            column = type(base)(shared, base._n)
            base._toward, base._indexes, base._old = column, written, self._old
        self._base = column
        return column

    def abort(self) -> None:
        """Undo every write (the call that opened this copy failed)."""
        if self._done:
            return
        self._done = True
        if not self._detached:
            _undo(self.values, self._written, self._old)
            self._shared.writer = None


class IntColumn(RerootedColumn[int]):
    """An immutable column of 64-bit ints. Build with ``IntColumn.of`` or ``filled``."""

    __slots__ = ()

    @classmethod
    def of(cls, values: Iterable[int]) -> IntColumn:
        """A column of ``values`` (a column is returned as it is)."""
        if isinstance(values, IntColumn):
            return values
        return cls._of_array(array(cls.TYPECODE, values))

    @classmethod
    def filled(cls, n: int, value: int) -> IntColumn:
        """``n`` entries of ``value``."""
        return cls._of_array(array(cls.TYPECODE, [value]) * n)

    def __getitem__(self, i: int) -> int:  # type: ignore[override]
        return self._rooted()[i]

    def __iter__(self) -> Iterator[int]:
        return iter(self.tolist())

    def tolist(self) -> list[int]:
        return self._rooted().tolist()

    def __repr__(self) -> str:
        values = self.tolist()
        shown = repr(values) if len(values) <= 12 else repr(values[:12])[:-1] + ", ...]"
        return f"IntColumn({shown})"


class IntColumnTx(RerootedColumnTx):
    """The working copy of an ``IntColumn``."""

    __slots__ = ()

    def __getitem__(self, i: int) -> int:
        return self.values[i]

    __setitem__ = RerootedColumnTx.write


IntColumn._TX = IntColumnTx


def int_column(values: Iterable[int]) -> IntColumn:
    """Field converter (mypy's attrs plugin takes a named function)."""
    return IntColumn.of(values)


EMPTY_INT_COLUMN = IntColumn.of(())

__all__ = [
    "EMPTY_INT_COLUMN",
    "IntColumn",
    "IntColumnTx",
    "RerootedColumn",
    "RerootedColumnTx",
    "gathered",
    "int_column",
    "numpy_view",
    "through_numpy",
]
