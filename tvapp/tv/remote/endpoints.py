"""The TV's endpoints for phones: pairing over HTTP, the /v1/remote websocket hub, the admin routes, the Remote page.

`RemoteEndpoints.app` is the ASGI app the TV serves on its remote port: GET / (to /remote), GET /remote and
/remote/assets/{name} (the Remote page), GET /v1/tv, POST /v1/pairings, POST /v1/pairings/{id}/confirm,
WS /v1/remote, and the loopback-only /v1/admin/devices, /v1/admin/devices/{id} (DELETE) and
/v1/admin/pairing/reopen. The pairing rules live in tvapp.core.pairing and the websocket protocol in
tvapp.protocol.remote: this module feeds them requests, the clock and randomness, and acts on their decisions.

Threads: everything here runs on the event loop serving the app. `push_state()` and `reopen_pairing()` may be
called from any thread (the TV's frame loop handles key presses); they hop onto that loop.

Nothing secret (pairing code, QR secret, device credential) is ever logged or put in an error; the code and the
secret go only to `Controller.show_pairing` (the TV screen), the credential only into the confirm answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import mimetypes
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, MutableMapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tvapp.core.hosts import host_allowed, origin_allowed
from tvapp.core.pairing import Decision, Outcome, Pairing, PairingConfig, Pending
from tvapp.protocol.remote import AuthRequested, CommandReceived, RemoteServerConnection, RemoteState
from tvapp.protocol.remote_messages import (
    PROTOCOL_VERSION,
    Command,
    Devices,
    Error,
    ForgetDevice,
    ListDevices,
    State,
    StatusCommand,
)
from tvapp.tv.remote.devices import DeviceStore

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
MAX_QUEUED_MESSAGES = 64
MAX_BODY_BYTES = 4096
MAX_DEVICE_NAME_CHARS = 64
_ASSET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
                 422: "bad_request"}
_FORGOTTEN = Error(code="device_forgotten", message="this phone was forgotten on the TV: pair it again")
_NO_DEVICE = Error(code="device_not_found", message="no paired device has that id")
_SHUTTING_DOWN = Error(code="tv_shutting_down", message="the TV is shutting down")
_INTERNAL = Error(code="internal", message="the TV could not do that")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CommandRefused(Exception):
    """The controller refuses a command: the phone gets error{code, message} and the connection stays."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PairingView(NamedTuple):
    """What the TV shows while a phone pairs: the code, the QR code's URL, until when, and for whom."""

    code: str
    url: str
    expires_at: float
    requester_name: str


class Controller(Protocol):
    """The TV as the endpoints drive it (implemented by tvapp/tv/control.py)."""

    def tv_state(self) -> State:
        """Return the TV's state as of now."""
        ...

    async def execute(self, command: Command) -> None:
        """Carry out a command (every one but status, list_devices and forget_device); raise CommandRefused."""
        ...

    def show_pairing(self, view: PairingView | None) -> None:
        """Show the pairing code and QR code on the screen, or hide them (None)."""
        ...


class _HttpError(Exception):
    """A refusal answered with the JSON error body; `extra` fields go next to "error"."""

    def __init__(self, status: int, code: str, message: str, *, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


def _error_response(status: int, code: str, message: str, extra: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}, **(extra or {})}, status_code=status,
                        headers=headers)


class _Close(NamedTuple):
    code: int
    reason: str


