"""The core server running inside another program's asyncio loop: the TV's built-in core.

`tvapp tv` (through tvapp.cli) starts one unless it is given `--server URL`. It listens like `tvapp serve`
does, and hands the TV what a customer's auth server would have: the server's URL and an API key, so the TV
creates its room, its token and its invite codes through the same REST API as everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import uvicorn

from tvapp.auth.keys import KeyStore, ensure_data_dir
from tvapp.config import Config
from tvapp.server.run import TlsError, bind, build_server, core_certificate, describe_certificate, log, url_for
from tvapp.web.tls import Certificate


class EmbeddedCoreError(Exception):
    """The embedded core could not start (port taken, data directory not writable, TLS files unusable...)."""

    def __init__(self, message: str, hint: str = "Free the port, or start with --port 0.") -> None:
        super().__init__(message)
        self.hint = hint  # what the TV's screen suggests


class EmbeddedCore:
    """A core server task in the current asyncio loop. `await start()`, then use `url` and `api_key`."""

    def __init__(self, config: Config, data_dir: Path, *, log_level: str = "warning") -> None:
        self.config = config
        self.data_dir = data_dir
        self.log_level = log_level
        self.url = ""
        self.api_key: tuple[str, str] = ("", "")
        self.certificate: Certificate | None = None  # what its port serves https with; None = plain http
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 15.0) -> None:
        """Create the API key if there is none, listen, and return once the server answers."""
        try:
            ensure_data_dir(self.data_dir)
            keys = KeyStore(self.data_dir)
            keys.ensure_key(time.time())
            key = keys.signing_key()
        except OSError as exc:
            raise EmbeddedCoreError(f"cannot use the data directory {self.data_dir}: {exc.strerror or exc}") from None
        assert key is not None
        self.api_key = (key.id, key.secret)
        try:
            self.certificate = core_certificate(self.config, self.data_dir)
        except TlsError as exc:
            raise EmbeddedCoreError(str(exc), "Fix [server] tls_cert and tls_key, or remove them.") from None
        host, port = self.config.server.host, self.config.server.port
        try:
            sock = bind(host, port)
        except OSError as exc:
            raise EmbeddedCoreError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        secure = self.certificate is not None
        self.url = url_for(sock, secure=secure).replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:")
        log.info("%s", describe_certificate(self.certificate))
        server = build_server(self.config, self.data_dir, self.log_level, self.certificate)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="embedded-core")
        deadline = time.monotonic() + timeout
        while not server.started:
            if self._task.done():
                self._task.result()
                raise EmbeddedCoreError("the embedded core stopped while starting")
            if time.monotonic() > deadline:
                raise EmbeddedCoreError(f"the embedded core did not start within {timeout:.0f} s")
            await asyncio.sleep(0.02)

    @property
    def port(self) -> int:
        """Return the port the core listens on."""
        return int(self.url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        """Shut the server down (open websockets are closed)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 8)
