"""Session-wide test settings."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _temp_files_in_the_test_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs started by the tests (in process or through the CLI) keep their per-run lock
    files in the system temp folder, and never delete them (``RunLock``): point it at the
    session's own folder, so the tests leave nothing behind in /tmp."""
    folder = str(tmp_path_factory.mktemp("system-temp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", folder)
        patch.setattr(tempfile, "tempdir", folder)
        yield
