"""A deterministic model of the Jobmon server, for property tests of the pure core.

``ModelServer`` holds the server side of one workflow run: every task's status, attempt
count and ``status_date`` (whole seconds of the model clock), the run status and its
``heartbeat_date``, and the concurrency limits. It follows the transition rules of spec §1.5:

- ``queue_task_batch`` moves only G/A tasks to Q (``num_attempts + 1``) and answers the
  *current* status of every requested id;
- tasks progress Q -> I -> O -> R -> D; a task-instance error passes through E and ends in
  F when attempts are exhausted, A for a resource error, G otherwise; a fatal error ends
  in F; E is never left committed;
- the run status follows the WorkflowRun FSM for ``update_status`` and ``log_heartbeat``
  (invalid transitions are ignored, the held status is answered); resume signals C/H are
  set from outside; a reaper ends runs whose ``heartbeat_date`` has passed (R -> E,
  C/H -> T);
- ``terminate_task_instances`` leaves Q/I tasks where they are (their instances fail,
  quirk Q10) and kills O tasks, and R tasks unless HOT_RESUME (they become F next step);
- ``task_status_updates`` answers the tasks whose ``status_date >= since`` at one-second
  resolution (so changes of the last second are reported again), or every task when
  ``since`` is None; its ``time`` is the model clock formatted like the server's ``now()``.

The server never draws a random number on its own: the caller passes choices in, or calls
``random_progress``, which draws from the ``random.Random`` given at construction. Faults
are applied when the caller asks for them: failed answers (``fail``, optionally after the
server carried the request out), stale or phantom content mixed into the next status answer
(``inject_stale``, ``inject_phantom``), CLI status changes with or without a
``status_date`` bump (``cli_set_status``, quirk Q13). Which command is answered when, twice
or late, is the caller's choice.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from swarmfold.core.commands import (
    BindResources,
    Command,
    EvaluateResources,
    FetchArrayLimit,
    FetchTaskStatuses,
    FetchWorkflowLimit,
    LogHeartbeat,
    QueueBatch,
    RequestTriage,
    TerminateTaskInstances,
    UpdateWorkflowRunStatus,
)
from swarmfold.core.events import (
    ArrayLimitFetched,
    BatchQueued,
    BatchQueueFailed,
    Event,
    HeartbeatAcknowledged,
    HeartbeatFailed,
    ResourceBindFailed,
    ResourceEvaluationFailed,
    ResourcesBound,
    ResourcesEvaluated,
    StatusUpdateAcknowledged,
    StatusUpdateFailed,
    SyncPartFailed,
    TaskStatusesFetched,
    TerminateAcknowledged,
    TerminateFailed,
    TriageRequested,
    WorkflowLimitFetched,
)
from swarmfold.core.protocol import PROTOCOL
from swarmfold.core.topology import TopologySpec
from swarmfold.shell.server.fsm import (
    ACCEPTED,
    REAP,
    REFUSED,
    RUN_ACTIVE,
    run_transition,
    task_after_instance,
)

EPOCH = _dt.datetime(2026, 1, 1)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

#: Task statuses that occupy a concurrency slot.
ACTIVE = frozenset("QIOR")
#: The next status of a task that progresses normally.
NEXT_STEP: Mapping[str, str] = {"Q": "I", "I": "O", "O": "R", "R": "D"}
#: The task-instance status an error outcome reports (spec §1.2).
INSTANCE_STATUS_OF: Mapping[str, str] = {"error": "E", "resource_error": "Z", "fatal": "F"}
#: Outcomes of one progress step of an active task.
OUTCOMES = ("step", "error", "resource_error", "fatal")
#: Commands the model answers: every command the protocol says an event answers (the machine
#: starts runs with ``RunStarted``, so the attach loads never come).
SERVER_COMMANDS: tuple[type, ...] = tuple(c for c, row in PROTOCOL.items() if row.answered)

TasksByStatus = dict[str, tuple[int, ...]]


def server_time(at: float) -> str:
    """The server's ``"YYYY-MM-DD HH:MM:SS"`` string at model time ``at`` (1 s resolution)."""
    return (EPOCH + _dt.timedelta(seconds=int(at))).strftime(TIME_FORMAT)


def parse_server_time(value: str) -> int:
    """Whole seconds since the model epoch of a ``server_time`` string."""
    return int((_dt.datetime.strptime(value, TIME_FORMAT) - EPOCH).total_seconds())


