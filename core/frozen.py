"""Read-only containers for values the core shares: event payloads and the topology.

``FrozenDict`` is a ``dict`` that refuses every change after it is built (``set`` and
``discard`` return changed copies, as a ``PMap``'s do). It keeps a dict's
insertion order (the core iterates payloads in the order the server sent them, so order is
part of a decision) and a dict's read speed (the topology's maps are read per task).
``frozen_ints`` turns an ``array`` of ints into a read-only ``memoryview`` over it: same
indexing speed, no copy, no way to write through it. ``FrozenColumn`` is what the state's
per-task columns (statuses, upstream counts) share: a one-value change through their
working copy, and equality with any sequence of the same values.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn, Self, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(dict[K, V]):
    """An immutable, hashable ``dict``: reads are a dict's, every write raises ``TypeError``."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> FrozenDict[K, V]:
        self = super().__new__(cls)
        dict.__init__(self, *args, **kwargs)
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Filled by ``__new__``: calling ``__init__`` again cannot change it."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is read-only")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def set(self, key: K, value: V) -> FrozenDict[K, V]:
        """A copy with ``key`` set to ``value`` (as ``PMap.set``: this one is unchanged)."""
        changed = dict(self)
        changed[key] = value
        return type(self)(changed)

    def discard(self, key: K) -> FrozenDict[K, V]:
        """A copy without ``key`` (as ``PMap.discard``: this one is unchanged)."""
        if key not in self:
            return self
        changed = dict(self)
        del changed[key]
        return type(self)(changed)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict[K, V]:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


class FrozenColumn(Sequence[V]):
    """An immutable per-task column whose ``evolver()`` is a working copy with a
    ``persistent()`` freeze (as a pvector's)."""

    __slots__ = ()

    def evolver(self) -> Any:
        raise NotImplementedError

    def tolist(self) -> list[V]:
        raise NotImplementedError

    def set(self, i: int, value: V) -> Self:
        """This column with task ``i`` at ``value`` (a copy; this one is unchanged)."""
        ev = self.evolver()
        ev[i] = value
        column: Self = ev.persistent()
        return column

    def same_column(self, other: Self) -> bool:
        """Equality with another column of the same class (compared in bulk)."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.same_column(other)
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == len(self) and self.tolist() == list(other)
        return NotImplemented


def freeze_map(value: Mapping[K, V] | Iterable[tuple[K, V]]) -> FrozenDict[K, V]:
    """``value`` as a ``FrozenDict`` (itself when it already is one)."""
    if type(value) is FrozenDict:
        return value
    return FrozenDict(value)


#: The ``array`` typecodes (and ``memoryview`` formats) of signed ints.
INT_TYPECODES = frozenset("bhilq")


def frozen_ints(values: Iterable[int]) -> memoryview:
    """A read-only view of ``values`` as ints: an ``array`` of signed ints is kept at its
    width (not copied: a narrow column stays narrow), anything else becomes 64-bit."""
    if isinstance(values, memoryview) and values.readonly:
        return values
    if not (isinstance(values, array) and values.typecode in INT_TYPECODES):
        values = array("q", values)
    return memoryview(values).toreadonly()
