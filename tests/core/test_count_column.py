"""The upstream-done column (core/count_column.py): a ``RerootedColumn`` of small ints."""

from __future__ import annotations

import pickle
from array import array

import numpy as np
import pytest
from pyrsistent import pvector

from swarmfold.core.count_column import CountColumn, int_view


def test_reads_as_a_sequence_of_ints() -> None:
    col = CountColumn.of([0, 2, 1, 3])
    assert len(col) == 4 and col[1] == 2 and col[-1] == 3 and col[1:3] == [2, 1]
    assert type(col[0]) is int and list(col) == [0, 2, 1, 3] and col.tolist() == [0, 2, 1, 3]
    assert col == CountColumn.of([0, 2, 1, 3]) and col == [0, 2, 1, 3] and col == pvector([0, 2, 1, 3])
    assert col != CountColumn.of([0, 2, 1, 4]) and col != [0, 2, 1]
    assert hash(col) == hash(CountColumn.of((0, 2, 1, 3)))
    with pytest.raises(IndexError):
        col[4]
    with pytest.raises(ValueError):
        col.values[0] = 5  # read-only: nothing writes into a state's column
    assert col == [0, 2, 1, 3]


def test_a_working_copy_never_changes_the_column_it_came_from() -> None:
    col = CountColumn.zeros(5)
    tx = col.evolver()
    tx[1] = 2
    tx.add_at([3, 3, 4], 1)
    assert tx[1] == 2 and tx[3] == 2 and tx.view().tolist() == [0, 2, 0, 2, 1]
    assert col == [0, 0, 0, 0, 0]  # the working copy moves onto a copy of its own
    after = tx.persistent()
    assert after == [0, 2, 0, 2, 1] and col == [0, 0, 0, 0, 0]


def test_a_frozen_column_is_not_reached_by_later_writes_to_its_working_copy() -> None:
    tx = CountColumn.zeros(3).evolver()
    tx[0] = 1
    first = tx.persistent()
    tx[0] = 2  # a write after persistent() opens a new working copy of ``first``
    second = tx.persistent()
    assert first[0] == 1 and second[0] == 2
    untouched = CountColumn.of([1, 2]).evolver()
    assert untouched.persistent() is untouched.persistent()


def test_set_pickle_and_the_empty_column() -> None:
    col = CountColumn.of([3, 1])
    assert col.set(0, 0) == [0, 1] and col == [3, 1]
    assert pickle.loads(pickle.dumps(col)) == col
    assert CountColumn.of([]) == [] and len(CountColumn.zeros(0)) == 0
    assert CountColumn.of(col) is col


def test_int_view_reads_64_bit_columns_without_a_copy_and_copies_the_rest() -> None:
    ints = array("q", [4, 5, 6])
    view = int_view(memoryview(ints).toreadonly())
    assert view.tolist() == [4, 5, 6] and not view.flags.writeable
    ints[0] = 9  # a view, not a copy
    assert view[0] == 9
    assert int_view(array("i", [1, 2])).tolist() == [1, 2]  # 32-bit: copied, not misread
    assert int_view((7, 8)).tolist() == [7, 8]


def test_a_column_is_as_narrow_as_its_largest_count_allows() -> None:
    assert CountColumn.for_upstreams([0, 3, 127]).values.dtype == np.int8
    assert CountColumn.for_upstreams([128]).values.dtype == np.int16
    assert CountColumn.for_upstreams([40_000]).values.dtype == np.int32
    assert CountColumn.for_upstreams([]).tolist() == []
    # Counts given as values may grow past them: they get the widest type.
    assert CountColumn.of([0, 5, 2]).values.dtype == np.int32
    assert CountColumn.zeros(3).values.dtype == np.int32
    narrow = CountColumn.of(np.array([0, 5, 2], dtype=np.int8))
    assert narrow.values.dtype == np.int8 and pickle.loads(pickle.dumps(narrow)).values.dtype == np.int8
    assert narrow == CountColumn.of([0, 5, 2]) and hash(narrow) == hash(CountColumn.of([0, 5, 2]))
    tx = CountColumn.for_upstreams([3, 1]).evolver()
    tx.add_at(np.array([0, 0, 0, 1]), 1)
    assert tx.persistent() == [3, 1]


def test_upstream_totals_are_kept_at_the_count_columns_width() -> None:
    """A task with 130 upstreams needs 16-bit counts: the topology's ``num_upstreams`` and the
    run's upstream-done column both take that width, and the task runs once all 130 are DONE
    (each completion batch compared at 16 bits, in numpy and one by one)."""
    from swarmfold.core import decide, initial_state
    from swarmfold.core.config import SwarmConfig
    from swarmfold.core.events import RunStarted
    from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec
    from swarmfold.shell.server.instant import drive

    roots = [TaskSpec(i, 1, 1) for i in range(1, 131)]
    spec = TopologySpec(
        tasks=[*roots, TaskSpec(131, 1, 1, upstream_ids=tuple(range(1, 131)))],
        arrays=[ArraySpec(1, "a", 500)],
        resource_sets=[ResourceSetSpec(1, "all.q", {"cores": 1})],
    )
    state = decide(initial_state(), RunStarted(0.0, 1, 1, spec, run_status="R")).state
    assert state.topology is not None
    num_upstreams = state.topology.num_upstreams
    assert isinstance(num_upstreams, memoryview) and num_upstreams.format == "h"
    assert num_upstreams[130] == 130 and num_upstreams[0] == 0
    assert int_view(array("q", [1])).dtype == np.int64
    assert CountColumn.for_upstreams(num_upstreams).values.dtype == np.int16
    result = drive(spec, SwarmConfig(timeout=1e9))
    assert result.final_status == "D" and result.state.status[130] == "D"
    assert pickle.loads(pickle.dumps(state.topology)).num_upstreams.format == "h"
