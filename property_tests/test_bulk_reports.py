"""Property: the bulk path of ``apply_reports`` decides exactly what the per-task path does.

Reports above ``bulk_status_threshold`` ids per status are first filtered in C (statuses
gathered as bytes and compared to the reported letter); below it every id is looked at in
Python. For random chains, random local statuses and random reports (every status code,
unknown ids, ids listed under two codes, ready tasks fallen out of the queue), both paths give
the same change count, the same commands and the same state, field for field.
"""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmfold.core import SwarmConfig, decide, initial_state
from swarmfold.core.events import RunStarted
from swarmfold.core.readiness import leave_ready_queue
from swarmfold.core.specs import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec
from swarmfold.core.state import Tx, in_ready_queue
from swarmfold.core.task_status import apply_reports

CODES = "GQIORDEAF"


@st.composite
def reports(draw: st.DrawFn) -> tuple[int, str, dict[str, tuple[int, ...]], frozenset[int]]:
    """``(first task id, local statuses, report, tasks lost from the ready queue)`` for a chain
    of ``n`` tasks."""
    n = draw(st.integers(1, 30))
    first = draw(st.integers(0, 5))
    local = draw(st.text(alphabet=CODES, min_size=n, max_size=n))
    ids = st.integers(first - 1, first + n)  # one unknown id on each side
    report = draw(st.dictionaries(st.sampled_from(CODES), st.lists(ids, max_size=2 * n).map(tuple)))
    lost = draw(st.frozensets(st.integers(0, n - 1)))
    return first, local, report, lost


@settings(max_examples=300, deadline=None)
@given(reports())
def test_the_bulk_and_the_per_task_paths_agree(
    case: tuple[int, str, dict[str, tuple[int, ...]], frozenset[int]],
) -> None:
    first, local, report, lost = case
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

    assert outcome(0) == outcome(10**9)
