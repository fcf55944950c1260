"""Attaching to an existing run from the server's tables (spec §3.2, quirks Q2, Q3, Q17)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmfold.core import RunSummary
from swarmfold.core import attach as attach_module
from swarmfold.core.commands import (
    BindResources,
    Fail,
    Finish,
    LoadEdgeChunk,
    LoadTaskChunk,
    LogHeartbeat,
    QueueBatch,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.events import (
    AttachStarted,
    ChunkLoadFailed,
    EdgeChunkLoaded,
    EdgeRow,
    HeartbeatAcknowledged,
    ResourcesBound,
    StatusUpdateAcknowledged,
    StopRequested,
    TaskChunkLoaded,
    TaskRow,
)
from swarmfold.core.state import AttachProgress
from swarmfold.core.topology import QueueSpec, build_topology

from .lifecycle_helpers import WF_ID, WFR_ID, Run, config, ids0, kinds, of, one

DAG_ID = 5
QUEUE_SPEC = QueueSpec("long.q", queue_id=4, cluster_id=2)
REQUESTED = (("memory", 2), ("runtime", 600))


def row(task_id: int, status: str = "G", array_id: int = 1) -> TaskRow:
    return TaskRow(
        task_id=task_id,
        array_id=array_id,
        status=status,
        max_attempts=3,
        resource_scales=(("memory", 0.5),),
        fallback_queues=(),
        requested_resources=REQUESTED,
        cluster_name="slurm",
        queue_name="long.q",
        array_limit=100,
    )


def attach(chunk_size: int = 3, run_status: str = "B", **cfg) -> tuple[Run, list]:
    run = Run()
    commands = run.feed(
        AttachStarted(
            0.0,
            WF_ID,
            WFR_ID,
            dag_id=DAG_ID,
            workflow_limit=50,
            config=config(chunk_size=chunk_size, **cfg),
            run_status=run_status,
            server_time="T0",
            queues=[QUEUE_SPEC],
        )
    )
    return run, commands


def test_attach_heartbeats_then_loads_the_first_chunk() -> None:
    run, commands = attach(chunk_size=3)
    assert commands == [LogHeartbeat(1, WFR_ID, "B", 30.0), LoadTaskChunk(2, WF_ID, 0, 3)]
    assert run.state.phase == "attaching"
    # The builder heartbeat's answer paces the next one.
    assert run.feed(HeartbeatAcknowledged(1, 0.5, "B")) == [WakeAt(3, 10.5)]


def test_a_chunk_due_after_the_heartbeat_interval_heartbeats_first() -> None:
    run, commands = attach(chunk_size=3)
    run.feed(HeartbeatAcknowledged(1, 0.5, "B"))
    out = run.feed(TaskChunkLoaded(2, 11.0, [row(1), row(2), row(3)]))
    assert out == [LogHeartbeat(4, WFR_ID, "B", 30.0), LoadTaskChunk(5, WF_ID, 3, 3)]


def test_next_chunk_starts_after_the_numeric_max_id_then_edges_then_start() -> None:
    """Q2 fixed: Jobmon's max over string keys would restart after "9999", not 10000."""
    run, commands = attach(chunk_size=3)
    run.feed(HeartbeatAcknowledged(1, 0.1, "B"))
    out = run.feed(TaskChunkLoaded(2, 0.2, [row(9998), row(9999), row(10000)]))
    assert out == [LoadTaskChunk(4, WF_ID, 10000, 3)]
    out = run.feed(TaskChunkLoaded(4, 0.3, [row(10001), row(10002)]))  # short: last
    assert out == [LoadEdgeChunk(5, DAG_ID, (9998, 9999, 10000))]
    # Node 99 belongs to a DONE task (not loaded); task 42 is DONE too.
    out = run.feed(
        EdgeChunkLoaded(
            5,
            0.4,
            [
                EdgeRow(9998, 1, (2, 99)),
                EdgeRow(9999, 2, (3,)),
                EdgeRow(10000, 3, ()),
                EdgeRow(42, 99, (4,)),
            ],
        )
    )
    assert out == [LoadEdgeChunk(6, DAG_ID, (10001, 10002))]
    out = run.feed(EdgeChunkLoaded(6, 0.5, [EdgeRow(10001, 4, (5,)), EdgeRow(10002, 5, ())]))
    assert out == [UpdateWorkflowRunStatus(7, WFR_ID, "R")]  # Q17: no update_status(B)
    assert run.state.phase == "starting"

    topo = run.state.topology
    assert tuple(topo.task_ids) == (9998, 9999, 10000, 10001, 10002)
    ups = {tid: topo.num_upstreams[i] for i, tid in enumerate(topo.task_ids)}
    assert ups == {9998: 0, 9999: 1, 10000: 1, 10001: 0, 10002: 1}  # 42 -> 10001 not counted
    assert run.state.workflow_limit == 50
    assert run.state.num_previously_complete == 0  # Q3: DONE tasks are not loaded

    out = run.feed(StatusUpdateAcknowledged(7, 0.6, "R"))
    assert out == [BindResources(8, "long.q", 4, REQUESTED)]
    # Ready: 9998 (no upstream) and 10001 (its only upstream, 42, is DONE and not loaded).
    assert run.feed(ResourcesBound(8, 0.7, 500)) == [QueueBatch(9, 1, (9998, 10001), 500, WFR_ID, 2)]


