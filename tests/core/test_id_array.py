"""``IdArray``: a long task-id list packed as int64 that reads, compares and hashes as the
tuple of its ids, and decides as that tuple does."""

from __future__ import annotations

import pickle

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmfold.core import SwarmConfig, decide, initial_state
from swarmfold.core.commands import Command
from swarmfold.core.events import Event, TaskStatusesFetched
from swarmfold.core.id_array import IdArray, id_column
from swarmfold.shell.server.instant import drive
from swarmfold.shell.workload import reference_workload

_IDS = st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50)


@given(_IDS)
def test_it_reads_compares_and_hashes_as_the_tuple(ids: list[int]) -> None:
    packed = IdArray.of(ids)
    assert packed == tuple(ids) and tuple(ids) == packed and packed == ids
    assert hash(packed) == hash(tuple(ids))
    assert list(packed) == ids and packed.tolist() == ids
    assert all(type(i) is int for i in packed)
    assert len(packed) == len(ids)
    if ids:
        assert packed[0] == ids[0] and type(packed[-1]) is int and packed[-1] == ids[-1]
        assert packed[1:] == tuple(ids[1:]) and isinstance(packed[1:], IdArray)
    assert pickle.loads(pickle.dumps(packed)) == packed


def test_it_differs_from_other_ids_and_other_types() -> None:
    packed = IdArray.of([1, 2, 3])
    assert packed != (1, 2) and packed != (1, 2, 4) and packed != IdArray.of([1, 2, 4])
    assert packed != "123" and packed != {1, 2, 3}
    assert repr(IdArray.of(range(20))) == "IdArray([0, 1, 2, 3, 4, 5, 6, 7, ...], 20 ids)"


def test_its_array_cannot_be_written_and_only_int64_columns_are_taken() -> None:
    column = np.arange(5, dtype=np.int64)
    packed = IdArray(column)
    with pytest.raises(ValueError, match="read-only"):
        packed.array[0] = 9
    column[0] = 7  # the caller's array stays the caller's: only the view is read-only
    with pytest.raises(TypeError, match="1-dimensional int64 array, got 1-d int32"):
        IdArray(np.arange(3, dtype=np.int32))
    with pytest.raises(TypeError, match="got 2-d int64"):
        IdArray(np.zeros((2, 2), dtype=np.int64))


def test_id_column_is_the_packed_array_itself_or_none_past_64_bits() -> None:
    packed = IdArray.of([4, 5])
    assert id_column(packed) is packed.array
    assert id_column((1, 2, 3)).tolist() == [1, 2, 3]  # type: ignore[union-attr]
    assert id_column((1, 2**64)) is None


def test_an_event_holding_one_equals_the_event_holding_the_tuple() -> None:
    packed = TaskStatusesFetched(3, 1.0, {"D": IdArray.of([7, 8, 9]), "R": [1]}, "t")
    plain = TaskStatusesFetched(3, 1.0, {"D": (7, 8, 9), "R": (1,)}, "t")
    assert packed == plain and hash(packed) == hash(plain)
    assert type(packed.tasks_by_status["D"]) is IdArray and type(packed.tasks_by_status["R"]) is tuple


def test_full_syncs_answered_packed_decide_as_tuples_do() -> None:
    """The in-process server answers full syncs with ``IdArray``s; the same run folded with
    every one of them turned back into tuples decides the same at every step."""
    recorded: list[tuple[Event, tuple[Command, ...]]] = []
    config = SwarmConfig(timeout=1e9, wedged_sync_interval=30.0)  # a full sync every 30 s
    result = drive(reference_workload(3000, seed=1, columnar=True), config, record=recorded)
    assert result.summary is not None and result.summary.final_status == "D"
    events = [event for event, _ in recorded]
    packed = [e for e in events if isinstance(e, TaskStatusesFetched)
              and any(type(v) is IdArray for v in e.tasks_by_status.values())]
    assert len(packed) >= 2, "full syncs come packed"
    a = b = initial_state()
    for event in events:
        plain: Event = event
        if isinstance(event, TaskStatusesFetched):
            plain = TaskStatusesFetched(
                event.command_id, event.at, {k: tuple(v) for k, v in event.tasks_by_status.items()},
                event.server_time,
            )
            assert all(type(v) is tuple for v in plain.tasks_by_status.values())
        da, db = decide(a, event), decide(b, plain)
        assert da.commands == db.commands
        a, b = da.state, db.state
    assert attrs.evolve(a, topology=None) == attrs.evolve(b, topology=None)  # each built its own
