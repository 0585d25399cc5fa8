"""ASGI middleware run before any route: Host and Origin checks, and a request-body size cap.

Written as plain ASGI (not BaseHTTPMiddleware) because it sits on every request's hot path.
The decisions come from tvapp.core.hosts; this only reads headers and answers refusals.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tvapp.core.hosts import host_allowed, origin_allowed
from tvapp.server.errors import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def default_host_names(extra: tuple[str, ...]) -> frozenset[str]:
    """Return the Host names served: this machine's name, `<name>.local`, and the configured ones."""
    name = socket.gethostname().lower()
    return frozenset({name, f"{name}.local", *(e.lower() for e in extra)})


class RequestGuard:
    """Refuse foreign Host headers, cross-site Origins and oversized bodies before routing."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: frozenset[str], allowed_origins: tuple[str, ...],
                 max_body_bytes: int) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = allowed_origins
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if not host_allowed(headers.get("host"), self.allowed_hosts):
            await self._refuse(scope, send, 400, "bad_host", "this server does not answer to that Host name")
            return
        origin = headers.get("origin")
        cross_site_matters = kind == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if cross_site_matters and not origin_allowed(origin, headers.get("host"), self.allowed_origins):
            await self._refuse(scope, send, 403, "bad_origin", "requests from that Origin are not allowed")
            return
        if kind == "http":
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
                await self._refuse(scope, send, 413, "body_too_large",
                                   f"request bodies are limited to {self.max_body_bytes} bytes")
                return
            receive = self._capped(receive)
        await self.app(scope, receive, send)

    def _capped(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        return capped

    async def _refuse(self, scope: Scope, send: Send, status: int, code: str, message: str) -> None:
        if scope["type"] == "websocket":
            # Refusing before accept makes the server answer the handshake with HTTP 403.
            await send({"type": "websocket.close", "code": 1008, "reason": code})
            return
        body = json.dumps(error_body(code, message)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """A chunked request body grew past the cap (mapped to 413 by the app)."""


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        if name in ("host", "origin", "content-length"):
            out[name] = raw_value.decode("latin-1")
    return out
