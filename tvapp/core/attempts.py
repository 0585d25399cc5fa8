"""Limits on guessing: how many failed attempts (at an invite or pairing code) a client may make.

The caller asks `retry_after(key, now)` before checking a code, refuses while it is positive, and calls
`record_failure` when the code was wrong. `now` is any monotonic clock in seconds, passed in by the caller.
"""

from collections import OrderedDict, deque


class AttemptLimiter:
    """Counts failures per key (a client address) in a sliding window and says when to refuse."""

    def __init__(self, max_failures: int, window_s: float, max_keys: int = 10_000) -> None:
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        # key -> times at which its recent failures leave the window, oldest first; least recently
        # touched key first. Only the newest max_failures failures can ever decide a refusal.
        self._expiries: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        """Return 0.0 when `key` may make an attempt now, else the seconds until it may."""
        expiries = self._live_expiries(key, now)
        if expiries is None or len(expiries) < self.max_failures:
            return 0.0
        return max(expiries[0] - now, 0.0)

    def record_failure(self, key: str, now: float) -> None:
        """Record a failed attempt by `key` at time `now`."""
        expiries = self._live_expiries(key, now)
        if expiries is None:
            self._drop_stale_keys(now)
            while len(self._expiries) >= self.max_keys:
                self._expiries.popitem(last=False)
            expiries = deque(maxlen=self.max_failures)
            self._expiries[key] = expiries
        expiries.append(now + self.window_s)

    def reset(self, key: str) -> None:
        """Forget every failure of `key`."""
        self._expiries.pop(key, None)

    def __len__(self) -> int:
        """Return how many keys currently have failures remembered."""
        return len(self._expiries)

    def _live_expiries(self, key: str, now: float) -> deque[float] | None:
        expiries = self._expiries.get(key)
        if expiries is None:
            return None
        while expiries and expiries[0] <= now:
            expiries.popleft()
        if not expiries:
            del self._expiries[key]
            return None
        self._expiries.move_to_end(key)
        return expiries

    def _drop_stale_keys(self, now: float) -> None:
        while self._expiries:
            oldest_key, expiries = next(iter(self._expiries.items()))
            if expiries[-1] > now:
                return
            del self._expiries[oldest_key]
