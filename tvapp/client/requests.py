"""A Room's request channel: send messages, wait for the answer to a call, and the one pinger.

Calls that need a reply (publish, mute, subscribe, playback commands...) go through `request(msg)`: it sends the
message and then ``Ping(id=...)`` behind it. The server handles a connection's messages in order and echoes the
ping's id in its pong, so an ``error`` that arrives before the pong with that id is that call's error
(`RequestError`), and the pong itself says the call succeeded. One call is in flight at a time.

The pinger: while attached to a signaling connection the channel pings for clock sync (`RoomClock.next_ping_in`:
a burst after joining, then once a second) and never less often than the server's ``ping_interval`` (from
``joined``), so the same pings keep the connection inside the server's idle timeout. A Room runs no other pinger.
Clock pings carry ``t0``; call pings carry only an ``id``, so the two never mix.

`RoomLink` is what participants and publications see of their room: `send`, `request` and the connection state.
The channel implements it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Literal, Protocol

from websockets.exceptions import ConnectionClosed

from tvapp.client.clock import RoomClock
from tvapp.client.signaling import SignalClient
from tvapp.client.tasks import TaskSet
from tvapp.protocol import messages as m
from tvapp.protocol.signaling import ConnectionStateError

log = logging.getLogger(__name__)

ConnectionState = Literal["connected", "reconnecting", "disconnected"]

REQUEST_TIMEOUT = 10.0

# Errors that answer what is sent without waiting (media_restart, answer, candidate, data) or come unprompted: never
# a call's answer, even when they arrive while one is in flight (the Room handles them; a call is not failed by them).
NOT_A_CALL_ANSWER = frozenset({"media_restart_too_soon", "bad_answer", "no_offer", "invalid_candidate",
                               "too_many_candidates", "media_failed", "data_rate_limited"})


class RequestError(Exception):
    """The server refused a call (publish, mute, subscribe...); ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RoomLink(Protocol):
    """What the people and tracks of a room may ask of it: send, call, and whether it is connected."""

    @property
    def connection_state(self) -> ConnectionState:
        """Return whether the room is connected, reconnecting or gone."""

    async def send(self, msg: m.ClientMessage) -> None:
        """Send `msg` (waiting through a reconnect); ConnectionError when the room is not connected."""

    async def request(self, msg: m.ClientMessage) -> None:
        """Send `msg` and wait for the server's answer; RequestError if it refused."""


class _PendingCall:
    """A call in flight: the errors the server sent before the pong with ``ping_id``."""

    def __init__(self, ping_id: str) -> None:
        self.ping_id = ping_id
        self.errors: list[m.Error] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish(self, error: m.Error | None = None) -> None:
        """End the call (with `error` added to its errors, if given)."""
        if error is not None:
            self.errors.append(error)
        if not self.done.done():
            self.done.set_result(None)


class RequestChannel:
    """Send and call over the current signaling connection; ping it for clock sync and keep-alive."""

    def __init__(self, clock: RoomClock, *, reconnect_window: float, timeout: float = REQUEST_TIMEOUT) -> None:
        self.clock = clock
        self.reconnect_window = reconnect_window
        self.timeout = timeout
        self._state: ConnectionState = "connected"
        self._signal: SignalClient | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pending: _PendingCall | None = None
        self._ids = (f"rq{n}" for n in itertools.count(1))
        self._pinger: TaskSet | None = None

    @property
    def connection_state(self) -> ConnectionState:
        """Return whether the room is connected, reconnecting or gone."""
        return self._state

    # -- the connection ----------------------------------------------------------------------------------------------

    async def attach(self, signal: SignalClient) -> None:
        """Use `signal` from now on (after a join): calls go over it and the pinger pings it."""
        if self._pinger is not None:
            await self._pinger.close()
        self._signal = signal
        self._state = "connected"
        self._ready.set()
        self._pinger = TaskSet("room pinger", log)
        self._pinger.start(self._ping(signal, signal.joined.ping_interval), name="room pinger")

    async def detach(self, state: Literal["reconnecting", "disconnected"]) -> None:
        """Stop using the current connection: the pinger stops, a call in flight fails with ``disconnected``."""
        self._state = state
        if state == "reconnecting":
            self._ready.clear()
        else:
            self._ready.set()  # wake the callers waiting through a reconnect: they fail now
        self._signal = None
        if self._pending is not None:
            self._pending.finish(m.Error(code="disconnected", message="the connection dropped"))
        pinger, self._pinger = self._pinger, None
        if pinger is not None:
            await pinger.close()

    # -- RoomLink ------------------------------------------------------------------------------------------------

    async def send(self, msg: m.ClientMessage) -> None:
        """Send `msg` (waiting through a reconnect); ConnectionError when the room is not connected."""
        signal = await self._live()
        await signal.send(msg)

    async def request(self, msg: m.ClientMessage) -> None:
        """Send `msg` and a ping behind it; RequestError if the server sent an error before the pong."""
        async with self._lock:
            signal = await self._live()
            call = _PendingCall(next(self._ids))
            self._pending = call
            try:
                await signal.send(msg)
                await signal.send(m.Ping(id=call.ping_id))
                async with asyncio.timeout(self.timeout):
                    await call.done
            finally:
                self._pending = None
        if call.errors:
            raise RequestError(call.errors[0].code, call.errors[0].message)

    # -- what the server says ----------------------------------------------------------------------------------------

    def take(self, msg: m.ServerMessage) -> bool:
        """Return True if `msg` answers the call in flight (its error, or its pong); call in arrival order."""
        call = self._pending
        if isinstance(msg, m.Pong):
            if call is not None and msg.id is not None and msg.id == call.ping_id:
                call.finish()
            return True  # a pong says nothing else: clock samples are taken as they arrive (on_pong)
        if isinstance(msg, m.Error) and call is not None and not call.done.done() and msg.code not in NOT_A_CALL_ANSWER:
            call.errors.append(msg)
            return True
        return False

    def on_pong(self, pong: m.Pong, arrived: float) -> None:
        """Take a clock sample from a pong to a clock ping (`arrived`: the local clock when its text came in)."""
        if pong.t0 is not None:
            self.clock.add_exchange(pong.t0, pong.t1, pong.t2, arrived)

    # -- inside --------------------------------------------------------------------------------------------------

    async def _live(self) -> SignalClient:
        if self._state == "reconnecting":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.reconnect_window):
                    await self._ready.wait()
        signal = self._signal
        if self._state != "connected" or signal is None:
            raise ConnectionError("the room is not connected")
        return signal

    async def _ping(self, signal: SignalClient, keepalive: float) -> None:
        """Ping for clock sync (a burst, then steadily), at least every `keepalive` seconds, until the link ends."""
        with contextlib.suppress(ConnectionClosed, ConnectionStateError, OSError):
            while True:
                await asyncio.sleep(min(self.clock.next_ping_in(), keepalive))
                await signal.send(m.Ping(t0=self.clock.local()))
