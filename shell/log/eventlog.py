"""The event log: one JSONL file per workflow run, written as the run goes.

Line 1 is the header (format, version, swarmfold version, runner id, source, workflow and run
ids, config, creation time, extra). Every further line is one record: the ``seq``-th event
fed to ``decide`` and the commands it produced::

    {"commands":[...],"event":{...},"runner_id":"host-123-9f2c","seq":1}

Lines are canonical compact JSON (sorted keys, no spaces; the encoding of shell/log/codec.py),
so the same run gives the same bytes. Each record is written with one ``write`` and flushed
at once: a crash can tear only the last line.

Reading never loses what was written: ``read_log`` keeps every record before the first
unreadable line and names that line and the field (``LogError``); ``iter_log`` streams.
A writer holds an exclusive ``flock`` on the file, so two runners cannot write the same log
(and so drive the same run through it) from one machine at once.

Secrets are never written: keys that look like credentials (``auth``, ``token``,
``password``, ``secret``, ...) are dropped from the header's config and extra, at any depth,
and ``user:password@`` is cut out of URLs.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import re
import secrets as _secrets
import socket
from collections.abc import Iterator, Mapping
from typing import IO, Any

import attrs

from swarmfold.core.commands import COMMAND_TYPES, Command
from swarmfold.core.config import SwarmConfig
from swarmfold.core.events import EVENT_TYPES, Event
from swarmfold.shell.json_text import loads
from swarmfold.shell.log.codec import (
    CodecError,
    command_from_dict,
    event_from_dict,
    unstructure,
)
from swarmfold.shell.log.record_codec import decode_value, dumps, record_bytes

__all__ = [
    "LOG_FORMAT",
    "LOG_VERSION",
    "READABLE_VERSIONS",
    "SOURCES",
    "EventLog",
    "EventLogWriter",
    "LogError",
    "LogHeader",
    "LogLocked",
    "LogReader",
    "LogRecorder",
    "LogRecord",
    "iter_log",
    "new_header",
    "read_header",
    "read_log",
    "strip_secrets",
]

LOG_FORMAT = "swarmfold-event-log"
#: The version this swarmfold writes: 2 may write long id lists as runs (``id_runs.py``), 3
#: writes pages of task and edge rows as columns (``row_columns.py``), 4 may write a long
#: increasing id list as a bitmap (``id_runs.py``).
LOG_VERSION = 4
#: The versions it reads: version 1 logs (plain id lists only), version 2 logs (rows as
#: arrays of objects) and version 3 logs (no bitmaps) replay as they always did.
READABLE_VERSIONS = (1, 2, 3, 4)
#: What wrote a log.
SOURCES = frozenset({"fold", "simulate", "run", "serve"})

#: The longest line a reader accepts (a full sync of ~30M task ids fits): a longer one is a
#: ``LogError`` naming its line, not a read that exhausts memory.
MAX_LINE_BYTES = 256 << 20

_RECORD_KEYS = frozenset({"seq", "runner_id", "event", "commands"})
_MEMBERS = frozenset(EVENT_TYPES) | frozenset(COMMAND_TYPES)
_EVENTS_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in EVENT_TYPES}
_COMMANDS_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in COMMAND_TYPES}


_dumps = dumps


# --- header ------------------------------------------------------------------------------


@attrs.frozen
class LogHeader:
    """The first line of a log. ``config`` and ``extra`` hold plain JSON data, no secrets."""

    format: str
    version: int
    swarmfold_version: str
    runner_id: str
    source: str
    workflow_id: int
    workflow_run_id: int
    config: dict[str, Any]
    created_at: str
    extra: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False)

    def to_json(self) -> str:
        return _dumps(self.to_dict())


#: A key whose value is never written (matched case-insensitively, anywhere in the key).
_SECRET_KEY = re.compile(
    r"auth|token|passw|secret|api[_-]?key|credential|cookie|private[_-]?key|session",
    re.IGNORECASE,
)
#: ``scheme://user:password@host`` -> ``scheme://host``.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def strip_secrets(value: Any) -> Any:
    """``value`` with every credential-like key dropped and URL user info removed (recursive)."""
    if isinstance(value, Mapping):
        return {
            str(k): strip_secrets(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))
        }
    if isinstance(value, list | tuple):
        return [strip_secrets(v) for v in value]
    if isinstance(value, str) and "@" in value:
        return _URL_USERINFO.sub(r"\g<scheme>", value)
    return value


def default_runner_id() -> str:
    """``"<hostname>-<pid>-<8 random hex digits>"``: unique per process and start."""
    return f"{socket.gethostname()}-{os.getpid()}-{_secrets.token_hex(4)}"


def new_header(
    source: str,
    workflow_id: int,
    workflow_run_id: int,
    config: SwarmConfig | Mapping[str, Any],
    runner_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
    *,
    created_at: str | None = None,
) -> LogHeader:
    """A header for a new log. ``runner_id`` and ``created_at`` default to this process and
    now (UTC); pass them to get byte-identical logs in tests. Secrets are stripped."""
    from swarmfold import __version__

    if source not in SOURCES:
        raise ValueError(f"log source must be one of {sorted(SOURCES)}, got {source!r}")
    config_data = unstructure(config) if isinstance(config, SwarmConfig) else dict(config)
    if created_at is None:
        created_at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return LogHeader(
        format=LOG_FORMAT,
        version=LOG_VERSION,
        swarmfold_version=__version__,
        runner_id=runner_id if runner_id is not None else default_runner_id(),
        source=source,
        workflow_id=workflow_id,
        workflow_run_id=workflow_run_id,
        config=strip_secrets(config_data),
        created_at=created_at,
        extra=strip_secrets(dict(extra or {})),
    )


# --- errors ------------------------------------------------------------------------------


class LogError(Exception):
    """A log line that cannot be read. ``line`` is 1-based (the header is line 1; 0 means
    the file itself); ``field`` is a JSON path within that line (``$.event.at``)."""

    def __init__(self, path: str, line: int, field: str, message: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        super().__init__(f"{path}:{line}: {field}: {message}")


class LogLocked(Exception):
    """Another writer holds the log. ``holder`` is its runner id when it could be read."""

    def __init__(self, path: str, holder: str | None) -> None:
        self.path = path
        self.holder = holder
        who = f"runner {holder!r}" if holder else "another runner (its header is not written yet)"
        super().__init__(
            f"{path}: event log is locked by {who}; two runners must not drive the same "
            "workflow run from one machine"
        )


# --- writer ------------------------------------------------------------------------------


class EventLogWriter:
    """Writes one log: the header at once, then ``record(event, commands)`` per ``decide``.

    The file is created or truncated, but only after the lock is held: a second writer
    on the same path gets ``LogLocked`` and leaves the first writer's log untouched.
    ``fsync=True`` also syncs every record to disk (slower); ``close`` always syncs.
    """

    def __init__(
        self, path: str | os.PathLike[str], header: LogHeader, *, lock: bool = True, fsync: bool = False
    ) -> None:
        self.path = os.fspath(path)
        self.header = header
        self.seq = 0
        self._fsync = fsync
        self._runner_json = json.dumps(header.runner_id)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if lock:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    raise LogLocked(self.path, _holder(self.path)) from None
            os.ftruncate(fd, 0)
            self._file: IO[bytes] | None = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        self._write(header.to_json().encode("utf-8"))

    def _write(self, line: bytes) -> None:
        f = self._file
        if f is None:
            raise ValueError(f"{self.path}: event log writer is closed")
        f.write(line + b"\n")
        f.flush()
        if self._fsync:
            os.fsync(f.fileno())

    def record(self, event: Event, commands: tuple[Command, ...] | list[Command]) -> int:
        """Append one record and flush it; return its ``seq`` (1-based)."""
        seq = self.seq + 1
        # One encoding pass: the codec's plain data, dumped once with sorted keys (rows of
        # tasks and edges written straight as text).
        self._write(record_bytes(seq, self.header.runner_id, event, commands))
        self.seq = seq
        return seq

    @property
    def closed(self) -> bool:
        return self._file is None

    def close(self) -> None:
        """Flush, sync to disk, release the lock. Safe to call twice."""
        f = self._file
        if f is None:
            return
        self._file = None
        try:
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()

    def __enter__(self) -> EventLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _holder(path: str) -> str | None:
    """The runner id in the header of a log another writer holds, if it can be read."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 20)
        value = json.loads(first).get("runner_id")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return value if isinstance(value, str) else None


