"""Which server id each cluster and queue has: asked once, then remembered.

Jobmon's builder fetches ``/cluster/{name}`` and ``/cluster/{id}/queue/{name}`` before it binds
resources; the gateway does the same through this directory. Queues are learned from the task
rows of ``get_tasks`` (an attached run) or from ``LoadQueues``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from swarmfold.core.attach import first_mentions
from swarmfold.core.commands import LoadQueues
from swarmfold.core.events import QueuesLoaded, TaskRow
from swarmfold.core.row_page import column_of
from swarmfold.core.topology import QueueSpec
from swarmfold.shell.http.parsing import parse_cluster, parse_queue, parse_queue_id
from swarmfold.shell.http.routes import GET_CLUSTER, GET_QUEUE
from swarmfold.shell.jobmon.clusters import coercion_for

__all__ = ["QueueDirectory"]

#: ``ask(route, parser, **path_params)``: send one GET and parse its answer.
Ask = Callable[..., Any]


class QueueDirectory:
    """Cluster ids and types and queue ids, by name, fetched once each (thread-safe)."""

    def __init__(self, ask: Ask) -> None:
        self._ask = ask
        self._lock = threading.Lock()
        #: ``queue name -> cluster name``, learned from ``get_tasks`` rows.
        self._cluster_of_queue: dict[str, str] = {}
        self._queue_ids: dict[tuple[str, str], int] = {}
        self._clusters: dict[str, tuple[int, str]] = {}

    def learn(self, rows: Sequence[TaskRow]) -> None:
        """Remember the cluster of every queue the task rows name (for queue-id lookups): the
        first row naming a queue decides. Read a field at a time (a ``RowPage``'s columns)."""
        first = first_mentions(column_of(rows, "queue_name"), column_of(rows, "fallback_queues"))
        clusters = column_of(rows, "cluster_name")
        with self._lock:
            for queue, (k, _) in first.items():
                self._cluster_of_queue.setdefault(queue, clusters[k])

    def queue_id(self, queue: str) -> int:
        """The server's id of ``queue`` on the cluster its tasks named; 0 when no cluster is
        known for it."""
        with self._lock:
            cluster = self._cluster_of_queue.get(queue)
            if cluster is None:
                return 0
            known = self._queue_ids.get((cluster, queue))
        if known is not None:
            return known
        cluster_id = self.cluster(cluster)[0]
        queue_id: int = self._ask(GET_QUEUE, parse_queue_id, cluster_id=cluster_id, queue_name=queue)
        with self._lock:
            self._queue_ids[(cluster, queue)] = queue_id
        return queue_id

    def cluster(self, cluster: str) -> tuple[int, str]:
        """``(id, type)`` of a cluster, asked once."""
        with self._lock:
            known = self._clusters.get(cluster)
        if known is not None:
            return known
        found: tuple[int, str] = self._ask(GET_CLUSTER, parse_cluster, cluster_name=cluster)
        with self._lock:
            self._clusters[cluster] = found
        return found

    def load_queues(self, c: LoadQueues, now: float) -> QueuesLoaded:
        """Each ``(cluster, queue)``: its id and bounds (``cluster.get_queue`` in Jobmon)."""
        found: list[QueueSpec] = []
        for cluster, queue in c.queues:
            cluster_id, cluster_type = self.cluster(cluster)
            parsed = self._ask(GET_QUEUE, parse_queue, cluster_id=cluster_id, queue_name=queue)
            if parsed is None:
                continue
            queue_id, bounds = parsed
            with self._lock:
                self._queue_ids[(cluster, queue)] = queue_id
                self._cluster_of_queue.setdefault(queue, cluster)
            found.append(QueueSpec(queue, queue_id=queue_id, cluster_id=cluster_id, bounds=bounds,
                                   coercion=coercion_for(cluster_type)))
        return QueuesLoaded(c.command_id, now, tuple(found))
