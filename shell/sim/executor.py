"""Where many simulations run: in this process, in local processes, or on a dask cluster.

Every what-if command (``sweep``, ``simulate --seeds``) maps one function over many items
(grid points, seeds) that all share one large value (the scenario). ``map_shared`` runs
``fn(shared, item)`` for each item and returns the results in the items' order, whatever the
executor, so a run's results do not depend on where it ran:

- ``jobs=1``: in this process, one after the other;
- otherwise local processes (``jobs`` of them, default one per CPU); ``shared`` is sent to
  each process once, by the pool's initializer;
- ``dask="tcp://host:port"``: the ``dask.distributed`` scheduler at that address; ``shared``
  is scattered to the workers once (broadcast), and each item is one task. ``dask`` is an
  optional extra: without it, ``DaskUnavailable`` names the extra to install.

``progress(done, total)`` is called in this process after each result arrives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TextIO, TypeVar

__all__ = ["DaskUnavailable", "map_shared", "progress_lines"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

Progress = Callable[[int, int], None]


def progress_lines(prog: str, unit: str, stream: TextIO) -> Progress:
    """A ``progress`` that prints ``"PROG: done/total UNIT done"`` about twenty times a run."""

    def show(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            print(f"{prog}: {done}/{total} {unit} done", file=stream, flush=True)

    return show


class DaskUnavailable(RuntimeError):
    """``--dask`` was asked for but ``dask.distributed`` is not installed."""


def map_shared(
    fn: Callable[[S, T], R],
    shared: S,
    items: Sequence[T],
    *,
    jobs: int | None = None,
    dask: str | None = None,
    progress: Progress | None = None,
    connect_timeout: float = 30.0,
) -> list[R]:
    """``[fn(shared, item) for item in items]``, run where asked, in the items' order.
    ``connect_timeout``: seconds to wait for the dask scheduler to answer."""
    if dask is not None:
        return _on_dask(fn, shared, items, dask, progress, connect_timeout)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(items) or 1))
    if jobs == 1:
        return _in_process(fn, shared, items, progress)
    return _in_local_processes(fn, shared, items, jobs, progress)


def _in_process(fn: Callable[[S, T], R], shared: S, items: Sequence[T], progress: Progress | None) -> list[R]:
    results: list[R] = []
    for item in items:
        results.append(fn(shared, item))
        if progress is not None:
            progress(len(results), len(items))
    return results


_SHARED: tuple[Callable[[Any, Any], Any], Any] | None = None


def _init_process(fn: Callable[[Any, Any], Any], shared: Any) -> None:
    global _SHARED
    _SHARED = (fn, shared)


def _call_in_process(item: Any) -> Any:
    assert _SHARED is not None, "the pool's initializer did not run"
    fn, shared = _SHARED
    return fn(shared, item)


def _in_local_processes(
    fn: Callable[[S, T], R], shared: S, items: Sequence[T], jobs: int, progress: Progress | None
) -> list[R]:
    results: list[R] = []
    chunk = max(1, len(items) // (jobs * 8))  # few round trips for many small items
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_process, initargs=(fn, shared)) as pool:
        for result in pool.map(_call_in_process, items, chunksize=chunk):
            results.append(result)
            if progress is not None:
                progress(len(results), len(items))
    return results


def _call_on_worker(item: Any, fn: Callable[[Any, Any], Any], shared: Any) -> Any:
    return fn(shared, item)


def _on_dask(
    fn: Callable[[S, T], R],
    shared: S,
    items: Sequence[T],
    address: str,
    progress: Progress | None,
    connect_timeout: float,
) -> list[R]:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise DaskUnavailable(
            "--dask needs dask.distributed, which is not installed: pip install 'swarmfold[dask]'"
        ) from exc
    try:
        client = Client(address, timeout=connect_timeout)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as exc:  # refused, timed out, or not an address
        raise DaskUnavailable(f"no dask scheduler answered at {address}: {exc}") from exc
    with client:
        shared_future = client.scatter(shared, broadcast=True, hash=False)  # type: ignore[no-untyped-call]
        futures = client.map(_call_on_worker, list(items), fn=fn, shared=shared_future, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        finished = as_completed(futures)  # type: ignore[no-untyped-call]
        for done, future in enumerate(finished, start=1):
            results[index[future.key]] = future.result()
            if progress is not None:
                progress(done, len(futures))
        return results
