"""The old ``swarmfold fold`` file format, read through one converter.

Before there was one scenario format, ``fold`` read its own files: ``{"workflow_id",
"workflow_run_id", "config": SwarmConfig fields, "topology": TopologySpec in the codec's
encoding}``. Every command now takes the scenario format (docs/scenario-format.md), and files
of the old shape are converted on the way in by ``scenario_from_fold_format``: the topology and
the configuration are kept exactly, and simulation settings take their defaults (no durations:
``fold`` does not need them). ``dump_scenario(load_scenario(OLD))`` writes the converted file
in the scenario format once and for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from swarmfold.core.config import SwarmConfig
from swarmfold.core.topology import TopologySpec

__all__ = ["FoldFile", "is_fold_format", "scenario_from_fold_format"]


@frozen
class FoldFile:
    """The old ``fold`` file: ids, configuration and topology."""

    workflow_id: int
    workflow_run_id: int
    topology: TopologySpec
    config: SwarmConfig = SwarmConfig()


def is_fold_format(data: Any) -> bool:
    """True for the old ``fold`` shape (a ``topology`` object, no top-level ``tasks``)."""
    return isinstance(data, Mapping) and "topology" in data and "tasks" not in data


def scenario_from_fold_format(data: Any, source: str = "") -> Any:
    """The ``Scenario`` of an old-format ``fold`` file. Raises ``ScenarioError`` naming the
    JSON path of what is wrong (``$.topology.tasks[3].array_id: ...``)."""
    from swarmfold.core.errors import InvalidConfig, InvalidTopology
    from swarmfold.shell.log.codec import CodecError, structure
    from swarmfold.shell.sim.scenario import ScenarioError, scenario_from_topology

    try:
        old: FoldFile = structure(data, FoldFile)
    except CodecError as exc:
        raise ScenarioError(exc.errors, source) from exc
    except (InvalidTopology, InvalidConfig) as exc:
        raise ScenarioError([str(exc)], source) from exc
    return scenario_from_topology(
        old.topology,
        config=old.config,
        workflow_id=old.workflow_id,
        workflow_run_id=old.workflow_run_id,
        source=source,
    )
