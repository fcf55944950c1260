"""Initial fringe and downstream readiness (spec §3.3, §4).

A task is ready when it is REGISTERING and all its upstreams are DONE. Completions bump
downstream counters; a task that leaves DONE (a reset) takes its count back, so a counter
always equals the number of upstreams currently DONE and never overshoots (quirk Q15).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress, repeat
from operator import eq

import numpy as np
import numpy.typing as npt

from swarmfold.core.count_column import int_view, ints_view
from swarmfold.core.index_list import index_array
from swarmfold.core.resource_policy import adjust_for_retry, request_compute_resources
from swarmfold.core.resources import Resources
from swarmfold.core.state import NOWHERE, Tx, gather, in_ready_queue
from swarmfold.core.status_column import status_mask
from swarmfold.core.topology import ints_at

_G, _A, _D = ord("G"), ord("A"), ord("D")
#: ``bytes.translate`` tables: 1 for the letter, 0 for any other byte.
_IS_G = status_mask("G".__eq__)
_IS_A = status_mask("A".__eq__)


def enqueue(tx: Tx, index: int, front: bool = False) -> None:
    """Put a task into the ready queue with its current resources."""
    if not front:
        enqueue_all(tx, [index])
        return
    key = (tx.topo.array_of[index], tx.resources_of(index))
    seq = tx.next_front_seq
    tx.next_front_seq = seq - 1
    bucket = tx.appended_front.get(key)
    if bucket is None:
        tx.appended_front[key] = [(seq << 32) | index]
    else:
        bucket.append((seq << 32) | index)
    tx.place[index] = seq
    tx.ready_count += 1


def leave_ready_queue(tx: Tx, index: int) -> None:
    """Take a task out of the ready queue (its entry dies lazily)."""
    if in_ready_queue(tx.place[index]):
        tx.place[index] = NOWHERE
        tx.ready_count -= 1


def make_ready(tx: Tx, index: int) -> None:
    """A REGISTERING task whose upstreams are all DONE: validated resources, then back.

    A task with a compute-resources callable that was not evaluated yet first asks the
    shell to evaluate it; it is enqueued when the answer arrives.
    """
    if index in tx.topo.compute_resources_of and index not in tx.resources.callables_done:
        request_compute_resources(tx, index)
        return
    enqueue(tx, index)


def make_adjusted_ready(tx: Tx, index: int, front: bool = True) -> None:
    """An ADJUSTING_RESOURCES task: scaled resources, then the front of the queue.

    Resources are scaled on entering A; the task is queued only once all its upstreams are
    DONE (after a reset of an upstream it waits, and ``propagate_done_all`` queues it later).
    """
    if adjust_for_retry(tx, index) and ready_eligible(tx, index):
        enqueue(tx, index, front=front)


def upstreams_all_done(tx: Tx, at: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.bool_]:
    """Whether every upstream of each task is DONE (its count has reached its total), over
    the whole column, or for the tasks of ``at`` (a gather of both columns)."""
    done, needed = tx.upstream_done.view(), ints_view(tx.topo.num_upstreams)
    if at is None:
        return done == needed  # type: ignore[no-any-return]
    return done[at] == needed[at]  # type: ignore[no-any-return]


def initial_fringe(tx: Tx) -> None:
    """Every A task (adjusted, at the back), then every ready G task (spec §3.3).

    Order within each step is topology order; Jobmon uses set order (about ascending id).
    """
    initial = tx.topo.initial_status
    i = initial.find("A")
    while i >= 0:
        make_adjusted_ready(tx, i, front=False)
        i = initial.find("A", i + 1)
    letters = np.frombuffer(initial.encode("ascii"), dtype=np.uint8)
    ready = (letters == _G) & upstreams_all_done(tx)
    if tx.topo.compute_resources_of:
        for i in np.flatnonzero(ready).tolist():
            make_ready(tx, i)
    else:
        enqueue_all(tx, np.flatnonzero(ready).tolist())


def count_initial_upstreams_done(tx: Tx) -> None:
    """Tasks DONE before this run count for their downstreams (``compute_initial_...``)."""
    letters = np.frombuffer(tx.topo.initial_status.encode("ascii"), dtype=np.uint8)
    done = np.flatnonzero(letters == _D)
    if len(done):
        tx.upstream_done.add_at(_downstreams_of(tx, done), 1)


def _downstreams_of(tx: Tx, indexes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The downstream indexes of every task of ``indexes``, row after row, in order."""
    offsets = int_view(tx.topo.down_offsets)
    starts = offsets[indexes]
    lengths = offsets[indexes + 1] - starts
    total = int(lengths.sum())
    if not total:
        return np.empty(0, dtype=np.int64)
    # Edge k of the concatenated rows is flat[starts[row] + (k - row's first k)].
    row_first = np.cumsum(lengths) - lengths
    edges = np.arange(total, dtype=np.int64) + np.repeat(starts - row_first, lengths)
    downstreams: npt.NDArray[np.int64] = int_view(tx.topo.down_flat)[edges]
    return downstreams


