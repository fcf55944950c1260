"""The reference workload, the instant fake server and the virtual-clock driver."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

import attrs
import pytest

from swarmfold.core.commands import (
    BindResources,
    FetchTaskStatuses,
    LogHeartbeat,
    QueueBatch,
    UpdateWorkflowRunStatus,
)
from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import BatchQueued, RunStarted, TaskStatusesFetched, TimerFired
from swarmfold.core.topology import (
    ArraySpec,
    ResourceSetSpec,
    TaskSpec,
    TopologySpec,
    build_topology,
)
from swarmfold.shell.server.instant import DriveError, InstantServer, drive, resolve_callable, server_time
from swarmfold.shell.workload import (
    ARRAY_LIMIT,
    NUM_LAYERS,
    WORKFLOW_LIMIT,
    layer_sizes,
    reference_workload,
)

# --- the reference workload ------------------------------------------------------------------


def _layers(spec: TopologySpec) -> dict[int, list[TaskSpec]]:
    layers: dict[int, list[TaskSpec]] = {}
    for t in spec.tasks:
        layers.setdefault(t.array_id - 1, []).append(t)
    return layers


def test_workload_layers_and_limits() -> None:
    spec = reference_workload(1000, seed=3)
    assert len(spec.tasks) == 1000
    assert len({t.task_id for t in spec.tasks}) == 1000
    assert [len(ts) for _, ts in sorted(_layers(spec).items())] == [100] * NUM_LAYERS
    assert spec.workflow_limit == WORKFLOW_LIMIT == 10_000
    assert [a.limit for a in spec.arrays] == [ARRAY_LIMIT] * NUM_LAYERS == [2_000] * 10
    assert sorted(rs.resource_set_id for rs in spec.resource_sets) == [0, 1, 2, 3]
    build_topology(spec)  # valid: known ids, no cycle


def test_workload_upstreams_are_1_to_3_distinct_tasks_of_the_previous_layer() -> None:
    spec = reference_workload(2000, seed=1)
    layer_of = {t.task_id: t.array_id - 1 for t in spec.tasks}
    counts: Counter[int] = Counter()
    for t in spec.tasks:
        layer = layer_of[t.task_id]
        if layer == 0:
            assert t.upstream_ids == ()
            continue
        assert 1 <= len(t.upstream_ids) <= 3
        assert len(set(t.upstream_ids)) == len(t.upstream_ids)
        assert all(layer_of[u] == layer - 1 for u in t.upstream_ids)
        counts[len(t.upstream_ids)] += 1
    assert set(counts) == {1, 2, 3}  # every fan-in occurs


def test_workload_resource_set_rule() -> None:
    spec = reference_workload(10_000, seed=0)
    for layer, tasks in _layers(spec).items():
        sets = Counter(t.resource_set_id for t in tasks)
        assert set(sets) <= {layer % 4, (layer + 1) % 4}
        share = sets[(layer + 1) % 4] / len(tasks)
        assert 0.15 <= share <= 0.25, (layer, share)


def test_workload_is_deterministic_per_seed() -> None:
    assert reference_workload(500, seed=7) == reference_workload(500, seed=7)
    assert reference_workload(500, seed=7) != reference_workload(500, seed=8)


def test_workload_uneven_and_tiny_sizes() -> None:
    assert layer_sizes(1003) == [101, 101, 101, 100, 100, 100, 100, 100, 100, 100]
    assert sum(layer_sizes(7)) == 7
    spec = reference_workload(7)
    assert len(spec.tasks) == 7
    build_topology(spec)
    assert reference_workload(0).tasks == ()


# --- the instant server ----------------------------------------------------------------------


def _spec(statuses: str) -> TopologySpec:
    """One array; task ``k`` (from 1) starts at ``statuses[k-1]``."""
    return TopologySpec(
        tasks=[TaskSpec(k, 1, 1, status=s) for k, s in enumerate(statuses, start=1)],
        arrays=[ArraySpec(1, limit=500)],
        resource_sets=[ResourceSetSpec(1, "all.q", {"cores": 1})],
        workflow_limit=900,
    )


def _server(statuses: str) -> InstantServer:
    return InstantServer.for_topology(_spec(statuses), completions_per_sync=2)


def _queue(server: InstantServer, ids: Iterable[int], at: float = 0.0) -> dict[str, tuple[int, ...]]:
    event = server.handle(QueueBatch(1, array_id=1, task_ids=tuple(ids), task_resources_id=1,
                                     workflow_run_id=1), at)
    assert isinstance(event, BatchQueued)
    return dict(event.tasks_by_status)


def _fetch(server: InstantServer, at: float, since: str | None) -> dict[str, list[int]]:
    event = server.handle(FetchTaskStatuses(2, workflow_id=1, since=since), at)
    assert isinstance(event, TaskStatusesFetched)
    return {s: sorted(ids) for s, ids in event.tasks_by_status.items()}


def test_queue_moves_only_g_and_a_to_q_and_answers_every_requested_id() -> None:
    server = _server("GADFQRE")
    answer = _queue(server, [1, 2, 3, 4, 5, 6, 7, 99])
    assert {s: sorted(ids) for s, ids in answer.items()} == {
        "Q": [1, 2, 5], "D": [3], "F": [4], "R": [6], "E": [7],
    }
    assert server.statuses == {1: "Q", 2: "Q", 3: "D", 4: "F", 5: "Q", 6: "R", 7: "E"}
    assert server.model is not None and len(server.model.ti_status) == 2  # 5 was not queued again
    assert _queue(server, [1, 2]) == {"Q": (1, 2)}  # queueing again changes nothing
    assert len(server.model.ti_status) == 2
    assert server.calls == {"QueueBatch": 2}


def test_a_fetch_runs_what_was_queued_and_finishes_the_oldest_first() -> None:
    server = _server("GGGGD")
    _queue(server, [3, 1], at=1.0)
    _queue(server, [2], at=1.0)
    # completions_per_sync=2: the two oldest (3, 1) finish; 2 is reported running.
    assert _fetch(server, 10.0, since="2026-01-01 00:00:00") == {"D": [1, 3], "R": [2]}
    _queue(server, [4], at=12.0)
    # Each change is passed on once: 2 finished, 4 ran and finished.
    assert _fetch(server, 20.0, since=server_time(10.0)) == {"D": [2, 4]}
    assert _fetch(server, 30.0, since=server_time(20.0)) == {}
    assert _fetch(server, 40.0, since=None) == {"D": [1, 2, 3, 4, 5]}


def test_repeat_last_second_gives_the_model_answers_as_the_real_server_does() -> None:
    server = InstantServer.for_topology(_spec("GGGGD"), completions_per_sync=2, repeat_last_second=True)
    _queue(server, [3, 1], at=1.0)
    _queue(server, [2], at=1.0)
    assert _fetch(server, 10.0, since="2026-01-01 00:00:00") == {"D": [1, 3], "R": [2]}
    _queue(server, [4], at=12.0)
    # Changes are stamped by the second, as on the real server: a fetch since the previous
    # answer's time reports that second's changes again (1 and 3 finished at 10 s).
    assert _fetch(server, 20.0, since=server_time(10.0)) == {"D": [1, 2, 3, 4]}
    assert _fetch(server, 30.0, since=server_time(20.0)) == {"D": [2, 4]}
    assert _fetch(server, 40.0, since=server_time(30.0)) == {}
    assert _fetch(server, 50.0, since=None) == {"D": [1, 2, 3, 4, 5]}


def test_the_progress_goes_through_the_task_fsm() -> None:
    server = _server("GG")
    _queue(server, [1, 2])
    server.progress(5.0)
    model = server.model
    assert model is not None
    # Each task went Q -> I -> O -> R -> D through its instance; the instances are D.
    assert model.ti_status == ["D", "D"]
    assert server.statuses == {1: "D", 2: "D"}
    assert model.counts["D"] == 2 and model.active_total == 0


def test_fetch_command_carries_server_time() -> None:
    server = _server("G")
    event = server.handle(FetchTaskStatuses(3, workflow_id=1, since=None), 61.7)
    assert isinstance(event, TaskStatusesFetched)
    assert event.server_time == "2026-01-01 00:01:01" == server_time(61.7)
    assert event.tasks_by_status == {"G": (1,)}


def test_the_server_needs_a_workflow_before_it_answers() -> None:
    with pytest.raises(DriveError, match="no workflow"):
        InstantServer().handle(FetchTaskStatuses(3, workflow_id=1, since=None), 0.0)


@pytest.mark.parametrize(
    ("held", "requested", "after"),
    [
        ("B", "R", "B"),  # B -> R is not legal: the distributor moves the run B -> I -> O first
        ("O", "R", "R"),
        ("R", "R", "R"),
        ("G", "R", "G"),
        ("R", "D", "D"),
        ("B", "D", "B"),
        ("R", "E", "E"),
        ("C", "E", "C"),  # a resumed run only ends T
        ("D", "E", "D"),
        ("C", "T", "T"),
        ("H", "T", "T"),
        ("R", "T", "R"),
        ("C", "R", "C"),
    ],
)
def test_run_status_transitions(held: str, requested: str, after: str) -> None:
    server = InstantServer.for_topology(_spec("G"), run_status=held)
    ack = server.handle(UpdateWorkflowRunStatus(1, workflow_run_id=1, status=requested), 0.0)
    assert ack.status == after  # type: ignore[union-attr]
    server = InstantServer.for_topology(_spec("G"), run_status=held)
    hb = server.handle(LogHeartbeat(2, workflow_run_id=1, status=requested, next_report_increment=93.0), 0.0)
    assert hb.status == after  # type: ignore[union-attr]


def test_bind_resources_ids_increment_and_limits_come_from_the_topology() -> None:
    spec = reference_workload(20)
    server = InstantServer.for_topology(spec)
    model = server.model
    assert model is not None
    assert [model.bind_resources("q", ()) for _ in range(3)] == [1, 2, 3]
    assert model.workflow_limit == 10_000
    assert model.array_limits == {a: 2_000 for a in range(1, 11)}
    assert set(server.statuses.values()) == {"G"}


# --- the driver ------------------------------------------------------------------------------


def test_drive_reference_workload_to_done() -> None:
    spec = reference_workload(3000)
    server = InstantServer()
    result = drive(spec, SwarmConfig(), server=server)
    summary = result.summary
    assert summary is not None
    assert summary.final_status == "D"
    assert (summary.done_count, summary.failed_count, summary.total_tasks) == (3000, 0, 3000)
    assert set(server.statuses.values()) == {"D"}
    assert server.run_status == "D"
    assert result.events > 0 and result.commands > 0
    assert result.decide_seconds > 0 and result.server_seconds > 0
    assert result.virtual_seconds > 0


def test_drive_respects_concurrency_limits() -> None:
    spec = reference_workload(600, seed=2)
    spec = attrs.evolve(
        spec,
        workflow_limit=50,
        arrays=tuple(attrs.evolve(a, limit=20) for a in spec.arrays),
    )
    server = InstantServer()
    result = drive(spec, SwarmConfig(), server=server)
    assert result.final_status == "D"
    model = server.model
    assert model is not None
    # The model keeps the peak active counts, overall and per array.
    assert 0 < model.peak_total <= 50
    assert max(model.peak_by_array.values()) <= 20


def test_drive_is_deterministic_and_records_pairs() -> None:
    spec = reference_workload(1500, seed=4)
    first: list = []
    second: list = []
    a = drive(spec, SwarmConfig(), record=first)
    b = drive(spec, SwarmConfig(), record=second)
    assert first == second
    assert len(first) == a.events == b.events
    assert a.summary == b.summary
    assert isinstance(first[0][0], RunStarted)
    assert first[0][0].at == 0.0 and first[0][0].server_time == "2026-01-01 00:00:00"
    timers = [e for e, _ in first if isinstance(e, TimerFired)]
    assert timers and all(x.at <= y.at for x, y in zip(timers, timers[1:], strict=False))
    # Every server command was answered by exactly one event with its command id.
    answered = Counter(
        getattr(e, "command_id", None) for e, _ in first if not isinstance(e, (RunStarted, TimerFired))
    )
    assert all(n == 1 for n in answered.values())


def test_drive_times_decide_per_event_kind_with_full_syncs_apart() -> None:
    """``seconds_by_event`` counts every decide call once, under its event's class name, a
    full sync's answer (``since=None``) apart from the incremental ones."""
    spec = reference_workload(3000, seed=1)
    record: list = []
    by_event: dict[str, list[float]] = {}
    # A full sync every 60 s of loop time: several in this run.
    result = drive(spec, SwarmConfig(wedged_sync_interval=60.0), record=record, seconds_by_event=by_event)
    assert result.final_status == "D"
    full_ids = {
        c.command_id for _, commands in record for c in commands
        if isinstance(c, FetchTaskStatuses) and c.since is None
    }
    def kind(event: object) -> str:
        full = isinstance(event, TaskStatusesFetched) and event.command_id in full_ids
        return type(event).__name__ + (" (full)" if full else "")

    answers = Counter(kind(e) for e, _ in record)
    assert answers["TaskStatusesFetched (full)"] >= 2 and answers["TaskStatusesFetched"] >= 2
    assert {kind: int(calls) for kind, (calls, _) in by_event.items()} == dict(answers)
    assert sum(seconds for _, seconds in by_event.values()) <= result.decide_seconds
    assert all(seconds > 0 for _, seconds in by_event.values())


