"""The transition tables of core/transitions.py: their shape, and that the core obeys them."""

from __future__ import annotations

import pytest

from swarmfold.core import ProtocolViolation, decide, initial_state
from swarmfold.core.commands import NoteAnomaly
from swarmfold.core.events import RunStarted
from swarmfold.core.state import ATTACHING, DONE, FINALIZING, NEW, RUNNING, STARTING, Tx
from swarmfold.core.statuses import FINAL, QUEUEABLE, TASK_STATUSES
from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec
from swarmfold.core.transitions import (
    ENTERED_FROM,
    HEALS,
    PHASE_ORDER,
    PHASES,
    REACTIONS,
    STATUS_ORDER,
    accepts,
    advance,
    next_phase,
)

# --- run phases ------------------------------------------------------------------------------


def test_every_phase_is_reachable_from_new_and_done_is_the_only_end() -> None:
    reached = {NEW}
    frontier = [NEW]
    while frontier:
        phase = frontier.pop()
        for (source, _), target in PHASES.items():
            if source == phase and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(PHASE_ORDER)
    ends = {p for p in PHASE_ORDER if not any(source == p for source, _ in PHASES)}
    assert ends == {DONE}


def test_a_trigger_with_no_entry_is_a_protocol_violation_naming_phase_and_trigger() -> None:
    with pytest.raises(ProtocolViolation, match=r"'done' has no transition on 'abort'"):
        next_phase(DONE, "abort")
    with pytest.raises(ProtocolViolation, match=r"'running'.*'attach'.*allowed: \['abort', 'finalize'\]"):
        next_phase(RUNNING, "attach")


def test_advance_moves_the_working_copy_by_the_table() -> None:
    tx = Tx(initial_state())
    advance(tx, "attach")
    assert tx.phase == ATTACHING
    advance(tx, "request_running")
    assert tx.phase == STARTING
    advance(tx, "abort")
    assert tx.phase == FINALIZING
    with pytest.raises(ProtocolViolation):
        advance(tx, "enter_loop")


def test_no_module_assigns_the_phase_but_the_table() -> None:
    """``phase`` changes only in ``advance`` (Tx copies it over; nothing else writes it)."""
    import pathlib
    import re

    import swarmfold.core as core

    root = pathlib.Path(core.__file__).parent
    writers = [
        f"{path.name}:{n}"
        for path in sorted(root.glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.phase\s*=[^=]", line)
    ]
    assert writers == [w for w in writers if w.startswith("transitions.py:")] and len(writers) == 1


# --- task statuses ---------------------------------------------------------------------------


def test_the_acceptance_table_covers_every_status_and_only_resets_leave_final() -> None:
    assert set(ENTERED_FROM) == set(TASK_STATUSES) == set(STATUS_ORDER)
    for new, sources in ENTERED_FROM.items():
        assert new not in sources  # an unchanged report is not a transition
        for old in FINAL:
            assert (old in sources) == (new == "G"), (old, new)
        assert set(TASK_STATUSES) - FINAL - {new} <= sources  # live statuses move freely
    assert not accepts("D", "Z") and not accepts("G", "Z")


def test_reactions_and_heals_are_keyed_by_known_statuses() -> None:
    assert set(REACTIONS) == {"D", "G", "A"}
    assert set(HEALS) == set(QUEUEABLE)


def _spec(n: int = 3) -> TopologySpec:
    return TopologySpec(
        tasks=[TaskSpec(i, 1, 1) for i in range(1, n + 1)],
        arrays=[ArraySpec(1)],
        resource_sets=[ResourceSetSpec(1, "q", {"memory": 1})],
    )


def test_apply_reports_refuses_what_the_table_refuses() -> None:
    from swarmfold.core.task_status import apply_reports

    state = decide(initial_state(), RunStarted(0.0, 1, 1, _spec(), run_status="R")).state
    tx = Tx(state)
    for i in range(3):
        tx.status[i] = "DFR"[i]
    tx.status_counts.update({"G": 0, "D": 1, "F": 1, "R": 1})
    changed = apply_reports(tx, {"Q": (1, 2, 3), "G": ()}, "test")
    assert changed == 1  # only R -> Q; D -> Q and F -> Q are stale
    assert [tx.status[i] for i in range(3)] == ["D", "F", "Q"]
    notes = [c for c in tx.commands if isinstance(c, NoteAnomaly)]
    assert [n.kind for n in notes] == ["stale_report"] and "2 report(s)" in notes[0].detail


def test_the_bulk_threshold_changes_no_decision() -> None:
    """Every ``bulk_status_threshold`` gives the same commands and state, field for field."""
    import attrs

    from swarmfold.core import SwarmConfig
    from swarmfold.core.task_status import apply_reports

    n = 40
    chain = TopologySpec(
        tasks=[TaskSpec(i, 1, 1, upstream_ids=(i - 1,) if i > 20 else ()) for i in range(1, n + 1)],
        arrays=[ArraySpec(1)],
        resource_sets=[ResourceSetSpec(1, "q", {"memory": 1})],
    )
    start = decide(initial_state(), RunStarted(0.0, 1, 1, chain, run_status="R")).state
    # A full report: most tasks unchanged (G), some DONE, a few reported G twice.
    report = {"G": tuple(range(5, n + 1)), "D": (1, 2, 3, 4, 21), "R": (6, 7)}

    def outcome(threshold: int) -> tuple[object, ...]:
        config = SwarmConfig(bulk_status_threshold=threshold)
        tx = Tx(attrs.evolve(start, config=config))
        changed = apply_reports(tx, report, "test")
        state = attrs.evolve(tx.commit(), config=SwarmConfig())
        return (changed, tuple(tx.commands), state)

    small, default, large = outcome(0), outcome(64), outcome(10**9)
    assert small == default == large
    assert small[0] == 7


def test_the_bulk_threshold_is_validated() -> None:
    from swarmfold.core import SwarmConfig
    from swarmfold.core.errors import InvalidConfig

    assert SwarmConfig().bulk_status_threshold == 64
    for bad in (-1, 1.5, "64"):
        with pytest.raises(InvalidConfig, match="bulk_status_threshold"):
            SwarmConfig(bulk_status_threshold=bad)  # type: ignore[arg-type]
