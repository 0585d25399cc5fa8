"""ASGI middleware run before any route: X-Forwarded-* from trusted proxies, Host and Origin checks, a body cap.

Behind a reverse proxy listed in ``trusted_proxies`` (tvapp.core.forwarded decides), the request is rewritten
before anything else sees it: its client address (``scope["client"]``, what the invite-redeem limiter keys on),
its scheme and its Host header become the forwarded ones, and the Host/Origin checks judge those. From any other
peer the X-Forwarded-* headers are removed unread.

The Host it let through is left in the request's state (``request.state.host``): a page that writes its host into
a header (the core's CSP) takes it from there, never from the raw headers.

With ``cors`` (the core), the listed origins (``[server] cors_origins``) are also let in by CORS, for an SDK page on
another site: a preflight (OPTIONS with Access-Control-Request-Method) from a listed origin is answered 204 with
the methods and the two request headers the API takes (Authorization, Content-Type), from any other origin 403
``bad_origin``; an answer to a listed origin carries Access-Control-Allow-Origin with that origin (never "*": the
SDK's files under /sdk/ say "*" themselves) and ``Vary: Origin``. No credentials: tokens are bearer tokens, never
cookies. The websocket's Origin is judged against the same list by the check above.

Written as plain ASGI (not BaseHTTPMiddleware) because it sits on every request's hot path. The Host/Origin decision
is tvapp.core.hosts.refusal (repeated headers fail closed); this only reads headers and answers refusals: JSON with
the status of the error vocabulary (tvapp.web), or for a websocket a close before accept, which the server answers
with HTTP 403.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tvapp.core.forwarded import forwarded, parse_networks
from tvapp.core.hosts import BAD_HOST, BAD_ORIGIN, listed_origin, origin_allowed, refusal
from tvapp.web.errors import BodyTooLarge, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
# What a preflight from a listed origin is told: the API's methods, its two request headers, cached 10 minutes.
CORS_PREFLIGHT_HEADERS = (
    (b"access-control-allow-methods", b"GET, HEAD, POST, DELETE"),
    (b"access-control-allow-headers", b"Authorization, Content-Type"),
    (b"access-control-max-age", b"600"),
    (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
)
# Answer headers a page on a listed origin may read besides the CORS-safelisted ones (a 429's wait).
CORS_EXPOSED = b"Retry-After"
_REFUSALS = {
    BAD_HOST: (400, "this server does not answer to that Host name"),
    BAD_ORIGIN: (403, "requests from that Origin are not allowed"),
}


def default_host_names(extra: tuple[str, ...] | list[str] = ()) -> frozenset[str]:
    """Return the Host names served: this machine's name, `<name>.local`, and the configured ones."""
    name = socket.gethostname().lower()
    return frozenset({name, f"{name}.local", *(e.lower() for e in extra)})


class RequestGuard:
    """Refuse foreign or repeated Host headers, cross-site or repeated Origins and oversized bodies before routing.

    The Origin of a websocket or of a method that changes something is always checked; ``guard_reads`` checks it on
    GET, HEAD and OPTIONS too (the TV, whose pages nobody embeds).
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: frozenset[str], allowed_origins: tuple[str, ...] = (),
                 max_body_bytes: int, guard_reads: bool = False, trusted_proxies: tuple[str, ...] = (),
                 cors: bool = False) -> None:
        self.app = app
        self.trusted_proxies = parse_networks(trusted_proxies)
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = allowed_origins
        self.max_body_bytes = max_body_bytes
        self.guard_reads = guard_reads
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        peer = scope.get("client")
        view = forwarded(peer[0] if peer else None, headers["host"], forwarded_for=headers["x-forwarded-for"],
                         forwarded_proto=headers["x-forwarded-proto"], forwarded_host=headers["x-forwarded-host"],
                         trusted=self.trusted_proxies)
        check_origin = self.guard_reads or kind == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        refused = refusal(view.hosts, headers["origin"], allowed_names=self.allowed_hosts,
                          allowed_origins=self.allowed_origins, check_origin=check_origin)
        if refused is not None:
            status, message = _REFUSALS[refused]
            await _refuse(scope, send, status, refused, message)
            return
        _apply(scope, view.client, view.scheme, view.hosts[0], believed=view.believed)
        # The one Host value that passed (a repeated Host was refused above): pages read it as request.state.host.
        scope.setdefault("state", {})["host"] = view.hosts[0]
        origin = headers["origin"][0] if headers["origin"] else None
        if self.cors and kind == "http" and origin is not None:
            if scope.get("method") == "OPTIONS" and headers["access-control-request-method"]:
                await self._preflight(scope, send, origin, view.hosts[0])
                return
            if listed_origin(origin, self.allowed_origins):
                send = _with_cors(send, origin)
        if kind == "http":
            lengths = headers["content-length"]
            if any(not length.isdigit() or int(length) > self.max_body_bytes for length in lengths):
                too_big = BodyTooLarge(self.max_body_bytes)
                await _refuse(scope, send, too_big.status, too_big.code, too_big.message)
                return
            receive = self._capped(receive)
        await self.app(scope, receive, send)

    async def _preflight(self, scope: Scope, send: Send, origin: str, host: str) -> None:
        """Answer a CORS preflight: 204 with what the API allows for a listed (or our own) origin, else 403."""
        if not origin_allowed(origin, host, self.allowed_origins):
            status, message = _REFUSALS[BAD_ORIGIN]
            await _refuse(scope, send, status, BAD_ORIGIN, message)
            return
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"access-control-allow-origin", origin.encode("latin-1")), *CORS_PREFLIGHT_HEADERS]})
        await send({"type": "http.response.body", "body": b""})

    def _capped(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return capped


def _apply(scope: Scope, client: str | None, scheme: str | None, host: str, *, believed: bool) -> None:
    """Make the request what the trusted proxy said it is; drop X-Forwarded-* that were not believed."""
    raw = scope.get("headers", [])
    if not believed:
        if any(name.lower() in _FORWARDED for name, _ in raw):
            scope["headers"] = [(n, v) for n, v in raw if n.lower() not in _FORWARDED]
        return
    if client is not None:
        scope["client"] = (client, 0)
    if scheme is not None:
        secure = scheme == "https"
        scope["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" else scheme
    scope["headers"] = [(n, host.encode("latin-1")) if n.lower() == b"host" else (n, v) for n, v in raw]


def _with_cors(send: Send, origin: str) -> Send:
    """Wrap `send` so the answer lets `origin` read it (unless the app already said who may: the SDK's "*")."""

    async def cors_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"access-control-allow-origin" for name, _ in headers):
                headers += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
                            (b"access-control-expose-headers", CORS_EXPOSED)]
                message = {**message, "headers": headers}
        await send(message)

    return cors_send


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    if scope["type"] == "websocket":
        # Closing before accept makes the server answer the handshake with HTTP 403.
        await send({"type": "websocket.close", "code": 1008, "reason": code})
        return
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, list[str]]:
    """Return every value of the headers the guard reads (a repeated header keeps all its values)."""
    out: dict[str, list[str]] = {"host": [], "origin": [], "content-length": [], "x-forwarded-for": [],
                                 "x-forwarded-proto": [], "x-forwarded-host": [], "access-control-request-method": []}
    for raw_name, raw_value in scope.get("headers", []):
        values = out.get(raw_name.decode("latin-1").lower())
        if values is not None:
            values.append(raw_value.decode("latin-1"))
    return out
