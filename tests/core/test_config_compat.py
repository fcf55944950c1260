"""Logs recorded before ``bulk_status_threshold`` existed still decode, with the default."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import RunStarted
from swarmfold.shell.log.codec import event_from_dict, structure

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_logs" / "sim-diamond.log.gz"


def _first_lines(n: int) -> list[dict]:  # type: ignore[type-arg]
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(n)]


def test_an_old_log_lacks_the_field_and_decodes_with_the_default() -> None:
    header, first = _first_lines(2)
    assert "bulk_status_threshold" not in header["config"]
    assert "bulk_status_threshold" not in first["event"]["config"]
    assert structure(header["config"], SwarmConfig).bulk_status_threshold == 64
    event = event_from_dict(first["event"])
    assert isinstance(event, RunStarted)
    assert event.config.bulk_status_threshold == 64
    assert event.config == SwarmConfig(**{**header["config"], "bulk_status_threshold": 64})


def test_a_new_config_carries_the_field() -> None:
    from swarmfold.shell.log.codec import to_json

    assert '"bulk_status_threshold":8' in to_json(SwarmConfig(bulk_status_threshold=8))
