"""Applying task statuses reported by the server (spec §2 ``apply_update``, §4).

Reports are applied in two steps, as in Jobmon: first every status is written (counts and
per-array active counts follow), then each changed task is processed by its new status.

Which changes are accepted (``ENTERED_FROM``), how a changed task reacts (``REACTIONS``)
and what an unchanged G/A report does to a task sitting nowhere (``HEALS``) are the tables
of core/transitions.py. Policies (see docs/decisions.md):
- a report for an unknown task id is ignored (Jobmon filters them client-side);
- an unknown status code is not applied; it is recorded with ``NoteAnomaly``;
- ERROR_RECOVERABLE (E) is a transient, non-active status, not a crash (quirk Q1).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from itertools import compress
from operator import eq, itemgetter, not_
from typing import Any

from swarmfold.core.readiness import leave_ready_queue
from swarmfold.core.state import NOWHERE, Tx, in_ready_queue
from swarmfold.core.statuses import ACTIVE
from swarmfold.core.topology import DenseIndex
from swarmfold.core.transitions import ENTERED_FROM, HEALS, REACTIONS

#: Largest first task id for which a full sync pads a list indexed by task id.
_MAX_PAD = 1 << 22


#: ``bytes.translate`` tables over status letters: 1 where the letter differs from the code.
_DIFFERS: dict[str, bytes] = {
    code: bytes(0 if b == ord(code) else 1 for b in range(256)) for code in ENTERED_FROM
}


class _ById:
    """Per-task columns indexed by task id, for bulk filtering; built once per report and
    kept current while statuses are written (upstream counts do not move until all
    statuses are written). Statuses are one byte each (their letter), so a group's current
    statuses are gathered into ``bytes`` and compared in C."""

    def __init__(self, tx: Tx, first: int) -> None:
        self.tx = tx
        self.first = first
        # Every status is one letter of TASK_STATUSES (checked when the topology is built, and
        # reports write only the codes of ENTERED_FROM).
        self.status = bytearray(first) + "".join(tx.status.persistent()).encode("ascii")
        self._place: list[Any] | None = None
        self._upstream_done: list[Any] | None = None
        self._num_upstreams: array[int] | None = None

    @property
    def place(self) -> list[Any]:
        if self._place is None:
            self._place = [None] * self.first + self.tx.place.persistent().tolist()
        return self._place

    @property
    def upstream_done(self) -> list[Any]:
        if self._upstream_done is None:
            self._upstream_done = [None] * self.first + self.tx.upstream_done.persistent().tolist()
        return self._upstream_done

    @property
    def num_upstreams(self) -> array[int]:
        if self._num_upstreams is None:
            padded = array("q", bytes(8 * self.first))
            counts = self.tx.topo.num_upstreams
            if isinstance(counts, memoryview):
                padded.frombytes(counts.cast("B"))  # a copy in C
            else:
                padded.extend(counts)
            self._num_upstreams = padded
        return self._num_upstreams


def _split(
    task_ids: Sequence[int], code: str, by_id: _ById, queueable: bool
) -> tuple[list[int], list[int]]:
    """``(ids whose status is not code, unchanged queueable ids sitting nowhere and ready)``.

    Runs in C (itemgetter, ``bytes.count``/``translate``, compress): a full sync reports every
    task, and almost all of them are unchanged.
    """
    get = itemgetter(*task_ids) if len(task_ids) > 1 else (lambda seq: (seq[task_ids[0]],))
    current = bytes(get(by_id.status))
    unchanged = current.count(ord(code))
    if unchanged == len(current):
        differing: list[int] = []
    else:
        differs = current.translate(_DIFFERS[code])
        differing = list(compress(task_ids, differs))
    if not queueable or not unchanged:
        return differing, []
    if differing:
        task_ids = list(compress(task_ids, map(not_, differs)))
        get = itemgetter(*task_ids) if len(task_ids) > 1 else (lambda seq: (seq[task_ids[0]],))
    # Ready (every upstream DONE) first: few of them, then those of them sitting nowhere.
    ready = list(compress(task_ids, map(eq, get(by_id.upstream_done), get(by_id.num_upstreams))))
    place = by_id.place
    return differing, [t for t in ready if place[t] == NOWHERE]


def apply_reports(tx: Tx, tasks_by_status: Mapping[str, Sequence[int]], source: str) -> int:
    """Apply ``{status: [task_id, ...]}``; return how many tasks changed status."""
    topo = tx.topo
    index_of = topo.index_of
    get_index = index_of.get
    if isinstance(index_of, DenseIndex):
        dense, first, n_tasks = True, index_of.first, index_of.n
    else:
        dense, first, n_tasks = False, 0, 0
    array_of = topo.array_of
    status = tx.status
    place = tx.place
    counts = tx.status_counts
    active_delta: dict[int, int] = {}
    changed: list[tuple[str, list[int], list[str]]] = []
    original: dict[int, str] = {}  # status before this report, for tasks listed twice
    unchanged_queueable: list[int] = []
    stale = 0
    n_changed = 0
    by_id: _ById | None = None
    # Above this many ids per status, unchanged tasks are filtered out with C-level maps
    # first: a full sync reports every task, and almost all of them are unchanged.
    bulk = tx.config.bulk_status_threshold
    for code, task_ids in tasks_by_status.items():
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
        if (
            dense
            and len(task_ids) * 8 >= n_tasks
            and len(task_ids) > bulk
            and first <= _MAX_PAD
            and min(task_ids) >= first
            and max(task_ids) < first + n_tasks
        ):
            if by_id is None:
                by_id = _ById(tx, first)
            task_ids, heal = _split(task_ids, code, by_id, code_queueable)
            unchanged_queueable.extend(h - first for h in heal)
        for task_id in task_ids:
            if dense:
                i = task_id - first
                if i < 0 or i >= n_tasks:
                    continue
            else:
                found = get_index(task_id)
                if found is None:
                    continue
                i = found
            old = status[i]
            if old == code:
                if code_queueable and place[i] == NOWHERE:
                    unchanged_queueable.append(i)
                continue
            if old not in entered_from:
                stale += 1
                continue
            status[i] = code
            if by_id is not None:
                by_id.status[task_id] = ord(code)
            moved[old] = moved.get(old, 0) + 1
            if (old in ACTIVE) is not code_active:
                a = array_of[i]
                active_delta[a] = active_delta.get(a, 0) + (1 if code_active else -1)
            if not code_queueable and place[i] != NOWHERE and in_ready_queue(place[i]):
                leave_ready_queue(tx, i)
                if by_id is not None and by_id._place is not None:
                    by_id._place[task_id] = NOWHERE
            indexes.append(i)
            olds.append(original.setdefault(i, old))
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
    if len(original) != n_changed:
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
