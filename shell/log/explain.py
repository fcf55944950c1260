"""Explain: why a task is, or is not, running at some point of a recorded run.

``explain(log, task_id, at=N)`` replays the log up to record N (or to the end) and looks at
one task: its status and where it sits (ready queue, in flight, evaluating, nowhere); its
upstreams that are not DONE; for a ready task, the workflow and array limits with their
counts and which of them binds, and its place in the ready queue; its attempts (the
``QueueBatch`` commands that included it), its status history (every event that reported
its status) and its current resources.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

import attrs
from attrs import frozen

from swarmfold.core.batching import queue_order
from swarmfold.core.commands import QueueBatch
from swarmfold.core.config import UNLIMITED
from swarmfold.core.events import BatchQueued, RunStarted, TaskChunkLoaded, TaskStatusesFetched
from swarmfold.core.state import (
    DONE,
    EVALUATING,
    IN_FLIGHT,
    NOWHERE,
    RUNNING,
    PendingBatch,
    PendingEvaluation,
    SwarmState,
)
from swarmfold.core.statuses import ACTIVE
from swarmfold.shell.log.eventlog import EventLog, LogError
from swarmfold.shell.log.replay import (
    RUN_STATUS_NAMES,
    TASK_STATUS_NAMES,
    ReplayResult,
    Step,
    replay,
)

__all__ = ["ExplainError", "Explanation", "HistoryEntry", "Limit", "explain", "format_explanation", "main"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class ExplainError(Exception):
    """The task cannot be explained (unknown id, no topology yet)."""


@frozen
class HistoryEntry:
    """Record ``seq``'s event (``source``) reported ``status``; ``after`` is the task's status
    once the event was folded (it differs when the core ignored a stale report)."""

    seq: int
    status: str
    source: str
    after: str


@frozen
class Limit:
    """One concurrency limit as it stands: ``scope`` is ``workflow`` or ``array``."""

    scope: str
    array_id: int | None
    name: str
    active: int
    in_flight: int
    limit: int

    @property
    def used(self) -> int:
        return self.active + self.in_flight

    @property
    def free(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def binds(self) -> bool:
        return self.free == 0

    def describe(self) -> str:
        limit = "unlimited" if self.limit >= UNLIMITED else str(self.limit)
        what = "workflow" if self.scope == "workflow" else f"array {self.array_id}" + (
            f" ({self.name})" if self.name else ""
        )
        state = (
            "full: binds" if self.binds
            else "no limit" if self.limit >= UNLIMITED
            else f"{self.free} free"
        )
        return f"{what}: {self.active} active + {self.in_flight} in flight / limit {limit} ({state})"


@frozen
class Explanation:
    task_id: int
    index: int
    at: int
    line: int
    status: str
    place: str  # ready | in_flight | evaluating | nowhere
    why: str
    array_id: int
    array_name: str
    max_attempts: int
    num_upstreams: int
    upstreams_not_done: tuple[tuple[int, str], ...]
    limits: tuple[Limit, ...]
    queue_position: int | None
    queue_length: int
    ahead_in_array: int | None
    attempts: int
    attempt_records: tuple[tuple[int, int], ...]  # (seq, command_id) of each QueueBatch
    history: tuple[HistoryEntry, ...]
    resources_queue: str
    resources: dict[str, Any]
    phase: str
    run_status: str
    note: str | None = None

    @property
    def binding_limits(self) -> tuple[Limit, ...]:
        return tuple(limit for limit in self.limits if limit.binds)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["upstreams_not_done"] = [list(u) for u in self.upstreams_not_done]
        data["limits"] = [{**attrs.asdict(lim), "free": lim.free, "binds": lim.binds} for lim in self.limits]
        data["attempt_records"] = [list(a) for a in self.attempt_records]
        data["history"] = [attrs.asdict(h) for h in self.history]
        return data


class _Collector:
    """A ``replay`` observer: the task's reported statuses and its QueueBatch commands."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        self.history: list[HistoryEntry] = []
        self.attempts: list[tuple[int, int]] = []
        self.last_seq = 0
        self.last_line = 1

    def __call__(self, step: Step) -> None:
        task_id = self.task_id
        record = step.record
        self.last_seq, self.last_line = record.seq, record.line
        event = record.event
        reported: list[tuple[str, str]] = []
        if isinstance(event, RunStarted):
            topo = step.after.topology  # built from the spec (rows or a columnar table)
            i = None if topo is None else topo.index_of.get(task_id)
            if topo is not None and i is not None:
                reported.append((topo.initial_status[i], "RunStarted"))
        elif isinstance(event, TaskChunkLoaded):
            reported += [(row.status, "TaskChunkLoaded") for row in event.tasks if row.task_id == task_id]
        elif isinstance(event, BatchQueued | TaskStatusesFetched):
            name = type(event).__name__
            reported += [(s, name) for s, ids in event.tasks_by_status.items() if task_id in ids]
        if reported:
            after = _status_of(step.after, task_id)
            self.history += [HistoryEntry(record.seq, s, src, after) for s, src in reported]
        for command in record.commands:
            if isinstance(command, QueueBatch) and task_id in command.task_ids:
                self.attempts.append((record.seq, command.command_id))


