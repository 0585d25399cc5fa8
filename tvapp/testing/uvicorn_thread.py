"""Serving an ASGI app (the TV's remote endpoints, a fake media host) with a real uvicorn in a thread of its own.

The socket is bound to an ephemeral 127.0.0.1 port when the object is made, or beforehand with ``loopback_socket()``
when the app itself must know its URL (the TV's endpoints take their own base URL); ``start()`` returns once uvicorn accepts connections, and
``stop()`` (or leaving the ``with`` block) shuts it down and closes the socket.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import uvicorn

from tvapp.testing.waiting import wait_until


def loopback_socket() -> socket.socket:
    """Return a TCP socket bound to an ephemeral 127.0.0.1 port (not listening yet)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ThreadedServer:
    """uvicorn serving `app` on 127.0.0.1 in a daemon thread, on `sock` or a fresh ephemeral port; `options` go to
    uvicorn.Config."""

    def __init__(self, app: Any, sock: socket.socket | None = None, **options: Any) -> None:
        self.sock = sock or loopback_socket()
        self.port: int = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, **{"log_level": "warning", **options}))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        """Start serving; return once uvicorn has started (fail if it stops first or takes over `timeout` s)."""
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), timeout, "uvicorn to start", 0.01)
        assert self.server.started, "uvicorn stopped before it started"
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit, wait for its thread and close the socket."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(10)
        self.sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
