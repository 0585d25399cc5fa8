"""Echo-cancellation bookkeeping: which of the TV's played samples go with each microphone frame, and what to show.

The TV plays through one audio device (the output clock) and hears the room through a microphone (the capture
clock: a USB microphone's, or a phone's across the LAN). The canceller (tvapp.tv.echo, WebRTC AEC3) needs, for
every 10 ms microphone frame, the far-end reference: the samples the speakers played around the instant that frame
was captured. The two clocks only meet through wall-clock timestamps, so this module keeps them apart:

- `ClockTrack` fits a line through (sample index, wall time) points of one clock: least squares over a sliding
  window, so jitter in the timestamps (callbacks run late, frames arrive in bursts) averages out. Its slope is the
  clock's true rate; `drift_ppm(output, capture)` compares two of them in parts per million.
- `ReferenceAligner` is told when each block handed to the speakers is heard (`played`: SDL callback time plus the
  device buffer) and when each microphone frame was captured (`captured`). For a frame captured at t it returns the
  output samples heard from t + margin on (`Read`): the reference leads the echo by the margin plus the room's
  acoustic path, which is the delay the canceller's own estimator then finds (`Read.delay_hint_ms`). The read
  cursor advances by exactly one frame per frame; when the clocks drift apart (the fitted lines say where the
  cursor should be), it reads one sample more (drop) or one fewer (insert) per frame until it is back within
  `deadband` samples (a few more per frame when it is far behind: two sound cards can be thousands of ppm apart). Only a jump beyond `resync_ms` (a stall, a restarted device) moves it at once.
- `TalkMonitor` turns frame levels into the state the UI shows: idle, far end only (the TV is talking), near end
  only (someone on the sofa), double talk; with a hangover so the label does not flicker between syllables.

Pure: time is always an argument, nothing here reads a clock or touches audio.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

RATE = 48000
FRAME = 480                  # 10 ms at 48 kHz: the canceller's frame
DEFAULT_WINDOW_S = 30.0      # how much history a clock fit uses
MIN_FIT_SPAN_S = 2.0         # before this much history the nominal rate is assumed
MIN_DRIFT_SPAN_S = 5.0       # drift_ppm says nothing before both clocks have this much history


class ClockTrack:
    """One audio clock seen through wall-clock timestamps: where sample `index` sits in time, and the clock's rate."""

    def __init__(self, nominal_rate: float = RATE, *, window_s: float = DEFAULT_WINDOW_S, every_s: float = 0.02,
                 refit_every: int = 25) -> None:
        self.nominal_rate = nominal_rate
        self.window_s = window_s
        # One stamp kept per every_s and a refit per refit_every kept stamps: the fit runs on SDL's audio thread,
        # so it stays at 1500 points (a 30 s window), refitted every 0.5 s, however often the stamps come.
        self._every_s = every_s
        self._refit_every = refit_every
        self._points: deque[tuple[int, float]] = deque()
        self._since_fit = 0
        self._rate = nominal_rate
        self._anchor: tuple[float, float] | None = None  # (index, time) the fitted line passes through

    def add(self, index: int, at: float) -> None:
        """Note that sample `index` (counted from the clock's start) was heard or captured at wall time `at`."""
        if self._points and at - self._points[-1][1] < self._every_s:
            return
        self._points.append((index, at))
        while self._points and at - self._points[0][1] > self.window_s:
            self._points.popleft()
        self._since_fit += 1
        if self._anchor is None or self._since_fit >= self._refit_every:
            self._fit()

    def _fit(self) -> None:
        self._since_fit = 0
        points = self._points
        count = len(points)
        base_index, base_time = points[0]
        mean_x = sum(index - base_index for index, _ in points) / count
        mean_y = sum(at - base_time for _, at in points) / count
        span = points[-1][1] - base_time
        rate = self.nominal_rate
        if span >= MIN_FIT_SPAN_S:
            sxx = sum((index - base_index - mean_x) ** 2 for index, _ in points)
            sxy = sum((index - base_index - mean_x) * (at - base_time - mean_y) for index, at in points)
            if sxx > 0 and sxy > 0:
                rate = sxx / sxy
        self._rate = rate
        self._anchor = (base_index + mean_x, base_time + mean_y)

    @property
    def ready(self) -> bool:
        """Return whether at least one timestamp is known."""
        return self._anchor is not None

    @property
    def span_s(self) -> float:
        """Return how many seconds of timestamps the fit is made of."""
        return self._points[-1][1] - self._points[0][1] if self._points else 0.0

    def rate(self) -> float:
        """Return the clock's measured rate in samples per wall-clock second (the nominal one until measured)."""
        return self._rate

    def ppm(self) -> float:
        """Return how far the measured rate is from the nominal one, in parts per million."""
        return (self._rate / self.nominal_rate - 1.0) * 1e6

    def time_of(self, index: float) -> float:
        """Return the wall time of sample `index` on the fitted line (call only when `ready`)."""
        if self._anchor is None:
            raise ValueError("no timestamp yet")
        anchor_index, anchor_time = self._anchor
        return anchor_time + (index - anchor_index) / self._rate

    def index_at(self, at: float) -> float:
        """Return the (fractional) sample index heard or captured at wall time `at` (call only when `ready`)."""
        if self._anchor is None:
            raise ValueError("no timestamp yet")
        anchor_index, anchor_time = self._anchor
        return anchor_index + (at - anchor_time) * self._rate


def drift_ppm(output: ClockTrack, capture: ClockTrack) -> float | None:
    """Return how much faster the capture clock runs than the output clock, in ppm (None: too little history)."""
    if min(output.span_s, capture.span_s) < MIN_DRIFT_SPAN_S:
        return None
    return ((capture.rate() / capture.nominal_rate) / (output.rate() / output.nominal_rate) - 1.0) * 1e6


