"""Task-id lists in the event log, written as runs of consecutive ids when that is shorter.

A full sync answers with every task id of the workflow; at a million tasks each such record
is ~7 MB of plain JSON, and the log of a run is mostly those lists. Ids are mostly handed out
in blocks, so a long list is written as ``{"runs": [first1, count1, first2, count2, ...]}``
(the ids ``first1 .. first1 + count1 - 1``, then ``first2 ...``), in the list's own order.

The choice is canonical, so logs stay byte-stable: a list is written as runs when it has at
least ``MIN_IDS`` ids, every id fits in 64 bits, and the runs take at most half the numbers
(on average four or more ids per run); otherwise it is the plain array. Reading accepts both
forms for any list. Only the event log uses this form (log version 2); ``to_json`` and every
other JSON output keep plain arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from swarmfold.core.id_array import PACK_ABOVE, IdArray, id_column
from swarmfold.shell.log.codec import CodecError, _show, ints_only

__all__ = ["MAX_IDS", "MIN_IDS", "RUNS", "compact_by_status", "compact_ids", "expand_ids"]

#: The key of the runs object.
RUNS = "runs"
#: Shorter lists are always written plain.
MIN_IDS = 64
#: The most ids one runs object may stand for when read (a bound on what a damaged count
#: can make the reader allocate).
MAX_IDS = 100_000_000

_INT64 = np.iinfo(np.int64)
#: Up to this many numbers (32 runs) a runs object is expanded without numpy, whose fixed
#: cost is larger than the loop's; anything unusual goes to the checks below.
_FEW_NUMBERS = 64


def compact_ids(ids: Sequence[int]) -> Any:
    """``ids`` as the log writes it: the ids themselves (a list for an ``IdArray``), or
    ``{"runs": [...]}``."""
    n = len(ids)
    packed = type(ids) is IdArray
    if n < MIN_IDS:
        return list(ids) if packed else ids
    if not packed:
        first = ids[0]
        last = ids[-1]
        one_block = type(first) is type(last) is int and last - first == n - 1
        if one_block and ids == tuple(range(first, last + 1)):
            if _INT64.min <= first and first + n - 1 <= _INT64.max:
                return {RUNS: [first, n]}  # one block (a batch of an array's tasks): no numpy
            return ids
    column = id_column(ids)
    if column is None:
        return ids  # an id beyond 64 bits (or not an int: the codec names it)
    starts = np.flatnonzero(np.diff(column) != 1) + 1
    runs = len(starts) + 1
    if 4 * runs > n:
        return list(ids) if packed else ids
    flat = np.empty(2 * runs, np.int64)
    flat[0::2] = column[np.concatenate(([0], starts))]
    flat[1::2] = np.diff(np.concatenate(([0], starts, [n])))
    return {RUNS: flat.tolist()}


def compact_by_status(by_status: Mapping[str, Sequence[int]]) -> Any:
    """A ``tasks_by_status`` map as the log writes it (the map itself when nothing is long
    and nothing is packed)."""
    if all(len(ids) < MIN_IDS and type(ids) is not IdArray for ids in by_status.values()):
        return by_status
    return {status: compact_ids(ids) for status, ids in by_status.items()}


def expand_ids(value: dict[str, Any]) -> tuple[int, ...] | IdArray:
    """The ids a runs object stands for; ``CodecError`` naming the problem (``$.runs...``).
    More than ``PACK_ABOVE`` ids come as an ``IdArray`` (no Python int per id)."""
    if RUNS not in value:
        raise CodecError([f"$.{RUNS}: required field missing"])
    if len(value) > 1:
        extra = ", ".join(sorted(map(str, value.keys() - {RUNS})))
        raise CodecError([f"$: unknown field(s) in an id runs object: {extra}"])
    flat = value[RUNS]
    if type(flat) is not list:
        raise CodecError([f"$.{RUNS}: expected an array of ints, got {_show(flat)}"])
    if not ints_only(flat):
        i, bad = next((i, v) for i, v in enumerate(flat) if type(v) is not int)
        raise CodecError([f"$.{RUNS}[{i}]: expected int, got {_show(bad)}"])
    if len(flat) % 2:
        raise CodecError([f"$.{RUNS}: expected pairs of first id and count, got {len(flat)} numbers"])
    if len(flat) <= _FEW_NUMBERS and all(n >= 1 for n in flat[1::2]):
        total = sum(flat[1::2])
        if total <= PACK_ABOVE and all(_INT64.min <= x and x + n - 1 <= _INT64.max for x, n in _pairs(flat)):
            out: list[int] = []
            for x, n in _pairs(flat):
                out += range(x, x + n)
            return tuple(out)
    try:
        column = np.array(flat, np.int64)
    except OverflowError:
        i = next(i for i, v in enumerate(flat) if not _INT64.min <= v <= _INT64.max)
        raise CodecError([f"$.{RUNS}[{i}]: {flat[i]} does not fit in 64 bits"]) from None
    firsts, counts = column[0::2], column[1::2]
    if len(counts) and counts.min() < 1:
        i = int(np.argmax(counts < 1))
        raise CodecError([f"$.{RUNS}[{2 * i + 1}]: a run's count must be at least 1, got {counts[i]}"])
    total = int(counts.sum(dtype=np.float64))  # a float sum: huge counts cannot wrap around
    if total > MAX_IDS:
        raise CodecError([f"$.{RUNS}: stands for {total:,} ids, more than the {MAX_IDS:,} a list may hold"])
    past = firsts > _INT64.max - counts + 1  # each count is at most MAX_IDS here
    if past.any():
        i = int(np.argmax(past))
        raise CodecError([f"$.{RUNS}[{2 * i}]: the run from {firsts[i]} goes past 64 bits"])
    offsets = np.cumsum(counts) - counts
    ids = np.repeat(firsts - offsets, counts) + np.arange(total, dtype=np.int64)
    return IdArray(ids)


def _pairs(flat: list[int]) -> zip[tuple[int, int]]:
    return zip(flat[0::2], flat[1::2], strict=True)
