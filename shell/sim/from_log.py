"""A simulation scenario from a recorded run: ``--from-log LOG`` and ``swarmfold scenario-from-log``.

The topology and the configuration are the log's own: ``RunStarted`` carries both; after
``AttachStarted`` the topology is rebuilt from the loaded task, edge and queue chunks exactly as
the core builds it (``core.attach.spec_from_rows``). Then every task's attempts are read off
the status reports the swarm received (``BatchQueued`` and ``TaskStatusesFetched`` answers),
with the times the swarm received them:

- an attempt **starts** when a report first shows the task queued or active (Q at queue time:
  the batch answer that queued it);
- it is **running** from the first report that shows it R;
- it **ends** at the first report that shows it D (``done``), G or E (``error``: retried),
  A (``resource_error``) or F (``fatal``; ``error`` if that was its last allowed attempt);
- its **duration** is end - running when R was seen, else end - queued (only coarse times
  are known: from the batch answer that queued it to the sync that reported its end);
- an attempt still open when the log ends is taken as ``done``, after as long as it had run;
  so is one that ends F after the swarm learned of a resume signal (it was killed).

Both ends are observed at sync times, so durations are accurate to about one heartbeat
interval. Tasks the log never saw run get their array's duration model: ``uniform(min,
max)`` of the array's observed durations (``fixed`` when they are all equal; 60 s when the
array has none). Limit changes the swarm fetched become ``limit_changes`` at the time it saw
them, and the first resume signal a heartbeat answer reported becomes a ``resumes`` entry. The
cluster is unlimited and the distributor polls every 10 s (the log does not say
more): edit the written file (``swarmfold scenario-from-log LOG -o FILE.json``) to change them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs
from attrs import define, field

from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import (
    ArrayLimitFetched,
    AttachStarted,
    BatchQueued,
    EdgeChunkLoaded,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    QueuesLoaded,
    RunStarted,
    TaskChunkLoaded,
    TaskStatusesFetched,
    TimerFired,
    WorkflowLimitFetched,
)
from swarmfold.core.statuses import ACTIVE
from swarmfold.core.topology import TopologySpec
from swarmfold.shell.sim.scenario import (
    ArrayModel,
    Attempt,
    DurationModel,
    LimitChange,
    ResumeSignal,
    Scenario,
    ScenarioError,
    TaskPlan,
    scenario_from_topology,
)

__all__ = ["LogScenario", "add_parser", "infer_from_log", "scenario_from_log"]

#: Report status -> the outcome of the attempt it ends.
_ENDS = {"D": "done", "G": "error", "E": "error", "A": "resource_error", "F": "fatal"}
#: The duration given to arrays whose tasks the log never saw finish.
FALLBACK_SECONDS = 60.0


@define
class _Open:
    queued_at: float
    running_at: float | None = None


@define
class LogScenario:
    """What a log says: the scenario, and how much of it was observed."""

    scenario: Scenario
    attempts: int = 0
    outcomes: dict[str, int] = field(factory=dict)
    still_running: int = 0
    killed: int = 0
    tasks_observed: int = 0
    limit_changes: int = 0
    resumed: bool = False


class _Attempts:
    """Per-task attempts, read off the status reports in log order."""

    def __init__(self, max_attempts: Mapping[int, int], t0: float) -> None:
        self.max_attempts = max_attempts
        self.t0 = t0
        self.status: dict[int, str] = {}
        self.open: dict[int, _Open] = {}
        self.done: dict[int, list[Attempt]] = {}
        #: Set once the swarm has heard of a resume signal: an F after that is a kill.
        self.resumed = False
        self.killed = 0

    def _close(self, task_id: int, at: float, outcome: str) -> None:
        attempt = self.open.pop(task_id)
        start = attempt.running_at if attempt.running_at is not None else attempt.queued_at
        attempts = self.done.setdefault(task_id, [])
        if outcome == "fatal" and len(attempts) + 1 >= self.max_attempts.get(task_id, 3):
            outcome = "error"  # the server fails a task on its last error too
        attempts.append(Attempt(outcome, round(max(0.0, at - start), 6)))

    def report(self, tasks_by_status: Mapping[str, Iterable[int]], at: float, queued: bool) -> None:
        t = at - self.t0
        for code, ids in tasks_by_status.items():
            for task_id in ids:
                if task_id not in self.max_attempts:
                    continue
                previous = self.status.get(task_id)
                self.status[task_id] = code
                attempt = self.open.get(task_id)
                if code in ACTIVE:
                    if attempt is not None and queued and code == "Q" and previous != "Q":
                        # Queued again although no end was seen: the last attempt errored.
                        self._close(task_id, t, "error")
                        attempt = None
                    if attempt is None:
                        attempt = self.open[task_id] = _Open(t)
                    if code == "R" and attempt.running_at is None:
                        attempt.running_at = t
                elif attempt is not None and code in _ENDS:
                    if code == "F" and self.resumed:
                        self.killed += 1
                        self._close(task_id, t, "done")
                    else:
                        self._close(task_id, t, _ENDS[code])

    def finish(self, end: float) -> int:
        """Close the attempts still open at the end of the log as done; return how many."""
        still = len(self.open)
        for task_id in list(self.open):
            self._close(task_id, end - self.t0, "done")
        return still


def _array_model(durations: list[float]) -> ArrayModel:
    if not durations:
        return ArrayModel(DurationModel("fixed", seconds=FALLBACK_SECONDS))
    low, high = min(durations), max(durations)
    if low == high:
        return ArrayModel(DurationModel("fixed", seconds=low))
    return ArrayModel(DurationModel("uniform", low=low, high=high))


def _rows_of(spec: TopologySpec) -> list[tuple[int, int, int, str]]:
    """``(task_id, array_id, max_attempts, status)`` for every task of a spec."""
    out: list[tuple[int, int, int, str]] = []
    table = spec.task_table
    if table is not None:
        statuses = table.statuses or "G" * len(table)
        for i in range(len(table)):
            out.append((
                table.task_ids[i], table.array_ids[i],
                table.max_attempts[i] if len(table.max_attempts) else 3, statuses[i],
            ))
    out.extend((t.task_id, t.array_id, t.max_attempts, t.status) for t in spec.tasks)
    return out


def _startable(spec: TopologySpec) -> tuple[TopologySpec, dict[int, TaskPlan]]:
    """The spec with every task REGISTERING, ADJUSTING or DONE (what a new run starts from).

    Tasks active when the log began run again; a task FATAL then fails again at once."""
    plans: dict[int, TaskPlan] = {}
    if spec.task_table is not None:
        table = spec.task_table
        if table.statuses and set(table.statuses) - set("GAD"):
            statuses = "".join(s if s in "GAD" else "G" for s in table.statuses)
            for tid, s in zip(table.task_ids, table.statuses, strict=True):
                if s == "F":
                    plans[tid] = TaskPlan(attempts=(Attempt("fatal", 0.0),))
            spec = attrs.evolve(spec, task_table=attrs.evolve(table, statuses=statuses))
    tasks = []
    for t in spec.tasks:
        if t.status not in ("G", "A", "D"):
            if t.status == "F":
                plans[t.task_id] = TaskPlan(attempts=(Attempt("fatal", 0.0),))
            t = attrs.evolve(t, status="G")
        tasks.append(t)
    return attrs.evolve(spec, tasks=tuple(tasks)), plans


#: Events that arrive while an attached run loads its pages: the attach ends at the first
#: other event (the run's status update, a failed chunk), and the topology is built then.
_DURING_ATTACH = (
    AttachStarted, TaskChunkLoaded, EdgeChunkLoaded, QueuesLoaded,
    HeartbeatAcknowledged, HeartbeatFailed, TimerFired,
)


def _attached_spec(
    attach: AttachStarted, task_chunks: list[Sequence[Any]], edge_chunks: list[Sequence[Any]],
    loaded_queues: list[Any],
) -> TopologySpec:
    """The topology an attached run loaded, one task per entry (the scenario is written for
    people)."""
    from swarmfold.core.attach import spec_from_rows
    from swarmfold.core.state import AttachProgress

    queues = tuple(attach.queues) + tuple(
        q for q in loaded_queues if q.name not in {a.name for a in attach.queues}
    )
    return spec_from_rows(AttachProgress(
        dag_id=attach.dag_id, workflow_limit=attach.workflow_limit, queues=queues,
        task_chunks=tuple(task_chunks), edge_chunks=tuple(edge_chunks),
    ), columnar=False)


def _start_tracker(spec: TopologySpec, t0: float, *, resumed: bool) -> _Attempts:
    """The attempt tracker of a run whose topology is ``spec``, its active tasks running
    since ``t0``; ``resumed``: a resume signal was heard already."""
    rows = _rows_of(spec)
    tracker = _Attempts({tid: m for tid, _, m, _ in rows}, t0)
    tracker.report(_active_at_start(rows), t0, queued=False)
    tracker.resumed = resumed
    return tracker


def infer_from_log(path: str | Path) -> LogScenario:
    """Read a log and build the scenario it records. Raises ``LogError`` or ``ScenarioError``."""
    from swarmfold.shell.log.eventlog import LogReader

    source = str(path)
    spec: TopologySpec | None = None
    config = SwarmConfig()
    ids = (1, 1)
    t0 = 0.0
    last = 0.0
    attach: AttachStarted | None = None
    task_chunks: list[Sequence[Any]] = []
    edge_chunks: list[Sequence[Any]] = []
    loaded_queues: list[Any] = []
    tracker: _Attempts | None = None
    changes: list[LimitChange] = []
    resumes: list[ResumeSignal] = []
    known_workflow_limit = 0
    known_array_limits: dict[int, int] = {}
    with LogReader(path) as reader:
        header = reader.header
        for record in reader:
            event = record.event
            last = max(last, event.at)
            if isinstance(event, RunStarted) and spec is None and attach is None:
                spec, config, t0 = event.topology, event.config, event.at
                ids = (event.workflow_id, event.workflow_run_id)
            elif isinstance(event, AttachStarted) and spec is None and attach is None:
                attach, config = event, event.config
                ids, t0 = (event.workflow_id, event.workflow_run_id), event.at
            elif isinstance(event, TaskChunkLoaded):
                task_chunks.append(event.tasks)
            elif isinstance(event, EdgeChunkLoaded):
                edge_chunks.append(event.edges)
            elif isinstance(event, QueuesLoaded):
                loaded_queues.extend(event.queues)
            if spec is None and attach is not None and task_chunks and not isinstance(event, _DURING_ATTACH):
                spec = _attached_spec(attach, task_chunks, edge_chunks, loaded_queues)
            if spec is not None and tracker is None:
                tracker = _start_tracker(spec, t0, resumed=bool(resumes))
                known_workflow_limit = spec.workflow_limit
                known_array_limits = {a.array_id: a.limit for a in spec.arrays}
            if isinstance(event, HeartbeatAcknowledged) and event.status in ("C", "H") and not resumes:
                # The first resume signal, heard while the pages load or while the run runs.
                mode = "cold" if event.status == "C" else "hot"
                resumes.append(ResumeSignal(at=round(event.at - t0, 6), mode=mode))
                if tracker is not None:
                    tracker.resumed = True
            if tracker is None:
                continue
            if isinstance(event, BatchQueued):
                tracker.report(event.tasks_by_status, event.at, queued=True)
            elif isinstance(event, TaskStatusesFetched):
                tracker.report(event.tasks_by_status, event.at, queued=False)
            elif isinstance(event, WorkflowLimitFetched):
                limit = event.limit
                if limit != known_workflow_limit:
                    known_workflow_limit = limit
                    changes.append(LimitChange(at=round(event.at - t0, 6), limit=limit))
            elif isinstance(event, ArrayLimitFetched):
                a, limit = event.array_id, event.limit
                if a in known_array_limits and limit != known_array_limits[a]:
                    known_array_limits[a] = limit
                    changes.append(LimitChange(at=round(event.at - t0, 6), limit=limit, array_id=a))
    if spec is None and attach is not None and task_chunks:  # the log ends while attaching
        spec = _attached_spec(attach, task_chunks, edge_chunks, loaded_queues)
        tracker = _start_tracker(spec, t0, resumed=bool(resumes))
    if spec is None or tracker is None:
        raise ScenarioError(
            ["the log has no RunStarted (or AttachStarted with loaded tasks): nothing to simulate"], source
        )
    still = tracker.finish(last)
    spec, plans = _startable(spec)
    array_of = {tid: a for tid, a, _, _ in _rows_of(spec)}
    durations: dict[int, list[float]] = {a.array_id: [] for a in spec.arrays}
    outcomes: dict[str, int] = {}
    for task_id, attempts in tracker.done.items():
        plans[task_id] = TaskPlan(attempts=tuple(attempts))
        for attempt in attempts:
            outcomes[attempt.outcome] = outcomes.get(attempt.outcome, 0) + 1
            if attempt.outcome == "done":
                durations[array_of[task_id]].append(attempt.duration)
    for task_id, attempts in tracker.done.items():  # arrays with no done attempt: any attempt
        a = array_of[task_id]
        if not durations[a]:
            durations[a].extend(x.duration for x in attempts if x.duration > 0)
    everything = [d for ds in durations.values() for d in ds]
    fallback = statistics.median(everything) if everything else FALLBACK_SECONDS
    models = {
        a: _array_model(ds) if ds else ArrayModel(DurationModel("fixed", seconds=fallback))
        for a, ds in durations.items()
    }
    name = Path(source).stem
    scenario = scenario_from_topology(
        spec,
        config=config,
        array_models=models,
        task_plans=plans,
        workflow_id=ids[0],
        workflow_run_id=ids[1],
        name=f"{name} (from log)",
        seed=int(header.extra.get("seed", 0)) if isinstance(header.extra.get("seed", 0), int) else 0,
        limit_changes=tuple(changes),
        resumes=tuple(resumes),
        source=source,
    )
    return LogScenario(
        scenario=scenario,
        attempts=sum(outcomes.values()),
        outcomes=dict(sorted(outcomes.items())),
        still_running=still,
        killed=tracker.killed,
        tasks_observed=len(tracker.done),
        limit_changes=len(changes),
        resumed=bool(resumes),
    )


def _active_at_start(rows: list[tuple[int, int, int, str]]) -> dict[str, list[int]]:
    """Tasks already queued or running when the log starts (an attach): attempts under way."""
    out: dict[str, list[int]] = {}
    for tid, _, _, s in rows:
        if s in ACTIVE:
            out.setdefault(s, []).append(tid)
    return out


def scenario_from_log(path: str | Path) -> Scenario:
    """The scenario a log records (see the module docstring)."""
    return infer_from_log(path).scenario


# --- swarmfold scenario-from-log ------------------------------------------------------------


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``scenario-from-log`` subparser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "scenario-from-log",
        help="write the simulation scenario a recorded run implies (topology, config, attempts)",
        description="Build a simulation scenario from an event log: the log's topology and "
        "configuration, and per task per attempt the outcome and duration inferred from the "
        "status reports (docs/cli-simulate.md). Exit 0: written; 2: unreadable log or output.",
    )
    p.add_argument("log", metavar="LOG", help="event log (JSONL)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.json", help="where to write the scenario")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace, out: TextIO) -> int:
    from swarmfold.shell.log.eventlog import LogError
    from swarmfold.shell.sim.scenario import dump_scenario

    prog = "swarmfold scenario-from-log"
    try:
        inferred = infer_from_log(args.log)
    except (LogError, ScenarioError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        Path(args.output).write_text(dump_scenario(inferred.scenario), encoding="utf-8")
    except OSError as exc:
        print(f"{prog}: error: {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(describe(inferred, args.output), file=out)
    return 0


def describe(inferred: LogScenario, target: str) -> str:
    s = inferred.scenario
    outcomes = ", ".join(f"{n} {k}" for k, n in inferred.outcomes.items()) or "none"
    text = (
        f"wrote {target}: {s.topology.task_count} tasks in {len(s.topology.arrays)} array(s);"
        f" {inferred.attempts} attempt(s) observed on {inferred.tasks_observed} task(s) ({outcomes})"
    )
    if inferred.still_running:
        text += f"; {inferred.still_running} still running at the end of the log (taken as done)"
    if inferred.killed:
        text += f"; {inferred.killed} killed after a resume signal (taken as done)"
    if inferred.limit_changes:
        text += f"; {inferred.limit_changes} limit change(s)"
    if inferred.resumed:
        text += "; a resume signal"
    return text
