"""The simulated Jobmon server: task, task-instance and workflow-run rules (spec §1.5, §5.4, §7, §8)."""

from __future__ import annotations

import pytest

from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec, build_topology
from swarmfold.shell.server.model import ServerModel, parse_server_time, server_time


def make_server(n: int = 3, *, max_attempts: int = 2, chain: bool = False, **kwargs: object) -> ServerModel:
    """Tasks 1..n in array 1 (task k+1 depends on task k when ``chain``)."""
    spec = TopologySpec(
        tasks=[
            TaskSpec(k, 1, 1, upstream_ids=(k - 1,) if chain and k > 1 else (), max_attempts=max_attempts)
            for k in range(1, n + 1)
        ],
        arrays=[ArraySpec(1, "a", limit=5)],
        resource_sets=[ResourceSetSpec(1, "q", {"memory": 2})],
        workflow_limit=7,
    )
    return ServerModel(build_topology(spec), **kwargs)  # type: ignore[arg-type]


def queue(server: ServerModel, ids: list[int], now: float) -> dict[str, list[int]]:
    answer, _ = server.queue_task_batch(ids, 1, now)
    return answer


def run_to(server: ServerModel, now: float) -> list[int]:
    """Instantiate, launch and start every queued instance at ``now``."""
    launched = server.instantiate_and_launch(now)
    for ti in launched:
        assert server.log_running(ti, now)
    return launched


def test_server_time_has_one_second_resolution() -> None:
    assert server_time(0.0) == "2026-01-01 00:00:00"
    assert server_time(61.99) == "2026-01-01 00:01:01"
    assert parse_server_time(server_time(3725.5)) == 3725


def test_queue_task_batch_moves_g_to_q_and_answers_every_requested_id() -> None:
    s = make_server()
    assert queue(s, [1, 2], 1.0) == {"Q": [1, 2]}
    assert list(s.num_attempts[:2]) == [1, 1]
    assert s.active_total == 2 and s.active_by_array[1] == 2
    # Already queued tasks come back with their current status; unknown ids are left out.
    assert queue(s, [2, 3, 99], 2.0) == {"Q": [2, 3]}
    assert list(s.num_attempts) == [1, 1, 1]
    assert len(s.ti_status) == 3  # no second instance for task 2


def test_incremental_sync_reports_changes_at_or_after_last_sync_twice() -> None:
    s = make_server()
    first, t0 = s.task_status_updates(None, 0.5)
    assert first == {"G": [1, 2, 3]} and t0 == "2026-01-01 00:00:00"
    queue(s, [1], 5.2)
    answer, t1 = s.task_status_updates(t0, 5.7)
    assert answer == {"Q": [1]} and t1 == "2026-01-01 00:00:05"
    # The same change is reported again: its status_date (second 5) is >= last_sync (5).
    again, t2 = s.task_status_updates(t1, 6.1)
    assert again == {"Q": [1]} and t2 == "2026-01-01 00:00:06"
    quiet, _ = s.task_status_updates(t2, 7.0)
    assert quiet == {}


def test_sync_reports_the_current_status_once_per_task() -> None:
    s = make_server()
    queue(s, [1, 2], 3.0)
    run_to(s, 4.0)
    s.log_done(0, 4.5)
    answer, _ = s.task_status_updates("2026-01-01 00:00:03", 4.9)
    assert answer == {"D": [1], "R": [2]}


def test_full_sync_lists_every_task_by_status() -> None:
    s = make_server()
    queue(s, [2], 1.0)
    answer, _ = s.task_status_updates(None, 2.0)
    assert answer == {"G": [1, 3], "Q": [2]}


