"""``ReadyGroup.take``: the numpy walk of a big place column takes what the entry-by-entry walk takes."""

from __future__ import annotations

from array import array
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import plist

from swarmfold.core import rerooted_column
from swarmfold.core.index_list import IndexList, index_array
from swarmfold.core.ready_queue import ReadyGroup, live_checker, make_entry, packed


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
    # The back in chunks (as pushed by several decide calls), the first one partly taken.
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(back) - 1)), max_size=4, unique=True)))
    chunks = [back[a:b] for a, b in zip([0, *cuts], [*cuts, len(back)], strict=True) if back[a:b]]
    head = draw(st.integers(0, len(chunks[0]) - 1)) if chunks else 0
    group = ReadyGroup(plist(front), tuple(packed(c) for c in chunks), head)
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
    group, taken = ReadyGroup(back=(packed(back),)).take(500, place)
    expected = [i for seq, i in enumerate(range(0, n, 7), start=1) if seq % 3][:500]
    assert taken == expected
    assert group.head == 749  # the 500th live entry is the 749th (entries 3, 6, ... are dead)
    with patch.object(rerooted_column, "BIG_COLUMN", 10**9):  # entry by entry
        assert ReadyGroup(back=(packed(back),)).take(500, place) == (group, taken)


def test_a_batch_taken_in_one_gather_keeps_its_index_array() -> None:
    """The scheduling pass, the place column's fill and landing the batch read the same
    indexes through numpy: a batch taken from one slice of live entries keeps its array."""
    n = 100_000
    place = array("q", [-1]) * n
    back = [make_entry(seq, i) for seq, i in enumerate(range(0, n, 3), start=1)]
    for seq, i in enumerate(range(0, n, 3), start=1):
        place[i] = seq
    _, taken = ReadyGroup(back=(packed(back),)).take(200, place)
    assert type(taken) is IndexList and taken == list(range(0, 600, 3))
    assert index_array(taken) is index_array(taken)  # made once, with the batch
    assert index_array(taken).tolist() == taken


def _model_take(group: ReadyGroup, place: array[int], k: int) -> tuple[list[int], list[int]]:
    """``(indexes taken, entries left)``, from the group's entries as one list."""
    entries = list(group.front) + group.back_entries()
    taken: list[int] = []
    position = 0
    while position < len(entries) and len(taken) < k:
        entry = entries[position]
        position += 1
        if place[entry & 0xFFFFFFFF] == entry >> 32:
            taken.append(entry & 0xFFFFFFFF)
    return taken, entries[position:]


@settings(max_examples=400, deadline=None)
@given(groups())
def test_take_and_live_head_do_what_one_list_of_entries_does(
    case: tuple[ReadyGroup, array[int], int],
) -> None:
    """Over several chunks, a partly taken first one, a big column or a small one."""
    group, place, k = case
    expected_taken, expected_left = _model_take(group, place, k)
    for big in (False, True):
        with patch.object(rerooted_column, "BIG_COLUMN", 0 if big else 10**9), patch.object(
            rerooted_column, "MANY", 1
        ):
            left, taken = group.take(k, place)
        assert taken == expected_taken
        assert list(left.front) + left.back_entries() == expected_left
        assert all(chunk for chunk in left.back) and (not left.back or left.head < len(left.back[0]) // 8)
        is_live = live_checker(place)
        headed, head = left.live_head(is_live)
        live_left = [e for e in expected_left if is_live(e)]
        assert head == (live_left[0] if live_left else None)
        assert [e for e in list(headed.front) + headed.back_entries() if is_live(e)] == live_left


def test_entries_past_64_bits_are_kept_in_a_tuple_and_walked() -> None:
    """A sequence number of 2**31 or more makes an entry too big for int64: its chunk is a
    tuple, and a big column's take walks it entry by entry."""
    n = 100_000
    place = array("q", [-1]) * n
    seqs = [2**31 + k for k in range(100)]
    for seq, i in zip(seqs, range(0, 300, 3), strict=True):
        place[i] = seq
    chunk = packed([make_entry(seq, i) for seq, i in zip(seqs, range(0, 300, 3), strict=True)])
    assert type(chunk) is tuple
    group = ReadyGroup().extended([make_entry(1, 1)], []).extended(list(chunk), [])
    place[1] = 1
    left, taken = group.take(60, place)
    assert taken == [1, *range(0, 177, 3)]
    assert left.back_entries() == list(chunk[59:])
