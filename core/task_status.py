"""Applying task statuses reported by the server (spec §2 ``apply_update``, §4).

Reports are applied in two steps, as in Jobmon: first every status is written (counts and
per-array active counts follow), then each changed task is processed by its new status.

Which changes are accepted (``ENTERED_FROM``), how a changed task reacts (``REACTIONS``)
and what an unchanged G/A report does to a task sitting nowhere (``HEALS``) are the tables
of core/transitions.py. Policies (see docs/decisions.md):
- a report for an unknown task id is ignored (Jobmon filters them client-side);
- an unknown status code is not applied; it is recorded with ``NoteAnomaly``;
- ERROR_RECOVERABLE (E) is a transient, non-active status, not a crash (quirk Q1).

A group above ``bulk_status_threshold`` ids is decided in C: a group listing an eighth of
the workflow or more, or above ``SPLIT_ABOVE`` ids (a full sync's), is first filtered
against the status column with a few numpy calls (``_split``), then the rest is applied at
once through byte masks (``_apply_group_at_once``); a small group, or one listing an id
twice, is applied task by task. All paths decide the same (property_tests/test_bulk_reports.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import compress, repeat
from operator import eq, sub
from typing import Any

import numpy as np
import numpy.typing as npt

from swarmfold.core.id_array import id_column
from swarmfold.core.index_list import IndexList, index_array
from swarmfold.core.readiness import leave_ready_queue, upstreams_all_done
from swarmfold.core.state import NOWHERE, Tx, count_in_ready_queue, in_ready_queue
from swarmfold.core.status_column import status_mask
from swarmfold.core.statuses import ACTIVE, QUEUEABLE
from swarmfold.core.topology import DenseIndex, ints_at
from swarmfold.core.transitions import ENTERED_FROM, HEALS, REACTIONS


def _moves_to(code: str) -> Callable[[str], bool]:
    return lambda old: old != code and old in ENTERED_FROM[code]


def _flips_activity_of(code: str) -> Callable[[str], bool]:
    return lambda old: (old in ACTIVE) is not (code in ACTIVE)


#: ``bytes.translate`` tables per reported code: which current letters are the same, may
#: move to it (``ENTERED_FROM``), or flip between active and not.
_SAME = {code: status_mask(code.__eq__) for code in ENTERED_FROM}
_MOVES = {code: status_mask(_moves_to(code)) for code in ENTERED_FROM}
_FLIPS_ACTIVE = {code: status_mask(_flips_activity_of(code)) for code in ENTERED_FROM}
_QUEUEABLE = status_mask(QUEUEABLE.__contains__)
#: The statuses a task may move to each code from, in a fixed order.
_SOURCES = {code: sorted(old for old in ENTERED_FROM[code] if old != code) for code in ENTERED_FROM}


#: A status group of more ids than this is filtered against the status column first
#: (``_split``) even when it lists less than an eighth of the workflow: a full sync's DONE
#: group grows through the run, and almost all of it is unchanged.
SPLIT_ABOVE = 4096


def _filtered_first(n_ids: int, n_tasks: int, bulk: int) -> bool:
    """Whether a group of ``n_ids`` is first filtered against the status column (``_split``):
    a full sync's groups (an eighth of the workflow or more, or above ``SPLIT_ABOVE``)."""
    return n_ids > bulk and (n_ids * 8 >= n_tasks or n_ids > SPLIT_ABOVE)


def _split(
    tx: Tx, task_ids: Sequence[int], code: str, first: int, queueable: bool
) -> tuple[list[int], list[int]] | None:
    """``(ids whose status is not code, indexes of unchanged queueable tasks to heal)``, or
    ``None`` when an id is not an int of 64 bits (the per-task path then decides). An id
    outside the workflow is among the first (the per-task path then ignores it).

    A few numpy calls over the whole group (a gather from the status column as it stands,
    a compare, a count): a full sync reports every task, and almost all of them are
    unchanged.
    """
    ids = id_column(task_ids)
    if ids is None:
        return None
    same = _by_id(tx.status.codes(), ids, first) == ord(code)
    unchanged = int(np.count_nonzero(same))
    differing: list[int] = [] if unchanged == len(ids) else ids[~same].tolist()
    if not queueable or not unchanged:
        return differing, []
    return differing, _ready_and_nowhere_of_many(tx, code, ids, first, None if not differing else same)


