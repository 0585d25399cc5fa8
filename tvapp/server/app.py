"""The core server's ASGI app: routes, error mapping, request guard, lifespan.

`create_app(config)` returns a FastAPI app whose lifespan opens a ServerState. The Host/Origin guard,
the body cap and the error answers are tvapp.web's: every error a client can see leaves as
`{"error": {"code", "message"}}`; bad input is a 4xx, never a 500, and no traceback ever reaches a client.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import tvapp
from tvapp.config import Config
from tvapp.core.hosts import split_host
from tvapp.server.api import router
from tvapp.server.api.models import HealthOut
from tvapp.server.api.openapi import install_openapi
from tvapp.server.signal import signal_endpoint
from tvapp.server.state import ServerState
from tvapp.web.errors import install_error_handlers
from tvapp.web.guard import RequestGuard, default_host_names

WEB_DIR = Path(__file__).resolve().parent / "web"
"""The phone web client: index.html at "/", the rest under "/static/"."""
SDK_DIR = WEB_DIR / "sdk"
"""The JavaScript SDK (ES modules, an npm package layout): served at "/sdk/", e.g. /sdk/tvapp.js and /sdk/tvapp.d.ts."""

# What a host written into the CSP may look like (it is rebuilt from the parsed Host the guard let through).
WS_HOST_RE = re.compile(r"[a-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9a-f:.]+\](:[0-9]{1,5})?")


def content_security_policy(host: str | None) -> str:
    """Return the page's CSP: only this origin, websockets only to this host, no inline script or style.

    ``host`` is the Host the guard validated (request.state.host); it is parsed and written back from its parts,
    so nothing of the raw header but a host name or address and a port can reach the policy.
    """
    sockets = ""
    parsed = split_host(host) if host else None
    if parsed is not None:
        name, port = parsed
        shown = (f"[{name}]" if ":" in name else name) + (f":{port}" if port is not None else "")
        if WS_HOST_RE.fullmatch(shown):
            sockets = f" ws://{shown} wss://{shown}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src 'self' blob: mediastream: http: https:; connect-src 'self'{sockets} http: https:; "
            "object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SdkFiles(StaticFiles):
    """The SDK's files as StaticFiles serves /static/, plus: TypeScript declarations as text, no MIME sniffing, and
    any origin may import them (pages built on the SDK may live elsewhere; the files hold no secrets)."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        """Return the file's response with the SDK's headers."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = str(full_path)
        if name.endswith(".ts"):
            response.headers["content-type"] = "application/typescript; charset=utf-8"
        elif name.endswith(".js"):
            response.headers["content-type"] = "text/javascript; charset=utf-8"
        elif name.endswith(".json"):
            response.headers["content-type"] = "application/json"
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["access-control-allow-origin"] = "*"
        return response


class NoStore:
    """Mark every /v1 HTTP answer ``Cache-Control: no-store`` unless it says otherwise: they carry tokens, invite
    codes and room state that no browser or proxy cache may keep (RFC 6749 5.1 for the token answers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
            await send(message)

        await self.app(scope, receive, marked)


def media_dir(config: Config, data_dir: Path) -> Path:
    """Return the folder served at /media/: `[watch] media_dir`, else `<data_dir>/media`."""
    return Path(config.watch.media_dir).expanduser() if config.watch.media_dir else data_dir / "media"


def create_app(config: Config, data_dir: Path | None = None) -> FastAPI:
    """Build the core server app for `config` (the store lives in `data_dir` or the configured one)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await ServerState.open(config, data_dir)
        app.state.tvapp = state
        media_dir(config, state.data_dir).mkdir(mode=0o755, exist_ok=True)
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="tvapp core server",
        version=tvapp.__version__,
        description="Rooms, invites, participants and tokens of a self-hosted watch-together platform.",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.include_router(router)
    install_openapi(app)
    app.add_middleware(NoStore)
    app.add_middleware(
        RequestGuard,
        allowed_hosts=default_host_names(config.server.allowed_hosts),
        allowed_origins=config.server.origins,
        max_body_bytes=config.server.max_body_bytes,
        trusted_proxies=config.server.trusted_proxies,
        cors=True,
    )
    install_error_handlers(app, internal_message="the server failed; the error has been logged")

    @app.get("/healthz", tags=["health"], response_model=HealthOut,
             summary="Liveness: the server answers and its store is open")
    async def healthz(request: Request) -> JSONResponse:
        state: ServerState = request.app.state.tvapp
        return JSONResponse({"status": "ok", "version": tvapp.__version__, "live_rooms": len(state.rooms.live)})

    index_html = (WEB_DIR / "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(index_html, headers={
            "Content-Security-Policy": content_security_policy(getattr(request.state, "host", None)),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache",
            # Camera and microphone for this page only; nothing framed may ask.
            "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()"})

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.mount("/sdk", SdkFiles(directory=SDK_DIR), name="sdk")
    # Shared content for phones to watch along: whatever is in the media folder, with Range requests for seeking.
    app.mount("/media", StaticFiles(directory=media_dir(config, data_dir or config.data_path()), check_dir=False),
              name="media")

    @app.websocket("/v1/signal")
    async def signal(ws: WebSocket) -> None:
        await signal_endpoint(ws, ws.app.state.tvapp)

    return app
