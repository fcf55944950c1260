"""Attaching to an existing workflow run from the server's tables (spec §3.2).

Tasks arrive in chunks of non-DONE tasks ordered by id; the next chunk starts after the
**numeric** maximum id of the previous one (Jobmon uses the lexicographic maximum of string
keys and re-fetches tasks across digit boundaries: quirk Q2, fixed). Edges arrive in chunks
too; only edges between loaded tasks count, so ``num_upstreams`` counts non-DONE upstreams
only, as in Jobmon. Then any queue the rows name that ``AttachStarted`` did not describe is
looked up (``LoadQueues``), so resources are validated against real queue bounds and bound
with real queue ids, as Jobmon's builder does with ``cluster.get_queue``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, compress
from operator import itemgetter
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from swarmfold.core.commands import LoadEdgeChunk, LoadQueues, LoadTaskChunk
from swarmfold.core.errors import InvalidTopology
from swarmfold.core.events import AttachStarted, EdgeRow, TaskRow
from swarmfold.core.lifecycle import fail, set_up
from swarmfold.core.row_page import column_of
from swarmfold.core.state import AttachProgress, PendingChunk, Tx
from swarmfold.core.timing import send_heartbeat
from swarmfold.core.topology import ArraySpec, QueueSpec, ResourceSetSpec, TaskSpec, TaskTable, TopologySpec
from swarmfold.core.transitions import ATTACH, advance


def start_attach(tx: Tx, event: AttachStarted) -> None:
    advance(tx, ATTACH)
    tx.config = event.config
    tx.workflow_id = event.workflow_id
    tx.workflow_run_id = event.workflow_run_id
    tx.run_status = event.run_status
    tx.heartbeat_status = event.run_status
    tx.done_not_loaded = event.previously_complete
    tx.set_timing(started_at=event.at, last_sync=event.server_time)
    tx.attach = AttachProgress(
        dag_id=event.dag_id, workflow_limit=event.workflow_limit, queues=event.queues,
        compute_resources=event.compute_resources,
    )
    send_heartbeat(tx, event.at)  # the builder heartbeats before loading (spec §3.2 step 1)
    _load_tasks_after(tx, 0)


def _load_tasks_after(tx: Tx, after_task_id: int) -> None:
    tx.emit(
        LoadTaskChunk,
        PendingChunk("tasks"),
        workflow_id=tx.workflow_id,
        after_task_id=after_task_id,
        chunk_size=tx.config.chunk_size,
    )


def task_chunk_loaded(tx: Tx, at: float, rows: Sequence[TaskRow]) -> None:
    progress = tx.attach
    assert progress is not None
    progress = attrs.evolve(progress, task_chunks=progress.task_chunks + (rows,))
    tx.attach = progress
    if len(rows) >= tx.config.chunk_size:
        _load_tasks_after(tx, max(column_of(rows, "task_id")))
        return
    task_ids = _joined(progress.task_chunks, "task_id")
    size = tx.config.chunk_size
    batches = tuple(tuple(task_ids[k:k + size]) for k in range(0, len(task_ids), size))
    tx.attach = attrs.evolve(progress, edge_chunks=(), edge_batches=batches, next_edge_batch=0)
    _next_edges_or_build(tx, at)


def edge_chunk_loaded(tx: Tx, at: float, edges: Sequence[EdgeRow]) -> None:
    p = tx.attach
    assert p is not None
    tx.attach = attrs.evolve(p, edge_chunks=p.edge_chunks + (edges,))
    _next_edges_or_build(tx, at)


def chunk_failed(tx: Tx, at: float, error: str) -> None:
    # Nothing was started yet, so no status update is sent: the run just fails.
    fail(tx, at, "attach_failed", f"loading the workflow run failed: {error}")


def _next_edges_or_build(tx: Tx, at: float) -> None:
    p = tx.attach
    assert p is not None
    if p.next_edge_batch < len(p.edge_batches):
        tx.emit(LoadEdgeChunk, PendingChunk("edges"), dag_id=p.dag_id,
                task_ids=p.edge_batches[p.next_edge_batch])
        tx.attach = attrs.evolve(p, next_edge_batch=p.next_edge_batch + 1)
        return
    if not p.queues_requested:
        missing = _unknown_queues(p)
        if missing:
            tx.emit(LoadQueues, PendingChunk("queues"), queues=missing)
            tx.attach = attrs.evolve(p, queues_requested=True)
            return
    _build(tx, at)


def queues_loaded(tx: Tx, at: float, queues: tuple[QueueSpec, ...]) -> None:
    """Queue ids and bounds arrived: they validate and clamp resources from now on."""
    p = tx.attach
    assert p is not None
    known = {q.name for q in p.queues}
    added = tuple(q for q in queues if q.name not in known)
    tx.attach = attrs.evolve(p, queues=p.queues + added, queues_requested=True)
    _build(tx, at)


def _unknown_queues(p: AttachProgress) -> tuple[tuple[str, str], ...]:
    """``(cluster, queue)`` for every queue the rows name that ``AttachStarted`` did not give,
    with the cluster of the first row naming it (as its queue or a fallback)."""
    known = {q.name for q in p.queues}
    clusters = _joined(p.task_chunks, "cluster_name")
    first = first_mentions(_joined(p.task_chunks, "queue_name"), _joined(p.task_chunks, "fallback_queues"))
    return tuple((clusters[k], name) for name, (k, _) in sorted(first.items()) if name not in known)


def _build(tx: Tx, at: float) -> None:
    p = tx.attach
    assert p is not None
    spec = spec_from_rows(p)
    tx.attach = None
    try:
        set_up(tx, at, spec, workflow_limit=p.workflow_limit)
    except InvalidTopology as exc:
        fail(tx, at, "attach_failed", f"the loaded tasks cannot be run: {exc}")


def _callable_for(callable_of: dict[str, str], task_id: int, array_id: int) -> str | None:
    """The task's own ``compute_resources`` callable, else its array's."""
    return callable_of.get(f"task:{task_id}") or callable_of.get(f"array:{array_id}")


def spec_from_rows(p: AttachProgress, columnar: bool = True) -> TopologySpec:
    """A topology spec from loaded task rows and edge rows.

    When every row shares one set of resource scales and names no fallback queue or
    callable (Jobmon's common case), the tasks go into a columnar ``TaskTable`` with those
    scales as the default, unless ``columnar`` is false (a spec meant to be read: one
    ``TaskSpec`` per task). Both give the same topology, in the same order
    (tests/core/test_attach.py compares them). The rows are read a field at a time, as the
    pages' columns (``RowPage``) when they come so.
    """
    chunks = p.task_chunks
    task_ids = _joined(chunks, "task_id")
    array_ids = _joined(chunks, "array_id")
    limits = _joined(chunks, "array_limit")
    queue_names = _joined(chunks, "queue_name")
    fallbacks = _joined(chunks, "fallback_queues")
    requested = _joined(chunks, "requested_resources")
    scales = _joined(chunks, "resource_scales")
    statuses = _joined(chunks, "status")
    max_attempts = _joined(chunks, "max_attempts")
    row_ids = np.array(task_ids, dtype=np.int64) if task_ids else np.empty(0, dtype=np.int64)
    offsets, flat = upstream_columns(p, row_ids)
    callable_of = dict(p.compute_resources)
    array_specs = tuple(ArraySpec(array_id, limit=limits[k]) for array_id, k in _first_rows(array_ids))
    queues: dict[str, QueueSpec] = {q.name: q for q in p.queues}
    first = first_mentions(queue_names, fallbacks)
    for name in sorted(first, key=first.__getitem__):
        if name not in queues:
            queues[name] = QueueSpec(name)
    queue_specs = tuple(queues.values())
    resource_set_ids, set_specs = _resource_sets(queue_names, requested)
    if columnar and _columnar(scales, fallbacks, statuses, callable_of):
        table = TaskTable(
            task_ids=row_ids,
            array_ids=array_ids,
            resource_set_ids=resource_set_ids,
            upstream_offsets=offsets,
            upstream_ids=flat,
            statuses="".join(statuses),
            max_attempts=max_attempts,
        )
        return TopologySpec(
            (), array_specs, set_specs, queue_specs, p.workflow_limit,
            default_resource_scales=scales[0], task_table=table,
        )
    ups, starts = flat.tolist(), offsets.tolist()
    tasks = [
        TaskSpec(
            task_id=task_ids[k],
            array_id=array_ids[k],
            resource_set_id=rs,
            upstream_ids=tuple(ups[starts[k]:starts[k + 1]]),
            max_attempts=max_attempts[k],
            status=statuses[k],
            resource_scales=scales[k],
            fallback_queues=fallbacks[k],
            compute_resources=_callable_for(callable_of, task_ids[k], array_ids[k]) if callable_of else None,
        )
        for k, rs in enumerate(resource_set_ids)
    ]
    return TopologySpec(tuple(tasks), array_specs, set_specs, queue_specs, p.workflow_limit)


def _resource_sets(
    queue_names: Sequence[str], requested: Sequence[Any]
) -> tuple[list[int], tuple[ResourceSetSpec, ...]]:
    """Each row's resource set id, and the sets: numbered in order of first use, each
    written as its first row has it (``2`` and ``2.0`` are equal requests: the first one
    seen is kept).

    A page's rows share a few resource objects (its parser reads each distinct text once),
    so rows are told apart by the object first (hashing an ``int`` id, in C) and only each
    distinct object's value is hashed (hashing a resource tuple runs Python code)."""
    by_object = list(zip(queue_names, map(id, requested), strict=True))
    set_of_value: dict[tuple[str, Any], int] = {}
    set_of_object: dict[tuple[str, int], int] = {}
    specs: list[ResourceSetSpec] = []
    for key, k in _first_rows(by_object):
        value = (queue_names[k], requested[k])
        set_id = set_of_value.get(value)
        if set_id is None:
            set_id = set_of_value[value] = len(specs) + 1
            specs.append(ResourceSetSpec(set_id, *value))
        set_of_object[key] = set_id
    return list(map(set_of_object.__getitem__, by_object)), tuple(specs)


def _joined(chunks: Sequence[Sequence[Any]], name: str) -> list[Any]:
    """One field of every loaded row, chunk after chunk (a ``RowPage``'s column as it is)."""
    return list(chain.from_iterable(column_of(chunk, name) for chunk in chunks))


def _first_rows(keys: Sequence[Any]) -> list[tuple[Any, int]]:
    """``(key, index of its first row)`` for each distinct key, in order of first row (a dict
    built from the last row back keeps each key's first row)."""
    first = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
    return sorted(first.items(), key=itemgetter(1))


def first_mentions(
    queue_names: Sequence[str], fallbacks: Sequence[tuple[str, ...]]
) -> dict[str, tuple[int, int]]:
    """Every queue the rows name -> where it is first named: ``(row, 0)`` as the row's queue,
    ``(row, j)`` as its ``j``-th fallback."""
    first = {name: (k, 0) for name, k in _first_rows(queue_names)}
    for k in compress(range(len(fallbacks)), fallbacks):
        for j, name in enumerate(fallbacks[k], start=1):
            first[name] = min(first.get(name, (k, j)), (k, j))
    return first


def upstream_columns(
    p: AttachProgress, row_ids: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The upstream task ids of each loaded task, from the edge rows, as compressed rows in
    the order of ``row_ids``: ``flat[offsets[k]:offsets[k + 1]]`` for the ``k``-th.

    A task's upstreams come in the order the edge rows list them; an edge row of a task that
    was not loaded (a DONE one) does not count, and a node named by several loaded tasks'
    rows belongs to the last of them. A few numpy calls over all the edges (a sort, a
    search), not a dictionary step per edge (100k tasks: 0.07 s, was 0.11 s).
    """
    n = len(row_ids)
    none: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] = (
        np.zeros(n + 1, dtype=np.int64), np.empty(0, dtype=np.int64)
    )
    sources = _joined(p.edge_chunks, "task_id")
    if not sources:
        return none
    m = len(sources)
    downstream = _joined(p.edge_chunks, "downstream_node_ids")
    source = np.array(sources, dtype=np.int64)
    node = np.array(_joined(p.edge_chunks, "node_id"), dtype=np.int64)
    lengths = np.fromiter(map(len, downstream), dtype=np.int64, count=m)
    targets = np.fromiter(chain.from_iterable(downstream), dtype=np.int64, count=int(lengths.sum()))
    loaded = np.isin(source, row_ids)
    # Each node's task: the last loaded edge row naming it (first in reverse order).
    known_nodes, last = np.unique(node[loaded][::-1], return_index=True)
    if not len(known_nodes):  # no edge row of a loaded task
        return none
    task_of_node = source[loaded][::-1][last]
    # Every (downstream task, upstream task) pair, in the order the edge rows list them.
    from_loaded = np.repeat(loaded, lengths)
    upstream = np.repeat(source, lengths)[from_loaded]
    targets = targets[from_loaded]
    at = _positions_in(known_nodes, targets)
    found = at >= 0
    downstream_tasks = task_of_node[at[found]]
    upstream = upstream[found]
    offsets = np.zeros(n + 1, dtype=np.int64)
    if n > 1 and bool((row_ids[1:] > row_ids[:-1]).all()):
        # Each row's id once, ascending (pages as loaded): group by row position, counted.
        rows = _positions_in(row_ids, downstream_tasks)
        np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
        return offsets, upstream[np.argsort(rows, kind="stable")]
    order = np.argsort(downstream_tasks, kind="stable")
    downstream_tasks, upstream = downstream_tasks[order], upstream[order]
    first = np.searchsorted(downstream_tasks, row_ids, side="left")
    counts = np.searchsorted(downstream_tasks, row_ids, side="right") - first
    np.cumsum(counts, out=offsets[1:])
    picks = np.arange(offsets[-1], dtype=np.int64) + np.repeat(first - offsets[:-1], counts)
    return offsets, upstream[picks]


#: ``_positions_in`` looks ids up in a table indexed by id while the ids' span is at most
#: this many times their count (a DAG's node ids and a workflow's task ids are near dense).
_DENSE_SPAN = 4


def _positions_in(
    keys: npt.NDArray[np.int64], wanted: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """The position of each of ``wanted`` in ``keys`` (ascending, distinct), -1 where it is
    not there: a direct table when the keys are near dense, else a binary search."""
    if not len(keys) or not len(wanted):
        return np.full(len(wanted), -1, dtype=np.int64)
    low, span = int(keys[0]), int(keys[-1] - keys[0]) + 1
    if span <= _DENSE_SPAN * len(keys):
        table = np.full(span, -1, dtype=np.int64)
        table[keys - low] = np.arange(len(keys), dtype=np.int64)
        shifted = wanted - low
        inside = (shifted >= 0) & (shifted < span)
        if bool(inside.all()):
            return table[shifted]
        at = np.full(len(wanted), -1, dtype=np.int64)
        at[inside] = table[shifted[inside]]
        return at
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, at, -1)


def _columnar(
    scales: list[Any], fallbacks: list[tuple[str, ...]], statuses: list[str], callable_of: dict[str, str]
) -> bool:
    """Whether the rows fit a ``TaskTable``: one shared set of scales, no fallback queues,
    no callables, one-letter statuses (a bad status is then named as a ``TaskSpec``'s)."""
    if not scales or callable_of:
        return False
    # Every row's scales equal the first row's (``count`` tries identity first, in C).
    shared = scales.count(scales[0]) == len(scales)
    return shared and not any(fallbacks) and set(map(len, statuses)) == {1}
