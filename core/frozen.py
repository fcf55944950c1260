"""Read-only containers for values the core shares: event payloads and the topology.

``FrozenDict`` is a ``dict`` that refuses every change after it is built. It keeps a dict's
insertion order (the core iterates payloads in the order the server sent them, so order is
part of a decision) and a dict's read speed (the topology's maps are read per task).
``frozen_ints`` turns an ``array`` of ints into a read-only ``memoryview`` over it: same
indexing speed, no copy, no way to write through it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar

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

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict[K, V]:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


def freeze_map(value: Mapping[K, V] | Iterable[tuple[K, V]]) -> FrozenDict[K, V]:
    """``value`` as a ``FrozenDict`` (itself when it already is one)."""
    if type(value) is FrozenDict:
        return value
    return FrozenDict(value)


def frozen_ints(values: Iterable[int]) -> memoryview:
    """A read-only view of ``values`` as 64-bit ints (an ``array("q")`` is not copied)."""
    if isinstance(values, memoryview) and values.readonly:
        return values
    if not (isinstance(values, array) and values.typecode == "q"):
        values = array("q", values)
    return memoryview(values).toreadonly()
