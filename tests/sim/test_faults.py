"""Seeded fault injection: the drawn profiles, each kind of fault, the invariants across many
seeds, how runs end, and ``swarmfold simulate --faults [--seeds]``."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import attrs
import pytest

from swarmfold.core.commands import Finish, QueueBatch
from swarmfold.core.summary import RunSummary
from swarmfold.shell.sim.driver import SimResult, simulate
from swarmfold.shell.sim.faults import (
    ACTIVATION,
    FAULT_KINDS,
    draw_fault_profile,
    explain_end,
    kinds_on,
    parse_seeds,
    profile_summary,
    run_seed,
    run_seeds,
    with_drawn_faults,
)
from swarmfold.shell.sim.invariants import InvariantChecker
from swarmfold.shell.sim.report import render_json, render_text
from swarmfold.shell.sim.scenario import (
    FaultProfile,
    ScenarioError,
    dump_scenario,
    load_scenario,
    parse_scenario,
)

from .helpers import EXAMPLES, cli, run, scenario, tasks

# --- the drawn profiles ------------------------------------------------------------------------


def test_the_seed_draws_the_profile() -> None:
    a = draw_fault_profile(random.Random(1), horizon=300.0)
    assert a == draw_fault_profile(random.Random(1), horizon=300.0)
    profiles = {draw_fault_profile(random.Random(seed), horizon=300.0) for seed in range(50)}
    assert len(profiles) == 50


def test_each_kind_is_on_for_about_its_activation_share_of_seeds() -> None:
    n = 600
    counts = dict.fromkeys(FAULT_KINDS, 0)
    for seed in range(n):
        for kind in kinds_on(draw_fault_profile(random.Random(seed))):
            counts[kind] += 1
    for kind in FAULT_KINDS:
        assert 0.25 <= ACTIVATION[kind] <= 0.5
        assert abs(counts[kind] / n - ACTIVATION[kind]) < 0.08, (kind, counts[kind])


def test_times_scale_with_the_horizon() -> None:
    short = draw_fault_profile(random.Random(7), horizon=100.0)
    long = draw_fault_profile(random.Random(7), horizon=10_000.0)
    assert kinds_on(short) == kinds_on(long)
    if short.distributor_dies_at is not None:
        assert long.distributor_dies_at == pytest.approx(100 * short.distributor_dies_at, rel=1e-3)
    if short.limit_changes_per_hour:
        assert short.limit_changes_per_hour == pytest.approx(100 * long.limit_changes_per_hour, rel=1e-3)


def test_a_drawn_profile_is_a_valid_faults_object_and_round_trips() -> None:
    base = load_scenario(EXAMPLES / "three_array_pipeline.json")
    for seed in range(1, 40):
        s = with_drawn_faults(base, seed, horizon=300.0)
        again = parse_scenario(json.loads(dump_scenario(s)))  # validated on the way
        assert again.faults == s.faults


def test_fault_validation() -> None:
    data = scenario(tasks(1), faults={
        "timeout_rate": 0.5, "late_report_rate": 2.0, "resumes_per_hour": -1.0,
        "request_failure_rate": 0.4, "response_loss_rate": 0.4,
    })
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    errors = info.value.errors
    assert "$.faults.request_timeout: required when timeout_rate is above 0 (the client's timeout)" in errors
    assert "$.faults.late_report_rate: must be a probability in [0, 1], got 2.0" in errors
    assert "$.faults.resumes_per_hour: must be >= 0, got -1.0" in errors
    assert "$.faults: request_failure_rate + response_loss_rate + timeout_rate must be <= 1" in errors


def test_profile_summary_lists_only_what_is_on() -> None:
    assert profile_summary(FaultProfile()) == {}
    p = FaultProfile(timeout_rate=0.1, request_timeout=5.0, routes=("log_heartbeat",))
    assert profile_summary(p) == {"routes": ["log_heartbeat"], "timeout_rate": 0.1, "request_timeout": 5.0}


def test_parse_seeds() -> None:
    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("3") == [3]
    assert parse_seeds("1,5, 9-11,5") == [1, 5, 9, 10, 11]
    for bad in ("5-1", "a", "1-", ""):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_same_faults_byte_identical_log_and_report(tmp_path: Path) -> None:
    base = load_scenario(EXAMPLES / "three_array_pipeline.json")
    for seed in (3, 17, 86):
        logs = []
        reports = []
        for k in range(2):
            path = tmp_path / f"{seed}-{k}.jsonl"
            r = simulate(with_drawn_faults(base, seed), seed, log_path=path)
            logs.append(path.read_bytes())
            reports.append(render_json(r.report))
        assert logs[0] == logs[1] and reports[0] == reports[1]


def test_faults_off_change_nothing() -> None:
    # No fault knob on: the fault machinery draws nothing, so the run is the run without it.
    base = load_scenario(EXAMPLES / "three_array_pipeline.json")
    a = simulate(base).report
    b = simulate(attrs.evolve(base, faults=FaultProfile())).report
    assert render_json(a) == render_json(b)
    assert a.fault_profile == {} and a.injected == {} and a.end == "final"


# --- each kind ----------------------------------------------------------------------------------------


def test_a_timed_out_batch_is_carried_out_and_settled_by_the_next_sync() -> None:
    faults = {"timeout_rate": 1.0, "request_timeout": 7.0, "routes": ["queue_task_batch"]}
    data = scenario(tasks(3), faults=faults)
    r = run(data)
    assert r.report.injected == {"timeout": 1}
    assert r.report.anomalies == {"batch_queue_failed": 1}
    assert r.report.final_status == "D" and r.report.makespan == 20.0  # the work was done at t=0
    assert r.report.violations == {} and r.report.excused == {}


def test_late_status_answers_arrive_after_the_timeout_and_are_ignored() -> None:
    faults = {"late_report_rate": 1.0, "late_report_seconds": 30.0, "request_timeout": 5.0}
    data = scenario(tasks(3), faults=faults)
    r = run(data)
    assert r.report.final_status == "D"
    assert r.report.injected["late_report"] > 0 and r.report.injected["timeout"] > 0
    # Answers delivered after the swarm gave up on them: the core notes and ignores them.
    assert r.report.anomalies["unexpected_answer"] > 0
    assert r.report.violations == {}


def test_duplicated_status_answers_re_deliver_stale_entries() -> None:
    # Task 1 errors once: an answer reporting it G is re-delivered later, when it is running
    # again, so the swarm queues it once more. The server ignores that; the checker excuses it.
    data = scenario(
        [
            {"task_id": 1, "array_id": 1, "resource_set_id": 1,
             "attempts": [{"outcome": "error", "duration": 3.0}, {"outcome": "done", "duration": 40.0}]},
            {"task_id": 2, "array_id": 1, "resource_set_id": 1, "duration": 60.0},
        ],
        faults={"duplicate_report_rate": 1.0},
    )
    r = run(data, seed=0)
    assert r.report.injected["duplicate_report"] > 0 and r.report.injected["duplicate_entries"] > 0
    assert r.report.excused == {"double_queue": 2}
    assert r.report.violations == {} and r.report.final_status == "D"


def test_failed_heartbeats_let_the_reaper_stop_the_run_and_that_is_explained() -> None:
    faults = {"heartbeat_failure_rate": 1.0}
    data = scenario(tasks(2, duration=300.0), faults=faults, server={"reaper_poll_interval": 60.0})
    r = run(data)
    assert r.report.injected["heartbeat_failure"] > 0
    assert r.world_events == [(60.0, "reaped", "the reaper moved the run R -> E")]
    assert r.report.final_status == "E" and r.report.end == "stopped"
    assert r.report.end_detail.startswith("reaped: the reaper moved the run R -> E at t=60")
    assert r.report.violations == {}


def test_random_limit_changes_are_respected() -> None:
    data = scenario(
        tasks(20, duration=30.0), arrays=[{"array_id": 1, "name": "a", "limit": 5}],
        faults={"limit_changes_per_hour": 360.0},
    )
    r = run(data)
    changes = [e for e in r.world_events if e[1] == "limit_change"]
    assert len(changes) == r.report.injected["limit_change"] > 5
    assert {detail.split(" ->")[0] for _, _, detail in changes} == {"workflow limit", "array 1 limit"}
    assert r.report.violations == {} and r.report.final_status == "D"


def test_a_random_resume_signal_drains_the_run_and_that_is_explained() -> None:
    r = run(scenario(tasks(20, duration=300.0), faults={"resumes_per_hour": 60.0}), seed=1)
    assert r.report.injected["resume_signal"] >= 1
    assert r.report.final_status == "T" and r.report.end == "stopped"
    assert r.report.end_detail.startswith("resumed: ")
    assert r.report.violations == {}


def test_the_distributor_dying_is_explained() -> None:
    r = run(scenario(tasks(2, duration=100.0), faults={"distributor_dies_at": 12.0}))
    assert r.report.end == "stopped" and r.report.end_detail == "distributor died: at t=12"
    assert r.report.injected == {"distributor_death": 1}
    text = render_text(r.report)
    assert "  faults       distributor_dies_at 12" in text
    assert "  end          stopped: distributor died: at t=12" in text


# --- how runs end -------------------------------------------------------------------------------


def _summary(status: str, reason: str) -> RunSummary:
    return RunSummary(final_status=status, reason=reason, total_tasks=1, done_count=0, failed_count=0,
                      num_previously_complete=0, elapsed=1.0, tasks_by_status={})


def test_explain_end() -> None:
    s = load_scenario(EXAMPLES / "diamond.json")

    def end(status: str, reason: str, events: list[tuple[float, str, str]] = []) -> tuple[str, str]:  # noqa: B006
        return explain_end(Finish(1, _summary(status, reason)), s, events)

    assert end("D", "all tasks done") == ("final", "all tasks done")
    assert end("E", "2 task(s) failed") == ("final", "tasks failed: 2 task(s) failed")
    assert end("T", "drained after resume signal C")[0] == "unexplained"  # nobody sent one
    resumed = [(5.0, "resume", "cold resume signal (the run went C)")]
    assert end("T", "drained after resume signal C", resumed) == (
        "stopped", "resumed: cold resume signal (the run went C) at t=5"
    )
    assert end("E", "the server set the run to E")[0] == "unexplained"
    refused = [(0.0, "status_update_fault", "update_status R failed")]
    reason = "transition_error: could not move the run to RUNNING: request failed: boom"
    assert end("B", reason, refused)[0] == "stopped"


def test_an_unexplained_end_is_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    import swarmfold.shell.sim.driver as driver

    monkeypatch.setattr(driver, "explain_end", lambda *a: ("unexplained", "ended T: for no reason"))
    r = run(scenario(tasks(1)))
    assert r.report.violations == {"unexplained_end": 1}
    assert r.report.end == "unexplained"


# --- the checker under faults --------------------------------------------------------------------


def test_misinformed_tasks_excuse_only_themselves() -> None:
    r = run(scenario(tasks(3), workflow={"limit": 10}))
    server = r.server  # every task DONE
    checker = InvariantChecker(server, tracking=True)
    checker.misinformed.add(server.index_of[1])
    checker.batch_issued(QueueBatch(90, 1, (1,), 1, 1), 0.0)
    assert checker.counts == {} and checker.excused == {"double_queue": 1}
    checker.batch_issued(QueueBatch(91, 1, (2,), 1, 1), 0.0)
    assert checker.counts == {"double_queue": 1}
    assert "task 2 is queued while D" in checker.violations[0].detail


def test_a_batch_given_up_on_counts_only_while_on_its_way() -> None:
    r = run(scenario(tasks(3)))
    server = r.server
    checker = InvariantChecker(server, tracking=True)
    early, late = QueueBatch(90, 1, (1,), 1, 1), QueueBatch(91, 1, (2,), 1, 1)
    checker.batch_issued(early, 0.0)
    checker.batch_issued(late, 0.0)
    checker.batch_landed(early, [], 1.0, abandoned=True)  # served, then the client gives up
    checker.batch_abandoned(early)
    checker.batch_abandoned(late)  # gives up first: still on its way
    assert checker.abandoned == {server.index_of[2]: 1}
    checker.batch_landed(late, [], 2.0, abandoned=True)
    assert checker.abandoned == {} and checker.inflight == {} and checker.inflight_total == 0


def test_facts_delivered_mark_and_clear() -> None:
    r = run(scenario(tasks(2)))
    server = r.server
    checker = InvariantChecker(server, tracking=True)
    i1, i2 = server.index_of[1], server.index_of[2]
    checker.facts_delivered({"G": [1], "R": [2]}, exact=False, full=False)  # both DONE on the server
    assert checker.misinformed == {i1}  # a stale G misleads; a stale R is merely late
    checker.facts_delivered({"D": [1]}, exact=True, full=False)
    assert checker.misinformed == set()
    checker.misinformed.update({i1, i2})
    checker.facts_delivered({"D": [1, 2]}, exact=True, full=True)
    assert checker.misinformed == set()


# --- many seeds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "seeds"),
    [
        ("three_array_pipeline", 200), ("diamond", 150), ("cold_resume", 150),
        ("failures_and_resource_errors", 150),
    ],
)
def test_invariants_hold_across_many_seeds(name: str, seeds: int) -> None:
    s = load_scenario(EXAMPLES / f"{name}.json")
    results = run_seeds(s, list(range(1, seeds + 1)), faults=True, jobs=2)
    failing = [(r.seed, r.first_violation or r.end_detail) for r in results if r.failing]
    assert failing == []
    ends = {r.end for r in results}
    assert ends <= {"final", "stopped"}
    # The seeds explore: every kind of fault is on for some of them, and fires.
    assert {k for r in results for k in r.faults_on} == set(FAULT_KINDS)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "seeds"),
    [
        ("three_array_pipeline", 2000), ("diamond", 1000), ("cold_resume", 1000),
        ("failures_and_resource_errors", 1000),
    ],
)
def test_invariants_hold_across_many_more_seeds(name: str, seeds: int) -> None:
    s = load_scenario(EXAMPLES / f"{name}.json")
    results = run_seeds(s, list(range(1, seeds + 1)), faults=True)
    assert [r.seed for r in results if r.failing] == []


def test_failures_example_seed_86_loses_no_task() -> None:
    # Found by this fault injection: a stale duplicated G report reset a DONE upstream, and when
    # it was DONE again its ADJUSTING downstream was never re-queued; the pre-exit full sync that
    # would have healed it was lost, so the run ended ERROR with a runnable task never run.
    # Fixed in the core (ADJUSTING tasks wait for their upstreams and are re-queued with them).
    s = load_scenario(EXAMPLES / "failures_and_resource_errors.json")
    r = run_seed(s, 86, faults=True)
    assert not r.failing, r.first_violation
    assert r.excused == {"double_queue": 1}  # the reset task, queued again: the swarm was misinformed


def test_a_failing_seed_is_reproduced_by_its_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A core that queued a task twice, on seed 4 only (simulated through the checker).
    import swarmfold.shell.sim.driver as driver

    real = driver._Simulation._result

    def result(self: Any) -> SimResult:
        if self.seed == 4 and self.checker is not None:
            self.checker.violate(self.now, "double_queue", "task 1 is queued while R on the server")
        return real(self)

    monkeypatch.setattr(driver._Simulation, "_result", result)
    monkeypatch.chdir(tmp_path)
    path = str(EXAMPLES / "diamond.json")
    code, out = cli(["simulate", path, "--faults", "--seeds", "1-6", "--jobs", "1"])
    assert code == 1
    assert "  INVARIANTS   violated in 1/6 seed(s): double_queue 1" in out
    assert "  FAILING      1 seed(s): 4" in out
    command = f"swarmfold simulate {path} --faults --seed 4 --log seed-4.jsonl"
    assert f"      reproduce: {command}" in out
    assert "    seed 4: t=" in out and "double_queue: task 1 is queued while R on the server" in out
    assert "      first bad record: {" in out
    code, again = cli(command.split()[1:])
    assert code == 1 and "INVARIANTS   1 violation(s): double_queue 1" in again
    assert "  first bad record: {" in again
    assert (tmp_path / "seed-4.jsonl").exists()


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_seeds_summary() -> None:
    code, out = cli(["simulate", str(EXAMPLES / "three_array_pipeline.json"), "--faults", "--seeds", "1-40"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("three_array_pipeline: 40 seed(s) (1-40), faults drawn per seed (horizon ")
    assert lines[1].startswith("  runs         40: ")
    assert any(line.startswith("  final status DONE ") for line in lines)
    assert any(line.startswith("  faults on    ") for line in lines)
    assert "  invariants   ok in 40/40 seed(s)" in out and "  failing      none" in out


def test_cli_seeds_per_seed_and_json() -> None:
    path = str(EXAMPLES / "diamond.json")
    code, out = cli(["simulate", path, "--seeds", "1-3", "--per-seed", "--jobs", "1"])
    assert code == 0
    rows = [line for line in out.splitlines() if line.strip().split(" ")[0] in ("1", "2", "3")]
    assert len(rows) == 3 and all(" final " in row for row in rows)
    code, out = cli(["simulate", path, "--faults", "--seeds", "1-5", "--json"])
    data = json.loads(out)
    assert [s["seed"] for s in data["seeds"]] == [1, 2, 3, 4, 5]
    assert data["faults"] is True and data["summary"]["seeds"] == 5


def test_cli_single_run_with_faults() -> None:
    code, out = cli(["simulate", str(EXAMPLES / "three_array_pipeline.json"), "--faults", "--seed", "3"])
    assert code == 0
    assert out.startswith("three_array_pipeline (seed 3): ")
    assert "\n  faults       " in out and "\n  injected     " in out and "\n  end          " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "1-3", "--seed", "2"], "--seeds runs many seeds: it cannot be combined with --seed"),
        (["--seeds", "1-3", "--plot", "x.png"], "cannot be combined with --plot"),
        (["--per-seed"], "--per-seed, --jobs and --dask go with --seeds"),
        (["--seeds", "3-1"], "--seeds: range '3-1' goes backwards"),
        (["--seeds", "1-2", "--jobs", "0"], "--jobs: must be >= 1, got 0"),
    ],
)
def test_cli_bad_seed_options(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = cli(["simulate", str(EXAMPLES / "diamond.json"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_hung_request_never_answers_before_the_client_gives_up() -> None:
    """Found by the 10,000-seed soak: a hung status request (``timeout_rate``) that also drew a
    late report used to deliver its answer before the client gave up on it, while the checker
    took it for a stale answer the swarm ignores. A hung request's answer never comes back."""
    from swarmfold.shell.sim.driver import simulate
    from swarmfold.shell.sim.faults import with_drawn_faults
    from swarmfold.shell.sim.scenario import load_scenario

    examples = Path(__file__).resolve().parents[2] / "examples"
    scenario = load_scenario(examples / "failures_and_resource_errors.json")
    for seed in (5486, 7762, 8541):
        report = simulate(with_drawn_faults(scenario, seed), seed).report
        assert report.violations == {}, (seed, report.violations)
