"""Resource validation and adjustment as decisions (spec §5).

User callables cannot live in a pure state. A task that needs one gets an
``EvaluateResources`` command; the shell evaluates it and answers ``ResourcesEvaluated``,
which the log records, so replay needs no callable at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from swarmfold.core.commands import BindResources, EvaluateResources
from swarmfold.core.resources import Resources, ResourceValue, adjust, callable_scales, validated
from swarmfold.core.state import EVALUATING, PendingBind, PendingEvaluation, Tx

COMPUTE_RESOURCES = "compute_resources"
RESOURCE_SCALES = "resource_scales"


def request_compute_resources(tx: Tx, index: int) -> None:
    topo = tx.topo
    _request_evaluation(
        tx, index, COMPUTE_RESOURCES, (("*", topo.compute_resources_of[index]),)
    )


def _request_evaluation(
    tx: Tx, index: int, purpose: str, callables: tuple[tuple[str, str], ...]
) -> None:
    tx.emit(
        EvaluateResources,
        PendingEvaluation(index, purpose),
        task_id=tx.topo.task_ids[index],
        purpose=purpose,
        callables=callables,
        requested=tx.resources_of(index).requested,
    )
    tx.place[index] = EVALUATING
    tx.evaluating_count += 1


def adjust_for_retry(tx: Tx, index: int) -> bool:
    """Set scaled resources for a task entering ADJUSTING_RESOURCES.

    Returns False when a callable scale must first be evaluated by the shell.
    """
    topo = tx.topo
    current = tx.resources_of(index)
    scales = topo.scales_of[index]
    pending_callables = callable_scales(scales, current.requested)
    if pending_callables:
        _request_evaluation(tx, index, RESOURCE_SCALES, pending_callables)
        return False
    _set_adjusted(tx, index, current, None)
    return True


def _set_adjusted(
    tx: Tx, index: int, current: Resources, evaluated: Mapping[str, ResourceValue] | None
) -> None:
    topo = tx.topo
    k = tx.resources.adjustments.get(index, 0)
    new = adjust(
        current, topo.scales_of[index], topo.fallbacks_of[index], topo.bounds_of, k, evaluated,
        topo.clamp_of,
    )
    tx.set_resources(adjustments=tx.resources.adjustments.set(index, k + 1))
    if new != tx.resources_of(index):
        tx.set_override(index, new)


def apply_evaluation(
    tx: Tx, pending: PendingEvaluation, values: Mapping[str, ResourceValue]
) -> Resources:
    """Fold the shell's answer into the task's resources and return them."""
    index = pending.index
    current = tx.resources_of(index)
    if pending.purpose == COMPUTE_RESOURCES:
        merged = validated(current.with_values(values), tx.topo.clamp_of)
        tx.set_override(index, merged)
        tx.set_resources(callables_done=tx.resources.callables_done.add(index))
        return merged
    _set_adjusted(tx, index, current, values)
    return tx.resources_of(index)


def request_binding(tx: Tx, resources: Resources) -> None:
    """Ask the server for a TaskResources id for these resources, once per content."""
    if resources in tx.resources.binding:
        return
    command = tx.emit(
        BindResources,
        PendingBind(resources),
        queue=resources.queue,
        queue_id=tx.topo.queue_ids.get(resources.queue, 0),
        requested=resources.requested,
    )
    tx.set_resources(binding=tx.resources.binding.set(resources, command.command_id))
    tx.set_timing(batches_outstanding=tx.timing.batches_outstanding + 1)
