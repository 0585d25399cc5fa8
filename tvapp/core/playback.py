"""The room's shared content timeline, the rules that change it, and how a screen steers itself onto it.

`PlaybackState` is what the server broadcasts: what is loaded, whether it plays, and a point on the timeline —
``position`` seconds into the content at server clock instant ``at`` (moving at ``rate`` from ``at``, held before
it). It lives in tvapp.core.timeline with the command vocabulary, the limits and `PlaybackError`; this module
re-exports them.

`PlaybackRoom` (server side) applies commands — load, play, pause, seek, stop, configure — and buffering reports,
each with the server time as an argument, and returns the new state (or raises `PlaybackError`). Who may command:
the host always; everyone when the room's ``control`` is ``"everyone"`` (as Teleparty does). Buffering: a screen
that stalls reports it; with ``on_stall = "pause"`` the timeline freezes for everyone (``waiting_for`` names who it
waits for) until every stalled screen is ready or has waited `stall_timeout`, then resumes at a common instant;
with ``"continue"`` the others go on and the slow one catches up by itself.

`SyncController` (each screen) turns "how far is my playback from the timeline" into a `Correction`: nothing
inside a dead band, a slight rate change for small errors (inaudible on audio, invisible on video), a seek for
large ones. Pure: times are arguments, nothing reads a clock.

How `PlaybackRoom` changes the state (``now`` is the server time of the command, ``p`` = ``position_at(now)``;
every change increases ``seq`` by one; a "-" result returns the current state itself, unchanged):

| input                        | when                         | result                                              |
|------------------------------|------------------------------|-----------------------------------------------------|
| load content, position, play | control allows it            | the content at position, playing if play, waiting   |
|                              |                              | for no one, duration unknown                        |
| play                         | loaded, paused               | playing from p (waiting for screens still stalled)  |
| play                         | loaded, playing              | -                                                   |
| pause                        | loaded, playing              | paused at p, waiting for no one                     |
| pause                        | loaded, paused               | -                                                   |
| seek position                | loaded                       | at position (clamped to the duration), same play    |
| stop                         | loaded                       | nothing loaded, paused at 0                         |
| stop                         | nothing loaded               | -                                                   |
| configure control, on_stall  | host; None keeps a setting   | the settings; "continue" stops waiting (resumes)    |
| configure                    | the same settings            | -                                                   |
| stall of S                   | loaded, on_stall "pause"     | S noted; if playing: frozen at p, waiting for S     |
| ready of S, or S left        | S was stalled                | S forgotten; if no one is left: moving from p again |
| tick                         | S stalled for stall_timeout  | as if S were ready                                  |
| a screen's duration          | loaded, no duration known    | the duration (later reports are ignored)            |

Live streams (load with a `tvapp.core.live.LiveInfo`; E = the live edge instant now, D = the room's ``delay``):

| input                        | when                         | result                                              |
|------------------------------|------------------------------|-----------------------------------------------------|
| load content (live)          | control allows it            | at E - D (D = live_delay, at least one target      |
|                              |                              | duration), ``live`` true, the window and PDT flag   |
| seek instant                 | live                         | at the instant, kept within [E - window + m,        |
|                              |                              | E - D]: never past the room's live point (m = D/2   |
|                              |                              | for a sliding window, 0 for a growing one)          |
| play                         | live, paused                 | from p (kept within the window), time-shifted       |
| live                         | live                         | playing from E - D again ("back to live")           |
| live                         | not live                     | ``invalid_value``                                   |
| stall of S                   | live, within LIVE_START_GRACE| S noted, the room goes on (screens fetching their   |
|                              | of a live start (load, live) | first segments catch up by themselves)             |
| tick                         | the grace is over, S still   | frozen at p, waiting for S (a screen that cannot    |
|                              | stalled                      | hold D)                                             |
| ready after waiting W s      | live, every screen waited    | moving again from p, D = max(D, the holds' need);   |
|                              | for has told its hold, and   | behind by more than D: at CATCH_UP_RATE until it is |
|                              | the wait did not begin while | D behind, then at 1 (nothing skipped, no spoiler)   |
|                              | catching up                  |                                                     |
| ready after waiting W s      | live, otherwise              | moving again, D grown by W: for good if a screen    |
|                              |                              | waited for told no hold; else kept until a calm     |
|                              |                              | while (KeptWaits) has passed without a wait         |
| tick                         | a kept wait's calm is over,  | D = max(the delay chosen before, the holds' need),  |
|                              | moving at E - p = D          | at CATCH_UP_RATE from p until E - p = D (together)  |
| hold H of S                  | live                         | H noted (a screen's largest); when the need (the    |
|                              |                              | largest hold + HOLD_MARGIN of a segment) is over D: |
|                              |                              | D = the need; if p was closer than E - D: playing   |
|                              |                              | after the grace and D grew <= SLOW_DOWN_MAX: from p |
|                              |                              | at SLOW_DOWN_RATE until E - p = D; else at E - D    |
| tick                         | catching up or slowing down, | moving at rate 1 from p (never closer than E - D)   |
|                              | E - p = D                    |                                                     |

A result that sets the timeline moving (again) has ``at = now + lead`` and the position it moves from; a result
that stops it, or puts it at a new point while it is stopped or waiting, has ``at = now``; the others (a new
duration, a new control) leave position and ``at`` alone. Commands are checked in this order: a known action,
permission (not the host and control "host": ``not_allowed``; configure is the host's alone), the values
(``invalid_value``), something loaded for play, pause and seek (``no_content``). A refused command raises
`PlaybackError` and changes nothing.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

from tvapp.core.live import (
    CATCH_UP_RATE,
    HOLD_STEP,
    SLOW_DOWN_MAX,
    SLOW_DOWN_RATE,
    KeptWaits,
    LiveInfo,
    needed_delay,
)
from tvapp.core.steering import Correction, SyncController
from tvapp.core.timeline import (
    ACTIONS,
    CONTROLS,
    MAX_CONTENT_CHARS,
    MAX_LIVE_DELAY,
    MAX_POSITION,
    MAX_TITLE_CHARS,
    ON_STALL,
    Action,
    Control,
    OnStall,
    PlaybackError,
    PlaybackState,
    check_content,
    check_position,
    check_text,
)

__all__ = ["ACTIONS", "CONTROLS", "LIVE_START_GRACE", "MAX_CONTENT_CHARS", "MAX_LIVE_DELAY", "MAX_POSITION",
           "MAX_TITLE_CHARS", "ON_STALL", "Action", "Control", "Correction", "OnStall", "PlaybackError",
           "PlaybackRoom", "PlaybackState", "SyncController"]


LIVE_START_GRACE: Final = 2.0
"""Seconds after a live start (a live load or "back to live") takes effect in which stalls are the screens starting
(fetching their first segments), not screens that cannot hold the delay: the room does not wait for them (nor grow
its delay) unless they are still stalled when the grace is over."""


class PlaybackRoom:
    """The server's rules for one room's timeline: commands and buffering reports in, new states out."""

    def __init__(self, *, control: Control = "host", on_stall: OnStall = "pause", lead: float = 0.4,
                 stall_timeout: float = 15.0, live_delay: float = 6.0) -> None:
        if control not in CONTROLS or on_stall not in ON_STALL:
            raise ValueError(f"control must be one of {CONTROLS} and on_stall one of {ON_STALL}")
        if not (0.0 <= lead < math.inf and 0.0 < stall_timeout < math.inf):
            raise ValueError(f"need a finite lead >= 0 and stall_timeout > 0, got {lead} and {stall_timeout}")
        if not 0.0 < live_delay <= MAX_LIVE_DELAY:
            raise ValueError(f"live_delay must be in (0, {MAX_LIVE_DELAY:g}] seconds, got {live_delay}")
        self.lead = lead
        self.stall_timeout = stall_timeout
        self.live_delay = live_delay
        self._edge: tuple[float, float] | None = None  # live: (edge instant, server time it was true)
        self._live: LiveInfo | None = None
        self._waiting_since: float | None = None
        self._live_start: float | None = None  # live: when the last live start took effect (load, back to live)
        self._holds: dict[str, float] = {}  # live: each screen's largest reported hold (tvapp.core.live.HoldMeter)
        self._catch_up_until: float | None = None  # live: when a catch up at CATCH_UP_RATE reaches the live point
        self._stalled_catching_up = False  # live: the wait now began while the room was catching up
        self._kept = KeptWaits(live_delay)  # live: waits kept in the delay, and when the room comes back from them
        self.state = PlaybackState(control=control, on_stall=on_stall)
        self._stalled_since: dict[str, float] = {}

    def command(self, action: str, now: float, *, is_host: bool, content: str | None = None, title: str = "",
                position: float | None = None, play: bool = True, control: str | None = None,
                on_stall: str | None = None, live: LiveInfo | None = None) -> PlaybackState:
        """Apply one command at server time `now` and return the new state; raise PlaybackError if refused.

        load: `content` (required), start at `position` (default 0), playing if `play`.
        play / pause: from the current position. seek: to `position` (required), keeping play/pause.
        stop: unload. configure (host only): set `control` and/or `on_stall`.
        Live (`live` given with load, from the core's read of the playlist): the room starts at its live point,
        ``live_delay`` behind the live edge; positions are event instants, a seek is kept within the window and never
        past the live point; "live" goes back to the live point (playing).
        A playing result takes effect at ``now + lead``, so every screen starts together. A command that changes
        nothing (play while playing, pause while paused, stop with nothing loaded, configure to the same settings)
        returns the same state object, seq unchanged.
        """
        if action not in ACTIONS:
            raise PlaybackError("invalid_value", f"unknown playback action {action!r}: one of {', '.join(ACTIONS)}")
        if action == "configure":
            if not is_host:
                raise PlaybackError("not_allowed", "only the host may change who controls playback")
            return self._configure(now, control, on_stall)
        if not is_host and self.state.control == "host":
            raise PlaybackError("not_allowed", "only the host controls playback in this room")
        if action == "load":
            return self._load(now, content, title, position, play, live)
        if action == "stop":
            return self._stop(now)
        if action == "live":
            if not self.state.content:
                raise PlaybackError("no_content", "nothing is loaded to go back to live")
            if not self.state.live:
                raise PlaybackError("invalid_value", "back to live needs a live stream loaded")
            return self._back_to_live(now)
        self._live_start = None  # play, pause, seek: the room's picture is the host's now, not a fresh start
        if self.state.live and position is not None:
            return self._seek(now, self._check_instant(now, position)) if action == "seek" else \
                self._play(now) if action == "play" else self._pause(now)
        if action == "seek" and position is None:
            raise PlaybackError("invalid_value", "seek needs a position")
        target = None if position is None else check_position(position)
        if not self.state.content:
            raise PlaybackError("no_content", f"nothing is loaded to {action}")
        if action == "seek" and target is not None:
            return self._seek(now, target)
        return self._play(now) if action == "play" else self._pause(now)

    def buffering(self, identity: str, stalled: bool, now: float, position: float | None = None,
                  duration: float | None = None, hold: float | None = None) -> PlaybackState | None:
        """Note that `identity`'s screen stalled (or is ready again); return the new state, or None if unchanged.

        `duration`, when a screen knows it, is recorded in the state (first report wins). `hold` (live): how far
        behind the live edge this screen can hold (tvapp.core.live.HoldMeter); the delay grows to what every
        screen's hold needs. A hold longer than the stream's window is ignored.
        """
        state = self.state
        if not state.content:
            return None
        known = state.duration
        if known is None and isinstance(duration, (int, float)) and not isinstance(duration, bool) \
                and 0.0 < duration <= MAX_POSITION:
            known = float(duration)
        if state.on_stall == "pause":
            if stalled:
                self._stalled_since.setdefault(identity, now)
            else:
                self._stalled_since.pop(identity, None)
        if state.live and isinstance(hold, (int, float)) and not isinstance(hold, bool) \
                and 0.0 <= hold <= MAX_LIVE_DELAY and (self._live is None or hold <= self._live.window_at(now)):
            # a hold past the stream's window is no screen's (its segments are gone by then): one participant's
            # report never moves the room out of the window, where no screen has anything to play
            self._holds[identity] = max(float(hold), self._holds.get(identity, 0.0))
        settled = self._settle(now, duration=known)
        grown = self._grow(now) if state.live else None
        return grown if grown is not None else settled

    def left(self, identity: str, now: float) -> PlaybackState | None:
        """Forget a screen that left (it is waited for no more); return the new state, or None if unchanged."""
        self._holds.pop(identity, None)
        if self._stalled_since.pop(identity, None) is None:
            return None
        return self._settle(now)

    def _in_grace(self, now: float) -> bool:
        """Tell whether `now` is within LIVE_START_GRACE of the last live start (stalls are not waited for)."""
        return self._live_start is not None and now < self._live_start + LIVE_START_GRACE

    def tick(self, now: float) -> PlaybackState | None:
        """Give up on screens stalled longer than `stall_timeout`, end a catch up that reached the live point, come
        back from a kept wait after a calm while; return the new state, or None if unchanged."""
        caught_up = self._caught_up(now) or self._come_back(now)
        expired = [who for who, since in self._stalled_since.items() if now >= since + self.stall_timeout]
        grace_over = self._live_start is not None and not self._in_grace(now)
        if grace_over:
            self._live_start = None  # from now on a stall is waited for (screens still stalled: at once)
        if not expired and not grace_over:
            return caught_up
        for who in expired:
            del self._stalled_since[who]
        settled = self._settle(now)
        return settled if settled is not None else caught_up

    def next_deadline(self) -> float | None:
        """Return when `tick` may next change something (a stall timing out, a live start's grace ending, a catch up
        reaching the live point), or None."""
        deadlines = [due for due in (self._catch_up_until, self._kept.due) if due is not None]
        if self._stalled_since:
            deadlines.append(min(self._stalled_since.values()) + self.stall_timeout)
            if self._live_start is not None:
                deadlines.append(self._live_start + LIVE_START_GRACE)
        return min(deadlines, default=None)

    # -- transitions ------------------------------------------------------------------------------------------

    def _waiting(self, playing: bool, now: float) -> tuple[str, ...]:
        """Return who a state with `playing` would wait for at `now`."""
        if not playing or self.state.on_stall != "pause" or self._in_grace(now):
            return ()
        return tuple(sorted(self._stalled_since))

    def _change(self, **fields: object) -> PlaybackState:
        if self._edge is not None:  # live: the edge as of the new state's `at`
            at = float(fields.get("at", self.state.at))  # type: ignore[arg-type]
            fields["live_edge"] = self._edge_at(at)
            if self._live is not None:
                fields["window"] = self._live.window_at(at)
        self.state = dataclasses.replace(self.state, seq=self.state.seq + 1, **fields)  # type: ignore[arg-type]
        return self.state

    def _edge_at(self, now: float) -> float:
        """Return the live edge instant at server time `now` (live only)."""
        assert self._edge is not None
        edge, since = self._edge
        return edge + (now - since)

    def _check_instant(self, now: float, value: object) -> float:
        """Return a live seek target as an event instant kept within the window and behind the live point."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PlaybackError("invalid_value", "a live position must be an instant of the event (epoch seconds)")
        edge = self._edge_at(now)
        window = self._live.window_at(now) if self._live is not None else self.state.window
        # A sliding window loses its oldest segment as the stream goes on: keep half a delay clear of it so that
        # the screens still find the moment listed when they fetch it. A growing one (the playlist still lists the
        # event's first segment) loses nothing: every listed moment stays playable, and a pause resumes on its
        # very picture (a margin there jumped a resume forward, out of the time-shift the host asked for).
        growing = self._live is not None and self._live.growing
        oldest = edge - window + (0.0 if growing else self.state.delay / 2)
        return max(min(float(value), edge - self.state.delay), min(oldest, edge - self.state.delay))

    def _back_to_live(self, now: float) -> PlaybackState:
        fields = self._start(now, 0.0, True)
        fields["position"] = self._edge_at(float(fields["at"])) - self.state.delay  # type: ignore[arg-type]
        self._live_start = float(fields["at"])  # type: ignore[arg-type]
        return self._change(**fields)

    def _start(self, now: float, position: float, playing: bool) -> dict[str, object]:
        """Return the fields of a state at `position`: moving from ``now + lead`` if it plays and waits for no one."""
        waiting = self._waiting(playing, now)
        at = now + self.lead if playing and not waiting else now
        self._catch_up_until = None  # any new point on the timeline ends a catch up
        return {"playing": playing, "position": position, "at": at, "waiting_for": waiting, "rate": 1.0}

    def _catch_up(self, fields: dict[str, object], delay: float) -> None:
        """Make a moving live state in `fields` play at CATCH_UP_RATE while it is more than `delay` behind, or at
        SLOW_DOWN_RATE while it is less (until `tick` at the moment it is `delay` behind)."""
        at, position = float(fields["at"]), float(fields["position"])  # type: ignore[arg-type]
        excess = self._edge_at(at) - position - delay
        self._catch_up_until = None
        fields["rate"] = 1.0
        if fields["waiting_for"] or not fields.get("playing", self.state.playing):
            return
        if excess > HOLD_STEP:
            fields["rate"] = CATCH_UP_RATE
            self._catch_up_until = at + excess / (CATCH_UP_RATE - 1.0)
        elif excess < -1e-3:
            fields["rate"] = SLOW_DOWN_RATE
            self._catch_up_until = at - excess / (1.0 - SLOW_DOWN_RATE)

    def _caught_up(self, now: float) -> PlaybackState | None:
        """End a catch up (or slow down) whose time has come: moving at rate 1 from the live point (never closer)."""
        if self._catch_up_until is None or now < self._catch_up_until:
            return None
        state = self.state
        self._catch_up_until = None
        position = min(state.position_at(now), self._edge_at(now) - state.delay)
        return self._change(position=position, at=now, rate=1.0)

    def _come_back(self, now: float) -> PlaybackState | None:
        """Catch up from waits kept in the delay to what the screens hold (KeptWaits), together, once it is due."""
        state, live = self.state, self._live
        if live is None or self._kept.due is None or now < self._kept.due:
            return None
        if not state.moving or now < state.at or self._catch_up_until is not None:
            self._kept.resumed(now)  # not while waiting, starting or catching up: after another calm while
            return None
        delay = self._kept.back_to(now, state.delay, self._holds.values(), live.target_duration)
        if delay is None:
            return None
        if self._edge_at(now) - state.position_at(now) > state.delay + HOLD_STEP:  # time-shifted: the host's
            return self._change(delay=delay)
        fields: dict[str, object] = {"position": state.position_at(now), "at": now, "waiting_for": ()}
        self._catch_up(fields, delay)
        return self._change(delay=delay, **fields)

    def _grow(self, now: float) -> PlaybackState | None:
        """Grow the delay to what every screen's hold needs, moving the position back if it is closer."""
        state = self.state
        if self._live is None:
            return None
        need = needed_delay(self._holds.values(), self._live.target_duration)
        if need is None or need < state.delay + HOLD_STEP:
            return None
        delay = min(MAX_LIVE_DELAY, need)
        self._kept.grown(delay)
        at = now + self.lead if state.moving else now
        if state.position_at(at) <= self._edge_at(at) - delay:  # time-shifted further back already
            if self._catch_up_until is not None:  # a catch up ends sooner
                fields: dict[str, object] = {"position": state.position_at(now), "at": now,
                                             "waiting_for": state.waiting_for}
                self._catch_up(fields, delay)
                return self._change(delay=delay, **fields)
            return self._change(delay=delay)
        if state.moving and not self._in_grace(now) and delay - state.delay <= SLOW_DOWN_MAX:
            start = max(now, state.at)  # a state not moving yet (a resume's lead) slows down from where it starts
            fields = {"position": state.position_at(start), "at": start, "waiting_for": state.waiting_for}
            self._catch_up(fields, delay)  # slows down to it, together, without a seek
            return self._change(delay=delay, **fields)
        fields = self._start(now, 0.0, state.playing)
        fields["position"] = self._edge_at(float(fields["at"])) - delay  # type: ignore[arg-type]
        return self._change(delay=delay, **fields)

    def _settle(self, now: float, duration: float | None = None) -> PlaybackState | None:
        """Bring waiting_for (and the duration) in line with the stalled screens; return the state if it changed."""
        state = self.state
        duration = state.duration if duration is None else duration
        waiting = self._waiting(state.playing, now)
        if waiting == state.waiting_for and duration == state.duration:
            return None
        fields: dict[str, object] = {"duration": duration}
        if waiting != state.waiting_for:
            fields.update(self._start(now, state.position_at(now), state.playing))
            if waiting and not state.waiting_for:
                self._waiting_since = now
                self._stalled_catching_up = state.rate > 1.0
            elif not waiting and self._waiting_since is not None:
                if state.live and all(who in self._holds for who in state.waiting_for) \
                        and not self._stalled_catching_up:
                    # every screen it waited for has told what it can hold (the delay grows to that, in _grow):
                    # the room catches up the time it stood still instead of keeping it
                    self._catch_up(fields, state.delay)
                    self._kept.resumed(float(fields["at"]))  # type: ignore[arg-type]
                elif state.live:  # no hold known, or a stall while catching up (the screens could not hold the
                    # faster pace; a machine short of CPU): the room's live point moves back by the stall (and, after
                    # a catch up, by what it had not made up yet: the delay says where the room really is)
                    moving_at = float(fields["at"])  # type: ignore[arg-type]
                    delay = state.delay + (moving_at - self._waiting_since)
                    if self._stalled_catching_up:
                        delay = max(delay, self._edge_at(moving_at) - float(fields["position"]))  # type: ignore
                    fields["delay"] = min(MAX_LIVE_DELAY, delay)
                    if all(who in self._holds for who in state.waiting_for):  # not for good: after a calm while
                        self._kept.kept(moving_at)  # the room comes back to what the screens hold (KeptWaits)
                    else:
                        self._kept.grown(float(fields["delay"]))  # type: ignore[arg-type]
                self._waiting_since = None
        return self._change(**fields)

    def _load(self, now: float, content: object, title: object, position: float | None, play: bool,
              live: LiveInfo | None = None) -> PlaybackState:
        if content is None:
            raise PlaybackError("invalid_value", "load needs content: a media URL or file path")
        text = check_content(content)
        name = "" if title is None else check_text(title, "title", MAX_TITLE_CHARS, required=False)
        start = 0.0 if position is None else check_position(position)
        self._stalled_since.clear()
        self._waiting_since = None
        self._holds.clear()
        self._kept = KeptWaits(max(self.live_delay, live.target_duration) if live is not None else self.live_delay)
        if live is not None:
            self._edge, self._live = (live.live_edge, live.fetched_at), live
            delay = max(self.live_delay, live.target_duration)
            fields = self._start(now, 0.0, bool(play))
            fields["position"] = self._edge_at(float(fields["at"])) - delay  # type: ignore[arg-type]
            self._live_start = float(fields["at"])  # type: ignore[arg-type]
            return self._change(content=text, title=name, duration=None, live=True, delay=delay,
                                window=live.window, program_date_time=live.program_date_time, **fields)
        self._edge, self._live, self._live_start = None, None, None
        return self._change(content=text, title=name, duration=None, live=False, live_edge=None,
                            delay=0.0, window=0.0, program_date_time=True, **self._start(now, start, bool(play)))

    def _stop(self, now: float) -> PlaybackState:
        if not self.state.content:
            return self.state
        self._stalled_since.clear()
        self._holds.clear()
        self._edge, self._live, self._waiting_since, self._catch_up_until = None, None, None, None
        return self._change(content="", title="", playing=False, position=0.0, rate=1.0, at=now, waiting_for=(),
                            duration=None, live=False, live_edge=None, delay=0.0, window=0.0, program_date_time=True)

    def _play(self, now: float) -> PlaybackState:
        if self.state.playing:
            return self.state
        position = self.state.position_at(now)
        if self.state.live:  # paused longer than the window: resume at the oldest moment still listed
            position = self._check_instant(now, position)
        return self._change(**self._start(now, position, True))

    def _pause(self, now: float) -> PlaybackState:
        if not self.state.playing:
            return self.state
        return self._change(**self._start(now, self.state.position_at(now), False))

    def _seek(self, now: float, position: float) -> PlaybackState:
        if self.state.live:
            return self._change(**self._start(now, position, self.state.playing))
        if self.state.duration is not None:
            position = min(position, self.state.duration)
        return self._change(**self._start(now, position, self.state.playing))

    def _configure(self, now: float, control: str | None, on_stall: str | None) -> PlaybackState:
        if control is not None and control not in CONTROLS:
            raise PlaybackError("invalid_value", f"control must be one of {', '.join(CONTROLS)}")
        if on_stall is not None and on_stall not in ON_STALL:
            raise PlaybackError("invalid_value", f"on_stall must be one of {', '.join(ON_STALL)}")
        state = self.state
        new_control = control if control is not None else state.control
        new_on_stall = on_stall if on_stall is not None else state.on_stall
        if (new_control, new_on_stall) == (state.control, state.on_stall):
            return state
        if new_on_stall == "continue":
            self._stalled_since.clear()
        self.state = dataclasses.replace(state, control=new_control, on_stall=new_on_stall)  # type: ignore[arg-type]
        waiting = self._waiting(state.playing, now)
        fields: dict[str, object] = {}
        if waiting != state.waiting_for:
            fields.update(self._start(now, state.position_at(now), state.playing))
        return self._change(**fields)