def _status_of(state: SwarmState, task_id: int) -> str:
    topo = state.topology
    if topo is None:
        return "?"
    i = topo.index_of.get(task_id)
    return "?" if i is None else state.status[i]


def explain(
    log_or_path: EventLog | str | os.PathLike[str], task_id: int, at: int | None = None
) -> Explanation:
    """Why ``task_id`` is or is not running after record ``at`` (default: the last record).

    Raises ``LogError`` for an unreadable header and ``ExplainError`` for an unknown task.
    A divergence or an unreadable line before ``at`` ends the fold there; ``note`` says so.
    """
    collector = _Collector(task_id)
    result = replay(log_or_path, at, observe=collector)
    note = _note(result, at, collector.last_seq)
    state = result.state
    if result.divergence is not None:
        # The diverging record was folded too; explain the state the replay reached.
        collector.last_seq, collector.last_line = result.divergence.seq, result.divergence.line
    topo = state.topology
    if topo is None:
        raise ExplainError(f"{result.path}: no topology known after record {collector.last_seq}")
    index = topo.index_of.get(task_id)
    if index is None:
        ids = topo.task_ids
        span = f", ids {min(ids)}..{max(ids)}" if len(ids) else ""
        raise ExplainError(f"{result.path}: task {task_id} is not in the workflow ({len(ids)} tasks{span})")

    status = state.status[index]
    place_value = state.place[index]
    place = (
        "in_flight" if place_value == IN_FLIGHT
        else "evaluating" if place_value == EVALUATING
        else "nowhere" if place_value == NOWHERE
        else "ready"
    )
    array_id = topo.array_of[index]
    array_name = topo.array_names.get(array_id, "")
    upstreams = topo.upstreams_of(index)
    not_done = tuple(
        sorted((topo.task_ids[j], state.status[j]) for j in upstreams if state.status[j] != "D")
    )
    limits = (
        Limit("workflow", None, "", state.active_count, state.inflight_total, state.workflow_limit),
        Limit(
            "array", array_id, array_name,
            state.active_by_array.get(array_id, 0),
            state.inflight_by_array.get(array_id, 0),
            state.array_limits.get(array_id, 0),
        ),
    )
    position: int | None = None
    ahead: int | None = None
    order = queue_order(state.ready_groups, state.place) if place == "ready" else []
    if place == "ready" and index in order:
        k = order.index(index)
        position = k + 1
        ahead = sum(1 for j in order[:k] if topo.array_of[j] == array_id)
    resources = state.resources_of(index)
    explanation = Explanation(
        task_id=task_id,
        index=index,
        at=collector.last_seq,
        line=collector.last_line,
        status=status,
        place=place,
        why="",
        array_id=array_id,
        array_name=array_name,
        max_attempts=topo.max_attempts[index],
        num_upstreams=len(upstreams),
        upstreams_not_done=not_done,
        limits=limits,
        queue_position=position,
        queue_length=state.ready_count,
        ahead_in_array=ahead,
        attempts=len(collector.attempts),
        attempt_records=tuple(collector.attempts),
        history=tuple(collector.history),
        resources_queue=resources.queue,
        resources=dict(resources.requested),
        phase=state.phase,
        run_status=state.run_status,
        note=note,
    )
    return attrs.evolve(explanation, why=_why(explanation, state))


def _note(result: ReplayResult, at: int | None, last_seq: int) -> str | None:
    if result.divergence is not None:
        d = result.divergence
        return f"replay diverged at record {d.seq} (line {d.line}); explained as replayed up to there"
    if result.error is not None:
        return f"log unreadable at {result.error}; explained at record {last_seq}, the last readable one"
    if at is not None and result.stopped_at is None and at > last_seq:
        return f"the log has only {last_seq} record(s); explained at the last one"
    return None