def test_attach_to_a_running_run_schedules_without_a_status_update() -> None:
    run, commands = attach(chunk_size=10, run_status="R")
    run.feed(HeartbeatAcknowledged(1, 0.1, "R"))
    out = run.feed(TaskChunkLoaded(2, 0.2, [row(1), row(2)]))
    assert out == [LoadEdgeChunk(4, DAG_ID, (1, 2))]
    out = run.feed(EdgeChunkLoaded(4, 0.3, [EdgeRow(1, 11, (12,)), EdgeRow(2, 12, ())]))
    assert out == [BindResources(5, "long.q", 4, REQUESTED)]
    assert run.state.phase == "running"
    assert run.feed(ResourcesBound(5, 0.4, 77)) == [QueueBatch(6, 1, (1,), 77, WFR_ID, 2)]


def test_edge_chunks_are_batched_by_chunk_size() -> None:
    run, commands = attach(chunk_size=2)
    run.feed(TaskChunkLoaded(2, 0.1, [row(1), row(2)]))  # full chunk: ask again
    out = run.feed(TaskChunkLoaded(3, 0.2, [row(3)]))
    assert ids0(out) == [LoadEdgeChunk(0, DAG_ID, (1, 2))]
    out = run.feed(EdgeChunkLoaded(out[0].command_id, 0.3, []))
    assert ids0(out) == [LoadEdgeChunk(0, DAG_ID, (3,))]
    out = run.feed(EdgeChunkLoaded(out[0].command_id, 0.4, []))
    assert ids0(out) == [UpdateWorkflowRunStatus(0, WFR_ID, "R")]


def test_an_empty_full_chunk_ends_the_task_loading() -> None:
    run, commands = attach(chunk_size=2)
    run.feed(TaskChunkLoaded(2, 0.1, [row(1), row(2)]))
    out = run.feed(TaskChunkLoaded(3, 0.2, []))
    assert ids0(out) == [LoadEdgeChunk(0, DAG_ID, (1, 2))]


def test_chunk_load_failure_fails_without_a_status_update() -> None:
    run, commands = attach()
    out = run.feed(ChunkLoadFailed(2, 1.5, "HTTP 500"))
    assert out == [
        Fail(
            3,
            "attach_failed",
            "loading the workflow run failed: HTTP 500",
            RunSummary(
                final_status="B",
                reason="attach_failed: loading the workflow run failed: HTTP 500",
                total_tasks=0,
                done_count=0,
                failed_count=0,
                num_previously_complete=0,
                elapsed=1.5,
                tasks_by_status={},
            ),
        )
    ]
    assert not of(run.history, UpdateWorkflowRunStatus)
    assert run.state.phase == "done"


def test_edge_chunk_failure_fails_too() -> None:
    run, commands = attach()
    out = run.feed(TaskChunkLoaded(2, 0.1, [row(1)]))
    out = run.feed(ChunkLoadFailed(one(out, LoadEdgeChunk).command_id, 0.2, "timeout"))
    assert kinds(out) == ["Fail"] and out[0].reason == "attach_failed"
    assert not of(run.history, UpdateWorkflowRunStatus)


