"""Jobmon 3.6's server-side state machines, as data (spec §1.5).

Every fake server of swarmfold (the simulator's model, ``serve``, the instant server of
``fold`` and the benchmark, the Hypothesis machine's server, the HTTP test stub) decides
status changes with these tables and nothing else:

- ``TASK``: the task FSM. Entering the same status is a no-op; any other pair not listed is
  refused (``InvalidStateTransition`` on the server). Raw bulk writes bypass it (``RAW_TASK``).
- ``TASK_INSTANCE`` and ``TASK_INSTANCE_UNTIMELY``: the task-instance FSM; an untimely pair is
  a race the server ignores silently. ``task_after_instance`` couples a new instance status to
  the task's (new, final) statuses.
- ``WORKFLOW_RUN`` and ``WORKFLOW_RUN_UNTIMELY``: the run FSM (``B -> R`` is not legal: the
  distributor moves the run ``B -> I -> O`` before the swarm asks for R). ``run_transition``
  classifies a request. ``REAP`` is what the reaper does to a run whose heartbeat lapsed.
- ``WORKFLOW`` and ``RUN_TO_WORKFLOW``: the workflow FSM and how a run's change moves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

__all__ = [
    "ACCEPTED",
    "REAP",
    "REFUSED",
    "RUN_ACTIVE",
    "RUN_ALIVE",
    "RUN_TO_WORKFLOW",
    "TASK",
    "TASK_INSTANCE",
    "TASK_INSTANCE_UNTIMELY",
    "TI_ERROR_STATES",
    "UNTIMELY",
    "WORKFLOW",
    "WORKFLOW_RUN",
    "WORKFLOW_RUN_UNTIMELY",
    "WORKFLOW_NOT_LINKABLE",
    "WORKFLOW_UNTIMELY",
    "RAW_TASK",
    "run_transition",
    "task_after_instance",
    "task_transition_allowed",
]


def _pairs(text: str) -> frozenset[tuple[str, str]]:
    """``"G->Q A->Q"`` -> ``{("G", "Q"), ("A", "Q")}``."""
    return frozenset((a, b) for a, _, b in (p.partition("->") for p in text.split()))


#: Task FSM (``SV/models/task.py``).
TASK = _pairs("G->Q A->Q Q->I I->O I->E O->R O->E I->R R->D R->E E->A E->Q E->F E->G")

#: Writes that set task statuses without the task FSM (``queue_task_batch``, the distributor's
#: bulk routes, ``set_resume_state``): ``route -> (from statuses, to status)``.
RAW_TASK: Mapping[str, tuple[frozenset[str], str]] = {
    "queue_task_batch": (frozenset("GA"), "Q"),
    "instantiate_task_instances": (frozenset("Q"), "I"),
    "transition_to_launched": (frozenset("I"), "O"),
    "transition_to_killed": (frozenset("OR"), "F"),
    "set_resume_state (reset_if_running)": (frozenset("QIORAEF"), "G"),
    "set_resume_state": (frozenset("QIOAEF"), "G"),
}

#: Task-instance FSM (``SV/models/task_instance.py``).
TASK_INSTANCE = _pairs(
    "Q->I Q->K I->O I->W I->K I->R O->R O->U O->X O->Z O->K O->F R->T R->E R->U R->Z R->K R->D "
    "T->R T->Z T->U T->F K->F K->D X->E"
)
#: Races the server ignores without an error.
TASK_INSTANCE_UNTIMELY = _pairs("R->O E->O E->U E->E U->D U->E U->Z Z->U D->U K->E K->Z K->U")
#: Task-instance statuses whose error makes the task retry or fail.
TI_ERROR_STATES = frozenset("WEUZ")

#: Workflow-run FSM (``SV/models/workflow_run.py``).
WORKFLOW_RUN = _pairs(
    "G->L L->B L->A B->I I->O O->R I->E O->E B->E B->C B->H R->D R->S R->C R->H R->E C->T H->T"
)
#: Untimely run requests: accepted as no-ops (a heartbeat still extends the run).
WORKFLOW_RUN_UNTIMELY = _pairs("R->R L->L")
#: Runs that hold their workflow (``WorkflowRun.is_alive``): while one exists the workflow is not
#: resumable and no new run links.
RUN_ALIVE = frozenset("LBRCH")
#: Runs ``set_resume`` moves to C (cold) or H (hot) (``WorkflowRun.is_active``).
RUN_ACTIVE = frozenset("BR")
#: Workflow statuses that refuse a new run (``Workflow.ready_to_link``).
WORKFLOW_NOT_LINKABLE = frozenset("QRD")
#: The reaper, on a run whose heartbeat lapsed: ``old -> new``.
REAP: Mapping[str, str] = {"L": "A", "C": "T", "H": "T", "R": "E"}

#: Workflow FSM (``SV/models/workflow.py``).
WORKFLOW = _pairs("G->Q G->A A->G F->G H->G Q->I Q->F I->O I->F O->F O->R R->H Q->H R->D R->F")
WORKFLOW_UNTIMELY = _pairs("G->G")
#: A run entering a status moves its workflow to this status.
RUN_TO_WORKFLOW: Mapping[str, str] = {
    "L": "G", "B": "Q", "A": "A", "R": "R", "D": "D", "T": "H", "S": "F", "E": "F", "I": "I", "O": "O",
}

ACCEPTED: Literal["accepted"] = "accepted"
UNTIMELY: Literal["untimely"] = "untimely"
REFUSED: Literal["refused"] = "refused"
RunVerdict = Literal["accepted", "untimely", "refused"]


def run_transition(old: str, new: str) -> RunVerdict:
    """What the server does with a request to move a run from ``old`` to ``new``: the run
    changes (``accepted``), nothing changes but the request succeeds (``untimely``: a heartbeat
    is still recorded), or the request is refused (the run keeps ``old``)."""
    pair = (old, new)
    if pair in WORKFLOW_RUN:
        return ACCEPTED
    if pair in WORKFLOW_RUN_UNTIMELY:
        return UNTIMELY
    return REFUSED


def task_transition_allowed(old: str, new: str) -> bool:
    """True when the task FSM lets a task go from ``old`` to ``new`` (same status: a no-op)."""
    return old == new or (old, new) in TASK


def task_after_instance(new_ti: str, num_attempts: int, max_attempts: int) -> tuple[str, str]:
    """The task's ``(new, final)`` statuses when one of its instances enters ``new_ti``."""
    if new_ti in TI_ERROR_STATES:
        if num_attempts >= max_attempts:
            return "E", "F"
        return ("E", "A") if new_ti == "Z" else ("E", "G")
    if new_ti == "F":
        return "E", "F"
    return new_ti, new_ti
