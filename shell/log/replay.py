"""Replay: re-fold an event log through ``decide`` and check every decision.

``decide`` is pure, so folding the recorded events from ``initial_state()`` must give the
recorded commands again, record by record. ``replay`` stops at the first record where it
does not (a ``Divergence``: the recorded and replayed commands, and what the event changed
in the state) or where the log cannot be read (``error``: a ``LogError`` naming the line and
the field). Every record before either point has been checked.

``swarmfold replay LOG`` exits 0 when the decisions are the same, 1 on a divergence and 2 on
unreadable input. ``--until N`` stops after record N; ``--show-state`` prints a compact state
summary; ``--drift`` lists what every full sync found (see ``shell/log/drift.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import attrs
from attrs import frozen

from swarmfold.core.batching import queue_order
from swarmfold.core.commands import Command
from swarmfold.core.config import UNLIMITED
from swarmfold.core.decide import decide
from swarmfold.core.events import Event
from swarmfold.core.state import PendingSyncPart, SwarmState, initial_state
from swarmfold.core.statuses import RunStatus, TaskStatus
from swarmfold.shell.log.codec import to_json, unstructure
from swarmfold.shell.log.eventlog import EventLog, LogError, LogHeader, LogReader, LogRecord

__all__ = [
    "Divergence",
    "LogSource",
    "ReplayResult",
    "Step",
    "command_diff",
    "describe_event",
    "diff_states",
    "format_state",
    "main",
    "open_source",
    "replay",
    "state_summary",
]

EXIT_OK = 0
EXIT_DIVERGED = 1
EXIT_BAD_INPUT = 2

RUN_STATUS_NAMES = {v: k for k, v in vars(RunStatus).items() if not k.startswith("_")}
TASK_STATUS_NAMES = {v: k for k, v in vars(TaskStatus).items() if not k.startswith("_")}
TASK_STATUS_ORDER = "GQIORDEAF"

#: How many ready-queue head ids a summary shows.
HEAD = 10


# --- reading a log from a path or from memory ----------------------------------------------


class LogSource:
    """The records of a log, from an ``EventLog`` or streamed from a path.

    Iterate once. A bad line ends the iteration and is kept in ``error`` (never raised), so
    the caller keeps everything folded so far. Close it (or use ``with``) when streaming.
    """

    def __init__(self, log_or_path: EventLog | str | os.PathLike[str]) -> None:
        self.error: LogError | None = None
        self._reader: LogReader | None = None
        if isinstance(log_or_path, EventLog):
            self.path = log_or_path.path
            self.header: LogHeader = log_or_path.header
            self._log: EventLog | None = log_or_path
        else:
            self._reader = LogReader(log_or_path)  # LogError here: no header, nothing to fold
            self.path = self._reader.path
            self.header = self._reader.header
            self._log = None

    def __iter__(self) -> Iterator[LogRecord]:
        if self._log is not None:
            yield from self._log.records
            self.error = self._log.error
            return
        assert self._reader is not None
        try:
            yield from self._reader
        except LogError as exc:
            self.error = exc

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> LogSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(log_or_path: EventLog | str | os.PathLike[str]) -> LogSource:
    return LogSource(log_or_path)


# --- results ---------------------------------------------------------------------------------


@frozen
class Step:
    """One replayed record: the state before and after, and the commands ``decide`` gave."""

    record: LogRecord
    before: SwarmState
    after: SwarmState
    commands: tuple[Command, ...]


@frozen
class Divergence:
    """The first record whose replayed commands differ from the recorded ones.

    ``expected`` are the recorded commands, ``actual`` the replayed ones; ``state_diff``
    lists what folding the event changed in the state (``key: before -> after``);
    ``command_diff`` pins the first differing command and field. ``error`` is set when
    ``decide`` raised instead of answering (``actual`` is then empty).
    """

    seq: int
    line: int
    event: Event
    expected: tuple[Command, ...]
    actual: tuple[Command, ...]
    state_diff: list[str]
    command_diff: list[str] = attrs.field(factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "line": self.line,
            "event": unstructure(self.event),
            "expected": [unstructure(c) for c in self.expected],
            "actual": [unstructure(c) for c in self.actual],
            "command_diff": self.command_diff,
            "state_diff": self.state_diff,
            "error": self.error,
        }


@frozen
class ReplayResult:
    """``ok``: every record read agreed and the log was readable up to where replay stopped.

    ``records`` counts the records folded (the diverging one included); ``state`` is the
    state after the last of them; ``error`` is the unreadable line that ended the replay.
    """

    ok: bool
    records: int
    divergence: Divergence | None
    state: SwarmState
    error: LogError | None = None
    header: LogHeader | None = None
    path: str = ""
    commands: int = 0
    stopped_at: int | None = None

    def to_dict(self, *, show_state: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "ok": self.ok,
            "records": self.records,
            "commands": self.commands,
            "stopped_at": self.stopped_at,
            "divergence": None if self.divergence is None else self.divergence.to_dict(),
            "error": None if self.error is None else _error_dict(self.error),
        }
        if show_state:
            out["state"] = state_summary(self.state)
        return out


def _error_dict(error: LogError) -> dict[str, Any]:
    return {"path": error.path, "line": error.line, "field": error.field, "message": error.message}


# --- replay ----------------------------------------------------------------------------------


def replay(
    log_or_path: EventLog | str | os.PathLike[str],
    until: int | None = None,
    *,
    observe: Callable[[Step], None] | None = None,
) -> ReplayResult:
    """Fold the log's events from ``initial_state()`` and compare every decision.

    Stops after record ``until`` (if given), at the first divergence, or at the first
    unreadable line. ``observe`` sees every agreeing step (explain and drift use it).
    Raises ``LogError`` only when the header itself is unreadable.
    """
    state = initial_state()
    count = n_commands = 0
    with LogSource(log_or_path) as source:
        if until is not None and until <= 0:
            return ReplayResult(True, 0, None, state, None, source.header, source.path, 0, 0)
        for record in source:
            before = state
            try:
                decision = decide(before, record.event)
            except Exception as exc:  # the core refused the recorded event: that diverges too
                divergence = Divergence(
                    record.seq, record.line, record.event, record.commands, (),
                    state_diff=["(decide raised; the state is unchanged)"],
                    command_diff=[f"decide raised {type(exc).__name__}: {exc}"],
                    error=f"{type(exc).__name__}: {exc}",
                )
                return ReplayResult(
                    False, count + 1, divergence, before, None, source.header, source.path, n_commands
                )
            state = decision.state
            count += 1
            if decision.commands != record.commands:
                divergence = Divergence(
                    record.seq, record.line, record.event, record.commands, decision.commands,
                    state_diff=diff_states(before, state),
                    command_diff=command_diff(record.commands, decision.commands),
                )
                return ReplayResult(
                    False, count, divergence, state, None, source.header, source.path, n_commands
                )
            n_commands += len(record.commands)
            if observe is not None:
                observe(Step(record, before, state, decision.commands))
            if until is not None and record.seq >= until:
                return ReplayResult(
                    True, count, None, state, None, source.header, source.path, n_commands, until
                )
        error = source.error
        return ReplayResult(error is None, count, None, state, error, source.header, source.path, n_commands)


# --- state summary and diff --------------------------------------------------------------------


def _limit(value: int | None) -> str:
    if value is None:
        return "unknown"
    return "unlimited" if value >= UNLIMITED else str(value)


def state_summary(state: SwarmState, head: int = HEAD) -> dict[str, Any]:
    """A compact, JSON-ready picture of a state: phase, statuses, limits, queue head, timing.

    Costs one pass over the ready queue; never lists every task.
    """
    topo = state.topology
    counts = {s: state.count(s) for s in TASK_STATUS_ORDER}
    counts.update({s: n for s, n in sorted(state.status_counts.items()) if s not in counts})
    arrays: dict[str, Any] = {}
    ready_head: list[int] = []
    if topo is not None:
        order = queue_order(state.ready_groups, state.place)
        ready_head = [topo.task_ids[i] for i in order[:head]]
        ready_by_array = Counter(topo.array_of[i] for i in order)
        for array_id in sorted(set(topo.array_ids) | set(state.array_limits)):
            arrays[str(array_id)] = {
                "name": topo.array_names.get(array_id, ""),
                "active": state.active_by_array.get(array_id, 0),
                "in_flight": state.inflight_by_array.get(array_id, 0),
                "ready": ready_by_array.get(array_id, 0),
                "limit": state.array_limits.get(array_id),
            }
    pending: dict[str, list[int]] = {}
    for command_id, p in sorted(state.pending.items()):
        kind = type(p).__name__.removeprefix("Pending")
        if isinstance(p, PendingSyncPart):
            kind = f"SyncPart:{p.part}"
        pending.setdefault(kind, []).append(command_id)
    summary = state.summary
    return {
        "phase": state.phase,
        "run_status": state.run_status,
        "heartbeat_status": state.heartbeat_status,
        "tasks": state.total_tasks,
        "status_counts": counts,
        "workflow": {
            "active": state.active_count,
            "in_flight": state.inflight_total,
            "limit": state.workflow_limit,
        },
        "arrays": arrays,
        "ready": {"count": state.ready_count, "head": ready_head},
        "evaluating": state.evaluating_count,
        "pending": pending,
        "batch_size": state.batch_size,
        "next_command_id": state.next_command_id,
        "n_executions": state.n_executions,
        "anomalies": state.anomalies,
        "distributor_dead": state.distributor_dead,
        "timing": attrs.asdict(state.timing),
        "finished": None if summary is None else {
            "final_status": summary.final_status, "reason": summary.reason,
        },
    }


def format_state(state: SwarmState, head: int = HEAD) -> list[str]:
    """``state_summary`` as aligned text lines (``--show-state``)."""
    s = state_summary(state, head)
    lines = [
        f"phase        {s['phase']} (loop: {s['timing']['loop_phase']})",
        f"run status   {_run(s['run_status'])}; heartbeat status {_run(s['heartbeat_status'])}",
    ]
    nonzero = [f"{k} {n}" for k, n in s["status_counts"].items() if n]
    lines.append(f"tasks        {s['tasks']}" + (": " + ", ".join(nonzero) if nonzero else ""))
    wf = s["workflow"]
    lines.append(
        f"workflow     {wf['active']} active + {wf['in_flight']} in flight / limit {_limit(wf['limit'])}"
        + _full(wf["active"] + wf["in_flight"], wf["limit"])
    )
    for array_id, a in s["arrays"].items():
        name = f" ({a['name']})" if a["name"] else ""
        lines.append(
            f"array {array_id:<6} {a['active']} active + {a['in_flight']} in flight, {a['ready']} ready"
            f" / limit {_limit(a['limit'])}{name}" + _full(a["active"] + a["in_flight"], a["limit"])
        )
    ready = s["ready"]
    head_ids = ", ".join(str(t) for t in ready["head"])
    more = ", ..." if ready["count"] > len(ready["head"]) else ""
    lines.append(f"ready        {ready['count']}" + (f"; head: {head_ids}{more}" if head_ids else ""))
    lines.append(f"evaluating   {s['evaluating']}")
    pending = "; ".join(f"{kind} {ids}" for kind, ids in s["pending"].items()) or "none"
    lines.append(f"pending      {pending}")
    lines.append(
        f"counters     batch size {s['batch_size']}, next command id {s['next_command_id']}, "
        f"executions {s['n_executions']}, anomalies {s['anomalies']}"
        + (", distributor dead" if s["distributor_dead"] else "")
    )
    t = s["timing"]
    lines.append(
        "timing       " + ", ".join(
            f"{k}={_value(t[k])}" for k in (
                "started_at", "loop_started_at", "iteration_started_at", "sync_due_at",
                "next_heartbeat_at", "wake_at",
            )
        )
    )
    lines.append(
        "             " + ", ".join(
            f"{k}={_value(t[k])}" for k in (
                "heartbeat_in_flight", "batches_outstanding", "sync_parts_outstanding",
                "sync_is_full", "full_sync_accum", "last_sync",
            )
        )
    )
    if s["finished"] is not None:
        f = s["finished"]
        lines.append(f"finished     {_run(f['final_status'])}: {f['reason']}")
    return lines


def _run(status: str) -> str:
    name = RUN_STATUS_NAMES.get(status)
    return f"{status} ({name})" if name else status


def _full(used: int, limit: int | None) -> str:
    return "  (full)" if limit is not None and used >= limit else ""


def _value(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _flatten(data: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(data, dict) and data:
        for key, value in data.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = _value(data)


def diff_states(before: SwarmState, after: SwarmState) -> list[str]:
    """What changed between two states, as ``key: before -> after`` lines of their summaries."""
    a: dict[str, str] = {}
    b: dict[str, str] = {}
    _flatten(state_summary(before), "", a)
    _flatten(state_summary(after), "", b)
    lines = []
    for key in list(dict.fromkeys([*a, *b])):
        old, new = a.get(key, "(absent)"), b.get(key, "(absent)")
        if old != new:
            lines.append(f"{key}: {old} -> {new}")
    return lines or ["(no change)"]


# --- command diff ----------------------------------------------------------------------------

_SHORT = 160


def _short(value: Any, limit: int = _SHORT) -> str:
    text = value if isinstance(value, str) else _value(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text)} chars)"


def describe_event(event: Event) -> str:
    """``BatchQueued(command_id=4, at=0.2)``: the class, the answered command and the time."""
    command_id = getattr(event, "command_id", None)
    parts = [] if command_id is None else [f"command_id={command_id}"]
    parts.append(f"at={event.at:g}")
    return f"{type(event).__name__}({', '.join(parts)})"


def command_diff(expected: Sequence[Command], actual: Sequence[Command]) -> list[str]:
    """Where two command lists first differ, down to the field (and list index)."""
    lines: list[str] = []
    if len(expected) != len(actual):
        lines.append(f"recorded {len(expected)} command(s), replayed {len(actual)}")
    k = next(
        (i for i, (e, a) in enumerate(zip(expected, actual, strict=False)) if e != a),
        min(len(expected), len(actual)),
    )
    rec = expected[k] if k < len(expected) else None
    rep = actual[k] if k < len(actual) else None
    lines.append(f"first difference: command #{k + 1}")
    lines.append("  recorded: " + ("(none)" if rec is None else _short(to_json(rec))))
    lines.append("  replayed: " + ("(none)" if rep is None else _short(to_json(rep))))
    if rec is not None and rep is not None:
        if type(rec) is not type(rep):
            lines.append(f"  kind: recorded {type(rec).__name__}, replayed {type(rep).__name__}")
        else:
            for field in attrs.fields(type(rec)):
                x, y = getattr(rec, field.name), getattr(rep, field.name)
                if x != y:
                    lines.append(f"  {field.name}: " + _value_diff(unstructure(x), unstructure(y)))
    return lines


def _value_diff(x: Any, y: Any) -> str:
    text = f"recorded {_short(x, 80)}, replayed {_short(y, 80)}"
    if isinstance(x, list) and isinstance(y, list):
        i = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), None)
        if i is not None:
            text += f" (first difference at [{i}]: {_short(x[i], 40)} vs {_short(y[i], 40)})"
        elif len(x) != len(y):
            text += f" (lengths {len(x)} vs {len(y)})"
    return text


# --- the command line ------------------------------------------------------------------------


def main(args: argparse.Namespace, out: TextIO) -> int:
    """``swarmfold replay LOG [--until N] [--show-state] [--drift] [--json]``."""
    from swarmfold.shell.log import drift as drift_mod

    if args.until is not None and args.until < 0:
        print(f"swarmfold replay: error: --until must be >= 0, got {args.until}", file=sys.stderr)
        return EXIT_BAD_INPUT
    observer = drift_mod.DriftObserver() if args.drift else None
    try:
        result = replay(args.log, args.until, observe=observer)
    except LogError as exc:
        print(f"swarmfold replay: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    code = (
        EXIT_DIVERGED if result.divergence is not None
        else EXIT_BAD_INPUT if result.error is not None
        else EXIT_OK
    )
    if args.json:
        data = result.to_dict(show_state=args.show_state)
        if observer is not None:
            data["drift"] = [d.to_dict() for d in observer.report]
        print(json.dumps(data, sort_keys=True), file=out)
    else:
        for line in format_result(result):
            print(line, file=out)
        if args.until is not None and result.stopped_at is None and result.divergence is None:
            print(f"  (--until {args.until}: the log ends after record {result.records})", file=out)
        if args.show_state:
            at = f"after record {result.records}" if result.records else "before any record"
            print(f"state {at}:", file=out)
            for line in format_state(result.state):
                print("  " + line, file=out)
        if observer is not None:
            for line in drift_mod.format_report(observer.report):
                print(line, file=out)
    if result.error is not None and result.divergence is None:
        print(f"swarmfold replay: error: {result.error}", file=sys.stderr)
    return code


def format_result(result: ReplayResult) -> list[str]:
    """The verdict of a replay as text lines."""
    path = result.path
    d = result.divergence
    if d is not None:
        lines = [
            f"{path}: DIVERGED at record {d.seq} (line {d.line}): {describe_event(d.event)}",
            f"  {d.seq - 1} record(s) before it replay with the same decisions",
        ]
        lines += ["  " + line for line in d.command_diff]
        lines.append(f"  state change when replaying record {d.seq} (before -> after):")
        lines += ["    " + line for line in d.state_diff]
        return lines
    if result.error is not None:
        e = result.error
        return [
            f"{path}: UNREADABLE at line {e.line}: {e.field}: {e.message}",
            f"  the {result.records} record(s) before it replay with the same decisions "
            f"({result.commands} command(s))",
        ]
    if result.stopped_at is not None:
        return [
            f"{path}: OK up to record {result.stopped_at}: {result.records} record(s) replay with the "
            f"same decisions ({result.commands} command(s)); stopped by --until",
        ]
    return [
        f"{path}: OK: {result.records} record(s) replay with the same decisions "
        f"({result.commands} command(s))",
    ]
