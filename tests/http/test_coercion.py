"""Resource coercion is the cluster plugin's, chosen by the cluster type the server names
(``GET /cluster/{name}``): multiprocess, sequential and dummy change nothing, Slurm-like
plugins clamp. A task asking ``cores: 40`` of a queue bounded 1-20 runs with 40 on a
multiprocess cluster (as under Jobmon) and with 20 on a Slurm one; the rule is in the event
log (``QueuesLoaded``), so the log replays with no plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmfold.core.config import SwarmConfig
from swarmfold.shell.http.attach_run import run_workflow_run
from swarmfold.shell.jobmon.clusters import coercion_for
from swarmfold.shell.log.replay import replay

from .jobmon_stub import JobmonStub, layered_tasks


@pytest.mark.parametrize(("cluster", "cores"), [("multiprocess", 40), ("sequential", 40), ("dummy", 40),
                                                 ("slurm", 20), ("uge", 20)])
def test_the_cluster_type_decides_the_coercion(cluster: str, cores: int, tmp_path: Path) -> None:
    tasks = layered_tasks(4, layers=1)
    for task in tasks:
        task.cluster = cluster
        task.requested = {"cores": 40}
    with JobmonStub(tasks) as stub:
        outcome = run_workflow_run(
            stub.url, 1, 1, config=SwarmConfig(heartbeat_interval=0.1), progress="off",
            install_signal_handlers=False, lock_dir=str(tmp_path), log_path=tmp_path / "run.log",
            route_prefix=stub.prefix,
        )
        binds = [r.body for r in stub.requests_to("bind_resources")]
    assert outcome.exit_code == 0, outcome
    assert binds and all(b["requested_resources"] == {"cores": cores} for b in binds), binds
    assert replay(tmp_path / "run.log").ok
    assert f'"coercion":"{coercion_for(cluster)}"' in (tmp_path / "run.log").read_text()


def test_unknown_cluster_types_clamp() -> None:
    assert coercion_for("my-own-plugin") == "clamp" and coercion_for(None) == "clamp"
    assert coercion_for("Multiprocess") == "validate_cores"
