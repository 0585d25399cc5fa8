"""How a screen steers its playback onto the room's timeline (`SyncController`): pure, times are arguments.

``update(error, target)`` turns "how far is my playback from the timeline" into a `Correction`: nothing inside a
dead band, a slight rate change for small errors (inaudible on audio, invisible on video), a seek for large ones.
tvapp.core.playback re-exports both (the room's rules live there).
"""

from __future__ import annotations

import dataclasses
import math


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


FLIP_LEAD_GAIN = 0.1
"""How much of each new measure of the flip lead goes into the estimate (a moving average)."""
FLIP_LEAD_CAP = 2.0
"""A flip that came more than this many frame periods after its frame was chosen counts as this many: the screen got
no CPU for a while (a freeze), which says nothing of how long the next flips take."""


class FlipLead:
    """How long from choosing a screen's content frame to its flip, to choose the frame for the instant it shows.

    `update(seconds)` takes what one turn of the frame loop took from choosing to flipped and returns the estimate.
    Without the cap, one 200 ms freeze of a CPU-starved screen made every frame of the next ~10 flips chosen 10-20
    ms ahead of its flip (one 60 fps frame early) while the average came down again.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / max(1.0, fps)
        self.value = self.period

    def update(self, seconds: float) -> float:
        """Note that a frame chosen `seconds` ago has just been flipped; return the lead to choose the next with."""
        if math.isfinite(seconds) and seconds >= 0:
            sample = min(seconds, FLIP_LEAD_CAP * self.period)
            self.value += FLIP_LEAD_GAIN * (sample - self.value)
        return self.value