def _why(e: Explanation, state: SwarmState) -> str:
    s = e.status
    name = TASK_STATUS_NAMES.get(s, s)
    if s == "D":
        return "it is DONE"
    if s == "F":
        return "it failed for good (ERROR_FATAL); it is not retried"
    if e.place == "in_flight":
        return f"it is in flight: {_in_flight(state, e.index)}"
    if e.place == "evaluating":
        ids = [
            cid for cid, p in state.pending.items()
            if isinstance(p, PendingEvaluation) and p.index == e.index
        ]
        return f"it waits for the shell to evaluate its resource callable (EvaluateResources {ids})"
    if s in ACTIVE:
        return (
            f"it is active on the server ({s}, {name}): it holds a workflow slot and an "
            f"array {e.array_id} slot"
        )
    if state.phase == DONE:
        final = state.summary.final_status if state.summary is not None else state.run_status
        return f"the run is over (final status {final}); nothing more is scheduled"
    if s == "G" and e.upstreams_not_done:
        ups = ", ".join(f"{t} ({st})" for t, st in e.upstreams_not_done[:10])
        more = ", ..." if len(e.upstreams_not_done) > 10 else ""
        return (
            f"not ready: {len(e.upstreams_not_done)} of its {e.num_upstreams} upstream(s) "
            f"are not DONE: {ups}{more}"
        )
    if e.place == "ready":
        where = f"position {e.queue_position} of {e.queue_length} in the ready queue"
        binding = e.binding_limits
        if binding:
            return f"ready ({where}), but the limit binds: " + "; ".join(lim.describe() for lim in binding)
        if state.phase != RUNNING:
            return f"ready ({where}); the run is not scheduling yet (phase {state.phase})"
        if state.run_status != "R":
            return (
                f"ready ({where}); scheduling waits for the run to be RUNNING "
                f"(run status {state.run_status})"
            )
        array_free = e.limits[1].free
        if e.ahead_in_array is not None and e.ahead_in_array >= array_free:
            return (
                f"ready ({where}); {e.ahead_in_array} task(s) of array {e.array_id} are ahead of it "
                f"and only {array_free} array slot(s) are free"
            )
        return f"ready ({where}); the next scheduling pass takes it (one per loop iteration)"
    if s == "E":
        return "ERROR_RECOVERABLE: it waits for the server to retry it (to A) or give up (to F)"
    if state.phase != RUNNING:
        return f"{name}: the run is not scheduling (phase {state.phase})"
    return f"{name}, not in the ready queue"


def _in_flight(state: SwarmState, index: int) -> str:
    for command_id, p in state.pending.items():
        if isinstance(p, PendingBatch) and index in p.indexes:
            return f"QueueBatch {command_id} was sent and awaits the server's answer"
    for resources, batches in state.resources.parked.items():
        if any(index in b.indexes for b in batches):
            return f"its batch is parked until BindResources for {resources.queue} is answered"
    return "in a batch awaiting an answer"


# --- text ------------------------------------------------------------------------------------


def _requested(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in values.items())


def format_explanation(e: Explanation, path: str = "") -> list[str]:
    where = f" of {path}" if path else ""
    lines = [f"task {e.task_id} after record {e.at}{where} (line {e.line})"]
    if e.note:
        lines.append(f"  note        {e.note}")
    name = TASK_STATUS_NAMES.get(e.status)
    lines.append(f"  status      {e.status}" + (f" ({name})" if name else "") + f"; place: {e.place}")
    lines.append(f"  why         {e.why}")
    run_name = RUN_STATUS_NAMES.get(e.run_status, "")
    run = f"{e.run_status} ({run_name})" if run_name else e.run_status
    lines.append(f"  run         phase {e.phase}, run status {run}")
    lines.append(f"  array       {e.array_id}" + (f" ({e.array_name})" if e.array_name else ""))
    if e.num_upstreams == 0:
        lines.append("  upstreams   none")
    elif not e.upstreams_not_done:
        lines.append(f"  upstreams   {e.num_upstreams}, all DONE")
    else:
        shown = ", ".join(f"{t} ({s})" for t, s in e.upstreams_not_done[:20])
        more = ", ..." if len(e.upstreams_not_done) > 20 else ""
        n = len(e.upstreams_not_done)
        lines.append(f"  upstreams   {n} of {e.num_upstreams} not DONE: {shown}{more}")
    if e.status in ("G", "A"):
        lines.append("  limits      " + e.limits[0].describe())
        lines.append("              " + e.limits[1].describe())
    if e.queue_position is not None:
        lines.append(
            f"  queue       position {e.queue_position} of {e.queue_length}; "
            f"{e.ahead_in_array} task(s) of array {e.array_id} ahead of it"
        )
    batches = ", ".join(f"record {seq} (command {cid})" for seq, cid in e.attempt_records[:10])
    lines.append(
        f"  attempts    {e.attempts} QueueBatch (max_attempts {e.max_attempts})"
        + (f": {batches}" if batches else "")
        + (", ..." if len(e.attempt_records) > 10 else "")
    )
    lines.append(f"  resources   {e.resources_queue}: {_requested(e.resources)}")
    if not e.history:
        lines.append("  history     (no event reported its status)")
    for k, h in enumerate(e.history):
        label = "  history     " if k == 0 else "              "
        ignored = f" (ignored; stays {h.after})" if h.after != h.status else ""
        lines.append(f"{label}record {h.seq}: {h.status} ({h.source}){ignored}")
    return lines


# --- the command line ------------------------------------------------------------------------


def main(args: argparse.Namespace, out: TextIO) -> int:
    """``swarmfold explain LOG --task ID [--at N] [--json]``."""
    if args.at is not None and args.at < 1:
        print(f"swarmfold explain: error: --at must be >= 1, got {args.at}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        e = explain(args.log, args.task, args.at)
    except (LogError, ExplainError) as exc:
        print(f"swarmfold explain: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(e.to_dict(), sort_keys=True), file=out)
    else:
        for line in format_explanation(e, args.log):
            print(line, file=out)
    return EXIT_OK