def test_attach_with_no_unfinished_task_finalizes_with_d() -> None:
    run, commands = attach()
    out = run.feed(TaskChunkLoaded(2, 0.1, []))
    assert out == [UpdateWorkflowRunStatus(3, WFR_ID, "R")]
    out = run.feed(StatusUpdateAcknowledged(3, 0.2, "R"))
    assert out == [UpdateWorkflowRunStatus(4, WFR_ID, "D")]
    out = run.feed(StatusUpdateAcknowledged(4, 0.3, "D"))
    assert out == [
        Finish(
            5,
            RunSummary(
                final_status="D",
                reason="all tasks done",
                total_tasks=0,
                done_count=0,
                failed_count=0,
                num_previously_complete=0,
                elapsed=0.3,
                tasks_by_status={},
            ),
        )
    ]


def test_chunk_answers_after_stop_do_not_continue_the_attach() -> None:
    run, commands = attach()
    stop = run.feed(StopRequested(0.1))
    assert ids0(stop) == [UpdateWorkflowRunStatus(0, WFR_ID, "S")]
    assert run.feed(TaskChunkLoaded(2, 0.2, [row(1)])) == []
    assert run.state.phase == "finalizing"
    (fail,) = run.feed(StatusUpdateAcknowledged(stop[0].command_id, 0.3, "S"))
    assert fail.reason == "stopped"


def _topology_fields(spec):
    """Every field of the topology built from ``spec``, as plain values."""
    topo = build_topology(spec)
    out = {}
    for f in attrs.fields(type(topo)):
        value = getattr(topo, f.name)
        if f.name in ("scales_of", "fallbacks_of"):
            value = [value[i] for i in range(topo.size)]
        elif isinstance(value, (memoryview, tuple, list)) or hasattr(value, "tolist"):
            value = list(value)
        elif hasattr(value, "items"):
            value = dict(value.items())
        out[f.name] = value
    return out


@pytest.mark.parametrize("variant", ["plain", "fallback", "own_scales", "callable"])
def test_rows_become_a_task_table_or_task_specs_with_the_same_topology(variant: str) -> None:
    """Plain rows (one set of scales, no fallback queue, no callable) become a columnar
    ``TaskTable``; any other row makes every task a ``TaskSpec``. Both build the same topology,
    field for field and in the same order."""
    rows = [row(t, status="GGDAG"[t % 5], array_id=1 + t % 2) for t in (5, 7, 8, 11, 12, 20)]
    if variant == "fallback":
        rows[2] = attrs.evolve(rows[2], fallback_queues=("long.q",))
    elif variant == "own_scales":
        rows[3] = attrs.evolve(rows[3], resource_scales=(("memory", 0.9),))
    edges = [EdgeRow(5, 50, (70, 80)), EdgeRow(7, 70, (110,)), EdgeRow(8, 80, (110, 120)),
             EdgeRow(11, 110, (200,)), EdgeRow(12, 120, (200,)), EdgeRow(20, 200, ())]
    progress = AttachProgress(
        dag_id=DAG_ID, workflow_limit=50, queues=(QUEUE_SPEC,), task_chunks=(tuple(rows),),
        edge_chunks=(tuple(edges),),
        compute_resources=(("array:2", "pkg:fn"),) if variant == "callable" else (),
    )
    spec = attach_module.spec_from_rows(progress)
    assert (spec.task_table is not None) == (variant == "plain")
    by_task = attach_module.spec_from_rows(progress, columnar=False)
    assert by_task.task_table is None
    assert _topology_fields(spec) == _topology_fields(by_task)


_REQUESTS = st.sampled_from([(("memory", 2),), (("memory", 2.0),), (("cores", 1), ("memory", 4))])


@st.composite
def _loaded_rows(
    draw: st.DrawFn, nodes: int = 46, ascending: bool = False, spread: int = 1
) -> AttachProgress:
    """Rows that fit a ``TaskTable`` (shared scales, no fallbacks), in one or more chunks,
    with edges that name unloaded tasks and nodes, repeat a node, or list a task twice.
    ``ascending``: each task once, in id order (pages as the server sends them); ``spread``
    multiplies every task and node id (ids far apart)."""
    ids = draw(st.lists(st.integers(1, 40), min_size=1, max_size=25))
    if ascending:
        ids = sorted(set(ids))
    rows = [
        TaskRow(
            task_id=t * spread, array_id=draw(st.integers(1, 3)), status=draw(st.sampled_from("GQD")),
            max_attempts=draw(st.integers(1, 4)), resource_scales=(("memory", 0.5),),
            fallback_queues=(), requested_resources=draw(_REQUESTS),
            cluster_name="c", queue_name=draw(st.sampled_from(["all.q", "long.q", "gpu.q"])),
            array_limit=draw(st.integers(1, 9)),
        )
        for t in ids
    ]
    node = st.integers(100, 99 + nodes).map(lambda x: x * spread)
    edges = [
        EdgeRow(draw(st.integers(1, 45)) * spread, draw(node), tuple(draw(st.lists(node, max_size=4))))
        for _ in range(draw(st.integers(0, 30)))
    ]
    cut = draw(st.integers(0, len(rows)))
    return AttachProgress(
        dag_id=DAG_ID, workflow_limit=50, queues=(QUEUE_SPEC,),
        task_chunks=tuple(c for c in (tuple(rows[:cut]), tuple(rows[cut:])) if c),
        edge_chunks=(tuple(edges[::2]), tuple(edges[1::2])),
    )


