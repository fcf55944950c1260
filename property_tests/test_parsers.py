"""The fast and the checked parsers of the two large answers agree, and the checked one names
the field of every malformed body (``shell/http/parsing.py``)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmfold.core.id_array import PACK_ABOVE, IdArray
from swarmfold.shell.http.parsing import (
    ResponseError,
    _checked_edges,
    _checked_task_rows,
    _fast_edges,
    _fast_task_rows,
    parse_edges,
    parse_task_rows,
    parse_tasks_by_status,
)

ROUTE = "GET /workflow/get_tasks/{id}"
names = st.text("abcdefgh._-", min_size=1, max_size=8)
numbers = st.one_of(st.integers(0, 10_000), st.floats(0.0, 1e4, allow_nan=False, width=32))
scales_text = st.one_of(
    st.just("{'memory': 0.5, 'runtime': 0.5}"),
    st.dictionaries(names, numbers | st.lists(numbers, min_size=1, max_size=3), max_size=3).map(repr),
    st.just("{}"),
)
fallbacks_text = st.lists(names, max_size=2).map(repr)
requested_objects = st.dictionaries(names, st.integers(1, 64) | names, max_size=3)
#: As Jobmon sends it (JSON text, often one string shared by many rows) or as an object.
requested_text = st.one_of(
    st.just('{"cores": 1}'), requested_objects.map(json.dumps), requested_objects, st.none()
)
row = st.tuples(
    st.integers(1, 50), st.sampled_from("GQIORDEAF"), st.integers(1, 5), scales_text, fallbacks_text,
    requested_text, names, names, st.integers(1, 2_147_483_647),
).map(list)
task_bodies = st.dictionaries(st.integers(1, 10**6).map(str), row, min_size=1, max_size=20).map(
    lambda tasks: {"tasks": tasks}
)
edge_bodies = st.dictionaries(
    st.integers(1, 10**6).map(str),
    st.tuples(st.integers(1, 10**6), st.none() | st.lists(st.integers(1, 10**6), max_size=4)).map(list),
    min_size=1, max_size=20,
).map(lambda tasks: {"downstream_tasks": tasks})

#: A wrong value for each column of a task row (an int where a string belongs, and so on).
WRONG_TASK_COLUMN: dict[int, Any] = {
    0: "x", 1: 7, 2: "three", 3: "{not a literal", 4: "[1, 2]", 5: "[1]", 6: 5, 7: None, 8: "big",
}


@given(task_bodies)
@settings(max_examples=150)
def test_fast_and_checked_task_row_parsers_agree(body: dict[str, Any]) -> None:
    assert _fast_task_rows(body, ROUTE) == _checked_task_rows(body, ROUTE) == parse_task_rows(body, ROUTE)


@given(task_bodies, st.data())
@settings(max_examples=150)
def test_a_malformed_task_row_is_named_to_the_column(body: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(body["tasks"])), label="task")
    column = data.draw(st.sampled_from(sorted(WRONG_TASK_COLUMN)), label="column")
    body["tasks"][key][column] = WRONG_TASK_COLUMN[column]
    try:
        parse_task_rows(body, ROUTE)
    except ResponseError as exc:
        assert exc.field == f'$.tasks["{key}"][{column}]', str(exc)
        assert exc.route == ROUTE
    else:
        raise AssertionError(f"column {column} = {WRONG_TASK_COLUMN[column]!r} was accepted")


@given(edge_bodies)
@settings(max_examples=150)
def test_fast_and_checked_edge_parsers_agree(body: dict[str, Any]) -> None:
    route = "POST /task/get_downstream_tasks"
    assert _fast_edges(body) == _checked_edges(body, route) == parse_edges(body, route)


@given(edge_bodies, st.data())
@settings(max_examples=150)
def test_a_malformed_edge_is_named(body: dict[str, Any], data: st.DataObject) -> None:
    route = "POST /task/get_downstream_tasks"
    key = data.draw(st.sampled_from(sorted(body["downstream_tasks"])), label="task")
    where = f'$.downstream_tasks["{key}"]'
    bad, field = data.draw(st.sampled_from([
        ("node", f"{where}[0]"), ([1, "x"], f"{where}[1][1]"), ("[1,", f"{where}[1]"),
        ([True], f"{where}[1][0]"),
    ]), label="damage")
    if field == f"{where}[0]":
        body["downstream_tasks"][key][0] = bad
    else:
        body["downstream_tasks"][key][1] = bad
    try:
        parse_edges(body, route)
    except ResponseError as exc:
        assert exc.field == field, str(exc)
    else:
        raise AssertionError(f"{bad!r} at {field} was accepted")


@given(st.integers(0, 3 * PACK_ABOVE), st.integers(-(2**63), 2**63 - 3 * PACK_ABOVE - 1))
@settings(max_examples=30)
def test_a_long_status_list_is_parsed_packed_and_equals_the_tuple(n: int, first: int) -> None:
    """A full sync's list (more than ``PACK_ABOVE`` ids) comes as an ``IdArray``, a shorter
    one as a tuple; both equal the tuple of the ids, and ids past 64 bits stay a tuple."""
    ids = list(range(first, first + n))
    parsed = parse_tasks_by_status({"D": ids, "R": [2**64]})
    assert parsed["D"] == tuple(ids) and type(parsed["D"]) is (IdArray if n > PACK_ABOVE else tuple)
    assert parsed["R"] == (2**64,) and type(parsed["R"]) is tuple
