"""uvicorn's httptools HTTP protocol with a deadline for a new connection's first bytes.

Stock uvicorn starts its keep-alive timer only after a response, so a client that opens a TCP
connection and never sends a request holds a socket forever. This arms the same timer when the
connection is made; the first received byte cancels it as usual. (Relies on uvicorn's
`timeout_keep_alive_task` / `timeout_keep_alive_handler`; tests/test_server_http.py fails if they move.)
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpProtocol(HttpToolsProtocol):
    """Close connections that send nothing within `timeout_keep_alive` seconds of opening."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
