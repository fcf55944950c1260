"""Write docs/transitions.md from the core's transition tables (core/transitions.py).

Usage: ``python -m swarmfold.shell.docs_transitions [PATH]`` (default: the repository's
``docs/transitions.md``). ``tests/core/test_transitions_doc.py`` fails when the file differs
from what this renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

from swarmfold.core import transitions as t

#: The repository's copy (this module lives in ``shell/``).
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "docs" / "transitions.md"

_HEAD = """\
# Transitions

<!-- Generated from core/transitions.py by `python -m swarmfold.shell.docs_transitions`.
     Do not edit: change the tables, then regenerate. -->

The core keeps its state machines as tables in `core/transitions.py`; this page draws them.
The rules they encode are the module's docstring; [decisions.md](decisions.md) says why.
"""

_PHASES = """\
## Run phases

Every phase change is one `(phase, trigger) -> phase` entry. A trigger with no entry for
the current phase raises `ProtocolViolation`. After `done`, `decide` ignores every event.
"""

_STATUSES = """\
## Task statuses: which reports are accepted

An arrow `X --> Y` means a report may move a task from `X` to `Y`. A report the table does
not allow is stale: it is ignored and noted (`stale_report`). DONE and FATAL are left only
for REGISTERING (a reset). An unknown status code is never applied (`unknown_task_status`).
"""

_MATRIX = """\
The same table as a matrix (`=`: the same status, an unchanged report):
"""

_REACTIONS = """\
## Reactions to a new status

After all statuses of a report are written, each task that changed reacts once, by its
final new status.
"""


def render() -> str:
    """The whole of docs/transitions.md."""
    return "\n".join([
        _HEAD,
        _PHASES,
        _mermaid(t.render_phase_diagram()),
        _STATUSES,
        _mermaid(t.render_status_diagram()),
        _MATRIX,
        t.render_status_matrix(),
        _REACTIONS,
        t.render_reactions(),
    ])


def _mermaid(diagram: str) -> str:
    return f"```mermaid\n{diagram}```\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
