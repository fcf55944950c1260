"""The FIFO ready queue, split into groups that can share a batch.

Jobmon keeps one deque and rotates through it to build each batch (spec §6.1), which costs
O(ready) per batch. Here the queue is a set of groups keyed by ``(array_id, resources)``,
each ordered by a readiness sequence number. Taking the group whose head has the smallest
sequence number, and the first k entries of it, yields exactly Jobmon's batches, and every
task left behind keeps its place.

Tasks enqueued at the back get increasing positive sequence numbers; tasks enqueued at the
front (ADJUSTING_RESOURCES) get decreasing negative ones, so the newest front entry comes
first, as with ``deque.appendleft``.

An entry packs ``(seq, index)`` into one int, ``seq << 32 | index`` (ints are not tracked
by the garbage collector, tuples are: at a million tasks that matters). Entries order like
their sequence numbers. An entry is live while the task's ``place`` equals ``seq``; a task
that leaves the queue for another reason just gets a new place, and its old entry is
dropped when it reaches the head (lazy deletion).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from attrs import frozen
from pyrsistent import PList, PVector, plist, pvector

from swarmfold.core.index_list import IndexList
from swarmfold.core.rerooted_column import through_numpy

Entry = int
_INDEX_BITS = 32
_INDEX_MASK = (1 << _INDEX_BITS) - 1


def make_entry(seq: int, index: int) -> Entry:
    return (seq << _INDEX_BITS) | index


def entry_seq(entry: Entry) -> int:
    return entry >> _INDEX_BITS


def entry_index(entry: Entry) -> int:
    return entry & _INDEX_MASK


def live_checker(place: object) -> Callable[[Entry], bool]:
    """``is_live(entry)`` for a ``place`` vector (or evolver)."""

    def is_live(entry: Entry) -> bool:
        current: int = place[entry & _INDEX_MASK]  # type: ignore[index]
        return current == entry >> _INDEX_BITS

    return is_live
#: Compact the back vector once this many consumed entries sit before its head.
_COMPACT_AFTER = 4096

_EMPTY_VECTOR: PVector[Entry] = pvector()
_EMPTY_LIST: PList[Entry] = plist()


@frozen
class ReadyGroup:
    """Entries of one ``(array_id, resources)`` group in readiness order."""

    front: PList[Entry] = _EMPTY_LIST
    back: PVector[Entry] = _EMPTY_VECTOR
    head: int = 0

    def is_empty(self) -> bool:
        return not self.front and self.head >= len(self.back)

    def extended(self, back_entries: list[Entry], front_entries: list[Entry]) -> ReadyGroup:
        """This group with entries pushed at the back (in order) and at the front (in order)."""
        front = self.front
        for entry in front_entries:
            front = front.cons(entry)
        back = self.back.extend(back_entries) if back_entries else self.back
        return ReadyGroup(front, back, self.head)

    def live_head(self, is_live: Callable[[Entry], bool]) -> tuple[ReadyGroup, Entry | None]:
        """Drop dead entries at the head; return the group and its first live entry."""
        front, back, head = self.front, self.back, self.head
        while front:
            entry = front.first
            if is_live(entry):
                return ReadyGroup(front, back, head), entry
            front = front.rest
        n = len(back)
        while head < n:
            entry = back[head]
            if is_live(entry):
                return _compacted(front, back, head), entry
            head += 1
        return ReadyGroup(front, _EMPTY_VECTOR, 0), None

    def take(self, k: int, place: Any) -> tuple[ReadyGroup, list[int]]:
        """Remove and return the indexes of the first ``k`` live entries (live: ``place[i] == seq``)."""
        out: list[int] = []
        front, back, head = self.front, self.back, self.head
        mask, bits = _INDEX_MASK, _INDEX_BITS
        while front and len(out) < k:
            entry = front.first
            front = front.rest
            i = entry & mask
            if place[i] == entry >> bits:
                out.append(i)
        n = len(back)
        want = k - len(out)
        if isinstance(place, array) and place.typecode == "q" and through_numpy(len(place), want):
            taken = None if out else _take_slice(back, head, want, place)
            if taken is not None:
                indexes, head = taken
                if len(indexes) == want or head >= n:
                    # One gather gave the whole batch: it keeps its array.
                    return _after_take(front, back, head, n), IndexList.of_array(indexes)
                out.extend(indexes.tolist())
                want -= len(indexes)
            head, want = _take_many(back, head, want, place, out)
        while head < n and want > 0:
            entry = back[head]
            head += 1
            i = entry & mask
            if place[i] == entry >> bits:
                out.append(i)
                want -= 1
        return _after_take(front, back, head, n), out

    def live_entries(self, is_live: Callable[[Entry], bool]) -> list[tuple[int, int]]:
        """Every live entry as ``(seq, index)``, in queue order (explanations, invariants)."""
        entries = [e for e in self.front if is_live(e)]
        entries.extend(e for e in self.back[self.head:] if is_live(e))
        return [(entry_seq(e), entry_index(e)) for e in entries]


def _after_take(front: PList[Entry], back: PVector[Entry], head: int, n: int) -> ReadyGroup:
    if head >= n:
        return ReadyGroup(front, _EMPTY_VECTOR, 0)
    return _compacted(front, back, head)


def _take_slice(
    back: PVector[Entry], head: int, want: int, place: Any
) -> tuple[npt.NDArray[np.int64], int] | None:
    """The live indexes among the next ``want`` entries of the back vector from ``head``
    (one gather of their places in numpy, with many reads in flight, where the walk waits
    for each), and the new head; ``None`` if an entry does not fit in 64 bits."""
    stop = min(len(back), head + want)
    try:
        entries = np.array(back[head:stop].tolist(), dtype=np.int64)
    except OverflowError:
        return None
    indexes = entries & _INDEX_MASK
    live = np.frombuffer(place, dtype=np.int64)[indexes] == entries >> _INDEX_BITS
    return (indexes if live.all() else indexes[live]), stop


def _take_many(back: PVector[Entry], head: int, want: int, place: Any, out: list[int]) -> tuple[int, int]:
    """``take``'s walk of the back vector for many entries of a big ``place`` column, a
    slice of ``want`` entries at a time (``_take_slice``), its live indexes appended to
    ``out`` in order. Stops where the walk would; returns the new ``(head, want)``. Leaves
    the rest to the walk if an entry does not fit in 64 bits."""
    n = len(back)
    while head < n and want > 0:
        taken = _take_slice(back, head, want, place)
        if taken is None:
            break
        indexes, head = taken
        out.extend(indexes.tolist())
        want -= len(indexes)
    return head, want


def _compacted(front: PList[Entry], back: PVector[Entry], head: int) -> ReadyGroup:
    if head > _COMPACT_AFTER and head * 2 > len(back):
        return ReadyGroup(front, pvector(back[head:]), 0)
    return ReadyGroup(front, back, head)
