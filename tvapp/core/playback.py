"""The room's shared content timeline, the rules that change it, and how a screen steers itself onto it.

`PlaybackState` is what the server broadcasts: what is loaded, whether it plays, and a point on the timeline —
``position`` seconds into the content at server clock instant ``at``. While playing, the position at server time
``t`` is ``position + rate * (t - at)``; but when ``t < at`` it is still ``position``: playing states are issued
with ``at`` a little in the future (`lead`), so that every screen has the state before it takes effect and all of
them start moving at the same instant.

`PlaybackRoom` (server side) applies commands — load, play, pause, seek, stop, configure — and buffering reports,
each with the server time as an argument, and returns the new state (or raises `PlaybackError`). Who may command:
the host always; everyone when the room's ``control`` is ``"everyone"`` (as Teleparty does). Buffering: a screen
that stalls reports it; with ``on_stall = "pause"`` the timeline freezes for everyone (``waiting_for`` names who it
waits for) until every stalled screen is ready or has waited `stall_timeout`, then resumes at a common instant;
with ``"continue"`` the others go on and the slow one catches up by itself.

`SyncController` (each screen) turns "how far is my playback from the timeline" into a `Correction`: nothing
inside a dead band, a slight rate change for small errors (inaudible on audio, invisible on video), a seek for
large ones. Pure: times are arguments, nothing reads a clock.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final, Literal, TypeAlias, get_args

Action: TypeAlias = Literal["load", "play", "pause", "seek", "stop", "configure"]
Control: TypeAlias = Literal["host", "everyone"]
OnStall: TypeAlias = Literal["pause", "continue"]
ACTIONS: Final[tuple[str, ...]] = get_args(Action)
CONTROLS: Final[tuple[str, ...]] = get_args(Control)
ON_STALL: Final[tuple[str, ...]] = get_args(OnStall)
MAX_CONTENT_CHARS: Final = 2048
MAX_TITLE_CHARS: Final = 200
MAX_POSITION: Final = 7 * 24 * 3600.0


class PlaybackError(ValueError):
    """A refused playback command; ``code`` is what the client is told (``not_allowed``, ``no_content``,
    ``invalid_value``), ``message`` says why in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


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


class PlaybackRoom:
    """The server's rules for one room's timeline: commands and buffering reports in, new states out."""

    def __init__(self, *, control: Control = "host", on_stall: OnStall = "pause", lead: float = 0.4,
                 stall_timeout: float = 15.0) -> None:
        self.lead = lead
        self.stall_timeout = stall_timeout
        self.state = PlaybackState(control=control, on_stall=on_stall)
        self._stalled_since: dict[str, float] = {}

    def command(self, action: str, now: float, *, is_host: bool, content: str | None = None, title: str = "",
                position: float | None = None, play: bool = True, control: str | None = None,
                on_stall: str | None = None) -> PlaybackState:
        """Apply one command at server time `now` and return the new state; raise PlaybackError if refused.

        load: `content` (required), start at `position` (default 0), playing if `play`.
        play / pause: from the current position. seek: to `position` (required), keeping play/pause.
        stop: unload. configure (host only): set `control` and/or `on_stall`.
        A playing result takes effect at ``now + lead``, so every screen starts together.
        """
        raise NotImplementedError

    def buffering(self, identity: str, stalled: bool, now: float, position: float | None = None,
                  duration: float | None = None) -> PlaybackState | None:
        """Note that `identity`'s screen stalled (or is ready again); return the new state, or None if unchanged.

        `duration`, when a screen knows it, is recorded in the state (first report wins).
        """
        raise NotImplementedError

    def left(self, identity: str, now: float) -> PlaybackState | None:
        """Forget a screen that left (it is waited for no more); return the new state, or None if unchanged."""
        raise NotImplementedError

    def tick(self, now: float) -> PlaybackState | None:
        """Give up on screens stalled longer than `stall_timeout`; return the new state, or None if unchanged."""
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """Return when `tick` may next change something (a stall timing out), or None."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True, slots=True)
class Correction:
    """What a screen should do now: play at `rate` times normal speed, and seek to `seek_to` first if set."""

    rate: float = 1.0
    seek_to: float | None = None


class SyncController:
    """Steer one screen's playback onto the room's timeline.

    ``update(error, target)`` takes ``error = local position - timeline position`` (seconds; positive = ahead) and
    the timeline position `target`, and returns a `Correction`:

    - ``|error| <= deadband``: rate 1 (hysteresis: once correcting, keep on until within ``deadband / 2``);
    - ``deadband < |error| < seek_threshold``: rate ``1 - clamp(gain * error, ±max_rate_change)``;
    - ``|error| >= seek_threshold``: seek to ``target + seek_ahead`` (where the timeline will be once the seek has
      landed), rate 1.
    """

    def __init__(self, *, deadband: float = 0.010, gain: float = 0.5, max_rate_change: float = 0.02,
                 seek_threshold: float = 0.5, seek_ahead: float = 0.0) -> None:
        self.deadband = deadband
        self.gain = gain
        self.max_rate_change = max_rate_change
        self.seek_threshold = seek_threshold
        self.seek_ahead = seek_ahead
        self._correcting = False

    def update(self, error: float, target: float) -> Correction:
        """Return the correction for a screen `error` seconds off the timeline position `target`."""
        if not math.isfinite(error) or abs(error) >= self.seek_threshold:
            self._correcting = False
            return Correction(seek_to=max(0.0, target + self.seek_ahead))
        limit = self.deadband / 2 if self._correcting else self.deadband
        if abs(error) <= limit:
            self._correcting = False
            return Correction()
        self._correcting = True
        change = max(-self.max_rate_change, min(self.max_rate_change, self.gain * error))
        return Correction(rate=1.0 - change)

    def reset(self) -> None:
        """Forget the hysteresis (after a seek, a load or a pause)."""
        self._correcting = False
