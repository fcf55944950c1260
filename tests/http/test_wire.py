"""The wire under the gateway (``shell/http/wire.py``), over a real loopback socket: what goes
out, redirects, and how each way an answer can go wrong is sorted for the retry loop. Both
wires (http.client connections, a caller's ``requests.Session``) must sort the same way."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import math
import shutil
import socketserver
import ssl
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from swarmfold.core.commands import FetchTaskStatuses
from swarmfold.core.events import SyncPartFailed, TaskStatusesFetched
from swarmfold.shell.http import wire as wires
from swarmfold.shell.http.gateway import Attempt, JobmonGateway, RetryPolicy
from swarmfold.shell.http.wire import Wire

#: Raw answers by path: the bytes the server writes, then whether it closes the connection.
Script = dict[str, Callable[[bytes], tuple[bytes, bool]]]


def _answer(
    status: str, body: bytes, headers: dict[str, str] | None = None, length: int | None = None
) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body) if length is None else length}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: Script) -> None:
        self.script = script
        self.seen: list[bytes] = []
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.connections += 1
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                chunk = self.rfile.readline()
                if not chunk:
                    return
                head += chunk
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            request = head + self.rfile.read(length)
            self.server.seen.append(request)
            path = request.split(b" ")[1].decode().split("?")[0]
            raw, close = self.server.script[path](request)
            self.wfile.write(raw)
            self.wfile.flush()
            if close:
                return


@pytest.fixture
def serve() -> Iterator[Callable[[Script], _Server]]:
    servers: list[_Server] = []

    def start(script: Script) -> _Server:
        server = _Server(script)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _url(server: _Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


WIRES: dict[str, Callable[[], Wire]] = {
    "http.client pool": lambda: wires.ConnectionWire(pool_size=4, user_agent="swarmfold/test"),
    "requests session": lambda: wires.SessionWire(requests.Session()),
}


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> Iterator[Wire]:
    made = WIRES[request.param]()
    yield made
    made.close()


def _ok(body: Any) -> Callable[[bytes], tuple[bytes, bool]]:
    data = gzip.compress(json.dumps(body).encode())
    return lambda _: (_answer("200 OK", data, {"Content-Encoding": "gzip"}), False)


def test_a_post_goes_out_as_json_with_its_query_and_the_gzipped_answer_is_decoded(
    serve: Callable[[Script], _Server], wire: Wire
) -> None:
    server = serve({"/api/v3/x": _ok({"tasks": [1, 2]})})
    status, body = wire.send("POST", _url(server, "/api/v3/x"), {"client_jobmon_version": "3.6.0", "n": 2},
                             {"task_ids": [1, 2]}, 5.0)
    assert status == 200 and json.loads(body) == {"tasks": [1, 2]}
    head, _, sent = server.seen[0].partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "post /api/v3/x?client_jobmon_version=3.6.0&n=2 http/1.1"
    assert "content-type: application/json" in lines
    assert any(x.startswith("accept-encoding: gzip") for x in lines)
    assert json.loads(sent) == {"task_ids": [1, 2]}


def test_the_connection_is_kept_alive_between_requests(
    serve: Callable[[Script], _Server], wire: Wire
) -> None:
    connections: set[int] = set()

    def answer(_: bytes) -> tuple[bytes, bool]:
        connections.add(threading.get_ident())  # one handler thread per connection
        return _answer("200 OK", b"{}"), False

    server = serve({"/t": answer})
    for _ in range(5):
        assert wire.send("GET", _url(server, "/t"), {}, None, 5.0) == (200, b"{}")
    assert len(connections) == 1


def test_redirects_are_followed(serve: Callable[[Script], _Server], wire: Wire) -> None:
    server = serve({
        "/old": lambda _: (_answer("307 Temporary Redirect", b"", {"Location": "/new"}), False),
        "/new": _ok({"moved": True}),
    })
    status, body = wire.send("POST", _url(server, "/old"), {}, {"a": 1}, 5.0)
    assert status == 200 and json.loads(body) == {"moved": True}
    assert json.loads(server.seen[-1].partition(b"\r\n\r\n")[2]) == {"a": 1}  # 307 keeps the body


def test_error_statuses_are_answers_not_failures(serve: Callable[[Script], _Server], wire: Wire) -> None:
    server = serve({"/x": lambda _: (_answer("503 Service Unavailable", b"busy"), False)})
    assert wire.send("GET", _url(server, "/x"), {}, None, 5.0) == (503, b"busy")


def test_a_corrupt_gzip_body_is_undecodable(serve: Callable[[Script], _Server], wire: Wire) -> None:
    corrupt = _answer("200 OK", b"not gzip at all", {"Content-Encoding": "gzip"})
    server = serve({"/x": lambda _: (corrupt, False)})
    with pytest.raises(wires.UndecodableBody):
        wire.send("GET", _url(server, "/x"), {}, None, 5.0)


def test_a_body_cut_short_is_a_broken_connection(serve: Callable[[Script], _Server], wire: Wire) -> None:
    server = serve({"/x": lambda _: (_answer("200 OK", b'{"tasks"', length=100), True)})
    with pytest.raises(wires.WireDown, match="^connection broken mid-response: "):
        wire.send("GET", _url(server, "/x"), {}, None, 5.0)


def test_a_closed_connection_without_an_answer_is_a_connection_error(
    serve: Callable[[Script], _Server], wire: Wire
) -> None:
    server = serve({"/x": lambda _: (b"", True)})
    with pytest.raises(wires.WireDown, match="^connection (error|broken mid-response): "):
        wire.send("GET", _url(server, "/x"), {}, None, 5.0)


def test_a_silent_server_is_a_read_timeout(serve: Callable[[Script], _Server], wire: Wire) -> None:
    gate = threading.Event()

    def silent(_: bytes) -> tuple[bytes, bool]:
        gate.wait(5)
        return b"", True

    server = serve({"/x": silent})
    try:
        with pytest.raises(wires.WireDown, match="^read timeout: "):
            wire.send("GET", _url(server, "/x"), {}, None, (5.0, 0.2))
    finally:
        gate.set()


def test_nobody_listening_is_a_connection_error(wire: Wire) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(wires.WireDown, match="^connection error: "):
        wire.send("GET", f"http://127.0.0.1:{port}/x", {}, None, 2.0)


def test_a_body_that_is_not_json_is_never_sent(serve: Callable[[Script], _Server], wire: Wire) -> None:
    server = serve({"/x": _ok({})})
    with pytest.raises(wires.RequestNotSent):
        wire.send("POST", _url(server, "/x"), {}, {"bad": math.nan}, 5.0)
    assert server.seen == []


def test_the_gateway_reports_an_undecodable_body_once_and_does_not_retry(
    serve: Callable[[Script], _Server],
) -> None:
    server = serve({"/api/v3/workflow/1/task_status_updates": lambda _: (
        _answer("200 OK", b"\x1f\x8b garbage", {"Content-Encoding": "gzip"}), False)})
    attempts: list[Attempt] = []
    gw = JobmonGateway(_url(server, ""), on_attempt=attempts.append, max_attempts=3)
    try:
        event = gw.execute(FetchTaskStatuses(7, 1, None))
    finally:
        gw.close()
    assert isinstance(event, SyncPartFailed)
    assert "POST /workflow/1/task_status_updates: the response body cannot be decoded" in event.error
    assert len(attempts) == 1 and not attempts[0].will_retry and len(server.seen) == 1


def test_the_gateway_retries_a_cut_answer_and_takes_the_next(serve: Callable[[Script], _Server]) -> None:
    answers = iter([
        (_answer("200 OK", b'{"tasks_by', length=500), True),
        (_answer("200 OK", json.dumps({"tasks_by_status": {"D": [1]}, "time": "t"}).encode()), False),
    ])
    server = serve({"/api/v3/workflow/1/task_status_updates": lambda _: next(answers)})
    attempts: list[Attempt] = []
    gw = JobmonGateway(_url(server, ""), on_attempt=attempts.append, seed=1,
                       retry=RetryPolicy(max_attempts=3, backoff_base=0.01))
    try:
        event = gw.execute(FetchTaskStatuses(7, 1, None))
    finally:
        gw.close()
    assert isinstance(event, TaskStatusesFetched) and event.tasks_by_status == {"D": (1,)}
    assert [a.will_retry for a in attempts] == [True, False]
    assert attempts[0].error.startswith("connection broken mid-response")


# --- the connection pool: reuse, stale connections, redirects, encodings ------------------------


def test_an_idle_connection_the_server_closed_is_replaced_without_a_failure(
    serve: Callable[[Script], _Server], wire: Wire
) -> None:
    """The server closes each connection after answering, without saying so: the next request
    goes out once, on a new connection, and succeeds."""
    server = serve({"/x": lambda _: (_answer("200 OK", b"{}"), True)})
    for _ in range(3):
        assert wire.send("GET", _url(server, "/x"), {}, None, 5.0) == (200, b"{}")
        time.sleep(0.05)  # the server's close reaches the idle socket
    assert len(server.seen) == 3


def test_connection_close_is_honoured(serve: Callable[[Script], _Server], wire: Wire) -> None:
    server = serve({"/x": lambda _: (_answer("200 OK", b"{}", {"Connection": "close"}), True)})
    for _ in range(3):
        assert wire.send("GET", _url(server, "/x"), {}, None, 5.0) == (200, b"{}")
    assert server.connections == 3 and len(server.seen) == 3


@pytest.mark.parametrize("status", ["303 See Other", "302 Found", "301 Moved Permanently"])
def test_a_post_redirected_by_303_302_or_301_becomes_a_get_without_a_body(
    serve: Callable[[Script], _Server], wire: Wire, status: str
) -> None:
    server = serve({
        "/old": lambda _: (_answer(status, b"", {"Location": "/new?k=1"}), False),
        "/new": _ok({"moved": True}),
    })
    assert wire.send("POST", _url(server, "/old"), {}, {"a": 1}, 5.0)[0] == 200
    head, _, body = server.seen[-1].partition(b"\r\n\r\n")
    assert head.startswith(b"GET /new?k=1 ") and body == b""


def test_a_redirect_loop_is_not_sent_forever(serve: Callable[[Script], _Server], wire: Wire) -> None:
    server = serve({"/loop": lambda _: (_answer("302 Found", b"", {"Location": "/loop"}), False)})
    with pytest.raises(wires.RequestNotSent):
        wire.send("GET", _url(server, "/loop"), {}, None, 5.0)
    assert len(server.seen) == wires.MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    "packed",
    [zlib.compress(b'{"a": 1}'), zlib.compress(b'{"a": 1}')[2:-4]],  # zlib-wrapped, then raw deflate
    ids=["zlib", "raw"],
)
def test_a_deflated_answer_is_decoded(serve: Callable[[Script], _Server], wire: Wire, packed: bytes) -> None:
    server = serve({"/x": lambda _: (_answer("200 OK", packed, {"Content-Encoding": "deflate"}), False)})
    assert wire.send("GET", _url(server, "/x"), {}, None, 5.0) == (200, b'{"a": 1}')


def test_a_chunked_answer_is_read_whole(serve: Callable[[Script], _Server], wire: Wire) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n"
    server = serve({"/x": lambda _: (chunked, False)})
    assert wire.send("GET", _url(server, "/x"), {}, None, 5.0) == (200, b'{"a": 1}')


def test_threads_share_the_wire_each_on_a_connection_of_its_own(
    serve: Callable[[Script], _Server], wire: Wire
) -> None:
    def answer(request: bytes) -> tuple[bytes, bool]:
        time.sleep(0.002)
        return _answer("200 OK", request.split(b" ")[1].split(b"=")[1]), False

    server = serve({"/x": answer})
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            for j in range(20):
                answer = wire.send("GET", _url(server, "/x"), {"n": f"{k}-{j}"}, None, 5.0)
                assert answer == (200, f"{k}-{j}".encode())
        except BaseException as exc:  # reported below: a thread's assertion would be lost
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(server.seen) == 120


def test_a_url_that_is_not_http_is_not_sent() -> None:
    wire = wires.ConnectionWire(pool_size=2, user_agent="swarmfold/test")
    with pytest.raises(wires.RequestNotSent, match="not an http"):
        wire.send("GET", "ftp://127.0.0.1/x", {}, None, 1.0)
    with pytest.raises(wires.RequestNotSent, match="bad port"):
        wire.send("GET", "http://127.0.0.1:99999999/x", {}, None, 1.0)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_answers_are_checked_against_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
         "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    server = _Server({"/x": _ok({"tls": True})})
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda *_: None  # type: ignore[method-assign]  # the refused handshake
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/x"
    try:
        with pytest.raises(wires.WireDown, match="^connection error: .*certificate"):
            wires.ConnectionWire(pool_size=1, user_agent="t").send("GET", url, {}, None, 5.0)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the store now trusts this certificate
        trusted = wires.ConnectionWire(pool_size=1, user_agent="t")
        for _ in range(2):
            status, body = trusted.send("GET", url, {}, None, 5.0)
            assert status == 200 and json.loads(body) == {"tls": True}
        trusted.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_that_cannot_go_on_the_wire_is_not_sent(serve: Callable[[Script], _Server]) -> None:
    server = serve({"/x": _ok({})})
    wire = wires.ConnectionWire(pool_size=2, user_agent="swarmfold/test")
    with pytest.raises(wires.RequestNotSent, match="cannot send GET"):
        wire.send("GET", _url(server, "/t\u00e2che"), {}, None, 1.0)
    with pytest.raises(wires.RequestNotSent, match="cannot send GET"):
        wire.send("GET", _url(server, "/a b\r\nX-Injected: 1"), {}, None, 1.0)
    assert server.seen == []
    assert wire.send("GET", _url(server, "/x"), {}, None, 1.0)[0] == 200  # the wire goes on


# --- header fields read without the email package -------------------------------------------

_NAMES = st.sampled_from(["Content-Encoding", "content-encoding", "Location", "Connection", "X-A", "x-a"])
_VALUES = st.text(alphabet="abcXYZ019 ,;=/:-", max_size=12)
_LINES = st.lists(
    st.one_of(
        st.tuples(_NAMES, _VALUES).map(lambda f: f"{f[0]}: {f[1]}\r\n"),
        st.tuples(_NAMES, _VALUES).map(lambda f: f"{f[0]}:{f[1]}\r\n"),  # no space after the colon
    ),
    max_size=8,
)


@given(_LINES)
def test_header_fields_read_as_the_email_package_reads_them(lines: list[str]) -> None:
    """Every field the wire and ``http.client`` ask for (``get``, ``get_all`` by any case,
    ``items``) reads as the standard library's ``parse_headers`` gives it."""
    block = "".join(lines).encode("iso-8859-1") + b"\r\nbody"
    stock = http.client.parse_headers(io.BytesIO(block))
    lean = wires.read_header_fields(io.BytesIO(block))
    for name in ("Content-Encoding", "LOCATION", "connection", "x-a", "Absent"):
        assert lean.get(name) == stock.get(name)
        assert lean.get(name, "d") == stock.get(name, "d")
        assert lean.get_all(name) == stock.get_all(name)
    assert lean.items() == stock.items()


