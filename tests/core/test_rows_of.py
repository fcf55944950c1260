"""``rows_of`` and ``RowPage``: pages of event rows kept as columns, equal to the rows the
classes build."""

from __future__ import annotations

import pickle

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmfold.core.attach import spec_from_rows
from swarmfold.core.events import EdgeRow, TaskChunkLoaded, TaskRow
from swarmfold.core.row_page import RowPage, column_of, rows_of
from swarmfold.core.state import AttachProgress

from .helpers import task_row_lists

task_rows = task_row_lists(max_size=30)


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


def _page(rows: list[TaskRow]) -> RowPage[TaskRow]:
    return RowPage(TaskRow, [tuple(getattr(r, f.name) for r in rows) for f in attrs.fields(TaskRow)])


@given(task_rows)
def test_a_page_reads_equals_and_hashes_as_the_tuple_of_its_rows(rows: list[TaskRow]) -> None:
    page, plain = _page(rows), tuple(rows)
    assert len(page) == len(plain) and list(page) == rows and page[1:3] == plain[1:3]
    assert all(page[k] == plain[k] for k in range(len(rows)))
    assert page == plain and plain == page and page == list(rows) and hash(page) == hash(plain)
    assert page == _page(rows) and (page != plain[:-1] if rows else True)
    assert pickle.loads(pickle.dumps(page)) == page
    assert TaskChunkLoaded(1, 2.0, page) == TaskChunkLoaded(1, 2.0, plain)
    assert type(TaskChunkLoaded(1, 2.0, page).tasks) is RowPage  # the converter keeps it
    names = [r.queue_name for r in rows]
    assert list(column_of(page, "queue_name")) == list(column_of(plain, "queue_name")) == names


def test_a_page_refuses_uneven_or_missing_columns() -> None:
    with pytest.raises(ValueError, match="3 columns needed"):
        RowPage(EdgeRow, [[1], [2]])
    with pytest.raises(ValueError, match="different lengths"):
        RowPage(EdgeRow, [[1, 2], [2], [()]])


@given(st.lists(st.integers(1, 40), min_size=1, max_size=30, unique=True), st.integers(1, 3))
def test_attaching_from_pages_builds_what_tuples_of_rows_build(task_ids: list[int], n_chunks: int) -> None:
    """``spec_from_rows`` reads a page's columns: the same spec as from its rows."""
    rows = [
        TaskRow(t, t % 3, "G", 3, (("memory", 0.5),), (), (("cores", t % 2),), "c", "q", 10) for t in task_ids
    ]
    edges = [EdgeRow(t, 100 + t, tuple(100 + d for d in task_ids if d > t)[:2]) for t in task_ids]
    size = -(-len(rows) // n_chunks)
    chunks = [rows[k:k + size] for k in range(0, len(rows), size)]
    edge_chunks = [edges[k:k + size] for k in range(0, len(edges), size)]
    def progress(pages: bool) -> AttachProgress:
        return AttachProgress(
            dag_id=1, workflow_limit=10, queues=(),
            task_chunks=tuple(_page(c) if pages else tuple(c) for c in chunks),
            edge_chunks=tuple(
                RowPage(EdgeRow, [tuple(getattr(e, f.name) for e in c) for f in attrs.fields(EdgeRow)])
                if pages else tuple(c) for c in edge_chunks
            ),
        )
    for columnar in (True, False):
        assert spec_from_rows(progress(True), columnar) == spec_from_rows(progress(False), columnar)
