"""Group commit for the asyncio server: store writes run on one background thread, many per transaction.

The event loop never waits on fsync (on a Raspberry Pi SD card one takes ~20 ms). ``call(op)`` queues
``op(store)``; the writer thread takes everything queued, runs each op inside its own SAVEPOINT of one
transaction, COMMITs once, and only then settles the callers' futures. An op that raises is rolled back
alone and its exception goes to its caller only. Reads belong on a separate ``Store`` on the loop thread.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tvapp.server.store import Store, StoreError

T = TypeVar("T")

# Bounds how long one transaction holds the write lock when the queue is long.
_MAX_BATCH = 256


@dataclass(slots=True)
class _Job:
    op: Callable[[Store], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    seq: int = 0


def _settle(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(value)
    else:
        future.set_exception(exc)


def _nothing(store: Store) -> None:
    """Do nothing: a marker op that `settled()` waits for."""


def _deliver(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any, exc: BaseException | None
) -> None:
    try:
        loop.call_soon_threadsafe(_settle, future, value, exc)
    except RuntimeError:
        pass  # the loop is closed: nobody is waiting any more


class StoreWriter:
    """Runs write operations on one background thread; batches all that are queued into one transaction."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closing = False
        # Guards "accept a job" against "the thread is gone": no job is queued after the final drain.
        self._accepting = threading.Lock()
        self._dead = False
        self._commits = 0
        self._queued = 0  # sequence number of the last op queued (loop thread)
        self._finished = 0  # of the last op committed or failed (writer thread)

    @property
    def commits(self) -> int:
        """Return how many transactions the writer has committed."""
        return self._commits

    async def start(self) -> None:
        """Open the store on the writer thread; raise StoreError if it cannot be opened."""
        if self._thread is not None:
            raise StoreError("store writer already started")
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(loop, opened, self._stopped), name="tvapp-store-writer", daemon=True
        )
        self._thread.start()
        try:
            await opened
        except BaseException:
            self._closing = True
            raise

    async def call(self, op: Callable[[Store], T]) -> T:
        """Run op(store) on the writer thread; return its result once the COMMIT holding it is durable.

        op's exception is raised here (its writes rolled back), and to no other caller. Once queued,
        op runs even if this caller is cancelled.
        """
        return await self.submit(op)

    def submit(self, op: Callable[[Store], T]) -> asyncio.Future[T]:
        """Queue op(store) now (in call order with every other op) and return the future of its result."""
        if self._thread is None or self._closing:
            raise StoreError("store writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._accepting:
            if self._dead:
                raise StoreError("store writer thread has stopped")
            self._queued += 1
            self._queue.put(_Job(op, loop, future, self._queued))
        return future

    async def settled(self) -> None:
        """Wait until every op queued before this call is committed (or failed): a read after it sees them all.

        Free when nothing is outstanding; otherwise it queues a no-op behind them and waits for it (the REST
        edge calls this first, so an answer never shows the store older than the live rooms it reads).
        """
        if self._finished >= self._queued:
            return
        try:
            await asyncio.shield(self.submit(_nothing))
        except StoreError:
            return  # the writer stopped or its commit failed: nothing more will be committed

    async def close(self) -> None:
        """Finish the queued ops, close the connection and join the thread."""
        if self._thread is None or self._stopped is None:
            return
        if not self._closing:
            self._closing = True
            self._queue.put(None)
        await asyncio.shield(self._stopped)
        self._thread.join()

    def _run(
        self, loop: asyncio.AbstractEventLoop, opened: asyncio.Future[None], stopped: asyncio.Future[None]
    ) -> None:
        try:
            store = Store(self._path)
        except BaseException as exc:
            with self._accepting:
                self._dead = True
            _deliver(loop, opened, None, exc)
            _deliver(loop, stopped, None, None)
            return
        _deliver(loop, opened, None, None)
        try:
            self._serve(store)
        finally:
            with self._accepting:
                self._dead = True
            self._fail_queued()
            store.close()
            _deliver(loop, stopped, None, None)

    def _serve(self, store: Store) -> None:
        while True:
            jobs, stop = self._take_batch()
            if jobs:
                try:
                    self._commit(store, jobs)
                except BaseException as exc:
                    for job in jobs:
                        _deliver(job.loop, job.future, None, StoreError(f"store writer stopped: {exc!r}"))
                    raise
            if stop:
                return

    def _take_batch(self) -> tuple[list[_Job], bool]:
        item = self._queue.get()
        jobs: list[_Job] = []
        while True:
            if item is None:
                return jobs, True
            jobs.append(item)
            if len(jobs) >= _MAX_BATCH:
                return jobs, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return jobs, False

    def _commit(self, store: Store, jobs: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            with store.batch():
                for job in jobs:
                    try:
                        with store.batch():
                            value = job.op(store)
                    except Exception as exc:
                        outcomes.append((job, None, exc))
                    else:
                        outcomes.append((job, value, None))
        except Exception as exc:
            outcomes = [(job, None, self._commit_failed(exc)) for job in jobs]
        else:
            self._commits += 1
        self._finished = jobs[-1].seq
        for job, value, error in outcomes:
            _deliver(job.loop, job.future, value, error)

    @staticmethod
    def _commit_failed(cause: Exception) -> StoreError:
        error = StoreError(f"the transaction holding this operation failed: {cause}")
        error.__cause__ = cause
        return error

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                _deliver(item.loop, item.future, None, StoreError("store writer is closed"))
