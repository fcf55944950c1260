"""The generated columns of docs/events-and-commands.md, from the two protocol tables.

In every table of that page whose last column is ``answers`` (an event table) or ``answered
by`` (a command table), the last cell of a row naming a command or an event is written from
``swarmfold.core.protocol``: a command's answering events then its failure event; an event's
commands. Rows the protocol says nothing about (unsolicited events, commands no event answers)
keep their hand-written cell. A server command's ``route`` cell must name the method and the
path template of ``swarmfold.shell.http.routes``; ``check_routes`` lists the rows that do not.

Regenerate with ``python -m swarmfold.shell.http.protocol_doc docs/events-and-commands.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from swarmfold.core.commands import COMMAND_TYPES
from swarmfold.core.protocol import ANSWERS_TO, PROTOCOL
from swarmfold.shell.http.routes import COMMAND_ROUTES

__all__ = ["answered_by", "answers", "check_routes", "render"]

_COMMANDS = {c.__name__: c for c in COMMAND_TYPES}
_EVENTS = {e.__name__: e for e in ANSWERS_TO}


def answered_by(name: str) -> str | None:
    """The ``answered by`` cell of command ``name`` (None: the protocol names no event)."""
    row = PROTOCOL[_COMMANDS[name]]
    events = [*row.answers, *((row.failure,) if row.failure is not None else ())]
    return ", ".join(f"`{e.__name__}`" for e in events) or None


def answers(name: str) -> str:
    """The ``answers`` cell of event ``name``: the commands it answers."""
    return ", ".join(f"`{c.__name__}`" for c in ANSWERS_TO[_EVENTS[name]])


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _name(cell: str) -> str:
    return cell.strip("`") if cell.startswith("`") and cell.endswith("`") else ""


def render(text: str) -> str:
    """``text`` with every generated cell rewritten from the protocol."""
    out: list[str] = []
    column = ""
    for line in text.split("\n"):
        if line.startswith("| ") and not line.startswith("|---"):
            cells = _cells(line)
            if cells[0] in ("event", "command"):
                column = cells[-1]
            else:
                name = _name(cells[0])
                cell: str | None = None
                if column == "answers" and name in _EVENTS:
                    cell = answers(name)
                elif column == "answered by" and name in _COMMANDS:
                    cell = answered_by(name)
                if cell is not None and cells[-1] != cell:
                    line = "| " + " | ".join([*cells[:-1], cell]) + " |"
        elif not line.startswith("|"):
            column = ""
        out.append(line)
    return "\n".join(out)


def check_routes(text: str) -> list[str]:
    """Rows of server commands whose route cell does not name the route table's route."""
    wrong = []
    for line in text.split("\n"):
        if not line.startswith("| `"):
            continue
        cells = _cells(line)
        kind = _COMMANDS.get(_name(cells[0]))
        if kind is None or kind not in COMMAND_ROUTES or len(cells) < 4:
            continue
        route = COMMAND_ROUTES[kind].route
        if f"{route.method} `{route.template}`" not in cells[2]:
            wrong.append(f"{kind.__name__}: expected {route.method} `{route.template}` in {cells[2]!r}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated cells of the given file(s) in place."""
    for path in (argv if argv is not None else sys.argv[1:]):
        file = Path(path)
        text = file.read_text(encoding="utf-8")
        new = render(text)
        if new != text:
            file.write_text(new, encoding="utf-8")
            print(f"{path}: rewritten from the protocol tables")
        else:
            print(f"{path}: up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
