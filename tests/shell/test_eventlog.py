"""The event log file: header, records, byte stability, torn and corrupt lines, the lock."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmfold.core.commands import COMMAND_TYPES, Command, NoteAnomaly, QueueBatch
from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import (
    EVENT_TYPES,
    BatchQueued,
    EdgeChunkLoaded,
    EdgeRow,
    Event,
    TaskChunkLoaded,
    TaskRow,
    TaskStatusesFetched,
    TimerFired,
)
from swarmfold.shell.log import eventlog, record_codec
from swarmfold.shell.log.codec import CodecError, command_from_dict, event_from_dict, to_json
from swarmfold.shell.log.eventlog import (
    LOG_FORMAT,
    LOG_VERSION,
    EventLogWriter,
    LogError,
    LogLocked,
    iter_log,
    new_header,
    read_header,
    read_log,
)
from swarmfold.shell.log.record_codec import decode_value, encode_value
from swarmfold.shell.server.instant import drive
from swarmfold.shell.sim.scenario import load_scenario

from ..core.helpers import task_row_lists
from . import CREATED, EXAMPLE, ROOT, RUNNER, codec_line, lines_of, log_data, record_run, run_cli, small_spec


def _pipeline_log(path: Path) -> list[tuple[Event, tuple[Command, ...]]]:
    """Record the example pipeline into ``path``; return what the driver saw."""
    scenario = load_scenario(EXAMPLE)
    steps: list[tuple[Event, tuple[Command, ...]]] = []
    drive(scenario.topology, scenario.config, record=steps)
    record_run(path, scenario.topology, scenario.config)
    return steps


def test_round_trip_keeps_every_event_and_command(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    steps = _pipeline_log(path)
    log = read_log(path)
    assert log.error is None
    assert log.header.format == LOG_FORMAT and log.header.version == LOG_VERSION
    assert log.header.runner_id == RUNNER and log.header.source == "fold"
    assert log.header.config == json.loads(to_json(load_scenario(EXAMPLE).config))
    assert [(r.event, r.commands) for r in log.records] == steps
    assert [r.seq for r in log.records] == list(range(1, len(steps) + 1))
    assert [r.line for r in log.records] == list(range(2, len(steps) + 2))
    assert list(iter_log(path)) == list(log.records)
    assert read_header(path) == log.header


def test_record_line_is_the_codec_encoding_and_seq_counts_from_one(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    event = TimerFired(at=1.5, command_id=None)
    command = QueueBatch(command_id=3, array_id=1, task_ids=(7, 8), task_resources_id=2, workflow_run_id=1)
    with EventLogWriter(path, new_header("simulate", 1, 1, SwarmConfig(), runner_id="r")) as writer:
        assert writer.record(event, (command,)) == 1
        assert writer.record(event, ()) == 2
        # Flushed at once: readable while the writer is still open.
        assert len(read_log(path).records) == 2
    lines = path.read_text().splitlines()
    assert lines[1] == (
        '{"commands":[' + to_json(command) + '],"event":' + to_json(event) + ',"runner_id":"r","seq":1}'
    )
    assert lines[2] == '{"commands":[],"event":' + to_json(event) + ',"runner_id":"r","seq":2}'


def test_the_same_run_gives_a_byte_identical_log(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    _pipeline_log(a)
    _pipeline_log(b)
    assert a.read_bytes() == b.read_bytes()


def test_fold_log_records_are_byte_identical_apart_from_the_runner_id(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    assert run_cli(["fold", str(EXAMPLE), "--log", str(a)])[0] == 0
    assert run_cli(["fold", str(EXAMPLE), "--log", str(b)])[0] == 0
    ha, hb = read_header(a), read_header(b)
    assert ha.runner_id != hb.runner_id  # one per process start
    assert (ha.source, ha.workflow_id, ha.extra) == ("fold", 1, {"scenario": str(EXAMPLE)})
    la, lb = lines_of(a), lines_of(b)
    assert len(la) == len(lb) == 55  # header + 54 records (fold printed "events 54")
    strip_a = [line.replace(ha.runner_id.encode(), b"R") for line in la[1:]]
    strip_b = [line.replace(hb.runner_id.encode(), b"R") for line in lb[1:]]
    assert strip_a == strip_b
    # Every record of the fold replays from the log the CLI wrote.
    assert [r.event for r in read_log(a).records] == [r.event for r in read_log(b).records]


def test_torn_last_line_is_named_and_everything_before_it_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    _pipeline_log(path)
    whole = read_log(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 25])  # the writer died mid-line
    log = read_log(path)
    last_line = len(whole.records) + 1
    assert log.error is not None
    assert log.error.line == last_line
    assert log.error.field == "$"
    assert "torn last line" in log.error.message
    assert str(log.error).startswith(f"{path}:{last_line}: $: torn last line")
    assert log.records == whole.records[:-1]
    with pytest.raises(LogError) as exc:
        read_log(path, strict=True)
    assert exc.value.line == last_line
    with pytest.raises(LogError, match=f":{last_line}: "):
        list(iter_log(path))


def test_corrupt_middle_line_names_the_line_and_keeps_the_records_before(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    _pipeline_log(path)
    lines = lines_of(path)
    lines[9] = b'{"seq": 9, "event": {oops\n'
    path.write_bytes(b"".join(lines))
    log = read_log(path)
    assert log.error is not None
    assert (log.error.line, log.error.field) == (10, "$")
    assert log.error.message.startswith("invalid JSON")
    assert "torn" not in log.error.message
    assert [r.seq for r in log.records] == list(range(1, 9))


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda r: r["event"].__setitem__("at", "x"), "$.event.at", "expected float, got 'x'"),
        (lambda r: r["event"].pop("at"), "$.event.at", "required field missing"),
        (lambda r: r["event"].__setitem__("type", "Nope"), "$.event.type", "unknown Event type 'Nope'"),
        (
            lambda r: r["commands"][0].__setitem__("task_ids", [101, "102"]),
            "$.commands[0].task_ids[1]",
            "expected int, got '102'",
        ),
        (lambda r: r.__setitem__("commands", {}), "$.commands", "expected an array"),
        (lambda r: r.__setitem__("seq", 7), "$.seq", "expected 3"),
        (lambda r: r.pop("event"), "$.event", "required field missing"),
        (lambda r: r.__setitem__("extra", 1), "$", "unknown field(s): extra"),
        (lambda r: r.__setitem__("runner_id", "other"), "$.runner_id", "expected 'test-runner'"),
    ],
)
def test_a_bad_field_is_named_by_its_path(tmp_path: Path, edit, field: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "run.log"
    _pipeline_log(path)
    lines = lines_of(path)
    record = json.loads(lines[3])  # record 3: ResourcesBound -> QueueBatch(101..105)
    assert record["commands"][0]["type"] == "QueueBatch"
    edit(record)
    lines[3] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    log = read_log(path)
    assert log.error is not None
    assert log.error.line == 4
    assert log.error.field == field
    assert message in log.error.message
    assert str(log.error) == f"{path}:4: {field}: {log.error.message}"
    assert [r.seq for r in log.records] == [1, 2]


def test_an_empty_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    _pipeline_log(path)
    lines = lines_of(path)
    lines.insert(5, b"\n")
    path.write_bytes(b"".join(lines))
    log = read_log(path)
    assert log.error is not None and (log.error.line, log.error.field) == (6, "$")
    assert len(log.records) == 4


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        (b"", "$", "empty file"),
        (b'{"format":"something-else","version":1}\n', "$.format", "not a swarmfold event log"),
        (b'{"format":"swarmfold-event-log","version":5}\n', "$.version", "unsupported log version 5"),
        (b'{"format":"swarmfold-event-log","version":0}\n', "$.version", "reads versions 1, 2, 3 and 4"),
        (b"[1, 2]\n", "$", "must be an object"),
        (b'{"format":"swarmfold-event-log","version":1}\n', "$.swarmfold_version", "required field missing"),
    ],
)
def test_a_bad_header_raises_naming_line_1(tmp_path: Path, content: bytes, field: str, message: str) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(content)
    with pytest.raises(LogError) as exc:
        read_log(path)
    assert (exc.value.line, exc.value.field) == (1, field)
    assert message in exc.value.message


def test_a_missing_file_is_a_log_error(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="cannot read"):
        read_log(tmp_path / "nope.log")


def test_secrets_are_never_written(tmp_path: Path) -> None:
    config = {
        "heartbeat_interval": 10.0,
        "auth_token": "tok-123",
        "server": {"url": "https://alice:hunter2@jobmon.example/api", "Password": "hunter2", "port": 80},
        "headers": [{"Authorization": "Bearer abc"}, {"accept": "json"}],
    }
    header = new_header(
        "run", 5, 50, config, extra={"client_secret": "s3cr3t", "note": "ok", "session_id": "x"}
    )
    assert header.config == {
        "heartbeat_interval": 10.0,
        "server": {"url": "https://jobmon.example/api", "port": 80},
        "headers": [{}, {"accept": "json"}],
    }
    assert header.extra == {"note": "ok"}
    path = tmp_path / "run.log"
    EventLogWriter(path, header).close()
    text = path.read_text()
    for secret in ("tok-123", "hunter2", "alice", "Bearer", "s3cr3t", "auth", "Authorization"):
        assert secret not in text
    assert read_header(path) == header


def test_new_header_defaults_and_checks(tmp_path: Path) -> None:
    header = new_header("fold", 1, 2, SwarmConfig(heartbeat_interval=5.0))
    host, pid, token = header.runner_id.rsplit("-", 2)
    assert host and pid.isdigit() and len(token) == 8
    assert header.config["heartbeat_interval"] == 5.0
    assert header.created_at.endswith("+00:00")
    assert new_header("fold", 1, 2, {}, runner_id="x", created_at=CREATED).created_at == CREATED
    with pytest.raises(ValueError, match="source"):
        new_header("bogus", 1, 2, {})


def test_a_second_writer_on_the_same_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    first = EventLogWriter(path, new_header("run", 1, 1, {}, runner_id="runner-A"))
    first.record(TimerFired(at=1.0), ())
    with pytest.raises(LogLocked) as exc:
        EventLogWriter(path, new_header("run", 1, 1, {}, runner_id="runner-B"))
    assert exc.value.path == str(path)
    assert exc.value.holder == "runner-A"
    assert str(path) in str(exc.value) and "runner-A" in str(exc.value)
    # The refused writer touched nothing: the first log is whole and still being written.
    first.record(TimerFired(at=2.0), ())
    first.close()
    log = read_log(path)
    assert log.header.runner_id == "runner-A" and [r.seq for r in log.records] == [1, 2]
    # Once released, a new writer may take the path (and starts a fresh log).
    with EventLogWriter(path, new_header("run", 1, 1, {}, runner_id="runner-C")):
        pass
    assert read_log(path).header.runner_id == "runner-C" and read_log(path).records == ()


def test_a_writer_in_another_process_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    script = textwrap.dedent(
        f"""
        import sys
        from swarmfold.shell.log.eventlog import EventLogWriter, new_header
        w = EventLogWriter({str(path)!r}, new_header("run", 1, 1, {{}}, runner_id="other-process"))
        print("locked", flush=True)
        sys.stdin.readline()
        w.close()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(LogLocked, match="other-process"):
            EventLogWriter(path, new_header("run", 1, 1, {}, runner_id="me"))
        code, _ = run_cli(["fold", str(EXAMPLE), "--log", str(path)])
        assert code == 2
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    assert read_header(path).runner_id == "other-process"


