"""The scenario format as a JSON Schema, generated from the same attrs classes the loader decodes.

``scenario_json_schema()`` walks ``ScenarioFile`` and its field types: ints, floats, strings,
booleans, ``X | None``, tuples (JSON arrays), ``dict[str, X]`` (JSON objects) and nested attrs
classes (objects with their required fields and no others). The schema is shipped as
``docs/scenario.schema.json`` for editors and other tools (a test keeps it equal to this
function's output and validates every bundled example with it); ``swarmfold`` itself
validates with its strict codec, whose errors name the same JSON paths.
``python -m swarmfold.shell.sim.scenario.json_schema`` prints it.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Union

import attrs

from swarmfold.shell.sim.scenario import schema
from swarmfold.shell.sim.scenario.schema import ScenarioFile

__all__ = ["render_schema", "scenario_json_schema"]

_SCALARS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}


def _of(tp: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return {"anyOf": [_of(a, definitions) for a in args]}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _of(args[0], definitions)}
        return {"type": "array", "prefixItems": [_of(a, definitions) for a in args],
                "minItems": len(args), "maxItems": len(args)}
    if origin in (dict, typing.Mapping) or str(origin) == "<class 'collections.abc.Mapping'>":
        return {"type": "object", "additionalProperties": _of(args[1], definitions)}
    if attrs.has(tp):
        name = tp.__name__
        if name not in definitions:
            definitions[name] = {}  # placeholder against recursion
            definitions[name] = _object(tp, definitions)
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _object(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, vars(schema))
    fields = attrs.fields(cls)
    out: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: _of(hints[f.name], definitions) for f in fields},
        "additionalProperties": False,
    }
    required = [f.name for f in fields if f.default is attrs.NOTHING]
    if required:
        out["required"] = required
    if cls.__doc__:
        out["description"] = " ".join(cls.__doc__.split())
    return out


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a scenario file."""
    definitions: dict[str, Any] = {}
    top = _object(ScenarioFile, definitions)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://swarmfold.invalid/scenario.schema.json",
        "title": "swarmfold scenario",
        **top,
        "$defs": dict(sorted(definitions.items())),
    }


def render_schema() -> str:
    """The schema as the shipped file's text."""
    return json.dumps(scenario_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render_schema(), end="")
