"""docs/scenario.schema.json: generated from the loader's own classes, valid for every bundled
example, and naming the same JSON path as the loader for a bad field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from swarmfold.shell.sim.scenario import ScenarioError, parse_scenario
from swarmfold.shell.sim.scenario.json_schema import render_schema

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "docs" / "scenario.schema.json"
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
jsonschema = pytest.importorskip("jsonschema")


def validator() -> Any:
    return jsonschema.Draft202012Validator(json.loads(SHIPPED.read_text()))


def test_the_shipped_schema_is_generated_from_the_classes() -> None:
    assert SHIPPED.read_text() == render_schema(), (
        "docs/scenario.schema.json is stale: python -m swarmfold.shell.sim.scenario.json_schema "
        "> docs/scenario.schema.json"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_every_example_is_valid(example: Path) -> None:
    data = json.loads(example.read_text())
    if "topology" in data:  # the old fold shape, read through its converter
        pytest.skip("old fold format")
    assert [e.message for e in validator().iter_errors(data)] == []


def _path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


@pytest.mark.parametrize(
    ("damage", "where"),
    [
        (lambda d: d["tasks"][2].__setitem__("array_id", "x"), "$.tasks[2].array_id"),
        (lambda d: d["arrays"][0].__setitem__("limit", 1.5), "$.arrays[0].limit"),
        (lambda d: d["workflow"].__setitem__("fail_fast", 1), "$.workflow.fail_fast"),
        (lambda d: d["tasks"][0].pop("resource_set_id"), "$.tasks[0]"),
    ],
)
def test_the_schema_and_the_loader_name_the_same_path(damage: Any, where: str) -> None:
    data = json.loads((ROOT / "examples" / "three_array_pipeline.json").read_text())
    damage(data)
    errors = list(validator().iter_errors(data))
    assert errors and {_path(list(e.absolute_path)) for e in errors} == {where}
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert any(e.startswith(where) for e in info.value.errors), info.value.errors
