"""The socket under both servers: bound here (so port 0 reports the real port), and the connection limits.

Stock uvicorn (httptools) has no limit on a request's head and no deadline once a request has begun: a header
streamed forever grows without bound (and httptools re-copies a header value on every piece, so each byte costs
more than the last), and a request line, header or body trickled or stopped half way holds its socket for good.
GuardedHttpProtocol adds, per connection and h11-style, the limits of an EdgeLimits:

- idle: a connection that sends nothing within uvicorn's ``timeout_keep_alive`` of opening is closed (stock
  uvicorn arms that timer only after a response);
- ``max_header_bytes``: the request line and headers together (the whole head, counted as bytes arrive); a head
  that outgrows it is answered 431 ``headers_too_large`` and the connection closed;
- ``header_timeout``: the whole head must arrive within this many seconds of its first byte, else 408
  ``request_timeout`` and close (trickling a byte a second does not help);
- ``body_timeout``: the whole body must arrive within this many seconds of the end of the head, else the
  connection is closed (answered 408 when no response has started).

Refusals written here are JSON in the edge's error shape; a response already under way for a pipelined request
is never interleaved with one: the connection is only closed. A websocket upgrade leaves these limits behind with
the HTTP protocol (the websocket has its own size and idle limits). Relies on uvicorn's httptools protocol
(`timeout_keep_alive_task`, `timeout_keep_alive_handler`, `cycle`, the parser callbacks;
tests/test_server_http.py fails if they move).
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

HEADERS_TOO_LARGE = "headers_too_large"
REQUEST_TIMEOUT = "request_timeout"
INVALID_HTTP = "invalid_request"  # the one code for a request that does not validate, HTTP framing included


@dataclass(frozen=True)
class EdgeLimits:
    """Per-connection limits of the HTTP edge ([server] max_header_bytes, header_timeout, body_timeout)."""

    max_header_bytes: int = 16_384
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.max_header_bytes < 1024:
            raise ValueError(f"max_header_bytes must be at least 1024, got {self.max_header_bytes}")
        if not self.header_timeout > 0 or not self.body_timeout > 0:
            raise ValueError("header_timeout and body_timeout must be greater than 0 (seconds)")


def guarded_protocol(limits: EdgeLimits) -> type[GuardedHttpProtocol]:
    """Return the uvicorn ``http`` protocol class enforcing ``limits`` (pass it as ``uvicorn.Config(http=...)``)."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with an idle deadline, a head budget and head/body deadlines per connection."""

    limits: ClassVar[EdgeLimits] = EdgeLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_open = True  # the next bytes belong to a request head
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            if self._deadline is None:
                self._deadline = self.loop.call_later(self.limits.header_timeout, self._head_too_slow)
            room = self.limits.max_header_bytes - self._head_bytes
            if len(data) > room:
                # Feed only what fits: if the head is still open after it, the head is over budget.
                self._head_bytes += room
                if room > 0:
                    super().data_received(data[:room])
                if not self._still_ours():
                    return
                if self._head_open:
                    self._refuse(431, HEADERS_TOO_LARGE,
                                 f"the request line and headers are limited to {self.limits.max_header_bytes} bytes")
                    return
                self.data_received(data[room:])
                return
            self._head_bytes += len(data)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        self._head_open = True
        self._head_bytes = 0
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_deadline()
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        """Answer a request the HTTP parser refused (a control character in a header, a bad request line) in JSON."""
        del msg  # uvicorn's words ("Invalid HTTP request received.") say no more than this
        self._refuse(400, INVALID_HTTP, "malformed HTTP request: the request line or a header could not be parsed")

    def _still_ours(self) -> bool:
        return not self.transport.is_closing() and self.transport.get_protocol() is self

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        if self._head_open and self._still_ours():
            self._refuse(408, REQUEST_TIMEOUT, f"the request head must arrive within {self.limits.header_timeout:g} s")

    def _body_too_slow(self) -> None:
        self._deadline = None
        if not self._head_open and self._still_ours():
            self._refuse(408, REQUEST_TIMEOUT, f"the request body must arrive within {self.limits.body_timeout:g} s")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` unless a response is under way on this connection, and close it."""
        self._cancel_deadline()
        cycle = self.cycle
        if cycle is None or (cycle.response_complete if self._head_open else not cycle.response_started):
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            self.transport.write(b"".join([
                STATUS_LINE[status], b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]))
        if cycle is not None:
            cycle.disconnected = True  # the app's own answer, if it comes, is dropped
        self.transport.close()


def bind(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket (IPv6 when `host` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def url_for(sock: socket.socket, *, secure: bool = False) -> str:
    """Return the http:// (or with `secure`, https://) URL a bound socket serves."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if secure else 'http'}://{shown}:{port}"