def test_full_sync_with_sparse_task_ids() -> None:
    spec = TopologySpec(
        tasks=[TaskSpec(10, 1, 1), TaskSpec(30, 1, 1), TaskSpec(20, 1, 1)],
        arrays=[ArraySpec(1)],
        resource_sets=[ResourceSetSpec(1, "q", {})],
    )
    s = ServerModel(build_topology(spec))
    s.queue_task_batch([30], 1, 0.0)
    assert s.task_status_updates(None, 1.0)[0] == {"G": [10, 20], "Q": [30]}
    assert s.indexes_of([20, 99, 10]) == [2, 0]


def test_instance_lifecycle_to_done_and_dependency_counters() -> None:
    s = make_server(chain=True)
    assert list(s.up_left) == [0, 1, 1]
    queue(s, [1], 0.0)
    (ti,) = s.instantiate_and_launch(10.0)
    assert s.status[0] == "O" and s.ti_status[ti] == "O"
    assert s.log_running(ti, 11.0) and s.status[0] == "R"
    s.log_done(ti, 20.0)
    assert s.status[0] == "D" and s.ti_status[ti] == "D"
    assert s.active_total == 0
    assert list(s.up_left) == [0, 0, 1]


@pytest.mark.parametrize(
    ("ti_error", "attempts_before", "expected"),
    [
        ("E", 0, "G"),  # attempts left: back to REGISTERING
        ("Z", 0, "A"),  # resource error with attempts left: ADJUSTING_RESOURCES
        ("E", 1, "F"),  # attempts exhausted (max_attempts 2): ERROR_FATAL
        ("Z", 1, "F"),
        ("F", 0, "F"),  # a fatal instance error: FATAL regardless of attempts
        ("U", 0, "G"),
    ],
)
def test_instance_errors_decide_f_a_or_g(ti_error: str, attempts_before: int, expected: str) -> None:
    s = make_server(max_attempts=2)
    for k in range(attempts_before):
        queue(s, [1], float(k))
        (ti,) = run_to(s, float(k))
        s.log_error(ti, "E", float(k) + 0.5)
        assert s.status[0] == "G"
    queue(s, [1], 10.0)
    (ti,) = run_to(s, 10.0)
    s.log_error(ti, ti_error, 11.0)
    assert s.status[0] == expected
    assert s.num_attempts[0] == attempts_before + 1
    assert s.active_total == 0


def test_error_on_a_task_already_final_only_fails_the_instance() -> None:
    s = make_server()
    queue(s, [1], 0.0)
    (ti,) = run_to(s, 0.0)
    s.log_done(ti, 1.0)
    s.ti_status[ti] = "R"  # a stray instance still believes it runs
    s.log_error(ti, "E", 2.0)
    assert s.status[0] == "D" and s.ti_status[ti] == "F"


def test_cold_terminate_kills_launched_and_running_but_leaves_task_status_of_queued() -> None:
    s = make_server(run_status="R")
    queue(s, [1, 2], 0.0)
    launched = s.instantiate_and_launch(1.0)  # tasks 1, 2: O
    assert s.log_running(launched[0], 2.0)  # task 1: R
    queue(s, [3], 3.0)  # task 3: Q, its instance never instantiated
    assert s.set_resume(reset_running_jobs=True) and s.run_status == "C"
    assert s.terminate_task_instances(4.0) == 3
    assert [s.ti_status[ti] for ti in range(3)] == ["K", "K", "F"]
    assert s.status == ["R", "O", "Q"]  # terminate never touches task statuses (quirk Q10)
    killed = s.transition_to_killed(5.0)
    assert killed == [0, 1]
    assert s.status == ["F", "F", "Q"]
    assert s.instantiate_and_launch(6.0) == []  # the F instance is never launched


def test_hot_terminate_leaves_running_instances_alone() -> None:
    s = make_server(run_status="R")
    queue(s, [1, 2], 0.0)
    launched = s.instantiate_and_launch(1.0)
    s.log_running(launched[0], 2.0)
    assert s.set_resume(reset_running_jobs=False) and s.run_status == "H"
    assert s.terminate_task_instances(3.0) == 1
    assert [s.ti_status[ti] for ti in launched] == ["R", "K"]
    s.transition_to_killed(4.0)
    s.log_done(launched[0], 5.0)
    assert s.status[:2] == ["D", "F"]


