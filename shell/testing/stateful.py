"""The swarm's Hypothesis state machine: the pure core against a model Jobmon server, with faults.

``SwarmMachine`` starts a run of a random small DAG (``RunStarted(run_status='R')``) and
keeps the commands that await an answer. Its rules answer them in any order, fail them,
move the clock and fire the timer, move tasks forward on the server's model (launches,
completions, recoverable errors, resource errors, fatal errors, lost workers, through
``ModelServer.advance``), change limits, mix stale reports into later answers, send a resume
signal, and so on.

After every ``decide`` it checks:

- ``check_state(state) == []`` and ``check_commands(prev, commands, state) == []``
  (``swarmfold.core.invariants``), and ``lost_tasks(state) == []``: a G task with every
  upstream DONE, or an A task, is queued, in flight or being evaluated;
- purity: deciding the same ``(state, event)`` twice gives equal states and commands, and the
  input state is unchanged;
- against the model: command ids increase; every ``WakeAt`` lies in the future (no busy
  loop); a task is never in two unanswered batches; a sync never starts while a batch or a
  binding is unanswered (spec §9.3); an incremental status fetch asks ``since`` the time of
  the last status answer (no gap, spec §7); after a Finish/Fail the core ignores every event; while
  the swarm's view is exact (no stale report, phantom, reset or lost answer injected), every
  queued task is G/A on the server with every upstream DONE there, and the server's active
  tasks plus the tasks of unanswered batches stay within the limits the swarm knows.

Each run enables a random subset of the fault kinds (swarm testing). Known core bugs
(``KNOWN_CORE_BUGS``) are tolerated, and pinned by strict-xfail regression tests at the end.

Liveness, at teardown: faults stop, every command is answered faithfully and the clock
jumps to each ``WakeAt``; the run must end with Finish/Fail within ``LIVENESS_BUDGET``
events, without stalling or letting its heartbeat lapse, for a reason the injected faults
explain, and, when the server kept the run RUNNING, with every task DONE or FATAL or blocked
behind a FATAL upstream, and (when no fault can hide it) the summary equal to the server's
statuses.

Run it on your own workflows and configurations with ``swarm_machine``::

    from hypothesis import strategies as st
    from swarmfold.testing import swarm_machine
    from swarmfold.core import SwarmConfig

    TestMine = swarm_machine(configs=st.just(SwarmConfig(heartbeat_interval=5.0))).TestCase
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from typing import Any

import attrs
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from swarmfold.core import SwarmConfig, decide, initial_state
from swarmfold.core.commands import (
    BindResources,
    Command,
    EvaluateResources,
    Fail,
    FetchTaskStatuses,
    Finish,
    NoteAnomaly,
    QueueBatch,
    WakeAt,
)
from swarmfold.core.decide import Decision
from swarmfold.core.events import (
    DistributorDied,
    Event,
    RunStarted,
    StopRequested,
    TaskStatusesFetched,
    TimerFired,
)
from swarmfold.core.invariants import check_commands, check_state, lost_tasks
from swarmfold.core.state import DONE, SwarmState
from swarmfold.core.topology import TopologySpec
from swarmfold.testing.liveness import drive_to_end, verdict
from swarmfold.testing.model_server import SERVER_COMMANDS, ModelServer, server_time
from swarmfold.testing.strategies import configs, evaluate, topologies

__all__ = ["FAULT_KINDS", "SwarmMachine", "swarm_machine"]

#: Faults after which the swarm's view of the server may be wrong for a while.
INEXACT_VIEW = frozenset({"stale", "phantom", "lost_batch_answer", "cli_reset", "cli_reset_hidden"})
#: Known core bugs, reported to the core's owner, each with a strict-xfail regression test
#: below. Messages they produce are tolerated here (so the search goes on past them) unless
#: ``SWARMFOLD_STRICT_PROPERTIES=1``. Remove an entry once its regression test passes.
#: (None open: the two ADJUSTING_RESOURCES bugs found here are fixed.)
KNOWN_CORE_BUGS: dict[str, re.Pattern[str]] = {}
STRICT = os.environ.get("SWARMFOLD_STRICT_PROPERTIES") == "1"
#: Fault kinds; each run enables a random subset (swarm testing, as TigerBeetle's VOPR).
FAULT_KINDS = (
    "fail", "callable_fails", "duplicate", "limits", "stale", "phantom", "cli_reset", "resume",
    "reaper", "stop", "distributor",
)
#: Outcomes of ``progress_one`` (``ModelServer.advance``), mostly a step forward.
PROGRESS = ("step", "step", "step", "error", "resource_error", "fatal", "lost")
#: Keep this many answered events for duplicate answers.
KEEP_ANSWERED = 16


def _fingerprint(state: SwarmState) -> tuple[str, ...]:
    """A deep, plain copy of every field but the shared topology (to detect mutation)."""
    return tuple(
        repr(getattr(state, a.name))
        for a in attrs.fields(SwarmState)
        if a.name != "topology"
    )


def _same_state(a: SwarmState, b: SwarmState) -> bool:
    """Equal states; a topology built twice from one spec counts as the same (it compares by
    identity otherwise)."""
    if a == b:
        return True
    ta, tb = a.topology, b.topology
    if ta is None or tb is None or ta is tb:
        return False
    same_topology = all(getattr(ta, f.name) == getattr(tb, f.name) for f in attrs.fields(type(ta)))
    return same_topology and _fingerprint(a) == _fingerprint(b)


class SwarmMachine(RuleBasedStateMachine):
    """The core under random answers, orders, clock moves and faults (see the module doc)."""

    #: Where the machine draws its workflows and configurations (``swarm_machine`` sets them).
    topology_strategy: st.SearchStrategy[TopologySpec] = topologies()
    config_strategy: st.SearchStrategy[SwarmConfig] = configs

    def __init__(self) -> None:
        super().__init__()
        self.state: SwarmState = initial_state()
        self.server: ModelServer | None = None
        self.spec: TopologySpec | None = None
        self.config = SwarmConfig()
        self.now = 0.0
        #: Commands awaiting an answer, in the order they were issued.
        self.outstanding: dict[int, Command] = {}
        self.answered: list[Event] = []
        self.wake: WakeAt | None = None
        self.outcome: Finish | Fail | None = None
        self.last_command_id = 0
        self.anomalies: Counter[str] = Counter()
        self.faults: set[str] = set()
        self.enabled: frozenset[str] = frozenset()
        self.known_bugs_seen: set[str] = set()
        #: A stale/phantom status answer was applied and no faithful full sync followed.
        self.distorted = False
        #: The server time of the last status answer the swarm applied (its ``last_sync``).
        self.last_sync: str | None = None
        self.events = 0
        self.broken = False
        self.check_purity = True
        #: A CLI reset happened and no status answer reached the swarm since: it may end
        #: without ever learning of it (as Jobmon's swarm does when every task was already final).
        self.resets_unseen = False

    # --- plumbing --------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def srv(self) -> ModelServer:
        assert self.server is not None
        return self.server

    def _fail(self, problems: list[str], event: Event) -> None:
        self.broken = True
        raise AssertionError(f"after {type(event).__name__} at t={event.at}:\n  " + "\n  ".join(problems))

    def feed(self, event: Event) -> Decision:
        """Decide one event and check every invariant on the way."""
        prev = self.state
        problems: list[str] = []
        self.broken = True  # until every check passed (teardown skips liveness on a failure)
        if self.check_purity:
            snapshot = _fingerprint(prev)
            d = decide(prev, event)
            again = decide(prev, event)
            if _fingerprint(prev) != snapshot:
                problems.append("purity: decide modified its input state")
            if not _same_state(d.state, again.state):
                problems.append("purity: the same (state, event) gave two different states")
            if d.commands != again.commands:
                problems.append("purity: the same (state, event) gave two different command lists")
        else:
            d = decide(prev, event)
        self.events += 1
        problems.extend(check_state(d.state))
        problems.extend(check_commands(prev, d.commands, d.state))
        problems.extend(self._model_checks(prev, event, d))
        if problems and not STRICT:
            problems = self._tolerate_known_bugs(problems)
        if problems:
            self._fail(problems, event)
        self.broken = False
        self.state = d.state
        self._absorb(d.commands)
        return d

    def _tolerate_known_bugs(self, problems: list[str]) -> list[str]:
        left = []
        for p in problems:
            bug = next((name for name, pattern in KNOWN_CORE_BUGS.items() if pattern.search(p)), None)
            if bug is None:
                left.append(p)
            elif bug not in self.known_bugs_seen:
                self.known_bugs_seen.add(bug)
                note(f"known core bug {bug}: {p}")
        return left

    def _model_checks(self, prev: SwarmState, event: Event, d: Decision) -> list[str]:
        problems: list[str] = []
        if prev.phase == DONE and (d.state is not prev or d.commands):
            problems.append("an event after Finish/Fail changed the state or produced commands")
        last = self.last_command_id
        for c in d.commands:
            if c.command_id <= last:
                problems.append(f"command id {c.command_id} after {last}")
            last = c.command_id
            if isinstance(c, WakeAt) and c.at <= event.at:
                problems.append(f"WakeAt({c.at}) is not after the event's time {event.at}: busy loop")
            if isinstance(c, Finish | Fail) and c is not d.commands[-1]:
                problems.append(f"commands after {type(c).__name__}")
        for c in d.commands:
            if isinstance(c, FetchTaskStatuses) and c.since not in (None, self.last_sync):
                problems.append(f"status fetch since {c.since!r}, but the last answered time was "
                                f"{self.last_sync!r} (a gap or a repeat, spec §7)")
        if any(isinstance(c, FetchTaskStatuses) for c in d.commands):
            busy = sorted(
                cid for cid, c in self.outstanding.items() if isinstance(c, QueueBatch | BindResources)
            )
            if busy:
                problems.append(f"a sync started while batch/bind commands {busy} are unanswered (spec §9.3)")
        problems.extend(lost_tasks(d.state))
        batches = [c for c in d.commands if isinstance(c, QueueBatch)]
        if batches:
            problems.extend(self._batch_checks(d.state, batches))
        return problems

    def _batch_checks(self, state: SwarmState, batches: list[QueueBatch]) -> list[str]:
        problems: list[str] = []
        unanswered = {
            t: cid for cid, c in self.outstanding.items() if isinstance(c, QueueBatch) for t in c.task_ids
        }
        for c in batches:
            for t in c.task_ids:
                if t in unanswered:
                    problems.append(f"task {t} queued by {c.command_id} while batch {unanswered[t]} "
                                    "is unanswered")
        if self.faults & INEXACT_VIEW:
            return problems
        server = self.srv
        status = server.status
        queued = {t for c in batches for t in c.task_ids}
        for t in sorted(queued):
            if status[t] not in ("G", "A"):
                problems.append(f"task {t} queued while the server holds it {status[t]}")
        in_flight = set(unanswered) | queued
        busy = {t for t, s in status.items() if s in "QIOR"} | in_flight
        if len(busy) > state.workflow_limit:
            problems.append(f"server active + unanswered batches = {len(busy)} > known workflow limit "
                            f"{state.workflow_limit}")
        by_array = Counter(server.array_of[t] for t in busy)
        for c in batches:
            limit = state.array_limits.get(c.array_id, 0)
            if by_array[c.array_id] > limit:
                problems.append(f"array {c.array_id}: server active + unanswered batches = "
                                f"{by_array[c.array_id]} > known limit {limit}")
        return problems

    def _absorb(self, commands: tuple[Command, ...]) -> None:
        for c in commands:
            self.last_command_id = c.command_id
            if isinstance(c, WakeAt):
                self.wake = c
            elif isinstance(c, NoteAnomaly):
                self.anomalies[c.kind] += 1
            elif isinstance(c, Finish | Fail):
                self.outcome = c
                note(f"-> {type(c).__name__}: {c.summary.final_status} ({c.summary.reason})")
            elif isinstance(c, SERVER_COMMANDS):
                self.outstanding[c.command_id] = c
            else:
                raise AssertionError(f"unexpected command in a RunStarted run: {c!r}")

    def answer(self, command_id: int) -> None:
        command = self.outstanding.pop(command_id)
        if isinstance(command, FetchTaskStatuses):
            if self.srv.stale_next:
                self.distorted = True  # this answer carries stale or phantom content
            elif command.since is None:
                self.distorted = False  # a faithful full sync: the swarm's view is exact again
        early = len(self.srv.early_starts)
        event = self.srv.answer(command, self.now, evaluate)
        if len(self.srv.early_starts) > early and not self.faults & INEXACT_VIEW:
            self.broken = True
            raise AssertionError(f"the server queued tasks before their upstreams were DONE "
                                 f"(task, upstreams): {self.srv.early_starts[early:]}")
        if isinstance(event, TaskStatusesFetched) and not self.done:
            self.last_sync = event.server_time
            self.resets_unseen = False
        self.answered = [*self.answered[-KEEP_ANSWERED + 1:], event]
        self.feed(event)

    def fire(self) -> None:
        assert self.wake is not None
        self.now = max(self.now, self.wake.at)
        wake, self.wake = self.wake, None
        self.feed(TimerFired(self.now, wake.command_id))

    # --- start --------------------------------------------------------------------------------

    @initialize(data=st.data(), seed=st.integers(0, 2**32 - 1),
                start=st.sampled_from([0.0, 59.5, 3599.25]),
                enabled=st.frozensets(st.sampled_from(FAULT_KINDS)))
    def start(self, data: st.DataObject, seed: int, start: float, enabled: frozenset[str]) -> None:
        spec = data.draw(self.topology_strategy, label="spec")
        config = data.draw(self.config_strategy, label="config")
        self.spec, self.config, self.now, self.enabled = spec, config, start, enabled
        self.server = ModelServer(spec, random.Random(seed), run_status="R", now=start,
                                  heartbeat_increment=config.next_report_increment,
                                  ti_report_increment=config.next_report_increment)
        note(f"{len(spec.tasks)} tasks, arrays {[(a.array_id, a.limit) for a in spec.arrays]}, "
             f"workflow limit {spec.workflow_limit}, statuses {[t.status for t in spec.tasks]}")
        note(f"edges {[(t.task_id, t.upstream_ids) for t in spec.tasks if t.upstream_ids]}")
        note(f"faults enabled: {sorted(enabled)}")
        self.last_sync = server_time(start)
        self.feed(RunStarted(at=start, workflow_id=1, workflow_run_id=1, topology=spec, config=config,
                             run_status="R", server_time=server_time(start)))

    # --- answering ----------------------------------------------------------------------------

    @precondition(lambda self: self.outstanding)
    @rule(data=st.data())
    def answer_one(self, data: st.DataObject) -> None:
        """Answer one unanswered command, chosen freely (answers arrive out of order)."""
        command_id = data.draw(st.sampled_from(sorted(self.outstanding)), label="command")
        note(f"t={self.now}: answer {self.outstanding[command_id]!r}")
        self.answer(command_id)

    @precondition(lambda self: self.outstanding)
    @rule()
    def answer_all(self) -> None:
        """Answer every command unanswered now, oldest first."""
        note(f"t={self.now}: answer all {sorted(self.outstanding)}")
        for command_id in list(self.outstanding):
            if command_id in self.outstanding:
                self.answer(command_id)

    @precondition(lambda self: "fail" in self.enabled and self.outstanding and not self.done)
    @rule(data=st.data(), applied=st.booleans())
    def answer_with_failure(self, data: st.DataObject, applied: bool) -> None:
        """A command fails (5xx, timeout); ``applied``: the server did it but the answer was lost."""
        command_id = data.draw(st.sampled_from(sorted(self.outstanding)), label="command")
        command = self.outstanding[command_id]
        if isinstance(command, EvaluateResources) and "callable_fails" not in self.enabled:
            return
        del self.outstanding[command_id]
        note(f"t={self.now}: FAIL {command!r} (applied={applied})")
        if isinstance(command, QueueBatch) and applied:
            self.faults.add("lost_batch_answer")
        kind = type(command).__name__
        if kind == "UpdateWorkflowRunStatus":
            self.faults.add("status_update_failed")
        if kind == "EvaluateResources":
            self.faults.add("evaluation_failed")
        self.feed(self.srv.fail(command, self.now, applied=applied))

    @precondition(lambda self: "duplicate" in self.enabled and self.answered)
    @rule(data=st.data())
    def duplicate_answer(self, data: st.DataObject) -> None:
        """An answer arrives a second time (a retried request): the core notes and ignores it."""
        event = data.draw(st.sampled_from(self.answered), label="answer")
        note(f"t={self.now}: duplicate {type(event).__name__} for {event.command_id}")  # type: ignore[union-attr]
        was_done = self.done
        before = self.anomalies["unexpected_answer"]
        self.feed(attrs.evolve(event, at=self.now))
        if not was_done:
            assert self.anomalies["unexpected_answer"] == before + 1

    # --- time ---------------------------------------------------------------------------------

    @precondition(lambda self: self.wake is not None and not self.done)
    @rule()
    def fire_timer(self) -> None:
        assert self.wake is not None
        note(f"timer: t={self.now} -> {max(self.now, self.wake.at)}")
        self.fire()

    @rule(dt=st.sampled_from([0.25, 1.0, 2.5]))
    def advance_clock(self, dt: float) -> None:
        self.now += dt

    # --- the server moves -----------------------------------------------------------------------

    @precondition(lambda self: not self.done and self.srv.active_tasks())
    @rule(data=st.data(), outcome=st.sampled_from(PROGRESS))
    def progress_one(self, data: st.DataObject, outcome: str) -> None:
        """One task moves on: a step forward, an error (recoverable, resource, fatal), or its
        worker is lost."""
        task_id = data.draw(st.sampled_from(self.srv.active_tasks()), label="task")
        old = self.srv.status[task_id]
        new = self.srv.advance(task_id, outcome, self.now)
        note(f"server t={self.now}: task {task_id} {old} -> {new} ({outcome})")

    @precondition(lambda self: not self.done and self.srv.active_tasks())
    @rule()
    def progress_all(self) -> None:
        for task_id in self.srv.active_tasks():
            self.srv.advance(task_id, "step", self.now)
        counts = dict(Counter(self.srv.status.values()))
        note(f"server t={self.now}: every active task one step; now {counts}")

    @precondition(lambda self: "limits" in self.enabled and not self.done)
    @rule(workflow=st.none() | st.integers(1, 10), array=st.integers(0, 3),
          limit=st.none() | st.integers(1, 10))
    def change_limits(self, workflow: int | None, array: int, limit: int | None) -> None:
        server = self.srv
        if workflow is not None:
            server.set_workflow_limit(workflow)
        arrays = sorted(server.array_limits)
        if limit is not None:
            server.set_array_limit(arrays[array % len(arrays)], limit)
        note(f"server limits: workflow {server.workflow_limit}, arrays {dict(server.array_limits)}")

    @precondition(lambda self: "stale" in self.enabled and not self.done and self.srv.history)
    @rule(index=st.integers(0, 50), stale_first=st.booleans())
    def stale_report(self, index: int, stale_first: bool) -> None:
        """A past answer's content is delivered again with the next status fetch."""
        extra = self.srv.inject_stale(index, stale_first)
        self.faults.add("stale")
        note(f"server: next status answer also carries old {extra} (fresh wins: {stale_first})")

    @precondition(lambda self: "phantom" in self.enabled and not self.done)
    @rule(data=st.data())
    def phantom_error(self, data: st.DataObject) -> None:
        """A sync reports a task in ERROR_RECOVERABLE once (quirk Q1)."""
        task_id = data.draw(st.sampled_from(sorted(self.srv.status)), label="task")
        self.srv.inject_phantom(task_id, "E")
        self.faults.add("phantom")
        note(f"server: next status answer reports task {task_id} as E")

    @precondition(
        lambda self: "cli_reset" in self.enabled and not self.done and "D" in self.srv.status.values()
    )
    @rule(data=st.data(), bump=st.booleans())
    def cli_reset(self, data: st.DataObject, bump: bool) -> None:
        """CLI ``update_statuses`` sets a DONE task back to G (status_date bumped or not, Q13)."""
        status = self.srv.status
        done = sorted(t for t, s in status.items() if s == "D")
        # Prefer a task whose downstreams are not all final: that reset matters to the swarm.
        assert self.spec is not None
        waiting = {u for t in self.spec.tasks if status[t.task_id] not in "DF" for u in t.upstream_ids}
        task_id = data.draw(st.sampled_from(sorted(set(done) & waiting) or done), label="task")
        self.srv.cli_set_status(task_id, "G", self.now, bump)
        self.faults.add("cli_reset" if bump else "cli_reset_hidden")
        self.resets_unseen = True  # until a status answer has told the swarm
        note(f"server: CLI resets task {task_id} D -> G (status_date bumped: {bump})")

    @precondition(lambda self: "resume" in self.enabled and not self.done)
    @rule(kind=st.sampled_from("CH"), roll=st.integers(0, 3))
    def resume_signal(self, kind: str, roll: int) -> None:
        """Another process resumes the workflow: the run goes COLD/HOT_RESUME."""
        if roll == 3 and self.srv.resume(kind):
            self.faults.add("run_status_forced")
            note(f"server: run -> {kind}")

    @precondition(lambda self: "reaper" in self.enabled and not self.done)
    @rule()
    def reaper(self) -> None:
        if self.srv.reap(self.now):
            self.faults.add("run_status_forced")
            note(f"server: reaper sets the run {self.srv.run_status}")

    @precondition(lambda self: "stop" in self.enabled and not self.done)
    @rule(roll=st.integers(0, 7))
    def user_stops(self, roll: int) -> None:
        if roll == 7:
            self.faults.add("stop")
            note("user stops the run")
            self.feed(StopRequested(self.now, "ctrl-c"))

    @precondition(lambda self: "distributor" in self.enabled and not self.done)
    @rule(roll=st.integers(0, 7))
    def distributor_dies(self, roll: int) -> None:
        if roll == 7:
            self.faults.add("distributor_died")
            note("distributor dies")
            self.feed(DistributorDied(self.now, "exit 1"))

    @invariant()
    def state_is_consistent(self) -> None:
        problems = check_state(self.state)
        if problems and not STRICT:
            problems = self._tolerate_known_bugs(problems)
        assert problems == []

    def teardown(self) -> None:
        """Liveness, then the verdict (``liveness.py``), unless a check already failed."""
        if self.broken or self.server is None:
            return
        drive_to_end(self)
        verdict(self)


def swarm_machine(
    topologies: st.SearchStrategy[TopologySpec] | None = None,
    configs: st.SearchStrategy[SwarmConfig] | None = None,
) -> type[SwarmMachine]:
    """A ``SwarmMachine`` drawing its workflows and configurations from these strategies
    (each defaults to the bundled one). Use ``swarm_machine(...).TestCase`` as a test."""
    attributes: dict[str, Any] = {}
    if topologies is not None:
        attributes["topology_strategy"] = topologies
    if configs is not None:
        attributes["config_strategy"] = configs
    return type("CustomSwarmMachine", (SwarmMachine,), attributes)
