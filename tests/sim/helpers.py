"""Helpers shared by the simulator tests: small scenarios as dicts, running them, the CLI."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

from swarmfold.shell.cli import main
from swarmfold.shell.sim.driver import SimResult, simulate
from swarmfold.shell.sim.scenario import parse_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def tasks(n: int, duration: float = 10.0, **extra: Any) -> list[dict[str, Any]]:
    """``n`` independent tasks of array 1 and resource set 1."""
    return [
        {"task_id": k, "array_id": 1, "resource_set_id": 1, "duration": duration, **extra}
        for k in range(1, n + 1)
    ]


def scenario(task_list: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """A one-array scenario around ``task_list``; ``changes`` merge into its sections."""
    data: dict[str, Any] = {
        "name": "t",
        "workflow": {"heartbeat_interval": 10.0},
        "arrays": [{"array_id": 1, "name": "a"}],
        "resource_sets": [{"resource_set_id": 1, "queue": "q", "requested": {"memory": 1}}],
        "tasks": task_list,
        "distributor": {"poll_interval": 5.0},
        "latency": {"default": {"seconds": 0.0, "jitter": 0.0}},
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def run(data: dict[str, Any], seed: int | None = None, **kwargs: Any) -> SimResult:
    """Simulate a scenario dict (left untouched)."""
    return simulate(parse_scenario(copy.deepcopy(data)), seed, **kwargs)


def cli(argv: list[str]) -> tuple[int, str]:
    """``swarmfold ARGV``: the exit code and what it printed."""
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()
