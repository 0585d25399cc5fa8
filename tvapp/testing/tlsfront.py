"""A TLS front for a plain-http core in tests: https on 127.0.0.1 with a self-signed certificate, bytes passed through.

It stands for a core with a self-signed certificate (or one behind a TLS-terminating proxy): clients speak TLS to
the front, the front speaks plain TCP to the core, so REST and the signaling websocket both go through it. The
certificate is made with tvapp.web.tls (names localhost and 127.0.0.1), so `fingerprint` is in the format
the TV pairing QR and invite links carry. It runs its own asyncio loop in a daemon thread: usable from sync tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from pathlib import Path

from tvapp.web.tls import ensure_certificate


class TlsFront:
    """https://127.0.0.1:<port> in front of 127.0.0.1:`target_port`; `start()` returns its URL."""

    def __init__(self, directory: Path, target_port: int) -> None:
        self.cert = ensure_certificate(Path(directory), ["localhost"], ["127.0.0.1"])
        self.fingerprint = self.cert.fingerprint
        self.target_port = target_port
        self.handshakes_failed = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="tls front")

    def start(self) -> str:
        """Listen on an ephemeral port; return the https:// URL to give clients."""
        self._thread.start()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert.cert_path, self.cert.key_path)
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context, ssl_handshake_timeout=10), self._loop
        ).result(10)
        self.url = f"https://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self.url

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def stop(self) -> None:
        """Stop listening and the loop."""
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            dst.close()
