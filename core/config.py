"""Run configuration, with Jobmon 3.6's defaults (spec §9.1, §9.7)."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import frozen

from swarmfold.core.errors import InvalidConfig

#: Jobmon's fixed ``MAX_BATCH_SIZE`` (spec §6).
JOBMON_MAX_BATCH_SIZE = 500
#: Default workflow and array concurrency limit (``2**31 - 1``, spec §3.1).
UNLIMITED = 2_147_483_647


def _positive(instance: Any, attribute: Any, value: Any) -> None:
    if not value > 0:
        raise InvalidConfig(f"config.{attribute.name} must be > 0, got {value!r}")


def _count(instance: Any, attribute: Any, value: Any) -> None:
    if type(value) is not int or value < 0:
        raise InvalidConfig(f"config.{attribute.name} must be an int >= 0, got {value!r}")


def _positive_or_none(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and value <= 0:
        raise InvalidConfig(f"config.{attribute.name} must be > 0 or null, got {value!r}")


@frozen
class SwarmConfig:
    """Knobs of one swarm run. Times are seconds on the shell's clock.

    ``wedged_sync_interval`` below zero makes every sync a full sync (as in Jobmon).
    ``adaptive_batching`` lets measured ``queue_task_batch`` durations move the batch size
    toward ``target_batch_seconds``; ``max_batch_size`` stays the cap.
    ``bulk_status_threshold``: a status report listing more task ids than this for one status
    (and at least an eighth of the tasks) is first filtered for unchanged tasks in bulk; a
    speed knob only, every threshold gives the same decisions.
    """

    heartbeat_interval: float = attrs.field(default=30.0, validator=_positive)
    report_by_buffer: float = attrs.field(default=3.1, validator=_positive)
    wedged_sync_interval: float = 600.0
    fail_fast: bool = False
    timeout: float = attrs.field(default=36000.0, validator=_positive)
    fail_after_n_executions: int | None = attrs.field(default=None, validator=_positive_or_none)
    max_batch_size: int = attrs.field(default=JOBMON_MAX_BATCH_SIZE, validator=_positive)
    adaptive_batching: bool = False
    target_batch_seconds: float = attrs.field(default=1.0, validator=_positive)
    chunk_size: int = attrs.field(default=500, validator=_positive)
    bulk_status_threshold: int = attrs.field(default=64, validator=_count)

    @property
    def next_report_increment(self) -> float:
        """What a heartbeat asks the server to add to ``heartbeat_date``."""
        return self.heartbeat_interval * self.report_by_buffer

    @property
    def heartbeat_retry_delay(self) -> float:
        """After a failed heartbeat, retry at Jobmon's poll granularity ``max(0.1, interval/2)``."""
        return max(0.1, self.heartbeat_interval / 2)
