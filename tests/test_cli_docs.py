"""Every worked example in docs/cli-*.md runs and prints what the doc shows.

A console block's ``$ `` lines are run with bash in a scratch directory holding a copy of
``examples/``; every non-empty line shown after a command must appear in its output.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("cli-*.md"))
#: Output that differs per process or machine is marked in the docs with this word.
VARIES = ("runner_id", "created_at", "(varies)")


def sessions(doc: Path) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` for every ``$ `` line of the doc."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            elif found and line.strip():
                found[-1][1].append(line)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_documented_examples_print_what_the_doc_shows(doc: Path, tmp_path: Path) -> None:
    runs = sessions(doc)
    assert runs, f"{doc.name} has no console example"
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "swarmfold"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m swarmfold "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for command, expected in runs:
        proc = subprocess.run(
            ["bash", "-c", f"{{ {command} ; }} 2>&1"], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300,
        )
        actual = proc.stdout.splitlines()
        for line in expected:
            if any(v in line for v in VARIES):
                continue
            assert line in actual, f"{doc.name}: $ {command}\nexpected line: {line!r}\ngot:\n{proc.stdout}"
