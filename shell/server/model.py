"""The server side of Jobmon 3.6, as a deterministic state machine on a virtual clock.

Each route the swarm calls is a method that takes the virtual time ``now`` and returns the
route's answer; the distributor's and the workers' routes are methods too. Nothing here reads a
clock or draws a random number: the same calls at the same times give the same answers. For
speed the model mutates itself in place (per-task data in flat lists and arrays indexed by the
topology's dense task index), but it is a function of the calls it has seen and nothing else.

Rules followed (spec §1.5, §5.4, §7, §8, §9; protocol notes):

- Task FSM: ``queue_task_batch`` moves G/A to Q (``num_attempts += 1``) and answers with the
  *current* status of every requested id; the distributor moves Q→I→O; ``log_running`` O→R;
  ``log_done`` R→D; a task-instance error (E, U, W, Z) goes E then F if
  ``num_attempts >= max_attempts``, else A for Z, else G; a task instance going F makes the
  task F regardless of attempts; if the task is already D/F an error only moves the instance
  to F (the unreleased fix).
- ``status_date`` has 1-second resolution; ``task_status_updates`` with ``last_sync`` answers
  every task whose status changed in a second ``>= last_sync``, so a change in the second of a
  sync is reported twice (as the real server does). The answer's ``time`` is the current second.
- ``terminate_task_instances``: instances Q/I → F (the task is left as it is, quirk Q10);
  O, and R unless the run is HOT_RESUME, → K; the distributor then kills K instances
  (``transition_to_killed``: instance F, task O/R → F).
- ``set_status_for_triaging``: R instances whose report-by date passed → T; the distributor
  resolves T as an unknown error (U). Healthy workers keep reporting, so only a lost worker
  (a fault) ever misses its report-by date.
- Workflow-run FSM with untimely R→R and L→L; ``log_heartbeat`` moves ``heartbeat_date`` only
  when its transition is legal or untimely; ``update_status`` answers the status it holds.
- The reaper: C/H → instances Q/I → F, O (+R for C) → K, then T once no K instance remains;
  R → E, once ``heartbeat_date`` has passed.
- Limits are stored here and change only through ``set_workflow_limit``/``set_array_limit``.
  The server never enforces them (nor dependencies): the swarm does.
"""

from __future__ import annotations

import datetime as _dt
from array import array
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from swarmfold.core.config import UNLIMITED
from swarmfold.core.count_column import ints_view
from swarmfold.core.id_array import IdArray
from swarmfold.core.resources import Requested
from swarmfold.core.statuses import ACTIVE
from swarmfold.core.topology import Topology
from swarmfold.shell.server.cluster_side import ClusterSide
from swarmfold.shell.server.fsm import ACCEPTED, REFUSED, RUN_ACTIVE, run_transition

#: Virtual ``t = 0`` on the server's clock (the same epoch as the instant fake server).
EPOCH = _dt.datetime(2026, 1, 1)

#: Task-instance statuses that are not final yet (a live instance).
TI_LIVE = frozenset("QIORKTX")


def server_time(at: float) -> str:
    """``"YYYY-MM-DD HH:MM:SS"`` of virtual time ``at`` (1-second resolution)."""
    return (EPOCH + _dt.timedelta(seconds=int(at))).strftime("%Y-%m-%d %H:%M:%S")


def parse_server_time(text: str) -> int:
    """The virtual second a server time string names."""
    moment = _dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    return int((moment - EPOCH).total_seconds())


def downstream_csr(topo: Topology) -> tuple[Sequence[int], Sequence[int]]:
    """Downstream edges as compressed rows ``(offsets, flat)``, whatever the topology stores."""
    offsets = getattr(topo, "down_offsets", None)
    flat = getattr(topo, "down_flat", None)
    if offsets is not None and flat is not None:
        return offsets, flat
    out_offsets = array("q", [0])
    out_flat = array("q")
    for row in topo.downstream:
        out_flat.extend(row)
        out_offsets.append(len(out_flat))
    return out_offsets, out_flat


def _counts_like(counts: Sequence[int]) -> array[int]:
    """A writable copy of per-task counts at their own width (the topology keeps upstream
    counts as narrow as they allow: a million of them take one megabyte, not eight)."""
    view = ints_view(counts)
    copy = array(view.dtype.char)
    copy.frombytes(view.tobytes())
    return copy