def test_an_instance_ordered_to_die_that_finishes_first_is_done() -> None:
    s = make_server(run_status="R")
    queue(s, [1], 0.0)
    (ti,) = run_to(s, 1.0)
    s.set_resume(True)
    s.terminate_task_instances(2.0)
    s.log_done(ti, 3.0)  # K -> D is legal
    assert s.status[0] == "D" and s.ti_status[ti] == "D"
    assert s.transition_to_killed(4.0) == []


def test_workflow_run_fsm_and_heartbeat_date() -> None:
    s = make_server(heartbeat_increment=31.0)
    assert s.run_status == "O" and s.heartbeat_date == 31.0
    assert s.update_status("D", 1.0) == "O"  # O -> D is illegal: the held status is answered
    assert s.update_status("R", 1.0) == "R"
    assert s.log_heartbeat("R", 31.0, 10.0) == "R"  # untimely R -> R still extends
    assert s.heartbeat_date == 41.0
    assert s.set_resume(reset_running_jobs=True) and s.run_status == "C"
    assert s.log_heartbeat("R", 31.0, 20.0) == "C"  # the swarm learns of the resume
    assert s.log_heartbeat("C", 31.0, 30.0) == "C"  # C -> C is illegal: no extension (Q11)
    assert s.heartbeat_date == 41.0
    assert s.update_status("T", 35.0) == "T"


def test_set_resume_needs_an_active_run() -> None:
    s = make_server(run_status="O")
    assert not s.set_resume(True) and s.run_status == "O"


def test_reaper_errors_a_silent_running_run() -> None:
    s = make_server(run_status="R", heartbeat_increment=93.0)
    assert not s.reap(90.0) and s.run_status == "R"
    assert s.reap(93.0) and s.run_status == "E"


def test_reaper_terminates_a_resumed_run_once_no_kill_self_instance_remains() -> None:
    s = make_server(run_status="R", heartbeat_increment=10.0)
    queue(s, [1], 0.0)
    run_to(s, 1.0)
    s.set_resume(True)
    assert not s.reap(20.0)  # the running instance became K: wait for the kill
    assert s.run_status == "C" and s.ti_status[0] == "K"
    s.transition_to_killed(25.0)
    assert s.reap(30.0) and s.run_status == "T"


def test_lost_worker_is_triaged_then_resolved_as_an_error() -> None:
    s = make_server(max_attempts=3, ti_report_increment=279.0)
    queue(s, [1], 0.0)
    (ti,) = run_to(s, 1.0)
    s.worker_lost(ti, 50.0)
    s.set_status_for_triaging(300.0)
    assert s.ti_status[ti] == "R"  # report-by (329) not passed yet
    s.set_status_for_triaging(329.0)
    assert s.ti_status[ti] == "T"
    s.resolve_triaged(330.0)
    assert s.ti_status[ti] == "U" and s.status[0] == "G"


def test_limits_live_on_the_server() -> None:
    s = make_server()
    assert s.get_max_concurrently_running() == 7
    assert s.get_array_max_concurrently_running(1) == 5
    s.set_workflow_limit(3)
    s.set_array_limit(1, 2)
    assert s.get_max_concurrently_running() == 3
    assert s.get_array_max_concurrently_running(1) == 2


def test_active_time_integrals_and_peaks() -> None:
    s = make_server()
    queue(s, [1, 2], 0.0)  # 2 active from 0
    (a, b) = run_to(s, 0.0)
    s.log_done(a, 10.0)  # 1 active from 10
    s.log_done(b, 30.0)  # 0 from 30
    s.close(40.0)
    assert s.peak_total == 2 and s.peak_by_array[1] == 2
    assert s.area_total == pytest.approx(10 * 2 + 20 * 1)
