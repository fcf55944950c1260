"""Drift found by a full sync, in the terms of co3's ``Syncer``.

A full sync (``FetchTaskStatuses(since=None)``) returns the status of every task the server
holds for the workflow. Compared with what the swarm believed just before the answer, as
co3's ``Syncer`` compares a left and a right resource, every task falls in one of three sets:

- ``differed`` (co3's ``lr_int`` with unequal values): known on both sides, with a local
  status different from the server's, as ``(task_id, local, server)``;
- ``local_only`` (co3's ``l_excl``): in the local topology, missing from the server's answer;
- ``server_only`` (co3's ``r_excl``): in the server's answer, unknown locally.

Most ``differed`` entries of a healthy run are plain progress the incremental syncs had not
shown yet (``R -> D``); a task stuck differing sync after sync, or any ``local_only`` or
``server_only`` task, is worth a look.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
from attrs import frozen

from swarmfold.core.commands import FetchTaskStatuses
from swarmfold.core.events import TaskStatusesFetched
from swarmfold.core.state import SwarmState
from swarmfold.shell.log.eventlog import EventLog

__all__ = [
    "Drift",
    "DriftObserver",
    "SyncDrift",
    "drift_report",
    "format_report",
    "full_sync_drift",
]


@frozen
class Drift:
    """Local versus server statuses at one full sync; every list is sorted by task id."""

    differed: list[tuple[int, str, str]] = attrs.field(factory=list)
    local_only: list[int] = attrs.field(factory=list)
    server_only: list[int] = attrs.field(factory=list)

    @property
    def clean(self) -> bool:
        return not (self.differed or self.local_only or self.server_only)

    def to_dict(self) -> dict[str, Any]:
        return {
            "differed": [list(d) for d in self.differed],
            "local_only": list(self.local_only),
            "server_only": list(self.server_only),
        }


def full_sync_drift(state_before: SwarmState, event: TaskStatusesFetched) -> Drift:
    """Compare the answer of a full sync with the state it is about to be folded into."""
    topo = state_before.topology
    server: dict[int, str] = {}
    for status, ids in event.tasks_by_status.items():
        for task_id in ids:
            server[task_id] = status  # a task listed twice: the last listing wins
    if topo is None:
        return Drift(server_only=sorted(server))
    index_of = topo.index_of
    local = state_before.status
    differed: list[tuple[int, str, str]] = []
    server_only: list[int] = []
    for task_id, status in server.items():
        i = index_of.get(task_id)
        if i is None:
            server_only.append(task_id)
        elif local[i] != status:
            differed.append((task_id, local[i], status))
    local_only = [t for t in topo.task_ids if t not in server]
    differed.sort()
    server_only.sort()
    local_only.sort()
    return Drift(differed, local_only, server_only)


@frozen
class SyncDrift:
    """The drift of one full sync: the record that carried its answer and the command."""

    seq: int
    line: int
    command_id: int
    at: float
    drift: Drift

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "line": self.line, "command_id": self.command_id, "at": self.at,
            **self.drift.to_dict(),
        }


class DriftObserver:
    """A ``replay(observe=...)`` hook that collects the drift of every full sync."""

    def __init__(self) -> None:
        self.report: list[SyncDrift] = []
        self._full: set[int] = set()

    def __call__(self, step: Any) -> None:
        event = step.record.event
        if isinstance(event, TaskStatusesFetched) and event.command_id in self._full:
            self._full.discard(event.command_id)
            self.report.append(
                SyncDrift(
                    step.record.seq, step.record.line, event.command_id, event.at,
                    full_sync_drift(step.before, event),
                )
            )
        for command in step.record.commands:
            if isinstance(command, FetchTaskStatuses) and command.since is None:
                self._full.add(command.command_id)


def drift_report(log: EventLog | str | os.PathLike[str], until: int | None = None) -> list[SyncDrift]:
    """The drift of every full sync in a log (up to record ``until``), in log order.

    Folds the log like ``replay``; stops quietly at a divergence or an unreadable line.
    """
    from swarmfold.shell.log.replay import replay

    observer = DriftObserver()
    replay(log, until, observe=observer)
    return observer.report


def format_report(report: list[SyncDrift], limit: int = 10) -> list[str]:
    """Text lines: one summary line per full sync, then up to ``limit`` ids per set."""
    if not report:
        return ["drift: no full sync in the replayed records"]
    lines = [f"drift: {len(report)} full sync(s)"]
    for s in report:
        d = s.drift
        lines.append(
            f"  record {s.seq} (line {s.line}, command {s.command_id}, at={s.at:g}): "
            f"{len(d.differed)} differed, {len(d.local_only)} local only, "
            f"{len(d.server_only)} server only"
        )
        if d.differed:
            shown = ", ".join(f"{t} {a}->{b}" for t, a, b in d.differed[:limit])
            lines.append(f"    differed (local->server): {shown}{_more(d.differed, limit)}")
        if d.local_only:
            shown = ", ".join(str(t) for t in d.local_only[:limit])
            lines.append(f"    local only: {shown}{_more(d.local_only, limit)}")
        if d.server_only:
            shown = ", ".join(str(t) for t in d.server_only[:limit])
            lines.append(f"    server only: {shown}{_more(d.server_only, limit)}")
    return lines


def _more(items: list[Any], limit: int) -> str:
    return f", ... ({len(items) - limit} more)" if len(items) > limit else ""