@dataclass(frozen=True)
class Read:
    """Which output samples to hand the canceller as the reference for one microphone frame."""

    start: int               # the first output sample (counted from the output clock's start)
    count: int               # how many: FRAME, or a few more (drop samples) or fewer (insert some)
    delay_hint_ms: int       # by how much the reference leads the capture, for set_stream_delay_ms
    resync: bool = False     # the cursor jumped (first frame, stall, restarted device): the canceller re-adapts


class ReferenceAligner:
    """Pick the reference samples for each microphone frame from the timestamps of both clocks (module docstring)."""

    def __init__(self, *, rate: int = RATE, frame: int = FRAME, margin_ms: float = 5.0, deadband: int = 24,
                 resync_ms: float = 60.0, window_s: float = DEFAULT_WINDOW_S, max_step: int = 4,
                 step_every: int = 24) -> None:
        self.frame = frame
        # The cursor may be `deadband` samples off its target (0.5 ms: timestamps of a loaded machine jitter by
        # more than that, and AEC3's filter follows a slow sub-millisecond wander; correcting every wobble would
        # resample the reference all the time).
        # Samples dropped or inserted per frame: 1, one more per `step_every` samples the cursor is behind or ahead
        # beyond the deadband, at most max_step (4 per 480: clocks up to 8000 ppm apart are followed).
        self.max_step = max_step
        self.step_every = step_every
        self.margin_s = margin_ms / 1000.0
        self.deadband = deadband
        self.resync_samples = resync_ms * rate / 1000.0
        self.output = ClockTrack(rate, window_s=window_s)
        self.capture = ClockTrack(rate, window_s=window_s)
        self._captured = 0           # microphone samples seen so far
        self._cursor: int | None = None
        self.dropped = 0             # reference samples skipped to keep up with a faster output clock
        self.inserted = 0            # reference samples repeated for a slower one
        self.resyncs = 0

    def played(self, first_index: int, played_at: float) -> None:
        """Note that output sample `first_index` is heard at `played_at` (the SDL callback time + device buffer)."""
        self.output.add(first_index, played_at)

    def captured(self, captured_at: float) -> Read | None:
        """Return the reference for the next microphone frame, captured at `captured_at` (None: nothing played yet)."""
        self.capture.add(self._captured, captured_at)
        index = self._captured
        self._captured += self.frame
        if not self.output.ready:
            return None
        at = self.capture.time_of(index) + self.margin_s
        target = self.output.index_at(at)
        if self._cursor is None or abs(target - self._cursor) > self.resync_samples:
            self.resyncs += 1
            self._cursor = round(target)
            read = Read(self._cursor, self.frame, self._hint_ms(), resync=True)
        else:
            error = target - self._cursor
            step = min(self.max_step, 1 + int((abs(error) - self.deadband) // self.step_every))
            count = self.frame
            if error > self.deadband:
                count += step
                self.dropped += step
            elif error < -self.deadband:
                count -= step
                self.inserted += step
            read = Read(self._cursor, count, self._hint_ms())
        self._cursor += read.count
        return read

    def _hint_ms(self) -> int:
        return max(0, round(self.margin_s * 1000.0))

    def drift_ppm(self) -> float | None:
        """Return how much faster the capture clock runs than the output clock, in ppm (None: too little history)."""
        return drift_ppm(self.output, self.capture)


class TalkState(enum.Enum):
    """Who is talking, as the TV's screen shows it."""

    IDLE = "idle"
    FAR_END = "far_end"          # only the TV's speakers: the canceller is removing them
    NEAR_END = "near_end"        # only someone in the living room
    DOUBLE_TALK = "double_talk"  # both at once


def level_dbfs(mean_square: float) -> float:
    """Return a frame's level in dBFS from the mean square of its samples scaled to [-1, 1)."""
    return 10.0 * math.log10(mean_square) if mean_square > 1e-12 else -120.0


class TalkMonitor:
    """Turn per-frame levels into a TalkState, each side held `hangover_s` after it was last heard."""

    def __init__(self, *, far_threshold_dbfs: float = -50.0, near_threshold_dbfs: float = -45.0,
                 hangover_s: float = 0.3) -> None:
        self.far_threshold = far_threshold_dbfs
        self.near_threshold = near_threshold_dbfs
        self.hangover_s = hangover_s
        self._far_until = -math.inf
        self._near_until = -math.inf

    def update(self, far_dbfs: float, near_dbfs: float, now: float) -> TalkState:
        """Take one frame: the reference's level and the cleaned microphone's level (dBFS) at `now`; return the state.

        The cleaned microphone is what the canceller left: the TV's own sound is gone from it, so what is loud
        there is the room talking.
        """
        if far_dbfs >= self.far_threshold:
            self._far_until = now + self.hangover_s
        if near_dbfs >= self.near_threshold:
            self._near_until = now + self.hangover_s
        far, near = now < self._far_until, now < self._near_until
        if far and near:
            return TalkState.DOUBLE_TALK
        if far:
            return TalkState.FAR_END
        if near:
            return TalkState.NEAR_END
        return TalkState.IDLE


@dataclass(frozen=True)
class EchoSummary:
    """What the TV can show and log about its echo canceller."""

    state: TalkState
    delay_hint_ms: int
    drift_ppm: float | None
    dropped: int
    inserted: int
    resyncs: int
    late_reference_frames: int   # microphone frames whose reference had not been played yet (zeros were used)
    reference_samples: int       # output samples received from the TV's speakers so far
