"""Rate limit on keyframe requests (PLI) that the SFU sends to a publisher.

Every new subscriber and every PLI/FIR from a subscriber asks for a keyframe; the publisher needs
only one per interval. The caller asks `request(now_ms)` and sends a PLI when it says True. A
request inside the interval is not dropped: it is coalesced into one deferred request, which the
caller sends when `due(now_ms)` says True (poll it at `next_deadline()`). Time is in milliseconds,
from any monotonic clock the caller reads.
"""


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

    def due(self, now_ms: float) -> bool:
        """Return True (once) when a deferred request may be sent now; the caller then sends a PLI."""
        if self._deferred and self._may_send(now_ms):
            self._sent(now_ms)
            return True
        return False

    def next_deadline(self) -> float | None:
        """Return when the deferred request becomes due, or None when nothing is deferred."""
        if not self._deferred or self._last_sent is None:
            return None
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