class ServerModel(ClusterSide):
    """The Jobmon server for one workflow and its one workflow run.

    ``run_status`` starts at ``O``: the run was bound (B) and the distributor has already moved
    it to I and O, so the swarm's ``update_status(R)`` is the legal O→R (spec §1.5).
    """

    def __init__(
        self,
        topo: Topology,
        *,
        workflow_id: int = 1,
        workflow_run_id: int = 1,
        run_status: str = "O",
        heartbeat_increment: float = 93.0,
        ti_report_increment: float = 279.0,
        now: float = 0.0,
    ) -> None:
        n = topo.size
        self.topo = topo
        self.workflow_id = workflow_id
        self.workflow_run_id = workflow_run_id
        self.task_ids = topo.task_ids
        self.index_of = topo.index_of
        self.array_of = topo.array_of
        self.max_attempts = topo.max_attempts
        self.status: list[str] = list(topo.initial_status)
        self.num_attempts = array("q", bytes(8 * n))
        self.counts: dict[str, int] = dict.fromkeys("GQIORDEAF", 0)
        for s in self.status:
            self.counts[s] += 1
        self.active_by_array: dict[int, int] = dict.fromkeys(topo.array_ids, 0)
        for a, s in zip(topo.array_of, self.status, strict=True):
            if s in ACTIVE:
                self.active_by_array[a] += 1
        self.active_total = sum(self.active_by_array.values())
        # Peaks and time integrals of the active counts: entering adds -t, leaving adds +t,
        # and ``close(end)`` adds ``count * end`` (so no per-change time bookkeeping).
        self.peak_by_array = dict(self.active_by_array)
        self.peak_total = self.active_total
        self.area_by_array = {a: -c * now for a, c in self.active_by_array.items()}
        self.area_total = -self.active_total * now
        self._first: int | None = getattr(topo.index_of, "first", None)
        # Dependencies: upstreams not DONE, per task (for the invariant checks only).
        self.down_offsets, self.down_flat = downstream_csr(topo)
        up_left = _counts_like(topo.num_upstreams)
        offsets, flat = self.down_offsets, self.down_flat
        for i, s in enumerate(self.status):
            if s == "D":
                for k in range(offsets[i], offsets[i + 1]):
                    up_left[flat[k]] -= 1
        self.up_left = up_left
        # Changes by second (status_date), for incremental syncs.
        self._mark = array("q", [-1]) * n
        self._buckets: deque[tuple[int, list[int]]] = deque()
        self._bucket_sec = -1
        self._bucket: list[int] = []
        self._time_strings: dict[str, int] = {}
        # Limits (stored on the server; changed by the user at run time).
        self.workflow_limit: int = topo.workflow_limit
        self.array_limits: dict[int, int] = dict(topo.array_limits)
        # The workflow run, and the last status of every earlier run (shell/server/resume.py).
        self.run_status = run_status
        self.past_runs: dict[int, str] = {}
        self.heartbeat_date = now + heartbeat_increment
        self.ti_report_increment = ti_report_increment
        # Task resources (bind_resources) and task instances.
        self.task_resources: list[tuple[str, Requested]] = [("", ())]
        self.ti_task = array("q")
        self.ti_status: list[str] = []
        self.ti_resources = array("q")
        self.ti_queued_at = array("d")
        self.latest_ti = array("q", [-1]) * n
        #: Instances queued since the distributor last instantiated (ids, in order).
        self.new_queued: list[int] = []
        #: Instances that are not final yet, in creation order (for terminate and the reaper).
        self.live: dict[int, None] = {}
        #: Instances ordered to die (K), to be killed by the distributor.
        self.to_kill: dict[int, None] = {}
        #: Instances whose worker vanished: their report-by date.
        self.report_by: dict[int, float] = {}
        #: Instances triaged (T), to be resolved by the distributor.
        self.triaged: list[int] = []
        self.ti_counts: dict[str, int] = {}
        #: Resources set by ``increase_resources``: task index -> (queue, requested).
        self.resource_override: dict[int, tuple[str, Requested]] = {}

    # --- status bookkeeping -------------------------------------------------------------------

    def _bucket_of(self, sec: int) -> list[int]:
        """The list of tasks whose status changed in second ``sec`` (time only moves forward)."""
        if sec != self._bucket_sec:
            self._bucket = []
            self._bucket_sec = sec
            self._buckets.append((sec, self._bucket))
        return self._bucket

    def _changed(self, i: int, sec: int) -> None:
        """Task ``i``'s status_date is now second ``sec``."""
        if self._mark[i] != sec:
            self._mark[i] = sec
            self._bucket_of(sec).append(i)

    def set_task_status(self, i: int, new: str, now: float, bump: bool = True) -> None:
        """Set task ``i``'s status (bumping its status_date unless ``bump`` is False) and keep
        every count right."""
        old = self.status[i]
        if old == new:
            return
        self.status[i] = new
        counts = self.counts
        counts[old] -= 1
        counts[new] += 1
        was, now_active = old in ACTIVE, new in ACTIVE
        if was and not now_active:
            self._leave_active(self.array_of[i], now)
        elif now_active and not was:
            self._enter_active(self.array_of[i], now)
        if new == "D":
            offsets, flat, up_left = self.down_offsets, self.down_flat, self.up_left
            for k in range(offsets[i], offsets[i + 1]):
                up_left[flat[k]] -= 1
        elif old == "D":
            offsets, flat, up_left = self.down_offsets, self.down_flat, self.up_left
            for k in range(offsets[i], offsets[i + 1]):
                up_left[flat[k]] += 1
        if bump:
            self._changed(i, int(now))

    def _enter_active(self, a: int, now: float) -> None:
        c = self.active_by_array[a] + 1
        self.active_by_array[a] = c
        if c > self.peak_by_array[a]:
            self.peak_by_array[a] = c
        self.area_by_array[a] -= now
        t = self.active_total + 1
        self.active_total = t
        if t > self.peak_total:
            self.peak_total = t
        self.area_total -= now

    def _leave_active(self, a: int, now: float) -> None:
        self.active_by_array[a] -= 1
        self.area_by_array[a] += now
        self.active_total -= 1
        self.area_total += now

    def close(self, end: float) -> None:
        """Close the active-time integrals at ``end`` (call once, at the end of the run)."""
        for a, c in self.active_by_array.items():
            self.area_by_array[a] += c * end
        self.area_total += self.active_total * end

    def _ti_set(self, ti: int, new: str) -> None:
        self.ti_status[ti] = new
        if new not in TI_LIVE:
            self.live.pop(ti, None)
            self.ti_counts[new] = self.ti_counts.get(new, 0) + 1

    def time_string(self, now: float) -> str:
        text = server_time(now)
        self._time_strings[text] = int(now)
        return text

    def _second_of(self, text: str) -> int:
        sec = self._time_strings.get(text)
        return sec if sec is not None else parse_server_time(text)

    # --- the swarm's routes --------------------------------------------------------------------

    def queue_task_batch(
        self, task_ids: Iterable[int], task_resources_id: int, now: float
    ) -> tuple[dict[str, list[int]], list[int]]:
        """``POST /array/{id}/queue_task_batch``: G/A → Q with a new instance each.

        Returns the answer (current status of every known requested id) and the indexes moved.
        """
        get = self.index_of.get
        first = self._first
        n = len(self.status)
        status = self.status
        counts = self.counts
        num_attempts = self.num_attempts
        ti_task, ti_status, ti_resources, ti_queued_at = (
            self.ti_task, self.ti_status, self.ti_resources, self.ti_queued_at,
        )
        latest_ti, live, new_queued = self.latest_ti, self.live, self.new_queued
        answer: dict[str, list[int]] = {}
        moved: list[int] = []
        sec = int(now)
        changes = self._bucket_of(sec)
        mark = self._mark
        array_of = self.array_of
        active_by_array, peak_by_array, area_by_array = (
            self.active_by_array, self.peak_by_array, self.area_by_array,
        )
        entered = 0
        for tid in task_ids:
            if first is not None:
                i = tid - first
                if not 0 <= i < n:
                    continue
            else:
                j = get(tid)
                if j is None:
                    continue
                i = j
            s = status[i]
            if s == "G" or s == "A":
                status[i] = "Q"
                counts[s] -= 1
                counts["Q"] += 1
                a = array_of[i]  # inline _enter_active (the totals are settled after the loop)
                c = active_by_array[a] + 1
                active_by_array[a] = c
                if c > peak_by_array[a]:
                    peak_by_array[a] = c
                area_by_array[a] -= now
                entered += 1
                if mark[i] != sec:
                    mark[i] = sec
                    changes.append(i)
                num_attempts[i] += 1
                ti = len(ti_status)
                ti_task.append(i)
                ti_status.append("Q")
                ti_resources.append(task_resources_id)
                ti_queued_at.append(now)
                latest_ti[i] = ti
                live[ti] = None
                new_queued.append(ti)
                moved.append(i)
                s = "Q"
            bucket = answer.get(s)
            if bucket is None:
                answer[s] = [tid]
            else:
                bucket.append(tid)
        if entered:
            total = self.active_total + entered
            self.active_total = total
            if total > self.peak_total:
                self.peak_total = total
            self.area_total -= now * entered
        return answer, moved

    def bind_resources(self, queue: str, requested: Requested) -> int:
        """``POST /task/bind_resources``: a new TaskResources id every time (type ``O``)."""
        self.task_resources.append((queue, tuple(requested)))
        return len(self.task_resources) - 1

    def task_status_updates(
        self, since: str | None, now: float, packed: bool = False
    ) -> tuple[dict[str, Sequence[int]], str]:
        """``POST /workflow/{id}/task_status_updates``: changed (or, with no ``since``, all)
        tasks. ``packed``: every task's ids come as ``IdArray``s (in process: no Python int
        per task), else as lists (for JSON)."""
        status = self.status
        ids = self.task_ids
        answer: dict[str, Sequence[int]] = {}
        if since is None:
            # Every task, grouped by status, in id order: a numpy compare per status present.
            letters = np.frombuffer("".join(status).encode("ascii"), dtype=np.uint8)
            first = self._first
            id_column = None if first is not None else np.asarray(ids, dtype=np.int64)
            for code, count in self.counts.items():
                if count:
                    at = np.flatnonzero(letters == ord(code))
                    found = id_column[at] if id_column is not None else at + (first or 0)
                    answer[code] = IdArray(found) if packed else found.tolist()
        else:
            floor = self._second_of(since)
            buckets = self._buckets
            while buckets and buckets[0][0] < floor:  # the swarm never asks further back
                buckets.popleft()
            if len(buckets) == 1:
                changed: Iterable[int] = buckets[0][1]
            else:
                seen: dict[int, None] = {}
                for _, indexes in buckets:
                    seen.update(dict.fromkeys(indexes))
                changed = seen
            lists: dict[str, list[int]] = {}
            for i in changed:
                s = status[i]
                bucket = lists.get(s)
                if bucket is None:
                    lists[s] = [ids[i]]
                else:
                    bucket.append(ids[i])
            answer.update(lists)
        return answer, self.time_string(now)

    def set_status_for_triaging(self, now: float) -> None:
        """``POST /workflow_run/{id}/set_status_for_triaging``: overdue R instances → T."""
        if not self.report_by:
            return
        for ti, due in list(self.report_by.items()):
            if due <= now and self.ti_status[ti] == "R":
                del self.report_by[ti]
                self._ti_set(ti, "T")
                self.triaged.append(ti)

    def get_max_concurrently_running(self) -> int:
        return self.workflow_limit

    def get_array_max_concurrently_running(self, array_id: int) -> int:
        limit: int = self.array_limits.get(array_id, UNLIMITED)
        return limit

    def _transition_run(self, new: str) -> bool:
        """The workflow-run FSM: True if ``new`` was accepted (or untimely), else False."""
        verdict = run_transition(self.run_status, new)
        if verdict == ACCEPTED:
            self.run_status = new
        return verdict != REFUSED

    def log_heartbeat(self, status: str, next_report_increment: float, now: float) -> str:
        """``POST /workflow_run/{id}/log_heartbeat``: transition, then extend ``heartbeat_date``."""
        if self._transition_run(status):
            self.heartbeat_date = now + next_report_increment
        return self.run_status

    def update_status(self, status: str, now: float) -> str:
        """``PUT /workflow_run/{id}/update_status``: invalid transitions are ignored."""
        self._transition_run(status)
        return self.run_status

    def terminate_task_instances(self, now: float) -> int:
        """``PUT /workflow_run/{id}/terminate_task_instances`` (the task statuses are untouched)."""
        kill_running = self.run_status != "H"
        n = 0
        for ti in list(self.live):
            s = self.ti_status[ti]
            if s == "Q" or s == "I":
                self._ti_set(ti, "F")
                n += 1
            elif s == "O" or (s == "R" and kill_running):
                self._ti_set(ti, "K")
                self.to_kill[ti] = None
                n += 1
        return n

    # --- outside the swarm: users, the distributor, workers, the reaper ------------------------

    def set_workflow_limit(self, limit: int) -> None:
        """``PUT /workflow/{id}/update_max_concurrently_running``."""
        self.workflow_limit = limit

    def set_array_limit(self, array_id: int, limit: int) -> None:
        """``PUT /workflow/{id}/update_array_max_concurrently_running``."""
        self.array_limits[array_id] = limit

    def set_resume(self, reset_running_jobs: bool) -> bool:
        """``POST /workflow/{id}/set_resume``: an active run (B or R) goes C (cold) or H (hot)."""
        if self.run_status in RUN_ACTIVE:
            return self._transition_run("C" if reset_running_jobs else "H")
        return False

    def cli_update_statuses(self, task_ids: Iterable[int], status: str, now: float, *,
                            bump_status_date: bool = True) -> None:
        """The CLI's ``update_statuses``: a raw write of ``status`` (no task FSM); a task set to G
        has no attempt used. ``bump_status_date=False`` leaves status_date as it was, so an
        incremental sync misses the change (quirk Q13)."""
        for i in self.indexes_of(task_ids):
            if status == "G":
                self.num_attempts[i] = 0
            self.set_task_status(i, status, now, bump=bump_status_date)

    def adopt_active_tasks(self, now: float) -> list[int]:
        """Give every active task with no instance (the topology starts it Q/I/O/R, as a resumed
        workflow's running work) one live instance in the task's status, its first attempt.
        Returns the new instances; statuses and status_dates are untouched."""
        adopted: list[int] = []
        for i, s in enumerate(self.status):
            if s not in ACTIVE or self.latest_ti[i] >= 0:
                continue
            ti = len(self.ti_status)
            self.ti_task.append(i)
            self.ti_status.append(s)
            self.ti_resources.append(0)
            self.ti_queued_at.append(now)
            self.latest_ti[i] = ti
            self.live[ti] = None
            if s == "Q":
                self.new_queued.append(ti)
            self.num_attempts[i] = max(1, self.num_attempts[i])
            adopted.append(ti)
        return adopted

    # --- queries ---------------------------------------------------------------------------------

    def indexes_of(self, task_ids: Iterable[int]) -> list[int]:
        """Dense indexes of known task ids (unknown ids are left out)."""
        first = self._first
        if first is not None:
            n = len(self.status)
            out = [t - first for t in task_ids]
            if out and (min(out) < 0 or max(out) >= n):
                out = [i for i in out if 0 <= i < n]
            return out
        get = self.index_of.get
        return [i for i in map(get, task_ids) if i is not None]

    def resources_of_instance(self, ti: int) -> tuple[str, Requested]:
        return self.task_resources[self.ti_resources[ti]]

    def current_resources(self, i: int) -> tuple[str, Requested]:
        """Task ``i``'s resources as the server holds them: set by ``increase_resources``, else
        bound by its latest queueing (``queue_task_batch`` sets the task's resources), else
        as the workflow was bound."""
        override = self.resource_override.get(i)
        if override is not None:
            return override
        ti = self.latest_ti[i]
        if ti >= 0:
            return self.task_resources[self.ti_resources[ti]]
        res = self.topo.resources_of[i]
        return res.queue, res.requested

    def task_status(self, task_id: int) -> str:
        return self.status[int(self.index_of[task_id])]

    def statuses_by_task(self) -> Mapping[int, str]:
        return dict(zip(self.task_ids, self.status, strict=True))

    def snapshot(self) -> dict[str, Any]:
        """Counts for a timeline row."""
        return {
            "run_status": self.run_status,
            "workflow_limit": self.workflow_limit,
            "active": self.active_total,
            **{f"count_{s}": c for s, c in self.counts.items()},
        }