def test_fold_log_option_writes_a_log_the_reader_accepts(tmp_path: Path) -> None:
    path = tmp_path / "fold.log"
    code, out = run_cli(["fold", str(EXAMPLE), "--log", str(path)])
    assert code == 0 and "events    54" in out
    log = read_log(path)
    assert log.error is None and len(log.records) == 54
    assert log.header.source == "fold" and log.header.config["heartbeat_interval"] == 10.0


def test_closed_writer_refuses_records(tmp_path: Path) -> None:
    writer = EventLogWriter(tmp_path / "x.log", new_header("fold", 1, 1, {}, runner_id="r"))
    writer.close()
    writer.close()  # idempotent
    assert writer.closed
    with pytest.raises(ValueError, match="closed"):
        writer.record(TimerFired(at=0.0), ())


def test_small_scenario_recording_matches_the_driver(tmp_path: Path) -> None:
    path = tmp_path / "small.log"
    result = record_run(path, small_spec())
    log = read_log(path)
    assert result.final_status == "D"
    assert len(log.records) == result.events
    assert sum(len(r.commands) for r in log.records) == result.commands


# --- the writer's and reader's fast paths agree with the codec, byte for byte ----------------


def _codec_samples() -> list[Any]:
    """One or more samples of every event and command class, from tests/test_codec.py."""
    spec = importlib.util.spec_from_file_location("_codec_samples", ROOT / "tests" / "test_codec.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [*module.EVENT_SAMPLES, *module.COMMAND_SAMPLES]


def _rows_sharing_equal_values() -> TaskChunkLoaded:
    """Rows whose resource tuples are one shared object, or equal but differently typed
    (``("cores", 1)`` == ``("cores", 1.0)``): the writer remembers encodings by identity."""
    ints = (("cores", 1), ("memory", 2))
    floats = (("cores", 1.0), ("memory", 2.0))
    scales = (("memory", 0.5), ("runtime", (0.5, 1)))

    def row(task_id: int, requested: Any) -> TaskRow:
        return TaskRow(task_id, 1, "G", 3, scales, ("b.q",), requested, "c", "all.q", 10)

    return TaskChunkLoaded(1, 2.0, (row(1, ints), row(2, floats), row(3, ints), row(4, floats)))


def test_rows_are_written_by_identity_not_equality() -> None:
    chunk = _rows_sharing_equal_values()
    for _ in range(2):  # the second pass reads the remembered encodings
        assert eventlog._dumps(encode_value(chunk)) == eventlog._dumps(log_data(chunk))
        written = json.loads(eventlog._dumps(encode_value(chunk)))["tasks"]
        assert written["rows"] == 4
        table = written["columns"]["requested_resources"]
        assert table["index"] == [0, 1, 0, 1]
        assert [type(v[0][1]) for v in table["values"]] == [int, float]
        data = json.loads(eventlog._dumps(encode_value(chunk)))
        decoded = decode_value(data, eventlog._EVENTS_BY_NAME, event_from_dict)
        assert decoded == chunk
        assert [type(r.requested_resources[0][1]) for r in decoded.tasks] == [int, float, int, float]
    loaded = EdgeChunkLoaded(3, 4.0, (EdgeRow(1, 10, (11, 12)), EdgeRow(2, 11, ())))
    assert eventlog._dumps(encode_value(loaded)) == eventlog._dumps(log_data(loaded))


def test_records_with_pages_of_rows_are_the_codec_data_with_columns(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    steps = _pipeline_log(path)
    chunk = _rows_sharing_equal_values()
    edges = EdgeChunkLoaded(3, 4.0, (EdgeRow(1, 10, (11, 12)), EdgeRow(2, 11, ())))
    cases: list[tuple[str, Event, list[Command]]] = [
        *(("r", e, list(c)) for e, c in steps),
        ("r", chunk, []),
        ("r", TaskChunkLoaded(1, 2.0, ()), []),  # an empty page stays an array
        ("r", edges, [QueueBatch(1, 2, (5, 6), 3, 4)]),
        ("r", chunk, [NoteAnomaly(9, "odd", '{"columns":{}}')]),
    ]
    for runner_id, event, commands in cases:
        line = record_codec.record_text(7, runner_id, event, commands)
        assert line == codec_line(7, runner_id, event, commands), event
        data = json.loads(line)["event"]
        assert decode_value(data, eventlog._EVENTS_BY_NAME, event_from_dict) == event


def test_fast_encoding_and_decoding_equal_the_codec(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    _pipeline_log(path)
    recorded = [x for r in read_log(path).records for x in (r.event, *r.commands)]
    extra = [
        TimerFired(at=10, command_id=None),  # an int in a float field is written as 10.0
        BatchQueued(command_id=1, at=2, tasks_by_status={"R": [3, 1], "Q": ()}, duration=1),
        TaskStatusesFetched(command_id=2, at=0.5, tasks_by_status={}, server_time=None),
    ]
    samples = [*_codec_samples(), *recorded, *extra, _rows_sharing_equal_values()]
    assert {type(x) for x in samples} == set(EVENT_TYPES) | set(COMMAND_TYPES)
    for value in samples:
        union = Event if type(value) in EVENT_TYPES else Command
        by_name = eventlog._EVENTS_BY_NAME if union is Event else eventlog._COMMANDS_BY_NAME
        slow = event_from_dict if union is Event else command_from_dict
        assert eventlog._dumps(encode_value(value)) == eventlog._dumps(log_data(value)), value
        data = json.loads(to_json(value))  # pages as arrays of rows (versions 1 and 2)
        assert decode_value(data, by_name, slow) == slow(data) == value
        assert decode_value(log_data(value), by_name, slow) == value
    # The hot records really take the fast path (no codec call).
    for value in extra + [QueueBatch(1, 2, (5, 6), 3, 4)]:
        data = json.loads(to_json(value))
        by_name = eventlog._EVENTS_BY_NAME if type(value) in EVENT_TYPES else eventlog._COMMANDS_BY_NAME
        assert decode_value(data, by_name, lambda d: pytest.fail(f"slow path for {d}")) == value


@pytest.mark.parametrize(
    ("task_ids", "message"),
    [
        ([101, True], "expected int, got True"),
        ([101, 1.0], "expected int, got 1.0"),
        ("x", "expected an array"),
    ],
)
def test_fast_decoding_falls_back_to_the_codec_for_errors(
    tmp_path: Path, task_ids: Any, message: str
) -> None:
    path = tmp_path / "run.log"
    _pipeline_log(path)
    lines = lines_of(path)
    record = json.loads(lines[3])
    record["commands"][0]["task_ids"] = task_ids
    lines[3] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    error = read_log(path).error
    assert error is not None and error.line == 4
    assert error.field.startswith("$.commands[0].task_ids") and message in error.message


_ANY_INT = st.integers(-(2**70), 2**70)


@given(st.lists(
    st.tuples(st.integers(1, 10**6), _ANY_INT, st.lists(_ANY_INT, max_size=4)), min_size=1, max_size=12
))
def test_edge_rows_written_as_one_column_equal_the_codec(rows: list[tuple[int, int, list[int]]]) -> None:
    """Edge pages as columns: empty lists, one row, one id and huge ids all come out as the
    codec writes them, and read back as the same rows."""
    loaded = EdgeChunkLoaded(3, 4.0, tuple(EdgeRow(t, n, tuple(d)) for t, n, d in rows))
    line = record_codec.record_text(1, "r", loaded, [])
    assert line == codec_line(1, "r", loaded, [])
    assert decode_value(json.loads(line)["event"], eventlog._EVENTS_BY_NAME, event_from_dict) == loaded


def _two_task_page() -> dict[str, Any]:
    chunk = _rows_sharing_equal_values()
    data: dict[str, Any] = json.loads(record_codec.dumps(encode_value(chunk)))
    return data


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda t: t.update(rows=5), "$.tasks.columns.task_id", "expected 5 items (the row count), got 4"),
        (lambda t: t.update(rows=-1), "$.tasks.rows", "expected a row count"),
        (lambda t: t.pop("rows"), "$.tasks.rows", "required field missing"),
        (lambda t: t.update(extra=1), "$.tasks", "unknown field(s) in a columns object: extra"),
        (lambda t: t["columns"].pop("status"), "$.tasks.columns.status", "required field missing"),
        (lambda t: t["columns"].update(nope=[]), "$.tasks.columns", "unknown field(s) in the columns: nope"),
        (lambda t: t["columns"]["array_id"]["repeat"].__setitem__(0, "x"),
         "$.tasks.columns.array_id.repeat[0]", "expected int, got 'x'"),
        (lambda t: t["columns"]["status"]["repeat"].__setitem__(1, 3), "$.tasks.columns.status.repeat[1]",
         "expected the row count 4, got 3"),
        (lambda t: t["columns"]["status"].update(x=1), "$.tasks.columns.status",
         "unknown field(s) in a repeated column: x"),
        (lambda t: t["columns"].update(status={"runs": [1, 4]}), "$.tasks.columns.status.repeat",
         "required field missing"),
        (lambda t: t["columns"].update(task_id={"runs": [1, 3]}), "$.tasks.columns.task_id",
         "3 ids, expected 4 (the row count)"),
        (lambda t: t["columns"].update(task_id={"runs": [1, 0]}), "$.tasks.columns.task_id.runs[1]",
         "at least 1"),
        (lambda t: t["columns"].update(task_id={"bits": [1, 3, "Bw=="]}), "$.tasks.columns.task_id",
         "3 ids, expected 4 (the row count)"),
        (lambda t: t["columns"].update(task_id={"bits": [1, 8, "Bw"]}), "$.tasks.columns.task_id.bits[2]",
         "not base64"),
        (lambda t: t["columns"]["task_id"].__setitem__(2, True), "$.tasks.columns.task_id[2]",
         "expected int, got True"),
        (lambda t: t["columns"]["status"]["repeat"].__setitem__(0, 7), "$.tasks.columns.status.repeat[0]",
         "expected str, got 7"),
        (lambda t: t["columns"].update(status="GGGG"), "$.tasks.columns.status", "expected an array"),
        (
            lambda t: t["columns"]["requested_resources"]["index"].__setitem__(3, 9),
            "$.tasks.columns.requested_resources.index[3]", "expected an entry of values (0 to 1), got 9",
        ),
        (
            lambda t: t["columns"]["requested_resources"]["values"][1][0].__setitem__(1, None),
            "$.tasks.columns.requested_resources.values[1][0][1]", "got None",
        ),
        (lambda t: t["columns"]["resource_scales"].pop("values"), "$.tasks.columns.resource_scales.values",
         "required field missing"),
        (lambda t: t["columns"].update(fallback_queues=[["b.q"]] * 4), "$.tasks.columns.fallback_queues",
         "expected an object of index and values"),
    ],
)
def test_a_damaged_columns_object_is_named_by_its_path(
    tmp_path: Path, edit: Any, field: str, message: str
) -> None:
    """Read from a log, the error names the record's line and the path into the columns;
    the records before it are kept."""
    event = _two_task_page()
    edit(event["tasks"])
    path = tmp_path / "run.log"
    _pipeline_log(path)
    lines = lines_of(path)
    record = json.loads(lines[3])
    record["event"] = event
    lines[3] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    log = read_log(path)
    assert log.error is not None and log.error.line == 4
    assert log.error.field == "$.event" + field[1:], str(log.error)
    assert message in log.error.message, str(log.error)
    assert len(log.records) == 2