# --- reader ------------------------------------------------------------------------------


@attrs.frozen
class LogRecord:
    """One record: the ``seq``-th event and the commands ``decide`` produced for it."""

    seq: int
    line: int
    event: Event
    commands: tuple[Command, ...]


@attrs.frozen
class EventLog:
    """A whole log in memory. ``error`` is the first unreadable line, if any; every record
    before it is in ``records``."""

    path: str
    header: LogHeader
    records: tuple[LogRecord, ...]
    error: LogError | None = None


_HEADER_TYPES: dict[str, tuple[type, str]] = {
    "format": (str, "a string"),
    "version": (int, "an int"),
    "swarmfold_version": (str, "a string"),
    "runner_id": (str, "a string"),
    "source": (str, "a string"),
    "workflow_id": (int, "an int"),
    "workflow_run_id": (int, "an int"),
    "config": (dict, "an object"),
    "created_at": (str, "a string"),
    "extra": (dict, "an object"),
}


def _kind_ok(value: Any, kind: type) -> bool:
    return type(value) is kind  # bool is not an int here


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_json(path: str, line_no: int, raw: bytes, torn: bool) -> Any:
    try:
        return loads(raw)
    except RecursionError:
        raise LogError(path, line_no, "$", "invalid JSON: nested too deeply to decode") from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            detail = f"{exc.msg} at column {exc.colno}"
        elif isinstance(exc, UnicodeDecodeError):
            detail = f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
        else:
            detail = str(exc)
        if torn:
            raise LogError(
                path, line_no, "$",
                f"torn last line: {len(raw)} byte(s) and no newline, not a whole record "
                f"(the writer stopped mid-line); invalid JSON: {detail}",
            ) from None
        raise LogError(path, line_no, "$", f"invalid JSON: {detail}") from None


