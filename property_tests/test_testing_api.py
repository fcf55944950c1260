"""``swarmfold.testing`` as a user runs it: the machine on their own configurations."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

import swarmfold.testing as testing
from swarmfold.core import SwarmConfig
from swarmfold.core.topology import TopologySpec, build_topology


def test_swarm_machine_runs_on_a_users_configuration() -> None:
    mine = SwarmConfig(heartbeat_interval=5.0, max_batch_size=2)
    seen: list[SwarmConfig] = []

    def record(config: SwarmConfig) -> SwarmConfig:
        seen.append(config)
        return config

    machine = testing.swarm_machine(configs=st.just(mine).map(record))
    assert issubclass(machine, testing.SwarmMachine)
    run_state_machine_as_test(machine, settings=settings(max_examples=15, stateful_step_count=20,
                                                         derandomize=True, deadline=None))
    assert seen and set(seen) == {mine}


def test_the_public_names() -> None:
    assert set(testing.__all__) == {
        "FAULT_KINDS", "QUEUES", "ModelServer", "SwarmMachine", "configs", "evaluate", "swarm_machine",
        "topologies",
    }


@given(spec=testing.topologies())
@settings(max_examples=30)
def test_the_bundled_topologies_are_valid_small_dags(spec: TopologySpec) -> None:
    assert 2 <= len(spec.tasks) <= 25
    build_topology(spec)  # raises on an unknown id or a cycle
