"""Recording rules, pure: which container a codec goes in, list filters, byte ranges, quota and retention.

A recording is one published track written as received (no decode, no encode). This module decides, with no
I/O and time as an argument: the container of a codec (`container_for`), what a list or bulk-delete query may
filter on (`parse_filters`, FilterError -> 400), which bytes a Range header asks for (`parse_range`,
RangeError -> 416), whether a write still fits the quota (`fits_quota`), which recordings retention has
expired (`expired`), and a track's start offset in its room session (`offset_of`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tvapp.core.claims import IDENTITY_RE, ROOM_NAME_RE
from tvapp.core.errors import CodedError

STATUSES = ("processing", "completed", "failed", "deleted")
TYPES = ("audio", "video")
CONTAINERS: dict[str, tuple[str, str]] = {
    # codec (as the SFU names it) -> (file extension = the API's `container`, libavformat muxer)
    "OPUS": ("mka", "matroska"),
    "VP8": ("webm", "webm"),
    "H264": ("mkv", "matroska"),
}
CLOCK_RATES = {"audio": 48_000, "video": 90_000}
FILTER_KEYS = ("room", "session", "participant", "status", "type", "started_after", "started_before")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
SECONDS_PER_DAY = 86_400.0

_SID_RE = re.compile(r"[A-Z]{2}_[A-Za-z0-9_\-]{1,40}")


class FilterError(CodedError):
    """A list filter that does not validate (400)."""


class RangeError(CodedError):
    """A Range header that cannot be satisfied (416)."""

    status = 416


def container_for(codec: str) -> tuple[str, str]:
    """Return (container extension, muxer) for a codec; raise KeyError when it cannot be recorded."""
    return CONTAINERS[codec.upper()]


@dataclass(frozen=True, slots=True)
class RecordingFilter:
    """What a list or bulk delete selects; every field None means no condition."""

    room: str | None = None
    session: str | None = None
    participant: str | None = None
    status: str | None = None
    type: str | None = None
    started_after: float | None = None
    started_before: float | None = None

    @property
    def empty(self) -> bool:
        """Tell whether no condition is set (a bulk delete refuses that)."""
        return all(getattr(self, key) is None for key in FILTER_KEYS)


def _time(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FilterError("invalid_filter", f"{key} must be a time in seconds since the epoch") from None
    if not math.isfinite(value) or value < 0:
        raise FilterError("invalid_filter", f"{key} must be a finite time, at least 0")
    return value


def _matching(key: str, text: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(text):
        raise FilterError("invalid_filter", f"{key} must be {what}")
    return text


def parse_filters(params: Mapping[str, str]) -> RecordingFilter:
    """Read the filters of a recordings query (only FILTER_KEYS are read); raise FilterError on a bad value."""
    values: dict[str, str | float | None] = {}
    for key in FILTER_KEYS:
        text = params.get(key)
        if text is None:
            continue
        if key == "room":
            values[key] = _matching(key, text, ROOM_NAME_RE, "a room name or sid")
        elif key == "session":
            if not text.startswith("RM_"):
                raise FilterError("invalid_filter", "session must be a room session sid (RM_...)")
            values[key] = _matching(key, text, _SID_RE, "a room session sid (RM_...)")
        elif key == "participant":
            values[key] = _matching(key, text, IDENTITY_RE, "an identity or a participant sid")
        elif key == "status":
            if text not in STATUSES:
                raise FilterError("invalid_filter", f"status must be one of {', '.join(STATUSES)}")
            values[key] = text
        elif key == "type":
            if text not in TYPES:
                raise FilterError("invalid_filter", f"type must be one of {', '.join(TYPES)}")
            values[key] = text
        else:
            values[key] = _time(key, text)
    result = RecordingFilter(**values)  # type: ignore[arg-type]
    if (result.started_after is not None and result.started_before is not None
            and result.started_after > result.started_before):
        raise FilterError("invalid_filter", "started_after must not be later than started_before")
    return result


def parse_limit(text: str | None) -> int:
    """Return a page size from 1 to MAX_LIMIT (DEFAULT_LIMIT when absent); raise FilterError otherwise."""
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise FilterError("invalid_filter", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes `start` to `end` inclusive of a file of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """Return how many bytes the range holds."""
        return self.end - self.start + 1

    def content_range(self) -> str:
        """Return the Content-Range header value."""
        return f"bytes {self.start}-{self.end}/{self.size}"


_RANGE_RE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Return the one byte range a Range header asks for (None: the whole file); raise RangeError (416).

    Only one range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) is served; a list of ranges or another unit is refused.
    """
    if header is None:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None:
        raise RangeError("range_not_satisfiable", "Range must be one range of bytes: bytes=START-END")
    first, last = match.group(1), match.group(2)
    if not first and not last:
        raise RangeError("range_not_satisfiable", "Range needs a start or a suffix length")
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeError("range_not_satisfiable", "the range holds no byte of the file")
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeError("range_not_satisfiable", f"the file has {size} bytes")
    return ByteRange(start, min(end, size - 1), size)


def fits_quota(used_bytes: int, more_bytes: int, quota_bytes: int) -> bool:
    """Tell whether writing `more_bytes` keeps the recordings under `quota_bytes` (0: no quota)."""
    return quota_bytes <= 0 or used_bytes + more_bytes <= quota_bytes


def expired(ended_at: float, now: float, retention_days: float) -> bool:
    """Tell whether a recording that ended at `ended_at` is past its retention (0 days: kept forever)."""
    return retention_days > 0 and now - ended_at >= retention_days * SECONDS_PER_DAY


def offset_of(first_frame_at: float, session_start: float) -> float:
    """Return a track's start offset in its room session, in seconds (never negative)."""
    return max(0.0, first_frame_at - session_start)


def unwrap_timestamp(previous: int, timestamp: int) -> int:
    """Return the 32-bit RTP `timestamp` unwrapped next to `previous` (an unwrapped value)."""
    delta = (timestamp - previous) & 0xFFFFFFFF
    if delta >= 0x80000000:
        delta -= 0x100000000
    return previous + delta
