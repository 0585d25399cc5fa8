"""Rate limit on keyframe requests (PLI) that the SFU sends to a publisher: the only keeper of their state.

Every new subscriber and every PLI/FIR from a subscriber asks for a keyframe; the publisher needs
only one per interval. Rules:

- `request(now_ms)` says True when the caller should send a PLI now; otherwise the request is deferred.
- Requests inside the interval are not dropped: they coalesce into one deferred request, which the
  caller sends when `due(now_ms)` says True (poll it at `next_deadline()`).
- `defer()` records a request the caller cannot send yet (it knows no publisher stream to address);
  since nothing was sent before, it is due at once, so the caller sends it at its first chance.
- A PLI that goes (now or deferred) restarts the interval from when it went.

`pending` is True exactly when `next_deadline()` is not None. Time is in milliseconds, from any
monotonic clock the caller reads.
"""

import math


class KeyframeRequestGate:
    """Lets at most one keyframe request through per `min_interval_ms`, deferring (never losing) the rest."""

    def __init__(self, min_interval_ms: float = 300.0) -> None:
        if min_interval_ms < 0:
            raise ValueError(f"min_interval_ms must not be negative, got {min_interval_ms}")
        self.min_interval_ms = min_interval_ms
        self._last_sent: float | None = None
        self._deferred = False

    def request(self, now_ms: float) -> bool:
        """Ask for a keyframe; return True when the caller should send a PLI now, else defer it."""
        if self._may_send(now_ms):
            self._sent(now_ms)
            return True
        self._deferred = True
        return False

    def defer(self) -> None:
        """Record a request the caller cannot send yet; `due()` lets it through at the caller's next chance."""
        self._deferred = True

    def due(self, now_ms: float) -> bool:
        """Return True (once) when a deferred request may be sent now; the caller then sends a PLI."""
        if self._deferred and self._may_send(now_ms):
            self._sent(now_ms)
            return True
        return False

    def next_deadline(self) -> float | None:
        """Return when the deferred request becomes due (-inf: at once), or None when nothing is deferred."""
        if not self._deferred:
            return None
        if self._last_sent is None:
            return -math.inf
        return self._last_sent + self.min_interval_ms

    @property
    def pending(self) -> bool:
        """Tell whether a request is deferred."""
        return self._deferred

    def _may_send(self, now_ms: float) -> bool:
        return self._last_sent is None or now_ms >= self._last_sent + self.min_interval_ms

    def _sent(self, now_ms: float) -> None:
        self._last_sent = now_ms
        self._deferred = False