def test_drive_stops_at_max_events() -> None:
    spec = reference_workload(1000)
    result = drive(spec, SwarmConfig(), max_events=5)
    assert result.events == 5
    assert result.outcome is None and result.summary is None


def test_drive_counts_previously_complete_tasks() -> None:
    spec = TopologySpec(
        tasks=(TaskSpec(1, 1, 1, status="D"), TaskSpec(2, 1, 1, (1,)), TaskSpec(3, 1, 1, (2,))),
        arrays=(ArraySpec(1),),
        resource_sets=(ResourceSetSpec(1, "q", {"cores": 1}),),
    )
    result = drive(spec, SwarmConfig(heartbeat_interval=5.0))
    assert result.summary is not None
    assert result.summary.final_status == "D"
    assert result.summary.done_count == 3
    assert result.summary.num_previously_complete == 1


@pytest.mark.slow
def test_drive_reference_workload_at_scale() -> None:
    n = 100_000
    spec = reference_workload(n)
    result = drive(spec, SwarmConfig(timeout=1e9))
    assert result.summary is not None
    assert result.summary.final_status == "D"
    assert result.summary.done_count == n


def test_drive_evaluates_compute_resources_callables() -> None:
    spec = TopologySpec(
        tasks=(TaskSpec(1, 1, 1, compute_resources="bigger"), TaskSpec(2, 1, 1, (1,))),
        arrays=(ArraySpec(1),),
        resource_sets=(ResourceSetSpec(1, "q", {"cores": 1, "memory": 2}),),
    )
    record: list = []
    result = drive(spec, SwarmConfig(), record=record, callables={"bigger": lambda: {"memory": 8}})
    assert result.final_status == "D"
    bound = [c for _, cs in record for c in cs if isinstance(c, BindResources)]
    assert dict(bound[0].requested) == {"cores": 1, "memory": 8}
    assert any(dict(c.requested) == {"cores": 1, "memory": 2} for c in bound[1:])


def test_resolve_callable_registry_then_import_path() -> None:
    def mine() -> dict[str, int]:
        return {}

    assert resolve_callable("mine", {"mine": mine}) is mine
    assert resolve_callable("os.path:join", None) is os.path.join
    with pytest.raises(LookupError):
        resolve_callable("nowhere", None)