def propagate_done_all(tx: Tx, indexes: Sequence[int]) -> None:
    """Tasks became DONE, in this order: bump their downstreams' counts, then enqueue those
    now ready, in the order the last of their upstreams came in.

    The bump is one scatter-add over all the group's edges, the readiness test one gather
    and compare. A downstream counted twice in the group becomes ready at its last edge
    (counts never overshoot: only a task that *became* DONE is propagated).
    """
    if not len(indexes):
        return
    targets = _downstreams_of(tx, index_array(indexes))
    if not len(targets):
        return
    tx.upstream_done.add_at(targets, 1)
    reached = targets[upstreams_all_done(tx, targets)]
    if len(reached) > 1:
        # Keep each task's last occurrence, in order of position.
        _, last_from_end = np.unique(reached[::-1], return_index=True)
        if len(last_from_end) < len(reached):
            reached = reached[np.sort(len(reached) - 1 - last_from_end)]
    _enqueue_made_ready(tx, reached.tolist())


def _enqueue_made_ready(tx: Tx, ready: list[int]) -> None:
    """Enqueue tasks whose upstreams just became all DONE, in order: REGISTERING ones at the
    back (``make_ready``), ADJUSTING ones at the front (their resources were scaled when they
    entered A). A task already queued, in flight or being evaluated is left where it is.

    The REGISTERING and the ADJUSTING tasks touch disjoint parts of the state (the back and
    the front sequence), so doing all of the first, then all of the second, decides what a
    task-by-task pass does."""
    nowhere = list(compress(ready, map(eq, tx.place.at(ready), repeat(NOWHERE))))
    if not nowhere:
        return
    letters = tx.status.letters_at(nowhere)
    if letters.count(_G) == len(letters):
        registering, adjusting = nowhere, []
    else:
        registering = list(compress(nowhere, letters.translate(_IS_G)))
        adjusting = list(compress(nowhere, letters.translate(_IS_A)))
    if tx.topo.compute_resources_of:
        for i in registering:
            make_ready(tx, i)
    else:
        enqueue_all(tx, registering)
    for i in adjusting:
        enqueue(tx, i, front=True)


def enqueue_all(tx: Tx, indexes: list[int]) -> None:
    """``enqueue(tx, i)`` for each of ``indexes`` in order (at the back), with the columns
    read in C: the hottest path of a big run."""
    if not indexes:
        return
    topo = tx.topo
    keys = zip(ints_at(topo.array_of, indexes), _resources_at(tx, indexes), strict=True)
    appended = tx.appended_back
    first = seq = tx.next_back_seq
    for i, key in zip(indexes, keys, strict=True):
        bucket = appended.get(key)
        if bucket is None:
            appended[key] = [(seq << 32) | i]
        else:
            bucket.append((seq << 32) | i)
        seq += 1
    tx.place.assign(indexes, range(first, seq))
    tx.next_back_seq = seq
    tx.ready_count += len(indexes)


def _resources_at(tx: Tx, indexes: list[int]) -> Sequence[Resources]:
    """``tx.resources_of(i)`` for each of ``indexes``."""
    shared = tx.topo.resources_of.at(indexes)
    overrides = tx.resources.overrides
    if not overrides:
        return shared
    own = gather(overrides, indexes)
    return [r if o is None else o for o, r in zip(own, shared, strict=True)]


def retract_done(tx: Tx, index: int) -> None:
    """A task left DONE (reset): its downstreams lose that upstream again."""
    downstream = tx.topo.downstream[index]
    if downstream:
        tx.upstream_done.add_at(list(downstream), -1)
    for d in downstream:
        leave_ready_queue(tx, d)


def ready_eligible(tx: Tx, index: int) -> bool:
    done: int = tx.upstream_done[index]
    needed: int = tx.topo.num_upstreams[index]
    return done == needed
