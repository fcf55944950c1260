"""The status column (core/status_column.py): one byte a task, chunks copied on first write."""

from __future__ import annotations

import pickle

import pytest
from pyrsistent import pvector

from swarmfold.core.status_column import CHUNK_SIZE, StatusColumn

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
    tx[0] = "R"  # the chunk was handed over to ``first``: this write copies it again
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
