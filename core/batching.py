"""Batching under the workflow and per-array limits (spec §6.1).

One scheduling pass takes capacity snapshots once, then repeatedly picks the group whose
head entered the ready queue first among arrays that still have capacity, and takes up to
``min(batch size, workflow capacity, array capacity)`` of its tasks. That is exactly the
sequence of batches Jobmon's rotation produces, without rescanning the queue per batch.

Tasks in a batch are IN_FLIGHT until the server answers: they hold capacity, so a second
pass before the answer can never overshoot a limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from swarmfold.core.batch_sizing import next_batch_size
from swarmfold.core.commands import QueueBatch
from swarmfold.core.index_list import IndexList
from swarmfold.core.readiness import enqueue, ready_eligible
from swarmfold.core.ready_queue import ReadyGroup, live_checker
from swarmfold.core.resource_policy import request_binding
from swarmfold.core.resources import Resources
from swarmfold.core.state import IN_FLIGHT, NOWHERE, PendingBatch, PendingBind, Tx
from swarmfold.core.statuses import QUEUEABLE, TASK_STATUSES
from swarmfold.core.task_status import apply_reports


def schedule(tx: Tx) -> int:
    """Run one scheduling pass; return the number of tasks put into batches."""
    if tx.ready_count == 0:
        return 0
    wf_cap = tx.workflow_capacity()
    if wf_cap == 0:
        return 0
    tx.flush_ready()
    place = tx.place
    is_live = live_checker(place.values)
    # Capacity snapshots, taken once per pass (spec §6.1).
    array_cap = {array_id: tx.array_capacity(array_id) for array_id, _ in tx.array_limits.items()}

    groups = tx.ready_groups
    heads: dict[tuple[int, Resources], int] = {}
    for key, group in groups.items():
        group, head = group.live_head(is_live)
        if head is None:
            groups.remove(key)
            continue
        groups.set(key, group)
        heads[key] = head

    scheduled = 0
    while wf_cap > 0 and heads:
        best_key = None
        best_seq = 0
        for key, seq in heads.items():
            if array_cap.get(key[0], 0) > 0 and (best_key is None or seq < best_seq):
                best_key, best_seq = key, seq
        if best_key is None:
            break
        array_id, resources = best_key
        k = min(tx.batch_size, wf_cap, array_cap[array_id])
        group, indexes = groups[best_key].take(k, place.values)
        group, head = group.live_head(is_live)
        if head is None:
            groups.remove(best_key)
            del heads[best_key]
        else:
            groups.set(best_key, group)
            heads[best_key] = head
        if not indexes:
            continue
        n = len(indexes)
        wf_cap -= n
        array_cap[array_id] -= n
        scheduled += n
        place.fill(indexes, IN_FLIGHT)
        tx.ready_count -= n
        tx.inflight_total += n
        tx.inflight_by_array.set(array_id, tx.inflight_by_array.get(array_id, 0) + n)
        taken = indexes if type(indexes) is IndexList else None  # keeps its numpy array
        _send_or_park(tx, PendingBatch(array_id, tuple(indexes), resources, tx.topo.ids_at(indexes), taken))
    return scheduled


def _send_or_park(tx: Tx, batch: PendingBatch) -> None:
    """Queue the batch now, or park it until its resources are bound (spec §5.3)."""
    bound_id = tx.resources.bound.get(batch.resources)
    if bound_id is not None:
        _send(tx, batch, bound_id)
        return
    parked = tx.resources.parked
    tx.set_resources(parked=parked.set(batch.resources, parked.get(batch.resources, ()) + (batch,)))
    request_binding(tx, batch.resources)


def _send(tx: Tx, batch: PendingBatch, task_resources_id: int) -> None:
    tx.emit(
        QueueBatch,
        batch,
        array_id=batch.array_id,
        task_ids=batch.task_ids,
        task_resources_id=task_resources_id,
        workflow_run_id=tx.workflow_run_id,
        cluster_id=tx.topo.cluster_ids.get(batch.resources.queue, 0),
    )
    tx.set_timing(batches_outstanding=tx.timing.batches_outstanding + 1)


def _land(tx: Tx, batch: PendingBatch) -> list[int]:
    """The batch is no longer in flight; return the indexes that were still in it."""
    landed = tx.place.replace(batch.indexes if batch.taken is None else batch.taken, IN_FLIGHT, NOWHERE)
    n = len(batch.indexes)
    tx.inflight_total -= n
    tx.inflight_by_array.set(batch.array_id, tx.inflight_by_array.get(batch.array_id, 0) - n)
    return landed


def _indexes_if_as_sent(
    batch: PendingBatch, landed: list[int], tasks_by_status: Mapping[str, Sequence[int]]
) -> list[list[int]] | None:
    """The batch's indexes, when the answer lists exactly the batch's tasks in the order
    sent, under one status (the usual answer): known to list each task once. ``landed``
    (the batch's indexes that were still in flight) serves when it is all of them."""
    if len(tasks_by_status) != 1:
        return None
    (task_ids,) = tasks_by_status.values()
    if type(task_ids) is not tuple or task_ids != batch.task_ids:
        return None
    return [landed if len(landed) == len(batch.indexes) else IndexList(batch.indexes)]


def batch_queued(
    tx: Tx, batch: PendingBatch, tasks_by_status: Mapping[str, Sequence[int]], duration: float | None
) -> None:
    """Apply the statuses the server answered for a batch."""
    landed = _land(tx, batch)
    known = _indexes_if_as_sent(batch, landed, tasks_by_status)
    all_landed = known is not None and known[0] is landed
    changed = apply_reports(
        tx, tasks_by_status, "queue_task_batch", known, batch.array_id if all_landed else None
    )
    # A task the answer left out is still REGISTERING/ADJUSTING and sits nowhere
    # (one reported G/A again was already put back by apply_reports). None is when the
    # answer named every landed task once and each moved to a status other than G or A.
    place = tx.place
    status = tx.status
    missing: list[int] = []
    if not (all_landed and changed == len(landed) and QUEUEABLE.isdisjoint(tasks_by_status)):
        letters = status.letters_at(landed)
        if letters.count(b"G") + letters.count(b"A"):
            missing = [i for i in landed if place[i] == NOWHERE and status[i] in ("G", "A")]
    if missing and any(code not in TASK_STATUSES for code in tasks_by_status):
        # A task reported with an unknown code is not "omitted": the next sync settles it.
        unknown = {t for code, ids in tasks_by_status.items() if code not in TASK_STATUSES for t in ids}
        missing = [i for i in missing if tx.topo.task_ids[i] not in unknown]
    if missing:
        task_ids = tx.topo.task_ids
        tx.note(
            "batch_answer_incomplete",
            f"queue_task_batch answer omitted {len(missing)} task(s), "
            f"e.g. {[task_ids[i] for i in missing[:5]]}; re-queued",
        )
        _requeue_front(tx, missing)
    if tx.config.adaptive_batching and duration is not None:
        tx.batch_size = next_batch_size(
            tx.batch_size,
            duration,
            tx.config.target_batch_seconds,
            tx.config.max_batch_size,
            observed=len(batch.indexes),
        )
    _done_outstanding(tx)


def batch_failed(tx: Tx, batch: PendingBatch, error: str) -> None:
    """The batch could not be queued: its tasks go back to the front, in order."""
    landed = _land(tx, batch)
    tx.note("batch_queue_failed", f"array {batch.array_id}, {len(batch.indexes)} task(s): {error}; "
            "re-queued at the front")
    _requeue_front(tx, landed)
    _done_outstanding(tx)


def _requeue_front(tx: Tx, indexes: list[int]) -> None:
    status = tx.status
    for i in reversed(indexes):
        if tx.place[i] == NOWHERE and status[i] in ("G", "A") and ready_eligible(tx, i):
            enqueue(tx, i, front=True)


def resources_bound(tx: Tx, pending: PendingBind, task_resources_id: int) -> None:
    """Cache the id and send every batch parked on these resources."""
    res = pending.resources
    parked = tx.resources.parked.get(res, ())
    tx.set_resources(
        bound=tx.resources.bound.set(res, task_resources_id),
        binding=tx.resources.binding.discard(res),
        parked=tx.resources.parked.discard(res),
    )
    for batch in parked:
        _send(tx, batch, task_resources_id)
    _done_outstanding(tx)


def bind_failed(tx: Tx, pending: PendingBind, error: str) -> None:
    res = pending.resources
    parked = tx.resources.parked.get(res, ())
    tx.set_resources(
        binding=tx.resources.binding.discard(res), parked=tx.resources.parked.discard(res)
    )
    tx.note("bind_resources_failed", f"{res.queue} {dict(res.requested)}: {error}; re-queued")
    for batch in reversed(parked):
        _requeue_front(tx, _land(tx, batch))
    _done_outstanding(tx)


def _done_outstanding(tx: Tx) -> None:
    tx.set_timing(batches_outstanding=max(0, tx.timing.batches_outstanding - 1))


def queue_order(groups: Mapping[tuple[int, Resources], ReadyGroup], place: Sequence[int]) -> list[int]:
    """Indexes of every task in the ready queue, in the order Jobmon's deque would hold them."""
    entries: list[tuple[int, int]] = []
    is_live = live_checker(place)
    for group in groups.values():
        entries.extend(group.live_entries(is_live))
    entries.sort()
    return [i for _, i in entries]