def _by_id(column: npt.NDArray[Any], ids: npt.NDArray[np.int64], first: int) -> npt.NDArray[Any]:
    """``column[id - first]`` for each of ``ids``, and 0 for an id outside the column.

    The column is copied between zeros that stand for the ids below the first task and
    above the last, so ``ids`` index the copy as they are: no ``ids - first`` (a new array
    as big as ``ids``). A negative id, or one past the zero above the last task, reads a zero
    through ``np.take``'s clip mode (slower than plain indexing: kept for that case)."""
    lead = first if first > 0 else 1
    padded = np.zeros(lead + len(column) + 1, dtype=column.dtype)
    padded[lead:lead + len(column)] = column
    at = ids if first > 0 else ids + 1
    if len(at) and at.min() >= 0:
        try:
            return padded[at]
        except IndexError:
            pass
    return np.take(padded, at, mode="clip")


def _ready_and_nowhere_of_many(
    tx: Tx, code: str, ids: npt.NDArray[np.int64], first: int, same: npt.NDArray[np.bool_] | None
) -> list[int]:
    """``_ready_and_nowhere`` of the tasks of ``ids`` whose status is ``code`` (those where
    ``same`` is true; every one when ``same`` is ``None``), as indexes, for a group too big
    to gather from: the whole column is tested instead, with byte-wide compares (status,
    upstream counts) and no gather, and the few tasks found are kept in the order of
    ``ids``. A full sync's G tasks are half a million at a million tasks, and next to none
    of them is ready and sitting nowhere."""
    found = np.flatnonzero((tx.status.codes() == ord(code)) & upstreams_all_done(tx))
    if len(found):
        found = found[tx.place.view()[found] == NOWHERE]
    if not len(found):
        return []
    member = np.zeros(len(tx.status), dtype=bool)
    member[found] = True
    kept = _by_id(member, ids, first)
    if same is not None:
        kept &= same
    return (ids[kept] - first).tolist()  # type: ignore[no-any-return]


def _ready_and_nowhere(tx: Tx, indexes: list[int]) -> list[int]:
    """The tasks of ``indexes`` whose upstreams are all DONE and that sit nowhere: the
    readiness test runs in numpy over all of them, the place test on the ready ones."""
    at = index_array(indexes)
    return _nowhere(tx, at[upstreams_all_done(tx, at)].tolist())


def _nowhere(tx: Tx, indexes: list[int]) -> list[int]:
    """The tasks of ``indexes`` in no queue, no batch and no evaluation."""
    if not indexes:
        return indexes
    places = tx.place.at(indexes)
    return list(compress(indexes, map(eq, places, repeat(NOWHERE))))


