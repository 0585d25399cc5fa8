"""Composition rules, pure: what a composition request may ask for, where each participant's tile goes, who is
the active speaker when, and how far a render got.

A composition renders one room session's recordings (one file per published track, each with its start
`offset` in the session) into one video file. This module decides, with no I/O and time as an argument:

- `parse_request`: the layout (grid | speaker | single), resolution ("WxH"), format (mp4 | webm), the audio
  and video sources (participant identities or track sids; default all) and the trim; RequestError -> 400.
- `select`: which recordings the sources pick, and the participants in join order (earliest first track).
- `tile_rects`: the tiles of one output frame, from tvapp.core.layout (the same math as the TV: `safe_area`,
  `tiles`, `fit`); `single` shows one participant (the active speaker) over the whole frame.
- `speaker_timeline`: the server does not store active-speaker changes, so the speaker layout computes them
  from the recorded audio levels (RMS per window of each participant's audio): the loudest participant above
  `SPEAKER_THRESHOLD` becomes the speaker after holding for `SPEAKER_HOLD` seconds; silence keeps the last one.
- `progress`: percent done and the ETA from the start time, the media time rendered and the total.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tvapp.core.errors import CodedError
from tvapp.core.layout import Layout, Mode, Rect, fit, safe_area, tiles

LAYOUTS = ("grid", "speaker", "single")
FORMATS = ("mp4", "webm")
STATUSES = ("enqueued", "processing", "completed", "failed", "deleted")
CODECS: dict[str, tuple[str, str]] = {"mp4": ("h264", "aac"), "webm": ("vp8", "opus")}  # video, audio
MEDIA_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
MIN_SIDE, MAX_WIDTH, MAX_HEIGHT = 64, 1920, 1080
MAX_SOURCES = 64
DEFAULT_RESOLUTION = "640x360"
DEFAULT_FPS = 15
FPS_CHOICES = (10, 15, 25, 30)
SAFE_MARGIN = 0.0  # a file is not a TV: no overscan, tiles may reach the frame's edges
SPEAKER_WINDOW = 0.1  # seconds per audio level
SPEAKER_THRESHOLD = 0.01  # RMS (full scale 1.0) a voice must pass to take the speaker tile
SPEAKER_HOLD = 0.5  # seconds a new voice must lead before the speaker tile switches (no flapping)

_RESOLUTION_RE = re.compile(r"([1-9][0-9]{1,3})x([1-9][0-9]{1,3})")
_SOURCE_RE = re.compile(r"[A-Za-z0-9_.@:\-]{1,128}")


class RequestError(CodedError):
    """A composition request that does not validate (400)."""


@dataclass(frozen=True, slots=True)
class Request:
    """A validated composition request."""

    session: str
    layout: str = "grid"
    width: int = 640
    height: int = 360
    format: str = "mp4"
    fps: int = DEFAULT_FPS
    audio_sources: tuple[str, ...] | None = None  # None: every audio track
    video_sources: tuple[str, ...] | None = None  # None: every video track
    trim_start: float = 0.0
    trim_end: float | None = None

    @property
    def resolution(self) -> str:
        """Return "WxH"."""
        return f"{self.width}x{self.height}"


def parse_resolution(text: object) -> tuple[int, int]:
    """Return (width, height) of "WxH" (even numbers from MIN_SIDE up to 1920x1080); raise RequestError."""
    match = _RESOLUTION_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise RequestError("invalid_resolution", 'resolution must be "WIDTHxHEIGHT", e.g. "640x360"')
    w, h = int(match.group(1)), int(match.group(2))
    if not (MIN_SIDE <= w <= MAX_WIDTH and MIN_SIDE <= h <= MAX_HEIGHT) or w % 2 or h % 2:
        raise RequestError("invalid_resolution", f"resolution must be even, from {MIN_SIDE}x{MIN_SIDE} "
                                                 f"to {MAX_WIDTH}x{MAX_HEIGHT}")
    return w, h


def _sources(key: str, value: object) -> tuple[str, ...] | None:
    if value is None or value == "all":
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_SOURCES:
        raise RequestError("invalid_sources", f'{key} must be "all" or a list of 1 to {MAX_SOURCES} identities '
                                              "or track sids")
    for item in value:
        if not isinstance(item, str) or not _SOURCE_RE.fullmatch(item):
            raise RequestError("invalid_sources", f"{key} must hold identities or track sids")
    return tuple(value)


def _seconds(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RequestError("invalid_trim", f"trim {key} must be a number of seconds, at least 0")
    return float(value)


def parse_request(body: Mapping[str, object]) -> Request:
    """Validate a composition request body (already JSON); raise RequestError (400) on a bad value."""
    session = body.get("session")
    if not isinstance(session, str) or not re.fullmatch(r"RM_[A-Za-z0-9_\-]{1,40}", session):
        raise RequestError("invalid_session", "session must be a room session sid (RM_...)")
    layout = body.get("layout", "grid")
    if layout not in LAYOUTS:
        raise RequestError("invalid_layout", f"layout must be one of {', '.join(LAYOUTS)}")
    fmt = body.get("format", "mp4")
    if fmt not in FORMATS:
        raise RequestError("invalid_format", f"format must be one of {', '.join(FORMATS)}")
    width, height = parse_resolution(body.get("resolution", DEFAULT_RESOLUTION))
    fps = body.get("fps", DEFAULT_FPS)
    if fps not in FPS_CHOICES or isinstance(fps, bool):
        raise RequestError("invalid_fps", f"fps must be one of {', '.join(map(str, FPS_CHOICES))}")
    trim = body.get("trim")
    start, end = 0.0, None
    if trim is not None:
        if not isinstance(trim, Mapping) or not set(trim) <= {"start", "end"}:
            raise RequestError("invalid_trim", "trim must be {start, end} in seconds of the session")
        start = _seconds("start", trim.get("start", 0.0))
        end = None if trim.get("end") is None else _seconds("end", trim.get("end"))
        if end is not None and end <= start:
            raise RequestError("invalid_trim", "trim end must be later than trim start")
    return Request(session=session, layout=str(layout), width=width, height=height, format=str(fmt),
                   fps=int(fps),
                   audio_sources=_sources("audio_sources", body.get("audio_sources")),
                   video_sources=_sources("video_sources", body.get("video_sources")),
                   trim_start=start, trim_end=end)


@dataclass(frozen=True, slots=True)
class Track:
    """One recording a composition reads: whose, which kind, where it starts and how long it lasts."""

    sid: str
    participant: str
    track: str
    type: str  # audio | video
    offset: float
    duration: float
    file: str = ""


def _picked(track: Track, sources: tuple[str, ...] | None) -> bool:
    return sources is None or track.participant in sources or track.track in sources or track.sid in sources


def select(tracks: Sequence[Track], req: Request) -> tuple[list[str], list[Track], list[Track]]:
    """Return (participants in join order, video tracks, audio tracks) that the request's sources pick."""
    video = [t for t in tracks if t.type == "video" and _picked(t, req.video_sources)]
    audio = [t for t in tracks if t.type == "audio" and _picked(t, req.audio_sources)]
    first: dict[str, float] = {}
    for t in (*video, *audio):
        first[t.participant] = min(first.get(t.participant, math.inf), t.offset)
    people = sorted(first, key=lambda p: (first[p], p))
    return people, video, audio


