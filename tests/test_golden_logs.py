"""Event logs recorded before the structural refactor must keep replaying identically.

The logs in ``tests/data/golden_logs`` were recorded on main before issue 7 (one server model,
protocol and transition tables, the shell's new layout): the bundled examples under ``fold``
and ``simulate`` (with and without seeded faults), one ``demo`` run over HTTP, and the 100k-task
reference benchmark (all log version 1). ``demo-http-v3`` and ``reference-10000-v3`` were
recorded at ``2dad5e6`` (log version 3: pages of rows as columns, id lists as runs), before the
per-task columns became rerooted columns and the log gained bitmaps (version 4). Each must fold
to exactly the commands it recorded, record for record.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from swarmfold.shell.log.replay import replay

GOLDEN = Path(__file__).resolve().parent / "data" / "golden_logs"
LOGS = sorted(GOLDEN.glob("*.log.gz"))


def test_the_golden_logs_are_there() -> None:
    names = {p.name for p in LOGS}
    assert "reference-100000.log.gz" in names
    assert "demo-http.log.gz" in names
    assert {"demo-http-v3.log.gz", "reference-10000-v3.log.gz"} <= names
    assert len(names) >= 11


@pytest.mark.parametrize("packed", LOGS, ids=lambda p: p.name.removesuffix(".log.gz"))
def test_golden_log_replays_with_the_same_decisions(packed: Path, tmp_path: Path) -> None:
    plain = tmp_path / packed.name.removesuffix(".gz")
    with gzip.open(packed, "rb") as src, plain.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    result = replay(plain)
    assert result.error is None, result.error
    assert result.divergence is None, result.divergence
    assert result.ok
    assert result.records > 10
