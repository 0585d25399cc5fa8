"""Run the core server with uvicorn on a socket bound by tvapp.web.http (so port 0 reports the real port)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import uvicorn

from tvapp.auth.keys import KeyStore, ensure_data_dir
from tvapp.config import Config
from tvapp.logs import redact_frames
from tvapp.server.app import create_app
from tvapp.web.http import EdgeLimits, bind, guarded_protocol, url_for

__all__ = ["bind", "build_server", "edge_limits", "serve", "url_for"]


def edge_limits(config: Config) -> EdgeLimits:
    """Return the per-connection HTTP limits of [server] (both the core and the TV's endpoints use them)."""
    server = config.server
    return EdgeLimits(max_header_bytes=server.max_header_bytes, header_timeout=server.header_timeout,
                      body_timeout=server.body_timeout)


def serve(config: Config, data_dir: Path, *, log_level: str = "info") -> int:
    """Serve until interrupted; return the exit status."""
    import time

    ensure_data_dir(data_dir)
    keys = KeyStore(data_dir)
    created = keys.ensure_key(time.time())
    if created is not None:
        print(f"tvapp: created API key {created.id}; its secret is in {keys.path} (mode 0600)", flush=True)
    try:
        sock = bind(config.server.host, config.server.port)
    except OSError as exc:
        print(f"tvapp: cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}", file=sys.stderr)
        return 2
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = build_server(config, data_dir, log_level)
    print(f"tvapp: listening on {url_for(sock)} (data in {data_dir})", flush=True)
    server.run(sockets=[sock])
    return 0


def build_server(config: Config, data_dir: Path, log_level: str = "info") -> uvicorn.Server:
    """Return the uvicorn server for the core app (not started)."""
    app = create_app(config, data_dir)
    redact_frames()  # websocket frames carry tokens, the TURN credential and chat: never their bytes in a log
    return uvicorn.Server(uvicorn.Config(
        app,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=guarded_protocol(edge_limits(config)),
        ws="websockets-sansio",
        ws_max_size=config.signal.max_message_bytes,
        # Signaling messages are small JSON: compressing each one cost ~20% of a join's server CPU
        # (bench/README.md), and CPU is what a Pi under the TV is short of.
        ws_per_message_deflate=False,
        log_level=log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=3,
    ))
