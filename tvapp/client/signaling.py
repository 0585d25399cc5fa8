"""A signaling connection for Python clients: join a room, send messages, receive typed events.

The protocol lives in tvapp.protocol.signaling (ClientConnection); this only moves its text over
a websocket. The token travels in the first message, never in the URL. The SDK's Room (tvapp.client.room)
is built on top of this; tests and tools use it directly to speak the protocol.

Tasks: `connect()` starts the reader (and, with ``heartbeat=True``, a pinger every ``ping_interval``) in a
TaskSet the client owns; `close()` cancels and awaits them. A Room passes ``heartbeat=False``: its request
channel is the one pinger (tvapp.client.requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from websockets.asyncio.client import ClientConnection as WsConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tvapp.client.trust import ssl_context
from tvapp.client.rest import signal_path
from tvapp.client.tasks import TaskSet
from tvapp.logs import redact_frames
from tvapp.protocol.messages import (
    ClientMessage,
    Error,
    Joined,
    Ping,
    Pong,
    ProtocolError,
    ServerMessage,
)
from tvapp.protocol.signaling import ClientConnection, ConnectionStateError

M = TypeVar("M")
log = logging.getLogger(__name__)


class SignalClosed(Exception):
    """The signaling connection has ended and every message received before that has been read."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"signaling closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class JoinError(Exception):
    """The server refused the join; `code` says why (invalid_token, room_full, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def signal_url(server_url: str) -> str:
    """Return the websocket URL of the signaling endpoint of a server at `server_url`."""
    base = server_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return base + signal_path()


class SignalClient:
    """One joined signaling connection (made by `connect`)."""

    def __init__(self, ws: WsConnection, conn: ClientConnection, joined: Joined,
                 clock: Callable[[], float] = time.time, on_pong: Callable[[Pong, float], None] | None = None) -> None:
        self.ws = ws
        self.conn = conn
        self.clock = clock
        # Told of every pong to a clock ping (t0 set) with the local clock when its text arrived (t3).
        self.on_pong = on_pong
        self.joined = joined
        self.last_received = time.monotonic()  # when the server last said anything (the SDK's dead-link check)
        self.events: asyncio.Queue[ServerMessage] = asyncio.Queue()
        self.ended = asyncio.Event()
        self._arrived = asyncio.Event()
        self._tasks = TaskSet("signaling", log)

    @classmethod
    async def connect(cls, server_url: str, token: str, *, heartbeat: bool = True, timeout: float = 10.0,
                      origin: str | None = None, auto_subscribe: bool = True,
                      clock: Callable[[], float] = time.time,
                      on_pong: Callable[[Pong, float], None] | None = None,
                      resume_token: str | None = None) -> SignalClient:
        """Open the websocket, join with `token`, and return once `joined` arrives (JoinError if refused).

        `heartbeat` pings every ``ping_interval`` the server asks for; `on_pong(pong, arrived)` is told of every
        pong to a ping that carried ``t0``. Raise OSError or a websockets exception when the server cannot be
        reached. With `resume_token` (from an earlier `joined`) the join takes that participant over (the server
        refuses with "resume_refused" once it is gone or the token was used).
        """
        headers = {"Origin": origin} if origin else None
        redact_frames()
        url = signal_url(server_url)
        # wss: a context always (CA-checked, trusted file or pinned: tvapp.client.trust); ws: None, plain TCP
        ws = await ws_connect(url, additional_headers=headers, open_timeout=timeout, max_size=2**20,
                              ssl=ssl_context(url))
        conn = ClientConnection(token, auto_subscribe=auto_subscribe, resume_token=resume_token)
        try:
            for text in conn.data_to_send():
                await ws.send(text)
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        data = await ws.recv()
                    except ConnectionClosed as exc:
                        raise JoinError("closed", f"the server closed the connection ({exc.rcvd})") from None
                    if not isinstance(data, str):
                        continue
                    conn.receive_text(data, time.time())
                    for event in conn.events_received():
                        if isinstance(event, Joined):
                            client = cls(ws, conn, event, clock, on_pong)
                            client.start(heartbeat=heartbeat)
                            return client
                        if isinstance(event, Error):
                            raise JoinError(event.code, event.message)
        except BaseException:
            await ws.close()
            raise

    def start(self, *, heartbeat: bool) -> None:
        """Start reading server messages (and pinging every ``ping_interval`` if `heartbeat`); call once."""
        self._tasks.start(self._read(), name="signaling reader")
        if heartbeat:
            self._tasks.start(self._beat(self.joined.ping_interval), name="signaling heartbeat")

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                if not isinstance(text, str):
                    continue
                arrived = self.clock()
                self.last_received = time.monotonic()
                try:
                    self.conn.receive_text(text, time.time())
                except ProtocolError as exc:  # a newer or broken server: skip that message, keep the connection
                    log.warning("signaling: ignored a malformed server message: %s", exc.message)
                    continue
                for event in self.conn.events_received():
                    if isinstance(event, Pong) and event.t0 is not None and self.on_pong:
                        try:
                            self.on_pong(event, arrived)
                        except Exception:
                            log.exception("signaling: the pong handler failed")
                    self.events.put_nowait(event)
                self._arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self.ended.set()
            self._arrived.set()

    async def _beat(self, interval: float) -> None:
        with contextlib.suppress(ConnectionClosed, ConnectionStateError):  # closed, or removed/left
            while True:
                await asyncio.sleep(interval)
                await self.send(Ping(t0=self.clock()))

    async def send(self, msg: ClientMessage) -> None:
        """Send one message."""
        self.conn.send(msg)
        for text in self.conn.data_to_send():
            await self.ws.send(text)

    async def next(self, timeout: float = 5.0) -> ServerMessage:
        """Return the next server message (TimeoutError when none comes)."""
        async with asyncio.timeout(timeout):
            return await self.events.get()

    async def receive(self) -> ServerMessage:
        """Return the next server message; raise SignalClosed once the connection ended and all were read."""
        while self.events.empty():
            if self.ended.is_set():
                raise SignalClosed(self.ws.close_code, self.ws.close_reason or "")
            self._arrived.clear()
            await self._arrived.wait()
        return self.events.get_nowait()

    async def wait_for(self, kind: type[M], timeout: float = 5.0) -> M:
        """Return the next message of type `kind`, skipping others (TimeoutError when none comes)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if isinstance(event, kind):
                    return event

    async def ping(self, timeout: float = 5.0) -> Pong:
        """Send a ping and return its pong."""
        await self.send(Ping(t0=time.time()))
        return await self.wait_for(Pong, timeout)

    async def wait_closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait until the server closes the socket; return its close code and reason."""
        async with asyncio.timeout(timeout):
            await self.ws.wait_closed()
        return self.ws.close_code, self.ws.close_reason or ""

    @property
    def local_address(self) -> str | None:
        """Return the local IP address the websocket's TCP connection is bound to (None: unknown)."""
        transport = getattr(self.ws, "transport", None)
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        return str(sockname[0]) if sockname else None

    def abort(self) -> None:
        """Drop the connection at once, without a close handshake (the link is dead: nothing would arrive)."""
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        """Close the connection (without a `leave`: the server sees a disconnect); stop its tasks."""
        await self._tasks.close()
        await self.ws.close()
