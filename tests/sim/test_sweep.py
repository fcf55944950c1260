"""``swarmfold sweep``: the grid, parallel runs, the table, the limits, bad input; the 100-point
sweep on 10k-task scenarios (slow)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from swarmfold.shell.cli import main
from swarmfold.shell.sim.scenario import load_scenario
from swarmfold.shell.sim.sweep import Axis, grid, parse_values, run_sweep, without_swept_changes

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PIPELINE = str(EXAMPLES / "three_array_pipeline.json")


def cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def test_parse_values() -> None:
    assert parse_values("100,200,500", "--workflow-limit") == (100, 200, 500)
    assert parse_values("10-50:20,5", "x") == (10, 30, 50, 5)
    assert parse_values("1-3", "x") == (1, 2, 3)
    assert parse_values("2,unlimited,2", "x") == (2, 2_147_483_647)
    for bad in ("a", "5-1", "1.5", "-3"):
        with pytest.raises(ValueError, match="x"):
            parse_values(bad, "x")


def test_grid_order_last_axis_fastest() -> None:
    axes = [Axis("workflow_limit", None, (1, 2)), Axis("array 2", 2, (5, 6, 7))]
    assert grid(axes) == [
        {"workflow_limit": 1, "array 2": 5}, {"workflow_limit": 1, "array 2": 6},
        {"workflow_limit": 1, "array 2": 7}, {"workflow_limit": 2, "array 2": 5},
        {"workflow_limit": 2, "array 2": 6}, {"workflow_limit": 2, "array 2": 7},
    ]


def test_swept_limits_hold_for_the_whole_run() -> None:
    s = load_scenario(PIPELINE)  # its limit_changes lower array 2 to 1 at t=60
    assert [c.array_id for c in s.limit_changes] == [2]
    assert without_swept_changes(s, [Axis("array 2", 2, (3,))]).limit_changes == ()
    assert without_swept_changes(s, [Axis("workflow_limit", None, (3,))]) is s


def test_parallel_and_serial_sweeps_agree() -> None:
    s = load_scenario(PIPELINE)
    axes = [Axis("workflow_limit", None, (2, 4, 8)), Axis("array 2", 2, (1, 3))]
    serial = run_sweep(s, axes, seed=7, jobs=1)
    parallel = run_sweep(s, axes, seed=7, jobs=2)
    assert serial == parallel
    by = {(p.limits["workflow_limit"], p.limits["array 2"]): p for p in serial}
    assert all(p.final_status == "D" and p.violations == {} for p in serial)
    # More room, shorter run; and the peak never exceeds the workflow limit.
    assert by[(8, 3)].makespan < by[(4, 3)].makespan < by[(2, 3)].makespan
    assert by[(2, 3)].peak_active <= 2 and by[(4, 1)].peak_active <= 4


def test_cli_sweep_table() -> None:
    code, out = cli(["sweep", PIPELINE, "--workflow-limit", "2,4", "--array-limit", "2=1,3", "--jobs", "2"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "three_array_pipeline: sweep of 4 point(s), seed 7"
    assert lines[1].split() == [
        "workflow_limit", "array", "2", "status", "makespan", "utilization", "peak", "active", "mean",
        "active", "done",
    ]
    assert len([line for line in lines if line.strip().startswith(("2 ", "4 "))]) == 4
    assert lines[-3].startswith("  best         workflow_limit=4, array 2=3: makespan ")
    assert lines[-2] == "  one seed per point: use --seeds A-B to tell noise from a better limit"
    assert lines[-1] == "  invariants   ok at every point"


def test_cli_sweep_json_and_seed() -> None:
    code, out = cli(["sweep", PIPELINE, "--array-limit", "1=1,2", "--seed", "3", "--json", "--jobs", "1"])
    assert code == 0
    data = json.loads(out)
    assert data["seed"] == 3 and data["axes"] == ["array 1"]
    assert [p["limits"] for p in data["points"]] == [{"array 1": 1}, {"array 1": 2}]
    assert all(p["final_status"] == "D" for p in data["points"])


def test_cli_sweep_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "sweep.png"
    argv = ["sweep", PIPELINE, "--workflow-limit", "2,4", "--array-limit", "2=1,2", "--plot", str(png)]
    code, _ = cli(argv)
    assert code == 0 and png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([PIPELINE], "nothing to sweep: give --workflow-limit and/or --array-limit"),
        ([PIPELINE, "--array-limit", "9=1,2"], "--array-limit 9=1: unknown array id 9"),
        ([PIPELINE, "--array-limit", "x=1"], "--array-limit: expected ID=N[,N...], got 'x=1'"),
        ([PIPELINE, "--array-limit", "1=1", "--array-limit", "1=2"], "array 1 given twice"),
        ([PIPELINE, "--workflow-limit", "a"], "--workflow-limit: expected comma-separated limits"),
        (["--workflow-limit", "2"], "give a SCENARIO file or --from-log LOG (one of them)"),
        ([PIPELINE, "--from-log", "x", "--workflow-limit", "2"], "give a SCENARIO file or --from-log LOG"),
        (["missing.json", "--workflow-limit", "2"], "missing.json: cannot read"),
    ],
)
def test_cli_sweep_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(["sweep", *argv])
    assert code == 2 and out == ""
    assert message in capsys.readouterr().err


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("sim_bench", ROOT / "bench" / "sim_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_100_point_sweep_on_10k_tasks_uses_every_core() -> None:
    # docs/performance.md, "Simulator": 10 workflow limits x 10 limits of array 1.
    scenario = _bench().reference_scenario(10_000)
    axes = [
        Axis("workflow_limit", None, tuple(range(500, 5001, 500))),
        Axis("array 1", 1, tuple(range(200, 2001, 200))),
    ]
    t0 = time.perf_counter()
    points = run_sweep(scenario, axes, seed=0)  # max_workers = os.cpu_count()
    wall = time.perf_counter() - t0
    assert len(points) == 100
    assert all(p.final_status == "D" and p.done == 10_000 and not p.violations for p in points)
    assert all(p.peak_active is not None and p.peak_active <= p.limits["workflow_limit"] for p in points)
    print(f"100-point sweep of 10k-task scenarios: {wall:.1f} s on {os.cpu_count()} CPU(s)")
    assert wall < 120.0


def test_seeds_per_point_give_the_spread_and_the_best() -> None:
    s = load_scenario(PIPELINE)
    axes = [Axis("workflow_limit", None, (2, 8))]
    points = run_sweep(s, axes, jobs=1, seeds=[1, 2, 3, 4])
    singles = {seed: run_sweep(s, axes, seed=seed, jobs=1) for seed in (1, 2, 3, 4)}
    for i, p in enumerate(points):
        makespans = sorted(singles[seed][i].makespan for seed in (1, 2, 3, 4))
        assert p.seeds == (1, 2, 3, 4)
        assert p.makespan_spread is not None and p.makespan_spread.n == 4
        assert p.makespan_spread.p5 == makespans[0] and p.makespan_spread.p95 == makespans[-1]
        assert abs(p.makespan_spread.mean - sum(makespans) / 4) < 1e-6
        assert p.peak_active == max(singles[seed][i].peak_active for seed in (1, 2, 3, 4))
    # A workflow limit of 8 beats 2 by far more than the seed-to-seed noise.
    code, out = cli(["sweep", PIPELINE, "--workflow-limit", "2,8", "--seeds", "1-4", "--jobs", "1"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "three_array_pipeline: sweep of 2 point(s), 4 seeds (1-4) per point"
    head = ["workflow_limit", "status", "makespan", "mean", "p5", "p50", "p95", "peak"]
    assert lines[1].split()[:8] == head
    row_8 = next(line for line in lines if line.strip().startswith("8 "))
    assert row_8.rstrip().endswith("best")
    assert any(line.startswith("  best         workflow_limit=8: mean makespan ") for line in lines)
    assert "  the best is distinguishable from every other point (95%)" in lines


def test_cli_sweep_seeds_json_and_plot_band(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "band.png"
    argv = ["sweep", PIPELINE, "--array-limit", "2=1,3", "--seeds", "1-3", "--json", "--plot", str(png)]
    code, out = cli(argv)
    assert code == 0 and png.read_bytes().startswith(b"\x89PNG")
    data = json.loads(out)
    assert data["seeds"] == [1, 2, 3] and data["seed"] is None
    spread = data["points"][0]["makespan_spread"]
    assert spread["n"] == 3 and spread["p5"] <= spread["p50"] <= spread["p95"]


def test_dask_sweep_matches_the_local_run() -> None:
    distributed = pytest.importorskip("distributed")
    s = load_scenario(PIPELINE)
    axes = [Axis("workflow_limit", None, (2, 4)), Axis("array 2", 2, (1, 3))]
    local = run_sweep(s, axes, jobs=2, seeds=[5, 6])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        seen: list[tuple[int, int]] = []
        remote = run_sweep(s, axes, seeds=[5, 6], dask=cluster.scheduler_address,
                           progress=lambda done, total: seen.append((done, total)))
        code, out = cli(["sweep", PIPELINE, "--workflow-limit", "2,4", "--seeds", "5-6",
                         "--dask", cluster.scheduler_address, "--json"])
    assert remote == local
    assert seen[-1] == (8, 8) and len(seen) == 8
    assert code == 0 and [p["makespan"] for p in json.loads(out)["points"]] == [
        p.makespan for p in run_sweep(s, [axes[0]], jobs=1, seeds=[5, 6])]


def test_dask_without_a_scheduler_is_a_named_error() -> None:
    pytest.importorskip("distributed")
    from swarmfold.shell.sim.executor import DaskUnavailable, map_shared

    with pytest.raises(DaskUnavailable, match="no dask scheduler answered at tcp://127.0.0.1:1"):
        map_shared(max, 0, [1, 2], dask="tcp://127.0.0.1:1", connect_timeout=1.0)


def test_dask_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from swarmfold.shell.sim.executor import DaskUnavailable, map_shared

    real_import = builtins.__import__

    def no_distributed(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("No module named 'distributed'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(DaskUnavailable, match=r"pip install 'swarmfold\[dask\]'"):
        map_shared(lambda shared, item: item, None, [1], dask="tcp://127.0.0.1:1")


def test_simulate_seeds_on_dask_match_the_local_run() -> None:
    distributed = pytest.importorskip("distributed")
    argv = ["simulate", PIPELINE, "--faults", "--seeds", "1-12", "--json"]
    code, local = cli([*argv, "--jobs", "2"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        dask_code, remote = cli([*argv, "--dask", cluster.scheduler_address])
    assert code == dask_code == 0
    assert json.loads(remote) == json.loads(local)
