"""Webhook rules, pure: event names and payload shapes, the callback-URL rule, the retry schedule and the order.

The server (tvapp.server.webhooks) keeps a durable queue and sends; what it sends and when comes from here.
Time is an argument everywhere (seconds since the epoch); nothing here does I/O.

Order: one room's deliveries go out in the order they were enqueued (per room and destination URL): the head
of a room's queue blocks that room's later events until it is delivered or given up, never another room's.
Retry: after the n-th failed attempt the next one waits ``min(base * 2 ** (n - 1), max_delay)``; after
``max_attempts`` failed attempts the delivery is given up (dropped from the queue, logged).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

ROOM_STARTED = "room_started"
ROOM_FINISHED = "room_finished"
PARTICIPANT_JOINED = "participant_joined"
PARTICIPANT_LEFT = "participant_left"
PARTICIPANT_RECONNECTING = "participant_reconnecting"
PARTICIPANT_RECONNECTED = "participant_reconnected"
TRACK_PUBLISHED = "track_published"
TRACK_UNPUBLISHED = "track_unpublished"
RECORDING_STARTED = "recording_started"
RECORDING_COMPLETED = "recording_completed"
RECORDING_FAILED = "recording_failed"
COMPOSITION_COMPLETED = "composition_completed"
COMPOSITION_FAILED = "composition_failed"

# Which payload keys (besides id, event, created_at, room) each event carries.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    ROOM_STARTED: (),
    ROOM_FINISHED: ("reason",),
    PARTICIPANT_JOINED: ("participant",),
    PARTICIPANT_LEFT: ("participant", "reason"),
    PARTICIPANT_RECONNECTING: ("participant",),
    PARTICIPANT_RECONNECTED: ("participant",),
    TRACK_PUBLISHED: ("participant", "track"),
    TRACK_UNPUBLISHED: ("participant", "track"),
    RECORDING_STARTED: ("recording",),
    RECORDING_COMPLETED: ("recording",),
    RECORDING_FAILED: ("recording", "reason"),
    COMPOSITION_COMPLETED: ("composition",),
    COMPOSITION_FAILED: ("composition", "reason"),
}
EVENTS: tuple[str, ...] = tuple(EVENT_FIELDS)

# The shapes of the objects the other parts pass to emit (keys as the REST API names them; extra keys pass through):
PARTICIPANT_KEYS = ("sid", "identity", "name", "joined_at")
TRACK_KEYS = ("sid", "kind", "source", "name", "muted")
RECORDING_KEYS = ("sid", "room_sid", "participant", "track", "type", "codec", "container", "status", "offset",
                  "duration", "size", "created_at", "completed_at")
COMPOSITION_KEYS = ("sid", "room_sid", "layout", "format", "resolution", "status", "duration", "size",
                    "created_at", "completed_at")

MAX_CALLBACK_URL = 2048


class CallbackError(ValueError):
    """A status_callback / [webhooks] url is not acceptable; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_callback_url(url: str, *, allow_private: bool = True) -> str:
    """Return `url` when it is an http(s) URL without credentials, within the length limit; else raise."""
    if not isinstance(url, str) or not url:
        raise CallbackError("invalid_callback", "the callback URL is empty")
    if len(url) > MAX_CALLBACK_URL:
        raise CallbackError("invalid_callback", f"the callback URL is longer than {MAX_CALLBACK_URL} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise CallbackError("invalid_callback", "the callback URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CallbackError("invalid_callback", "the callback URL cannot be parsed") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackError("invalid_callback", "the callback URL must be http or https")
    if "@" in parts.netloc:
        raise CallbackError("invalid_callback", "the callback URL must not carry credentials")
    host = parts.hostname
    if not host:
        raise CallbackError("invalid_callback", "the callback URL has no host")
    if port == 0:
        raise CallbackError("invalid_callback", "the callback URL has port 0")
    if not allow_private:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if host == "localhost" or (address is not None and not address.is_global):
            raise CallbackError("callback_not_allowed", "the callback URL points at a private or local address")
    return url


def event_payload(event: str, event_id: str, created_at: float, room: dict[str, object],
                  **parts: object) -> dict[str, object]:
    """Return the JSON body of one event; raise ValueError for an unknown event or a missing/extra part."""
    expected = EVENT_FIELDS.get(event)
    if expected is None:
        raise ValueError(f"unknown webhook event {event!r}")
    given = {k for k, v in parts.items() if v is not None}
    missing = [k for k in expected if k not in given and k != "reason"]
    extra = sorted(given - set(expected))
    if missing or extra:
        raise ValueError(f"webhook {event}: missing {missing}, unexpected {extra}")
    body: dict[str, object] = {"id": event_id, "event": event, "created_at": created_at, "room": room}
    for key in expected:
        if parts.get(key) is not None:
            body[key] = parts[key]
    return body


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a delivery is retried."""

    max_attempts: int = 10
    base_delay: float = 1.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not self.base_delay > 0 or self.max_delay < self.base_delay:
            raise ValueError("base_delay must be > 0 and max_delay >= base_delay")

    def delay(self, failed_attempts: int) -> float:
        """Return how long to wait after `failed_attempts` (>= 1) failures before the next attempt."""
        exponent = min(max(failed_attempts - 1, 0), 62)
        return float(min(self.base_delay * (2 ** exponent), self.max_delay))

    def gives_up(self, failed_attempts: int) -> bool:
        """Return whether a delivery that failed this many times is dropped."""
        return failed_attempts >= self.max_attempts


@dataclass(frozen=True)
class Pending:
    """One queued delivery as the scheduler sees it (seq is the enqueue order)."""

    seq: int
    lane: str
    attempts: int
    next_at: float


@dataclass(frozen=True)
class Outcome:
    """What to do with a delivery after an attempt: drop it (done or given up) or try again at `next_at`."""

    drop: bool
    gave_up: bool
    attempts: int
    next_at: float


def after_attempt(policy: RetryPolicy, attempts_before: int, ok: bool, now: float) -> Outcome:
    """Return the outcome of one attempt at `now` for a delivery that had failed `attempts_before` times."""
    if ok:
        return Outcome(drop=True, gave_up=False, attempts=attempts_before + 1, next_at=now)
    failed = attempts_before + 1
    if policy.gives_up(failed):
        return Outcome(drop=True, gave_up=True, attempts=failed, next_at=now)
    return Outcome(drop=False, gave_up=False, attempts=failed, next_at=now + policy.delay(failed))


def heads(pending: Iterable[Pending]) -> list[Pending]:
    """Return the head (lowest seq) of each lane, in seq order."""
    first: dict[str, Pending] = {}
    for item in pending:
        held = first.get(item.lane)
        if held is None or item.seq < held.seq:
            first[item.lane] = item
    return sorted(first.values(), key=lambda p: p.seq)


def due(pending: Sequence[Pending], now: float, busy: Iterable[str] = ()) -> list[Pending]:
    """Return the lane heads that may be sent at `now`, skipping lanes already in flight (`busy`)."""
    skip = set(busy)
    return [p for p in heads(pending) if p.lane not in skip and p.next_at <= now]


def next_wake(pending: Sequence[Pending], busy: Iterable[str] = ()) -> float | None:
    """Return the earliest time a lane head becomes due, or None when nothing waits."""
    skip = set(busy)
    times = [p.next_at for p in heads(pending) if p.lane not in skip]
    return min(times) if times else None


def lane(room_sid: str, url: str) -> str:
    """Return the ordering lane of one room's deliveries to one URL."""
    return f"{room_sid} {url}"


__all__ = [
    "COMPOSITION_KEYS",
    "EVENTS",
    "EVENT_FIELDS",
    "MAX_CALLBACK_URL",
    "PARTICIPANT_KEYS",
    "RECORDING_KEYS",
    "TRACK_KEYS",
    "CallbackError",
    "Outcome",
    "Pending",
    "RetryPolicy",
    "after_attempt",
    "check_callback_url",
    "due",
    "event_payload",
    "heads",
    "lane",
    "next_wake",
]
