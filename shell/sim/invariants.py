"""Online checks of what the swarm does to the simulated server.

The server and the distributor enforce nothing (as in Jobmon), so these checks show that the
core's own decisions keep the run correct:

- ``workflow_limit`` / ``array_limit``: when a ``QueueBatch`` is issued, the tasks active on the
  server plus those in batches already on their way plus this batch stay within the limits
  the swarm has been told (the topology's, then each ``*LimitFetched`` answer). A limit lowered
  on the server only binds once the swarm has fetched it. A task the batch names that is
  already active or on its way counts once.
- ``dependency``: a task the server moves to Q has all its upstreams DONE on the server.
- ``double_queue``: a batch names a task already in another batch on its way, or one the
  server holds in a status other than G/A.
- ``lost_task``: at a normal end (``Finish`` with D or E) no task is active on the server and
  none is REGISTERING/ADJUSTING with every upstream DONE; the swarm's DONE/FATAL tasks are
  DONE/FATAL on the server too (``summary_mismatch`` otherwise).
- ``unexplained_end``: the run ended otherwise than final (D, or E with failed or stuck tasks)
  and nothing that happened explains it (see ``faults.explain_end``); added by the driver.

**Faults that misinform the swarm.** Some injected faults make the swarm believe something the
server contradicts: a batch whose answer was lost (or timed out) was carried out although the
swarm was told it failed; a duplicated or late status answer reports a task where it no longer
is. The swarm cannot know better, so what it does *because of that* is not a bug of the core:
the checker keeps the set of **misinformed** tasks (marked when such a fault lands, cleared
when the swarm is next told the truth about the task) and the batches the swarm gave up on
while they were still on their way. A limit or double-queueing breach that these tasks fully
account for is counted as **excused** (``excused``, by kind), not as a violation; anything
else is still a violation. Without faults nothing is ever excused.

Each check costs O(size of the batch); the end checks are one pass over the tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from attrs import frozen

from swarmfold.core.commands import QueueBatch
from swarmfold.core.statuses import ACTIVE, QUEUEABLE
from swarmfold.core.summary import RunSummary
from swarmfold.shell.server.model import ServerModel

#: How many violations are kept in full (all are counted).
KEEP = 50


@frozen
class Violation:
    at: float
    kind: str
    detail: str
    #: The event-log record (``seq``) whose commands led to it, when known.
    record: int | None = None

    def __str__(self) -> str:
        where = f" [record {self.record}]" if self.record is not None else ""
        return f"t={self.at:g}: {self.kind}: {self.detail}{where}"


class InvariantChecker:
    """Watches the commands the driver carries out against one ``ServerModel``.

    ``record`` is the event-log sequence number of the ``decide`` call being carried out (the
    driver keeps it up to date); ``on_violation`` is called with every violation kept.
    ``tracking`` switches on the misinformed-task bookkeeping (only fault runs need it).
    """

    def __init__(
        self,
        server: ServerModel,
        *,
        tracking: bool = False,
        on_violation: Callable[[Violation], None] | None = None,
    ) -> None:
        self.server = server
        topo = server.topo
        self.known_workflow_limit = topo.workflow_limit
        self.known_array_limits: dict[int, int] = dict(topo.array_limits)
        self.inflight_total = 0
        self.inflight_by_array: dict[int, int] = dict.fromkeys(topo.array_ids, 0)
        #: Task index -> number of batches on their way naming it.
        self.inflight: dict[int, int] = {}
        self.violations: list[Violation] = []
        self.counts: dict[str, int] = {}
        self.excused: dict[str, int] = {}
        self.record: int | None = None
        self.on_violation = on_violation
        self.tracking = tracking
        #: Tasks the swarm holds a false belief about because of an injected fault.
        self.misinformed: set[int] = set()
        #: Tasks of batches the swarm was told failed while they are still on their way.
        self.abandoned: dict[int, int] = {}
        self._abandoned_batches: set[int] = set()
        #: Command ids of the batches on their way.
        self._batches_on_their_way: set[int] = set()

    def violate(self, at: float, kind: str, detail: str, record: int | None = None) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if len(self.violations) < KEEP:
            v = Violation(at, kind, detail, self.record if record is None else record)
            self.violations.append(v)
            if self.on_violation is not None:
                self.on_violation(v)

    def excuse(self, kind: str) -> None:
        self.excused[kind] = self.excused.get(kind, 0) + 1

    # --- what the swarm has been told --------------------------------------------------------

    def workflow_limit_seen(self, limit: int) -> None:
        self.known_workflow_limit = limit

    def array_limit_seen(self, array_id: int, limit: int) -> None:
        self.known_array_limits[array_id] = limit

    def facts_delivered(self, tasks_by_status: Mapping[str, Iterable[int]], exact: bool, full: bool) -> None:
        """The swarm is told these statuses. ``exact``: every fact is true now (an answer
        served this instant, undisturbed); ``full``: the answer names every task."""
        if not self.tracking:
            return
        misinformed = self.misinformed
        if exact:
            if not misinformed:
                return
            if full:
                misinformed.clear()
                return
            for ids in tasks_by_status.values():
                misinformed.difference_update(self.server.indexes_of(ids))
            return
        status = self.server.status
        for code, ids in tasks_by_status.items():
            code_active = code in ACTIVE
            code_queueable = code in QUEUEABLE
            for i in self.server.indexes_of(ids):
                s = status[i]
                # A stale fact misleads the swarm when it makes an active task look idle, or
                # a task that is not waiting look queueable; else it is merely late.
                misleads = (s in ACTIVE and not code_active) or (code_queueable and s not in QUEUEABLE)
                if s != code and misleads:
                    misinformed.add(i)
                else:
                    misinformed.discard(i)

    # --- batches -------------------------------------------------------------------------------

    def batch_issued(self, c: QueueBatch, now: float) -> None:
        server = self.server
        n = len(c.task_ids)
        a = c.array_id
        status = server.status
        inflight = self.inflight
        indexes = server.indexes_of(c.task_ids)
        if len(indexes) != n:
            self.violate(now, "double_queue", f"batch {c.command_id} names unknown task ids")
        task_ids = server.task_ids
        array_of = server.array_of
        misinformed = self.misinformed
        abandoned = self.abandoned
        # Tasks of this batch already counted (active on the server or on their way).
        overlap_total = 0
        overlap_array = 0
        for i in indexes:
            s = status[i]
            counted = i in inflight or s in ACTIVE
            if counted:
                overlap_total += 1
                if array_of[i] == a:
                    overlap_array += 1
            if i in inflight:
                if i in abandoned or i in misinformed:
                    self.excuse("double_queue")
                else:
                    self.violate(now, "double_queue", f"task {task_ids[i]} is already in a batch on its way")
            elif s != "G" and s != "A":
                if i in misinformed:
                    self.excuse("double_queue")
                else:
                    self.violate(now, "double_queue", f"task {task_ids[i]} is queued while {s} on the server")
        total = server.active_total + self.inflight_total + n - overlap_total
        in_array = server.active_by_array.get(a, 0) + self.inflight_by_array.get(a, 0) + n - overlap_array
        limit = self.known_workflow_limit
        array_limit = self.known_array_limits.get(a)
        if total > limit or array_limit is None or in_array > array_limit:
            # Exact counts (a task counted once, whatever batches name it), and what the swarm
            # could count: not the misinformed tasks it believes idle, nor the batches it was
            # told failed. Without faults both equal the quick counts above.
            total, in_array, view_total, view_array = self._exact(indexes, a)
            if total > limit:
                if view_total <= limit:
                    self.excuse("workflow_limit")
                else:
                    self.violate(
                        now, "workflow_limit",
                        f"batch {c.command_id} (array {a}, {n} task(s)) brings active + in flight to"
                        f" {total}, above the workflow limit {limit}",
                    )
            if array_limit is None or in_array > array_limit:
                if array_limit is not None and view_array <= array_limit:
                    self.excuse("array_limit")
                else:
                    self.violate(
                        now, "array_limit",
                        f"batch {c.command_id} brings array {a} to {in_array} active + in flight,"
                        f" above its limit {array_limit}",
                    )
        for i in indexes:
            inflight[i] = inflight.get(i, 0) + 1
        self._batches_on_their_way.add(c.command_id)
        self.inflight_total += n
        self.inflight_by_array[a] = self.inflight_by_array.get(a, 0) + n

    def _exact(self, indexes: Sequence[int], a: int) -> tuple[int, int, int, int]:
        """``(total, in array a, as the swarm can count them, in array a so)`` with the batch."""
        server = self.server
        status, array_of = server.status, server.array_of
        inflight, abandoned, misinformed = self.inflight, self.abandoned, self.misinformed
        extra = [i for i in set(inflight).union(indexes) if status[i] not in ACTIVE]
        total = server.active_total + len(extra)
        in_array = server.active_by_array.get(a, 0) + sum(1 for i in extra if array_of[i] == a)
        believed_idle = [i for i in misinformed if status[i] in ACTIVE]
        pending = {i for i, k in inflight.items() if k > abandoned.get(i, 0)}.union(indexes)
        view_extra = [i for i in pending if status[i] not in ACTIVE or i in misinformed]
        view_total = server.active_total - len(believed_idle) + len(view_extra)
        view_array = (
            server.active_by_array.get(a, 0)
            - sum(1 for i in believed_idle if array_of[i] == a)
            + sum(1 for i in view_extra if array_of[i] == a)
        )
        return total, in_array, view_total, view_array

    def batch_landed(
        self, c: QueueBatch, moved: Sequence[int], now: float, *, abandoned: bool = False,
        record: int | None = None,
    ) -> None:
        """The server processed the batch (``moved``: the indexes it moved to Q).

        ``abandoned``: the swarm is (or will be) told the batch failed, so it believes the
        moved tasks are still waiting: they become misinformed."""
        self._forget(c)
        up_left = self.server.up_left
        task_ids = self.server.task_ids
        for i in moved:
            if up_left[i] != 0:
                self.violate(
                    now, "dependency",
                    f"task {task_ids[i]} was queued with {up_left[i]} upstream(s) not DONE",
                    record,
                )
        if abandoned and self.tracking:
            self.misinformed.update(moved)

    def batch_abandoned(self, c: QueueBatch) -> None:
        """The swarm was told the batch failed; it matters while the batch is still on its way."""
        if c.command_id in self._abandoned_batches or c.command_id not in self._batches_on_their_way:
            return
        self._abandoned_batches.add(c.command_id)
        for i in self.server.indexes_of(c.task_ids):
            self.abandoned[i] = self.abandoned.get(i, 0) + 1

    def batch_dropped(self, c: QueueBatch) -> None:
        """The request never reached the server (an injected fault)."""
        self._forget(c)

    def _forget(self, c: QueueBatch) -> None:
        self._batches_on_their_way.discard(c.command_id)
        n = len(c.task_ids)
        self.inflight_total -= n
        self.inflight_by_array[c.array_id] -= n
        indexes = self.server.indexes_of(c.task_ids)
        inflight = self.inflight
        for i in indexes:
            k = inflight.get(i, 0) - 1
            if k > 0:
                inflight[i] = k
            else:
                inflight.pop(i, None)
        if c.command_id in self._abandoned_batches:
            self._abandoned_batches.discard(c.command_id)
            abandoned = self.abandoned
            for i in indexes:
                k = abandoned.get(i, 0) - 1
                if k > 0:
                    abandoned[i] = k
                else:
                    abandoned.pop(i, None)

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