def _read_line(path: str, f: IO[bytes], line_no: int) -> bytes:
    """The next line (with its newline), or ``b""`` at the end; ``LogError`` past ``MAX_LINE_BYTES``."""
    raw = f.readline(MAX_LINE_BYTES + 1)
    if len(raw) > MAX_LINE_BYTES:
        raise LogError(path, line_no, "$", f"line longer than {MAX_LINE_BYTES:,} bytes: not a record")
    return raw


def _parse_header(path: str, raw: bytes | None) -> LogHeader:
    if not raw:
        raise LogError(path, 1, "$", "empty file: no log header")
    data = _parse_json(path, 1, raw, torn=not raw.endswith(b"\n"))
    if not isinstance(data, dict):
        raise LogError(path, 1, "$", f"log header must be an object, got {_show(data)}")
    if data.get("format") != LOG_FORMAT:
        raise LogError(
            path, 1, "$.format", f"not a swarmfold event log (expected {LOG_FORMAT!r}, got "
            f"{_show(data.get('format'))})",
        )
    version = data.get("version")
    if not _kind_ok(version, int) or version not in READABLE_VERSIONS:
        *first, last = map(str, READABLE_VERSIONS)
        readable = f"{', '.join(first)} and {last}" if first else last
        raise LogError(
            path, 1, "$.version",
            f"unsupported log version {_show(version)} (this swarmfold reads versions {readable})",
        )
    for key, (kind, name) in _HEADER_TYPES.items():
        if key not in data:
            if key == "extra":
                continue
            raise LogError(path, 1, f"$.{key}", "required field missing")
        if not _kind_ok(data[key], kind):
            raise LogError(path, 1, f"$.{key}", f"expected {name}, got {_show(data[key])}")
    unknown = sorted(set(data) - set(_HEADER_TYPES))
    if unknown:
        raise LogError(path, 1, "$", "unknown field(s): " + ", ".join(unknown))
    return LogHeader(**data)


def _codec_log_error(path: str, line_no: int, prefix: str, exc: CodecError) -> LogError:
    """A CodecError's first ``$.x: msg`` line as a LogError at ``prefix`` + ``.x``."""
    first, *rest = exc.errors or ("$: cannot decode",)
    sub, _, message = first.partition(": ")
    field = prefix + sub[1:] if sub.startswith("$") else f"{prefix}{sub}"
    if rest:
        message += f" (and {len(rest)} more: " + "; ".join(
            prefix + r[1:] if r.startswith("$") else r for r in rest[:3]
        ) + ("; ..." if len(rest) > 3 else "") + ")"
    return LogError(path, line_no, field, message)


