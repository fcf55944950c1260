"""The server side of a resume: Jobmon 3.6's routes that end one workflow run and start the next.

``resume_workflow_from_id`` (and ``swarmfold resume``) sends, in order: ``increase_resources``,
``set_resume`` (an active run goes C or H), ``is_resumable`` (polled until no run is alive),
``set_resume_state`` (tasks back to G), ``POST /workflow_run`` (a new run, L) and
``update_status B``. These functions give the server model's side of each, with the rules of
Jobmon's server (``SV/models/workflow.py``, ``SV/models/workflow_run.py``,
``RT/fsm/task.py: set_task_resume_state``, ``RT/fsm/workflow.py: increase_resources``) and the
tables of ``fsm.py``. The model keeps one current run; earlier runs keep their last status.
"""

from __future__ import annotations

import math
from typing import Any

from swarmfold.core.resources import Requested
from swarmfold.shell.server.fsm import RAW_TASK, RUN_ALIVE, RUN_TO_WORKFLOW, WORKFLOW_NOT_LINKABLE
from swarmfold.shell.server.model import ServerModel

__all__ = [
    "create_workflow_run",
    "increase_resources",
    "is_resumable",
    "pending_kill_self",
    "run_status_of",
    "set_resume_state",
]


def is_resumable(model: ServerModel) -> bool:
    """``Workflow.is_resumable``: no run of the workflow is alive (L, B, R, C or H)."""
    return model.run_status not in RUN_ALIVE


def pending_kill_self(model: ServerModel) -> int:
    """Task instances told to kill themselves that have not died yet (``is_resumable``'s count)."""
    return len(model.to_kill)


def run_status_of(model: ServerModel, workflow_run_id: int) -> str | None:
    """The status of run ``workflow_run_id`` (current or earlier); None for an unknown run."""
    if workflow_run_id == model.workflow_run_id:
        return model.run_status
    return model.past_runs.get(workflow_run_id)


def create_workflow_run(model: ServerModel, next_report_increment: float, now: float) -> dict[str, Any]:
    """``POST /workflow_run``: link a new run (status L) when the workflow is ready to link: no
    run alive and the workflow not QUEUED, RUNNING or DONE. Otherwise Jobmon answers 200 with
    ``workflow_run_id: null`` and an ``err_msg``."""
    workflow_id = model.workflow_id
    if not is_resumable(model):
        return {"workflow_run_id": None,
                "err_msg": f"WorkflowRun {model.workflow_run_id} is currently active "
                           f"({model.run_status}); a new run of workflow {workflow_id} will be aborted."}
    if RUN_TO_WORKFLOW.get(model.run_status, "G") in WORKFLOW_NOT_LINKABLE:
        return {"workflow_run_id": None, "err_msg": f"Workflow {workflow_id} is not in a resume-able state"}
    model.past_runs[model.workflow_run_id] = model.run_status
    model.workflow_run_id = max(model.past_runs) + 1
    model.run_status = "L"
    model.heartbeat_date = now + next_report_increment
    return {"workflow_run_id": model.workflow_run_id, "status": "L"}


def set_resume_state(model: ServerModel, reset_if_running: bool, now: float) -> dict[str, Any]:
    """``POST /task/{workflow_id}/set_resume_state``: every task not DONE or G (nor RUNNING
    on a hot resume) goes back to G with no attempts used; refused while a run is alive."""
    if not is_resumable(model):
        return {"err_msg": f"Workflow {model.workflow_id} is not resumable. Please set the appropriate "
                           "resume state."}
    key = "set_resume_state (reset_if_running)" if reset_if_running else "set_resume_state"
    sources, target = RAW_TASK[key]
    attempts = model.num_attempts
    for i, s in enumerate(model.status):
        if s in sources:
            model.set_task_status(i, target, now)
            attempts[i] = 0
    return {}


def increase_resources(model: ServerModel, now: float) -> dict[str, Any]:
    """``POST /workflow/{id}/increase_resources``: every task in E or F whose latest instance
    ended in a resource error (Z) goes to E with its resources scaled once by its scales
    (numbers: ``ceil(value * (1 + scale))``; lists: the entry of its attempt)."""
    updated: list[int] = []
    latest, ti_status = model.latest_ti, model.ti_status
    for i, s in enumerate(model.status):
        ti = latest[i]
        if s not in ("E", "F") or ti < 0 or ti_status[ti] != "Z":
            continue
        queue, requested = model.current_resources(i)
        model.resource_override[i] = (queue, _scaled(requested, dict(model.topo.scales_of[i]),
                                                     int(model.num_attempts[i])))
        model.set_task_status(i, "E", now)
        updated.append(int(model.task_ids[i]))
    return {"updated_task_count": len(updated), "updated_task_ids": updated}


def _scaled(requested: Requested, scales: dict[str, Any], num_attempts: int) -> Requested:
    attempt_index = max(0, num_attempts - 1)
    out = []
    for name, value in requested:
        scale = scales.get(name)
        if isinstance(scale, (int, float)) and isinstance(value, (int, float)):
            value = int(math.ceil(value * (1 + float(scale))))
        elif isinstance(scale, (list, tuple)) and scale:
            value = int(scale[min(attempt_index, len(scale) - 1)])
        out.append((name, value))
    return tuple(out)
