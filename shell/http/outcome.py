"""What a run of the runner gives back: ``RunOutcome``, its exit code and its text."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import frozen

from swarmfold.core.statuses import RunStatus
from swarmfold.core.summary import RunSummary

__all__ = ["EXIT_BAD_INPUT", "EXIT_NOT_DONE", "EXIT_OK", "RunOutcome", "format_outcome"]

EXIT_OK = 0
EXIT_NOT_DONE = 1
EXIT_BAD_INPUT = 2


@frozen
class RunOutcome:
    """How a run ended for this runner.

    ``summary`` is the core's summary (``None`` when the run never started, e.g. the attach
    bootstrap failed); ``failed_reason`` is ``None`` when the core finished the run
    (``Finish``), else the ``Fail`` reason (``stopped``, ``timeout``, ``distributor_died``,
    ``attach_failed`` ...) or the runner's own (``not_found``, ``locked``, ``bootstrap_failed``,
    ``max_seconds``, ``ticks``, ``core_error``). ``exit_code`` is 0 only for DONE.
    """

    summary: RunSummary | None
    failed_reason: str | None
    exit_code: int
    log_path: str | None
    runner_id: str
    message: str = ""
    events: int = 0
    requests: dict[str, int] = attrs.field(factory=dict)
    anomalies: int = 0
    elapsed: float = 0.0
    workflow_run_id: int | None = None

    @property
    def final_status(self) -> str | None:
        return None if self.summary is None else self.summary.final_status

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def to_dict(self) -> dict[str, Any]:
        from swarmfold.shell.log.codec import unstructure

        return {
            "final_status": self.final_status,
            "failed_reason": self.failed_reason,
            "message": self.message,
            "exit_code": self.exit_code,
            "log_path": self.log_path,
            "runner_id": self.runner_id,
            "workflow_run_id": self.workflow_run_id,
            "events": self.events,
            "requests": dict(sorted(self.requests.items())),
            "total_requests": self.total_requests,
            "anomalies": self.anomalies,
            "elapsed": round(self.elapsed, 3),
            "summary": None if self.summary is None else unstructure(self.summary),
        }


def _status_name(code: str) -> str:
    names = {v: k for k, v in vars(RunStatus).items() if not k.startswith("_")}
    return names.get(code, code)


def format_outcome(outcome: RunOutcome, title: str = "") -> str:
    """The human summary of a run."""
    s = outcome.summary
    if s is None:
        head = f"{title}not run: {outcome.failed_reason}"
        lines = [head, f"  error     {outcome.message}"] if outcome.message else [head]
    else:
        lines = [f"{title}{_status_name(s.final_status)} ({s.final_status})"]
        if s.reason:
            lines.append(f"  reason    {s.reason}")
        lines.append(
            f"  tasks     {s.done_count} done, {s.failed_count} failed, {s.total_tasks} total"
            f" ({s.num_previously_complete} previously complete)"
        )
        if outcome.failed_reason is not None and outcome.message and outcome.message not in s.reason:
            lines.append(f"  failed    {outcome.failed_reason}: {outcome.message}")
    lines.append(f"  elapsed   {outcome.elapsed:.2f} s")
    lines.append(f"  events    {outcome.events}")
    lines.append(f"  requests  {outcome.total_requests}")
    if outcome.anomalies:
        lines.append(f"  anomalies {outcome.anomalies}")
    lines.append(f"  runner    {outcome.runner_id}")
    if outcome.log_path:
        lines.append(f"  log       {outcome.log_path}")
    return "\n".join(lines)
