"""The /v1/remote websocket hub: one RemoteServerConnection per phone, and the TV's state pushed to all of them.

The protocol is tvapp.protocol.remote's sans-I/O TV end: the hub feeds it each received frame with the loop's
clock, acts on its events (checks the credential against the DeviceStore, carries commands out through the
Controller), and sends what it queues through the link's own send queue, closing the socket when it says so. A
phone that stops reading is dropped once MAX_QUEUED_MESSAGES wait for it, so it never holds the TV back.
A flood of sockets cannot use up the TV's file descriptors: at most MAX_UNAUTHED_PER_ADDRESS connections from one
address wait for their auth at a time, and MAX_LINKS connections in all; one more gets the error
``too_many_connections`` and a close 1013 (try again later) at once.

The phone-camera commands (phone_camera_offer/mute/stop) go to the PhoneCamera with the phone's link as its
identity: the answer SDP goes back before the ok, phone_camera_stopped whenever the TV ends it, and a link that
closes ends its phone camera.

Everything here runs on the event loop serving the app; ``push_state()`` must be called there (the app hops).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple

from fastapi import WebSocket

from tvapp.protocol.remote import (
    AuthRequested,
    CommandReceived,
    RemoteServerConnection,
    RemoteState,
)
from tvapp.protocol.remote_messages import (
    Command,
    Devices,
    Error,
    ForgetDevice,
    ListDevices,
    PhoneCameraAnswer,
    PhoneCameraMute,
    PhoneCameraOffer,
    PhoneCameraStop,
    State,
    StatusCommand,
    TvMessage,
    encode,
)
from tvapp.tv.remote.controller import CommandRefused, Controller
from tvapp.tv.remote.devices import DeviceStore

if TYPE_CHECKING:
    from tvapp.tv.remote.phonecam import PhoneCamera

log = logging.getLogger(__name__)

MAX_QUEUED_MESSAGES = 64
MAX_UNAUTHED_PER_ADDRESS = 8
MAX_LINKS = 64
TOO_MANY = Error(code="too_many_connections", message="too many remote connections to this TV: try again later")
FORGOTTEN = Error(code="device_forgotten", message="this phone was forgotten on the TV: pair it again")
NO_DEVICE = Error(code="device_not_found", message="no paired device has that id")
SHUTTING_DOWN = Error(code="tv_shutting_down", message="the TV is shutting down")
INTERNAL = Error(code="internal", message="the TV could not do that")
NO_PHONE_CAMERA = Error(code="not_available", message="this TV does not take a phone as its camera")


class _Close(NamedTuple):
    code: int
    reason: str


class _Link:
    """One remote websocket: its protocol state, its own send queue, and the task that drains it."""

    def __init__(self, websocket: WebSocket, now: float, auth_timeout: float) -> None:
        self.websocket = websocket
        self.address = websocket.client.host if websocket.client is not None else ""
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


class RemoteHub:
    """Every phone's /v1/remote connection, and the TV's state pushed to the authenticated ones."""

    def __init__(self, *, controller: Controller, devices: DeviceStore, tv_name: str, clock: Callable[[], float],
                 auth_timeout: float = 10.0, phone_camera: PhoneCamera | None = None) -> None:
        self.controller = controller
        self.phone_camera = phone_camera
        self.devices = devices
        self.tv_name = tv_name
        self.clock = clock
        self.auth_timeout = auth_timeout
        self._links: set[_Link] = set()
        self._orphans: set[asyncio.Future[None]] = set()

    def authenticated_count(self) -> int:
        """Return how many phones are connected and authenticated now."""
        return sum(1 for link in list(self._links) if link.authed)

    def push_state(self) -> None:
        """Send the TV's state to every authenticated remote that has not seen it yet; never blocks."""
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

    def forget_device(self, device_id: str, keep: _Link | None = None) -> None:
        """Close the open connections of a device whose credential was revoked (but ``keep``)."""
        for link in list(self._links):
            if link is not keep and link.conn.device_id == device_id and not link.conn.closed:
                self._forget(link)

    async def close(self) -> None:
        """Close every remote websocket (1001) and wait a little for the goodbyes to go out."""
        senders = []
        for link in list(self._links):
            link.conn.close(1001, SHUTTING_DOWN.code, SHUTTING_DOWN)
            link.flush()
            if link.sender is not None:
                senders.append(link.sender)
        if senders:
            await asyncio.wait(senders, timeout=5.0)

    async def serve(self, websocket: WebSocket) -> None:
        """Serve one phone's /v1/remote websocket until either side ends it."""
        await websocket.accept()
        loop = asyncio.get_running_loop()
        link = _Link(websocket, loop.time(), self.auth_timeout)
        if self._crowded(link.address):
            log.warning("remote connection refused: too many connections")
            await websocket.send_text(encode(TOO_MANY))
            await websocket.close(1013, TOO_MANY.code)
            return
        self._links.add(link)
        timer = loop.call_at(link.conn.next_deadline(), self._check_deadline, link)
        link.sender = asyncio.create_task(link.pump())
        reader = asyncio.create_task(self._read(link))
        try:
            await asyncio.wait({link.sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            self._links.discard(link)
            if self.phone_camera is not None:
                self.phone_camera.owner_gone(link)
            link.closing = True
            for task in (link.sender, reader):
                task.cancel()
            results = await asyncio.gather(link.sender, reader, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not _is_disconnect(result):
                    log.error("remote connection failed", exc_info=result)

    def _crowded(self, address: str) -> bool:
        links = list(self._links)
        waiting = sum(1 for link in links if link.address == address and not link.authed and not link.closing)
        return len(links) >= MAX_LINKS or waiting >= MAX_UNAUTHED_PER_ADDRESS

    @staticmethod
    def _check_deadline(link: _Link) -> None:
        link.conn.check_timeouts(asyncio.get_running_loop().time())
        link.flush()

    @staticmethod
    def _send_state(link: _Link, state: State) -> None:
        link.last_state = state
        link.conn.send(state)
        link.flush()

    @staticmethod
    def _forget(link: _Link) -> None:
        link.conn.close(1008, FORGOTTEN.code, FORGOTTEN)
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
            conn.error(command, FORGOTTEN.code, FORGOTTEN.message)
            self._forget(link)
            return
        if isinstance(command, StatusCommand):
            self._send_state(link, self.controller.tv_state())
        elif isinstance(command, (PhoneCameraOffer, PhoneCameraMute, PhoneCameraStop)):
            await self._phone(link, command)
            return
        elif isinstance(command, ListDevices):
            conn.send(Devices(id=command.id, devices=tuple(self.devices.list())))
        elif isinstance(command, ForgetDevice):
            if not self.devices.revoke(command.device_id, self.clock()):
                self._answer(link, command, NO_DEVICE)
                return
            log.info("device %s forgotten by remote %s", command.device_id, conn.device_id)
            self.forget_device(command.device_id, keep=link)
            if command.device_id == conn.device_id:
                conn.ok(command)
                self._forget(link)
                return
        else:
            await self._carry_out(link, command, self._execute(command))
            return
        self._answer(link, command)

    async def _carry_out(self, link: _Link, command: Command, action: Awaitable[object]) -> None:
        """Await `action` for `command`, then push the new state and answer ok; a refusal or a failure is the answer."""
        try:
            await action
        except CommandRefused as refused:
            self._answer(link, command, Error(code=refused.code, message=refused.message))
            return
        except Exception:
            log.exception("remote command %s failed", command.TYPE)
            self._answer(link, command, INTERNAL)
            return
        self.push_state()
        self._answer(link, command)

    async def _phone(self, link: _Link, command: PhoneCameraOffer | PhoneCameraMute | PhoneCameraStop) -> None:
        """Carry out a phone-camera command of this phone (the connection is its identity as the camera)."""
        phone = self.phone_camera
        if phone is None:
            self._answer(link, command, NO_PHONE_CAMERA)
            return
        device_id = link.conn.device_id
        assert device_id is not None

        async def act() -> None:
            if isinstance(command, PhoneCameraOffer):
                sdp = await phone.offer(link, device_id, command.sdp, lambda msg: self._notify(link, msg))
                if link.authed:
                    link.conn.send(PhoneCameraAnswer(id=command.id, sdp=sdp))
            elif isinstance(command, PhoneCameraMute):
                await phone.set_muted(link, bool(command.muted))
            else:
                await phone.stop(link)

        await self._carry_out(link, command, act())

    @staticmethod
    def _notify(link: _Link, msg: TvMessage) -> None:
        if link.authed:
            link.conn.send(msg)
            link.flush()

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


def _is_disconnect(exc: BaseException) -> bool:
    from starlette.websockets import WebSocketDisconnect

    return isinstance(exc, (WebSocketDisconnect, OSError, asyncio.CancelledError)) or (
        isinstance(exc, RuntimeError) and "close" in str(exc).lower()
    ) or type(exc).__name__ == "ClientDisconnected"
