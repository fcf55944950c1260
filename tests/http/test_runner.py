"""The runner over real HTTP: attach-and-run against the loopback stub, with faults,
signals, re-attach, heartbeat pacing under a batch burst, and replay of the recorded log."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmfold.core.commands import Fail, Finish
from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import SyncPartFailed
from swarmfold.shell.cli import main as cli_main
from swarmfold.shell.cli.progress import Progress
from swarmfold.shell.http.attach_run import run_workflow_run
from swarmfold.shell.http.gateway import RetryPolicy
from swarmfold.shell.http.runner import RunOutcome, format_outcome
from swarmfold.shell.log.eventlog import read_log
from swarmfold.shell.log.replay import replay

from .conftest import FAST_RETRY
from .jobmon_stub import Fault, JobmonStub, layered_tasks

ROOT = Path(__file__).resolve().parents[2]
FAST = SwarmConfig(heartbeat_interval=0.1)


def run(stub: JobmonStub, tmp_path: Path, wfr: int = 1, name: str = "run.log", **kwargs: Any) -> RunOutcome:
    kwargs.setdefault("config", FAST)
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("progress", "off")
    kwargs.setdefault("install_signal_handlers", False)
    kwargs.setdefault("lock_dir", str(tmp_path))
    kwargs.setdefault("log_path", tmp_path / name)
    return run_workflow_run(stub.url, stub.workflow_id, wfr, route_prefix=stub.prefix, **kwargs)


def in_thread(fn: Callable[[], RunOutcome]) -> tuple[threading.Thread, list[RunOutcome]]:
    box: list[RunOutcome] = []
    thread = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    thread.start()
    return thread, box


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def assert_replays(path: Path | str) -> None:
    result = replay(str(path))
    assert result.ok, (result.divergence, result.error)
    assert result.records > 0


def assert_clean(stub: JobmonStub) -> None:
    """Nothing queued twice, never ahead of its upstreams, never over a limit."""
    assert stub.violations == []
    assert all(n == 1 for n in stub.queue_counts().values()), stub.queue_counts()


def log_events(path: Path | str) -> list[Any]:
    return [r.event for r in read_log(str(path), strict=True).records]


def log_commands(path: Path | str) -> list[Any]:
    return [c for r in read_log(str(path), strict=True).records for c in r.commands]


# --- happy paths ------------------------------------------------------------------------------------


def test_attach_and_run_to_done(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(200, layers=4, arrays=2)) as stub:
        outcome = run(stub, tmp_path)
        assert outcome.exit_code == 0, format_outcome(outcome)
        assert outcome.failed_reason is None and outcome.final_status == "D"
        s = outcome.summary
        assert s is not None and (s.total_tasks, s.done_count, s.failed_count) == (200, 200, 0)
        assert set(stub.statuses().values()) == {"D"}
        assert stub.runs[1] == "D"
        assert sorted(tid for _, tid in stub.queued) == list(range(1, 201))
        assert_clean(stub)
        # attach path: metadata, time, one heartbeat before the tasks, tasks, edges
        first = [r.path for r in stub.requests[:5]]
        assert first[:2] == ["/workflow/1/fetch_workflow_metadata", "/time"]
        assert stub.requests_to("update_status")[0].body == {"status": "R"}
        assert stub.requests_to("update_status")[-1].body == {"status": "D"}
        assert outcome.requests["GET /workflow/get_tasks/{id}"] == 1
        assert outcome.total_requests == len(stub.requests)
    header = read_log(str(tmp_path / "run.log")).header
    assert header.source == "run" and header.runner_id == outcome.runner_id
    assert header.extra["server"] == stub.url
    assert_replays(tmp_path / "run.log")


def test_chunks_page_by_the_numeric_maximum_id(tmp_path: Path) -> None:
    tasks = layered_tasks(40, layers=2, first_id=95)
    with JobmonStub(tasks) as stub:
        outcome = run(stub, tmp_path, config=SwarmConfig(heartbeat_interval=0.1, chunk_size=10))
        assert outcome.exit_code == 0, format_outcome(outcome)
        pages = [r.query["max_task_id"] for r in stub.requests_to("get_tasks")]
        assert pages == ["0", "104", "114", "124", "134"]
        edge_requests = stub.requests_to("get_downstream_tasks")
        assert [len(r.body["task_ids"]) for r in edge_requests] == [10, 10, 10, 10]
        assert_clean(stub)


def test_old_servers_quoted_downstream_ids_and_limits(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(60, layers=3), old_downstream_format=True, workflow_limit=7,
                    array_limits={1: 3}) as stub:
        outcome = run(stub, tmp_path)
        assert outcome.exit_code == 0, format_outcome(outcome)
        assert stub.max_active <= 7
        assert_clean(stub)


def test_a_partly_done_workflow_resumes_with_only_the_rest(tmp_path: Path) -> None:
    tasks = layered_tasks(30, layers=3)
    for t in tasks[:10]:
        t.status = "D"
    with JobmonStub(tasks) as stub:
        outcome = run(stub, tmp_path)
        assert outcome.exit_code == 0
        summary = outcome.summary
        assert summary is not None
        # Only the 20 not DONE are loaded and queued; the totals count the 10 done before.
        assert (summary.total_tasks, summary.done_count, summary.num_previously_complete) == (30, 30, 10)
        assert sorted(tid for _, tid in stub.queued) == list(range(11, 31))
        assert_clean(stub)


def test_python_api_export_and_cli_json(tmp_path: Path) -> None:
    from swarmfold.shell import run_workflow_run as exported

    assert exported is run_workflow_run
    with JobmonStub(layered_tasks(20)) as stub:
        out = io.StringIO()
        code = cli_main([
            "run", "--server", stub.url, "--workflow-id", "1", "--workflow-run-id", "1",
            "--heartbeat-interval", "0.1", "--json", "--progress", "off",
            "--log", str(tmp_path / "cli.log"),
        ], out=out)
        data = json.loads(out.getvalue())
        assert code == 0 and data["final_status"] == "D" and data["exit_code"] == 0
        assert data["summary"]["done_count"] == 20 and data["log_path"] == str(tmp_path / "cli.log")
        assert data["requests"]["POST /array/{id}/queue_task_batch"] >= 1
        out = io.StringIO()
        assert cli_main(["run", "--server", stub.url, "--workflow-id", "1", "--workflow-run-id", "1",
                         "--heartbeat-interval", "0"], out=out) == 2
    assert_replays(tmp_path / "cli.log")


# --- faults ---------------------------------------------------------------------------------------------


def test_a_5xx_burst_is_absorbed_by_retries(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(80, layers=4)) as stub:
        for pattern in ("queue_task_batch", "task_status_updates", "log_heartbeat", "get_tasks",
                        "bind_resources", "update_status", "get_array_max"):
            stub.inject(pattern, Fault.http(503), times=3)
        stub.inject("set_status_for_triaging", Fault.http(423), times=3)
        outcome = run(stub, tmp_path)
        assert outcome.exit_code == 0, format_outcome(outcome)
        assert sum(1 for r in stub.requests if r.status in (503, 423)) == 24
        assert_clean(stub)
    # Retries are invisible to the core: no request that went out needed a failure event. A
    # command still queued in a lane when the run ended is answered "not sent" by the runner.
    failures = [e for e in log_events(tmp_path / "run.log") if "Failed" in type(e).__name__]
    assert all(e.error == "not sent: the run has ended" for e in failures), failures
    assert_replays(tmp_path / "run.log")


def test_timeouts_are_retried_and_nothing_is_queued_twice(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(40, layers=2)) as stub:
        stub.inject("queue_task_batch", Fault.slow(0.6), times=2)
        stub.inject("task_status_updates", Fault.slow(0.6), times=1)
        outcome = run(stub, tmp_path, timeout=0.25)
        assert outcome.exit_code == 0, format_outcome(outcome)
        assert_clean(stub)  # the timed-out batch was applied once; its retry found the tasks Q


def test_connection_refused_then_recovery_mid_run(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(60, layers=3), completions_per_sync=5) as stub:
        retry = RetryPolicy(max_attempts=100, max_seconds=30, backoff_base=0.05, backoff_max=0.2)
        thread, box = in_thread(lambda: run(stub, tmp_path, retry=retry))
        wait_for(lambda: "D" in stub.statuses().values())
        stub.restart_after(1.0)
        thread.join(30)
        outcome = box[0]
        assert outcome.exit_code == 0, format_outcome(outcome)
        assert set(stub.statuses().values()) == {"D"}
        assert_clean(stub)
    assert_replays(tmp_path / "run.log")


def test_a_server_down_past_the_budget_becomes_failure_events_and_the_run_goes_on(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(30, layers=3), completions_per_sync=3) as stub:
        retry = RetryPolicy(max_attempts=2, max_seconds=5, backoff_base=0.01, backoff_max=0.02)
        thread, box = in_thread(lambda: run(stub, tmp_path, retry=retry))
        wait_for(lambda: "D" in stub.statuses().values())
        stub.restart_after(0.6)
        thread.join(30)
        outcome = box[0]
        assert outcome.exit_code == 0, format_outcome(outcome)
        assert outcome.anomalies > 0
        assert_clean(stub)
    failures = [e for e in log_events(tmp_path / "run.log") if "Failed" in type(e).__name__]
    # Commands still queued in a lane when the run ended are answered "not sent" by the
    # runner itself; every failure of a request that went out is the server being down.
    sent = [e for e in failures if not e.error.startswith("not sent: ")]
    assert sent and all("connection error" in e.error for e in sent)
    assert_replays(tmp_path / "run.log")


def test_malformed_json_mid_run_is_recorded_and_survived(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(30, layers=3)) as stub:
        stub.inject("task_status_updates", Fault.malformed("<html>502 Bad Gateway</html>"), times=2,
                    skip=1)  # the attach's full sync
        outcome = run(stub, tmp_path)
        assert outcome.exit_code == 0, format_outcome(outcome)
        assert outcome.anomalies >= 2
    bad = [e for e in log_events(tmp_path / "run.log") if isinstance(e, SyncPartFailed)]
    assert len(bad) == 2
    assert bad[0].error.startswith("POST /workflow/1/task_status_updates: HTTP 200: $: invalid JSON")
    assert_replays(tmp_path / "run.log")


def test_unknown_status_codes_are_noted_not_fatal(tmp_path: Path) -> None:
    def add_unknown(value: Any) -> Any:
        value["tasks_by_status"]["Z"] = [1, 2]
        return value

    with JobmonStub(layered_tasks(20, layers=2)) as stub:
        stub.inject("task_status_updates", Fault.transform(add_unknown), skip=1)  # not the attach's count
        stub.inject("log_heartbeat", Fault.body({"status": "?"}))
        outcome = run(stub, tmp_path)
        assert outcome.exit_code == 0, format_outcome(outcome)
    kinds = [c.kind for c in log_commands(tmp_path / "run.log") if type(c).__name__ == "NoteAnomaly"]
    assert "unknown_task_status" in kinds and "unknown_run_status" in kinds


def test_a_malformed_task_row_fails_the_attach_with_the_field_named(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(5)) as stub:
        stub.inject("get_tasks", Fault.body({"tasks": {"3": [1, "G", 3, "{'memory': <fn>}", "[]", "{}",
                                                              "c", "q", 1]}}))
        outcome = run(stub, tmp_path)
        assert outcome.exit_code == 1 and outcome.failed_reason == "attach_failed"
        assert 'GET /workflow/get_tasks/1: HTTP 200: $.tasks["3"][3]: resource_scales' in outcome.message
        assert stub.requests_to("update_status") == []  # nothing was started
        assert stub.queued == []


def test_an_unknown_workflow_is_bad_input(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(5), workflow_id=3) as stub:
        outcome = run_workflow_run(stub.url, 99, 1, progress="off", install_signal_handlers=False,
                                   lock_dir=str(tmp_path), retry=FAST_RETRY)
        assert outcome.exit_code == 2 and outcome.failed_reason == "not_found"
        assert "GET /api/v3/workflow/99/fetch_workflow_metadata" in outcome.message
        assert "knows no workflow 99" in outcome.message
        assert "not run: not_found" in format_outcome(outcome)


def test_a_bad_server_url_is_bad_input(tmp_path: Path) -> None:
    outcome = run_workflow_run("localhost:8000", 1, 1, progress="off", lock_dir=str(tmp_path))
    assert outcome.exit_code == 2 and outcome.failed_reason == "bad_input"
    assert "http:// or https://" in outcome.message


def test_an_unreachable_server_fails_the_bootstrap(tmp_path: Path) -> None:
    stub = JobmonStub(layered_tasks(5)).start()
    stub.stop()
    outcome = run(stub, tmp_path, retry=RetryPolicy(max_attempts=2, backoff_base=0.01))
    assert outcome.exit_code == 1 and outcome.failed_reason == "bootstrap_failed"
    assert "fetch_workflow_metadata: gave up after 2 attempt(s)" in outcome.message


# --- run status paths -------------------------------------------------------------------------------


def test_resume_signal_c_drains_and_ends_terminated(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(10, layers=1), hold=range(1, 11)) as stub:
        thread, box = in_thread(lambda: run(stub, tmp_path))
        wait_for(lambda: set(stub.statuses().values()) == {"R"})
        stub.set_run_status("C")
        thread.join(20)
        outcome = box[0]
        assert outcome.final_status == "T" and outcome.exit_code == 1, format_outcome(outcome)
        assert outcome.failed_reason is None
        assert stub.requests_to("terminate_task_instances")
        assert stub.runs[1] == "T"
        assert set(stub.statuses().values()) == {"F"}
    assert_replays(tmp_path / "run.log")


def test_fail_fast_and_failed_tasks(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(20, layers=2), fail={2}) as stub:
        outcome = run(stub, tmp_path, config=SwarmConfig(heartbeat_interval=0.1, fail_fast=True))
        assert outcome.final_status == "E" and outcome.exit_code == 1
        assert outcome.summary is not None and outcome.summary.reason.startswith("fail_fast")
    with JobmonStub(layered_tasks(20, layers=2), fail={2}) as stub:
        outcome = run(stub, tmp_path, name="nofast.log")
        assert outcome.final_status == "E" and outcome.exit_code == 1
        assert outcome.summary is not None and outcome.summary.failed_count == 1


def test_workflow_timeout_fails_the_run(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(4, layers=1), hold={1}) as stub:
        outcome = run(stub, tmp_path, config=SwarmConfig(heartbeat_interval=0.1, timeout=0.5))
        assert outcome.failed_reason == "timeout" and outcome.exit_code == 1
        assert stub.runs[1] == "E"


def test_distributor_death_fails_the_run(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with JobmonStub(layered_tasks(4, layers=1), hold={1}) as stub:
            thread, box = in_thread(lambda: run(stub, tmp_path, distributor_pid=proc.pid,
                                                distributor_check_interval=0.05))
            wait_for(lambda: bool(stub.queued))
            proc.kill()  # not reaped: a zombie counts as dead too
            thread.join(20)
            outcome = box[0]
            assert outcome.failed_reason == "distributor_died", format_outcome(outcome)
            assert stub.runs[1] == "E"
    finally:
        proc.kill()
        proc.wait()


def test_distributor_command_check(tmp_path: Path) -> None:
    flag = tmp_path / "alive"
    flag.write_text("")
    with JobmonStub(layered_tasks(4, layers=1), hold={1}) as stub:
        thread, box = in_thread(lambda: run(stub, tmp_path, distributor_command=f"test -e {flag}",
                                            distributor_check_interval=0.05))
        wait_for(lambda: bool(stub.queued))
        time.sleep(0.2)
        assert not box
        flag.unlink()
        thread.join(20)
        assert box[0].failed_reason == "distributor_died"
    died = [e for e in log_events(tmp_path / "run.log") if type(e).__name__ == "DistributorDied"]
    assert len(died) == 1 and "exited 1" in died[0].detail


def test_ticks_and_max_seconds_detach_without_touching_the_run(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(10, layers=2), hold={1}) as stub:
        outcome = run(stub, tmp_path, ticks=3)
        assert outcome.failed_reason == "ticks" and outcome.exit_code == 1 and outcome.events == 3
        assert outcome.summary is None
        assert len(read_log(str(tmp_path / "run.log")).records) == 3
        t0 = time.monotonic()
        outcome = run(stub, tmp_path, max_seconds=0.5, name="max.log")
        assert outcome.failed_reason == "max_seconds" and 0.5 <= time.monotonic() - t0 < 5
        assert stub.runs[1] == "R"
    assert_replays(tmp_path / "max.log")


def test_two_runners_cannot_drive_the_same_run(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(6, layers=1), hold={1}) as stub:
        thread, box = in_thread(lambda: run(stub, tmp_path))
        wait_for(lambda: bool(stub.queued))
        second = run(stub, tmp_path, name="second.log")
        assert second.exit_code == 2 and second.failed_reason == "locked"
        assert "already driven by runner" in second.message
        # Another run id (the server links no new run while run 1 is alive; the lock is
        # checked before any request): same log file, so the log's own lock refuses it.
        third = run(stub, tmp_path, wfr=2)
        assert third.exit_code == 2 and third.failed_reason == "locked"
        assert "event log is locked" in third.message
        stub.release({1})
        thread.join(20)
        assert box[0].exit_code == 0


# --- signals and re-attach -------------------------------------------------------------------------------


def test_sigterm_stops_the_run_then_reattach_loses_nothing_and_queues_nothing_twice(tmp_path: Path) -> None:
    tasks = layered_tasks(60, layers=3)
    held = {1, 2}
    with JobmonStub(tasks, hold=held) as stub:
        log1 = tmp_path / "first.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarmfold", "run", "--server", stub.url, "--workflow-id", "1",
             "--workflow-run-id", "1", "--log", str(log1), "--heartbeat-interval", "0.1",
             "--progress", "lines", "--retry-attempts", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(tmp_path),
        )
        try:
            wait_for(lambda: sum(1 for s in stub.statuses().values() if s == "D") >= 5, timeout=30)
            queued_before = stub.queue_counts()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 1, (out, err)
        assert b"STOPPED" in out and b"stopped" in out, out
        assert b"SIGTERM received" in err
        assert stub.runs[1] == "S"
        assert stub.requests_to("update_status")[-1].body == {"status": "S"}
        records = read_log(str(log1), strict=True).records
        last = records[-1].commands if records[-1].commands else records[-2].commands
        fails = [c for r in records for c in r.commands if isinstance(c, Fail)]
        assert len(fails) == 1 and fails[0].reason == "stopped", last
        assert_replays(log1)
        assert set(queued_before) <= set(stub.queue_counts())

        # Re-attach: a new workflow run of the same workflow (what a resume creates).
        stub.release(held)
        wfr2 = stub.new_run("O")  # a new run, its distributor started (B -> I -> O)
        outcome = run(stub, tmp_path, wfr=wfr2, name="second.log")
        assert outcome.exit_code == 0, format_outcome(outcome)
        assert set(stub.statuses().values()) == {"D"}
        assert_clean(stub)  # every task went to Q exactly once over both runs
        assert sorted(stub.queue_counts()) == list(range(1, 61))
        runs_of = {tid: wfr for wfr, tid in stub.queued}
        assert {runs_of[t] for t in queued_before} == {1}
    assert_replays(tmp_path / "second.log")


def test_request_stop_in_process_sets_stopped(tmp_path: Path) -> None:
    runners: list[Any] = []
    with JobmonStub(layered_tasks(6, layers=1), hold={1}) as stub:
        thread, box = in_thread(lambda: run(stub, tmp_path, on_runner=runners.append))
        wait_for(lambda: bool(stub.queued) and bool(runners))
        runners[0].request_stop(signal.SIGINT)
        thread.join(20)
        assert box[0].failed_reason == "stopped" and stub.runs[1] == "S"
        assert "SIGINT received" in box[0].message


def test_a_stop_during_a_batch_burst_sends_no_more_batches(tmp_path: Path) -> None:
    runners: list[Any] = []
    config = SwarmConfig(heartbeat_interval=0.1, max_batch_size=1)
    with JobmonStub(layered_tasks(300, layers=1, arrays=1), batch_delay=0.02) as stub:
        thread, box = in_thread(lambda: run(stub, tmp_path, config=config, max_concurrent_batches=1,
                                            on_runner=runners.append))
        wait_for(lambda: len(stub.queued) >= 5)
        runners[0].request_stop()
        thread.join(20)
        outcome = box[0]
        assert outcome.failed_reason == "stopped" and stub.runs[1] == "S"
        sent = len(stub.requests_to("queue_task_batch"))
        assert sent < 30, sent
        assert outcome.elapsed < 5
    unsent = [e for e in log_events(tmp_path / "run.log")
              if type(e).__name__ == "BatchQueueFailed" and "not sent: the run is stopping" in e.error]
    assert len(unsent) + sent == 300  # every batch is answered in the log, sent or not
    assert_replays(tmp_path / "run.log")


# --- heartbeats are never starved by batches ------------------------------------------------------------


def test_heartbeats_keep_their_report_by_under_thousands_of_slow_batches(tmp_path: Path) -> None:
    n = 1500
    config = SwarmConfig(heartbeat_interval=0.25, max_batch_size=1)
    report_by = config.heartbeat_interval * config.report_by_buffer
    with JobmonStub(layered_tasks(n, layers=1, arrays=1), batch_delay=0.004) as stub:
        outcome = run(stub, tmp_path, config=config, max_concurrent_batches=2)
        assert outcome.exit_code == 0, format_outcome(outcome)
        batches = stub.requests_to("queue_task_batch")
        assert len(batches) == n
        beats = [t for t, wfr, *_ in stub.heartbeats if wfr == 1]
        first, last = batches[0].t, batches[-1].t
        assert last - first > 4 * config.heartbeat_interval  # a real burst
        during = [t for t in beats if first <= t <= last]
        assert len(during) >= (last - first) / report_by
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        assert max(gaps) < report_by, (max(gaps), report_by)
        assert_clean(stub)


# --- progress ---------------------------------------------------------------------------------------------


def test_progress_lines_and_tty(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(30, layers=3), completions_per_sync=4) as stub:
        stream = io.StringIO()
        progress = Progress(stream, "lines", label="runner-x", interval=0.2)
        outcome = run(stub, tmp_path, progress=progress)
        assert outcome.exit_code == 0
        lines = stream.getvalue().splitlines()
        assert len(lines) >= 2
        assert lines[-1].startswith("[runner-x] D done 30/30 (100.0%)")
        assert "ETA 0s" in lines[-1] and "rate " in lines[-1]

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    p = Progress(tty, "auto")
    assert p.mode == "tty"
    assert Progress(io.StringIO(), "auto").mode == "lines"
    with JobmonStub(layered_tasks(10, layers=2)) as stub:
        assert run(stub, tmp_path, progress=p, name="tty.log").exit_code == 0
    text = tty.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and "active" in text and "ready" in text


def test_outcome_formats(tmp_path: Path) -> None:
    with JobmonStub(layered_tasks(8, layers=2)) as stub:
        outcome = run(stub, tmp_path)
    text = format_outcome(outcome, "wf 1: ")
    assert text.startswith("wf 1: DONE (D)") and f"runner    {outcome.runner_id}" in text
    data = outcome.to_dict()
    assert data["summary"]["final_status"] == "D" and data["failed_reason"] is None
    finishes = [c for c in log_commands(tmp_path / "run.log") if isinstance(c, Finish)]
    assert len(finishes) == 1


def test_measured_batch_durations_drive_adaptive_sizing(tmp_path: Path) -> None:
    config = SwarmConfig(heartbeat_interval=0.05, adaptive_batching=True, target_batch_seconds=0.01)
    with JobmonStub(layered_tasks(160, layers=1, arrays=1), workflow_limit=20, batch_delay=0.05) as stub:
        outcome = run(stub, tmp_path, config=config)
        assert outcome.exit_code == 0, format_outcome(outcome)
        sizes = [len(r.body["task_ids"]) for r in stub.requests_to("queue_task_batch")]
        assert sizes[0] == 20 and min(sizes) < 20, sizes
        assert_clean(stub)
    queued = [e for e in log_events(tmp_path / "run.log") if type(e).__name__ == "BatchQueued"]
    assert all(e.duration is not None and e.duration >= 0.05 for e in queued)
    result = replay(str(tmp_path / "run.log"))
    assert result.ok and result.state.batch_size < 500


def test_progress_counts_the_tasks_done_before_an_attached_run(tmp_path: Path) -> None:
    tasks = layered_tasks(30, layers=3)
    for t in tasks[:10]:
        t.status = "D"
    with JobmonStub(tasks) as stub:
        stream = io.StringIO()
        outcome = run(stub, tmp_path, progress=Progress(stream, "lines", label="r", interval=0.2))
        assert outcome.exit_code == 0
    # as the summary does: "30 total, 10 previously complete", not 20/20
    assert stream.getvalue().splitlines()[-1].startswith("[r] D done 30/30 (100.0%)")


def test_the_collector_is_paused_only_while_the_run_attaches(tmp_path: Path) -> None:
    """Loading the pages runs with the cyclic garbage collector paused; it resumes once the
    topology is built, and stays on after the run (and after a failed attach)."""
    import gc

    seen: list[tuple[bool, bool]] = []  # (topology built, collector on), per event

    class Watch(Progress):
        def update(self, state: Any, now: float, *, force: bool = False) -> None:
            seen.append((state.topology is not None, gc.isenabled()))

        def close(self, state: Any, now: float) -> None:
            pass

    assert gc.isenabled()
    with JobmonStub(layered_tasks(60, layers=3, arrays=2)) as stub:
        outcome = run(stub, tmp_path, progress=Watch(None, "off"),
                      config=SwarmConfig(heartbeat_interval=0.1, chunk_size=20))
    assert outcome.final_status == "D" and gc.isenabled()
    attaching = [on for built, on in seen if not built]
    running = [on for built, on in seen if built]
    assert len(attaching) >= 5 and not any(attaching)  # metadata, time, 3 task pages, edges...
    assert running and all(running)
    with JobmonStub(layered_tasks(10)) as stub:
        stub.inject("get_tasks", Fault.body({"tasks": {"1": [1, "G"]}}))
        failed = run(stub, tmp_path, name="failed.log")
    assert failed.final_status != "D" and gc.isenabled()
