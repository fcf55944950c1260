"""``IntColumn``: versions that share one array read as independent immutable columns."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmfold.core.rerooted_column import CUT_AFTER, IntColumn


def test_a_write_makes_a_new_version_and_leaves_the_old_one_readable() -> None:
    old = IntColumn.of([1, 2, 3])
    tx = old.evolver()
    tx.write(0, 10)
    tx.fill([1, 2], 7)
    new = tx.persistent()
    assert new.tolist() == [10, 7, 7]
    assert old.tolist() == [1, 2, 3]  # re-rooted at the old version
    assert new.tolist() == [10, 7, 7]  # and back
    assert old[0] == 1 and new[0] == 10


def test_the_earliest_old_value_of_an_entry_written_twice_wins() -> None:
    old = IntColumn.of([0, 0])
    tx = old.evolver()
    tx.write(1, 5)
    tx.assign([1, 1], [6, 7])
    new = tx.persistent()
    assert (old.tolist(), new.tolist()) == ([0, 0], [0, 7])


def test_a_branch_from_an_old_version_does_not_disturb_the_other_branch() -> None:
    root = IntColumn.filled(4, 0)
    a = root.set(0, 1).set(1, 2)
    b = root.set(3, 9)
    assert a.tolist() == [1, 2, 0, 0]
    assert b.tolist() == [0, 0, 0, 9]
    assert root.tolist() == [0, 0, 0, 0]


def test_reading_any_version_while_a_working_copy_is_open_never_sees_its_writes() -> None:
    base = IntColumn.of([1, 2, 3])
    tx = base.evolver()
    tx.write(2, 30)
    assert base.tolist() == [1, 2, 3]  # the working copy is moved onto a private array
    assert tx[2] == 30
    tx.write(0, 10)
    assert tx.persistent().tolist() == [10, 2, 30]
    assert base.tolist() == [1, 2, 3]


def test_a_second_working_copy_on_the_same_version_is_independent() -> None:
    base = IntColumn.of([1, 2])
    first = base.evolver()
    first.write(0, 5)
    second = base.evolver()
    second.write(1, 6)
    assert (first.persistent().tolist(), second.persistent().tolist()) == ([5, 2], [1, 6])
    assert base.tolist() == [1, 2]


def test_abort_undoes_every_write() -> None:
    base = IntColumn.of([1, 2, 3])
    tx = base.evolver()
    tx.fill([0, 1], 9)
    tx.write(0, 8)
    tx.abort()
    assert base.tolist() == [1, 2, 3]
    assert base.evolver().persistent() is base  # nothing written: the same version


def test_equality_hash_and_pickle_follow_the_values() -> None:
    old = IntColumn.of([4, 5])
    new = old.set(1, 6)
    assert new == [4, 6] and old == [4, 5] and old != new
    assert old == IntColumn.of([4, 5]) and hash(old) == hash(IntColumn.of([4, 5]))
    assert pickle.loads(pickle.dumps(new)).tolist() == [4, 6]
    assert old.tolist() == [4, 5]


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 8),
    steps=st.lists(
        st.tuples(st.integers(0, 50), st.lists(st.tuples(st.integers(0, 7), st.integers(-3, 3)), max_size=6)),
        max_size=25,
    ),
    reads=st.lists(st.integers(0, 50), max_size=25),
)
def test_every_version_reads_as_its_own_list(
    n: int, steps: list[tuple[int, list[tuple[int, int]]]], reads: list[int]
) -> None:
    """A tree of versions, each made from any earlier one, read back in any order."""
    versions = [IntColumn.filled(n, 0)]
    models = [[0] * n]
    for parent, writes in steps:
        p = parent % len(versions)
        tx = versions[p].evolver()
        model = list(models[p])
        for i, value in writes:
            tx.write(i % n, value)
            model[i % n] = value
        versions.append(tx.persistent())
        models.append(model)
    for k in reads + list(range(len(versions))):
        k %= len(versions)
        assert versions[k].tolist() == models[k]


def test_an_old_version_kept_alive_holds_at_most_about_a_column_of_undo_entries() -> None:
    """A family is cut once its versions were handed more undo entries than the column is
    long (``CUT_AFTER`` at least): whoever keeps the first version does not keep every write
    of the run alive, and every version still reads right."""
    n = CUT_AFTER
    first = IntColumn.filled(n, 0)
    column, model = first, [0] * n
    kept = [(first, list(model))]
    for step in range(60):
        tx = column.evolver()
        at = [(step * 997 + k * 131) % n for k in range(500)]
        tx.fill(at, step + 1)
        for i in at:
            model[i] = step + 1
        column = tx.persistent()
        if step % 10 == 0:
            kept.append((column, list(model)))

    def entries_reachable(version: IntColumn) -> int:
        total, v = 0, version
        while v is not None:
            total += len(v._indexes)
            v = v._toward
        return total

    assert entries_reachable(first) <= n + 500  # 30,000 were written
    for version, values in reversed(kept):
        assert version.tolist() == values
    assert column.tolist() == model


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(0, 3), min_size=1, max_size=40),
    picks=st.lists(st.integers(0, 39), max_size=40),
    old=st.integers(0, 3),
    through_numpy=st.booleans(),
    abort=st.booleans(),
)
def test_replace_writes_only_the_entries_holding_the_old_value(
    values: list[int], picks: list[int], old: int, through_numpy: bool, abort: bool
) -> None:
    """``replace`` (numpy's path when the column counts as big, else one entry at a time)
    returns the indexes that held ``old``, in order, writes ``new`` there only, and is
    undone like any other write."""
    from unittest import mock

    from swarmfold.core import rerooted_column

    indexes = [i % len(values) for i in picks]
    expected_replaced = [i for i in indexes if values[i] == old]
    expected = [9 if i in set(expected_replaced) else v for i, v in enumerate(values)]
    base = IntColumn.of(values)
    with mock.patch.multiple(
        rerooted_column, BIG_COLUMN=0 if through_numpy else 1 << 40, MANY=1
    ):
        tx = base.evolver()
        assert tx.replace(indexes, old, 9) == expected_replaced
    if abort:
        tx.abort()
        assert base.tolist() == values
        return
    new = tx.persistent()
    assert new.tolist() == expected
    assert base.tolist() == values
    assert new.tolist() == expected
