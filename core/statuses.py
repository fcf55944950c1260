"""Jobmon's single-letter status codes and the sets the swarm reasons with (spec §1)."""

from __future__ import annotations

from typing import Final


class TaskStatus:
    """Task status codes (spec §1.1). Plain ``str`` constants: they are compared per task."""

    REGISTERING: Final = "G"
    QUEUED: Final = "Q"
    INSTANTIATING: Final = "I"
    LAUNCHED: Final = "O"
    RUNNING: Final = "R"
    DONE: Final = "D"
    ERROR_RECOVERABLE: Final = "E"
    ADJUSTING_RESOURCES: Final = "A"
    ERROR_FATAL: Final = "F"


class RunStatus:
    """Workflow-run status codes (spec §1.3)."""

    REGISTERED: Final = "G"
    LINKING: Final = "L"
    BOUND: Final = "B"
    ABORTED: Final = "A"
    INSTANTIATED: Final = "I"
    LAUNCHED: Final = "O"
    RUNNING: Final = "R"
    DONE: Final = "D"
    STOPPED: Final = "S"
    ERROR: Final = "E"
    COLD_RESUME: Final = "C"
    HOT_RESUME: Final = "H"
    TERMINATED: Final = "T"


TASK_STATUSES: Final = frozenset("GQIORDEAF")
RUN_STATUSES: Final = frozenset("GLBAIORDSECHT")

#: Statuses that occupy a concurrency slot (``ACTIVE_TASK_STATUSES``).
ACTIVE: Final = frozenset("QIOR")
#: Statuses from which a task never moves on its own.
FINAL: Final = frozenset("DF")
#: Statuses that can be queued by ``queue_task_batch`` (server moves only G/A to Q).
QUEUEABLE: Final = frozenset("GA")
#: Server-decided stop statuses: the swarm breaks out at once (``SERVER_STOP_STATUSES``).
SERVER_STOP: Final = frozenset("ETS")
#: Resume signals: the swarm drains (``TERMINATING_STATUSES``).
RESUME_SIGNALS: Final = frozenset("CH")
#: Task statuses the C/H drain waits for (Jobmon waits on I/O/R, not Q: quirk Q9).
DRAIN_WAITS_FOR: Final = frozenset("IOR")
