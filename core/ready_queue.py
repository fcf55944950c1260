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
dropped when it reaches the head (lazy deletion). A group's back entries are kept in chunks
(``Chunk``), one per ``decide`` call that pushed some, each packed as int64 bytes.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from attrs import frozen
from pyrsistent import PList, plist

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
#: A run of back entries pushed in one ``decide`` call, oldest first: their int64s packed
#: in native byte order (eight bytes an entry and no int object each, read by numpy with no
#: copy: a batch's entries are one slice), or a tuple when an entry does not fit in 64 bits.
Chunk = bytes | tuple[int, ...]

_EMPTY_LIST: PList[Entry] = plist()
#: Up to this many entries, ``array`` packs a chunk faster than numpy (a call's fixed cost).
_FEW = 64


def packed(entries: Sequence[Entry]) -> Chunk:
    """``entries`` as one chunk of the back of a group."""
    try:
        if len(entries) > _FEW:  # numpy converts many ints faster than ``array`` does
            return np.fromiter(entries, dtype=np.int64, count=len(entries)).tobytes()
        return array("q", entries).tobytes()
    except OverflowError:
        return tuple(entries)


def _entries(chunk: Chunk) -> Sequence[Entry]:
    """The entries of a chunk, each read as an int."""
    return memoryview(chunk).cast("q") if type(chunk) is bytes else chunk


@frozen
class ReadyGroup:
    """Entries of one ``(array_id, resources)`` group in readiness order: ``front`` (newest
    first), then the chunks of ``back`` from entry ``head`` of the first. No chunk is empty,
    and ``head`` lies inside the first one."""

    front: PList[Entry] = _EMPTY_LIST
    back: tuple[Chunk, ...] = ()
    head: int = 0

    def is_empty(self) -> bool:
        return not self.front and not self.back

    def back_entries(self) -> list[Entry]:
        """The entries of ``back`` from ``head`` on, in order (invariants, tests)."""
        entries: list[Entry] = []
        for k, chunk in enumerate(self.back):
            entries.extend(_entries(chunk)[self.head if k == 0 else 0:])
        return entries

    def extended(self, back_entries: list[Entry], front_entries: list[Entry]) -> ReadyGroup:
        """This group with entries pushed at the back (in order) and at the front (in order)."""
        front = self.front
        for entry in front_entries:
            front = front.cons(entry)
        back = (*self.back, packed(back_entries)) if back_entries else self.back
        return ReadyGroup(front, back, self.head)

    def live_head(self, is_live: Callable[[Entry], bool]) -> tuple[ReadyGroup, Entry | None]:
        """Drop dead entries at the head; return the group and its first live entry."""
        front, back, head = self.front, self.back, self.head
        while front:
            entry = front.first
            if is_live(entry):
                return ReadyGroup(front, back, head), entry
            front = front.rest
        while back:
            entries = _entries(back[0])
            for position in range(head, len(entries)):
                entry = entries[position]
                if is_live(entry):
                    return ReadyGroup(front, back, position), entry
            back, head = back[1:], 0
        return ReadyGroup(front, (), 0), None

    def take(self, k: int, place: Any) -> tuple[ReadyGroup, list[int]]:
        """Remove and return the indexes of the first ``k`` live entries (live: ``place[i] == seq``).

        For many entries of a big ``place`` column, each chunk's slice is checked in numpy
        (one gather of their places, with many reads in flight, where a walk waits for each);
        a batch taken from one slice keeps its array (``IndexList``)."""
        out: list[int] = []
        front, back, head = self.front, self.back, self.head
        mask, bits = _INDEX_MASK, _INDEX_BITS
        while front and len(out) < k:
            entry = front.first
            front = front.rest
            i = entry & mask
            if place[i] == entry >> bits:
                out.append(i)
        want = k - len(out)
        view = None
        if isinstance(place, array) and place.typecode == "q" and through_numpy(len(place), want):
            view = np.frombuffer(place, dtype=np.int64)
        single: npt.NDArray[np.int64] | None = None  # the batch, while one slice gave all of it
        while back and want > 0:
            if single is not None:  # a second piece: the batch is not one slice
                out.extend(single.tolist())
                single = None
            chunk = back[0]
            if view is not None and type(chunk) is bytes:
                part = np.frombuffer(chunk, dtype=np.int64)[head:head + want]
                indexes = part & mask
                live = view[indexes] == part >> bits
                taken = indexes if live.all() else indexes[live]
                if out:
                    out.extend(taken.tolist())
                else:
                    single = taken
                want -= len(taken)
                head += len(part)
                n = len(chunk) >> 3
            else:
                entries = _entries(chunk)
                n = len(entries)
                while head < n and want > 0:
                    # The next ``want`` entries as ints at once: at most ``want`` are live.
                    stop = min(n, head + want)
                    for entry in entries[head:stop]:
                        i = entry & mask
                        if place[i] == entry >> bits:
                            out.append(i)
                            want -= 1
                    head = stop
            if head >= n:
                back, head = back[1:], 0
        group = ReadyGroup(front, back, head)
        if single is not None:
            return group, IndexList.of_array(single)
        return group, out

    def live_entries(self, is_live: Callable[[Entry], bool]) -> list[tuple[int, int]]:
        """Every live entry as ``(seq, index)``, in queue order (explanations, invariants)."""
        entries = [e for e in self.front if is_live(e)]
        entries.extend(e for e in self.back_entries() if is_live(e))
        return [(entry_seq(e), entry_index(e)) for e in entries]
