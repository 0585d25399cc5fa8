"""A guest in a TV's room for tests: an SDK participant on its own asyncio thread that redeems the TV's invite.

The TV tests that check what a screen sends (tests/test_echo_tv.py, tests/test_tv_camera.py) each need a person in
the room: joined through the invite the TV shows, reading the TV's tracks (identities starting with "tv-") as they
come, and polled from the test's own thread. `TvGuest` is that person; a test's subclass says which tracks it
`wants()`, what `read()` does with their frames, and may note more events in `on_event()`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from tvapp.client import events as ev
from tvapp.client.rest import RestClient
from tvapp.client.room import Room

T = TypeVar("T")


class TvGuest:
    """An SDK participant in a TV's room on its own asyncio thread, reading the tracks of the TV it `wants()`."""

    def __init__(self, who: str, *, identity: str, name: str) -> None:
        self.who = who  # how failures name it: "the {who} never saw ..."
        self.identity, self.name = identity, name  # what it redeems the invite as
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.room: Room | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run `coro` on the guest's loop and return its result (TimeoutError after `timeout` seconds)."""
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop).result(timeout + 5)

    async def join(self, server: str, invite: str) -> Room:
        """Redeem `invite`, join the room and start reading the TV's tracks already there."""
        pair = await RestClient(server).redeem_invite(invite, self.identity, name=self.name)
        self.room = room = await Room.connect(server, pair.access_token, refresh_token=pair.refresh_token)
        room.on(ev.RoomEvent, self.on_event)
        for participant in room.participants.values():
            for pub in participant.tracks.values():
                if pub.track is not None:
                    self._consume(participant.identity, pub.track)
        return room

    def on_event(self, event: ev.RoomEvent) -> None:
        """Start reading each TV track subscribed to (a subclass notes more, then calls this)."""
        if isinstance(event, ev.TrackSubscribed):
            self._consume(event.participant.identity, event.track)

    def wants(self, track: Any) -> bool:
        """Return whether to read this track of the TV's (all of them unless a subclass says otherwise)."""
        return True

    async def read(self, track: Any) -> None:
        """Read a TV track's frames until the guest leaves (a subclass notes what it needs of them)."""
        raise NotImplementedError

    def _consume(self, identity: str, track: Any) -> None:
        if identity.startswith("tv-") and self.wants(track):
            self._tasks.append(self.loop.create_task(self.read(track)))

    def wait(self, check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
        """Wait until `check()` is true; fail naming `what` the guest never saw after `timeout` seconds."""
        async def poll() -> None:
            while not check():
                await asyncio.sleep(0.05)
        try:
            self.run(poll(), timeout)
        except TimeoutError:
            raise AssertionError(f"the {self.who} never saw {what}") from None

    def close(self) -> None:
        """Stop reading, leave the room and stop the guest's loop."""
        async def leave() -> None:
            for task in self._tasks:
                task.cancel()
            if self.room is not None:
                await self.room.disconnect()
        try:
            self.run(leave(), 15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
