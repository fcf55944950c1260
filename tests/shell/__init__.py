"""Tests of the shell's event log, replay, explain and drift; shared builders below."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from swarmfold.core.config import SwarmConfig
from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec
from swarmfold.shell.cli import main
from swarmfold.shell.json_text import dumps_sorted, finite
from swarmfold.shell.log.codec import to_json
from swarmfold.shell.log.eventlog import EventLogWriter, LogRecorder, new_header
from swarmfold.shell.log.record_codec import dumps
from swarmfold.shell.server.instant import DriveResult, InstantServer, drive

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pipeline.json"
RUNNER = "test-runner"
CREATED = "2026-01-01T00:00:00+00:00"


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def example_scenario() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def record_run(
    path: Path,
    spec: TopologySpec,
    config: SwarmConfig | None = None,
    *,
    server: InstantServer | None = None,
    workflow_id: int = 1,
    workflow_run_id: int = 1,
    max_events: int | None = None,
) -> DriveResult:
    """Drive ``spec`` on the instant server and record every decide step in ``path``."""
    config = config or SwarmConfig()
    header = new_header("fold", workflow_id, workflow_run_id, config, runner_id=RUNNER, created_at=CREATED)
    with EventLogWriter(path, header) as writer:
        return drive(
            spec, config, server=server, record=LogRecorder(writer),
            workflow_id=workflow_id, workflow_run_id=workflow_run_id, max_events=max_events,
        )


def small_spec(*, array_limit: int = 1, workflow_limit: int | None = None) -> TopologySpec:
    """Array 1 (``first``, limit ``array_limit``) holds tasks 1-3; array 2 (``second``) holds
    task 4, which depends on task 1, and task 5, which depends on tasks 2 and 4."""
    kwargs: dict[str, Any] = {} if workflow_limit is None else {"workflow_limit": workflow_limit}
    return TopologySpec(
        tasks=[
            TaskSpec(1, 1, 1),
            TaskSpec(2, 1, 1),
            TaskSpec(3, 1, 1),
            TaskSpec(4, 2, 1, upstream_ids=[1]),
            TaskSpec(5, 2, 1, upstream_ids=[2, 4]),
        ],
        arrays=[ArraySpec(1, "first", limit=array_limit), ArraySpec(2, "second")],
        resource_sets=[ResourceSetSpec(1, "all.q", {"memory": 2, "runtime": 60})],
        **kwargs,
    )


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


#: The pages of rows in records, and the row fields the log writes as tables (version 3).
_PAGES = {
    "TaskChunkLoaded": ("tasks", {"resource_scales", "fallback_queues", "requested_resources"}),
    "EdgeChunkLoaded": ("edges", set()),
}
#: Row fields of ints (which may be written as id runs) and of id lists (always arrays).
_INT_FIELDS = {"task_id", "array_id", "max_attempts", "array_limit", "node_id"}
_ID_LIST_FIELDS = {"downstream_node_ids"}


def _short(values: list[Any], ints: bool) -> Any:
    """A column as the log writes it: ``{"repeat": [v, n]}`` when every row holds the same
    value; for a long list of ints, a bitmap when they increase over a span of at most 16
    ids an id and 16 ids a run, else id runs when they are mostly consecutive, else a bitmap
    when they increase over a span of at most 16 ids an id; else the array."""
    if len(values) > 1 and all(dumps(v) == dumps(values[0]) for v in values):
        return {"repeat": [values[0], len(values)]}
    if ints and len(values) >= 64 and all(-(2**63) <= v < 2**63 for v in values):
        runs: list[list[int]] = []
        for v in values:
            if runs and v == runs[-1][0] + runs[-1][1]:
                runs[-1][1] += 1
            else:
                runs.append([v, 1])
        n, span = len(values), values[-1] - values[0] + 1
        increasing = all(b > a for a, b in zip(values, values[1:], strict=False))
        as_bits = increasing and span <= 16 * n
        if as_bits and (4 * len(runs) > n or span <= 16 * len(runs)):
            bitmap = bytearray((span + 7) // 8)
            for v in values:
                bitmap[(v - values[0]) // 8] |= 1 << ((v - values[0]) % 8)
            return {"bits": [values[0], span, base64.b64encode(bytes(bitmap)).decode("ascii")]}
        if 4 * len(runs) <= n:
            return {"runs": [x for run in runs for x in run]}
    return values


def log_data(value: Any) -> Any:
    """The log's data for an event or command, built the slow way: the codec's JSON, with a
    page of rows as columns (log version 3; docs/log-format.md)."""
    data = json.loads(to_json(value))
    page = _PAGES.get(data.get("type"))
    if page is None or not data[page[0]]:
        return data
    name, tables = page
    rows = data[name]
    columns: dict[str, Any] = {}
    for field in rows[0]:
        values = [row[field] for row in rows]
        if field in tables:
            texts = [dumps(v) for v in values]
            distinct = list(dict.fromkeys(texts))
            columns[field] = {
                "index": _short([distinct.index(t) for t in texts], ints=False),
                "values": [json.loads(t) for t in distinct],
            }
        elif field in _ID_LIST_FIELDS:
            columns[field] = values
        else:
            columns[field] = _short(values, ints=field in _INT_FIELDS)
    data[name] = {"columns": columns, "rows": len(rows)}
    return data


def codec_line(seq: int, runner_id: str, event: Any, commands: Any) -> str:
    """A record line written the slow way: every value through the codec, pages of rows then
    turned into columns (no newline). Long id lists stay plain arrays. Spelled as the log
    spells it (``shell/json_text.py``: orjson, or the standard library for data holding a
    non-finite float, found here by walking all of it)."""
    data = {
        "commands": [log_data(c) for c in commands],
        "event": log_data(event),
        "runner_id": runner_id,
        "seq": seq,
    }
    return dumps_sorted(data, all_finite=finite(data)).decode("utf-8")
