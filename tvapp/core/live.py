"""Live HLS streams: parse a media playlist and place its segments on the event's clock (pure, no I/O).

A live event's moment is a wall-clock instant of the event: the program date-time (``EXT-X-PROGRAM-DATE-TIME``,
seconds since the Unix epoch) of the picture. `parse_playlist` reads a media playlist (target duration, media
sequence, segment durations and program date-times, ENDLIST) or says it is a master playlist (its variants) and
refuses what is not HLS (`LiveError` with code ``not_hls``). `Playlist.segments` carry their start instant:

- with program date-time: a segment's own tag, else the previous segment's start + duration;
- without any (``program_date_time`` False, the fallback): ``media_sequence * target_duration`` + the durations of
  the segments before it in the window. Screens seeing different windows agree as long as segments last their
  target duration (true of ffmpeg's hls muxer with a fixed keyframe interval); the state says when it is used.

`Playlist.live_edge` is the end of the newest segment; `locate(instant)` finds the segment that holds an instant.

How far behind the live edge a room can play: each screen measures its own hold (`HoldMeter`: how far behind the
room's live edge each new segment's first moment is when that screen has it in hand) and reports it; the room's
delay is at least `needed_delay` (the largest hold + a margin of a fraction of a segment), found within a second
or two of a load instead of by stalls. `CATCH_UP_RATE` is how a room that stood still for a stalled screen gets
back to its live point.
Times are arguments; nothing here reads a clock or the network.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Iterable
from typing import Final
from urllib.parse import urljoin

from tvapp.core.errors import CodedError

MAX_PLAYLIST_BYTES = 1_000_000
"""Longest playlist a screen or the core reads (a live window of thousands of segments fits)."""


class LiveError(CodedError, ValueError):
    """A playlist that cannot be played live: ``not_hls`` (not an HLS playlist) or ``invalid_value``."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclasses.dataclass(frozen=True, slots=True)
class Segment:
    """One media segment: its absolute URL, media sequence number, duration and start instant on the event clock."""

    url: str
    sequence: int
    duration: float
    start: float

    @property
    def end(self) -> float:
        """Return the instant just after the segment."""
        return self.start + self.duration


@dataclasses.dataclass(frozen=True, slots=True)
class Playlist:
    """A media playlist as read at one moment."""

    target_duration: float
    media_sequence: int
    segments: tuple[Segment, ...]
    ended: bool
    """EXT-X-ENDLIST: the stream is complete (a file, not live)."""
    program_date_time: bool
    """True when the segment instants come from EXT-X-PROGRAM-DATE-TIME, False for the media-sequence fallback."""

    @property
    def live_edge(self) -> float:
        """Return the instant at the end of the newest segment (the live edge as of this playlist)."""
        return self.segments[-1].end if self.segments else -math.inf

    @property
    def oldest(self) -> float:
        """Return the start instant of the oldest segment still listed."""
        return self.segments[0].start if self.segments else math.inf

    @property
    def window(self) -> float:
        """Return the seconds of the event the playlist still lists (how far back a screen can time-shift)."""
        return self.live_edge - self.oldest if self.segments else 0.0

    def locate(self, instant: float) -> Segment | None:
        """Return the segment holding `instant`, the first one if `instant` is before the window, else None."""
        for segment in self.segments:
            if instant < segment.end:
                return segment
        return None

    def after(self, sequence: int) -> Segment | None:
        """Return the segment following media sequence number `sequence`, or None if it is not listed yet."""
        for segment in self.segments:
            if segment.sequence > sequence:
                return segment
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class MasterPlaylist:
    """A master (multivariant) playlist: the URLs of its variants with their bandwidth, in playlist order."""

    variants: tuple[tuple[str, int], ...]

    def pick(self) -> str:
        """Return the variant every screen plays: the lowest bandwidth one (the one every network holds)."""
        if not self.variants:
            raise LiveError("not_hls", "the master playlist lists no variant")
        return min(self.variants, key=lambda variant: variant[1])[0]


