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


@pytest.mark.parametrize("command", [["fold"], ["simulate"], ["demo"], ["serve"]], ids=lambda c: c[0])
def test_a_huge_scenario_file_is_refused_before_it_is_read_whole(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmfold.shell.sim.scenario import loading

    monkeypatch.setattr(loading, "MAX_SCENARIO_BYTES", 1000)
    big = tmp_path / "big.json"
    big.write_bytes(b'{"name": "' + b"x" * 5000 + b'"}')
    assert run([command[0], str(big)]) == 2
    err = capsys.readouterr().err
    assert f"{big}: $: file larger than 1,000 bytes: not a scenario" in err and "Traceback" not in err


@pytest.mark.parametrize("line", [1, 3])
@pytest.mark.parametrize("command", [["replay"], ["explain", "--task", "1"], ["simulate", "--from-log"]],
                         ids=lambda c: "-".join(c[:2]))
def test_a_huge_log_line_is_named_with_its_line(
        command: list[str], line: int, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    from swarmfold.shell.log import eventlog

    source = Path(__file__).parent / "data" / "golden_logs" / "sim-diamond.log.gz"
    lines = gzip.decompress(source.read_bytes()).splitlines(keepends=True)
    monkeypatch.setattr(eventlog, "MAX_LINE_BYTES", max(len(x) for x in lines[:line - 1] + lines[line:]) + 1)
    lines[line - 1] = b'{"seq": 1, "pad": "' + b"x" * (eventlog.MAX_LINE_BYTES + 10) + b'"}\n'
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"".join(lines))
    argv = [*command, str(bad)] if command[0] == "simulate" else [command[0], str(bad), *command[1:]]
    out = io.StringIO()
    code = main(argv, out=out)
    err = capsys.readouterr().err
    said = f"bad.log:{line}: $: line longer than"
    if command[0] == "explain" and line > 2:  # explain answers at the last readable record, noting why
        assert code == 0 and said in out.getvalue() and "explained at record 1" in out.getvalue()
    else:
        assert code == 2 and said in err
    assert "Traceback" not in err
