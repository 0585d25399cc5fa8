"""Recording what an SDK ``Room`` emits, with a way to wait for an event instead of sleeping.

``Recorder(room)`` subscribes to every ``RoomEvent`` as soon as it is made; ``await recorder.wait(TrackSubscribed)``
returns the first matching event whether it came before the call or comes later, and fails after a timeout.
``join_recorded(server, room, identity)`` joins a room with a Recorder attached from the start, and
``async with disconnecting(*rooms):`` leaves them all at the end of the block, whatever happened in it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

from tvapp.client import Room, RoomEvent
from tvapp.testing.server import ServerProcess

E = TypeVar("E", bound=RoomEvent)


class Recorder:
    """Every event a room emits after it is attached, with a way to wait for one."""

    def __init__(self, room: Room) -> None:
        self.seen: list[RoomEvent] = []
        self._new = asyncio.Event()
        room.on(RoomEvent, self._add)

    def _add(self, event: RoomEvent) -> None:
        self.seen.append(event)
        self._new.set()

    def of(self, cls: type[E]) -> list[E]:
        """Return the recorded events of type `cls`, oldest first."""
        return [e for e in self.seen if isinstance(e, cls)]

    async def wait(self, cls: type[E], predicate: Callable[[E], bool] = lambda e: True, timeout: float = 10.0) -> E:
        """Return the first recorded event (past or future) of `cls` matching `predicate`."""
        index = 0
        async with asyncio.timeout(timeout):
            while True:
                while index < len(self.seen):
                    event = self.seen[index]
                    index += 1
                    if isinstance(event, cls) and predicate(event):
                        return event
                self._new.clear()
                await self._new.wait()


async def join_recorded(server: ServerProcess, room: str, identity: str,
                        host_addresses: Sequence[str] = ("127.0.0.1",)) -> tuple[Room, Recorder]:
    """Join `room` on `server` as `identity` (media on `host_addresses`); return the room and its Recorder."""
    pair = server.token(room, identity)
    joined = await Room.connect(server.url, pair["access_token"], host_addresses=list(host_addresses))
    return joined, Recorder(joined)


@contextlib.asynccontextmanager
async def disconnecting(*rooms: Room) -> AsyncIterator[None]:
    """Disconnect every one of `rooms` when the block ends, however it ends (their own errors ignored)."""
    try:
        yield
    finally:
        for room in rooms:
            with contextlib.suppress(Exception):
                await room.disconnect()
