"""``--plot``: the run's active-task and Gantt chart, the sweep's makespan chart, and the clear
error when matplotlib (the ``plot`` extra) is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from swarmfold.shell.sim import plot
from swarmfold.shell.sim.driver import simulate
from swarmfold.shell.sim.scenario import load_scenario

from .helpers import EXAMPLES, cli

PNG = b"\x89PNG\r\n\x1a\n"


def test_lanes_pack_overlapping_spans_into_few_rows() -> None:
    spans = [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (12.0, 13.0), (30.0, 40.0)]
    rows = plot._lanes(spans)
    assert max(rows) + 1 == 3  # at most 3 overlap (t=12)
    for a in range(len(spans)):
        for b in range(a + 1, len(spans)):
            if rows[a] == rows[b]:  # same row: no overlap
                assert spans[a][1] <= spans[b][0] or spans[b][1] <= spans[a][0]


def test_active_steps_match_the_servers_counts() -> None:
    r = simulate(load_scenario(EXAMPLES / "three_array_pipeline.json"), record_spans=True)
    assert r.spans is not None and len(r.spans) == r.report.attempts
    steps = plot._active_steps(r.spans, r.report.makespan)
    k = r.timeline_columns.index("active")
    xs, ys = steps[None]
    for row in r.timeline:
        t = row[0]
        level = ys[max(i for i, x in enumerate(xs) if x <= t)]
        assert level == row[k], t
    assert max(steps[None][1]) == r.report.peak_active


def test_plot_run_writes_the_same_png_for_the_same_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    s = load_scenario(EXAMPLES / "failures_and_resource_errors.json")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    plot.plot_run(simulate(s, record_spans=True), a)
    plot.plot_run(simulate(s, record_spans=True), b)
    assert a.read_bytes().startswith(PNG) and a.stat().st_size > 10_000
    assert a.read_bytes() == b.read_bytes()


def test_plot_run_caps_the_bars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(plot, "MAX_BARS", 5)
    r = simulate(load_scenario(EXAMPLES / "three_array_pipeline.json"), record_spans=True)
    plot.plot_run(r, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes().startswith(PNG)


def test_cli_simulate_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "run.png"
    code, out = cli(["simulate", str(EXAMPLES / "diamond.json"), "--plot", str(png)])
    assert code == 0 and out.startswith("diamond (seed 0): DONE (D)")
    assert png.read_bytes().startswith(PNG)


def test_plot_sweep_with_many_settings_plots_the_mean(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    points = [{"a": a, "b": b, "makespan": 100.0 / a + b} for a in (1, 2, 3) for b in range(10)]
    plot.plot_sweep(points, ["a", "b"], tmp_path / "s.png", title="t")
    assert (tmp_path / "s.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", str(EXAMPLES / "diamond.json"), "--plot", "x.png"],
        ["sweep", str(EXAMPLES / "diamond.json"), "--workflow-limit", "1,2", "--plot", "x.png"],
    ],
)
def test_without_matplotlib_a_clear_error_says_how_to_install_it(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.chdir(tmp_path)
    code, out = cli(argv)
    assert code == 2 and out == ""  # nothing was simulated
    err = capsys.readouterr().err
    assert "error: plotting needs matplotlib: pip install 'swarmfold[plot]'" in err
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(plot.PlotUnavailable, match=r"pip install 'swarmfold\[plot\]'"):
        plot.require_matplotlib()
