"""Waiting on a condition instead of sleeping and hoping: poll a check until it holds or a deadline passes.

Use these where no event or condition variable exists to wait on (a server's state seen over HTTP, a value another
thread sets). ``wait_until`` blocks the calling thread; ``wait_until_async`` yields to the event loop between checks.
Both return the check's first truthy value and fail with AssertionError naming `what` (a text, or a function making
one, e.g. to show the last value seen) after `timeout` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
What = str | Callable[[], str]


def timed_out(timeout: float, what: What) -> AssertionError:
    """Return the error for a wait on `what` that gave up after `timeout` seconds."""
    return AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


def wait_until(check: Callable[[], T], timeout: float = 10.0, what: What = "condition",
               interval: float = 0.01) -> T:
    """Call `check` every `interval` seconds until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise timed_out(timeout, what)
        time.sleep(interval)


async def wait_until_async(check: Callable[[], T], timeout: float = 10.0, what: What = "condition",
                           interval: float = 0.02) -> T:
    """Like wait_until, but sleep on the running event loop between checks so other tasks make progress."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise timed_out(timeout, what)
        await asyncio.sleep(interval)
