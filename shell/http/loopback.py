"""Plumbing shared by the loopback HTTP servers (``swarmfold serve`` and the test stub).

``Connections`` remembers open sockets so ``stop()`` can cut them (a keep-alive client would
otherwise hold a handler thread); ``GzipJsonHandler`` is a quiet HTTP/1.1 handler that hands
every GET/POST/PUT to ``serve(method)`` and answers gzipped JSON, as Jobmon's server does.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit


class Connections:
    """The sockets a server has open, to close them all on stop."""

    def __init__(self) -> None:
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def add(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.add(conn)

    def discard(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)

    def close_all(self) -> None:
        with self._lock:
            conns = list(self._open)
            self._open.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class GzipJsonHandler(BaseHTTPRequestHandler):
    """Subclasses set ``connections`` and implement ``serve(method)``."""

    connections: Connections
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.connections.discard(self.connection)

    def do_GET(self) -> None:
        self.serve("GET")

    def do_POST(self) -> None:
        self.serve("POST")

    def do_PUT(self) -> None:
        self.serve("PUT")

    def serve(self, method: str) -> None:
        raise NotImplementedError

    def read_request(self) -> tuple[str, dict[str, str], bytes]:
        """``(path, query with one value per key, raw body)`` of the current request."""
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return parts.path, query, raw

    def send_gzip_json(self, status: int, text: str, compresslevel: int = 9) -> None:
        """Answer ``text`` (JSON) gzipped; a client that went away just closes the connection."""
        payload = gzip.compress(text.encode("utf-8"), compresslevel=compresslevel)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True
