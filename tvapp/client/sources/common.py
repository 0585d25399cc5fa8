"""What every local source shares: the clock rates, the error, and pacing frames on the monotonic clock."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable

from aiortc import MediaStreamTrack

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_FRAME_SECONDS = 0.020
FILE_AUDIO_RATE = 48000
# Catching up a backlog longer than this would burst frames; start the schedule afresh instead.
MAX_LAG_SECONDS = 0.5

TrackFactory = Callable[[], MediaStreamTrack]


class SourceError(Exception):
    """A media source cannot be opened or a source spec is invalid; the message names which."""


class Pacer:
    """Schedule frames on the monotonic clock: wait until each is due, never burst after a stall."""

    def __init__(self) -> None:
        self.start: float | None = None
        self._next = 0.0

    async def wait(self, interval: float) -> float:
        """Sleep until the next frame is due; return its offset in seconds from the first frame."""
        now = time.monotonic()
        if self.start is None:
            self.start = self._next = now
        elif self._next > now:
            await asyncio.sleep(self._next - now)
        elif now - self._next > MAX_LAG_SECONDS:
            self._next = now
        due = self._next
        self._next = due + interval
        return due - self.start


async def wait_until(pacer: Pacer, seconds: float) -> None:
    """Sleep until `seconds` after the pacer's start (a late start or a long lag restarts the schedule)."""
    now = time.monotonic()
    if pacer.start is None:
        pacer.start = now - seconds
    due = pacer.start + seconds
    if due > now:
        await asyncio.sleep(due - now)
    elif now - due > MAX_LAG_SECONDS:
        pacer.start = now - seconds
