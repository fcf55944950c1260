"""The benchmark's reference workload: a layered DAG of ``n`` tasks in 10 arrays.

Layer ``L`` is array ``L + 1`` and holds ``n // 10`` tasks (the first ``n % 10`` layers get one
more). Every task of layer ``L > 0`` depends on 1-3 distinct random tasks of layer ``L - 1``.
There are 4 resource sets (ids 0-3): layer ``L`` uses set ``L % 4`` and a random 20% of its
tasks use ``(L + 1) % 4``. Workflow limit 10,000; every array limit 2,000.

This is shell code, so it draws random numbers (``random.Random(seed)``): the same ``n`` and
``seed`` always give the same topology.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from typing import Any

from swarmfold.core.topology import (
    ArraySpec,
    QueueSpec,
    ResourceSetSpec,
    TaskSpec,
    TaskTable,
    TopologySpec,
)

NUM_LAYERS = 10
NUM_RESOURCE_SETS = 4
WORKFLOW_LIMIT = 10_000
ARRAY_LIMIT = 2_000
#: Share of a layer's tasks that use the next layer's resource set.
ALTERNATE_SHARE = 0.2
QUEUE_NAME = "all.q"


class _TableBuilder:
    """Collects ``(task_id, array_id, resource_set_id, upstream_ids)`` rows into columns."""

    def __init__(self) -> None:
        self.task_ids = array("q")
        self.array_ids = array("q")
        self.resource_set_ids = array("q")
        self.upstream_offsets = array("q", [0])
        self.upstream_ids = array("q")

    def append(self, row: Any) -> None:
        task_id, array_id, rs, ups = row
        self.task_ids.append(task_id)
        self.array_ids.append(array_id)
        self.resource_set_ids.append(rs)
        if ups:
            self.upstream_ids.extend(ups)
        self.upstream_offsets.append(len(self.upstream_ids))

    def build(self) -> TaskTable:
        return TaskTable(
            self.task_ids, self.array_ids, self.resource_set_ids, self.upstream_offsets, self.upstream_ids
        )


def layer_sizes(n: int) -> list[int]:
    """Sizes of the 10 layers of an ``n``-task workload (they differ by at most one)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    base, extra = divmod(n, NUM_LAYERS)
    return [base + (1 if layer < extra else 0) for layer in range(NUM_LAYERS)]


def reference_queues() -> tuple[QueueSpec, ...]:
    """The single queue the reference workload runs on."""
    return (
        QueueSpec(
            name=QUEUE_NAME,
            queue_id=1,
            cluster_id=1,
            bounds=(("cores", 1, 64), ("memory", 1, 512), ("runtime", 60, 86_400)),
        ),
    )


def reference_resource_sets() -> tuple[ResourceSetSpec, ...]:
    """Four resource sets that differ in memory and runtime."""
    return tuple(
        ResourceSetSpec(
            resource_set_id=k,
            queue=QUEUE_NAME,
            requested={"cores": 1 + k, "memory": 2 * (k + 1), "runtime": 600 * (k + 1)},
        )
        for k in range(NUM_RESOURCE_SETS)
    )


def reference_workload(n: int, seed: int = 0, columnar: bool = False) -> TopologySpec:
    """Build the reference workload of ``n`` tasks (task ids ``1..n``, layer by layer).

    ``columnar=True`` gives the same topology as a ``TaskTable`` (about 40 bytes a task
    instead of about 250), which is how a million-task workflow should be described.
    """
    rng = random.Random(seed)
    rnd = rng.random
    sizes = layer_sizes(n)
    tasks: list[TaskSpec] = []
    table = _TableBuilder() if columnar else None
    append: Callable[[Any], None] = table.append if table is not None else tasks.append
    next_id = 1
    prev_start = 0  # task id of the first task of the previous layer
    prev_size = 0
    for layer, size in enumerate(sizes):
        array_id = layer + 1
        base_rs = layer % NUM_RESOURCE_SETS
        alt_rs = (layer + 1) % NUM_RESOURCE_SETS
        alternates = set(rng.sample(range(size), int(size * ALTERNATE_SHARE)))
        for offset in range(size):
            rs = alt_rs if offset in alternates else base_rs
            if layer == 0 or prev_size == 0:
                append(TaskSpec(next_id + offset, array_id, rs) if table is None
                       else (next_id + offset, array_id, rs, ()))
                continue
            k = min(1 + int(rnd() * 3), prev_size)
            first = prev_start + int(rnd() * prev_size)
            if k == 1:
                ups: tuple[int, ...] = (first,)
            else:
                chosen = [first]
                while len(chosen) < k:
                    candidate = prev_start + int(rnd() * prev_size)
                    if candidate not in chosen:
                        chosen.append(candidate)
                ups = tuple(chosen)
            append(TaskSpec(next_id + offset, array_id, rs, ups) if table is None
                   else (next_id + offset, array_id, rs, ups))
        prev_start, prev_size = next_id, size
        next_id += size
    arrays = tuple(
        ArraySpec(array_id=layer + 1, name=f"layer_{layer}", limit=ARRAY_LIMIT) for layer in range(NUM_LAYERS)
    )
    return TopologySpec(
        tasks=tasks,
        task_table=table.build() if table is not None else None,
        arrays=arrays,
        resource_sets=reference_resource_sets(),
        queues=reference_queues(),
        workflow_limit=WORKFLOW_LIMIT,
    )