class _Link:
    """One remote websocket: its protocol state, its own send queue, and the task that drains it."""

    def __init__(self, websocket: WebSocket, now: float, auth_timeout: float) -> None:
        self.websocket = websocket
        self.conn = RemoteServerConnection(now, auth_timeout=auth_timeout)
        self.queue: asyncio.Queue[str | _Close] = asyncio.Queue()
        self.last_state: State | None = None
        self.closing = False
        self.sender: asyncio.Task[None] | None = None

    @property
    def authed(self) -> bool:
        return self.conn.state is RemoteState.AUTHENTICATED and not self.closing

    def send(self, text: str) -> None:
        """Queue `text`; drop the connection when the phone has stopped reading."""
        if self.closing:
            return
        if self.queue.qsize() >= MAX_QUEUED_MESSAGES:
            log.warning("remote %s: dropped, it does not read its messages", self.conn.device_id or "(not authed)")
            self.closing = True
            if self.sender is not None:
                self.sender.cancel()
            return
        self.queue.put_nowait(text)

    def flush(self) -> None:
        """Queue the texts the connection has to send, then its close frame once it must close."""
        for text in self.conn.data_to_send():
            self.send(text)
        if self.conn.close_code is not None and not self.closing:
            self.closing = True
            self.queue.put_nowait(_Close(self.conn.close_code, self.conn.close_reason))

    async def pump(self) -> None:
        """Send the queued texts in order until the close frame."""
        while True:
            item = await self.queue.get()
            if isinstance(item, _Close):
                await self.websocket.close(item.code, item.reason)
                return
            await self.websocket.send_text(item)


