"""The core's transition tables: what may follow what, and how the core reacts.

Rules (the tables below are these rules as data; docs/transitions.md draws them):

1. **Run phases.** A run goes through ``new``, ``attaching``, ``starting``, ``running``,
   ``finalizing`` and ``done``. Every phase change is one entry ``(phase, trigger) -> phase``
   of ``PHASES`` and is made by ``advance(tx, trigger)``. A trigger with no entry for the
   current phase is a bug in the core, never the server's doing: it raises
   ``ProtocolViolation``. ``done`` has no way out; ``decide`` ignores every later event.
   - ``attach``: ``AttachStarted`` arrived; tasks and edges are loaded in chunks.
   - ``request_running``: the topology is built and the run is not RUNNING yet: ask for R.
   - ``enter_loop``: the run is RUNNING (already, or the server accepted R): main loop.
   - ``finalize``: the main loop ended; ask for the final status (or none after E/T/S).
   - ``abort``: timeout, dead distributor, stop, fail-fast, failed callable, refused start:
     ask for E or S. A stop while attaching or starting aborts too.
   - ``finish`` / ``fail``: the final answer came (``Finish`` / ``Fail``). ``fail`` also
     ends an attach whose loading failed, with no status update (nothing was started).

2. **Task statuses.** The server owns task statuses; the core accepts or refuses what it is
   told. ``ENTERED_FROM[new]`` is the set of statuses a task may leave for ``new``. A report
   of the status a task already has changes nothing. A report from a status outside the set
   is stale (out of order): it is not applied, and each report notes it once
   (``stale_report``). DONE and FATAL are left only for REGISTERING (a reset, spec §1.5):
   the server's task FSM has no other edge out of them. A code outside the table is not a
   status: it is not applied and is noted (``unknown_task_status``).

3. **Reactions.** After every status of a report is written (counts follow), each task that
   changed reacts once, by its final new status: ``REACTIONS[new](tx, indexes, olds)``. Only
   D, G and A react; other statuses only move counts. A G or A task reported again, unchanged,
   while it sits in no queue, batch or evaluation is put back by ``HEALS[status]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from swarmfold.core.errors import ProtocolViolation
from swarmfold.core.readiness import (
    enqueue,
    make_adjusted_ready,
    make_ready,
    propagate_done_all,
    ready_eligible,
    retract_done,
)
from swarmfold.core.state import (
    ATTACHING,
    DONE,
    FINALIZING,
    NEW,
    NOWHERE,
    RUNNING,
    STARTING,
    Tx,
)

# --- 1. run phases -----------------------------------------------------------------------
ATTACH = "attach"
REQUEST_RUNNING = "request_running"
ENTER_LOOP = "enter_loop"
FINALIZE = "finalize"
ABORT = "abort"
FINISH = "finish"
FAIL = "fail"

#: Every phase, in the order a run meets them.
PHASE_ORDER: tuple[str, ...] = (NEW, ATTACHING, STARTING, RUNNING, FINALIZING, DONE)

#: ``(phase, trigger) -> next phase``; anything missing is a ``ProtocolViolation``.
PHASES: Mapping[tuple[str, str], str] = {
    (NEW, ATTACH): ATTACHING,
    (NEW, REQUEST_RUNNING): STARTING,
    (NEW, ENTER_LOOP): RUNNING,
    (ATTACHING, REQUEST_RUNNING): STARTING,
    (ATTACHING, ENTER_LOOP): RUNNING,
    (ATTACHING, ABORT): FINALIZING,
    (ATTACHING, FAIL): DONE,
    (STARTING, ENTER_LOOP): RUNNING,
    (STARTING, ABORT): FINALIZING,
    (RUNNING, FINALIZE): FINALIZING,
    (RUNNING, ABORT): FINALIZING,
    (FINALIZING, FINISH): DONE,
    (FINALIZING, FAIL): DONE,
}


def next_phase(phase: str, trigger: str) -> str:
    """The phase ``trigger`` leads to from ``phase``; ``ProtocolViolation`` if none."""
    target = PHASES.get((phase, trigger))
    if target is None:
        allowed = sorted(t for (p, t) in PHASES if p == phase)
        raise ProtocolViolation(
            f"run phase {phase!r} has no transition on {trigger!r} (allowed: {allowed})"
        )
    return target


def advance(tx: Tx, trigger: str) -> None:
    """Move the run to its next phase by the table (the only way ``phase`` changes)."""
    tx.phase = next_phase(tx.phase, trigger)


# --- 2. task statuses --------------------------------------------------------------------
#: Task statuses in the order the diagrams list them (spec §1.1).
STATUS_ORDER: tuple[str, ...] = ("G", "Q", "I", "O", "R", "E", "A", "D", "F")

_LIVE = frozenset("GQIOREA")  # every status but the final D and F

#: ``new status -> statuses a report may move a task from``.
ENTERED_FROM: Mapping[str, frozenset[str]] = {
    "G": (_LIVE | frozenset("DF")) - {"G"},  # a reset out of DONE or FATAL too
    "Q": _LIVE - {"Q"},
    "I": _LIVE - {"I"},
    "O": _LIVE - {"O"},
    "R": _LIVE - {"R"},
    "E": _LIVE - {"E"},
    "A": _LIVE - {"A"},
    "D": _LIVE,
    "F": _LIVE,
}


def accepts(old: str, new: str) -> bool:
    """Whether a report may move a task from ``old`` to ``new`` (False for unknown codes)."""
    allowed = ENTERED_FROM.get(new)
    return allowed is not None and old in allowed


# --- 3. reactions to a new status ----------------------------------------------------------
Reaction = Callable[[Tx, list[int], list[str]], None]


def _react_done(tx: Tx, indexes: list[int], olds: list[str]) -> None:
    """Counts one execution each; each downstream counts one more DONE upstream and is queued
    when all are DONE."""
    tx.n_executions += len(indexes)
    propagate_done_all(tx, indexes)


def _react_registering(tx: Tx, indexes: list[int], olds: list[str]) -> None:
    """A reset out of DONE takes its count back from downstreams; a task with every upstream
    DONE that sits nowhere is made ready (back of the queue)."""
    place = tx.place
    for i, old in zip(indexes, olds, strict=True):
        if old == "D":
            retract_done(tx, i)
        if place[i] == NOWHERE and ready_eligible(tx, i):
            make_ready(tx, i)


def _react_adjusting(tx: Tx, indexes: list[int], olds: list[str]) -> None:
    """Scales the task's resources (retry); queued at the front once every upstream is DONE."""
    place = tx.place
    for i in indexes:
        if place[i] == NOWHERE:
            make_adjusted_ready(tx, i)