def apply_reports(
    tx: Tx,
    tasks_by_status: Mapping[str, Sequence[int]],
    source: str,
    indexes_if_listed_once: list[list[int]] | None = None,
    landed_batch_of: int | None = None,
) -> int:
    """Apply ``{status: [task_id, ...]}``; return how many tasks changed status.

    ``indexes_if_listed_once``: each group's task indexes, when the caller knows the report
    lists every task once and only tasks of the workflow (a batch answer naming the batch);
    else they are found and checked here. ``landed_batch_of``: the report answers a batch of
    this array whose tasks have all just landed (with ``indexes_if_listed_once``): they sit
    nowhere and are all of that array."""
    topo = tx.topo
    index_of = topo.index_of
    get_index = index_of.get
    if isinstance(index_of, DenseIndex):
        dense, first, n_tasks = True, index_of.first, index_of.n
    else:
        dense, first, n_tasks = False, 0, 0
    array_of = topo.array_of
    status = tx.status
    place = tx.place.values
    counts = tx.status_counts
    active_delta: dict[int, int] = {}
    changed: list[tuple[str, list[int], list[str]]] = []
    original: dict[int, str] = {}  # status before this report, for tasks listed twice
    unchanged_queueable: list[int] = []
    stale = 0
    n_changed = 0
    # Above this many ids per status, unchanged tasks are filtered out with C-level maps
    # first: a full sync reports every task, and almost all of them are unchanged.
    bulk = tx.config.bulk_status_threshold
    # A report that lists each task once (as the server does) needs no record of tasks
    # listed twice; its groups' indexes are found and checked at once.
    listed_once = indexes_if_listed_once
    if listed_once is None and dense:
        listed_once = _listed_once(tasks_by_status, first, n_tasks, bulk)
    for position, (code, task_ids) in enumerate(tasks_by_status.items()):
        known = None if listed_once is None else listed_once[position]
        entered_from = ENTERED_FROM.get(code)
        if entered_from is None:
            tx.note(
                "unknown_task_status",
                f"{source}: status code {code!r} for {len(task_ids)} task(s), "
                f"e.g. {list(task_ids)[:5]}; not applied",
            )
            continue
        code_active = code in ACTIVE
        code_queueable = code in HEALS
        indexes: list[int] = []
        olds: list[str] = []
        moved: dict[str, int] = {}
        if dense and _filtered_first(len(task_ids), n_tasks, bulk):
            split = _split(tx, task_ids, code, first, code_queueable)
            if split is not None:
                task_ids, heal = split
                unchanged_queueable.extend(heal)
        # A group known to list each task once (a batch answer naming the batch) is applied
        # at once whatever its size: no per-task bookkeeping of tasks listed twice is needed.
        if dense and (known is not None or len(task_ids) > bulk) and len(task_ids) > 1:
            at_once = _apply_group_at_once(
                tx, code, task_ids, first, n_tasks, original, active_delta, known, landed_batch_of
            )
            if at_once is not None:
                heal, changed_group, old_statuses, moved_from, n_stale = at_once
                unchanged_queueable.extend(heal)
                stale += n_stale
                if changed_group:
                    for old, k in moved_from.items():
                        counts[old] = counts.get(old, 0) - k
                    counts[code] = counts.get(code, 0) + len(changed_group)
                    changed.append((code, changed_group, old_statuses))
                    n_changed += len(changed_group)
                continue
        if known is not None:
            at = known
        elif dense:
            at = [i for i in map(sub, task_ids, repeat(first)) if 0 <= i < n_tasks]
        else:
            at = [i for i in map(get_index, task_ids) if i is not None]
        for i in at:
            old = status[i]
            if old == code:
                if code_queueable and place[i] == NOWHERE:
                    unchanged_queueable.append(i)
                continue
            if old not in entered_from:
                stale += 1
                continue
            status[i] = code
            moved[old] = moved.get(old, 0) + 1
            if (old in ACTIVE) is not code_active:
                a = array_of[i]
                active_delta[a] = active_delta.get(a, 0) + (1 if code_active else -1)
            if not code_queueable and old in QUEUEABLE and in_ready_queue(place[i]):
                leave_ready_queue(tx, i)
            indexes.append(i)
            olds.append(old if known is not None else original.setdefault(i, old))
        if indexes:
            for old, k in moved.items():
                counts[old] = counts.get(old, 0) - k
            counts[code] = counts.get(code, 0) + len(indexes)
            changed.append((code, indexes, olds))
            n_changed += len(indexes)
    if active_delta:
        active_by_array = tx.active_by_array
        for a, delta in active_delta.items():
            active_by_array.set(a, active_by_array.get(a, 0) + delta)
    if stale:
        tx.note("stale_report", f"{source}: {stale} report(s) would move a DONE/FATAL task "
                "somewhere other than REGISTERING; ignored")
    if listed_once is None and len(original) != n_changed:
        # A task listed under several codes reacts once, by its final status (and not at
        # all if it ends where it started).
        changed = [
            (code, *_final_only(status, code, indexes, olds)) for code, indexes, olds in changed
        ]
    for code, indexes, olds in changed:
        _process_changes(tx, code, indexes, olds)
    for i in unchanged_queueable:
        _heal(tx, i)
    return n_changed


def _listed_once(
    tasks_by_status: Mapping[str, Sequence[int]], first: int, n_tasks: int, bulk: int
) -> list[list[int]] | None:
    """Each group's task indexes, in order, when the report lists every task once and only
    tasks of the workflow; else ``None``, and each group is checked as it is applied.

    One gather, sort and compare over the whole report (a few numpy calls), where a check
    per group builds a dict of its indexes and records each change's old status. Also
    ``None`` for a small report (checked per group at no great cost) and for a full sync
    (its groups are first filtered against the status column: ``_split``).
    """
    sizes = [len(ids) for ids in tasks_by_status.values()]
    total = sum(sizes)
    if total <= bulk or any(_filtered_first(n, n_tasks, bulk) for n in sizes):
        return None
    columns = []
    for ids in tasks_by_status.values():
        column = id_column(ids)
        if column is None:
            return None
        columns.append(column)
    indexes = (np.concatenate(columns) if len(columns) > 1 else columns[0]) - first
    if indexes.min() < 0 or indexes.max() >= n_tasks:
        return None
    ordered = np.sort(indexes)
    if (ordered[1:] == ordered[:-1]).any():
        return None
    groups: list[list[int]] = []
    start = 0
    for n in sizes:
        groups.append(IndexList.of_array(indexes[start:start + n]))
        start += n
    return groups


