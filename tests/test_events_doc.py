"""docs/events-and-commands.md agrees with the protocol and route tables."""

from __future__ import annotations

from pathlib import Path

from swarmfold.shell.http.protocol_doc import answered_by, answers, check_routes, render

DOC = Path(__file__).resolve().parents[1] / "docs" / "events-and-commands.md"
REGENERATE = "python -m swarmfold.shell.http.protocol_doc docs/events-and-commands.md"


def test_the_generated_columns_are_up_to_date() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, f"docs/events-and-commands.md is stale: run {REGENERATE}"


def test_every_route_cell_names_the_route_table_route() -> None:
    assert check_routes(DOC.read_text(encoding="utf-8")) == []


def test_a_wrong_cell_is_rewritten_from_the_protocol() -> None:
    text = DOC.read_text(encoding="utf-8")
    good = "| `BatchQueueFailed` | `command_id`, `at`, `error` |"
    line = next(row for row in text.split("\n") if row.startswith(good))
    broken = text.replace(line, line.rsplit("|", 2)[0] + "| `LogHeartbeat` |")
    assert broken != text and render(broken) == text
    assert answered_by("QueueBatch") == "`BatchQueued`, `BatchQueueFailed`"
    assert answered_by("WakeAt") is None
    assert answers("SyncPartFailed") == (
        "`RequestTriage`, `FetchTaskStatuses`, `FetchWorkflowLimit`, `FetchArrayLimit`"
    )


def test_a_wrong_route_is_named() -> None:
    route = "/workflow_run/{workflow_run_id}/log_heartbeat"
    text = DOC.read_text(encoding="utf-8").replace(route, "/heartbeat")
    assert check_routes(text) == [
        "LogHeartbeat: expected POST `/workflow_run/{workflow_run_id}/log_heartbeat` in "
        "'1 · POST `/heartbeat` `{\"status\", \"next_report_increment\"}`'"
    ]
