"""The server's routes that the swarm does not call: the distributor's (instantiate, launch,
kill, triage), the workers' (running, done, error) and the reaper's, as a mixin of
``ServerModel`` (``shell/server/model.py``), which holds the data."""

from __future__ import annotations

from array import array
from collections.abc import Container, Sequence

from swarmfold.shell.server.fsm import REAP, task_after_instance

__all__ = ["ClusterSide"]


class ClusterSide:
    """The distributor's, the workers' and the reaper's side of the server model."""

    # The model's data these routes read and write (``ServerModel.__init__`` sets them).
    array_of: Sequence[int]
    max_attempts: Sequence[int]
    status: list[str]
    num_attempts: array[int]
    counts: dict[str, int]
    active_by_array: dict[int, int]
    active_total: int
    area_by_array: dict[int, float]
    area_total: float
    down_offsets: Sequence[int]
    down_flat: Sequence[int]
    up_left: array[int]
    _mark: array[int]
    _bucket_sec: int
    _bucket: list[int]
    run_status: str
    heartbeat_date: float
    ti_report_increment: float
    ti_task: array[int]
    ti_status: list[str]
    new_queued: list[int]
    live: dict[int, None]
    to_kill: dict[int, None]
    report_by: dict[int, float]
    triaged: list[int]
    ti_counts: dict[str, int]

    def _bucket_of(self, sec: int) -> list[int]:
        raise NotImplementedError

    def _ti_set(self, ti: int, new: str) -> None:
        raise NotImplementedError

    def set_task_status(self, i: int, new: str, now: float, bump: bool = True) -> None:
        raise NotImplementedError

    def instantiate_and_launch(self, now: float, only: Container[int] | None = None) -> list[int]:
        """The distributor's pass over new instances: Q → I → O (task too). Returns them.

        ``only``: launch just these instances; the others wait for a later pass."""
        launched: list[int] = []
        queued = self.new_queued
        if only is None:
            self.new_queued = []
        else:
            self.new_queued = [ti for ti in queued if ti not in only]
            queued = [ti for ti in queued if ti in only]
        status = self.status
        ti_status = self.ti_status
        ti_task = self.ti_task
        counts = self.counts
        sec = int(now)
        changes = self._bucket_of(sec)
        mark = self._mark
        for ti in queued:
            if ti_status[ti] != "Q":  # terminated before the distributor saw it
                continue
            ti_status[ti] = "O"
            i = ti_task[ti]
            if status[i] == "Q":
                status[i] = "O"
                counts["Q"] -= 1
                counts["O"] += 1
                if mark[i] != sec:
                    mark[i] = sec
                    changes.append(i)
            launched.append(ti)
        return launched

    def log_running(self, ti: int, now: float) -> bool:
        """``POST /task_instance/{id}/log_running``: O → R. False if the instance may not run."""
        s = self.ti_status[ti]
        if s != "O" and s != "I":
            return False
        self.ti_status[ti] = "R"
        i = self.ti_task[ti]
        old = self.status[i]
        if old == "O" or old == "I":  # active to active: only the count and status_date move
            self.status[i] = "R"
            counts = self.counts
            counts[old] -= 1
            counts["R"] += 1
            sec = int(now)
            if self._mark[i] != sec:
                self._mark[i] = sec
                (self._bucket if sec == self._bucket_sec else self._bucket_of(sec)).append(i)
        return True

    def log_done(self, ti: int, now: float) -> None:
        """``POST /task_instance/{id}/log_done``: R (or K) → D; the task R → D."""
        ti_status = self.ti_status
        s = ti_status[ti]
        if s != "R" and s != "K":
            return
        ti_status[ti] = "D"
        del self.live[ti]
        self.ti_counts["D"] = self.ti_counts.get("D", 0) + 1
        if s == "K":
            self.to_kill.pop(ti, None)
        i = self.ti_task[ti]
        status = self.status
        old = status[i]
        if old != "R" and old != "O" and old != "I":
            return
        # Inline ``_set(i, "D", now)``: active -> DONE, downstreams lose one upstream to wait for.
        status[i] = "D"
        counts = self.counts
        counts[old] -= 1
        counts["D"] += 1
        a = self.array_of[i]
        self.active_by_array[a] -= 1
        self.area_by_array[a] += now
        self.active_total -= 1
        self.area_total += now
        offsets, flat, up_left = self.down_offsets, self.down_flat, self.up_left
        for k in range(offsets[i], offsets[i + 1]):
            up_left[flat[k]] -= 1
        sec = int(now)
        if self._mark[i] != sec:
            self._mark[i] = sec
            (self._bucket if sec == self._bucket_sec else self._bucket_of(sec)).append(i)

    def log_error(self, ti: int, ti_error: str, now: float) -> None:
        """``POST /task_instance/{id}/log_error_worker_node`` (``E``, ``Z``, ``U`` or ``F``)."""
        s = self.ti_status[ti]
        if s == "K" and ti_error != "F":  # untimely K->E/K->Z/K->U: ignored
            return
        if s not in ("R", "O", "I", "T", "K"):
            return
        self._ti_error(ti, ti_error, now)

    def _ti_error(self, ti: int, ti_error: str, now: float) -> None:
        i = self.ti_task[ti]
        task_status = self.status[i]
        if task_status == "D" or task_status == "F":
            self._ti_set(ti, "F")  # the unreleased fix: the instance goes F, the task stays
            return
        self._ti_set(ti, ti_error)
        self.to_kill.pop(ti, None)
        _, final = task_after_instance(ti_error, self.num_attempts[i], self.max_attempts[i])
        self.set_task_status(i, final, now)

    def worker_lost(self, ti: int, now: float) -> None:
        """The worker of a running instance vanished: it will miss its report-by date."""
        if self.ti_status[ti] == "R":
            self.report_by[ti] = now + self.ti_report_increment

    def transition_to_killed(self, now: float) -> list[int]:
        """The distributor kills K instances: instance F, task O/R → F. Returns them."""
        if not self.to_kill:
            return []
        killed = list(self.to_kill)
        self.to_kill.clear()
        for ti in killed:
            self._ti_set(ti, "F")
            self.report_by.pop(ti, None)
            i = self.ti_task[ti]
            if self.status[i] in ("O", "R"):
                self.set_task_status(i, "F", now)
        return killed

    def resolve_triaged(self, now: float) -> list[int]:
        """The distributor resolves triaged instances: no exit information, so U (an error)."""
        if not self.triaged:
            return []
        resolved = self.triaged
        self.triaged = []
        for ti in resolved:
            if self.ti_status[ti] == "T":
                self._ti_error(ti, "U", now)
        return resolved

    def reap(self, now: float) -> bool:
        """The workflow reaper: act on a run whose ``heartbeat_date`` has passed."""
        if self.heartbeat_date > now:
            return False
        status = self.run_status
        if status not in REAP:
            return False
        if status in ("C", "H"):  # a resume drains first: the run ends once nothing is left to kill
            kill_running = status == "C"
            for ti in list(self.live):
                s = self.ti_status[ti]
                if s == "Q" or s == "I":
                    self._ti_set(ti, "F")
                elif s == "O" or (s == "R" and kill_running):
                    self._ti_set(ti, "K")
                    self.to_kill[ti] = None
            if self.to_kill:
                return False
        self.run_status = REAP[status]
        return True