def _apply_group_at_once(
    tx: Tx,
    code: str,
    task_ids: Sequence[int],
    first: int,
    n_tasks: int,
    original: dict[int, str],
    active_delta: dict[int, int],
    known: list[int] | None = None,
    landed_batch_of: int | None = None,
) -> tuple[list[int], list[int], list[str], dict[str, int], int] | None:
    """Apply one status group in a few C-level passes over byte masks: the group's current
    statuses are gathered as bytes, and ``bytes.translate`` marks which tasks are unchanged,
    which may move (``ENTERED_FROM``) and which would be stale. Decides exactly what the
    per-task path does, in the same order.

    Returns ``(unchanged tasks to heal, changed indexes, their old statuses, how many moved
    from each old status, stale count)``,
    or ``None`` when the group lists an id twice, a task already changed under another code,
    or an id outside the workflow: the per-task path then decides. ``known``: the group's
    indexes, already checked with the whole report (``_listed_once``); ``original`` is then
    neither read nor written.
    """
    if known is not None:
        indexes = known
    else:
        if min(task_ids) < first or max(task_ids) >= first + n_tasks:
            return None
        indexes = list(map(sub, task_ids, repeat(first))) if first else list(task_ids)
        listed = dict.fromkeys(indexes)
        if len(listed) != len(indexes) or not original.keys().isdisjoint(listed):
            return None
    status = tx.status
    olds = status.letters_at(indexes)
    n = len(olds)
    unchanged = olds.count(ord(code))
    heal: list[int] = []
    if unchanged and code in HEALS:
        same = indexes if unchanged == n else list(compress(indexes, olds.translate(_SAME[code])))
        heal = _ready_and_nowhere(tx, same)
    moves = olds.translate(_MOVES[code])
    n_moving = moves.count(1)
    stale = n - unchanged - n_moving
    if not n_moving:
        return heal, [], [], {}, stale
    if n_moving == n:
        changed, changed_olds = indexes, olds
    else:
        changed = list(compress(indexes, moves))
        changed_olds = bytes(compress(olds, moves))
    status.fill(changed, code)
    flips = changed_olds.translate(_FLIPS_ACTIVE[code])
    n_flips = flips.count(1)
    if n_flips:
        sign = 1 if code in ACTIVE else -1
        if landed_batch_of is not None:  # one array, known: no array ids to read
            active_delta[landed_batch_of] = active_delta.get(landed_batch_of, 0) + sign * n_flips
        else:
            arrays = ints_at(tx.topo.array_of, changed)
            flipped = arrays if n_flips == len(flips) else tuple(compress(arrays, flips))
            a = flipped[0]
            if flipped.count(a) == len(flipped):  # one array (a batch, a layer's completions)
                active_delta[a] = active_delta.get(a, 0) + sign * len(flipped)
            else:
                for a, k in Counter(flipped).items():
                    active_delta[a] = active_delta.get(a, 0) + sign * k
    if code not in HEALS and landed_batch_of is None:
        # Only a G or A task is ever in the ready queue (invariants.py, ``ready_status``):
        # the others' places need no look (nor a landed batch's: they sit nowhere).
        was_queueable = changed_olds.translate(_QUEUEABLE)
        n_queueable = was_queueable.count(1)
        if n_queueable:
            candidates = changed if n_queueable == len(changed) else list(compress(changed, was_queueable))
            places = tx.place.at(candidates)
            # Usually none is queued (a batch's answer: its tasks were in flight).
            if count_in_ready_queue(places):
                for i, p in zip(candidates, places, strict=True):
                    if in_ready_queue(p):
                        leave_ready_queue(tx, i)
    old_letters = list(changed_olds.decode("ascii"))
    if known is None:
        original.update(zip(changed, old_letters, strict=True))
    # Counted per letter in C: a task moves only from the statuses ENTERED_FROM lists.
    moved_from = {old: k for old in _SOURCES[code] if (k := changed_olds.count(ord(old)))}
    return heal, changed, old_letters, moved_from, stale


def _final_only(
    status: Any, code: str, indexes: list[int], olds: list[str]
) -> tuple[list[int], list[str]]:
    kept = [(i, o) for i, o in zip(indexes, olds, strict=True) if status[i] == code and o != code]
    return [i for i, _ in kept], [o for _, o in kept]


def _process_changes(tx: Tx, code: str, indexes: list[int], olds: list[str]) -> None:
    """React to tasks' new status (``_process_changed_tasks``), by the reaction table."""
    react = REACTIONS.get(code)
    if react is not None:
        react(tx, indexes, olds)


def _heal(tx: Tx, index: int) -> None:
    """Re-enqueue a G/A task reported again while sitting nowhere (nothing is lost)."""
    if tx.place[index] != NOWHERE:
        return
    heal = HEALS.get(tx.status[index])  # listed twice, it may have moved on since
    if heal is not None:
        heal(tx, index)