@given(_loaded_rows())
@settings(max_examples=150, deadline=None)
def test_the_columnar_build_equals_the_per_row_build(progress: AttachProgress) -> None:
    """The column-at-a-time ``TaskTable`` build gives what the per-row ``TaskSpec`` build
    gives: the same arrays, resource sets (``2`` and ``2.0`` kept as first seen), queues,
    and every task's columns and upstreams, in the same order."""
    table_spec = attach_module.spec_from_rows(progress)
    by_task = attach_module.spec_from_rows(progress, columnar=False)
    table = table_spec.task_table
    assert table is not None
    assert repr(table_spec.arrays) == repr(by_task.arrays)
    assert repr(table_spec.resource_sets) == repr(by_task.resource_sets)
    assert table_spec.queues == by_task.queues
    tasks = by_task.tasks
    assert list(table.task_ids) == [t.task_id for t in tasks]
    assert list(table.array_ids) == [t.array_id for t in tasks]
    assert list(table.resource_set_ids) == [t.resource_set_id for t in tasks]
    assert table.statuses == "".join(t.status for t in tasks)
    assert list(table.max_attempts) == [t.max_attempts for t in tasks]
    offsets, ups = list(table.upstream_offsets), list(table.upstream_ids)
    assert [tuple(ups[offsets[k]:offsets[k + 1]]) for k in range(len(tasks))] == [
        t.upstream_ids for t in tasks
    ]


def _upstreams_one_edge_at_a_time(progress: AttachProgress) -> dict[int, list[int]]:
    """The rule, stated one edge at a time: an edge row counts when its task was loaded; a
    node belongs to the last loaded task whose row names it; upstreams in edge order."""
    loaded = {r.task_id for chunk in progress.task_chunks for r in chunk}
    edges = [e for chunk in progress.edge_chunks for e in chunk if e.task_id in loaded]
    task_of_node = {e.node_id: e.task_id for e in edges}
    upstreams: dict[int, list[int]] = {}
    for e in edges:
        for node in e.downstream_node_ids:
            if node in task_of_node:
                upstreams.setdefault(task_of_node[node], []).append(e.task_id)
    return upstreams


@given(st.one_of(
    _loaded_rows(), _loaded_rows(nodes=6), _loaded_rows(ascending=True),
    _loaded_rows(ascending=True, spread=1000), _loaded_rows(spread=1000),
))
@settings(max_examples=300, deadline=None)
def test_upstream_columns_follow_the_edges_one_at_a_time(progress: AttachProgress) -> None:
    """The vectorised upstream build gives each loaded row (ids listed twice included) the
    upstreams the edge-at-a-time rule gives, in the same order."""
    import numpy as np

    rows = [r for chunk in progress.task_chunks for r in chunk]
    row_ids = np.array([r.task_id for r in rows], dtype=np.int64)
    offsets, flat = attach_module.upstream_columns(progress, row_ids)
    expected = _upstreams_one_edge_at_a_time(progress)
    got = [flat[offsets[k]:offsets[k + 1]].tolist() for k in range(len(rows))]
    assert got == [expected.get(r.task_id, []) for r in rows]
    assert offsets[0] == 0 and len(offsets) == len(rows) + 1


_QUEUE_NAMES = st.sampled_from(["all.q", "long.q", "gpu.q", "i.q"])