_PAGES_OF_TASKS = task_row_lists(max_size=12)


@given(_PAGES_OF_TASKS)
def test_task_pages_as_columns_are_the_codec_data_and_read_back(rows: list[TaskRow]) -> None:
    """Any page: equal values of different kinds (``1`` and ``1.0``), shared and distinct
    tuples, huge ids, non-ASCII statuses, an empty page."""
    chunk = TaskChunkLoaded(1, 2.0, tuple(rows))
    line = record_codec.record_text(1, "r", chunk, [])
    assert line == codec_line(1, "r", chunk, [])
    decoded = decode_value(json.loads(line)["event"], eventlog._EVENTS_BY_NAME, event_from_dict)
    assert decoded == chunk
    assert record_codec.record_text(1, "r", decoded, []) == line  # read back, written the same


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda e: e.update(at="x"), "$.at", "expected float, got 'x'"),
        (lambda e: e.update(extra=1), "$", "unknown field(s): extra"),
    ],
)
def test_other_fields_of_a_page_record_are_named_by_the_codec(edit: Any, field: str, message: str) -> None:
    """The columns object is read back into rows for the codec, which names the other field."""
    event = _two_task_page()
    edit(event)
    with pytest.raises(CodecError) as exc:
        decode_value(event, eventlog._EVENTS_BY_NAME, event_from_dict)
    lines = exc.value.errors
    assert any(line.startswith(f"{field}:") and message in line for line in lines), lines


