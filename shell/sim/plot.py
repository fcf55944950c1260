"""Plots of simulations (the optional ``plot`` extra: ``pip install 'swarmfold[plot]'``).

- ``plot_run``: one run. Top, the tasks active on the server over time, per array, with each
  array's limit dashed; bottom, a Gantt-like chart by array: one lane per array, each task
  instance a bar (thin while it waits for a slot, thick while it runs, coloured by how it
  ended), packed into as few rows as its array needs.
- ``plot_sweep``: a sweep. One panel per swept limit: makespan against that limit, one line
  per setting of the other limits (their mean when there are many).

Only matplotlib's object-oriented API is used (``Figure`` + the Agg canvas): no pyplot, no
global state, no display, safe in worker processes. PNGs carry no timestamp or version, so
the same run gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swarmfold.shell.sim.driver import SimResult

__all__ = ["INSTALL_HINT", "PlotUnavailable", "plot_run", "plot_sweep", "require_matplotlib"]

INSTALL_HINT = "plotting needs matplotlib: pip install 'swarmfold[plot]'"
#: At most this many instances are drawn in the Gantt chart (evenly chosen beyond).
MAX_BARS = 20_000
#: Colours of how an instance ended (its final task-instance status).
END_COLOURS = {
    "D": "#2a9d8f",  # done
    "E": "#e9c46a",  # error, retried
    "U": "#e9c46a",  # unknown error (a lost worker)
    "Z": "#f4a261",  # resource error
    "F": "#e76f51",  # fatal, or killed
}
END_LABELS = {"D": "done", "E": "error", "Z": "resource error", "F": "fatal / killed"}


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


def require_matplotlib() -> Any:
    """The ``matplotlib`` module, or ``PlotUnavailable`` saying how to install it."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        raise PlotUnavailable() from None
    return matplotlib


def _save(fig: Any, path: str | Path) -> None:
    """Write ``fig`` as a PNG with no timestamp or software version in it."""
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})


def _lanes(spans: Sequence[tuple[float, float]]) -> list[int]:
    """Greedy interval packing: a row for each span, as few rows as overlaps need."""
    import heapq

    order = sorted(range(len(spans)), key=lambda k: (spans[k][0], spans[k][1], k))
    free: list[tuple[float, int]] = []  # (end, row)
    rows = [0] * len(spans)
    n_rows = 0
    for k in order:
        start, end = spans[k]
        if free and free[0][0] <= start:
            _, row = heapq.heappop(free)
        else:
            row = n_rows
            n_rows += 1
        rows[k] = row
        heapq.heappush(free, (end, row))
    return rows


