"""Task-id lists in the event log, written as runs or as a bitmap when that is shorter.

A full sync answers with every task id of the workflow; at a million tasks each such record
is ~7 MB of plain JSON, and the log of a run is mostly those lists. Ids are mostly handed out
in blocks, so a long list is written as ``{"runs": [first1, count1, first2, count2, ...]}``
(the ids ``first1 .. first1 + count1 - 1``, then ``first2 ...``), in the list's own order
(log version 2). A long list in increasing order that is not made of long runs (the tasks of a
layer that are DONE so far, say) is written as ``{"bits": [first, span, "<base64>"]}``: bit
``k`` (little-endian within each byte) of the base64 bytes is set when ``first + k`` is in the
list, for ``k < span`` (log version 4).

The choice is canonical, so logs stay byte-stable: a list is written short only when it has
at least ``MIN_IDS`` ids and every id fits in 64 bits. It is a bitmap when the ids increase,
span at most ``BITS_SPAN`` times their number (at most two bytes an id, where the plain
array takes about eight) and at most ``BITS_PER_RUN`` times the runs they make (the bitmap
is then the shorter); else runs when they take at most half the numbers (on average four or
more ids per run); else a bitmap when the ids increase and span at most ``BITS_SPAN`` times
their number; otherwise it is the plain array. Reading accepts every form for any list. Only
the event log uses these forms; ``to_json`` and every other JSON output keep plain arrays.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from swarmfold.core.id_array import PACK_ABOVE, IdArray, id_column
from swarmfold.shell.log.codec import CodecError, _show, int64_array, ints_only

__all__ = [
    "BITS", "BITS_PER_RUN", "MAX_IDS", "MIN_IDS", "RUNS", "compact_by_status", "compact_ids", "expand_ids",
]

#: The key of the runs object.
RUNS = "runs"
#: The key of the bitmap object, and the widest span it is written for, per id.
BITS = "bits"
BITS_SPAN = 16
#: A list that could be written as runs is a bitmap instead when its span is at most this
#: many ids a run: the bitmap then takes at most two bytes a run, where a run takes two
#: numbers (four characters at the least). A full sync's REGISTERING tasks at a million
#: tasks are about 80,000 short runs: about 730 kB of runs, against 165 kB of bitmap.
BITS_PER_RUN = 16
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
    steps = np.diff(column)
    starts = np.flatnonzero(steps != 1) + 1
    runs = len(starts) + 1
    span = int(column[-1]) - int(column[0]) + 1  # Python ints: no wrap-around
    as_bits = span <= BITS_SPAN * n and bool((steps > 0).all())
    if as_bits and (4 * runs > n or span <= BITS_PER_RUN * runs):
        return {BITS: _bitmap(column, span)}
    if 4 * runs > n:
        return list(ids) if packed else ids
    flat = np.empty(2 * runs, np.int64)
    flat[0::2] = column[np.concatenate(([0], starts))]
    flat[1::2] = np.diff(np.concatenate(([0], starts, [n])))
    return {RUNS: flat.tolist()}


def _bitmap(column: np.ndarray[Any, np.dtype[np.int64]], span: int) -> list[Any]:
    bits = np.zeros(span, dtype=np.uint8)
    bits[column - column[0]] = 1
    text = base64.b64encode(np.packbits(bits, bitorder="little").tobytes()).decode("ascii")
    return [int(column[0]), span, text]


def compact_by_status(by_status: Mapping[str, Sequence[int]]) -> Any:
    """A ``tasks_by_status`` map as the log writes it (the map itself when nothing is long
    and nothing is packed)."""
    if all(len(ids) < MIN_IDS and type(ids) is not IdArray for ids in by_status.values()):
        return by_status
    return {status: compact_ids(ids) for status, ids in by_status.items()}


def expand_ids(value: dict[str, Any]) -> tuple[int, ...] | IdArray:
    """The ids a runs or bitmap object stands for; ``CodecError`` naming the problem
    (``$.runs...``). More than ``PACK_ABOVE`` ids come as an ``IdArray`` (no Python int per id)."""
    if BITS in value and len(value) == 1:
        return _expand_bits(value[BITS])
    if RUNS not in value:
        raise CodecError([f"$.{RUNS}: required field missing"])
    if len(value) > 1:
        extra = ", ".join(sorted(map(str, value.keys() - {RUNS})))
        raise CodecError([f"$: unknown field(s) in an id runs object: {extra}"])
    flat = value[RUNS]
    if type(flat) is not list:
        raise CodecError([f"$.{RUNS}: expected an array of ints, got {_show(flat)}"])
    checked = int64_array(flat) if len(flat) > _FEW_NUMBERS else None
    if checked is None and not ints_only(flat):
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
        column = np.frombuffer(checked, np.int64) if checked is not None else np.array(flat, np.int64)
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


def _expand_bits(value: Any) -> tuple[int, ...] | IdArray:
    at = f"$.{BITS}"
    if type(value) is not list or len(value) != 3:
        raise CodecError([f"{at}: expected [first id, span, base64 bitmap], got {_show(value)}"])
    first, span, text = value
    for k, (item, kind) in enumerate(((first, int), (span, int), (text, str))):
        if type(item) is not kind:
            raise CodecError([f"{at}[{k}]: expected {kind.__name__}, got {_show(item)}"])
    if not 1 <= span <= MAX_IDS * BITS_SPAN:
        raise CodecError([f"{at}[1]: expected a span from 1 to {MAX_IDS * BITS_SPAN:,}, got {span}"])
    if not (_INT64.min <= first and first + span - 1 <= _INT64.max):
        raise CodecError([f"{at}[0]: ids from {first} over a span of {span} do not fit in 64 bits"])
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError([f"{at}[2]: not base64: {exc}"]) from None
    if len(data) != (span + 7) // 8:
        raise CodecError([f"{at}[2]: expected {(span + 7) // 8} bytes for a span of {span}, got {len(data)}"])
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    if bits[span:].any():
        raise CodecError([f"{at}[2]: bits set past the span of {span}"])
    found = np.flatnonzero(bits) + first
    if len(found) > MAX_IDS:
        raise CodecError([f"{at}: stands for {len(found):,} ids, more than the {MAX_IDS:,} a list may hold"])
    if len(found) > PACK_ABOVE:
        return IdArray(found.astype(np.int64, copy=False))
    return tuple(found.tolist())


def _pairs(flat: list[int]) -> zip[tuple[int, int]]:
    return zip(flat[0::2], flat[1::2], strict=True)
