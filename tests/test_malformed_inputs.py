"""Every reader of a scenario or an event log turns malformed bytes into a named error (file,
line, what) and exit code 2: deep nesting, binary, wrong encoding. No traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from swarmfold.shell.cli import main

DEEP = b"[" * 100_000 + b"\n"
BINARY = bytes(range(128, 256)) * 3
LATIN1 = '{"name": "caf\xe9"}\n'.encode("latin-1")


def run(argv: list[str]) -> int:
    return main(argv, out=io.StringIO())


@pytest.mark.parametrize(("content", "message"), [
    (DEEP, "$: invalid JSON: nested too deeply to decode"),
    (BINARY, "$: not UTF-8 text: byte 0x80 at offset 0"),
    (LATIN1, "$: not UTF-8 text: byte 0xe9 at offset 13"),
], ids=["deep", "binary", "latin-1"])
@pytest.mark.parametrize("command", [["fold"], ["simulate"], ["sweep", "--workflow-limit", "1"], ["demo"],
                                     ["serve"]], ids=lambda c: c[0])
def test_scenario_readers(command: list[str], content: bytes, message: str, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    argv = [command[0], str(bad), *command[1:]]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}: {message}" in err and "Traceback" not in err


@pytest.mark.parametrize(("content", "message"), [
    (b'{"seq": 1, "x": ' + DEEP.strip() + b"}\n", "bad.log:1: $: invalid JSON: nested too deeply to decode"),
    (BINARY + b"\n", "bad.log:1: $: invalid JSON: not UTF-8: byte 0x80 at column 1"),
], ids=["deep", "binary"])
@pytest.mark.parametrize("command", [["replay"], ["explain", "--task", "1"], ["scenario-from-log"],
                                     ["simulate", "--from-log"]], ids=lambda c: "-".join(c[:2]))
def test_event_log_readers(command: list[str], content: bytes, message: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.log"
    bad.write_bytes(content)
    if command[0] == "simulate":
        argv = [*command, str(bad)]
    elif command[0] == "scenario-from-log":
        argv = [command[0], str(bad), "-o", str(tmp_path / "out.json")]
    else:
        argv = [command[0], str(bad), *command[1:]]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