def plot_run(result: SimResult, path: str | Path, title: str | None = None) -> None:
    """Active tasks per array over time, and the Gantt chart by array, as a PNG."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    report = result.report
    columns = result.timeline_columns
    rows = result.timeline
    arrays = report.arrays
    names = {a.array_id: f"{a.name} [{a.array_id}]" for a in arrays}
    fig = Figure(figsize=(11, 8.5))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    times = [row[0] for row in rows]
    steps = _active_steps(result.spans, report.makespan) if result.spans else {}
    palette = [f"C{k % 10}" for k in range(len(arrays))]
    for colour, a in zip(palette, arrays, strict=True):
        if steps:
            xs, ys = steps.get(a.array_id, ([0.0, report.makespan], [0, 0]))
        else:
            xs, ys = times, [row[columns.index(f"active_{a.array_id}")] for row in rows]
        top.step(xs, ys, where="post", color=colour, label=names[a.array_id])
        limit = [row[columns.index(f"limit_{a.array_id}")] for row in rows]
        if any(x is not None and x < 2_147_483_647 for x in limit):
            shown = [x if x is not None and x < 2_147_483_647 else math.nan for x in limit]
            top.step(times, shown, where="post", color=colour, linestyle="--", linewidth=0.8, alpha=0.7)
    if len(arrays) > 1:
        if steps:
            xs, ys = steps.get(None, ([0.0], [0]))
        else:
            xs, ys = times, [row[columns.index("active")] for row in rows]
        top.step(xs, ys, where="post", color="black", linewidth=1.0, label="all arrays")
    top.set_ylabel("active tasks (server)")
    top.set_title(title or f"{report.scenario or 'scenario'} (seed {report.seed}): {report.final_status}"
                  f" after {report.makespan:g} s")
    top.legend(loc="upper right", fontsize="small")
    top.grid(alpha=0.3)

    spans = result.spans or []
    if len(spans) > MAX_BARS:
        step = len(spans) / MAX_BARS
        spans = [spans[int(k * step)] for k in range(MAX_BARS)]
    end = report.makespan
    by_array: dict[int, list[tuple[float, float | None, float]]] = {a.array_id: [] for a in arrays}
    ends: dict[int, list[str]] = {a.array_id: [] for a in arrays}
    for _task, span_array, queued, started, ended, status in spans:
        finish = ended if ended is not None else (end if started is not None else queued)
        by_array.setdefault(span_array, []).append((queued, started, finish))
        ends.setdefault(span_array, []).append(status)
    yticks, ylabels = [], []
    base = 0.0
    gap = 1.0
    for lane_array in reversed([x.array_id for x in arrays]):
        items = by_array.get(lane_array, [])
        lane_rows = _lanes([(q, f) for q, _, f in items]) if items else []
        height = max(lane_rows, default=-1) + 1
        scale = 1.0 if height <= 40 else 40.0 / height
        waits, runs, colours = [], [], []
        lane_ends = ends.get(lane_array, [])
        for (queued, started, finish), row, status in zip(items, lane_rows, lane_ends, strict=True):
            y = base + row * scale
            if started is None:
                waits.append([(queued, y), (finish, y)])
                continue
            if started > queued:
                waits.append([(queued, y), (started, y)])
            runs.append([(started, y), (finish, y)])
            colours.append(END_COLOURS.get(status, "#8d99ae"))
        lw = max(0.5, min(6.0, 200.0 / max(1, len(by_array)) / max(1.0, height * scale)))
        if waits:
            bottom.add_collection(LineCollection(waits, colors="#adb5bd", linewidths=max(0.3, lw / 3)))
        if runs:
            bottom.add_collection(LineCollection(runs, colors=colours, linewidths=lw))
        lane = max(height * scale, 1.0)
        yticks.append(base + (lane - scale) / 2)
        ylabels.append(names.get(lane_array, str(lane_array)))
        base += lane + gap
    bottom.set_ylim(-gap, max(base, 1.0))
    bottom.set_xlim(0, max(end, 1e-9))
    bottom.set_yticks(yticks, ylabels)
    bottom.set_xlabel("time (s, virtual)")
    bottom.set_title("task instances by array (thin: waiting for a slot; thick: running)", fontsize="medium")
    handles = [Line2D([], [], color=END_COLOURS[k], linewidth=4, label=v) for k, v in END_LABELS.items()]
    handles.append(Line2D([], [], color="#adb5bd", linewidth=1.5, label="queued / waiting"))
    bottom.legend(handles=handles, loc="upper right", fontsize="small")
    bottom.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def _active_steps(
    spans: Sequence[tuple[int, int, float, float | None, float | None, str]], end: float
) -> dict[int | None, tuple[list[float], list[int]]]:
    """Exact active counts per array (and ``None``: all) from instance spans: an instance is
    active from its queueing to the end of its worker (or the end of the run)."""
    changes: dict[int | None, dict[float, int]] = {}
    for _task, a, queued, _started, ended, _status in spans:
        stop = ended if ended is not None else end
        for key in (a, None):
            d = changes.setdefault(key, {})
            d[queued] = d.get(queued, 0) + 1
            d[stop] = d.get(stop, 0) - 1
    out: dict[int | None, tuple[list[float], list[int]]] = {}
    for key, d in changes.items():
        xs, ys, level = [0.0], [0], 0
        for t in sorted(d):
            level += d[t]
            xs.append(t)
            ys.append(level)
        xs.append(end)
        ys.append(level)
        out[key] = (xs, ys)
    return out


def plot_sweep(
    points: Sequence[Mapping[str, Any]],
    params: Sequence[str],
    path: str | Path,
    title: str = "",
) -> None:
    """Makespan against each swept limit (``params``: keys of the points), as a PNG. Points
    with ``p5`` and ``p95`` (a sweep over several seeds) get the band between them."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    n = max(1, len(params))
    fig = Figure(figsize=(5.5 * n, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, param in zip(axes, params, strict=False):
        others = [p for p in params if p != param]
        groups: dict[tuple[Any, ...], list[tuple[Any, float]]] = {}
        bands: dict[tuple[Any, ...], list[tuple[Any, float, float]]] = {}
        for point in points:
            if point.get("makespan") is None:
                continue
            key = tuple(point[o] for o in others)
            groups.setdefault(key, []).append((point[param], float(point["makespan"])))
            if point.get("p5") is not None and point.get("p95") is not None:
                bands.setdefault(key, []).append((point[param], float(point["p5"]), float(point["p95"])))
        if len(groups) <= 8:
            for key, values in sorted(groups.items(), key=lambda kv: str(kv[0])):
                values.sort()
                label = ", ".join(f"{o}={_show(v)}" for o, v in zip(others, key, strict=True)) or None
                line = ax.plot([_x(v) for v, _ in values], [m for _, m in values], marker="o", label=label)
                band = sorted(bands.get(key, []))
                if band:
                    ax.fill_between([_x(v) for v, _, _ in band], [lo for _, lo, _ in band],
                                    [hi for _, _, hi in band], color=line[0].get_color(), alpha=0.2,
                                    label="p5-p95" if len(groups) == 1 else None)
            if any(others) or bands:
                ax.legend(fontsize="x-small")
        else:
            by_value: dict[Any, list[float]] = {}
            for values in groups.values():
                for v, m in values:
                    by_value.setdefault(v, []).append(m)
            xs = sorted(by_value)
            ax.plot([_x(v) for v in xs], [sum(by_value[v]) / len(by_value[v]) for v in xs], marker="o",
                    label=f"mean over {len(groups)} settings of the other limits")
            ax.legend(fontsize="x-small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(param)
        ax.set_ylabel("makespan (s)")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def _x(value: Any) -> float:
    """Unlimited is left out of the plot (it has no place on a linear axis)."""
    return math.nan if value is None or value >= 2_147_483_647 else float(value)


def _show(value: Any) -> str:
    return "unlimited" if value is None or (isinstance(value, int) and value >= 2_147_483_647) else str(value)
