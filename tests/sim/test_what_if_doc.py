"""docs/what-if.md runs as shown: its Python block writes the 10k-task scenario, its sweep
prints the table the page shows and draws the plot."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from swarmfold.shell.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "what-if.md"


def test_the_what_if_page_runs_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    text = DOC.read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S)
    console = re.search(r"```console\n\$ (.*?)\n(.*?)```", text, re.S)
    assert code is not None and console is not None
    monkeypatch.chdir(tmp_path)
    exec(compile(code.group(1), str(DOC), "exec"), {})
    argv = shlex.split(console.group(1))
    assert argv[:2] == ["swarmfold", "sweep"]
    out = io.StringIO()
    assert main(argv[1:], out=out) == 0
    assert out.getvalue() == console.group(2)
    assert (tmp_path / "what-if.png").read_bytes().startswith(b"\x89PNG")
    assert (DOC.parent / "what-if.png").is_file()
