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

import attrs

from swarmfold.core.commands import LoadEdgeChunk, LoadQueues, LoadTaskChunk
from swarmfold.core.errors import InvalidTopology
from swarmfold.core.events import AttachStarted, EdgeRow, TaskRow
from swarmfold.core.lifecycle import fail, set_up
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


def task_chunk_loaded(tx: Tx, at: float, rows: tuple[TaskRow, ...]) -> None:
    progress = tx.attach
    assert progress is not None
    progress = attrs.evolve(progress, task_chunks=progress.task_chunks + (rows,))
    tx.attach = progress
    if len(rows) >= tx.config.chunk_size:
        _load_tasks_after(tx, max(r.task_id for r in rows))
        return
    task_ids = [r.task_id for chunk in progress.task_chunks for r in chunk]
    size = tx.config.chunk_size
    batches = tuple(tuple(task_ids[k:k + size]) for k in range(0, len(task_ids), size))
    tx.attach = attrs.evolve(progress, edge_chunks=(), edge_batches=batches, next_edge_batch=0)
    _next_edges_or_build(tx, at)


def edge_chunk_loaded(tx: Tx, at: float, edges: tuple[EdgeRow, ...]) -> None:
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
    """``(cluster, queue)`` for every queue the rows name that ``AttachStarted`` did not give."""
    known = {q.name for q in p.queues}
    wanted: dict[str, str] = {}
    for chunk in p.task_chunks:
        for r in chunk:
            for name in (r.queue_name, *r.fallback_queues):
                if name not in known:
                    wanted.setdefault(name, r.cluster_name)
    return tuple((cluster, name) for name, cluster in sorted(wanted.items()))


def _build(tx: Tx, at: float) -> None:
    p = tx.attach
    assert p is not None
    spec = spec_from_rows(p)
    tx.attach = None
    try:
        set_up(tx, at, spec, workflow_limit=p.workflow_limit)
    except InvalidTopology as exc:
        fail(tx, at, "attach_failed", f"the loaded tasks cannot be run: {exc}")


def _callable_for(callable_of: dict[str, str], r: TaskRow) -> str | None:
    """The task's own ``compute_resources`` callable, else its array's."""
    return callable_of.get(f"task:{r.task_id}") or callable_of.get(f"array:{r.array_id}")


def spec_from_rows(p: AttachProgress, columnar: bool = True) -> TopologySpec:
    """A topology spec from loaded task rows and edge rows.

    When every row shares one set of resource scales and names no fallback queue or
    callable (Jobmon's common case), the tasks go into a columnar ``TaskTable`` with those
    scales as the default, unless ``columnar`` is false (a spec meant to be read: one
    ``TaskSpec`` per task). Both give the same topology, in the same order
    (tests/core/test_attach.py compares them).
    """
    rows: list[TaskRow] = [r for chunk in p.task_chunks for r in chunk]
    upstreams = _upstreams_by_task(p, rows)
    callable_of = dict(p.compute_resources)
    queues: dict[str, QueueSpec] = {q.name: q for q in p.queues}
    arrays: dict[int, ArraySpec] = {}
    resource_sets: dict[tuple[str, tuple], int] = {}  # type: ignore[type-arg]
    resource_set_ids: list[int] = []
    for r in rows:
        if r.array_id not in arrays:
            arrays[r.array_id] = ArraySpec(r.array_id, limit=r.array_limit)
        if r.queue_name not in queues:
            queues[r.queue_name] = QueueSpec(r.queue_name)
        for q in r.fallback_queues:
            if q not in queues:
                queues[q] = QueueSpec(q)
        key = (r.queue_name, r.requested_resources)
        rs = resource_sets.get(key)
        if rs is None:
            rs = resource_sets[key] = len(resource_sets) + 1
        resource_set_ids.append(rs)
    array_specs = tuple(arrays.values())
    set_specs = tuple(ResourceSetSpec(i, q, req) for (q, req), i in resource_sets.items())
    queue_specs = tuple(queues.values())
    if columnar and _columnar(rows, callable_of):
        offsets, flat = [0], []
        for r in rows:
            ups = upstreams.get(r.task_id)
            if ups:
                flat.extend(ups)
            offsets.append(len(flat))
        table = TaskTable(
            task_ids=[r.task_id for r in rows],
            array_ids=[r.array_id for r in rows],
            resource_set_ids=resource_set_ids,
            upstream_offsets=offsets,
            upstream_ids=flat,
            statuses="".join(r.status for r in rows),
            max_attempts=[r.max_attempts for r in rows],
        )
        return TopologySpec(
            (), array_specs, set_specs, queue_specs, p.workflow_limit,
            default_resource_scales=rows[0].resource_scales, task_table=table,
        )
    tasks = [
        TaskSpec(
            task_id=r.task_id,
            array_id=r.array_id,
            resource_set_id=rs,
            upstream_ids=tuple(upstreams.get(r.task_id, ())),
            max_attempts=r.max_attempts,
            status=r.status,
            resource_scales=r.resource_scales,
            fallback_queues=r.fallback_queues,
            compute_resources=_callable_for(callable_of, r) if callable_of else None,
        )
        for r, rs in zip(rows, resource_set_ids, strict=True)
    ]
    return TopologySpec(tuple(tasks), array_specs, set_specs, queue_specs, p.workflow_limit)


def _upstreams_by_task(p: AttachProgress, rows: list[TaskRow]) -> dict[int, list[int]]:
    """Upstream task ids of each loaded task, from the edge rows (edges from tasks that were
    not loaded, the DONE ones, do not count)."""
    loaded = {r.task_id for r in rows}
    task_of_node: dict[int, int] = {}
    for chunk in p.edge_chunks:
        for e in chunk:
            if e.task_id in loaded:
                task_of_node[e.node_id] = e.task_id
    upstreams: dict[int, list[int]] = {}
    for chunk in p.edge_chunks:
        for e in chunk:
            if e.task_id not in loaded:
                continue
            for node in e.downstream_node_ids:
                d = task_of_node.get(node)
                if d is not None:
                    upstreams.setdefault(d, []).append(e.task_id)
    return upstreams


def _columnar(rows: list[TaskRow], callable_of: dict[str, str]) -> bool:
    """Whether the rows fit a ``TaskTable``: one shared set of scales, no fallback queues,
    no callables, one-letter statuses (a bad status is then named as a ``TaskSpec``'s)."""
    if not rows or callable_of:
        return False
    scales = rows[0].resource_scales
    return all(
        r.resource_scales == scales and not r.fallback_queues and len(r.status) == 1 for r in rows
    )

