"""The TV's endpoints for phones, as one ASGI app: routes, admin, the Remote page, and the thread hopping.

`RemoteEndpoints.app` is what the TV serves on its remote port: GET / (to /remote), GET /remote and
/remote/assets/{name} (the Remote page), GET /v1/tv, POST /v1/pairings, POST /v1/pairings/{id}/confirm
(tvapp.tv.remote.pairing_http), WS /v1/remote (tvapp.tv.remote.hub), and the loopback-only /v1/admin/devices,
/v1/admin/devices/{id} (DELETE) and /v1/admin/pairing/reopen. A paired phone becomes the TV's camera over /v1/remote
(`phone_camera`, tvapp.tv.remote.phonecam; the Remote page's part is web/phonecam.js). The Host/Origin guard (Origin checked on reads too),
the body cap and the JSON errors are tvapp.web's, as on the core.

Threads: everything runs on the event loop serving the app. `push_state()` and `reopen_pairing()` may be called
from any thread (the TV's frame loop handles key presses); they hop onto that loop. `pairing_open()` only reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import mimetypes
import re
import time
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from tvapp.core.pairing import PairingConfig
from tvapp.protocol.pairing import MAX_BODY_BYTES, TvInfo
from tvapp.protocol.remote_messages import PROTOCOL_VERSION
from tvapp.tv.remote.controller import Controller
from tvapp.tv.remote.devices import DeviceStore
from tvapp.tv.remote.hub import NO_DEVICE, RemoteHub
from tvapp.tv.remote.pairing_http import PairingDesk
from tvapp.tv.remote.phonecam import PhoneCamera
from tvapp.web.errors import HttpError, install_error_handlers
from tvapp.web.guard import RequestGuard, default_host_names

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
_ASSET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


def _is_loopback(address: str | None) -> bool:
    if address is None:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False

NO_STORE = {"Cache-Control": "no-store"}  # answers with a pairing secret or a credential: no cache keeps them


class RemoteEndpoints:
    """The TV's HTTP + websocket endpoints for phones: the pairing desk, the remote hub, and the app serving them."""

    def __init__(self, *, controller: Controller, devices: DeviceStore, tv_name: str, instance_id: str,
                 base_url: str, fingerprint: str | None = None, allowed_hosts: Collection[str] = (),
                 pairing_config: PairingConfig = PairingConfig(), clock: Callable[[], float] = time.time,
                 auth_timeout: float = 10.0, phone_camera: PhoneCamera | None = None) -> None:
        self.devices = devices
        self.phone_camera = phone_camera
        self.tv_name = tv_name
        self.instance_id = instance_id
        self.fingerprint = fingerprint
        self.clock = clock
        self.hub = RemoteHub(controller=controller, devices=devices, tv_name=tv_name, clock=clock,
                             auth_timeout=auth_timeout, phone_camera=phone_camera)
        self.pairing = PairingDesk(controller=controller, devices=devices, tv_name=tv_name, base_url=base_url,
                                   fingerprint=fingerprint, config=pairing_config, clock=clock,
                                   on_open_changed=self.hub.push_state)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = self._build_app(default_host_names(tuple(allowed_hosts)))

    # --- what the TV calls ------------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """Return the event loop serving the app (None until it served something)."""
        return self._loop

    def pairing_open(self) -> bool:
        """Return whether pairing accepts phones now (the zeroconf TXT "pair" bit)."""
        return self.pairing.is_open()

    def push_state(self) -> None:
        """Send the TV's state to every authenticated remote that has not seen it yet; never blocks."""
        self._on_loop(self.hub.push_state)

    def reopen_pairing(self) -> None:
        """Open pairing again after a lockout or a close (the TV's own key press); hide a stale code."""
        self._on_loop(self.pairing.reopen)

    async def close(self) -> None:
        """Close every remote websocket (1001) and stop the pairing timers."""
        self.pairing.close()
        if self.phone_camera is not None:
            await self.phone_camera.close()
        await self.hub.close()

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

    # --- admin ------------------------------------------------------------------------------------------------

    @staticmethod
    def _admin_only(request: Request) -> None:
        client = request.client.host if request.client is not None else None
        if not _is_loopback(client) or "origin" in request.headers:
            raise HttpError("admin_local_only", "this is only for programs on the TV itself", status=403)

    def _revoke(self, device_id: str) -> None:
        if not self.devices.revoke(device_id, self.clock()):
            raise HttpError(NO_DEVICE.code, NO_DEVICE.message, status=404)
        log.info("device %s forgotten by the TV", device_id)
        self.hub.forget_device(device_id)

    # --- the app ----------------------------------------------------------------------------------------------

    def _build_app(self, allowed_hosts: frozenset[str]) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            self._remember_loop()
            yield

        app = FastAPI(title="tvapp TV", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
        app.add_middleware(RequestGuard, allowed_hosts=allowed_hosts, max_body_bytes=MAX_BODY_BYTES,
                           guard_reads=True)
        install_error_handlers(app, internal_message="the TV could not do that")

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
            info = TvInfo(tv_name=self.tv_name, instance_id=self.instance_id, tv_id=self.devices.tv_id(),
                          proto=PROTOCOL_VERSION, tls=self.fingerprint is not None, fingerprint=self.fingerprint,
                          pairing_open=self.pairing_open())
            return JSONResponse(info.to_json())

        @app.post("/v1/pairings")
        async def request_pairing(request: Request) -> JSONResponse:
            self._remember_loop()
            requester = request.client.host if request.client is not None else "unknown"
            started = self.pairing.request(await request.body(), requester)
            return JSONResponse(started.to_json(), status_code=201, headers=NO_STORE)

        @app.post("/v1/pairings/{pairing_id}/confirm")
        async def confirm_pairing(pairing_id: str, request: Request) -> JSONResponse:
            self._remember_loop()
            paired = self.pairing.confirm(pairing_id, await request.body())
            return JSONResponse(paired.to_json(), status_code=201, headers=NO_STORE)  # the device credential

        @app.websocket("/v1/remote")
        async def remote(websocket: WebSocket) -> None:
            self._remember_loop()
            await self.hub.serve(websocket)

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
            self.pairing.reopen()
            return Response(status_code=204)

        return app


def _web_file(name: str) -> Response:
    if _ASSET_NAME.fullmatch(name) is None:
        raise HttpError("not_found", "no such page", status=404)
    path = WEB_DIR / name
    if not path.is_file():
        raise HttpError("not_found", "no such page", status=404)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers={
        "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
        # no other site may frame the Remote page and trick a paired phone's owner into its buttons (clickjacking)
        "Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"})
