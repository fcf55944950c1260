"""``ReadyGroup.take``: the numpy walk of a big place column takes what the entry-by-entry walk takes."""

from __future__ import annotations

from array import array
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import plist, pvector

from swarmfold.core import rerooted_column
from swarmfold.core.index_list import IndexList, index_array
from swarmfold.core.ready_queue import ReadyGroup, make_entry


@st.composite
def groups(draw: st.DrawFn) -> tuple[ReadyGroup, array[int], int]:
    """A group over ``n`` tasks with entries at the front and the back (some of them dead:
    their task's place moved on), a head, the place column and how many to take."""
    n = draw(st.integers(1, 60))
    seqs = iter(range(1, 10_000))
    back = [make_entry(next(seqs), draw(st.integers(0, n - 1))) for _ in range(draw(st.integers(0, 80)))]
    front = [make_entry(-next(seqs), draw(st.integers(0, n - 1))) for _ in range(draw(st.integers(0, 5)))]
    place = array("q", [-1]) * n
    for entry in front + back:  # the latest entry of a task is live, unless it moved on
        if draw(st.booleans()) or draw(st.booleans()):
            place[entry & 0xFFFFFFFF] = entry >> 32
    head = draw(st.integers(0, len(back)))
    group = ReadyGroup(plist(front), pvector(back), head)
    return group, place, draw(st.integers(0, 100))


@settings(max_examples=400, deadline=None)
@given(groups())
def test_the_numpy_walk_takes_what_the_entry_walk_takes(case: tuple[ReadyGroup, array[int], int]) -> None:
    group, place, k = case
    by_entry = group.take(k, place)  # 60 tasks at most: a small column, walked entry by entry
    with patch.object(rerooted_column, "BIG_COLUMN", 0), patch.object(rerooted_column, "MANY", 1):
        in_numpy = group.take(k, place)
    assert in_numpy == by_entry


def test_a_big_column_is_walked_in_numpy_and_stops_at_the_kth_live_entry() -> None:
    n = 100_000
    place = array("q", [-1]) * n
    back = [make_entry(seq, i) for seq, i in enumerate(range(0, n, 7), start=1)]
    for seq, i in enumerate(range(0, n, 7), start=1):
        if seq % 3:  # every third entry is dead
            place[i] = seq
    group, taken = ReadyGroup(back=pvector(back)).take(500, place)
    expected = [i for seq, i in enumerate(range(0, n, 7), start=1) if seq % 3][:500]
    assert taken == expected
    assert group.head == 749  # the 500th live entry is the 749th (entries 3, 6, ... are dead)
    with patch.object(rerooted_column, "BIG_COLUMN", 10**9):  # entry by entry
        assert ReadyGroup(back=pvector(back)).take(500, place) == (group, taken)


def test_a_batch_taken_in_one_gather_keeps_its_index_array() -> None:
    """The scheduling pass, the place column's fill and landing the batch read the same
    indexes through numpy: a batch taken from one slice of live entries keeps its array."""
    n = 100_000
    place = array("q", [-1]) * n
    back = [make_entry(seq, i) for seq, i in enumerate(range(0, n, 3), start=1)]
    for seq, i in enumerate(range(0, n, 3), start=1):
        place[i] = seq
    _, taken = ReadyGroup(back=pvector(back)).take(200, place)
    assert type(taken) is IndexList and taken == list(range(0, 600, 3))
    assert index_array(taken) is index_array(taken)  # made once, with the batch
    assert index_array(taken).tolist() == taken
