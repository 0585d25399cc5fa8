"""Fake clocks for time-driven logic: the test moves time by hand, so nothing sleeps and nothing is patched.

Pass a ``FakeClock`` wherever the code under test takes a ``clock`` callable (``RemoteEndpoints(clock=...)``, the
pure rules that take ``now`` as an argument); call ``advance`` to let time pass.
"""

from __future__ import annotations

import time


class FakeClock:
    """A wall-clock stand-in that returns the same time until the test advances it."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        """Return the current fake time in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the fake time forward by `seconds`."""
        self.now += seconds
