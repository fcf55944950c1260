"""Hypothesis strategies for the swarm: small random workflows and swarm configurations.

``topologies()`` draws a DAG of 2-25 tasks on 1-4 arrays with random limits, resource sets on
two queues, resource scales (numbers, lists, callables), fallback queues and ``compute_resources``
callables; some tasks start D, R or A as after a resume. ``configs`` draws the swarm's knobs,
including the size threshold of the core's bulk status path so that both paths run.
``evaluate`` plays the shell's user callables (``pick_cores`` and the ``double`` scale).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from swarmfold.core import SwarmConfig
from swarmfold.core.commands import EvaluateResources
from swarmfold.core.topology import ArraySpec, QueueSpec, ResourceSetSpec, TaskSpec, TopologySpec

__all__ = ["QUEUES", "SCALES", "configs", "evaluate", "topologies"]

QUEUES = (
    QueueSpec("all.q", queue_id=1, cluster_id=7,
              bounds={"memory": (1, 64), "cores": (1, 8), "runtime": (60, 86400)}),
    QueueSpec("long.q", queue_id=2, cluster_id=7,
              bounds={"memory": (1, 512), "cores": (1, 32), "runtime": (60, 604800)}),
)
#: Resource scales a task may carry: Jobmon's default, a number, a list, a callable name.
SCALES: tuple[Any, ...] = (None, None, {"memory": 0.5}, {"memory": (8, 16, 600)}, {"memory": "double"})


@st.composite
def topologies(draw: st.DrawFn) -> TopologySpec:
    """A DAG of 2-25 tasks on 1-4 arrays and 1-3 resource sets, limits 1-10.

    Tasks are listed in topological order. A task starts D, R or A only when all its
    upstreams start D (as after a resume); most start G.
    """
    n = draw(st.integers(2, 25), label="tasks")
    n_arrays = draw(st.integers(1, 4), label="arrays")
    n_sets = draw(st.integers(1, 3), label="resource sets")
    arrays = tuple(ArraySpec(10 + a, f"array{a}", draw(st.integers(1, 10))) for a in range(n_arrays))
    resource_sets = tuple(
        ResourceSetSpec(
            k + 1,
            draw(st.sampled_from(["all.q", "long.q"])),
            {"memory": draw(st.sampled_from([1, 4, 32])), "cores": draw(st.integers(1, 2)), "runtime": 3600},
        )
        for k in range(n_sets)
    )
    task_ids: list[int] = []
    status: dict[int, str] = {}
    tasks: list[TaskSpec] = []
    next_id = 1
    for i in range(n):
        next_id += draw(st.integers(1, 3))
        task_id = next_id
        ups: list[int] = []
        if i:
            picks = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True))
            ups = [task_ids[j] for j in picks]
        # A task starts D, R or A only when all its upstreams start D.
        s = draw(st.sampled_from("GGGGGGDDRA")) if all(status[u] == "D" for u in ups) else "G"
        status[task_id] = s
        task_ids.append(task_id)
        tasks.append(
            TaskSpec(
                task_id=task_id,
                array_id=arrays[draw(st.integers(0, n_arrays - 1))].array_id,
                resource_set_id=draw(st.integers(1, n_sets)),
                upstream_ids=tuple(ups),
                max_attempts=draw(st.integers(1, 3)),
                status=s,
                resource_scales=draw(st.sampled_from(SCALES)),
                fallback_queues=draw(st.sampled_from([None, ("long.q",)])),
                compute_resources=draw(st.sampled_from([None, None, None, None, "pick_cores"])),
            )
        )
    return TopologySpec(
        tasks=tasks,
        arrays=arrays,
        resource_sets=resource_sets,
        queues=QUEUES,
        workflow_limit=draw(st.integers(1, 10), label="workflow limit"),
    )


configs = st.builds(
    SwarmConfig,
    heartbeat_interval=st.sampled_from([1.0, 5.0, 30.0]),
    wedged_sync_interval=st.sampled_from([-1.0, 20.0, 600.0]),
    fail_fast=st.sampled_from([False, False, False, True]),
    timeout=st.sampled_from([1e7, 1e7, 1e7, 90.0]),
    max_batch_size=st.sampled_from([1, 2, 3, 500]),
    adaptive_batching=st.booleans(),
    target_batch_seconds=st.sampled_from([0.005, 1.0]),
    # 0: every report takes the core's bulk status path; 10**9: none does; 4: small ones don't.
    bulk_status_threshold=st.sampled_from([0, 4, 64, 10**9]),
)


def evaluate(command: EvaluateResources) -> dict[str, Any]:
    """The shell's user callables: ``pick_cores`` and the ``double`` scale."""
    if command.purpose == "compute_resources":
        return {"cores": 1 + command.task_id % 3}
    current = dict(command.requested)
    return {resource: int(current[resource]) * 2 for resource, _ in command.callables}
