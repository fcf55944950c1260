"""``IndexList``: task indexes converted to numpy once, read like any list."""

from __future__ import annotations

import numpy as np

from swarmfold.core.index_list import IndexList, index_array


def test_an_index_list_keeps_the_array_it_was_built_from() -> None:
    source = np.array([5, 1, 7], dtype=np.int64)
    indexes = IndexList.of_array(source)
    assert indexes == [5, 1, 7] and isinstance(indexes, list)
    assert index_array(indexes) is index_array(indexes)
    assert index_array(indexes).tolist() == [5, 1, 7]


def test_an_index_list_built_from_ints_converts_once_on_first_use() -> None:
    indexes = IndexList((3, 4))
    first = index_array(indexes)
    assert first.dtype == np.intp and first.tolist() == [3, 4]
    assert index_array(indexes) is first


def test_a_grown_index_list_is_converted_again_and_a_plain_list_each_time() -> None:
    indexes = IndexList([1])
    index_array(indexes)
    indexes.append(2)  # not meant to happen; the length check still catches it
    assert index_array(indexes).tolist() == [1, 2]
    plain = [9, 8]
    assert index_array(plain).tolist() == [9, 8] and index_array(plain) is not index_array(plain)