def span(tracks: Sequence[Track], req: Request) -> tuple[float, float]:
    """Return the (start, end) seconds of the session the output covers (the trim within the recordings)."""
    end = max((t.offset + t.duration for t in tracks), default=0.0)
    if req.trim_end is not None:
        end = min(end, req.trim_end)
    return req.trim_start, max(req.trim_start, end)


def tile_rects(count: int, width: int, height: int, layout: str, speaker: int | None = None) -> Layout:
    """Return the tiles of `count` participants (join order) on a width x height frame in `layout`."""
    screen = Rect(0, 0, width, height)
    area = safe_area(width, height, SAFE_MARGIN)
    if layout == "single":
        if count == 0:
            return Layout(())
        shown = speaker or 0
        return Layout(tuple(area if i == shown else Rect(0, 0, 0, 0) for i in range(count)))
    mode = Mode.SPEAKER if layout == "speaker" else Mode.GRID
    return tiles(count, screen, area, mode, speaker=speaker if count else None)


def picture_rect(src_w: int, src_h: int, tile: Rect) -> Rect:
    """Return where a src_w x src_h picture goes in its tile (letterboxed, as the TV draws it), even-sized."""
    inner = fit(src_w, src_h, tile)
    return Rect(inner.x, inner.y, max(0, inner.w - inner.w % 2), max(0, inner.h - inner.h % 2))


def speaker_timeline(levels: Sequence[Sequence[float]], window: float = SPEAKER_WINDOW,
                     threshold: float = SPEAKER_THRESHOLD, hold: float = SPEAKER_HOLD) -> list[tuple[float, int]]:
    """Return [(from seconds, participant index)] of the active speaker from per-window audio levels.

    `levels[i][k]` is participant i's RMS in window k (`window` seconds each). The first voice above
    `threshold` is the first speaker (participant 0 until then); another takes over once it has been the
    loudest above the threshold for `hold` seconds; silence changes nothing.
    """
    if not levels:
        return []
    windows = max(len(series) for series in levels)
    need = max(1, round(hold / window))
    current, candidate, run = 0, -1, 0
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    started = False
    for k in range(windows):
        loud = [(series[k] if k < len(series) else 0.0, i) for i, series in enumerate(levels)]
        level, who = max(loud)
        if level < threshold:
            candidate, run = -1, 0
            continue
        if not started:
            started, current = True, who
            timeline = [(0.0, who)]
            continue
        if who == current:
            candidate, run = -1, 0
            continue
        run = run + 1 if who == candidate else 1
        candidate = who
        if run >= need:
            current, candidate, run = who, -1, 0
            timeline.append((round((k + 1) * window, 6), who))
    return timeline


def speaker_at(timeline: Sequence[tuple[float, int]], t: float) -> int:
    """Return the active speaker at `t` seconds from a `speaker_timeline`."""
    who = 0
    for start, index in timeline:
        if start > t:
            break
        who = index
    return who


def progress(started_at: float, now: float, done: float, total: float) -> tuple[float, float | None]:
    """Return (percent 0..100, ETA seconds or None while unknown) of a render `done` of `total` media seconds."""
    if total <= 0:
        return 100.0, 0.0
    fraction = min(1.0, max(0.0, done / total))
    elapsed = max(0.0, now - started_at)
    eta = None if fraction <= 0 or elapsed <= 0 else elapsed * (1 - fraction) / fraction
    return round(fraction * 100, 1), None if eta is None else round(eta, 1)


__all__ = [
    "CODECS", "DEFAULT_FPS", "FORMATS", "LAYOUTS", "MEDIA_TYPES", "STATUSES", "Request", "RequestError", "Track",
    "parse_request", "parse_resolution", "picture_rect", "progress", "select", "span", "speaker_at",
    "speaker_timeline", "tile_rects",
]