#: Rows to draw long pages from: shared and distinct resource tuples, ints and floats.
_POOL = [
    TaskRow(0, a, "G", 3, scales, fallbacks, requested, "c", queue, 10)
    for a, scales, fallbacks, requested, queue in [
        (1, (("memory", 0.5),), (), (("cores", 1),), "all.q"),
        (1, (("memory", 0.5),), (), (("cores", 1.0),), "all.q"),
        (2, (), ("b.q",), (("cores", 2), ("memory", 4)), "long.q"),
        (2, (("runtime", (0.5, 1)),), (), (("cores", 1),), "all.q"),
    ]
]


@given(
    st.lists(st.sampled_from(_POOL), min_size=60, max_size=140),
    st.integers(-(2**63), 2**63 - 300),
    st.sets(st.integers(0, 140), max_size=30),
    st.booleans(),
)
@settings(max_examples=60)
def test_long_pages_write_runs_and_repeats_and_read_back(
    rows: list[TaskRow], first: int, gaps: set[int], same: bool
) -> None:
    """Pages of 60-140 rows with mostly consecutive ids (id runs, or an array when the gaps
    break them up) and, when ``same``, one array, limit, status and queue throughout
    (repeats); near the 64-bit bounds too."""
    task_id = first
    page = []
    for k, row in enumerate(rows):
        task_id += 2 if k in gaps else 1
        fixed: dict[str, Any] = {}
        if same:
            fixed = {"array_id": 3, "array_limit": 5, "status": "Q", "queue_name": "a"}
        page.append(attrs.evolve(row, task_id=task_id, **fixed))
    chunk = TaskChunkLoaded(1, 2.0, tuple(page))
    line = record_codec.record_text(1, "r", chunk, [])
    assert line == codec_line(1, "r", chunk, [])
    decoded = decode_value(json.loads(line)["event"], eventlog._EVENTS_BY_NAME, event_from_dict)
    assert decoded == chunk
    assert record_codec.record_text(1, "r", decoded, []) == line
