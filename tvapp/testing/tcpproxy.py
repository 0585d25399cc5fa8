"""A TCP proxy on 127.0.0.1 in front of a server whose connections can be cut: a network drop without a close.

A client pointed at the proxy's URL reaches the server through it; `cut()` aborts every connection going
through it (both sides see a reset, no websocket close frame), as when a phone leaves the Wi-Fi. New
connections are accepted again at once, so a client that reconnects by itself comes back through it, unless
`refusing` is set: then each new connection is reset at once (the server unreachable). `ThreadedProxy` runs one
on its own event loop thread for synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class CuttableProxy:
    """Forward 127.0.0.1:<own port> to 127.0.0.1:`target_port`; start with `await start()` (returns its URL)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refusing = False
        self.connections = 0
        self.cuts = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Listen on an ephemeral port; return the http:// URL to give clients."""
        self._server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._writers |= pair
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= pair

    def cut(self) -> int:
        """Abort every connection going through the proxy now; return how many there were."""
        cut = len(self._writers) // 2
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self.cuts += 1
        return cut

    async def close(self) -> None:
        """Cut everything and stop listening."""
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.transport.abort()


class ThreadedProxy:
    """A CuttableProxy on its own event loop thread, for synchronous code (benchmarks, Playwright tests)."""

    def __init__(self, target_port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tcpproxy", daemon=True)
        self.thread.start()
        self.proxy = CuttableProxy(target_port)
        self.url = asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)

    def cut(self, refusing: bool = False) -> None:
        """Abort every connection through it now; refuse new ones while `refusing` (until `cut(False)`)."""
        def act() -> None:
            self.proxy.refusing = refusing
            self.proxy.cut()
        self.loop.call_soon_threadsafe(act)

    def allow(self) -> None:
        """Accept new connections again (after `cut(refusing=True)`), leaving the ones made meanwhile alone."""
        self.loop.call_soon_threadsafe(setattr, self.proxy, "refusing", False)

    def close(self) -> None:
        """Stop the proxy and its thread."""
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
