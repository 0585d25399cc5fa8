"""Running a test's coroutine: one fresh event loop per test, always under an overall deadline.

Tests are plain functions that call ``run(main())``; a hung await fails the test with ``TimeoutError`` after the
deadline instead of hanging the suite. A test file whose coroutines need another default binds its own runner once:
``run = runner(deadline=30)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

DEFAULT_DEADLINE = 60.0


class Runner(Protocol):
    """The shape of ``run``: a coroutine and an optional deadline in seconds."""

    def __call__(self, coro: Coroutine[Any, Any, None], deadline: float = ...) -> None: ...


def run(coro: Coroutine[Any, Any, None], deadline: float = DEFAULT_DEADLINE) -> None:
    """Run `coro` on a fresh event loop; fail with TimeoutError when it takes longer than `deadline` seconds."""
    asyncio.run(asyncio.wait_for(coro, deadline))


def runner(deadline: float) -> Runner:
    """Return a ``run`` whose default deadline is `deadline` seconds."""

    def run_with_deadline(coro: Coroutine[Any, Any, None], deadline: float = deadline) -> None:
        run(coro, deadline)

    return run_with_deadline


__all__: list[str] = ["DEFAULT_DEADLINE", "Runner", "run", "runner"]
