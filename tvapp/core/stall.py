"""When a screen playing the room's content has stalled, is ready again, or must seek: the content player's policy.

A screen's player decodes ahead of the room's timeline. Several times a second its monitor looks at the buffer
against the timeline (a `BufferView`: the timeline position ``target``, whether the timeline moves, how many seconds
are decoded past the target, the oldest position still buffered) and asks `StallMonitor.update(now, view,
stalled=...)` what to do. ``now`` is any monotonic clock in seconds; nothing here reads a clock, so tests drive it
with a fake one. The answer is a `StallDecision`: report a stall or readiness to the room, and/or seek the decoder.

Buffering reports (``stalled`` is what this screen last told the room):

| stalled | what the monitor sees                                                     | decision        |
|---------|---------------------------------------------------------------------------|-----------------|
| yes     | the content failed (cannot open or decode)                                | report READY    |
| no      | the timeline moves and has been past everything decoded (ahead < 0) for   | report STALLED  |
|         | more than `stall_after` seconds without a break                           |                 |
| yes     | not (moving with ahead < 0), and at least `ready_ahead` seconds buffered  | report READY    |
| -       | anything else                                                             | nothing         |

A screen that cannot play never holds the room up: a failed content reports nothing but readiness.

Seeks (only once the content is open, no seek is pending and it has not failed):

| what the monitor sees                                                            | decision  |
|----------------------------------------------------------------------------------|-----------|
| the oldest buffered position is more than `far` past the target (the timeline   | seek      |
| jumped back before the buffer)                                                  |           |
| the buffer ends more than `far` behind the target, that gap has not shrunk by    | seek      |
| `progress` seconds for more than `far` seconds, and the last seek was more than  |           |
| `seek_gap` seconds ago (decoding cannot catch up by itself)                      |           |
| anything else                                                                    | no seek   |

`reset()` starts afresh for a new content (the timers; the time of the last seek is kept). `covers(view)` answers the
other seek question, asked when the room's timeline changes (a seek, a pause): does the buffer already hold the new
target, or must the decoder seek?
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Final

STALL_AFTER: Final = 0.25
"""Seconds the timeline may run past everything decoded before the screen reports a stall."""
READY_AHEAD: Final = 0.5
"""A stalled screen is ready again once this much is buffered past the timeline position."""
FAR: Final = 0.5
"""A buffer this far off the timeline (seconds) is abandoned for a seek."""
PROGRESS: Final = 0.05
"""A gap behind the timeline that shrinks by at least this much (seconds) counts as catching up."""
SEEK_GAP: Final = 1.0
"""Seconds between two seeks made because decoding could not catch up."""
PRESENT_AHEAD: Final = 0.1
"""A target this close before the oldest buffered position still counts as buffered (`covers`): a TV picks the
frame for its next flip (a flip or two ahead of now) and drops the older ones, so right after any change of the
room's state (a delay growth, a catch up's rate) its buffer starts a few ms past the position now; a seek for that
(the bound was 1 ms) threw the buffer away and froze the picture while the segment was fetched and decoded again."""


@dataclasses.dataclass(frozen=True, slots=True)
class BufferView:
    """What a screen has decoded, against the room's timeline, at one instant."""

    target: float
    """The timeline position now (seconds into the content)."""
    moving: bool
    """Whether the timeline advances now (playing, waiting for no one, and its start instant has come)."""
    ahead: float
    """Seconds decoded past `target` on every stream played: inf once decoded to the end (or failed), -inf before
    anything is decoded."""
    oldest: float
    """The content position of the oldest buffered frame or sample (inf when nothing is buffered)."""
    opened: bool = True
    failed: bool = False
    seek_pending: bool = False
    eof: bool = False


class Report(enum.Enum):
    """What a screen tells the room about its buffering."""

    STALLED = "stalled"
    READY = "ready"


@dataclasses.dataclass(frozen=True, slots=True)
class StallDecision:
    """What the player should do now: send `report` to the room if set, and seek the decoder if `seek`."""

    report: Report | None = None
    seek: bool = False


class StallMonitor:
    """Decide stalls, readiness and seeks from successive views of one screen's buffer (see the module rules)."""

    def __init__(self, *, stall_after: float = STALL_AFTER, ready_ahead: float = READY_AHEAD, far: float = FAR,
                 progress: float = PROGRESS, seek_gap: float = SEEK_GAP) -> None:
        if min(stall_after, ready_ahead, far, progress, seek_gap) < 0:
            raise ValueError("the monitor's durations must not be negative")
        self.stall_after = stall_after
        self.ready_ahead = ready_ahead
        self.far = far
        self.progress = progress
        self.seek_gap = seek_gap
        self._missing_since: float | None = None
        self._behind: tuple[float, float] | None = None
        self._last_seek = -math.inf

    def reset(self) -> None:
        """Forget the timers (a new content is loaded); the time of the last seek is kept."""
        self._missing_since = None
        self._behind = None

    def update(self, now: float, view: BufferView, *, stalled: bool) -> StallDecision:
        """Return what to do at monotonic time `now`, given `view` and whether the screen last reported a stall."""
        if view.failed:
            return StallDecision(report=Report.READY if stalled else None)
        report = self._buffering(now, view, stalled)
        return StallDecision(report=report, seek=self._seek(now, view))

    def covers(self, view: BufferView) -> bool:
        """Return whether the buffer holds `view.target` (or is about to), so a timeline change needs no seek."""
        if not view.opened or view.seek_pending:
            return True  # the decoder seeks to the live timeline position once it gets there
        if view.oldest > view.target + PRESENT_AHEAD:
            return False
        return view.eof or view.ahead > -self.far

    # -- the two rule sets ---------------------------------------------------------------------------------------

    def _buffering(self, now: float, view: BufferView, stalled: bool) -> Report | None:
        if view.moving and view.ahead < 0:
            if self._missing_since is None:
                self._missing_since = now
            if not stalled and now - self._missing_since > self.stall_after:
                return Report.STALLED
            return None
        self._missing_since = None
        if stalled and view.ahead >= self.ready_ahead:
            return Report.READY
        return None

    def _seek(self, now: float, view: BufferView) -> bool:
        if not view.opened or view.seek_pending:
            self._behind = None
            return False
        gap = -view.ahead
        if view.oldest > view.target + self.far and math.isfinite(view.oldest):
            return self._seeking(now)
        if gap > self.far:
            if self._behind is None or gap < self._behind[1] - self.progress:
                self._behind = (now, gap)  # first seen this far behind, or catching up: (re)start the wait
                return False
            if now - self._behind[0] > self.far and now - self._last_seek > self.seek_gap:
                return self._seeking(now)
            return False
        self._behind = None
        return False

    def _seeking(self, now: float) -> bool:
        self._last_seek, self._behind = now, None
        return True