@given(
    st.lists(
        st.tuples(_QUEUE_NAMES, st.lists(_QUEUE_NAMES, max_size=2), st.sampled_from(["c1", "c2", "c3"])),
        min_size=1, max_size=12,
    ),
    st.sets(_QUEUE_NAMES),
    st.integers(0, 12),
)
@settings(max_examples=200, deadline=None)
def test_unknown_queues_are_asked_of_the_first_row_naming_them(
    named: list[tuple[str, list[str], str]], known: set[str], cut: int
) -> None:
    """Each queue the rows name (as their queue or a fallback) that ``AttachStarted`` did not
    give is asked for once, on the cluster of the first row that names it, sorted by name."""
    rows = [
        attrs.evolve(row(k + 1), queue_name=q, fallback_queues=tuple(f), cluster_name=c)
        for k, (q, f, c) in enumerate(named)
    ]
    progress = AttachProgress(
        dag_id=DAG_ID, workflow_limit=5, queues=tuple(QueueSpec(name) for name in sorted(known)),
        task_chunks=tuple(c for c in (tuple(rows[:cut]), tuple(rows[cut:])) if c),
    )
    wanted: dict[str, str] = {}
    for r in rows:
        for name in (r.queue_name, *r.fallback_queues):
            if name not in known:
                wanted.setdefault(name, r.cluster_name)
    assert attach_module._unknown_queues(progress) == tuple(
        (cluster, name) for name, cluster in sorted(wanted.items())
    )


@given(
    st.lists(
        st.tuples(
            st.integers(1, 4), st.integers(1, 9), _QUEUE_NAMES, st.lists(_QUEUE_NAMES, max_size=2),
            # the same requested object for many rows, or an equal copy of its own
            st.one_of(_REQUESTS, _REQUESTS.map(lambda req: tuple(tuple(pair) for pair in req))),
        ),
        min_size=1, max_size=15,
    ),
    st.sets(_QUEUE_NAMES),
)
@settings(max_examples=200, deadline=None)
def test_arrays_queues_and_resource_sets_are_numbered_in_order_of_first_use(
    named: list[tuple[int, int, str, list[str], tuple[tuple[str, int | float], ...]]], known: set[str]
) -> None:
    """Arrays take the limit of their first row; queues follow the ones ``AttachStarted``
    gave, in order of first mention (a row's queue, then its fallbacks); resource sets are
    numbered in order of first use, equal requests (``2`` and ``2.0``) sharing the first."""
    rows = [
        attrs.evolve(row(k + 1, array_id=a), array_limit=limit, queue_name=q,
                     fallback_queues=tuple(f), requested_resources=req)
        for k, (a, limit, q, f, req) in enumerate(named)
    ]
    given_queues = tuple(QueueSpec(name) for name in sorted(known))
    progress = AttachProgress(dag_id=DAG_ID, workflow_limit=5, queues=given_queues,
                              task_chunks=(tuple(rows),))
    arrays: dict[int, int] = {}
    queues = [q.name for q in given_queues]
    sets: dict[tuple[str, Any], int] = {}
    set_ids = []
    for r in rows:
        arrays.setdefault(r.array_id, r.array_limit)
        for name in (r.queue_name, *r.fallback_queues):
            if name not in queues:
                queues.append(name)
        set_ids.append(sets.setdefault((r.queue_name, r.requested_resources), len(sets) + 1))
    for columnar in (True, False):
        spec = attach_module.spec_from_rows(progress, columnar=columnar)
        assert [(a.array_id, a.limit) for a in spec.arrays] == list(arrays.items())
        assert [q.name for q in spec.queues] == queues
        assert [(s.resource_set_id, s.queue, s.requested) for s in spec.resource_sets] == [
            (i, q, req) for (q, req), i in sets.items()
        ]
        assert repr([s.requested for s in spec.resource_sets]) == repr([req for _, req in sets])
        by_task = spec.task_table.resource_set_ids if spec.task_table else [
            t.resource_set_id for t in spec.tasks
        ]
        assert list(by_task) == set_ids


def test_rows_built_by_hand_with_list_scales_are_still_compared() -> None:
    """A row built by hand may hold a list in its scales (unhashable): the rows are then
    compared one by one, and equal scales still make one ``TaskTable``."""
    rows = tuple(attrs.evolve(row(t), resource_scales=(("memory", [0.5, 0.7]),)) for t in (1, 2))
    progress = AttachProgress(dag_id=DAG_ID, workflow_limit=5, queues=(QUEUE_SPEC,), task_chunks=(rows,))
    assert attach_module.spec_from_rows(progress).task_table is not None
    other = (rows[0], attrs.evolve(rows[1], resource_scales=(("memory", [0.5, 0.8]),)))
    mixed = AttachProgress(dag_id=DAG_ID, workflow_limit=5, queues=(QUEUE_SPEC,), task_chunks=(other,))
    assert attach_module.spec_from_rows(mixed).task_table is None
