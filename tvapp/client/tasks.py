"""`TaskSet`: the owner of asyncio tasks whose lifetime is an object's, not one function's.

`asyncio.TaskGroup` owns the tasks of one `async with` block. A Room, a signaling connection or a peer connection
lives longer than any block: it is created by one call and ended by another. Such an object keeps its tasks in a
TaskSet, starts them with `start()` (never in ``__init__``) and, when it ends, calls ``await tasks.close()``,
which cancels every task and waits for them to finish. A task that fails is logged, never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class TaskSet:
    """Tasks owned by one object: started with `start`, all cancelled and awaited by `close`."""

    def __init__(self, owner: str, logger: logging.Logger | None = None) -> None:
        self.owner = owner
        self._log = logger or log
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        """Return whether `close` was called (no task starts afterwards)."""
        return self._closed

    def start(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run `coro` as a task owned by this set; call on the event loop. RuntimeError once the set is closed."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.owner}: its tasks are closed")
        task = asyncio.get_running_loop().create_task(coro, name=name or self.owner)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def wait(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the tasks (except the calling one) to finish by themselves."""
        others = [task for task in self._tasks if task is not asyncio.current_task()]
        if others:
            await asyncio.wait(others, timeout=timeout)

    async def close(self) -> None:
        """Cancel every task (except the calling one, which is left to end by itself) and wait until they ended."""
        self._closed = True
        current = asyncio.current_task()
        others = [task for task in self._tasks if task is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others)  # their errors are logged by _done; our own cancellation propagates

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._log.error("%s: task %s failed", self.owner, task.get_name(), exc_info=error)
