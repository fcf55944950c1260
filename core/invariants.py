"""Invariants of a swarm state and of one decision's commands (dask's ``validate_state``).

Every check recounts from scratch what the state keeps as running indexes, and returns a
list of messages: empty when everything holds. They cost O(tasks + ready-queue entries +
pending commands), so run them after every step on small states (tests, debugging), never
in the hot path.

``check_state(state)`` checks one state on its own; ``check_commands(before, commands,
after)`` checks the ``QueueBatch`` commands of one ``decide`` call against the state it
started from and, when given, the state it produced (``no_task_double_queued`` is its
double-queueing part). ``lost_tasks(state)`` is a liveness check: ready tasks that sit
outside the ready queue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TypeVar

from swarmfold.core.commands import Command, QueueBatch
from swarmfold.core.ready_queue import entry_index, entry_seq
from swarmfold.core.state import (
    DONE,
    EVALUATING,
    IN_FLIGHT,
    NOWHERE,
    RUNNING,
    PendingBatch,
    PendingBind,
    PendingEvaluation,
    PendingHeartbeat,
    PendingSyncPart,
    SwarmState,
    in_ready_queue,
)
from swarmfold.core.statuses import ACTIVE, QUEUEABLE, TASK_STATUSES

K = TypeVar("K")

#: At most this many messages of one kind are reported, so a broken state stays readable.
_MAX_PER_KIND = 5


class _Report:
    """Messages grouped by kind, each kind capped at ``_MAX_PER_KIND``."""

    __slots__ = ("counts", "messages")

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        n = self.counts[kind]
        if n <= _MAX_PER_KIND:
            self.messages.append(f"{kind}: {message}")
        elif n == _MAX_PER_KIND + 1:
            self.messages.append(f"{kind}: ... (more)")


def _nonzero(mapping: Mapping[K, int]) -> dict[K, int]:
    return {k: v for k, v in mapping.items() if v != 0}


# --- one state ---------------------------------------------------------------------------


def check_state(state: SwarmState) -> list[str]:
    """Every invariant of one state; ``[]`` when the state is consistent.

    Checked: per-status counts, active tasks per array, in-flight totals (against ``place``
    and against the pending and parked batches), the evaluating count, the ready count, one
    live ready-queue entry per queued task in the group of its array and resources, every
    queued task G/A with all upstreams DONE, ``upstream_done`` equal to the number of DONE
    upstreams, sequence numbers within their counters, and the bookkeeping of pending
    commands (batches outstanding, sync parts, heartbeat, bindings).
    """
    topo = state.topology
    if topo is None:
        if len(state.status) or len(state.place) or len(state.upstream_done):
            return ["topology: per-task vectors are not empty before the topology is known"]
        return []
    r = _Report()
    n = topo.size
    status, place, upstream_done = state.status, state.place.tolist(), state.upstream_done.tolist()
    if not len(status) == len(place) == len(upstream_done) == n:
        return [
            f"sizes: {n} tasks but status/place/upstream_done have "
            f"{len(status)}/{len(place)}/{len(upstream_done)} entries"
        ]

    # statuses and their counts
    counts = Counter(status)
    for code, k in counts.items():
        if code not in TASK_STATUSES:
            r.add("status", f"{k} task(s) hold unknown status {code!r}")
    if _nonzero(state.status_counts) != dict(counts):
        r.add("status_counts", f"stored {dict(state.status_counts)} != recounted {dict(counts)}")
    array_of = topo.array_of
    active = Counter(array_of[i] for i in range(n) if status[i] in ACTIVE)
    if _nonzero(state.active_by_array) != dict(active):
        r.add("active_by_array", f"stored {dict(state.active_by_array)} != recounted {dict(active)}")

    # upstream_done == number of upstreams currently DONE
    expected_done = [0] * n
    downstream = topo.downstream
    for u in range(n):
        if status[u] == "D":
            for d in downstream[u]:
                expected_done[d] += 1
    num_upstreams = topo.num_upstreams
    for i in range(n):
        if upstream_done[i] != expected_done[i]:
            r.add(
                "upstream_done",
                f"task {topo.task_ids[i]}: counter {upstream_done[i]} but "
                f"{expected_done[i]} of its {num_upstreams[i]} upstream(s) are DONE",
            )

    _check_in_flight(state, place, r)
    _check_ready_queue(state, place, upstream_done, r)
    _check_pending(state, r)
    if state.phase == DONE and state.summary is None:
        r.add("phase", "run is done but has no summary")
    return r.messages


def _check_in_flight(state: SwarmState, place: list[int], r: _Report) -> None:
    topo = state.topology
    assert topo is not None
    array_of = topo.array_of
    batches: list[tuple[str, PendingBatch]] = []
    for command_id, pending in state.pending.items():
        if isinstance(pending, PendingBatch):
            batches.append((f"command {command_id}", pending))
    for resources, parked in state.resources.parked.items():
        for batch in parked:
            batches.append((f"parked on {resources.queue}", batch))
            if batch.resources != resources:
                r.add("parked", f"batch {batch.indexes} parked under other resources")
    seen: dict[int, str] = {}
    by_array: Counter[int] = Counter()
    for where, batch in batches:
        for i in batch.indexes:
            if i in seen:
                r.add("in_flight", f"task {topo.task_ids[i]} is in two batches ({seen[i]}, {where})")
            seen[i] = where
            if array_of[i] != batch.array_id:
                r.add("in_flight", f"task {topo.task_ids[i]} in a batch of array {batch.array_id}")
            if place[i] != IN_FLIGHT:
                r.add("in_flight", f"task {topo.task_ids[i]} is in a batch ({where}) but its place "
                      f"is {place[i]}")
        by_array[batch.array_id] += len(batch.indexes)
    marked = [i for i in range(len(place)) if place[i] == IN_FLIGHT]
    for i in marked:
        if i not in seen:
            r.add("in_flight", f"task {topo.task_ids[i]} is marked IN_FLIGHT but is in no batch")
    if state.inflight_total != len(seen) or state.inflight_total != len(marked):
        r.add("inflight_total", f"stored {state.inflight_total}, {len(seen)} task(s) in batches, "
              f"{len(marked)} marked IN_FLIGHT")
    if _nonzero(state.inflight_by_array) != _nonzero(by_array):
        r.add("inflight_by_array", f"stored {dict(state.inflight_by_array)} != recounted {dict(by_array)}")

    evaluating = {p.index for p in state.pending.values() if isinstance(p, PendingEvaluation)}
    marked_eval = {i for i in range(len(place)) if place[i] == EVALUATING}
    if evaluating != marked_eval or state.evaluating_count != len(marked_eval):
        r.add("evaluating", f"stored {state.evaluating_count}, {len(evaluating)} pending evaluation(s), "
              f"{len(marked_eval)} marked EVALUATING")


def _check_ready_queue(state: SwarmState, place: list[int], upstream_done: list[int], r: _Report) -> None:
    topo = state.topology
    assert topo is not None
    status = state.status
    live_of: Counter[int] = Counter()
    for (array_id, resources), group in state.ready_groups.items():
        entries = list(group.front) + group.back_entries()
        for entry in entries:
            seq, i = entry_seq(entry), entry_index(entry)
            if not 0 <= i < len(place):
                r.add("ready_entry", f"entry ({seq}, {i}) names no task")
                continue
            if seq == 0 or (seq > 0 and seq >= state.next_back_seq) or (
                seq < 0 and seq <= state.next_front_seq
            ):
                r.add("sequence", f"entry ({seq}, {i}) outside the counters "
                      f"({state.next_front_seq}, {state.next_back_seq})")
            if place[i] != seq:
                continue
            live_of[i] += 1
            task_id = topo.task_ids[i]
            if topo.array_of[i] != array_id or state.resources_of(i) != resources:
                r.add("ready_group", f"task {task_id} queued in the group of array {array_id} "
                      f"{resources} but has array {topo.array_of[i]} {state.resources_of(i)}")
            if status[i] not in QUEUEABLE:
                r.add("ready_status", f"task {task_id} is in the ready queue with status {status[i]}")
            if upstream_done[i] != topo.num_upstreams[i]:
                r.add("ready_upstreams", f"task {task_id} ({status[i]}) is in the ready queue with "
                      f"{upstream_done[i]} of {topo.num_upstreams[i]} upstream(s) DONE")
    queued = [i for i in range(len(place)) if in_ready_queue(place[i])]
    for i in queued:
        if live_of[i] != 1:
            r.add("ready_entry", f"task {topo.task_ids[i]} (place {place[i]}) has {live_of[i]} live "
                  "entries (expected 1)")
    for i, k in live_of.items():
        if k > 1 and not in_ready_queue(place[i]):
            r.add("ready_entry", f"task {topo.task_ids[i]} has {k} live entries")
    if state.ready_count != len(queued) or state.ready_count != sum(live_of.values()):
        r.add("ready_count", f"stored {state.ready_count}, {len(queued)} task(s) placed in the queue, "
              f"{sum(live_of.values())} live entries")


def _check_pending(state: SwarmState, r: _Report) -> None:
    kinds = Counter(type(p) for p in state.pending.values())
    t = state.timing
    sends = kinds[PendingBatch] + kinds[PendingBind]
    if t.batches_outstanding != sends:
        r.add("batches_outstanding", f"stored {t.batches_outstanding}, {kinds[PendingBatch]} batch(es) "
              f"and {kinds[PendingBind]} binding(s) pending")
    if t.sync_parts_outstanding != kinds[PendingSyncPart]:
        r.add("sync_parts", f"stored {t.sync_parts_outstanding}, {kinds[PendingSyncPart]} pending")
    if t.heartbeat_in_flight != (kinds[PendingHeartbeat] > 0) or kinds[PendingHeartbeat] > 1:
        r.add("heartbeat", f"in flight {t.heartbeat_in_flight}, {kinds[PendingHeartbeat]} pending")
    binding = state.resources.binding
    for resources, command_id in binding.items():
        pending = state.pending.get(command_id)
        if not isinstance(pending, PendingBind) or pending.resources != resources:
            r.add("binding", f"binding of {resources} by command {command_id}, which is {pending!r}")
    for command_id, pending in state.pending.items():
        if isinstance(pending, PendingBind) and binding.get(pending.resources) != command_id:
            r.add("binding", f"pending bind {command_id} not recorded in the binding map")
    for resources in state.resources.parked:
        if resources not in binding:
            r.add("parked", f"batches parked on {resources} but no binding is in progress")
        if resources in state.resources.bound:
            r.add("parked", f"batches parked on {resources}, which are already bound")


def lost_tasks(state: SwarmState) -> list[str]:
    """Ready tasks that sit outside the ready queue while the run is RUNNING.

    A REGISTERING or ADJUSTING_RESOURCES task with every upstream DONE must be in the ready
    queue, in flight or being evaluated. This is liveness, not consistency: the core heals
    such a task when a report names it again (at the latest the pre-exit full sync), but it
    only waits for that on purpose after a batch answer with an unknown status code.
    """
    topo = state.topology
    if topo is None or state.phase != RUNNING:
        return []
    out = []
    status, place, upstream_done = state.status, state.place.tolist(), state.upstream_done.tolist()
    for i in range(len(status)):
        if place[i] == NOWHERE and status[i] in QUEUEABLE and upstream_done[i] == topo.num_upstreams[i]:
            out.append(f"lost_task: task {topo.task_ids[i]} ({status[i]}, all upstreams DONE) is neither "
                       "queued nor in flight nor being evaluated")
    return out


# --- one decision's commands -----------------------------------------------------------------


def _parked_batch(state: SwarmState, array_id: int, indexes: tuple[int, ...]) -> PendingBatch | None:
    """The batch parked in ``state`` with exactly these tasks, if any."""
    for parked in state.resources.parked.values():
        for batch in parked:
            if batch.array_id == array_id and batch.indexes == indexes:
                return batch
    return None


def check_commands(
    before: SwarmState, commands: Sequence[Command], after: SwarmState | None = None
) -> list[str]:
    """Invariants of the ``QueueBatch`` commands one ``decide(before, event)`` produced.

    Each batch holds tasks of one array with equal resources, at most
    ``config.max_batch_size`` of them, every one G or A with all upstreams DONE, and no task
    is in two batches. A *new* batch (not the release of a batch parked earlier until its
    resources were bound) holds only tasks that were not in flight before and are not
    active. New batches (sent or parked) are only made within capacity: for each one,
    active + in flight before the pass + tasks batched so far <= the workflow limit, and the
    same per array.

    ``after`` is the decision's state. Without it the statuses, resources and capacities of
    ``before`` are used, which is exact only when the event itself changed no status, limit
    or resources; newly parked batches are then not seen.
    """
    view = after if after is not None else before
    topo = view.topology
    batches = [c for c in commands if isinstance(c, QueueBatch)]
    if topo is None:
        return ["QueueBatch before the topology is known"] if batches else []
    r = _Report()
    index_of = topo.index_of
    task_ids = topo.task_ids
    config = view.config
    in_batch: dict[int, int] = {}
    # (array_id, size) of every new batch, in the order they were made
    new_batches: list[tuple[int, int]] = []

    for c in batches:
        where = f"QueueBatch {c.command_id} (array {c.array_id})"
        indexes: list[int] = []
        for task_id in c.task_ids:
            i = index_of.get(task_id)
            if i is None:
                r.add("batch_task", f"{where}: unknown task id {task_id}")
            else:
                indexes.append(i)
        if not indexes:
            r.add("batch_size", f"{where}: no known task")
            continue
        if len(c.task_ids) > config.max_batch_size:
            r.add("batch_size", f"{where}: {len(c.task_ids)} tasks > max_batch_size {config.max_batch_size}")
        if c.workflow_run_id != view.workflow_run_id:
            r.add("batch_run", f"{where}: workflow_run_id {c.workflow_run_id} != {view.workflow_run_id}")
        for i in indexes:
            if topo.array_of[i] != c.array_id:
                r.add("batch_array", f"{where}: task {task_ids[i]} belongs to array {topo.array_of[i]}")
            if i in in_batch:
                r.add("double_queued", f"task {task_ids[i]} is in QueueBatch {in_batch[i]} and {where}")
            in_batch[i] = c.command_id
        resources = {view.resources_of(i) for i in indexes}
        if len(resources) != 1:
            r.add("batch_resources", f"{where}: {len(resources)} different resources")
        if after is not None:
            pending = after.pending.get(c.command_id)
            if not isinstance(pending, PendingBatch) or tuple(pending.indexes) != tuple(indexes):
                r.add("batch_pending", f"{where}: not awaiting an answer with its tasks ({pending!r})")
            elif after.resources.bound.get(pending.resources) != c.task_resources_id:
                r.add("batch_resources", f"{where}: task_resources_id {c.task_resources_id} is not the "
                      f"bound id {after.resources.bound.get(pending.resources)} of {pending.resources}")
            elif resources != {pending.resources}:
                r.add("batch_resources", f"{where}: tasks' resources differ from the batch's")
        released = _parked_batch(before, c.array_id, tuple(indexes)) is not None
        _check_batch_tasks(view, where, indexes, r)
        if released:
            continue
        r.messages.extend(_double_queued(before, where, indexes, view))
        if after is not None and len(indexes) > after.batch_size:
            r.add("batch_size", f"{where}: {len(indexes)} tasks > batch size {after.batch_size}")
        new_batches.append((c.array_id, len(indexes)))

    if after is not None:
        known = {id(b) for parked in before.resources.parked.values() for b in parked}
        for parked in after.resources.parked.values():
            for batch in parked:
                if id(batch) in known or batch in _all_parked(before):
                    continue
                where = f"batch parked on {batch.resources.queue} (array {batch.array_id})"
                _check_batch_tasks(after, where, batch.indexes, r)
                if len(batch.indexes) > min(after.batch_size, config.max_batch_size):
                    r.add("batch_size", f"{where}: {len(batch.indexes)} tasks > batch size "
                          f"{after.batch_size}")
                if {after.resources_of(i) for i in batch.indexes} != {batch.resources}:
                    r.add("batch_resources", f"{where}: tasks' resources differ from the batch's")
                r.messages.extend(_double_queued(before, where, list(batch.indexes), after))
                new_batches.append((batch.array_id, len(batch.indexes)))
    if new_batches:
        _check_capacity(before, after, new_batches, r)
    return r.messages


def _check_batch_tasks(view: SwarmState, where: str, indexes: Sequence[int], r: _Report) -> None:
    """Every task of a batch is G or A with all upstreams DONE (in the state it was made in)."""
    topo = view.topology
    assert topo is not None
    for i in indexes:
        task_id = topo.task_ids[i]
        if topo.array_of[i] != topo.array_of[indexes[0]]:
            r.add("batch_array", f"{where}: tasks of arrays {topo.array_of[indexes[0]]} and "
                  f"{topo.array_of[i]}")
        if view.status[i] not in QUEUEABLE:
            r.add("batch_status", f"{where}: task {task_id} has status {view.status[i]}")
        if view.upstream_done[i] != topo.num_upstreams[i]:
            r.add("batch_upstreams", f"{where}: task {task_id} ({view.status[i]}) has "
                  f"{view.upstream_done[i]} of {topo.num_upstreams[i]} upstream(s) DONE")


def _all_parked(state: SwarmState) -> list[PendingBatch]:
    return [b for parked in state.resources.parked.values() for b in parked]


def _double_queued(
    before: SwarmState, where: str, indexes: Sequence[int], view: SwarmState
) -> list[str]:
    topo = view.topology
    assert topo is not None
    out = []
    for i in indexes:
        if before.topology is not None and before.place[i] == IN_FLIGHT:
            out.append(f"double_queued: {where}: task {topo.task_ids[i]} was already in flight")
        if view.status[i] in ACTIVE:
            out.append(f"double_queued: {where}: task {topo.task_ids[i]} is active ({view.status[i]})")
    return out


def no_task_double_queued(
    before: SwarmState, commands: Sequence[Command], after: SwarmState | None = None
) -> list[str]:
    """A task goes into a new ``QueueBatch`` only if it is neither in flight nor active, and
    into at most one batch per decision."""
    return [m for m in check_commands(before, commands, after) if m.startswith("double_queued")]


def _check_capacity(
    before: SwarmState, after: SwarmState | None, new_batches: list[tuple[int, int]], r: _Report
) -> None:
    """For each new batch: active + in flight before the pass + batched so far <= limit."""
    view = after if after is not None else before
    total_new = sum(size for _, size in new_batches)
    new_by_array: Counter[int] = Counter()
    for array_id, size in new_batches:
        new_by_array[array_id] += size
    active = view.active_count
    if after is not None:
        inflight_before = after.inflight_total - total_new
        array_inflight_before = {a: after.inflight_by_array.get(a, 0) - k for a, k in new_by_array.items()}
    else:
        inflight_before = before.inflight_total
        array_inflight_before = {a: before.inflight_by_array.get(a, 0) for a in new_by_array}
    so_far = 0
    array_so_far: Counter[int] = Counter()
    for array_id, size in new_batches:
        so_far += size
        array_so_far[array_id] += size
        used = active + inflight_before + so_far
        if used > view.workflow_limit:
            r.add("workflow_limit", f"a batch of {size} (array {array_id}) brings active {active} + in "
                  f"flight {inflight_before} + batched {so_far} = {used} over the limit "
                  f"{view.workflow_limit}")
        limit = view.array_limits.get(array_id)
        array_used = (
            view.active_by_array.get(array_id, 0) + array_inflight_before[array_id] + array_so_far[array_id]
        )
        if limit is None:
            r.add("array_limit", f"a batch of array {array_id}, which has no known limit")
        elif array_used > limit:
            r.add("array_limit", f"a batch of {size} brings array {array_id} to {array_used} over its "
                  f"limit {limit}")
