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
