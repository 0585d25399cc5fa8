"""The HTTP layer under the app: idle sockets are closed, and the uvicorn internals we rely on exist."""

from __future__ import annotations

import socket
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tvapp.testing.server import ServerProcess


def test_uvicorn_internals_we_rely_on_are_there() -> None:
    for name in ("timeout_keep_alive_handler", "_unset_keepalive_if_required", "connection_made", "data_received",
                 "on_headers_complete", "on_message_complete", "handle_websocket_upgrade", "connection_lost"):
        assert hasattr(HttpToolsProtocol, name), f"uvicorn moved {name}: revisit tvapp/web/http.py"


def test_a_connection_that_sends_nothing_is_closed(server: ServerProcess) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(15)
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - started < 10


def test_a_connection_that_sends_a_request_is_served(server: ServerProcess) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(5)
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
