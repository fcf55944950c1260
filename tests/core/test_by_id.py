"""``task_status._by_id``: a column read by task id, zero for an id outside the workflow."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmfold.core.task_status import _by_id


def _expected(column: list[int], ids: list[int], first: int) -> list[int]:
    return [column[i - first] if 0 <= i - first < len(column) else 0 for i in ids]


@settings(max_examples=300, deadline=None)
@given(
    column=st.lists(st.integers(1, 255), min_size=1, max_size=40),
    first=st.integers(0, 6),
    ids=st.lists(st.integers(-3, 60) | st.integers(-(2**63), 2**63 - 1), max_size=60),
)
def test_each_id_reads_its_task_and_any_other_id_reads_zero(
    column: list[int], first: int, ids: list[int]
) -> None:
    got = _by_id(np.array(column, dtype=np.uint8), np.array(ids, dtype=np.int64), first)
    assert got.tolist() == _expected(column, ids, first)


def test_ids_inside_read_through_plain_indexing_and_the_edges_read_zero() -> None:
    column = np.array([ord(c) for c in "GQRD"], dtype=np.uint8)
    # Ids 10-13 are the workflow; 9 and 14 sit on the zeros either side, 0 below them all.
    got = _by_id(column, np.array([13, 10, 9, 14, 0, 11], dtype=np.int64), 10)
    assert bytes(got.tolist()) == b"DG\0\0\0Q"
    # A task id 0 (first 0): -1 must not wrap round to the last task.
    assert _by_id(column, np.array([-1, 0, 3, 4], dtype=np.int64), 0).tolist() == [0, ord("G"), ord("D"), 0]
    # A bool column (which tasks were found) reads False outside.
    found = np.array([True, False, True])
    got = _by_id(found, np.array([5, 6, 7, 4, 8], dtype=np.int64), 5)
    assert got.tolist() == [True, False, True, False, False]