class _Guard:
    """ASGI middleware: refuse a foreign Host or a cross-site Origin before any route (websockets before accept)."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host")
        if not host_allowed(host, self.allowed_hosts):
            await _refuse(scope, send, "forbidden_host", "this TV does not answer to that Host name")
            return
        if not origin_allowed(headers.get("origin"), host, ()):
            await _refuse(scope, send, "forbidden_origin", "requests from that Origin are not allowed")
            return
        await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        if name in ("host", "origin"):
            if name in out:  # two Host or Origin headers: make the check fail rather than pick one
                out[name] = "\x00"
                continue
            out[name] = raw_value.decode("latin-1")
    return out


async def _refuse(scope: Scope, send: Send, code: str, message: str) -> None:
    if scope["type"] == "websocket":
        # Closing before accept makes the server answer the handshake with HTTP 403.
        await send({"type": "websocket.close", "code": 1008, "reason": code})
        return
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _random_digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def _random_token() -> str:
    return secrets.token_urlsafe(18)


def _is_loopback(address: str | None) -> bool:
    if address is None:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _retry_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class RemoteEndpoints:
    """The TV's HTTP + websocket endpoints for phones, and the hub that pushes the TV's state to them."""

    def __init__(self, *, controller: Controller, devices: DeviceStore, tv_name: str, instance_id: str,
                 base_url: str, fingerprint: str | None = None, allowed_hosts: Collection[str] = (),
                 pairing_config: PairingConfig = PairingConfig(), clock: Callable[[], float] = time.time,
                 auth_timeout: float = 10.0) -> None:
        self.controller = controller
        self.devices = devices
        self.tv_name = tv_name
        self.instance_id = instance_id
        self.base_url = base_url.rstrip("/")
        self.fingerprint = fingerprint
        self.clock = clock
        self.auth_timeout = auth_timeout
        self._pairing = Pairing(pairing_config, _random_digits, _random_token)
        self._pairing_name: tuple[str, str] = ("", "")  # (pairing_id, name shown on the TV)
        self._shown: PairingView | None = None
        self._hide_timer: asyncio.TimerHandle | None = None
        self._unlock_timer: asyncio.TimerHandle | None = None
        self._was_open = True
        self._links: set[_Link] = set()
        self._orphans: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        hostname = socket.gethostname().lower()
        hosts = frozenset({hostname, f"{hostname}.local", *(h.lower() for h in allowed_hosts)})
        self.app = self._build_app(hosts)

    # --- what the TV calls ------------------------------------------------------------------------------------

    def pairing_open(self) -> bool:
        """Return whether pairing accepts phones now (the zeroconf TXT "pair" bit)."""
        return self._pairing.is_open(self.clock())

    def push_state(self) -> None:
        """Send the TV's state to every authenticated remote that has not seen it yet; never blocks."""
        self._on_loop(self._push_state)

    def reopen_pairing(self) -> None:
        """Open pairing again after a lockout or a close (the TV's own key press); hide a stale code."""
        self._on_loop(self._reopen_pairing)

    async def close(self) -> None:
        """Close every remote websocket (1001) and stop the pairing timers."""
        for timer in (self._hide_timer, self._unlock_timer):
            if timer is not None:
                timer.cancel()
        self._hide_timer = self._unlock_timer = None
        senders = []
        for link in list(self._links):
            link.conn.close(1001, _SHUTTING_DOWN.code, _SHUTTING_DOWN)
            link.flush()
            if link.sender is not None:
                senders.append(link.sender)
        if senders:
            await asyncio.wait(senders, timeout=5.0)

    # --- thread hopping -----------------------------------------------------------------------------------------

    def _on_loop(self, action: Callable[[], None]) -> None:
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            action()
        else:
            loop.call_soon_threadsafe(action)

    def _remember_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    # --- pairing ----------------------------------------------------------------------------------------------

    def _reopen_pairing(self) -> None:
        self._pairing.reopen(self.clock())
        self._sync_pairing()

    def _view(self, pending: Pending) -> PairingView:
        url = f"{self.base_url}/remote#pair={pending.pairing_id}.{pending.secret}"
        if self.fingerprint is not None:
            url += f"&fp={self.fingerprint}"
        pairing_id, name = self._pairing_name
        return PairingView(pending.code, url, pending.expires_at, name if pairing_id == pending.pairing_id else "")

    def _sync_pairing(self, unlock_after: float = 0.0) -> None:
        """Show what pairing shows now, wake up when that changes by itself, and push a change of "open"."""
        now = self.clock()
        pending = self._pairing.current(now)
        view = None if pending is None else self._view(pending)
        if view != self._shown:
            self._shown = view
            try:
                self.controller.show_pairing(view)
            except Exception:
                log.exception("the TV could not show the pairing screen")
        self._hide_timer = self._wake(self._hide_timer, None if view is None else view.expires_at - now)
        if unlock_after > 0:
            self._unlock_timer = self._wake(self._unlock_timer, unlock_after)
        is_open = self._pairing.is_open(now)
        if is_open != self._was_open:
            self._was_open = is_open
            log.info("pairing is now %s", "open" if is_open else "closed")
            self._push_state()

    def _wake(self, timer: asyncio.TimerHandle | None, after: float | None) -> asyncio.TimerHandle | None:
        """Replace `timer` with one that syncs pairing `after` seconds from now (none when `after` is None)."""
        if timer is not None:
            timer.cancel()
        loop = self._loop
        if after is None or loop is None or loop.is_closed():
            return None
        # A little late rather than early: the loop's clock and `clock()` are not the same clock.
        return loop.call_later(max(after, 0.0) + 0.02, self._sync_pairing)

    async def _request_pairing(self, request: Request) -> JSONResponse:
        self._remember_loop()
        body = await _read_json(request, optional=True)
        name = _device_name(body)
        requester = request.client.host if request.client is not None else "unknown"
        decision = self._pairing.request(requester, self.clock())
        unlock_after = decision.retry_after if decision.outcome is Outcome.CLOSED else 0.0
        try:
            if decision.outcome is Outcome.STARTED:
                assert decision.pending is not None
                pending = decision.pending
                if self._pairing_name[0] != pending.pairing_id or name is not None:
                    self._pairing_name = (pending.pairing_id, name or "")
                log.info("pairing started for %s", requester)
                return JSONResponse({"pairing_id": pending.pairing_id, "expires_at": pending.expires_at,
                                     "code_digits": len(pending.code)}, status_code=201)
            if decision.outcome is Outcome.BUSY:
                raise _HttpError(409, "pairing_busy", "another phone is pairing with this TV: try again soon",
                                 extra={"retry_after": decision.retry_after},
                                 headers=_retry_header(decision.retry_after))
            raise self._closed_error(decision)
        finally:
            self._sync_pairing(unlock_after)

    async def _confirm_pairing(self, pairing_id: str, request: Request) -> JSONResponse:
        self._remember_loop()
        body = await _read_json(request, optional=False)
        name = _device_name(body)
        code, secret = body.get("code"), body.get("secret")
        for field, value in (("code", code), ("secret", secret)):
            if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 128):
                raise _HttpError(422, "bad_request", f"{field}: expected a non-empty string")
        if (code is None) == (secret is None):
            raise _HttpError(422, "bad_request", "send exactly one of code or secret")
        if len(pairing_id) > 128:
            raise _HttpError(404, "no_pairing", "there is no such pairing in progress")
        now = self.clock()
        decision = self._pairing.attempt(pairing_id, now, code=code, secret=secret)
        unlock_after = decision.retry_after if decision.outcome is Outcome.CLOSED else 0.0
        try:
            if decision.outcome is Outcome.PAIRED:
                stored_id, stored_name = self._pairing_name
                device_name = name or (stored_name if stored_id == pairing_id else "") or "phone"
                device_id, credential = self.devices.add(device_name, now)
                log.info("paired device %s", device_id)
                return JSONResponse({"device_id": device_id, "credential": credential, "tv_name": self.tv_name},
                                    status_code=201)
            log.info("pairing attempt refused: %s", decision.outcome.value)
            if decision.outcome in (Outcome.WRONG_CODE, Outcome.ROTATED):
                rotated = decision.outcome is Outcome.ROTATED
                raise _HttpError(400, "wrong_code", "that is not the code on the TV" +
                                 (": the TV shows a new code now" if rotated else ""),
                                 extra={"rotated": rotated, "retry_after": decision.retry_after})
            if decision.outcome is Outcome.TOO_SOON:
                raise _HttpError(429, "too_soon", "too many wrong codes: wait before trying again",
                                 extra={"retry_after": decision.retry_after},
                                 headers=_retry_header(decision.retry_after))
            if decision.outcome is Outcome.EXPIRED:
                raise _HttpError(410, "pairing_expired", "the code expired: ask to pair again")
            if decision.outcome is Outcome.NO_PAIRING:
                raise _HttpError(404, "no_pairing", "there is no such pairing in progress")
            raise self._closed_error(decision)
        finally:
            self._sync_pairing(unlock_after)

    @staticmethod
    def _closed_error(decision: Decision) -> _HttpError:
        extra = {"retry_after": decision.retry_after} if decision.retry_after > 0 else {}
        return _HttpError(403, "pairing_closed", "pairing is closed on this TV: reopen it on the TV", extra=extra)

    # --- the websocket hub ------------------------------------------------------------------------------------

    def _push_state(self) -> None:
        links = [link for link in self._links if link.authed]
        if not links:
            return
        try:
            state = self.controller.tv_state()
        except Exception:
            log.exception("the TV could not report its state")
            return
        for link in links:
            if link.last_state != state:
                self._send_state(link, state)

    @staticmethod
    def _send_state(link: _Link, state: State) -> None:
        link.last_state = state
        link.conn.send(state)
        link.flush()

    @staticmethod
    def _forget(link: _Link) -> None:
        link.conn.close(1008, _FORGOTTEN.code, _FORGOTTEN)
        link.flush()

    def _forget_links(self, device_id: str, keep: _Link | None = None) -> None:
        for link in list(self._links):
            if link is not keep and link.conn.device_id == device_id and not link.conn.closed:
                self._forget(link)

    async def _serve_remote(self, websocket: WebSocket) -> None:
        self._remember_loop()
        await websocket.accept()
        loop = asyncio.get_running_loop()
        link = _Link(websocket, loop.time(), self.auth_timeout)
        self._links.add(link)
        timer = loop.call_at(link.conn.next_deadline(), self._check_auth_deadline, link)
        link.sender = asyncio.create_task(link.pump())
        reader = asyncio.create_task(self._read(link))
        try:
            await asyncio.wait({link.sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            self._links.discard(link)
            link.closing = True
            for task in (link.sender, reader):
                task.cancel()
            results = await asyncio.gather(link.sender, reader, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not _is_disconnect(result):
                    log.error("remote connection failed", exc_info=result)

    @staticmethod
    def _check_auth_deadline(link: _Link) -> None:
        link.conn.check_timeouts(asyncio.get_running_loop().time())
        link.flush()

    async def _read(self, link: _Link) -> None:
        while True:
            message = await link.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if link.conn.closed:
                continue
            now = asyncio.get_running_loop().time()
            if message.get("text") is not None:
                link.conn.receive_text(message["text"], now)
            else:
                link.conn.receive_bytes(message.get("bytes") or b"", now)
            link.flush()
            for event in link.conn.events_received():
                await self._handle(link, event)

    async def _handle(self, link: _Link, event: AuthRequested | CommandReceived) -> None:
        conn = link.conn
        if isinstance(event, AuthRequested):
            device_id = self.devices.check(event.credential, self.clock())
            if device_id is None:
                log.info("remote refused: unknown or revoked credential")
                conn.reject_auth()
                link.flush()
                return
            conn.accept_auth(device_id, self.tv_name)
            log.info("remote %s connected", device_id)
            self._send_state(link, self.controller.tv_state())
            return
        await self._command(link, event.command)

    async def _command(self, link: _Link, command: Command) -> None:
        conn = link.conn
        assert conn.device_id is not None
        if not self.devices.is_active(conn.device_id):
            conn.error(command, _FORGOTTEN.code, _FORGOTTEN.message)
            self._forget(link)
            return
        if isinstance(command, StatusCommand):
            self._send_state(link, self.controller.tv_state())
        elif isinstance(command, ListDevices):
            conn.send(Devices(id=command.id, devices=tuple(self.devices.list())))
        elif isinstance(command, ForgetDevice):
            if not self.devices.revoke(command.device_id, self.clock()):
                self._answer(link, command, _NO_DEVICE)
                return
            log.info("device %s forgotten by remote %s", command.device_id, conn.device_id)
            self._forget_links(command.device_id, keep=link)
            if command.device_id == conn.device_id:
                conn.ok(command)
                self._forget(link)
                return
        else:
            try:
                await self._execute(command)
            except CommandRefused as refused:
                self._answer(link, command, Error(code=refused.code, message=refused.message))
                return
            except Exception:
                log.exception("remote command %s failed", command.TYPE)
                self._answer(link, command, _INTERNAL)
                return
            self._push_state()
        self._answer(link, command)

    async def _execute(self, command: Command) -> None:
        """Run the command to its end even if its phone goes away meanwhile: the TV must not stop half-way."""
        work = asyncio.ensure_future(self.controller.execute(command))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            if not work.done():
                self._orphans.add(work)
                work.add_done_callback(self._orphan_done)
            raise

    def _orphan_done(self, work: asyncio.Future[None]) -> None:
        self._orphans.discard(work)
        if not work.cancelled() and isinstance(work.exception(), Exception):
            if not isinstance(work.exception(), CommandRefused):
                log.error("remote command failed after its phone left", exc_info=work.exception())

    @staticmethod
    def _answer(link: _Link, command: Command, error: Error | None = None) -> None:
        """Send ok or the error for `command`, unless the connection closed meanwhile (device forgotten)."""
        if link.conn.closed:
            return
        if error is None:
            link.conn.ok(command)
        else:
            link.conn.error(command, error.code, error.message)
        link.flush()

    # --- admin ------------------------------------------------------------------------------------------------

    def _admin_only(self, request: Request) -> None:
        client = request.client.host if request.client is not None else None
        if not _is_loopback(client) or "origin" in request.headers:
            raise _HttpError(403, "admin_local_only", "this is only for programs on the TV itself")

    def _revoke(self, device_id: str) -> None:
        if not self.devices.revoke(device_id, self.clock()):
            raise _HttpError(404, _NO_DEVICE.code, _NO_DEVICE.message)
        log.info("device %s forgotten by the TV", device_id)
        self._forget_links(device_id)

    # --- the app ----------------------------------------------------------------------------------------------

    def _build_app(self, allowed_hosts: frozenset[str]) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            self._remember_loop()
            yield

        app = FastAPI(title="tvapp TV", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
        app.add_middleware(_Guard, allowed_hosts=allowed_hosts)
        app.add_exception_handler(_HttpError, _http_error)  # type: ignore[arg-type]
        app.add_exception_handler(StarletteHTTPException, _starlette_error)  # type: ignore[arg-type]
        app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
        app.add_exception_handler(Exception, _unexpected_error)

        @app.get("/", include_in_schema=False)
        async def root() -> Response:
            return RedirectResponse("/remote", status_code=307)

        @app.get("/remote")
        async def remote_page() -> Response:
            return _web_file("remote.html")

        @app.get("/remote/assets/{name}")
        async def remote_asset(name: str) -> Response:
            return _web_file(name)

        @app.get("/v1/tv")
        async def tv_info() -> JSONResponse:
            return JSONResponse({"tv_name": self.tv_name, "instance_id": self.instance_id,
                                 "tv_id": self.devices.tv_id(), "proto": PROTOCOL_VERSION,
                                 "tls": self.fingerprint is not None, "fingerprint": self.fingerprint,
                                 "pairing_open": self.pairing_open()})

        @app.post("/v1/pairings")
        async def request_pairing(request: Request) -> JSONResponse:
            return await self._request_pairing(request)

        @app.post("/v1/pairings/{pairing_id}/confirm")
        async def confirm_pairing(pairing_id: str, request: Request) -> JSONResponse:
            return await self._confirm_pairing(pairing_id, request)

        @app.websocket("/v1/remote")
        async def remote(websocket: WebSocket) -> None:
            await self._serve_remote(websocket)

        @app.get("/v1/admin/devices")
        async def admin_devices(request: Request) -> JSONResponse:
            self._admin_only(request)
            return JSONResponse({"devices": [device.to_json() for device in self.devices.list()]})

        @app.delete("/v1/admin/devices/{device_id}")
        async def admin_forget(device_id: str, request: Request) -> Response:
            self._admin_only(request)
            self._revoke(device_id)
            return Response(status_code=204)

        @app.post("/v1/admin/pairing/reopen")
        async def admin_reopen(request: Request) -> Response:
            self._admin_only(request)
            self._remember_loop()
            self._reopen_pairing()
            return Response(status_code=204)

        return app


def _is_disconnect(exc: BaseException) -> bool:
    from starlette.websockets import WebSocketDisconnect

    return isinstance(exc, (WebSocketDisconnect, OSError, asyncio.CancelledError)) or (
        isinstance(exc, RuntimeError) and "close" in str(exc).lower()
    ) or type(exc).__name__ == "ClientDisconnected"


def _web_file(name: str) -> Response:
    if _ASSET_NAME.fullmatch(name) is None:
        raise _HttpError(404, "not_found", "no such page")
    path = WEB_DIR / name
    if not path.is_file():
        raise _HttpError(404, "not_found", "no such page")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={
        "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


async def _read_json(request: Request, *, optional: bool) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise _HttpError(413, "body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if optional:
            return {}
        raise _HttpError(422, "bad_request", "a JSON object body is required")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _HttpError(422, "bad_request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _HttpError(422, "bad_request", "the body must be a JSON object")
    return body


def _device_name(body: dict[str, Any]) -> str | None:
    name = body.get("name")
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > MAX_DEVICE_NAME_CHARS or not name.isprintable():
        raise _HttpError(422, "bad_request", f"name: a printable string of at most {MAX_DEVICE_NAME_CHARS} characters")
    return name.strip() or None


async def _http_error(_: Request, exc: _HttpError) -> JSONResponse:
    return _error_response(exc.status, exc.code, exc.message, exc.extra, exc.headers)


async def _starlette_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "the request was refused"
    return _error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return _error_response(422, "bad_request", "the request is malformed")


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("request failed", exc_info=exc)
    return _error_response(500, "internal", "the TV could not do that")
