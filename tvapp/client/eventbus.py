"""A Room's event bus: callbacks (`on`), async iterators (`events`) and one-shot waits (`wait_for`).

`emit(event)` calls every matching callback at once, in registration order; a callback that returns an awaitable
(a coroutine function) runs as a task the bus owns. A callback's exception is logged and never reaches the room.
The first `events()` iterator also gets the events emitted since the room connected (up to `EVENT_BACKLOG`), if it
starts within `BACKLOG_SECONDS` of the connect: the backlog is for the moment between `Room.connect` returning and
the application's first `events()`, and is let go after it, so that a room whose events nobody iterates (a TV uses
callbacks) does not keep ended tracks and their unread frames alive.
When the room ends, `end()` finishes every iterator after the last event, and `close()` gives the coroutine
callbacks still running `CALLBACK_GRACE` seconds to finish, then cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from tvapp.client import events as ev
from tvapp.client.tasks import TaskSet

E = TypeVar("E", bound=ev.RoomEvent)

EVENT_BACKLOG = 1000
BACKLOG_SECONDS = 5.0
CALLBACK_GRACE = 2.0


class EventBus:
    """Deliver room events to callbacks and iterators; own the tasks of coroutine callbacks."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._handlers: list[tuple[type[ev.RoomEvent], Callable[[Any], Any]]] = []
        self._queues: list[asyncio.Queue[ev.RoomEvent | None]] = []
        self._backlog: deque[ev.RoomEvent] | None = deque(maxlen=EVENT_BACKLOG)
        self._callbacks = TaskSet("room event callback", logger)
        self._ended = False
        self._backlog_timer: asyncio.TimerHandle | None = None

    def connected(self) -> None:
        """Start the backlog's clock: it is let go `BACKLOG_SECONDS` from now unless `events()` took it before."""
        if self._backlog is not None and self._backlog_timer is None:
            self._backlog_timer = asyncio.get_running_loop().call_later(BACKLOG_SECONDS, self._drop_backlog)

    def _drop_backlog(self) -> None:
        self._backlog = None

    def on(self, event: str | type[E], callback: Callable[[E], Any]) -> Callable[[], None]:
        """Call `callback(event)` for every event of this type; return a function that removes the callback."""
        entry = (ev.event_type(event), callback)
        self._handlers.append(entry)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._handlers.remove(entry)

        return remove

    async def events(self) -> AsyncIterator[ev.RoomEvent]:
        """Yield every event from now on (the first caller also gets the backlog) until the bus ends."""
        queue: asyncio.Queue[ev.RoomEvent | None] = asyncio.Queue()
        if self._backlog is not None:
            for past in self._backlog:
                queue.put_nowait(past)
            self._backlog = None
        if self._ended:
            queue.put_nowait(None)
        self._queues.append(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
                if isinstance(event, ev.Disconnected):
                    return
        finally:
            with contextlib.suppress(ValueError):
                self._queues.remove(queue)

    async def wait_for(self, event: str | type[E], predicate: Callable[[E], bool] | None = None, *,
                       timeout: float = 10.0) -> E:
        """Return the next event of this type (matching `predicate`); TimeoutError if none comes in time."""
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()

        def check(e: E) -> None:
            if not future.done() and (predicate is None or predicate(e)):
                future.set_result(e)

        remove = self.on(event, check)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            remove()

    def emit(self, event: ev.RoomEvent) -> None:
        """Deliver `event` to the callbacks and the iterators; call on the event loop."""
        for cls, callback in list(self._handlers):
            if not isinstance(event, cls):
                continue
            try:
                result = callback(event)
            except Exception:
                self._log.exception("room: a %s callback failed", event.NAME)
                continue
            if inspect.isawaitable(result):
                if self._callbacks.closed:
                    self._log.warning("room: a %s callback came after the room ended; not run", event.NAME)
                    with contextlib.suppress(Exception):
                        result.close()  # type: ignore[attr-defined]
                    continue
                self._callbacks.start(_awaited(result), name=f"room {event.NAME} callback")
        if self._backlog is not None:
            self._backlog.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def end(self) -> None:
        """Finish every iterator after the events already emitted (the room has ended)."""
        self._ended = True
        for queue in self._queues:
            queue.put_nowait(None)

    async def close(self, grace: float = CALLBACK_GRACE) -> None:
        """Give running coroutine callbacks `grace` seconds, then cancel those still running and wait for them."""
        if self._backlog_timer is not None:
            self._backlog_timer.cancel()
        self._backlog = None
        await self._callbacks.wait(grace)
        await self._callbacks.close()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