def by_status(statuses: Iterable[tuple[int, str]]) -> TasksByStatus:
    """``{status: (task_id, ...)}`` from ``(task_id, status)`` pairs, in pair order."""
    out: dict[str, list[int]] = {}
    for task_id, status in statuses:
        out.setdefault(status, []).append(task_id)
    return {s: tuple(ids) for s, ids in out.items()}


class ModelServer:
    """The server side of one workflow run (see the module docstring)."""

    def __init__(
        self,
        spec: TopologySpec,
        rng: random.Random,
        *,
        run_status: str = "R",
        now: float = 0.0,
        heartbeat_increment: float = 93.0,
    ) -> None:
        self.rng = rng
        self.status: dict[int, str] = {t.task_id: t.status for t in spec.tasks}
        self.attempts: dict[int, int] = {t.task_id: (1 if t.status in ACTIVE else 0) for t in spec.tasks}
        self.max_attempts: dict[int, int] = {t.task_id: t.max_attempts for t in spec.tasks}
        self.status_date: dict[int, int] = {t.task_id: int(now) for t in spec.tasks}
        self.upstreams: dict[int, tuple[int, ...]] = {t.task_id: tuple(t.upstream_ids) for t in spec.tasks}
        self.array_of: dict[int, int] = {t.task_id: t.array_id for t in spec.tasks}
        self.task_order: tuple[int, ...] = tuple(t.task_id for t in spec.tasks)
        self.workflow_limit = spec.workflow_limit
        self.array_limits: dict[int, int] = {a.array_id: a.limit for a in spec.arrays}
        self.run_status = run_status
        self.heartbeat_date = now + heartbeat_increment
        #: Tasks whose instance was ordered to die (TI K); the distributor kills them next.
        self.killed: set[int] = set()
        #: Tasks left Q/I after ``terminate_task_instances`` failed their instance (quirk Q10).
        self.orphaned: set[int] = set()
        #: True once something other than the swarm changed the run status (resume, reaper).
        self.run_status_forced = False
        #: Every answer that carried statuses, oldest first (material for stale reports).
        self.history: list[TasksByStatus] = []
        #: Extra content mixed into the next ``task_status_updates`` answer, and where.
        self.stale_next: list[tuple[TasksByStatus, bool]] = []
        self.calls: dict[str, int] = {}
        #: ``(task, upstreams not DONE)`` for every task queued before all its upstreams were
        #: DONE (the server does not check; the swarm must not ask).
        self.early_starts: list[tuple[int, tuple[int, ...]]] = []
        self._next_resources_id = 1

    # --- queries ---------------------------------------------------------------------------

    def active_tasks(self) -> list[int]:
        """Tasks in Q/I/O/R that can still move (orphans stay put), in task order."""
        return [t for t in self.task_order if self.status[t] in ACTIVE and t not in self.orphaned]

    def active_count(self) -> int:
        return sum(1 for s in self.status.values() if s in ACTIVE)

    # --- task transitions ------------------------------------------------------------------

    def _set(self, task_id: int, status: str, now: float, bump: bool = True) -> None:
        self.status[task_id] = status
        if bump:
            self.status_date[task_id] = int(now)

    def queue_task_batch(self, task_ids: Sequence[int], now: float) -> TasksByStatus:
        """G/A -> Q with ``num_attempts + 1``; answer the current status of every id."""
        for task_id in task_ids:
            if self.status.get(task_id) in ("G", "A"):
                waiting = [u for u in self.upstreams[task_id] if self.status[u] != "D"]
                if waiting:
                    self.early_starts.append((task_id, tuple(waiting)))
                self._set(task_id, "Q", now)
                self.attempts[task_id] += 1
                self.orphaned.discard(task_id)
                self.killed.discard(task_id)
        answer = by_status((t, self.status[t]) for t in task_ids if t in self.status)
        self.history.append(answer)
        return answer

    def advance(self, task_id: int, outcome: str, now: float) -> str:
        """One progress step of an active task; returns its new status.

        ``outcome``: ``step`` (Q->I->O->R->D), ``error`` (a task-instance error: G, or F when
        attempts are exhausted), ``resource_error`` (A, or F), ``fatal`` (F). Errors need an
        instance past Q (the Task FSM has no Q->E); from Q they act as ``step``. A killed
        task (instance ordered to die) becomes F whatever the outcome.
        """
        status = self.status[task_id]
        if status not in ACTIVE or task_id in self.orphaned:
            return status
        if task_id in self.killed and status in ("O", "R"):
            self.killed.discard(task_id)
            self._set(task_id, "F", now)  # transition_to_killed
            return "F"
        if outcome == "step" or status == "Q":
            self._set(task_id, NEXT_STEP[status], now)
        else:  # the instance's error, then the task's final status, in one transaction
            _, final = task_after_instance(
                INSTANCE_STATUS_OF[outcome], self.attempts[task_id], self.max_attempts[task_id]
            )
            self._set(task_id, final, now)
        return self.status[task_id]

    def random_progress(self, now: float, p_step: float = 0.85, max_steps: int = 4) -> int:
        """Move every movable active task 1..``max_steps`` steps; return how many moved."""
        moved = 0
        for task_id in self.active_tasks():
            for _ in range(self.rng.randint(1, max_steps)):
                if self.status[task_id] not in ACTIVE:
                    break
                roll = self.rng.random()
                outcome = "step" if roll < p_step else self.rng.choice(OUTCOMES[1:])
                self.advance(task_id, outcome, now)
            moved += 1
        return moved

    def cli_set_status(self, task_id: int, status: str, now: float, bump: bool) -> None:
        """CLI ``update_statuses``: any status, ``status_date`` untouched unless ``bump``."""
        if status == "G":
            self.attempts[task_id] = 0
        self._set(task_id, status, now, bump=bump)

    # --- run status --------------------------------------------------------------------------

    def _transition_run(self, status: str) -> bool:
        """The run FSM (``shell/server/fsm.py``): True if ``status`` was entered."""
        if run_transition(self.run_status, status) == ACCEPTED:
            self.run_status = status
            return True
        return False

    def update_status(self, status: str) -> str:
        self._transition_run(status)
        return self.run_status

    def log_heartbeat(self, status: str, increment: float, now: float) -> str:
        """Attempt ``transition(status)``; extend ``heartbeat_date`` if it succeeded or was
        the untimely R->R."""
        verdict = run_transition(self.run_status, status)
        if verdict == ACCEPTED:
            self.run_status = status
        if verdict != REFUSED:
            self.heartbeat_date = now + increment
        return self.run_status

    def resume(self, kind: str) -> bool:
        """Another process resumes the workflow: the run goes to C (cold) or H (hot)."""
        if self.run_status in RUN_ACTIVE:
            self.run_status = kind
            self.run_status_forced = True
            return True
        return False

    def reap(self, now: float) -> str | None:
        """The reaper: a run whose ``heartbeat_date`` passed goes R -> E, C/H -> T."""
        if self.heartbeat_date > now:
            return None
        if self.run_status not in REAP or self.run_status == "L" or (
            self.run_status in ("C", "H") and self.killed
        ):
            return None
        self.run_status = REAP[self.run_status]
        self.run_status_forced = True
        return self.run_status

    def terminate_task_instances(self, now: float) -> int:
        """TI Q/I -> F (Task untouched, quirk Q10); TI O, and R unless HOT_RESUME -> K."""
        n = 0
        for task_id in self.task_order:
            s = self.status[task_id]
            if s in ("Q", "I"):
                self.orphaned.add(task_id)
                n += 1
            elif s == "O" or (s == "R" and self.run_status != "H"):
                self.killed.add(task_id)
                n += 1
        return n

    # --- sync --------------------------------------------------------------------------------

    def task_status_updates(self, since: str | None, now: float) -> tuple[TasksByStatus, str]:
        """Tasks with ``status_date >= since`` (every task if ``since`` is None), and ``time``."""
        if since is None:
            ids: Iterable[int] = self.task_order
        else:
            floor = parse_server_time(since)
            ids = [t for t in self.task_order if self.status_date[t] >= floor]
        answer = by_status((t, self.status[t]) for t in ids)
        self.history.append(answer)
        for extra, first in self.stale_next:
            answer = merge(extra, answer) if first else merge(answer, extra)
        self.stale_next = []
        return answer, server_time(now)

    def inject_stale(self, index: int, stale_first: bool) -> TasksByStatus:
        """Mix the ``index``-th past answer into the next ``task_status_updates`` answer.

        ``stale_first``: a task in both keeps its fresh status (the old report arrived
        first); otherwise the stale status wins (the old report arrived last).
        """
        extra = self.history[index % len(self.history)]
        self.stale_next.append((extra, stale_first))
        return extra

    def inject_phantom(self, task_id: int, status: str) -> None:
        """Report ``task_id`` in ``status`` once, next sync (e.g. a committed E, quirk Q1)."""
        self.stale_next.append(({status: (task_id,)}, False))

    def bind_resources(self) -> int:
        rid = self._next_resources_id
        self._next_resources_id += 1
        return rid

    # --- answering commands -----------------------------------------------------------------

    def answer(self, command: Command, now: float, evaluate: Any = None) -> Event:
        """The faithful answer to one server command at model time ``now``.

        ``evaluate(command) -> dict`` answers ``EvaluateResources`` (the shell's callables).
        """
        name = type(command).__name__
        self.calls[name] = self.calls.get(name, 0) + 1
        cid = command.command_id
        if isinstance(command, QueueBatch):
            return BatchQueued(cid, now, self.queue_task_batch(command.task_ids, now),
                               duration=0.01 * len(command.task_ids))
        if isinstance(command, BindResources):
            return ResourcesBound(cid, now, self.bind_resources())
        if isinstance(command, EvaluateResources):
            values = evaluate(command) if evaluate is not None else {}
            return ResourcesEvaluated(cid, now, values)
        if isinstance(command, LogHeartbeat):
            return HeartbeatAcknowledged(
                cid, now, self.log_heartbeat(command.status, command.next_report_increment, now)
            )
        if isinstance(command, UpdateWorkflowRunStatus):
            return StatusUpdateAcknowledged(cid, now, self.update_status(command.status))
        if isinstance(command, RequestTriage):
            return TriageRequested(cid, now)
        if isinstance(command, FetchTaskStatuses):
            answer, time = self.task_status_updates(command.since, now)
            return TaskStatusesFetched(cid, now, answer, time)
        if isinstance(command, FetchWorkflowLimit):
            return WorkflowLimitFetched(cid, now, self.workflow_limit)
        if isinstance(command, FetchArrayLimit):
            return ArrayLimitFetched(cid, now, command.array_id, self.array_limits[command.array_id])
        if isinstance(command, TerminateTaskInstances):
            return TerminateAcknowledged(cid, now, self.terminate_task_instances(now))
        raise TypeError(f"the model server does not serve {name}")

    def fail(self, command: Command, now: float, applied: bool = False, error: str = "HTTP 503") -> Event:
        """A failed answer. ``applied``: the server carried the request out, then the answer
        was lost (only meaningful for requests that change the server)."""
        cid = command.command_id
        if applied and isinstance(command, QueueBatch):
            self.queue_task_batch(command.task_ids, now)
        elif applied and isinstance(command, UpdateWorkflowRunStatus):
            self.update_status(command.status)
        elif applied and isinstance(command, LogHeartbeat):
            self.log_heartbeat(command.status, command.next_report_increment, now)
        elif applied and isinstance(command, TerminateTaskInstances):
            self.terminate_task_instances(now)
        if isinstance(command, QueueBatch):
            return BatchQueueFailed(cid, now, error)
        if isinstance(command, BindResources):
            return ResourceBindFailed(cid, now, error)
        if isinstance(command, EvaluateResources):
            return ResourceEvaluationFailed(cid, now, "ValueError: callable raised")
        if isinstance(command, LogHeartbeat):
            return HeartbeatFailed(cid, now, error)
        if isinstance(command, UpdateWorkflowRunStatus):
            return StatusUpdateFailed(cid, now, error)
        if isinstance(command, RequestTriage | FetchTaskStatuses | FetchWorkflowLimit | FetchArrayLimit):
            return SyncPartFailed(cid, now, error)
        if isinstance(command, TerminateTaskInstances):
            return TerminateFailed(cid, now, error)
        raise TypeError(f"the model server does not serve {type(command).__name__}")


def merge(first: TasksByStatus, second: TasksByStatus) -> TasksByStatus:
    """Both answers in one ``tasks_by_status``; a task listed by both gets ``second``'s status."""
    in_second = {t for ids in second.values() for t in ids}
    out: dict[str, list[int]] = {}
    for status, ids in first.items():
        keep = [t for t in ids if t not in in_second]
        if keep:
            out.setdefault(status, []).extend(keep)
    for status, ids in second.items():
        out.setdefault(status, []).extend(ids)
    return {s: tuple(ids) for s, ids in out.items()}