def _decode_record(
    path: str, line_no: int, raw: bytes, torn: bool, expected_seq: int, runner_id: str
) -> LogRecord:
    if not raw.strip():
        raise LogError(path, line_no, "$", "empty line where a record was expected")
    data = _parse_json(path, line_no, raw, torn)
    if not isinstance(data, dict):
        raise LogError(path, line_no, "$", f"a record must be an object, got {_show(data)}")
    keys = set(data)
    if keys != _RECORD_KEYS:
        missing = sorted(_RECORD_KEYS - keys)
        if missing:
            raise LogError(path, line_no, f"$.{missing[0]}", "required field missing")
        raise LogError(path, line_no, "$", "unknown field(s): " + ", ".join(sorted(keys - _RECORD_KEYS)))
    seq = data["seq"]
    if not _kind_ok(seq, int):
        raise LogError(path, line_no, "$.seq", f"expected an int, got {_show(seq)}")
    if seq != expected_seq:
        raise LogError(
            path, line_no, "$.seq", f"expected {expected_seq} (records are numbered 1, 2, ...), got {seq}"
        )
    if data["runner_id"] != runner_id:
        raise LogError(
            path, line_no, "$.runner_id",
            f"expected {runner_id!r} (the header's), got {_show(data['runner_id'])}",
        )
    try:
        event = decode_value(data["event"], _EVENTS_BY_NAME, event_from_dict)
    except CodecError as exc:
        raise _codec_log_error(path, line_no, "$.event", exc) from None
    raw_commands = data["commands"]
    if not isinstance(raw_commands, list):
        raise LogError(path, line_no, "$.commands", f"expected an array, got {_show(raw_commands)}")
    commands: list[Command] = []
    for k, item in enumerate(raw_commands):
        try:
            commands.append(decode_value(item, _COMMANDS_BY_NAME, command_from_dict))
        except CodecError as exc:
            raise _codec_log_error(path, line_no, f"$.commands[{k}]", exc) from None
    return LogRecord(seq, line_no, event, tuple(commands))


class LogReader:
    """Streams a log: the header is read on open (``LogError`` if it is bad); iterating
    yields records and raises ``LogError`` at the first bad line. Use as a context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._file: IO[bytes] | None = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise LogError(self.path, 0, "$", f"cannot read: {exc.strerror or exc}") from None
        try:
            self.header = _parse_header(self.path, _read_line(self.path, self._file, 1))
        except BaseException:
            self.close()
            raise
        #: Records read so far.
        self.count = 0

    def __iter__(self) -> Iterator[LogRecord]:
        f = self._file
        if f is None:
            raise ValueError(f"{self.path}: reader is closed")
        path, runner_id = self.path, self.header.runner_id
        line_no = 1 + self.count
        while raw := _read_line(path, f, line_no + 1):
            line_no += 1
            torn = not raw.endswith(b"\n")
            record = _decode_record(path, line_no, raw, torn, self.count + 1, runner_id)
            self.count += 1
            yield record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_header(path: str | os.PathLike[str]) -> LogHeader:
    """Only the header of a log; ``LogError`` if it is missing or bad."""
    with LogReader(path) as reader:
        return reader.header


def iter_log(path: str | os.PathLike[str]) -> Iterator[LogRecord]:
    """Stream the records of a log; raises ``LogError`` at the first bad line (or header)."""
    with LogReader(path) as reader:
        yield from reader


def read_log(path: str | os.PathLike[str], *, strict: bool = False) -> EventLog:
    """Read a whole log. An unreadable record line ends the records and becomes ``error``
    (``strict=True`` raises it instead). A missing or bad header always raises."""
    records: list[LogRecord] = []
    with LogReader(path) as reader:
        try:
            records.extend(reader)
        except LogError as exc:
            if strict:
                raise
            return EventLog(reader.path, reader.header, tuple(records), exc)
        return EventLog(reader.path, reader.header, tuple(records), None)


class LogRecorder(list[tuple[Event, tuple[Command, ...]]]):
    """A drop-in for ``instant.drive(record=...)``: each ``(event, commands)`` pair the driver
    appends is written to ``writer`` at once instead of being kept in memory."""

    def __init__(self, writer: EventLogWriter) -> None:
        super().__init__()
        self.writer = writer

    def append(self, item: tuple[Event, tuple[Command, ...]]) -> None:
        self.writer.record(item[0], item[1])