#: ``new status -> reaction``; a status not listed has no reaction beyond the counts.
REACTIONS: Mapping[str, Reaction] = {
    "D": _react_done,
    "G": _react_registering,
    "A": _react_adjusting,
}


def _heal_registering(tx: Tx, index: int) -> None:
    """Made ready again (back of the queue) when every upstream is DONE."""
    if ready_eligible(tx, index):
        make_ready(tx, index)


def _heal_adjusting(tx: Tx, index: int) -> None:
    """Queued again at the front (already scaled) when every upstream is DONE."""
    if ready_eligible(tx, index):
        enqueue(tx, index, front=True)


#: ``status -> what an unchanged report does to a task of that status sitting nowhere``.
HEALS: Mapping[str, Callable[[Tx, int], None]] = {
    "G": _heal_registering,
    "A": _heal_adjusting,
}


# --- diagrams ----------------------------------------------------------------------------


def render_phase_diagram() -> str:
    """The phase table as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", f"    [*] --> {NEW}"]
    for phase in PHASE_ORDER:
        for (source, trigger), target in PHASES.items():
            if source == phase:
                lines.append(f"    {source} --> {target}: {trigger}")
    lines.append(f"    {DONE} --> [*]")
    return "\n".join(lines) + "\n"


def render_status_diagram() -> str:
    """The task-status acceptance table as a Mermaid flowchart (one edge per accepted move)."""
    lines = ["flowchart LR"]
    for old in STATUS_ORDER:
        targets = [new for new in STATUS_ORDER if old in ENTERED_FROM[new]]
        lines.append(f"    {old} --> {' & '.join(targets)}")
    return "\n".join(lines) + "\n"


def render_status_matrix() -> str:
    """The acceptance table as a Markdown matrix: rows ``from``, columns ``to``."""
    head = "| from \\ to | " + " | ".join(STATUS_ORDER) + " |"
    rule = "|---|" + "---|" * len(STATUS_ORDER)
    rows = [head, rule]
    for old in STATUS_ORDER:
        cells = [
            "=" if old == new else ("yes" if old in ENTERED_FROM[new] else "stale")
            for new in STATUS_ORDER
        ]
        rows.append(f"| **{old}** | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def render_reactions() -> str:
    """The reaction and heal tables as a Markdown table (from the functions' docstrings)."""
    rows = ["| new status | reaction when it changed | when reported again, unchanged, sitting nowhere |",
            "|---|---|---|"]
    for code in STATUS_ORDER:
        react = REACTIONS.get(code)
        heal = HEALS.get(code)
        rows.append(
            f"| {code} | {_doc(react) if react else 'counts only'} | {_doc(heal) if heal else 'nothing'} |"
        )
    return "\n".join(rows) + "\n"


def _doc(fn: Callable[..., None]) -> str:
    return " ".join((fn.__doc__ or "").split())
