"""A sender's data budget: token buckets on bytes and on messages, with time as an argument.

Every participant's `send_data` goes through one `DataBudget`. The rules:

- two buckets, one counting bytes and one counting messages; each refills at its rate per second up to its
  burst, and starts full;
- a message is sent when both buckets hold enough for it (its size in bytes, and one message); then both are
  charged. Otherwise it is dropped and nothing is charged, so a flood costs the flooder only what gets through;
- a rate of 0 means no limit on that bucket;
- the sender is told about drops (`DataVerdict.DROP_AND_TELL`) at most once per `notify_interval` seconds: one
  flood gets a handful of errors, not one per dropped message, so the errors themselves cannot flood it.

Clock jumps backwards refill nothing (the last time seen is kept).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NOTIFY_INTERVAL = 1.0


class DataVerdict(enum.Enum):
    """What to do with one data message."""

    SEND = "send"
    DROP_AND_TELL = "drop_and_tell"  # dropped; tell the sender (data_rate_limited)
    DROP = "drop"                    # dropped; the sender was told moments ago


@dataclass
class Bucket:
    """A token bucket: `rate` tokens per second, at most `burst`, starting full (rate 0: unlimited)."""

    rate: float
    burst: float
    level: float = field(init=False)
    at: float | None = None

    def __post_init__(self) -> None:
        if self.rate < 0 or self.burst < 0:
            raise ValueError("a bucket's rate and burst must not be negative")
        self.level = self.burst

    def refill(self, now: float) -> None:
        """Add what the rate earned since the last look (never past the burst)."""
        if self.at is not None and now > self.at:
            self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        if self.at is None or now > self.at:
            self.at = now

    def holds(self, amount: float) -> bool:
        """Tell whether `amount` tokens can be taken now (always, when unlimited)."""
        return self.rate == 0 or self.level >= amount

    def take(self, amount: float) -> None:
        """Take `amount` tokens (call after `holds`)."""
        if self.rate != 0:
            self.level -= amount


@dataclass
class DataBudget:
    """One sender's budget for data messages (see the module's rules)."""

    bytes: Bucket
    messages: Bucket
    notify_interval: float = NOTIFY_INTERVAL
    dropped: int = 0
    _told_at: float | None = None

    @classmethod
    def of(cls, *, rate_bytes: float, burst_bytes: float, rate_messages: float, burst_messages: float,
           notify_interval: float = NOTIFY_INTERVAL) -> DataBudget:
        """Return a full budget with these rates (per second) and bursts."""
        if rate_bytes and burst_bytes <= 0 or rate_messages and burst_messages < 1:
            raise ValueError("a limited bucket needs a burst of at least one message and one byte")
        return cls(Bucket(rate_bytes, burst_bytes), Bucket(rate_messages, burst_messages), notify_interval)

    def take(self, size: int, now: float) -> DataVerdict:
        """Decide on one message of `size` bytes sent at `now`; charge the budget when it is sent."""
        self.bytes.refill(now)
        self.messages.refill(now)
        if self.bytes.holds(size) and self.messages.holds(1):
            self.bytes.take(size)
            self.messages.take(1)
            return DataVerdict.SEND
        self.dropped += 1
        if self._told_at is None or now - self._told_at >= self.notify_interval or now < self._told_at:
            self._told_at = now
            return DataVerdict.DROP_AND_TELL
        return DataVerdict.DROP