def parse_pdt(value: str) -> float:
    """Return an ISO 8601 program date-time as seconds since the epoch; raise LiveError if it is not one."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00 (ffmpeg writes +0000)
        text = text[:-2] + ":" + text[-2:]
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise LiveError("invalid_value", f"bad EXT-X-PROGRAM-DATE-TIME {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _number(value: str, what: str) -> float:
    try:
        number = float(value.split(",", 1)[0])
    except ValueError:
        raise LiveError("invalid_value", f"bad {what} {value[:40]!r}") from None
    if not math.isfinite(number) or number < 0:
        raise LiveError("invalid_value", f"bad {what} {value[:40]!r}")
    return number


def _bandwidth(attributes: str) -> int:
    for part in attributes.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "BANDWIDTH" and value.strip().isdigit():
            return int(value.strip())
    return 0


def parse_playlist(text: str, url: str) -> Playlist | MasterPlaylist:
    """Parse an HLS playlist fetched from `url` (segment URIs are resolved against it); raise LiveError."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0].lstrip("\ufeff") != "#EXTM3U":
        raise LiveError("not_hls", "not an HLS playlist (it does not start with #EXTM3U)")
    variants: list[tuple[str, int]] = []
    target = 0.0
    sequence_start = 0
    ended = False
    pending_duration: float | None = None
    pending_pdt: float | None = None
    pending_variant: int | None = None
    raw: list[tuple[str, float, float | None]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line.startswith("#"):
            tag, _, value = line.partition(":")
            if tag == "#EXT-X-TARGETDURATION":
                target = _number(value, "target duration")
            elif tag == "#EXT-X-MEDIA-SEQUENCE":
                sequence_start = int(_number(value, "media sequence"))
            elif tag == "#EXTINF":
                pending_duration = _number(value, "segment duration")
            elif tag == "#EXT-X-PROGRAM-DATE-TIME":
                pending_pdt = parse_pdt(value)
            elif tag == "#EXT-X-ENDLIST":
                ended = True
            elif tag == "#EXT-X-STREAM-INF":
                pending_variant = _bandwidth(value)
            continue
        if pending_variant is not None:
            variants.append((urljoin(url, line), pending_variant))
            pending_variant = None
        elif pending_duration is not None:
            raw.append((urljoin(url, line), pending_duration, pending_pdt))
            pending_duration, pending_pdt = None, None
    if variants:
        return MasterPlaylist(tuple(variants))
    if not raw and not ended and target <= 0:
        raise LiveError("not_hls", "the playlist lists no segment and no target duration")
    if target <= 0:
        target = max((duration for _, duration, _ in raw), default=1.0) or 1.0
    has_pdt = any(pdt is not None for _, _, pdt in raw)
    segments: list[Segment] = []
    start = sequence_start * target
    if has_pdt:  # segments before the first tag count back from it
        first = next(index for index, (_, _, pdt) in enumerate(raw) if pdt is not None)
        start = float(raw[first][2]) - sum(duration for _, duration, _ in raw[:first])  # type: ignore[arg-type]
    for index, (segment_url, duration, pdt) in enumerate(raw):
        if pdt is not None:
            start = pdt
        segments.append(Segment(segment_url, sequence_start + index, duration, start))
        start += duration
    return Playlist(target_duration=target, media_sequence=sequence_start, segments=tuple(segments), ended=ended,
                    program_date_time=has_pdt)


def looks_like_hls(content: str) -> bool:
    """Return whether `content` names an HLS playlist by its URL: http(s) with a path ending in .m3u8."""
    if not content.startswith(("http://", "https://")):
        return False
    path = content.split("?", 1)[0].split("#", 1)[0]
    return path.lower().endswith((".m3u8", ".m3u"))


@dataclasses.dataclass(frozen=True, slots=True)
class LiveInfo:
    """What the core learnt of a live stream when it was loaded: its live edge at server time `fetched_at`, the
    window it lists, its target duration and whether its instants are program date-times."""

    live_edge: float
    fetched_at: float
    window: float
    target_duration: float
    program_date_time: bool
    growing: bool = False
    """The playlist still lists its first segment (media sequence 0): its window grows with the stream."""

    def window_at(self, now: float) -> float:
        """Return the window at server time `now` (a growing one gains a second per second)."""
        return self.window + max(0.0, now - self.fetched_at) if self.growing else self.window

    @classmethod
    def of(cls, playlist: Playlist, fetched_at: float) -> LiveInfo:
        """Return what `playlist`, fetched at server time `fetched_at`, says of the stream."""
        if not playlist.segments:
            raise LiveError("invalid_value", "the live playlist lists no segment yet")
        return cls(live_edge=playlist.live_edge, fetched_at=fetched_at, window=playlist.window,
                   target_duration=playlist.target_duration, program_date_time=playlist.program_date_time,
                   growing=playlist.media_sequence == 0)


# -- how far behind the live edge every screen can hold ------------------------------------------------------------------

HOLD_MARGIN: Final = 0.25
"""What a room keeps over the largest hold its screens report, as a fraction of the target duration (the first
frames' decode, a refresh that came late)."""
HOLD_STEP: Final = 0.05
"""A hold less than this much above the delay (or above the last one reported) changes nothing: no seek for it."""
HOLD_SAMPLES: Final = 4
"""How many recent segments (and segment fetches) a screen's hold is the worst of."""
CATCH_UP_RATE: Final = 1.1
"""The rate at which a room that stood still for a stalled screen plays until it is back at its live point (a 2 s
wait is caught up in 20 s; nothing is skipped, nobody is shown a moment before the others)."""
SLOW_DOWN_RATE: Final = 0.9
"""The rate at which a playing room moves back to a delay that grew by at most SLOW_DOWN_MAX after a live start's
grace (a slow motion every screen follows together, instead of a jump back that every screen has to seek)."""
SLOW_DOWN_MAX: Final = 1.0
"""The largest growth (seconds) a room slows down for; a larger one jumps back at once."""


def needed_delay(holds: Iterable[float], target_duration: float) -> float | None:
    """Return the least delay every screen can hold: the largest hold + HOLD_MARGIN of a segment (None: no hold)."""
    worst = max(holds, default=None)
    return None if worst is None else worst + HOLD_MARGIN * target_duration


class HoldMeter:
    """One screen's hold: the least distance behind the room's live edge at which it has each new segment in hand
    by the time the segment's first moment is due (pure; times are the server's, as arguments).

    Each playlist read tells `listed(now, sequence, start, edge)` of its newest segment (`edge`: the room's live
    edge at `now`). The read that first lists segment n, when the read before it listed n - 1 and was at most a
    target duration earlier, is when n became available to this screen (to within the refresh interval): its
    sample is ``edge - start``, how far behind the room's edge segment n's first moment then was. The first read
    (n may have been listed long before) and reads after a gap give no sample. `fetched(seconds)` notes how long a
    segment took to fetch. The hold is the worst sample of the last HOLD_SAMPLES segments plus the worst of the last
    HOLD_SAMPLES fetches; `report()` returns it when it is new or HOLD_STEP above what was last reported.
    """

    def __init__(self, target_duration: float) -> None:
        self.target_duration = target_duration
        self._newest: tuple[int, float] | None = None  # (sequence, server time of the read that listed it)
        self._lags: list[float] = []
        self._fetches: list[float] = []
        self._reported: float | None = None

    def listed(self, now: float, sequence: int, start: float, edge: float) -> None:
        """Note a playlist read at server time `now` whose newest segment is `sequence`, starting at `start`."""
        previous = self._newest
        if previous is not None and sequence <= previous[0]:
            self._newest = (previous[0], now)
            return
        self._newest = (sequence, now)
        if previous is None or sequence != previous[0] + 1 or now - previous[1] > self.target_duration:
            return
        self._lags = (self._lags + [edge - start])[-HOLD_SAMPLES:]

    def fetched(self, seconds: float) -> None:
        """Note that a segment took `seconds` to fetch."""
        if math.isfinite(seconds) and seconds >= 0:
            self._fetches = (self._fetches + [seconds])[-HOLD_SAMPLES:]

    @property
    def hold(self) -> float | None:
        """Return the screen's hold in seconds behind the room's live edge (None until a new segment was seen)."""
        if not self._lags:
            return None
        return max(self._lags) + max(self._fetches, default=0.0)

    def report(self) -> float | None:
        """Return the hold to tell the room now: the first one, or one HOLD_STEP above the last told (else None)."""
        hold = self.hold
        if hold is None or (self._reported is not None and hold < self._reported + HOLD_STEP):
            return None
        self._reported = hold
        return hold


CALM_BEFORE_COMING_BACK: Final = 10.0
"""Seconds a live room plays without a wait after a wait it kept in its delay (a stall during a catch up) before it
catches up to the delay its screens hold; doubled for each further wait kept, so screens that cannot hold the faster
pace are not made to stall again every few seconds."""


class KeptWaits:
    """A live room's waits kept in its delay (stalls during a catch up), and when it comes back from them (pure).

    `chosen` is the delay the room chose before any wait was kept: the configured delay, or what the screens'
    holds grew it to (`grown`). A kept wait (`kept`) makes the delay larger than that; after
    CALM_BEFORE_COMING_BACK x 2^(waits kept - 1) seconds without a wait (`resumed` restarts the count), `back_to`
    says the delay to catch up to: the chosen one, or what the holds need now if more. Never less: a delay below
    what every screen holds is the spoiler the room must not risk; catching up together to it is not.
    """

    def __init__(self, delay: float) -> None:
        self.chosen = delay
        self.count = 0
        self.due: float | None = None

    def _calm(self) -> float:
        return float(CALM_BEFORE_COMING_BACK * 2.0 ** max(0, self.count - 1))

    def grown(self, delay: float) -> None:
        """Note a delay the room chose (its screens' holds grew it, or a wait was kept for good): nothing to undo."""
        self.chosen, self.due = delay, None

    def kept(self, resumed_at: float) -> None:
        """Note that a wait was kept in the delay (the room moves again at `resumed_at`)."""
        self.count += 1
        self.due = resumed_at + self._calm()

    def resumed(self, at: float) -> None:
        """Note that the room moves again at `at` after a wait (or cannot come back now): the calm starts again."""
        if self.due is not None:
            self.due = max(self.due, at + self._calm())

    def back_to(self, now: float, delay: float, holds: Iterable[float], target_duration: float) -> float | None:
        """Return the delay a room now `delay` behind comes back to at `now` (None: not due, or nothing to undo)."""
        if self.due is None or now < self.due:
            return None
        self.due = None
        need = needed_delay(holds, target_duration)
        back = max(self.chosen, need if need is not None else 0.0)
        return back if back <= delay - HOLD_STEP else None
