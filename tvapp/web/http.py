"""The socket under both servers: bound here (so port 0 reports the real port), and guarded against idle clients.

Stock uvicorn starts its keep-alive timer only after a response, so a client that opens a TCP connection and never
sends a request holds a socket forever. GuardedHttpProtocol arms the same timer when the connection is made; the
first received byte cancels it as usual. (Relies on uvicorn's `timeout_keep_alive_task` /
`timeout_keep_alive_handler`; tests/test_server_http.py fails if they move.)
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpProtocol(HttpToolsProtocol):
    """Close connections that send nothing within `timeout_keep_alive` seconds of opening."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)


def bind(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket (IPv6 when `host` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def url_for(sock: socket.socket) -> str:
    """Return the http:// URL a bound socket serves."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
