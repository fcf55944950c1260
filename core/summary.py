"""The result summary a finished run reports (Jobmon's ``OrchestratorResult``)."""

from __future__ import annotations

from collections.abc import Mapping

from attrs import field, frozen

from swarmfold.core.frozen import FrozenDict


def _grouped(value: Mapping[str, tuple[int, ...]]) -> Mapping[str, tuple[int, ...]]:
    return value if type(value) is FrozenDict else FrozenDict(value)


@frozen
class RunSummary:
    """Final status, counts, and every task's final status grouped by status.

    ``num_previously_complete`` counts tasks that were DONE before this run started
    (Jobmon never fills it in: quirk Q3, fixed here).
    """

    final_status: str
    reason: str
    total_tasks: int
    done_count: int
    failed_count: int
    num_previously_complete: int
    elapsed: float
    tasks_by_status: Mapping[str, tuple[int, ...]] = field(converter=_grouped)

    def task_final_statuses(self) -> dict[int, str]:
        """``{task_id: status}`` for every task, as Jobmon's result gives it."""
        return {tid: status for status, ids in self.tasks_by_status.items() for tid in ids}
