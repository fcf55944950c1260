"""The Hypothesis machine's Jobmon server: the one server model under a property-test driver.

All server state lives in ``model``, a ``ServerModel`` (``shell/server/model.py`` with its
mixins ``cluster_side.py`` and ``resume.py``), the model the simulator and ``serve`` use, and
every answer to a swarm command is the model's own, from ``answer_command``
(``shell/server/in_process.py``). So tasks, task instances, attempts, status dates, the run
status, its heartbeat date and the limits follow ``shell/server/fsm.py`` exactly as in every
other fake server (spec §1.5; see ``docs/server-model.md``).

``ModelServer`` adds only what is specific to property testing:

- a *driver*: what happens next to a task is the caller's choice (``advance``), carried out
  through the model's cluster-side routes: a step forward is the distributor's launch
  (``instantiate_and_launch`` of that one instance), the worker's ``log_running`` or
  ``log_done``; ``error``, ``resource_error`` and ``fatal`` are ``log_error`` with the
  instance status E, Z or F; ``lost`` is ``worker_lost`` (the instance is triaged by the
  swarm's ``RequestTriage`` once its report-by date passed). An instance ordered to die (K)
  or triaged (T) moves by the distributor's pass (``transition_to_killed``,
  ``resolve_triaged``). ``random_progress`` draws these choices from the ``random.Random``
  given at construction; the server draws nothing on its own;
- *faults*, applied when the caller asks: failed answers (``fail``, optionally after the
  model carried the request out), stale or phantom content mixed into the next status answer
  (``inject_stale``, ``inject_phantom``), CLI status changes with or without a
  ``status_date`` bump (``cli_set_status``, quirk Q13), resume signals C/H (``resume``) and
  the reaper (``reap``). Which command is answered when, twice or late, is the caller's
  choice;
- bookkeeping for the machine's checks: ``history`` of answers carrying statuses,
  ``early_starts`` (tasks queued before their upstreams were DONE on the server), ``calls``.

Tasks the topology starts active (R after a resume) get one live instance each
(``ServerModel.adopt_active_tasks``), so they can finish or fail like any other.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from swarmfold.core.commands import (
    Command,
    EvaluateResources,
    FetchTaskStatuses,
    QueueBatch,
)
from swarmfold.core.events import (
    BatchQueued,
    Event,
    ResourceEvaluationFailed,
    ResourcesEvaluated,
    TaskStatusesFetched,
)
from swarmfold.core.protocol import PROTOCOL, failure_event
from swarmfold.core.statuses import ACTIVE
from swarmfold.core.topology import TopologySpec, build_topology
from swarmfold.shell.server.in_process import ANSWERED_IN_PROCESS, UnservedCommand, answer_command
from swarmfold.shell.server.model import EPOCH, ServerModel, parse_server_time, server_time

__all__ = [
    "ACTIVE",
    "EPOCH",
    "INSTANCE_STATUS_OF",
    "OUTCOMES",
    "SERVER_COMMANDS",
    "ModelServer",
    "TasksByStatus",
    "by_status",
    "merge",
    "parse_server_time",
    "server_time",
]

#: The task-instance status each error outcome logs (spec §1.2).
INSTANCE_STATUS_OF: Mapping[str, str] = {"error": "E", "resource_error": "Z", "fatal": "F"}
#: Outcomes of one progress step of an active task (``advance``).
OUTCOMES = ("step", "error", "resource_error", "fatal", "lost")
#: Commands the machine awaits an answer to: every command the protocol says an event answers
#: (the machine starts runs with ``RunStarted``, so the attach loads never come).
SERVER_COMMANDS: tuple[type, ...] = tuple(c for c, row in PROTOCOL.items() if row.answered)
#: Instance statuses a driver step can move (X never occurs in the model).
_MOVABLE = frozenset("QIORKT")

TasksByStatus = dict[str, tuple[int, ...]]


def by_status(statuses: Iterable[tuple[int, str]]) -> TasksByStatus:
    """``{status: (task_id, ...)}`` from ``(task_id, status)`` pairs, in pair order."""
    out: dict[str, list[int]] = {}
    for task_id, status in statuses:
        out.setdefault(status, []).append(task_id)
    return {s: tuple(ids) for s, ids in out.items()}


def _plain(tasks_by_status: Mapping[str, Iterable[int]]) -> TasksByStatus:
    return {s: tuple(ids) for s, ids in tasks_by_status.items()}


class ModelServer:
    """A ``ServerModel`` of one workflow run, with a driver and faults (see the module doc)."""

    def __init__(
        self,
        spec: TopologySpec,
        rng: random.Random,
        *,
        run_status: str = "R",
        now: float = 0.0,
        heartbeat_increment: float = 93.0,
        ti_report_increment: float = 279.0,
    ) -> None:
        self.rng = rng
        self.model = ServerModel(
            build_topology(spec), run_status=run_status, heartbeat_increment=heartbeat_increment,
            ti_report_increment=ti_report_increment, now=now,
        )
        self.model.adopt_active_tasks(now)
        self.task_order: tuple[int, ...] = tuple(t.task_id for t in spec.tasks)
        self.upstreams: dict[int, tuple[int, ...]] = {t.task_id: tuple(t.upstream_ids) for t in spec.tasks}
        self.array_of: dict[int, int] = {t.task_id: t.array_id for t in spec.tasks}
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

    # --- views of the model -------------------------------------------------------------------

    @property
    def status(self) -> Mapping[int, str]:
        """Task id -> the task's status on the server (a fresh copy)."""
        return self.model.statuses_by_task()

    @property
    def attempts(self) -> dict[int, int]:
        """Task id -> ``num_attempts``."""
        return {t: int(n) for t, n in zip(self.model.task_ids, self.model.num_attempts, strict=True)}

    @property
    def run_status(self) -> str:
        return self.model.run_status

    @property
    def heartbeat_date(self) -> float:
        return self.model.heartbeat_date

    @property
    def workflow_limit(self) -> int:
        return self.model.get_max_concurrently_running()

    @property
    def array_limits(self) -> Mapping[int, int]:
        return MappingProxyType(self.model.array_limits)

    @property
    def killed(self) -> set[int]:
        """Tasks whose instance was ordered to die (K): the distributor kills them next."""
        return {int(self.model.task_ids[self.model.ti_task[ti]]) for ti in self.model.to_kill}

    @property
    def orphaned(self) -> set[int]:
        """Active tasks with no live instance: ``terminate_task_instances`` failed their
        queued instance and left the task Q (quirk Q10). They never move again."""
        m = self.model
        return {t for t in self.task_order
                if m.task_status(t) in ACTIVE and self._instance(t) is None}

    def active_tasks(self) -> list[int]:
        """Active tasks a driver step can move, in task order (orphans and lost workers
        waiting for triage stay put)."""
        return [t for t in self.task_order if self._movable(t) is not None]

    def active_count(self) -> int:
        return self.model.active_total

    def _instance(self, task_id: int) -> int | None:
        """The task's latest instance, if it is live."""
        m = self.model
        ti = int(m.latest_ti[m.index_of[task_id]])
        return ti if ti >= 0 and m.ti_status[ti] in _MOVABLE else None

    def _movable(self, task_id: int) -> int | None:
        """The instance a driver step of active task ``task_id`` moves, or None."""
        m = self.model
        if m.task_status(task_id) not in ACTIVE:
            return None
        ti = self._instance(task_id)
        if ti is None or (m.ti_status[ti] == "R" and ti in m.report_by):
            return None  # an orphan, or a lost worker: silent until triaged
        return ti

    # --- the driver: what happens next to a task -----------------------------------------------

    def advance(self, task_id: int, outcome: str, now: float) -> str:
        """One step of an active task through the model's cluster side; returns its status.

        ``outcome`` (one of ``OUTCOMES``): ``step`` launches a queued instance (Q -> O), runs
        a launched one (O -> R) or finishes a running one (R -> D); ``error``,
        ``resource_error`` and ``fatal`` log the instance error E, Z or F (the task goes G,
        A or F by its attempts, ``fsm.task_after_instance``); ``lost``: the worker of a
        running instance vanishes (``worker_lost``). An error needs a launched instance: on
        a queued one every outcome launches it, and ``lost`` before R runs it. An instance
        ordered to die (K) or triaged (T) moves by the distributor's pass whatever the
        outcome: killed (the task F) or resolved as an unknown error (U).
        """
        m = self.model
        ti = self._movable(task_id)
        if ti is not None:
            s = m.ti_status[ti]
            if s == "K":
                m.transition_to_killed(now)
            elif s == "T":
                m.resolve_triaged(now)
            elif s == "Q":
                m.instantiate_and_launch(now, only=(ti,))
            elif outcome in INSTANCE_STATUS_OF:
                m.log_error(ti, INSTANCE_STATUS_OF[outcome], now)
            elif outcome == "lost" and s == "R":
                m.worker_lost(ti, now)
            elif s == "R":
                m.log_done(ti, now)
            else:
                m.log_running(ti, now)
        return m.task_status(task_id)

    def random_progress(self, now: float, p_step: float = 0.85, max_steps: int = 4) -> int:
        """Move every movable active task 1..``max_steps`` steps; return how many moved."""
        moved = 0
        for task_id in self.active_tasks():
            for _ in range(self.rng.randint(1, max_steps)):
                if self._movable(task_id) is None:
                    break
                roll = self.rng.random()
                outcome = "step" if roll < p_step else self.rng.choice(OUTCOMES[1:])
                self.advance(task_id, outcome, now)
            moved += 1
        return moved

    # --- faults and outside actors ---------------------------------------------------------------

    def set_workflow_limit(self, limit: int) -> None:
        """The user changes the workflow's concurrency limit."""
        self.model.set_workflow_limit(limit)

    def set_array_limit(self, array_id: int, limit: int) -> None:
        """The user changes an array's concurrency limit."""
        self.model.set_array_limit(array_id, limit)

    def cli_set_status(self, task_id: int, status: str, now: float, bump: bool) -> None:
        """CLI ``update_statuses``: any status, ``status_date`` untouched unless ``bump``."""
        self.model.cli_update_statuses((task_id,), status, now, bump_status_date=bump)

    def resume(self, kind: str) -> bool:
        """Another process resumes the workflow (``set_resume``): an active run goes C (cold)
        or H (hot). True if it did."""
        if self.model.set_resume(reset_running_jobs=kind == "C"):
            self.run_status_forced = True
            return True
        return False

    def reap(self, now: float) -> str | None:
        """The reaper (``ServerModel.reap``): a run whose ``heartbeat_date`` passed goes R -> E,
        or C/H -> T once its instances are killed. Returns the new run status, or None."""
        if not self.model.reap(now):
            return None
        self.run_status_forced = True
        return self.model.run_status

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

    # --- the model's run routes, for callers that talk to the server directly ------------------

    def update_status(self, status: str, now: float = 0.0) -> str:
        """``update_status``: the run FSM decides; the held status is answered."""
        return self.model.update_status(status, now)

    def log_heartbeat(self, status: str, increment: float, now: float) -> str:
        """``log_heartbeat``: the run FSM decides; ``heartbeat_date`` moves unless refused."""
        return self.model.log_heartbeat(status, increment, now)

    # --- answering commands -----------------------------------------------------------------

    def _carry_out(self, command: Command, now: float) -> Event:
        """The model's answer (``answer_command``), with the machine's bookkeeping."""
        if isinstance(command, QueueBatch):
            m = self.model
            for task_id in command.task_ids:
                if task_id in self.upstreams and m.task_status(task_id) in ("G", "A"):
                    waiting = tuple(u for u in self.upstreams[task_id] if m.task_status(u) != "D")
                    if waiting:
                        self.early_starts.append((task_id, waiting))
            duration: float | None = 0.01 * len(command.task_ids)
        else:
            duration = None
        try:
            event = answer_command(self.model, command, now, duration)
        except UnservedCommand as exc:
            raise TypeError(str(exc)) from exc
        if isinstance(event, BatchQueued | TaskStatusesFetched):
            self.history.append(_plain(event.tasks_by_status))
        return event

    def answer(self, command: Command, now: float, evaluate: Any = None) -> Event:
        """The faithful answer to one command at model time ``now``, and the stale or phantom
        content injected for the next status answer.

        ``evaluate(command) -> dict`` answers ``EvaluateResources`` (the shell's callables).
        """
        name = type(command).__name__
        self.calls[name] = self.calls.get(name, 0) + 1
        if isinstance(command, EvaluateResources):
            values = evaluate(command) if evaluate is not None else {}
            return ResourcesEvaluated(command.command_id, now, values)
        event = self._carry_out(command, now)
        if isinstance(event, TaskStatusesFetched) and self.stale_next:
            mixed = self.history[-1]
            for extra, first in self.stale_next:
                mixed = merge(extra, mixed) if first else merge(mixed, extra)
            self.stale_next = []
            event = attrs.evolve(event, tasks_by_status=mixed)
        return event

    def fail(self, command: Command, now: float, applied: bool = False, error: str = "HTTP 503") -> Event:
        """A failed answer. ``applied``: the model carried the request out, then the answer
        was lost (meaningful for requests that change the server; a status fetch is read-only
        and leaves the injected content for the next answer)."""
        if isinstance(command, EvaluateResources):
            return ResourceEvaluationFailed(command.command_id, now, "ValueError: callable raised")
        if type(command) not in ANSWERED_IN_PROCESS:
            raise TypeError(f"the model server does not serve {type(command).__name__}")
        if applied and not isinstance(command, FetchTaskStatuses):
            self._carry_out(command, now)
        return failure_event(command, now, error)


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
