"""The room's shared content timeline as the server broadcasts it (`PlaybackState`), the playback command
vocabulary (actions, who controls, what a stall does), its limits, the value checks and `PlaybackError`.

`PlaybackState` is what the server broadcasts: what is loaded, whether it plays, and a point on the timeline —
``position`` seconds into the content at server clock instant ``at``. While playing, the position at server time
``t`` is ``position + rate * (t - at)``; but when ``t < at`` it is still ``position``: playing states are issued
with ``at`` a little in the future (the room's lead), so that every screen has the state before it takes effect and
all of them start moving at the same instant.

The rules that change the state are tvapp.core.playback's `PlaybackRoom` (which re-exports every name here). Pure:
times are arguments, nothing reads a clock.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal, TypeAlias, get_args

from tvapp.core.errors import CodedError

__all__ = ["ACTIONS", "CONTROLS", "MAX_CONTENT_CHARS", "MAX_LIVE_DELAY", "MAX_POSITION", "MAX_TITLE_CHARS",
           "CONTENT_SCHEMES", "ON_STALL", "Action", "Control", "OnStall", "PlaybackError", "PlaybackState",
           "check_content", "check_position", "check_text", "content_refusal"]

Action: TypeAlias = Literal["load", "play", "pause", "seek", "stop", "configure", "live"]
Control: TypeAlias = Literal["host", "everyone"]
OnStall: TypeAlias = Literal["pause", "continue"]
ACTIONS: Final[tuple[str, ...]] = get_args(Action)
CONTROLS: Final[tuple[str, ...]] = get_args(Control)
ON_STALL: Final[tuple[str, ...]] = get_args(OnStall)
MAX_CONTENT_CHARS: Final = 2048
MAX_TITLE_CHARS: Final = 200
MAX_POSITION: Final = 7 * 24 * 3600.0
MAX_LIVE_DELAY: Final = 3600.0
CONTENT_SCHEMES: Final = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps")
"""The URL schemes content may have (else it is a file path): never FFmpeg's gopher://, tcp://, udp://, file://,
pipe:, concat:, data: and the like, which would make every screen in the room talk to (or read) what a host names."""


class PlaybackError(CodedError, ValueError):
    """A refused playback command; ``code`` is what the client is told (``not_allowed``, ``no_content``,
    ``invalid_value``), ``message`` says why in words."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclasses.dataclass(frozen=True, slots=True)
class PlaybackState:
    """One room's shared timeline, as the server broadcasts it."""

    content: str = ""
    """A media URL or an absolute file path every screen can open; "" when nothing is loaded."""
    title: str = ""
    playing: bool = False
    position: float = 0.0
    """Seconds into the content at server time `at`."""
    rate: float = 1.0
    at: float = 0.0
    """The server clock instant (seconds) that `position` refers to."""
    seq: int = 0
    """Increases by one with every change, so a screen can ignore a stale copy."""
    waiting_for: tuple[str, ...] = ()
    """Identities of stalled screens the room is paused for (on_stall "pause")."""
    control: Control = "host"
    on_stall: OnStall = "pause"
    duration: float | None = None
    """Known length in seconds, when a screen reported it; the position never runs past it."""
    live: bool = False
    """A live stream (tvapp.core.live): `position` is then an instant of the event (program date-time, epoch s)."""
    live_edge: float | None = None
    """Live: the event instant at the live edge at server time `at` (it moves on at 1 s/s, playing or not)."""
    delay: float = 0.0
    """Live: how far the room's live point is behind the live edge (seconds); grows with stalls, never shrinks."""
    window: float = 0.0
    """Live: how many seconds behind the live edge the stream lists (how far back one can pause or seek)."""
    program_date_time: bool = True
    """Live: False when the stream has no program date-time and instants come from media sequence + durations."""

    @property
    def moving(self) -> bool:
        """Return whether the timeline advances (playing and not waiting for a stalled screen)."""
        return self.playing and not self.waiting_for and bool(self.content)

    def position_at(self, server_now: float) -> float:
        """Return the content position at server time `server_now` (held before `at`, clamped to the duration)."""
        position = self.position
        if self.moving and server_now > self.at:
            position += self.rate * (server_now - self.at)
        if self.duration is not None:
            position = min(position, self.duration)
        return max(0.0, position)

    def live_edge_at(self, server_now: float) -> float | None:
        """Return the event instant at the live edge at server time `server_now` (None when not live)."""
        if not self.live or self.live_edge is None:
            return None
        return self.live_edge + (server_now - self.at)

    def behind_at(self, server_now: float) -> float | None:
        """Return how many seconds the room's picture is behind the live edge at `server_now` (None: not live)."""
        edge = self.live_edge_at(server_now)
        return None if edge is None else edge - self.position_at(server_now)


def _is_control_char(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code < 0xA0


def check_text(value: object, what: str, max_chars: int, *, required: bool) -> str:
    """Return `value` as valid text, or raise PlaybackError("invalid_value") saying what is wrong with it."""
    if not isinstance(value, str):
        raise PlaybackError("invalid_value", f"{what} must be a string")
    if required and not value:
        raise PlaybackError("invalid_value", f"{what} must not be empty")
    if len(value) > max_chars:
        raise PlaybackError("invalid_value", f"{what} is longer than {max_chars} characters")
    if any(_is_control_char(ch) for ch in value):
        raise PlaybackError("invalid_value", f"{what} contains control characters")
    return value


def content_refusal(content: str) -> str | None:
    """Return why `content` may not be played (a URL scheme not in CONTENT_SCHEMES), or None when it may.

    The scheme is found as FFmpeg finds its protocol: the leading run of letters, digits, "+", "-" and "." when a
    ":" follows it, or "subfile" for "subfile,...:"; anything else is a file path."""
    span = len(content) - len(content.lstrip(_SCHEME_CHARS))
    scheme = content[:span] if content[span:span + 1] == ":" else ""
    if content.startswith("subfile,"):
        scheme = "subfile"
    if scheme and scheme.lower() not in CONTENT_SCHEMES:
        return (f"content must be a file path or a URL with one of the schemes {', '.join(CONTENT_SCHEMES)}, "
                f"not {scheme[:20]}:")
    return None


_SCHEME_CHARS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."


def check_content(value: object) -> str:
    """Return `value` as content a room may load (check_text, then content_refusal); raise PlaybackError."""
    text = check_text(value, "content", MAX_CONTENT_CHARS, required=True)
    refusal = content_refusal(text)
    if refusal is not None:
        raise PlaybackError("invalid_value", refusal)
    return text


def check_position(value: object) -> float:
    """Return `value` as a position in seconds, or raise PlaybackError("invalid_value")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlaybackError("invalid_value", "position must be a number of seconds")
    position = float(value)
    if not 0.0 <= position <= MAX_POSITION:  # also refuses NaN
        raise PlaybackError("invalid_value", f"position must be between 0 and {MAX_POSITION:g} seconds")
    return position
