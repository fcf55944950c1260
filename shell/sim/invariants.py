"""Online checks of what the swarm does to the simulated server.

The server and the distributor enforce nothing (as in Jobmon), so these checks show that the
core's own decisions keep the run correct:

- ``workflow_limit`` / ``array_limit``: when a ``QueueBatch`` is issued, the tasks active on the
  server plus those in batches already on their way plus this batch stay within the limits
  the swarm has been told (the topology's, then each ``*LimitFetched`` answer). A limit lowered
  on the server only binds once the swarm has fetched it.
- ``dependency``: a task the server moves to Q has all its upstreams DONE on the server.
- ``double_queue``: a batch names a task already in another batch on its way, or one the
  server holds in a status other than G/A.
- ``lost_task``: at a normal end (``Finish`` with D or E) no task is active on the server and
  none is REGISTERING/ADJUSTING with every upstream DONE; the swarm's DONE/FATAL tasks are
  DONE/FATAL on the server too (``summary_mismatch`` otherwise).

Each check costs O(size of the batch); the end checks are one pass over the tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from swarmfold.core.commands import QueueBatch
from swarmfold.core.summary import RunSummary
from swarmfold.shell.sim.server_model import ACTIVE, ServerModel

#: How many violations are kept in full (all are counted).
KEEP = 50


@frozen
class Violation:
    at: float
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"t={self.at:g}: {self.kind}: {self.detail}"


class InvariantChecker:
    """Watches the commands the driver carries out against one ``ServerModel``."""

    def __init__(self, server: ServerModel) -> None:
        self.server = server
        topo = server.topo
        self.known_workflow_limit = topo.workflow_limit
        self.known_array_limits: dict[int, int] = dict(topo.array_limits)
        self.inflight_total = 0
        self.inflight_by_array: dict[int, int] = dict.fromkeys(topo.array_ids, 0)
        self.inflight: set[int] = set()
        self.violations: list[Violation] = []
        self.counts: dict[str, int] = {}

    def violate(self, at: float, kind: str, detail: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if len(self.violations) < KEEP:
            self.violations.append(Violation(at, kind, detail))

    # --- what the swarm has been told --------------------------------------------------------

    def workflow_limit_seen(self, limit: int) -> None:
        self.known_workflow_limit = limit

    def array_limit_seen(self, array_id: int, limit: int) -> None:
        self.known_array_limits[array_id] = limit

    # --- batches -------------------------------------------------------------------------------

    def batch_issued(self, c: QueueBatch, now: float) -> None:
        server = self.server
        n = len(c.task_ids)
        a = c.array_id
        total = server.active_total + self.inflight_total + n
        if total > self.known_workflow_limit:
            self.violate(
                now, "workflow_limit",
                f"batch {c.command_id} (array {a}, {n} task(s)) brings active + in flight to {total},"
                f" above the workflow limit {self.known_workflow_limit}",
            )
        in_array = server.active_by_array.get(a, 0) + self.inflight_by_array.get(a, 0) + n
        limit = self.known_array_limits.get(a)
        if limit is None or in_array > limit:
            self.violate(
                now, "array_limit",
                f"batch {c.command_id} brings array {a} to {in_array} active + in flight,"
                f" above its limit {limit}",
            )
        status = server.status
        inflight = self.inflight
        indexes = server.indexes_of(c.task_ids)
        if len(indexes) != n:
            self.violate(now, "double_queue", f"batch {c.command_id} names unknown task ids")
        task_ids = server.task_ids
        for i in indexes:
            if i in inflight:
                self.violate(now, "double_queue", f"task {task_ids[i]} is already in a batch on its way")
            elif status[i] != "G" and status[i] != "A":
                self.violate(
                    now, "double_queue", f"task {task_ids[i]} is queued while {status[i]} on the server"
                )
            inflight.add(i)
        self.inflight_total += n
        self.inflight_by_array[a] = self.inflight_by_array.get(a, 0) + n

    def batch_landed(self, c: QueueBatch, moved: Sequence[int], now: float) -> None:
        """The server processed the batch (``moved``: the indexes it moved to Q)."""
        self._forget(c)
        up_left = self.server.up_left
        task_ids = self.server.task_ids
        for i in moved:
            if up_left[i] != 0:
                self.violate(
                    now, "dependency",
                    f"task {task_ids[i]} was queued with {up_left[i]} upstream(s) not DONE",
                )

    def batch_dropped(self, c: QueueBatch) -> None:
        """The request never reached the server (an injected fault)."""
        self._forget(c)

    def _forget(self, c: QueueBatch) -> None:
        n = len(c.task_ids)
        self.inflight_total -= n
        self.inflight_by_array[c.array_id] -= n
        self.inflight.difference_update(self.server.indexes_of(c.task_ids))

    # --- the end -------------------------------------------------------------------------------

    def at_end(self, summary: RunSummary, normal_end: bool, now: float) -> None:
        """Check that nothing was lost and that the summary agrees with the server."""
        server = self.server
        status = server.status
        task_ids = server.task_ids
        for code in ("D", "F"):
            indexes = server.indexes_of(summary.tasks_by_status.get(code, ()))
            mismatched = [task_ids[i] for i in indexes if status[i] != code]
            if mismatched:
                self.violate(
                    now, "summary_mismatch",
                    f"{len(mismatched)} task(s) reported {code} by the swarm are not {code} on the server,"
                    f" e.g. {mismatched[:5]}",
                )
        if not normal_end:
            return
        up_left = server.up_left
        active = [task_ids[i] for i, s in enumerate(status) if s in ACTIVE]
        if active:
            self.violate(
                now, "lost_task",
                f"the run ended with {len(active)} task(s) still active on the server, e.g. {active[:5]}",
            )
        runnable = [
            task_ids[i] for i, s in enumerate(status) if (s == "G" or s == "A") and up_left[i] == 0
        ]
        if runnable:
            self.violate(
                now, "lost_task",
                f"the run ended with {len(runnable)} runnable task(s) never finished, e.g. {runnable[:5]}",
            )
