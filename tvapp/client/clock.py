"""The room's clock as a client sees it: local clock readings turned into the server's time.

`RoomClock` feeds every ping/pong exchange on the signaling connection into tvapp.core.clocksync.ClockSync and
answers "what time is it on the server" for the content player, which places every screen on the room's shared
timeline with it. The Room pings in a quick burst after each (re)connection and then once a second
(`ClockSync.next_ping_in`).

Fault injection for tests and benchmarks: `TVAPP_CLOCK_FAULT="+3.7s,100ppm"` makes this client's local clock run
3.7 s ahead of the machine's and drift 100 ppm fast. Only the clock used for sync is affected, which is what a box
with a wrong, drifting clock looks like to the sync algorithm; the estimate must correct it.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable

from tvapp.core.clocksync import ClockEstimate, ClockSync

FAULT_ENV = "TVAPP_CLOCK_FAULT"
_FAULT_RE = re.compile(r"\s*(?P<offset>[+-]?\d+(?:\.\d+)?)\s*s?\s*(?:,\s*(?P<ppm>[+-]?\d+(?:\.\d+)?)\s*ppm)?\s*")


def faulty_clock(spec: str, base: Callable[[], float] = time.time) -> Callable[[], float]:
    """Return a clock `spec` ("+3.7s,100ppm": offset seconds, optional drift) away from `base`; ValueError if bad."""
    match = _FAULT_RE.fullmatch(spec)
    if match is None:
        raise ValueError(f"{FAULT_ENV} must look like '+3.7s' or '+3.7s,100ppm', got {spec!r}")
    offset = float(match["offset"])
    rate = 1.0 + float(match["ppm"] or 0.0) * 1e-6
    origin = base()

    def clock() -> float:
        now = base()
        return origin + (now - origin) * rate + offset

    return clock


def local_clock() -> Callable[[], float]:
    """Return this process's clock for sync: time.time, or the faulty one that TVAPP_CLOCK_FAULT asks for."""
    spec = os.environ.get(FAULT_ENV, "").strip()
    return faulty_clock(spec) if spec else time.time


class RoomClock:
    """The server's clock, estimated from ping/pong exchanges; read it from any thread."""

    def __init__(self, local: Callable[[], float] | None = None) -> None:
        self.local: Callable[[], float] = local or local_clock()
        self._sync = ClockSync()
        self._estimate: ClockEstimate | None = None
        self._synced = asyncio.Event() if _has_loop() else None

    @property
    def estimate(self) -> ClockEstimate | None:
        """Return the current estimate (offset, skew, best round trip), or None before the first exchange."""
        return self._estimate

    def add_exchange(self, t0: float, t1: float, t2: float, t3: float) -> None:
        """Take one exchange: local send t0, server receive t1 and send t2, local receive t3."""
        estimate = self._sync.add(t0, t1, t2, t3)
        self._estimate = estimate  # one reference assignment: readers on other threads see old or new, never half
        if estimate is not None and self._synced is not None:
            self._synced.set()

    def next_ping_in(self) -> float:
        """Return how long to wait before the next exchange."""
        return self._sync.next_ping_in()

    def now(self) -> float | None:
        """Return the server's clock now, or None before the first exchange."""
        estimate = self._estimate
        return None if estimate is None else estimate.server_time(self.local())

    def server_time(self, local: float) -> float | None:
        """Return the server's clock at local reading `local`, or None before the first exchange."""
        estimate = self._estimate
        return None if estimate is None else estimate.server_time(local)

    def local_time(self, server: float) -> float | None:
        """Return the local reading when the server's clock reads `server`, or None before the first exchange."""
        estimate = self._estimate
        return None if estimate is None else estimate.local_time(server)

    async def wait_synced(self, timeout: float = 10.0) -> ClockEstimate:
        """Wait for the first estimate (TimeoutError after `timeout` seconds)."""
        if self._synced is None:
            self._synced = asyncio.Event()
            if self._estimate is not None:
                self._synced.set()
        async with asyncio.timeout(timeout):
            await self._synced.wait()
        assert self._estimate is not None
        return self._estimate


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
