"""Read-only containers: ``FrozenDict`` and the topology's views survive copy and pickle."""

from __future__ import annotations

import copy
import pickle
from typing import Any
from unittest.mock import patch

import attrs
import pytest

from swarmfold.core import decide, initial_state, rerooted_column
from swarmfold.core.events import RunStarted
from swarmfold.core.frozen import FrozenDict, frozen_ints
from swarmfold.core.state import Tx
from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec


def test_frozen_dict_reads_like_a_dict_keeps_order_and_refuses_writes() -> None:
    d = FrozenDict({"b": 1, "a": 2})
    assert list(d) == ["b", "a"] and d == {"a": 2, "b": 1} and isinstance(d, dict)
    assert d.get("a") == 2 and d | {"c": 3} == {"b": 1, "a": 2, "c": 3}
    with pytest.raises(TypeError):
        d |= {"c": 3}
    assert d == {"b": 1, "a": 2}
    assert hash(d) == hash(FrozenDict({"a": 2, "b": 1}))
    assert pickle.loads(pickle.dumps(d)) == d and type(pickle.loads(pickle.dumps(d))) is FrozenDict
    assert copy.copy(d) is d and copy.deepcopy(d) == d
    assert repr(d) == "FrozenDict({'b': 1, 'a': 2})"


def test_frozen_dict_set_and_discard_return_changed_copies() -> None:
    """As a ``PMap``'s: the state's small maps (status counts, per-array counts) are ``FrozenDict``s."""
    d = FrozenDict({"G": 2, "Q": 1})
    assert d.set("G", 1) == {"G": 1, "Q": 1} and type(d.set("D", 1)) is FrozenDict
    assert d.discard("Q") == {"G": 2} and d.discard("X") is d
    assert d == {"G": 2, "Q": 1}


def test_a_runs_small_maps_are_frozen_dicts_and_unchanged_ones_are_shared() -> None:
    spec = TopologySpec(
        tasks=[TaskSpec(1, 10, 1), TaskSpec(2, 10, 1, upstream_ids=(1,))],
        arrays=[ArraySpec(10, "a", 5)],
        resource_sets=[ResourceSetSpec(1, "all.q", {"cores": 1})],
    )
    state = decide(initial_state(), RunStarted(0.0, 1, 1, spec, run_status="R")).state
    for name in ("status_counts", "active_by_array", "inflight_by_array", "array_limits"):
        assert type(getattr(state, name)) is FrozenDict, name
    assert state.status_counts == {"G": 2} and state.array_limits == {10: 5}
    tx = Tx(state)
    assert tx.array_limits.get(10) == 5  # opened, read only
    tx.status_counts["G"] = 2  # written back as it was
    assert state.inflight_by_array == {10: 1}  # task 1 is in a batch
    tx.inflight_by_array.set(10, 2)
    new = tx.commit()
    assert new.array_limits is state.array_limits and new.status_counts is state.status_counts
    assert new.inflight_by_array == {10: 2} and type(new.inflight_by_array) is FrozenDict
    assert state.inflight_by_array == {10: 1}


def test_frozen_ints_is_a_read_only_view() -> None:
    view = frozen_ints([3, 1, 2])
    assert view.readonly and view.tolist() == [3, 1, 2] and view[1] == 1
    with pytest.raises(TypeError):
        view[0] = 9
    assert frozen_ints(view) is view


def _topology() -> Any:
    spec = TopologySpec(
        tasks=[
            TaskSpec(1, 1, 1), TaskSpec(2, 1, 1, upstream_ids=(1,)), TaskSpec(5, 1, 1, upstream_ids=(1, 2))
        ],
        arrays=[ArraySpec(1)],
        resource_sets=[ResourceSetSpec(1, "q", {"memory": 1})],
    )
    state = decide(initial_state(), RunStarted(0.0, 1, 1, spec, run_status="R")).state
    return state.topology


def test_the_topology_is_its_own_copy_and_pickles_read_only() -> None:
    topo = _topology()
    assert copy.copy(topo) is topo and copy.deepcopy(topo) is topo
    again = pickle.loads(pickle.dumps(topo))
    for f in attrs.fields(type(topo)):
        assert getattr(again, f.name) == getattr(topo, f.name), f.name
    assert again.down_flat.readonly and again.downstream[0] == (1, 2)
    with pytest.raises(TypeError):
        again.num_upstreams[0] = 5


def test_resource_codes_take_the_width_the_table_needs() -> None:
    """200 distinct resource sets need 16-bit codes; every task still reads its own resources
    (one by one, as a gathered group, and after a pickle round trip)."""
    from swarmfold.core.topology import build_topology

    spec = TopologySpec(
        tasks=[TaskSpec(i + 1, 1, i % 200) for i in range(400)],
        arrays=[ArraySpec(1)],
        resource_sets=[ResourceSetSpec(k, "q", {"memory": k + 1}) for k in range(200)],
    )
    topo = build_topology(spec)
    column = topo.resources_of
    assert column.codes.format == "h"
    expected = [dict(column.table[0].requested)["memory"] + k % 200 for k in range(400)]
    assert [dict(r.requested)["memory"] for r in column] == expected
    assert [dict(column[i].requested)["memory"] for i in (0, 199, 399)] == [1, 200, 200]
    assert column.at(list(range(400))) == list(column)
    with patch.object(rerooted_column, "BIG_COLUMN", 0):  # gathered through numpy
        assert column.at(list(range(399, -1, -1))) == list(column)[::-1]
    again = pickle.loads(pickle.dumps(topo)).resources_of
    assert again.codes.format == "h" and list(again) == list(column)
