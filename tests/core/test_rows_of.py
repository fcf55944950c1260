"""``rows_of`` builds event rows a column at a time: the same rows the classes build."""

from __future__ import annotations

import pickle

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmfold.core.events import EdgeRow, TaskRow, rows_of

names = st.text("abcq.", min_size=1, max_size=4)
task_rows = st.lists(
    st.builds(
        TaskRow,
        task_id=st.integers(0, 2**63 - 1),
        array_id=st.integers(0, 50),
        status=st.sampled_from("GQRDAEF"),
        max_attempts=st.integers(1, 5),
        resource_scales=st.lists(st.tuples(names, st.floats(0, 2)), max_size=2).map(tuple),
        fallback_queues=st.lists(names, max_size=2).map(tuple),
        requested_resources=st.lists(st.tuples(names, st.integers(0, 9) | names), max_size=3).map(tuple),
        cluster_name=names,
        queue_name=names,
        array_limit=st.integers(0, 10_000),
    ),
    max_size=30,
)


@given(task_rows)
def test_task_rows_from_columns_equal_the_rows(rows: list[TaskRow]) -> None:
    columns = [[getattr(r, f.name) for r in rows] for f in attrs.fields(TaskRow)]
    built = rows_of(TaskRow, *columns)
    assert built == rows
    assert list(map(hash, built)) == list(map(hash, rows))
    assert pickle.loads(pickle.dumps(built)) == rows


_EDGE = st.tuples(st.integers(0, 99), st.integers(0, 99), st.lists(st.integers(0, 99), max_size=4))


@given(st.lists(_EDGE, max_size=30))
def test_edge_rows_from_columns_convert_their_lists(triples: list[tuple[int, int, list[int]]]) -> None:
    built = rows_of(EdgeRow, *(list(column) for column in zip(*triples, strict=True))) if triples else []
    assert built == [EdgeRow(t, n, ids) for t, n, ids in triples]
    assert all(type(e.downstream_node_ids) is tuple for e in built)


def test_rows_from_columns_stay_frozen_and_refuse_uneven_columns() -> None:
    (edge,) = rows_of(EdgeRow, [1], [2], [[3]])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        edge.node_id = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="different lengths"):
        rows_of(EdgeRow, [1, 2], [2], [[3]])
