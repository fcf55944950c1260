"""Property: the bulk path of ``apply_reports`` decides exactly what the per-task path does.

Reports above ``bulk_status_threshold`` ids per status are decided in C: large groups are
first filtered (statuses gathered as bytes and compared to the reported letter), then a group
is applied at once through byte masks (unchanged, may move, stale); below the threshold every
id is looked at in Python. For random chains, random local statuses and random reports (every status code,
unknown ids, ids listed under two codes, ready tasks fallen out of the queue), both paths give
the same change count, the same commands and the same state, field for field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from unittest.mock import patch

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmfold.core import SwarmConfig, decide, initial_state, task_status
from swarmfold.core.events import RunStarted
from swarmfold.core.id_array import IdArray
from swarmfold.core.readiness import leave_ready_queue
from swarmfold.core.specs import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec
from swarmfold.core.state import SwarmState, Tx, in_ready_queue
from swarmfold.core.task_status import apply_reports

CODES = "GQIORDEAF"


@st.composite
def reports(draw: st.DrawFn) -> tuple[int, str, dict[str, tuple[int, ...]], frozenset[int]]:
    """``(first task id, local statuses, report, tasks lost from the ready queue)`` for a chain
    of ``n`` tasks."""
    n = draw(st.integers(1, 30))
    first = draw(st.integers(0, 5))
    local = draw(st.text(alphabet=CODES, min_size=n, max_size=n))
    known = st.integers(first, first + n - 1)
    ids = draw(st.sampled_from([known, st.integers(first - 1, first + n)]))  # or one unknown each side
    # Lists without repeats too: a group then goes through the mask path as a whole.
    unique = draw(st.booleans())
    report = draw(
        st.dictionaries(st.sampled_from(CODES), st.lists(ids, max_size=2 * n, unique=unique).map(tuple))
    )
    lost = draw(st.frozensets(st.integers(0, n - 1)))
    return first, local, report, lost


def _outcomes(
    first: int, local: str, report: Mapping[str, Sequence[int]], lost: frozenset[int]
) -> tuple[tuple[object, ...], tuple[object, ...], SwarmState]:
    """``(outcome in C, outcome per task, the state reported to)``: apply ``report`` to a
    chain holding ``local`` statuses, with the ``lost`` tasks taken out of the ready queue."""
    n = len(local)
    chain = TopologySpec(
        tasks=[
            TaskSpec(first + k, 1, 1, upstream_ids=(first + k - 1,) if k % 3 else (), status=s)
            for k, s in enumerate(local)
        ],
        arrays=[ArraySpec(1)],
        resource_sets=[ResourceSetSpec(1, "q", {"memory": 1})],
        workflow_limit=1,  # one task in flight, the other ready ones wait in the ready queue
    )
    started = decide(initial_state(), RunStarted(0.0, 1, 1, chain, run_status="R")).state
    assert started.topology is not None and len(started.status) == n
    # Some ready tasks fall out of the ready queue: an unchanged G/A report must heal them.
    tx = Tx(started)
    for i in sorted(lost):
        if in_ready_queue(tx.place[i]):
            leave_ready_queue(tx, i)
    start = tx.commit()

    def outcome(threshold: int) -> tuple[object, ...]:
        tx = Tx(attrs.evolve(start, config=SwarmConfig(bulk_status_threshold=threshold)))
        changed = apply_reports(tx, report, "test")
        state = attrs.evolve(tx.commit(), config=SwarmConfig())
        return changed, tuple(tx.commands), state

    return outcome(0), outcome(10**9), start


@st.composite
def wide_reports(draw: st.DrawFn) -> tuple[int, str, dict[str, tuple[int, ...]], frozenset[int]]:
    """Like ``reports``, over chains of 100-200 tasks with groups under an eighth of them: the
    groups are not filtered as a full sync's are, so a report that lists each task once is
    checked as a whole (``_listed_once``); one that lists a task twice is checked per group."""
    n = draw(st.integers(100, 200))
    first = draw(st.integers(0, 5))
    local = draw(st.text(alphabet=CODES, min_size=n, max_size=n))
    ids = st.integers(first, first + n - 1)
    report = draw(st.dictionaries(st.sampled_from(CODES), st.lists(ids, max_size=12, unique=True).map(tuple)))
    lost = draw(st.frozensets(st.integers(0, n - 1)))
    return first, local, report, lost


@settings(max_examples=500, deadline=None)
@given(st.one_of(reports(), wide_reports()))
def test_the_bulk_and_the_per_task_paths_agree(
    case: tuple[int, str, dict[str, tuple[int, ...]], frozenset[int]],
) -> None:
    """Chains of 1-30 tasks (full-sync filtering, groups applied at once, per task) and of
    100-200 tasks (a report listing each task once is checked whole)."""
    in_c, per_task, _ = _outcomes(*case)
    assert in_c == per_task


@settings(max_examples=300, deadline=None)
@given(st.one_of(reports(), wide_reports()))
def test_groups_filtered_for_their_size_decide_as_task_by_task(
    case: tuple[int, str, dict[str, tuple[int, ...]], frozenset[int]],
) -> None:
    """A group above ``SPLIT_ABOVE`` ids is filtered against the status column first even
    under an eighth of the workflow (a full sync's growing DONE group): lowered to 4 here,
    so the wide chains' groups take that path too, and it still decides as task by task."""
    with patch.object(task_status, "SPLIT_ABOVE", 4):
        in_c, per_task, _ = _outcomes(*case)
    assert in_c == per_task


@settings(max_examples=150, deadline=None)
@given(reports())
def test_packed_reports_decide_as_tuples_do(
    case: tuple[int, str, dict[str, tuple[int, ...]], frozenset[int]],
) -> None:
    """A report whose lists come as ``IdArray``s (full syncs of the in-process server, long
    lists read from a log) decides what the same report of tuples does, on both paths."""
    first, local, report, lost = case
    packed = {code: IdArray.of(ids) for code, ids in report.items()}

    def comparable(outcome: tuple[object, ...]) -> tuple[object, ...]:
        changed, commands, state = outcome
        assert isinstance(state, SwarmState)  # each chain has a topology of its own
        return changed, commands, attrs.evolve(state, topology=None)

    from_packed, from_tuples = _outcomes(first, local, packed, lost), _outcomes(first, local, report, lost)
    for a, b in zip(from_packed[:2], from_tuples[:2], strict=True):
        assert comparable(a) == comparable(b)


def test_a_small_group_heals_lost_tasks_and_moves_the_others_through_byte_masks() -> None:
    """A G group too small for the bulk filter (under an eighth of the tasks) is applied at
    once: an unchanged ready task lost from the queue is healed, an unchanged waiting one is
    left alone, a QUEUED one moves back, a DONE one is reset; as task by task."""
    local = "GGGQD" + "G" * 35  # chains of three: tasks 0, 3, 6, ... are roots
    lost = frozenset({0})
    report = {"G": (1, 2, 4, 5)}  # task ids are indexes + 1: 0 (lost), 1 (waits), 3 (Q), 4 (D)
    in_c, per_task, start = _outcomes(1, local, report, lost)
    assert in_c == per_task
    changed, _, state = in_c
    assert changed == 2
    assert in_ready_queue(state.place[0]) and not in_ready_queue(start.place[0])
    assert state.status[3] == "G" and state.status[4] == "G"
    assert not in_ready_queue(state.place[1])
