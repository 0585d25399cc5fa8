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
        A playing result takes effect at ``now + lead``, so every screen starts together. A command that changes
        nothing (play while playing, pause while paused) returns the same state object, seq unchanged.
        """
        if action not in ACTIONS:
            raise PlaybackError("invalid_value", f"action must be one of {', '.join(ACTIONS)}")
        state = self.state
        if action == "configure":
            if not is_host:
                raise PlaybackError("not_allowed", "only the host may change who controls playback")
            if control is not None and control not in CONTROLS:
                raise PlaybackError("invalid_value", f"control must be one of {', '.join(CONTROLS)}")
            if on_stall is not None and on_stall not in ON_STALL:
                raise PlaybackError("invalid_value", f"on_stall must be one of {', '.join(ON_STALL)}")
            changed = dataclasses.replace(state, control=control or state.control,  # type: ignore[arg-type]
                                          on_stall=on_stall or state.on_stall)  # type: ignore[arg-type]
            if changed.on_stall == "continue" and changed.waiting_for:
                changed = self._resumed(changed, now)
            return self._set(changed) if changed != state else state
        if not is_host and state.control != "everyone":
            raise PlaybackError("not_allowed", "only the host controls playback in this room")
        if position is not None and not (math.isfinite(position) and 0.0 <= position <= MAX_POSITION):
            raise PlaybackError("invalid_value", f"position must be between 0 and {MAX_POSITION:g} seconds")
        if len(title) > MAX_TITLE_CHARS:
            raise PlaybackError("invalid_value", f"title is longer than {MAX_TITLE_CHARS} characters")
        if action == "load":
            if not content or len(content) > MAX_CONTENT_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in content):
                raise PlaybackError("invalid_value",
                                    f"content must be a URL or path of 1 to {MAX_CONTENT_CHARS} characters")
            self._stalled_since.clear()
            start = position or 0.0
            return self._set(dataclasses.replace(
                state, content=content, title=title, playing=play, position=start, rate=1.0,
                at=now + self.lead if play else now, waiting_for=(), duration=None))
        if action == "stop":
            if not state.content:
                return state
            self._stalled_since.clear()
            return self._set(dataclasses.replace(state, content="", title="", playing=False, position=0.0,
                                                 at=now, waiting_for=(), duration=None))
        if not state.content:
            raise PlaybackError("no_content", "nothing is loaded: load content first")
        if action == "play":
            if state.playing:
                return state
            return self._set(dataclasses.replace(state, playing=True, position=state.position_at(now),
                                                 at=now + self.lead))
        if action == "pause":
            if not state.playing:
                return state
            return self._set(dataclasses.replace(state, playing=False, position=state.position_at(now), at=now))
        if position is None:
            raise PlaybackError("invalid_value", "seek needs a position")
        if state.duration is not None:
            position = min(position, state.duration)
        moving = state.playing and not state.waiting_for
        return self._set(dataclasses.replace(state, position=position, at=now + self.lead if moving else now))

    def buffering(self, identity: str, stalled: bool, now: float, position: float | None = None,
                  duration: float | None = None) -> PlaybackState | None:
        """Note that `identity`'s screen stalled (or is ready again); return the new state, or None if unchanged.

        `duration`, when a screen knows it, is recorded in the state (first report wins).
        """
        state = self.state
        changed = state
        if (duration is not None and state.duration is None and state.content and math.isfinite(duration)
                and 0 < duration <= MAX_POSITION):
            changed = dataclasses.replace(changed, duration=duration)
        if stalled:
            if changed.on_stall == "pause" and changed.content and changed.playing and identity not in changed.waiting_for:
                self._stalled_since[identity] = now
                frozen = changed.position_at(now)
                changed = dataclasses.replace(changed, position=frozen, at=now,
                                              waiting_for=tuple(sorted((*changed.waiting_for, identity))))
        elif identity in changed.waiting_for:
            changed = self._release(changed, (identity,), now)
        if changed is state:
            return None
        return self._set(changed)

    def left(self, identity: str, now: float) -> PlaybackState | None:
        """Forget a screen that left (it is waited for no more); return the new state, or None if unchanged."""
        self._stalled_since.pop(identity, None)
        if identity not in self.state.waiting_for:
            return None
        return self._set(self._release(self.state, (identity,), now))

    def tick(self, now: float) -> PlaybackState | None:
        """Give up on screens stalled longer than `stall_timeout`; return the new state, or None if unchanged."""
        late = tuple(who for who, since in self._stalled_since.items() if now - since >= self.stall_timeout)
        if not late:
            return None
        return self._set(self._release(self.state, late, now))

    def next_deadline(self) -> float | None:
        """Return when `tick` may next change something (a stall timing out), or None."""
        if not self._stalled_since:
            return None
        return min(self._stalled_since.values()) + self.stall_timeout

    def _release(self, state: PlaybackState, identities: tuple[str, ...], now: float) -> PlaybackState:
        """Stop waiting for `identities`; resume together once nobody is waited for."""
        for who in identities:
            self._stalled_since.pop(who, None)
        waiting = tuple(w for w in state.waiting_for if w not in identities)
        changed = dataclasses.replace(state, waiting_for=waiting)
        if not waiting and state.waiting_for:
            changed = self._resumed(changed, now)
        return changed

    def _resumed(self, state: PlaybackState, now: float) -> PlaybackState:
        """Return `state` moving again from its frozen position at a common instant (nobody waited for)."""
        self._stalled_since.clear()
        return dataclasses.replace(state, waiting_for=(), position=state.position,
                                   at=now + self.lead if state.playing else now)

    def _set(self, state: PlaybackState) -> PlaybackState:
        self.state = dataclasses.replace(state, seq=self.state.seq + 1)
        return self.state


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
