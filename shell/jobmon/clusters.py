"""How each Jobmon cluster plugin treats a queue's resource bounds, by cluster type.

Jobmon asks the cluster's plugin: ``validate_resources`` (does a request fit the queue, used to
pick a fallback queue) and ``coerce_resources`` (the request as the task will run). The
plugins differ (jobmon_core ``plugins/*/…_queue.py`` and the Slurm/UGE plugins):

| cluster type | validates | coerces | ``QueueSpec.coercion`` |
|---|---|---|---|
| ``multiprocess`` | ``cores`` only | nothing | ``validate_cores`` |
| ``sequential`` | nothing | nothing | ``none`` |
| ``dummy`` | nothing | nothing | ``none`` |
| ``slurm``, ``uge`` and any other | every bounded resource | clamps into the bounds | ``clamp`` |

The gateway reads the cluster type from ``GET /cluster/{name}`` (``[id, name, type, params]``)
and puts the rule in the ``QueueSpec`` of ``QueuesLoaded``, so the event log holds it and a
replay needs no plugin.
"""

from __future__ import annotations

from collections.abc import Mapping

from swarmfold.core.topology import CLAMP, NO_COERCION, VALIDATE_CORES

__all__ = ["PLUGIN_COERCION", "coercion_for"]

#: Cluster type -> coercion rule; a type not listed clamps (Slurm-like plugins do).
PLUGIN_COERCION: Mapping[str, str] = {
    "multiprocess": VALIDATE_CORES,
    "sequential": NO_COERCION,
    "dummy": NO_COERCION,
    "slurm": CLAMP,
    "uge": CLAMP,
}


def coercion_for(cluster_type: str | None) -> str:
    """The coercion rule of a cluster type (``PLUGIN_COERCION``; ``clamp`` when unknown)."""
    return PLUGIN_COERCION.get((cluster_type or "").lower(), CLAMP)
