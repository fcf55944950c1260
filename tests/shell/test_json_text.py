"""shell/json_text.py: orjson on the hot paths, reading and writing what ``json`` did."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmfold.core.commands import BindResources
from swarmfold.core.events import TimerFired
from swarmfold.shell.json_text import dumps_body, dumps_sorted, finite, loads
from swarmfold.shell.log.eventlog import EventLogWriter, new_header, read_log

_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.integers(min_value=2**64 - 2, max_value=2**70)  # past orjson's 64 bits
)
_JSON = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, kind for kind (``1`` is not ``1.0``), floats by their spelling (NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return repr(a) == repr(b)
    if type(a) is list:
        return len(a) == len(b) and all(map(same, a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@given(_JSON)
def test_loads_reads_what_the_standard_library_reads(value: Any) -> None:
    text = json.dumps(value)  # NaN, big integers, escapes and all
    assert same(loads(text), json.loads(text))
    assert same(loads(text.encode("utf-8")), json.loads(text))


@given(_JSON)
def test_dumps_sorted_reads_back_the_same_value(value: Any) -> None:
    written = dumps_sorted(value, all_finite=finite(value))
    assert same(loads(written), json.loads(json.dumps(value)))
    # The same text as the standard library's, up to how floats are spelled.
    if not _has_float(value):
        standard = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert written.decode("utf-8") == standard


def _has_float(value: Any) -> bool:
    if type(value) is float:
        return True
    if type(value) is dict:
        return any(map(_has_float, value.values()))
    return type(value) is list and any(map(_has_float, value))


@pytest.mark.parametrize("bad", [b"{", b'{"a":1,}', b"\xff", b"[1] 2", b"nul"])
def test_loads_raises_the_standard_library_error(bad: bytes) -> None:
    try:
        json.loads(bad.decode("utf-8"))
    except ValueError as exc:
        expected = exc
    with pytest.raises(type(expected)) as caught:
        loads(bad)
    assert str(caught.value) == str(expected)


def test_finite_looks_into_nested_values() -> None:
    assert finite({"a": [1, 2.5, ("x", {"b": -0.0})]})
    assert not finite({"a": [1, ("x", {"b": math.inf})]})
    assert not finite([[math.nan]])


def test_a_non_finite_float_survives_the_event_log(tmp_path: Path) -> None:
    """orjson would write NaN as null and lose it: such a record goes through the standard
    library (``NaN``), and reads back as it was recorded."""
    path = tmp_path / "run.log"
    recorded = [
        (TimerFired(at=math.inf, command_id=None), []),
        (TimerFired(at=3.0, command_id=1), [BindResources(4, "all.q", 7, {"memory": math.nan, "cores": 2})]),
    ]
    with EventLogWriter(path, new_header("fold", 1, 2, {})) as writer:
        for event, commands in recorded:
            writer.record(event, commands)
    lines = path.read_bytes().splitlines()
    assert b"Infinity" in lines[1] and b"NaN" in lines[2]
    log = read_log(path, strict=True)
    assert [repr(r.event) for r in log.records] == [repr(e) for e, _ in recorded]
    assert [repr(r.commands) for r in log.records] == [repr(tuple(c)) for _, c in recorded]


@given(_JSON)
def test_a_request_body_is_what_json_dumps_without_nan_would_send(value: Any) -> None:
    try:
        expected: Any = json.loads(json.dumps(value, allow_nan=False))
    except ValueError as exc:  # a NaN or an infinity: never sent
        with pytest.raises(ValueError, match=str(exc)):
            dumps_body(value)
        return
    assert same(json.loads(dumps_body(value)), expected)


def test_a_body_that_is_not_json_raises_the_standard_library_error() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_body({"a": object()})
    with pytest.raises(ValueError, match="Out of range float"):
        dumps_body({"ids": [1, 2], "x": None, "y": math.nan})
