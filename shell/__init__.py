"""The imperative shell of swarmfold: codec, runner, gateway, CLI."""

from typing import Any

__all__ = ["resume_workflow", "run_workflow_run"]


def __getattr__(name: str) -> Any:
    # Lazy, so ``import swarmfold.shell`` stays cheap (the runner pulls in the gateway).
    if name == "run_workflow_run":
        from swarmfold.shell.http.attach_run import run_workflow_run

        return run_workflow_run
    if name == "resume_workflow":
        from swarmfold.shell.jobmon.resume import resume_workflow

        return resume_workflow
    raise AttributeError(f"module 'swarmfold.shell' has no attribute {name!r}")
