"""The status column (core/status_column.py): one byte a task, a ``RerootedColumn`` whose
versions share one array (core/rerooted_column.py)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pvector

from swarmfold.core.status_column import StatusColumn

CHUNK_SIZE = 4096  # any size: the column has no chunks; spreads the writes below

LETTERS = "GQIORDEAF"


def column(n: int) -> StatusColumn:
    return StatusColumn.of("".join(LETTERS[i % len(LETTERS)] for i in range(n)))


def test_reads_as_a_sequence_of_letters() -> None:
    col = column(2 * CHUNK_SIZE + 5)
    letters = "".join(LETTERS[i % len(LETTERS)] for i in range(len(col)))
    assert len(col) == len(letters)
    assert col[0] == "G" and col[CHUNK_SIZE] == letters[CHUNK_SIZE] and col[-1] == letters[-1]
    assert "".join(col) == letters and col.tobytes() == letters.encode()
    assert col.tolist() == list(letters) and col.count("G") == letters.count("G")
    assert col[3:9] == letters[3:9]
    with pytest.raises(IndexError):
        col[len(col)]
    assert col == StatusColumn.of(letters) and col == list(letters) and col == pvector(letters)
    assert col != StatusColumn.of("G" + letters[1:-1] + "D") and col != list(letters[:-1])


def test_a_working_copy_never_changes_the_column_it_came_from() -> None:
    col = column(3 * CHUNK_SIZE)
    before = col.tobytes()
    tx = col.evolver()
    tx[5] = "D"
    tx.fill([1, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 7], "F")
    assert col.tobytes() == before
    assert tx[5] == "D" and tx[CHUNK_SIZE + 1] == "F"
    assert tx.letters_at([5, 1, 2 * CHUNK_SIZE + 7]) == b"DFF"
    after = tx.persistent()
    assert after[5] == "D" and after[2 * CHUNK_SIZE + 7] == "F" and col[5] == before[5:6].decode()


def test_a_frozen_column_is_not_reached_by_later_writes_to_its_working_copy() -> None:
    tx = column(2 * CHUNK_SIZE).evolver()
    tx[0] = "D"
    first = tx.persistent()
    tx[0] = "R"  # a write after persistent() opens a new working copy of ``first``
    tx[1] = "R"
    second = tx.persistent()
    assert (first[0], first[1]) == ("D", "Q")
    assert (second[0], second[1]) == ("R", "R")
    untouched = column(4).evolver()
    assert untouched.persistent() == column(4)


def test_set_pickle_and_the_empty_column() -> None:
    col = column(10)
    changed = col.set(3, "A")
    assert changed[3] == "A" and col[3] == LETTERS[3]
    assert pickle.loads(pickle.dumps(changed)) == changed
    empty = StatusColumn.of("")
    assert len(empty) == 0 and list(empty) == [] and empty.tobytes() == b""


def test_every_version_of_a_chain_reads_as_it_was_frozen_in_any_order() -> None:
    """Each working copy writes into the array the versions share; reading an older version
    re-roots the array at it, and reading a newer one again re-roots it back."""
    base = column(2 * CHUNK_SIZE)
    tx = base.evolver()
    tx.fill(list(range(0, 40, 2)), "D")
    first = tx.persistent()
    first_bytes = first.tobytes()
    a, b = first.evolver(), first.evolver()  # two working copies of one version: b detaches a
    a.fill(list(range(40)), "R")
    b[1] = "F"
    assert first.tobytes() == first_bytes
    assert a.letters_at([0, 1, 39]) == b"RRR" and b.letters_at([0, 1, 2]) == b"DFD"
    second_a, second_b = a.persistent(), b.persistent()
    assert first.tobytes() == first_bytes and base.tobytes() == column(2 * CHUNK_SIZE).tobytes()
    assert second_a[1] == "R" and second_b[1] == "F" and second_b[0] == "D"
    unchanged = second_a.evolver()
    assert unchanged.letters_at(list(range(20))) == b"R" * 20
    assert unchanged.persistent() is second_a  # no write: the same column
    assert second_a.evolver().codes()[:3].tobytes() == b"RRR"
    assert base[0] == "G" and first[0] == "D" and second_a[0] == "R" and first[1] == "Q"


_WRITES = st.lists(st.tuples(st.integers(0, 3 * CHUNK_SIZE), st.sampled_from(LETTERS)), max_size=60)


@given(st.integers(1, 3 * CHUNK_SIZE), st.lists(_WRITES, max_size=6))
def test_writes_of_few_and_many_tasks_read_back_as_a_list_does(
    n: int, calls: list[list[tuple[int, str]]]
) -> None:
    """Each call writes one letter to some tasks (a loop below 16 of them, numpy above), then
    freezes; every column of the chain reads as the list model of that step."""
    model = list(column(n).tobytes().decode())
    col = column(n)
    frozen: list[tuple[StatusColumn, str]] = []
    for writes in calls:
        tx = col.evolver()
        for letter in sorted({w for _, w in writes}):
            indexes = [i % n for i, w in writes if w == letter]
            tx.fill(indexes, letter)
            for i in indexes:
                model[i] = letter
        picks = [i % n for i, _ in writes]
        assert tx.letters_at(picks) == "".join(model[i] for i in picks).encode()
        col = tx.persistent()
        frozen.append((col, "".join(model)))
    for col, letters in frozen:
        assert col.tobytes() == letters.encode() and col == list(letters)
