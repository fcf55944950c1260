"""One focused test per decision in docs/decisions.md (spec §12 quirks Q1-Q18 and our policies).

Every test drives the pure core through ``decide`` only and asserts the exact commands or the
exact state that result. The helpers below play the shell: they answer commands the way a
Jobmon server would, with ``at`` values chosen by the test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from swarmfold.core import (
    ArraySpec,
    InvalidTopology,
    ProtocolViolation,
    QueueSpec,
    ResourceSetSpec,
    SwarmConfig,
    SwarmState,
    TaskSpec,
    TopologySpec,
    decide,
    initial_state,
    is_terminal,
)
from swarmfold.core.commands import (
    BindResources,
    Command,
    EvaluateResources,
    Fail,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    Finish,
    LoadEdgeChunk,
    LoadQueues,
    LoadTaskChunk,
    LogHeartbeat,
    NoteAnomaly,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
    WakeAt,
)
from swarmfold.core.config import UNLIMITED
from swarmfold.core.events import (
    ArrayLimitFetched,
    AttachStarted,
    BatchQueued,
    BatchQueueFailed,
    ChunkLoadFailed,
    DistributorDied,
    EdgeChunkLoaded,
    EdgeRow,
    Event,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    QueuesLoaded,
    ResourceBindFailed,
    ResourcesBound,
    ResourcesEvaluated,
    RunStarted,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    StopRequested,
    TaskChunkLoaded,
    TaskRow,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TimerFired,
    TriageRequested,
    WorkflowLimitFetched,
)

WF = 7
WFR = 70
T0 = "2024-01-01 00:00:00"
#: Heartbeat every 10 s: the main loop paces on it, so one iteration takes 10 s.
CFG = SwarmConfig(heartbeat_interval=10.0)
RS = {"memory": 2, "runtime": 60}
SYNC_TYPES = (RequestTriage, FetchTaskStatuses, FetchWorkflowLimit, FetchArrayLimit)


# --- helpers -------------------------------------------------------------------------------


def task(task_id: int, array: int = 1, rs: int = 1, up: Sequence[int] = (), **kw: Any) -> TaskSpec:
    return TaskSpec(task_id=task_id, array_id=array, resource_set_id=rs, upstream_ids=tuple(up), **kw)


def topology(
    *tasks: TaskSpec,
    arrays: Iterable[ArraySpec] | None = None,
    resource_sets: Iterable[ResourceSetSpec] | None = None,
    queues: Iterable[QueueSpec] = (),
    workflow_limit: int = UNLIMITED,
) -> TopologySpec:
    if arrays is None:
        arrays = [ArraySpec(a) for a in sorted({t.array_id for t in tasks})]
    if resource_sets is None:
        resource_sets = [ResourceSetSpec(1, "all.q", RS)]
    return TopologySpec(
        tasks=tasks, arrays=tuple(arrays), resource_sets=tuple(resource_sets),
        queues=tuple(queues), workflow_limit=workflow_limit,
    )


def of(commands: Iterable[Command], *types: type) -> list[Any]:
    return [c for c in commands if isinstance(c, types)]


def only(commands: Iterable[Command], cls: type) -> Any:
    found = of(commands, cls)
    assert len(found) == 1, f"expected one {cls.__name__}, got {found}"
    return found[0]


def anomalies(commands: Iterable[Command]) -> list[str]:
    return [c.kind for c in of(commands, NoteAnomaly)]


def without_wake(commands: Iterable[Command]) -> list[Command]:
    return [c for c in commands if not isinstance(c, WakeAt)]


class Run:
    """The state of one run plus every command the core issued, as a shell would hold them."""

    def __init__(self, state: SwarmState | None = None) -> None:
        self.state = state if state is not None else initial_state()
        self.commands: list[Command] = []
        self.batch_answers = 0

    def feed(self, event: Event) -> list[Command]:
        decision = decide(self.state, event)
        self.state = decision.state
        self.commands.extend(decision.commands)
        return list(decision.commands)

    def awaiting(self, *types: type) -> list[Any]:
        """Commands issued and not answered yet, oldest first."""
        pending = self.state.pending
        return [c for c in self.commands if c.command_id in pending and isinstance(c, types or (object,))]

    def status(self, task_id: int) -> str:
        return self.state.task_status(task_id)

    def index(self, task_id: int) -> int:
        assert self.state.topology is not None
        return self.state.topology.index_of[task_id]

    # --- answers a plain Jobmon server would give -------------------------------------------
    def default_answer(
        self,
        c: Command,
        at: float,
        statuses: Mapping[str, Sequence[int]],
        server_time: str | None,
        limits: Mapping[int, int],
    ) -> Event:
        if isinstance(c, BindResources):
            return ResourcesBound(c.command_id, at, 100 + c.command_id)
        if isinstance(c, QueueBatch):
            return BatchQueued(c.command_id, at, {"Q": c.task_ids})
        if isinstance(c, RequestTriage):
            return TriageRequested(c.command_id, at)
        if isinstance(c, FetchTaskStatuses):
            return TaskStatusesFetched(c.command_id, at, statuses, server_time)
        if isinstance(c, FetchWorkflowLimit):
            return WorkflowLimitFetched(c.command_id, at, self.state.workflow_limit)
        if isinstance(c, FetchArrayLimit):
            limit = limits.get(c.array_id, self.state.array_limits[c.array_id])
            return ArrayLimitFetched(c.command_id, at, c.array_id, limit)
        if isinstance(c, LogHeartbeat):
            return HeartbeatAcknowledged(c.command_id, at, c.status)
        if isinstance(c, UpdateWorkflowRunStatus):
            return StatusUpdateAcknowledged(c.command_id, at, c.status)
        if isinstance(c, TerminateTaskInstances):
            return TerminateAcknowledged(c.command_id, at, 0)
        raise AssertionError(f"no default answer for {c}")

    def answer(
        self,
        *types: type,
        at: float,
        statuses: Mapping[str, Sequence[int]] | None = None,
        server_time: str | None = None,
        limits: Mapping[int, int] | None = None,
    ) -> list[Command]:
        """Answer every awaited command of these types (all types if none), oldest first.

        Commands issued by these answers are not answered. Returns the commands issued.
        """
        out: list[Command] = []
        for c in self.awaiting(*types):
            if c.command_id in self.state.pending:
                out += self.feed(self.default_answer(c, at, statuses or {}, server_time, limits or {}))
        return out

    def settle(
        self,
        at: float,
        statuses: Mapping[str, Sequence[int]] | None = None,
        limits: Mapping[int, int] | None = None,
    ) -> list[Command]:
        """Answer binds and batches until none is awaited, then the sync if one is awaited."""
        out: list[Command] = []
        while self.awaiting(BindResources, QueueBatch):
            out += self.answer(BindResources, QueueBatch, at=at)
        out += self.answer(*SYNC_TYPES, at=at, statuses=statuses, limits=limits)
        return out

    def iterate(
        self,
        at: float,
        statuses: Mapping[str, Sequence[int]] | None = None,
        limits: Mapping[int, int] | None = None,
    ) -> list[Command]:
        """Let the clock reach ``at``; answer the heartbeat, then any batches, then the sync.

        Batches of the pass that follows the sync are issued but left unanswered.
        """
        out = self.feed(TimerFired(at))
        out += self.answer(LogHeartbeat, at=at)
        out += self.settle(at, statuses, limits)
        return out


def start(spec: TopologySpec, config: SwarmConfig = CFG, at: float = 0.0, run_status: str = "B") -> Run:
    """RunStarted, and the server accepts RUNNING at the same instant; nothing else answered."""
    run = Run()
    run.feed(RunStarted(at, WF, WFR, spec, config, run_status, T0))
    if run_status != "R":
        run.answer(UpdateWorkflowRunStatus, at=at)
    return run


# --- Q1: E is a transient status -----------------------------------------------------------


def test_q1_error_recoverable_is_counted_not_active_and_not_a_crash() -> None:
    run = start(topology(task(1), task(2)))
    run.settle(0.0)  # bind + batch: both tasks Q
    assert run.state.active_count == 2
    out = run.iterate(10.0, statuses={"E": [1]})
    assert anomalies(out) == []
    assert run.status(1) == "E"
    assert run.state.count("E") == 1
    assert run.state.active_count == 1  # E holds no concurrency slot
    assert not run.state.all_tasks_final()  # and is not final
    # The server then retries it (E -> G): it is queued again.
    out = run.iterate(20.0, statuses={"G": [1]})
    assert [c.task_ids for c in of(out, QueueBatch)] == [(1,)]


def test_q1_a_run_left_with_only_error_recoverable_tasks_ends_after_a_full_sync() -> None:
    run = start(topology(task(1, status="R"), task(2, up=[1])))
    out = run.iterate(10.0, statuses={"E": [1]})
    assert [c.since for c in of(out, FetchTaskStatuses)] == [T0, None]  # pre-exit full sync
    out = run.answer(*SYNC_TYPES, at=10.0, statuses={"E": [1]})
    assert only(out, UpdateWorkflowRunStatus).status == "E"


# --- Q2: numeric max task id when attaching ------------------------------------------------


def row(task_id: int, status: str = "G", array: int = 1) -> TaskRow:
    return TaskRow(
        task_id=task_id, array_id=array, status=status, max_attempts=3,
        resource_scales=(("memory", 0.5),), fallback_queues=(), requested_resources=(("memory", 2),),
        cluster_name="c", queue_name="all.q", array_limit=UNLIMITED,
    )


def attach(config: SwarmConfig, run_status: str = "B") -> tuple[Run, list[Command]]:
    run = Run()
    out = run.feed(AttachStarted(0.0, WF, WFR, dag_id=5, workflow_limit=100, config=config,
                                 run_status=run_status, server_time=T0, queues=[QueueSpec("all.q")]))
    return run, out


def test_q2_next_task_chunk_starts_after_the_numeric_max_id() -> None:
    run, out = attach(SwarmConfig(chunk_size=3))
    first = only(out, LoadTaskChunk)
    assert (first.workflow_id, first.after_task_id, first.chunk_size) == (WF, 0, 3)
    out = run.feed(TaskChunkLoaded(first.command_id, 0.1, [row(8), row(9), row(10)]))
    # Lexicographically "9" > "10"; Jobmon would ask for ids above 9 and load 10 again.
    assert only(out, LoadTaskChunk).after_task_id == 10


# --- Q3: num_previously_complete -----------------------------------------------------------


def test_q3_num_previously_complete_counts_tasks_done_at_start() -> None:
    spec = topology(task(1, status="D"), task(2, status="D"), task(3, up=[1, 2]))
    run = start(spec)
    assert run.state.num_previously_complete == 2
    run.settle(0.0)
    out = run.iterate(10.0, statuses={"D": [3]})
    final = only(out, UpdateWorkflowRunStatus)
    assert final.status == "D"
    out = run.answer(UpdateWorkflowRunStatus, at=10.0)
    summary = only(out, Finish).summary
    assert (summary.final_status, summary.total_tasks, summary.done_count) == ("D", 3, 3)
    assert summary.num_previously_complete == 2


def test_q3_attached_run_counts_the_done_tasks_the_server_reported() -> None:
    run = Run()
    out = run.feed(AttachStarted(0.0, WF, WFR, dag_id=5, workflow_limit=100,
                                 config=SwarmConfig(chunk_size=10), server_time=T0,
                                 queues=[QueueSpec("all.q")], previously_complete=11))
    chunk = only(out, LoadTaskChunk)
    out = run.feed(TaskChunkLoaded(chunk.command_id, 0.1, [row(1), row(2), row(3)]))
    edges = only(out, LoadEdgeChunk)
    run.feed(EdgeChunkLoaded(edges.command_id, 0.2, [EdgeRow(t, t + 10, ()) for t in (1, 2, 3)]))
    # get_tasks sends no DONE task; the shell's full sync counted 11: Jobmon's "14 total, 11
    # previously complete".
    assert run.state.num_previously_complete == 11
    from swarmfold.core.lifecycle import build_summary
    from swarmfold.core.state import Tx

    summary = build_summary(Tx(run.state), 1.0, "test")
    assert (summary.total_tasks, summary.done_count, summary.num_previously_complete) == (14, 11, 11)


def test_q3_attached_run_without_a_count_reports_zero_previously_complete() -> None:
    run, out = attach(SwarmConfig(chunk_size=10))
    chunk = only(out, LoadTaskChunk)
    out = run.feed(TaskChunkLoaded(chunk.command_id, 0.1, [row(1)]))
    edges = only(out, LoadEdgeChunk)
    run.feed(EdgeChunkLoaded(edges.command_id, 0.2, [EdgeRow(1, 11, ())]))
    assert run.state.num_previously_complete == 0


# --- Q4: bind type "O" ---------------------------------------------------------------------


def test_q4_every_bind_uses_type_O_even_for_adjusted_resources() -> None:
    spec = topology(task(1), task(2, status="A"), queues=[QueueSpec("all.q", queue_id=3)])
    run = start(spec)
    binds = run.awaiting(BindResources)
    assert [(b.queue, b.queue_id, b.task_resources_type_id) for b in binds] == [
        ("all.q", 3, "O"), ("all.q", 3, "O"),
    ]
    # One bind is the adjusted request of task 2 (memory 2 -> 3, runtime 60 -> 90).
    assert sorted(b.requested for b in binds) == [
        (("memory", 2), ("runtime", 60)), (("memory", 3), ("runtime", 90)),
    ]


# --- Q5: a scheduling pass emits all its batches -------------------------------------------


def test_q5_one_pass_emits_every_batch_in_jobmon_order_even_with_the_heartbeat_due() -> None:
    # Spec §6.1 worked example: queue [a1(A,r1), b1(B,r1), a2(A,r2), a3(A,r1)]
    # gives batches [a1, a3], [b1], [a2]. Arrays A=1, B=2; resource sets r1=1, r2=2.
    spec = topology(
        task(1, array=1, rs=1), task(2, array=2, rs=1), task(3, array=1, rs=2), task(4, array=1, rs=1),
        resource_sets=[ResourceSetSpec(1, "all.q", RS), ResourceSetSpec(2, "all.q", {"memory": 9})],
    )
    run = Run()
    run.feed(RunStarted(0.0, WF, WFR, spec, CFG, "B", T0))
    # RUNNING is accepted late: the heartbeat is overdue. Jobmon's tick would then run with
    # timeout 0 (= unlimited); here the pass is independent of the heartbeat and emits it all.
    out = run.answer(UpdateWorkflowRunStatus, at=25.0)
    assert [type(c) for c in without_wake(out)] == [LogHeartbeat, BindResources, BindResources]
    r1, r2 = of(out, BindResources)
    assert (r1.requested, r2.requested) == ((("memory", 2), ("runtime", 60)), (("memory", 9),))
    out = run.feed(ResourcesBound(r1.command_id, 25.1, 501))
    assert [(c.array_id, c.task_ids, c.task_resources_id) for c in out] == [(1, (1, 4), 501), (2, (2,), 501)]
    out = run.feed(ResourcesBound(r2.command_id, 25.2, 502))
    assert [(c.array_id, c.task_ids, c.task_resources_id) for c in of(out, QueueBatch)] == [(1, (3,), 502)]


def test_q5_pass_splits_by_batch_size_and_capacities() -> None:
    spec = topology(*[task(i) for i in range(1, 8)], arrays=[ArraySpec(1, limit=5)])
    run = start(spec, SwarmConfig(heartbeat_interval=10.0, max_batch_size=2))
    out = run.answer(BindResources, at=0.0)
    assert [c.task_ids for c in of(out, QueueBatch)] == [(1, 2), (3, 4), (5,)]
    assert run.state.ready_count == 2


def test_q5_parked_batches_are_released_by_resources_in_pass_order_within_each() -> None:
    # One pass, three batches in Jobmon's §6.1 order: [1] (r2), [2] (r1), [3] (r2).
    spec = topology(
        task(1, array=1, rs=2), task(2, array=1, rs=1), task(3, array=2, rs=2),
        resource_sets=[ResourceSetSpec(1, "all.q", RS), ResourceSetSpec(2, "all.q", {"memory": 9})],
    )
    run = start(spec)
    r2, r1 = run.awaiting(BindResources)  # one bind per content, in order of first use
    assert (r2.requested, r1.requested) == ((("memory", 9),), (("memory", 2), ("runtime", 60)))
    # The r1 bind answers first: its batch goes first, ahead of the earlier r2 batch.
    out = run.feed(ResourcesBound(r1.command_id, 0.1, 501))
    assert [c.task_ids for c in of(out, QueueBatch)] == [(2,)]
    # The r2 bind answers: both batches parked on r2 go, in the pass's order.
    out = run.feed(ResourcesBound(r2.command_id, 0.2, 502))
    assert [(c.array_id, c.task_ids) for c in of(out, QueueBatch)] == [(1, (1,)), (2, (3,))]


def test_q5_batches_on_bound_resources_go_at_once_ahead_of_parked_ones() -> None:
    spec = topology(
        task(1), task(2, rs=2), task(3, up=[1]), task(4, up=[1], rs=2), task(5, up=[1]),
        resource_sets=[ResourceSetSpec(1, "all.q", RS), ResourceSetSpec(2, "all.q", {"memory": 9})],
    )
    run = start(spec)
    run.settle(0.0)  # r1 and r2 bound; tasks 1 and 2 queued
    # Task 1 is DONE: 3 (r1), 4 (r2), 5 (r1) are ready; both contents are bound already,
    # so the next pass emits its batches in §6.1 order with no parking at all.
    out = run.iterate(10.0, statuses={"D": [1]})
    assert [c.task_ids for c in of(out, QueueBatch)] == [(3, 5), (4,)]
    assert of(out, BindResources) == []


# --- Ready order: newly ready tasks join the queue in topology order ----------------------


def test_newly_ready_downstreams_join_the_queue_in_topology_order_not_set_order() -> None:
    # Downstreams of task 1, listed in the spec as 9, 7, 8. Jobmon iterates a set of
    # SwarmTasks hashed by id: CPython's order for {7, 8, 9} is 8, 9, 7 (id mod table size).
    assert list({7, 8, 9}) == [8, 9, 7]
    spec = topology(task(1), task(9, up=[1]), task(7, up=[1]), task(8, up=[1]))
    run = start(spec)
    run.settle(0.0)
    out = run.iterate(10.0, statuses={"D": [1]})
    assert [c.task_ids for c in of(out, QueueBatch)] == [(9, 7, 8)]


def test_done_tasks_of_one_report_release_their_downstreams_in_report_order() -> None:
    spec = topology(task(1), task(2), task(3, up=[1]), task(4, up=[2]))
    run = start(spec)
    run.settle(0.0)
    out = run.iterate(10.0, statuses={"D": [2, 1]})  # the server listed 2 before 1
    assert [c.task_ids for c in of(out, QueueBatch)] == [(4, 3)]


# --- Q6: failed heartbeats do not make the loop spin ---------------------------------------


def test_q6_failed_heartbeat_retries_at_half_interval_and_the_loop_waits_for_it() -> None:
    run = start(topology(task(1, status="R")))  # one running task keeps the loop alive
    out = run.feed(TimerFired(10.0))
    hb = only(out, LogHeartbeat)
    assert len(of(out, FetchTaskStatuses)) == 1  # the sync falls due with the heartbeat
    out = run.feed(HeartbeatFailed(hb.command_id, 10.5, "HTTP 502"))
    assert anomalies(out) == ["heartbeat_failed"]
    assert out[-1] == WakeAt(out[-1].command_id, 15.5)  # 10.5 + max(0.1, 10/2)
    # The sync ends at 11: the next iteration waits for the retried heartbeat, no spinning.
    out = run.answer(*SYNC_TYPES, at=11.0)
    assert of(out, *SYNC_TYPES) == []
    assert run.state.timing.sync_due_at == 15.5
    out = run.feed(TimerFired(15.5))
    assert [type(c) for c in without_wake(out)] == [
        LogHeartbeat, RequestTriage, FetchTaskStatuses, FetchWorkflowLimit, FetchArrayLimit,
    ]


def test_q6_retry_delay_has_a_floor_of_a_tenth_of_a_second() -> None:
    run = start(topology(task(1, status="R")), SwarmConfig(heartbeat_interval=0.1))
    hb = only(run.feed(TimerFired(0.1)), LogHeartbeat)
    run.feed(HeartbeatFailed(hb.command_id, 0.15, "timeout"))
    assert run.state.timing.next_heartbeat_at == pytest.approx(0.25)


def test_q6_hanging_heartbeat_does_not_make_the_loop_spin_either() -> None:
    run = start(topology(task(1, status="R")))
    out = run.feed(TimerFired(10.0))
    only(out, LogHeartbeat)  # sent at 10.0 and never answered
    run.answer(*SYNC_TYPES, at=10.5)
    out = run.feed(TimerFired(20.0))  # the next heartbeat would be due: one is still in flight
    assert of(out, LogHeartbeat) == []
    assert len(of(out, FetchTaskStatuses)) == 1
    out = run.answer(*SYNC_TYPES, at=20.5)
    assert of(out, *SYNC_TYPES) == []
    assert run.state.timing.sync_due_at == 25.5  # 20.5 + max(0.1, 10/2)


# --- Q7: a task is in the ready queue at most once -----------------------------------------


def test_q7_task_reported_registering_twice_with_its_upstream_done_is_queued_once() -> None:
    # Array 2 starts with limit 0, so task 2 stays in the ready queue once it is ready.
    spec = topology(task(1, array=1), task(2, array=2, up=[1]),
                    arrays=[ArraySpec(1), ArraySpec(2, limit=0)])
    run = start(spec)
    run.settle(0.0)  # task 1 is Q
    # G for task 2 listed first (twice) and D for its upstream in the same report.
    out = run.iterate(10.0, statuses={"G": [2, 2], "D": [1]})
    assert run.state.ready_count == 1
    assert of(out, QueueBatch) == []
    # Reported G again while it waits in the ready queue: still there once.
    run.iterate(20.0, statuses={"G": [2]})
    assert run.state.ready_count == 1
    # Array 2's limit is raised: one pass, one batch, task 2 once.
    out = run.iterate(30.0, limits={2: 5})
    assert [c.task_ids for c in of(out, QueueBatch)] == [(2,)]
    assert run.state.ready_count == 0


def test_double_enqueue_impossible_when_upstream_done_and_downstream_registering_arrive_together() -> None:
    # Jobmon's regression UT/test_orchestrator.py:878-941, here with the upstream listed first.
    run = start(topology(task(1), task(2, up=[1])))
    run.settle(0.0)
    out = run.iterate(10.0, statuses={"D": [1], "G": [2]})
    assert [c.task_ids for c in of(out, QueueBatch)] == [(2,)]
    assert (run.state.ready_count, run.state.inflight_total) == (0, 1)


# --- Q8: a task of an unknown array is rejected up front -----------------------------------


def test_q8_unknown_array_is_an_invalid_topology_naming_task_and_array() -> None:
    spec = topology(task(1), task(5, array=9), arrays=[ArraySpec(1)])
    with pytest.raises(InvalidTopology, match=r"task 5\): unknown array_id 9"):
        decide(initial_state(), RunStarted(0.0, WF, WFR, spec, CFG, "B", T0))


# --- Q9 / Q10: the C/H drain ---------------------------------------------------------------


def resume_signal(run: Run, at: float, signal: str = "C") -> None:
    """The heartbeat at ``at`` learns that another process resumed the workflow."""
    out = run.feed(TimerFired(at))
    hb = only(out, LogHeartbeat)
    run.feed(HeartbeatAcknowledged(hb.command_id, at, signal))


def test_q9_only_queued_tasks_left_get_one_terminate_before_finalizing() -> None:
    run = start(topology(task(1, status="Q")))
    resume_signal(run, 10.0, "C")
    out = run.answer(*SYNC_TYPES, at=10.0)  # the next iteration starts and sees C
    calls = without_wake(out)
    assert [type(c) for c in calls] == [TerminateTaskInstances, UpdateWorkflowRunStatus]
    assert calls[0].workflow_run_id == WFR
    assert calls[1].status == "T"
    out = run.feed(StatusUpdateAcknowledged(calls[1].command_id, 10.1, "T"))
    assert only(out, Finish).summary.final_status == "T"


def test_q10_drain_waits_while_an_instantiating_task_remains_despite_terminate() -> None:
    run = start(topology(task(1, status="I"), task(2, status="Q")))
    resume_signal(run, 10.0, "H")
    out = run.answer(*SYNC_TYPES, at=10.0)
    assert [type(c) for c in without_wake(out)] == [TerminateTaskInstances]
    run.answer(TerminateTaskInstances, at=10.1)
    # terminate_task_instances does not change Task statuses: I stays I, Q stays Q.
    out = run.iterate(20.0, statuses={"I": [1], "Q": [2]})
    assert [type(c) for c in of(out, TerminateTaskInstances, UpdateWorkflowRunStatus)] == [
        TerminateTaskInstances,
    ]
    assert run.state.phase == "running"
    # Only the reaper's T, seen by the heartbeat, ends the wait; no request is sent then.
    resume_signal(run, 30.0, "T")
    out = run.answer(*SYNC_TYPES, at=30.0)
    assert of(out, UpdateWorkflowRunStatus, TerminateTaskInstances) == []
    summary = only(out, Finish).summary
    assert summary.final_status == "T"
    assert summary.tasks_by_status == {"I": (1,), "Q": (2,)}


# --- Q11: the heartbeat keeps sending C/H --------------------------------------------------


def test_q11_heartbeat_during_cold_resume_sends_status_C() -> None:
    run = start(topology(task(1, status="R")))
    resume_signal(run, 10.0, "C")
    run.answer(*SYNC_TYPES, at=10.0)
    run.answer(TerminateTaskInstances, at=10.0)
    hb = only(run.feed(TimerFired(20.0)), LogHeartbeat)
    assert (hb.workflow_run_id, hb.status, hb.next_report_increment) == (WFR, "C", 31.0)


# --- Q12: finalize asks for D first --------------------------------------------------------


def test_q12_finalize_asks_for_done_even_in_cold_resume_and_reports_the_servers_status() -> None:
    run = start(topology(task(1, status="R")))
    resume_signal(run, 10.0, "C")
    run.answer(*SYNC_TYPES, at=10.0)
    run.answer(TerminateTaskInstances, at=10.0)
    out = run.iterate(20.0, statuses={"D": [1]})
    final = only(out, UpdateWorkflowRunStatus)
    assert final.status == "D"
    out = run.feed(StatusUpdateAcknowledged(final.command_id, 20.1, "C"))  # C -> D refused
    summary = only(out, Finish).summary
    assert summary.final_status == "C"
    assert summary.done_count == 1
    assert summary.reason == "all tasks done; the server kept C instead of D"


# --- Q13: wedged full syncs ----------------------------------------------------------------


def test_q13_change_visible_only_to_full_syncs_is_picked_up_by_the_wedged_full_sync() -> None:
    config = SwarmConfig(heartbeat_interval=10.0, wedged_sync_interval=25.0)
    run = start(topology(task(1, status="R")), config)
    hidden = {"D": [1]}  # a CLI update_statuses: status_date not bumped

    def server(c: FetchTaskStatuses) -> dict[str, list[int]]:
        return hidden if c.since is None else {}

    sinces = []
    for at in (10.0, 20.0, 30.0, 40.0):
        run.feed(TimerFired(at))
        run.answer(LogHeartbeat, at=at)
        fetch = only(run.awaiting(FetchTaskStatuses), FetchTaskStatuses)
        sinces.append(fetch.since)
        run.feed(TaskStatusesFetched(fetch.command_id, at, server(fetch), T0))
        run.answer(RequestTriage, FetchWorkflowLimit, FetchArrayLimit, at=at)
        if run.state.phase != "running":
            break
    # Accumulated loop time 10, 20, 30 (> 25): the fourth sync is full and sees task 1 DONE.
    assert sinces == [T0, T0, T0, None]
    assert run.status(1) == "D"
    assert only(run.awaiting(), UpdateWorkflowRunStatus).status == "D"


def test_q13_negative_wedged_interval_makes_every_sync_full() -> None:
    run = start(topology(task(1, status="R")), SwarmConfig(heartbeat_interval=10.0, wedged_sync_interval=-1))
    out = run.feed(TimerFired(10.0))
    assert only(out, FetchTaskStatuses).since is None


# --- Q14: last_sync is the server's opaque string ------------------------------------------


def test_q14_since_echoes_the_servers_time_string_exactly() -> None:
    odd = "2024-02-30 25:61:61.5 server-local"  # not even a valid date: never parsed
    run = Run()
    run.feed(RunStarted(0.0, WF, WFR, topology(task(1, status="R")), CFG, "R", odd))
    out = run.feed(TimerFired(10.0))
    fetch = only(out, FetchTaskStatuses)
    assert (fetch.workflow_id, fetch.since) == (WF, odd)
    run.answer(LogHeartbeat, at=10.0)
    run.feed(TaskStatusesFetched(fetch.command_id, 10.0, {}, "2024-01-01 00:00:10"))
    run.answer(*SYNC_TYPES, at=10.0)
    out = run.feed(TimerFired(20.0))
    assert only(out, FetchTaskStatuses).since == "2024-01-01 00:00:10"


def test_q14_failed_status_fetch_keeps_the_old_last_sync() -> None:
    from swarmfold.core.events import SyncPartFailed

    run = start(topology(task(1, status="R")))
    out = run.feed(TimerFired(10.0))
    run.answer(LogHeartbeat, at=10.0)
    fetch = only(out, FetchTaskStatuses)
    out = run.feed(SyncPartFailed(fetch.command_id, 10.0, "HTTP 500"))
    assert anomalies(out) == ["sync_part_failed"]
    run.answer(*SYNC_TYPES, at=10.0)
    assert only(run.feed(TimerFired(20.0)), FetchTaskStatuses).since == T0


# --- Q15: an upstream that is DONE twice ---------------------------------------------------


def test_q15_done_reset_done_never_overshoots_the_upstream_count() -> None:
    # Arrays with limit 0: nothing is ever queued, the reports come from syncs alone.
    spec = topology(task(1, array=1), task(2, array=2, up=[1]),
                    arrays=[ArraySpec(1, limit=0), ArraySpec(2, limit=0)])
    run = start(spec)
    i2 = run.index(2)
    assert run.state.ready_count == 1  # task 1
    run.iterate(10.0, statuses={"D": [1]})
    assert (run.state.upstream_done[i2], run.state.ready_count) == (1, 1)  # now task 2
    run.iterate(20.0, statuses={"G": [1]})  # D -> G reset via the CLI
    assert (run.state.upstream_done[i2], run.state.ready_count) == (0, 1)  # task 1 again
    out = run.iterate(30.0, statuses={"D": [1]})  # and DONE again: Jobmon raises here
    assert (run.state.upstream_done[i2], run.state.ready_count) == (1, 1)
    assert run.state.n_executions == 2
    assert anomalies(out) == []
    assert run.state.phase == "running"


def test_adjusting_task_waits_for_a_reset_upstream_and_is_queued_when_it_is_done_again() -> None:
    # Array 1 has limit 0 so task 1 is never queued; task 2 starts RUNNING behind a DONE task 1.
    spec = topology(task(1, array=1, status="D"), task(2, array=2, up=[1], status="R"),
                    arrays=[ArraySpec(1, limit=0), ArraySpec(2)])
    run = start(spec)
    i2 = run.index(2)
    # One report resets task 1 (D -> G) and sends task 2 to ADJUSTING_RESOURCES.
    run.iterate(10.0, statuses={"G": [1], "A": [2]})
    assert run.status(2) == "A"
    assert run.state.place[i2] == 0  # scaled, but not queued: task 1 is not DONE
    # Task 1 DONE again: task 2 goes to the front of the queue, resources scaled once.
    out = run.iterate(20.0, statuses={"D": [1]})
    out += run.answer(BindResources, at=20.0)  # its scaled resources are new: bound first
    batch = only(out, QueueBatch)  # queued again at once, and batched by the next pass
    assert batch.task_ids == (2,)
    assert run.state.resources.adjustments.get(i2) == 1


# --- Q16: the window between RUNNING and the first heartbeat -------------------------------


def test_q16_first_heartbeat_is_one_interval_after_the_run_started() -> None:
    run = Run()
    out = run.feed(RunStarted(5.0, WF, WFR, topology(task(1)), CFG, "B", T0))
    assert of(out, LogHeartbeat) == []
    assert out[-1] == WakeAt(out[-1].command_id, 15.0)
    run.answer(UpdateWorkflowRunStatus, at=5.0)
    assert of(run.feed(TimerFired(14.9)), LogHeartbeat) == []
    assert only(run.feed(TimerFired(15.0)), LogHeartbeat).status == "R"


# --- Q17: attaching sends no update_status(B) ----------------------------------------------


def test_q17_attach_path_never_sends_the_builders_update_status_B() -> None:
    run, out = attach(SwarmConfig(chunk_size=10, heartbeat_interval=10.0))
    assert [type(c) for c in without_wake(out)] == [LogHeartbeat, LoadTaskChunk]
    assert only(out, LogHeartbeat).status == "B"  # the builder's synchronous heartbeat
    run.answer(LogHeartbeat, at=0.0)
    chunk = only(out, LoadTaskChunk)
    out = run.feed(TaskChunkLoaded(chunk.command_id, 0.1, [row(1), row(2)]))
    edges = only(out, LoadEdgeChunk)
    assert (edges.dag_id, edges.task_ids) == (5, (1, 2))
    out = run.feed(EdgeChunkLoaded(edges.command_id, 0.2, [EdgeRow(1, 11, (12,)), EdgeRow(2, 12, ())]))
    # Straight to RUNNING: the only status update is R.
    assert [c.status for c in of(run.commands, UpdateWorkflowRunStatus)] == ["R"]
    assert run.state.phase == "starting"
    run.answer(UpdateWorkflowRunStatus, at=0.3)
    assert run.state.workflow_limit == 100
    assert run.awaiting(BindResources)  # task 1 is ready; task 2 waits for it


# --- Q18: max_attempts is the server's business --------------------------------------------


def test_q18_max_attempts_is_carried_but_never_limits_retries() -> None:
    run = start(topology(task(1, max_attempts=1)))
    assert run.state.topology is not None and run.state.topology.max_attempts == (1,)
    run.settle(0.0)
    for k, at in enumerate((10.0, 20.0, 30.0)):
        # The server keeps retrying (Q -> G); the swarm queues it again each time.
        out = run.iterate(at, statuses={"G": [1]})
        assert [c.task_ids for c in of(out, QueueBatch)] == [(1,)], k
    assert run.state.count("F") == 0


# --- stale reports, unknown codes, unknown ids ---------------------------------------------


def test_stale_report_cannot_move_a_done_task_except_back_to_registering() -> None:
    run = start(topology(task(1, status="R"), task(2, status="R"), task(3, status="R")))
    run.iterate(10.0, statuses={"D": [1], "F": [2]})
    out = run.iterate(20.0, statuses={"R": [1], "Q": [2]})
    assert anomalies(out) == ["stale_report"]
    assert only(out, NoteAnomaly).detail.startswith("task_status_updates: 2 report(s)")
    assert (run.status(1), run.status(2)) == ("D", "F")


def test_unknown_task_status_code_is_noted_and_not_applied_unknown_ids_are_ignored() -> None:
    run = start(topology(task(1, status="R")))
    out = run.iterate(10.0, statuses={"Z": [1], "D": [999]})
    assert anomalies(out) == ["unknown_task_status"]
    assert "status code 'Z' for 1 task(s)" in only(out, NoteAnomaly).detail
    assert run.status(1) == "R"
    assert run.state.count("D") == 0


def test_unknown_run_status_in_heartbeat_answer_is_noted_and_ignored() -> None:
    run = start(topology(task(1, status="R")))
    hb = only(run.feed(TimerFired(10.0)), LogHeartbeat)
    out = run.feed(HeartbeatAcknowledged(hb.command_id, 10.0, "X"))
    assert anomalies(out) == ["unknown_run_status"]
    assert run.state.heartbeat_status == "R"


# --- batch failures and incomplete answers -------------------------------------------------


def test_batch_failure_requeues_the_tasks_at_the_front_in_order() -> None:
    spec = topology(*[task(i) for i in (1, 2, 3, 4)], arrays=[ArraySpec(1, limit=2)])
    run = start(spec)
    out = run.answer(BindResources, at=0.0)
    batch = only(out, QueueBatch)
    assert batch.task_ids == (1, 2)
    out = run.feed(BatchQueueFailed(batch.command_id, 0.5, "HTTP 503"))
    assert anomalies(out) == ["batch_queue_failed"]
    assert run.state.ready_count == 4
    assert run.state.inflight_total == 0
    out = run.iterate(10.0)
    assert [c.task_ids for c in of(out, QueueBatch)] == [(1, 2)]  # Jobmon would error the run


def test_bind_failure_requeues_the_parked_tasks_and_binds_again_next_pass() -> None:
    run = start(topology(task(1), task(2)))
    bind = only(run.awaiting(BindResources), BindResources)
    out = run.feed(ResourceBindFailed(bind.command_id, 0.5, "HTTP 500"))
    assert anomalies(out) == ["bind_resources_failed"]
    assert run.state.ready_count == 2
    out = run.iterate(10.0)
    assert len(of(out, BindResources)) == 1
    out = run.answer(BindResources, at=10.0)
    assert [c.task_ids for c in of(out, QueueBatch)] == [(1, 2)]


def test_tasks_missing_from_a_batch_answer_are_requeued_and_noted() -> None:
    run = start(topology(task(1), task(2), task(3)))
    batch = only(run.answer(BindResources, at=0.0), QueueBatch)
    out = run.feed(BatchQueued(batch.command_id, 0.5, {"Q": [2]}))
    assert anomalies(out) == ["batch_answer_incomplete"]
    assert run.state.ready_count == 2
    out = run.iterate(10.0)
    assert [c.task_ids for c in of(out, QueueBatch)] == [(1, 3)]


def test_registering_task_left_unqueued_by_a_batch_answer_is_requeued() -> None:
    run = start(topology(task(1), task(2)))
    batch = only(run.answer(BindResources, at=0.0), QueueBatch)
    out = run.feed(BatchQueued(batch.command_id, 0.5, {"Q": [1], "G": [2]}))
    assert anomalies(out) == []
    assert (run.status(2), run.state.ready_count) == ("G", 1)
    assert [c.task_ids for c in of(run.iterate(10.0), QueueBatch)] == [(2,)]


def test_in_flight_tasks_hold_workflow_and_array_capacity() -> None:
    spec = topology(*[task(i) for i in (1, 2, 3)], arrays=[ArraySpec(1, limit=3)], workflow_limit=2)
    run = start(spec)
    assert run.awaiting(BindResources)  # the batch of 1, 2 is parked until bound
    assert (run.state.inflight_total, run.state.active_count) == (2, 0)
    assert run.state.workflow_capacity() == 0
    assert run.state.array_capacity(1) == 1


# --- user callables ------------------------------------------------------------------------


def test_compute_resources_callable_is_evaluated_once_when_the_task_becomes_ready() -> None:
    run = start(topology(task(1, compute_resources="mem_for_task")))
    ev = only(run.commands, EvaluateResources)
    assert (ev.task_id, ev.purpose, ev.callables, ev.requested) == (
        1, "compute_resources", (("*", "mem_for_task"),), (("memory", 2), ("runtime", 60)),
    )
    out = run.feed(ResourcesEvaluated(ev.command_id, 0.2, {"memory": 7}))
    assert without_wake(out) == []  # enqueued at the back; the next pass takes it
    assert run.state.ready_count == 1
    out = run.iterate(10.0)
    assert only(out, BindResources).requested == (("memory", 7), ("runtime", 60))
    run.settle(10.0)
    out = run.iterate(20.0, statuses={"G": [1]})  # retried: not evaluated again
    assert of(out, EvaluateResources) == []
    assert [c.task_ids for c in of(out, QueueBatch)] == [(1,)]


def test_callable_scale_is_evaluated_when_the_task_enters_adjusting() -> None:
    run = start(topology(task(1, resource_scales={"memory": "double_it", "runtime": 0.5})))
    run.settle(0.0)
    out = run.iterate(10.0, statuses={"A": [1]})
    ev = only(out, EvaluateResources)
    assert (ev.purpose, ev.callables, ev.requested) == (
        "resource_scales", (("memory", "double_it"),), (("memory", 2), ("runtime", 60)),
    )
    run.feed(ResourcesEvaluated(ev.command_id, 10.1, {"memory": 4}))
    out = run.iterate(20.0)
    # memory from the callable, runtime by the numeric scale ceil(60 * 1.5).
    assert only(out, BindResources).requested == (("memory", 4), ("runtime", 90))


def test_list_scales_give_absolute_values_by_adjustment_number_then_stay_on_the_last() -> None:
    run = start(topology(task(1, resource_scales={"memory": [4, 8]})))
    run.settle(0.0)
    for at in (10.0, 20.0, 30.0):
        run.iterate(at, statuses={"A": [1]})  # the first, second and third adjustment
    # 2 -> 4 (list[0]) -> 8 (list[1]) -> 8 (list[min(2, 1)]): the last binding is reused.
    binds = of(run.commands, BindResources)
    assert [dict(c.requested)["memory"] for c in binds] == [2, 4, 8]
    ids = [100 + c.command_id for c in binds]  # what Run.default_answer binds them to
    assert [c.task_resources_id for c in of(run.commands, QueueBatch)] == [ids[0], ids[1], ids[2], ids[2]]


def test_fallback_queue_is_the_first_on_which_scaled_resources_are_valid() -> None:
    queues = [
        QueueSpec("small.q", 1, bounds={"memory": (1, 8)}),
        QueueSpec("medium.q", 2, bounds={"memory": (1, 10)}),
        QueueSpec("large.q", 3, bounds={"memory": (1, 64)}),
    ]
    spec = topology(
        task(1, resource_scales={"memory": 0.5}, fallback_queues=["medium.q", "large.q"]),
        task(2, resource_scales={"memory": 5.0}, fallback_queues=["medium.q"]),
        resource_sets=[ResourceSetSpec(1, "small.q", {"memory": 8})],
        queues=queues,
    )
    run = start(spec)
    run.settle(0.0)
    out = run.iterate(10.0, statuses={"A": [1, 2]})
    binds = {(b.queue, b.queue_id, b.requested) for b in of(out, BindResources)}
    assert binds == {
        ("large.q", 3, (("memory", 12),)),  # 12 is valid on neither small nor medium
        ("medium.q", 2, (("memory", 10),)),  # 48 is valid nowhere: last queue, coerced
    }


# --- protocol: unexpected answers, wrong answers, order of events --------------------------


def test_answer_to_an_unknown_command_id_is_noted() -> None:
    run = start(topology(task(1, status="R")))
    before = run.state
    out = run.feed(BatchQueued(999, 1.0, {"D": [1]}))
    assert anomalies(out) == ["unexpected_answer"]
    assert run.status(1) == "R"
    assert run.state.pending == before.pending


def test_answer_of_the_wrong_kind_is_a_protocol_violation() -> None:
    run = start(topology(task(1)))
    bind = only(run.awaiting(BindResources), BindResources)
    with pytest.raises(ProtocolViolation, match=f"answers command {bind.command_id}, which was a Bind"):
        decide(run.state, BatchQueued(bind.command_id, 0.5, {"Q": [1]}))


def test_events_before_the_start_and_a_second_start_are_protocol_violations() -> None:
    with pytest.raises(ProtocolViolation, match="TimerFired before RunStarted"):
        decide(initial_state(), TimerFired(1.0))
    run = start(topology(task(1)))
    with pytest.raises(ProtocolViolation, match="RunStarted after the run already started"):
        decide(run.state, RunStarted(1.0, WF, WFR, topology(task(1)), CFG, "B", T0))


def test_events_after_the_end_are_ignored() -> None:
    run = start(topology(task(1, status="R")))
    run.iterate(10.0, statuses={"D": [1]})
    run.answer(UpdateWorkflowRunStatus, at=10.0)
    assert is_terminal(run.state)
    end = run.state
    for event in (TimerFired(99.0), BatchQueued(1, 99.0, {}), StopRequested(99.0), DistributorDied(99.0)):
        assert decide(end, event).commands == ()
        assert decide(end, event).state is end


def test_wake_at_is_emitted_only_when_the_earliest_deadline_changes() -> None:
    run = Run()
    out = run.feed(RunStarted(0.0, WF, WFR, topology(task(1, status="R")), CFG, "B", T0))
    assert of(out, WakeAt) == [WakeAt(2, 10.0)]  # the first heartbeat
    out = run.answer(UpdateWorkflowRunStatus, at=0.5)
    assert of(out, WakeAt) == []  # the sync is due at 10.0 too: nothing new to ask
    out = run.feed(TimerFired(10.0))  # heartbeat and sync sent; nothing left to wake for
    assert of(out, WakeAt) == []
    out = run.answer(LogHeartbeat, at=10.5)
    assert [c.at for c in of(out, WakeAt)] == [20.5]  # replaces the WakeAt(10.0)


# --- ways a run ends -----------------------------------------------------------------------


def finish_abort(run: Run, out: list[Command], status: str, at: float) -> list[Command]:
    update = only(out, UpdateWorkflowRunStatus)
    assert update.status == status
    return run.feed(StatusUpdateAcknowledged(update.command_id, at, status))


def test_stop_requested_sets_stopped_then_fails() -> None:
    run = start(topology(task(1, status="R")))
    out = finish_abort(run, run.feed(StopRequested(3.0, "SIGINT")), "S", 3.1)
    fail = only(out, Fail)
    assert (fail.reason, fail.message, fail.summary.final_status) == ("stopped", "SIGINT", "S")


def test_timeout_is_checked_at_iteration_start_and_fails() -> None:
    config = SwarmConfig(heartbeat_interval=10.0, timeout=15.0)
    run = start(topology(task(1, status="R")), config)
    assert of(run.iterate(10.0), UpdateWorkflowRunStatus) == []
    out = finish_abort(run, run.iterate(20.0), "E", 20.0)
    assert only(out, Fail).reason == "timeout"


def test_distributor_death_is_seen_at_the_next_iteration_and_fails() -> None:
    run = start(topology(task(1, status="R")))
    assert run.feed(DistributorDied(2.0, "exit 1")) == []
    out = finish_abort(run, run.iterate(10.0), "E", 10.0)
    assert only(out, Fail).reason == "distributor_died"


def test_fail_after_n_executions_is_checked_after_the_sync() -> None:
    config = SwarmConfig(heartbeat_interval=10.0, fail_after_n_executions=1)
    run = start(topology(task(1, status="R"), task(2, status="R")), config)
    out = finish_abort(run, run.iterate(10.0, statuses={"D": [1]}), "E", 10.0)
    assert only(out, Fail).reason == "fail_after_n_executions"


def test_fail_fast_finishes_with_error_at_the_next_iteration() -> None:
    config = SwarmConfig(heartbeat_interval=10.0, fail_fast=True)
    run = start(topology(task(1, status="R"), task(2, status="R")), config)
    out = finish_abort(run, run.iterate(10.0, statuses={"F": [1]}), "E", 10.0)
    summary = only(out, Finish).summary
    assert summary.final_status == "E"
    assert summary.reason.startswith("fail_fast")


def test_refused_start_transition_finishes_with_transition_error() -> None:
    run = Run()
    out = run.feed(RunStarted(0.0, WF, WFR, topology(task(1)), CFG, "B", T0))
    update = only(out, UpdateWorkflowRunStatus)
    out = finish_abort(run, run.feed(StatusUpdateAcknowledged(update.command_id, 0.1, "B")), "E", 0.2)
    assert only(out, Finish).summary.reason.startswith("transition_error")


def test_failed_final_update_still_finishes_with_the_status_last_known() -> None:
    run = start(topology(task(1, status="R")))
    out = run.iterate(10.0, statuses={"D": [1]})
    update = only(out, UpdateWorkflowRunStatus)
    out = run.feed(StatusUpdateFailed(update.command_id, 10.1, "HTTP 500"))
    assert anomalies(out) == ["status_update_failed"]
    assert only(out, Finish).summary.final_status == "R"


def test_chunk_load_failure_while_attaching_fails_without_a_status_update() -> None:
    run, out = attach(SwarmConfig())
    out = run.feed(ChunkLoadFailed(only(out, LoadTaskChunk).command_id, 0.1, "HTTP 404"))
    assert of(out, UpdateWorkflowRunStatus) == []
    assert only(out, Fail).reason == "attach_failed"


def test_server_stop_status_ends_the_run_without_a_request() -> None:
    run = start(topology(task(1, status="R")))
    resume_signal(run, 10.0, "E")  # the reaper erred the run
    out = run.answer(*SYNC_TYPES, at=10.0)
    assert of(out, UpdateWorkflowRunStatus) == []
    assert only(out, Finish).summary.final_status == "E"


def test_pre_exit_full_sync_runs_before_giving_up() -> None:
    run = start(topology(task(1), task(2, up=[1])))
    run.settle(0.0)
    # Task 1 seen FATAL: nothing active or ready, not all final -> one immediate full sync.
    out = run.iterate(10.0, statuses={"F": [1]})
    assert [c.since for c in of(out, FetchTaskStatuses)] == [T0, None]
    assert of(out, UpdateWorkflowRunStatus) == []
    out = run.answer(*SYNC_TYPES, at=10.0)
    assert only(out, UpdateWorkflowRunStatus).status == "E"


# --- a stop is final, even while starting or attaching -----------------------------------


def test_stop_while_starting_is_not_undone_by_the_start_answer() -> None:
    run = Run()
    start_update = only(run.feed(RunStarted(0.0, WF, WFR, topology(task(1)), CFG, "B", T0)),
                        UpdateWorkflowRunStatus)
    stop = only(run.feed(StopRequested(0.5, "SIGINT")), UpdateWorkflowRunStatus)
    assert stop.status == "S"
    # The server accepted RUNNING before it saw STOPPED: nothing may be scheduled now.
    out = run.feed(StatusUpdateAcknowledged(start_update.command_id, 0.6, "R"))
    assert without_wake(out) == []
    assert run.state.phase == "finalizing"
    out = run.feed(StatusUpdateAcknowledged(stop.command_id, 0.7, "S"))
    assert only(out, Fail).reason == "stopped"
    assert of(run.commands, BindResources, QueueBatch) == []


def test_stop_while_attaching_is_not_undone_by_the_chunk_answers() -> None:
    run, out = attach(SwarmConfig(chunk_size=10, heartbeat_interval=10.0))
    run.feed(StopRequested(0.05, "SIGINT"))
    out = run.feed(TaskChunkLoaded(only(out, LoadTaskChunk).command_id, 0.1, [row(1)]))
    for edges in of(out, LoadEdgeChunk):
        run.feed(EdgeChunkLoaded(edges.command_id, 0.2, [EdgeRow(1, 11, ())]))
    assert [c.status for c in of(run.commands, UpdateWorkflowRunStatus)] == ["S"]
    assert run.state.phase == "finalizing"


# --- attaching to rows the core cannot use as given ------------------------------------------


def test_attach_tolerates_fallback_queues_it_was_not_told_about() -> None:
    run, out = attach(SwarmConfig(chunk_size=10, heartbeat_interval=10.0))
    with_fallback = TaskRow(
        task_id=1, array_id=1, status="G", max_attempts=3, resource_scales=(("memory", 0.5),),
        fallback_queues=("long.q",), requested_resources=(("memory", 2),), cluster_name="c",
        queue_name="all.q", array_limit=UNLIMITED,
    )
    out = run.feed(TaskChunkLoaded(only(out, LoadTaskChunk).command_id, 0.1, [with_fallback]))
    out = run.feed(EdgeChunkLoaded(only(out, LoadEdgeChunk).command_id, 0.2, [EdgeRow(1, 11, ())]))
    # The fallback queue is looked up on the rows' cluster, as Jobmon's builder does...
    lookup = only(out, LoadQueues)
    assert lookup.queues == (("c", "long.q"),)
    # ...and a queue the server does not know is simply unbounded.
    out = run.feed(QueuesLoaded(lookup.command_id, 0.3, []))
    assert only(out, UpdateWorkflowRunStatus).status == "R"


def test_attach_loads_queue_bounds_and_ids_it_was_not_told_about() -> None:
    run = Run()
    out = run.feed(AttachStarted(0.0, WF, WFR, dag_id=5, workflow_limit=100,
                                 config=SwarmConfig(chunk_size=10), run_status="R", server_time=T0))
    out = run.feed(TaskChunkLoaded(only(out, LoadTaskChunk).command_id, 0.1, [row(1)]))
    out = run.feed(EdgeChunkLoaded(only(out, LoadEdgeChunk).command_id, 0.2, [EdgeRow(1, 11, ())]))
    lookup = only(out, LoadQueues)
    assert lookup.queues == (("c", "all.q"),)
    queue = QueueSpec("all.q", queue_id=7, cluster_id=3, bounds=[("memory", 4, 8)])
    out = run.feed(QueuesLoaded(lookup.command_id, 0.3, [queue]))
    # Bound with the server's queue id, and memory 2 clamped up to the queue's minimum 4.
    bind = only(out, BindResources)
    assert (bind.queue, bind.queue_id, dict(bind.requested)) == ("all.q", 7, {"memory": 4})


def test_attach_fails_cleanly_on_a_task_row_it_cannot_use() -> None:
    run, out = attach(SwarmConfig(chunk_size=10, heartbeat_interval=10.0))
    out = run.feed(TaskChunkLoaded(only(out, LoadTaskChunk).command_id, 0.1, [row(1, status="Z")]))
    out = run.feed(EdgeChunkLoaded(only(out, LoadEdgeChunk).command_id, 0.2, [EdgeRow(1, 11, ())]))
    fail = only(out, Fail)
    assert fail.reason == "attach_failed"
    assert "unknown status 'Z'" in fail.message
    assert of(run.commands, UpdateWorkflowRunStatus) == []