def test_header_fields_keep_the_limits_and_fold_continued_lines() -> None:
    folded = wires.read_header_fields(io.BytesIO(b"Location: /a\r\n  /b\r\nbad line\r\n\r\n"))
    assert folded.get("location") == "/a /b" and folded.items() == [("Location", "/a /b")]
    with pytest.raises(http.client.LineTooLong):
        wires.read_header_fields(io.BytesIO(b"X: " + b"a" * 70_000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        wires.read_header_fields(io.BytesIO(b"X: 1\r\n" * 101 + b"\r\n"))


def test_the_wire_reads_responses_with_the_lean_header_fields(serve: Callable[[Script], _Server]) -> None:
    """On this Python the connections' responses read headers with ``read_header_fields``
    (were ``http.client.HTTPResponse.begin`` changed, they would stay stock: this fails)."""
    seen: list[Any] = []
    original = wires.read_header_fields

    def spy(fp: Any, _class: Any = None) -> wires.HeaderFields:
        fields = original(fp)
        seen.append(fields)
        return fields

    answer = _answer("200 OK", b'{"a": 1}', {"Content-Encoding": "identity"})
    server = serve({"/x": lambda _: (answer, False)})
    wire = wires.ConnectionWire(pool_size=1, user_agent="t")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(wires._BEGIN.__globals__, "parse_headers", spy)  # type: ignore[union-attr]
            assert wire.send("GET", _url(server, "/x"), {}, None, 5.0) == (200, b'{"a": 1}')
    finally:
        wire.close()
    assert len(seen) == 1 and seen[0].get("content-encoding") == "identity"
