"""``Tx`` is generated from ``attrs.fields(SwarmState)``: no field can be dropped or reset."""

from __future__ import annotations

import attrs
from pyrsistent import pmap, pvector

from swarmfold.core.state import MapTx, SwarmState, Timing, Tx


def test_tx_declares_exactly_the_fields_of_the_state() -> None:
    fields = [f.name for f in attrs.fields(SwarmState)]
    assert list(Tx.__annotations__) == fields, (
        "Tx's attribute annotations must list SwarmState's fields, in order "
        "(they type the working copy that Tx builds from attrs.fields)"
    )


def test_every_field_survives_a_round_trip_through_tx() -> None:
    """Each field gets a value different from its default; ``Tx(state).commit()`` keeps it."""
    state = SwarmState(
        phase="running",
        workflow_id=3,
        workflow_run_id=4,
        run_status="R",
        heartbeat_status="R",
        status=pvector("GD"),
        upstream_done=pvector([0, 1]),
        place=pvector([0, 5]),
        status_counts=pmap({"G": 1, "D": 1}),
        active_by_array=pmap({1: 2}),
        inflight_by_array=pmap({1: 1}),
        inflight_total=1,
        ready_count=1,
        evaluating_count=2,
        next_back_seq=6,
        next_front_seq=-3,
        workflow_limit=9,
        array_limits=pmap({1: 10}),
        batch_size=7,
        timing=Timing(started_at=1.0),
        n_executions=5,
        next_command_id=11,
        distributor_dead=True,
        distributor_detail="gone",
        num_previously_complete=1,
        anomalies=2,
    )
    tx = Tx(state)
    assert isinstance(tx.pending, MapTx) and isinstance(tx.status_counts, dict)
    again = tx.commit()
    for f in attrs.fields(SwarmState):
        assert getattr(again, f.name) == getattr(state, f.name), f.name


def test_writes_through_tx_leave_the_input_state_untouched() -> None:
    state = SwarmState(status=pvector("GG"), status_counts=pmap({"G": 2}), array_limits=pmap({1: 1}))
    tx = Tx(state)
    tx.status[0] = "D"
    tx.status_counts["G"] = 1
    tx.array_limits.set(1, 5)
    tx.phase = "running"
    new = tx.commit()
    assert state.status == pvector("GG") and state.status_counts == {"G": 2}
    assert state.array_limits == {1: 1} and state.phase == "new"
    assert new.status == pvector("DG") and new.status_counts == {"G": 1}
    assert new.array_limits == {1: 5} and new.phase == "running"
