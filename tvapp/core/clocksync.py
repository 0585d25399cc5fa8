"""Estimate the server's clock from NTP-style four-timestamp exchanges: offset, drift and how sure we are.

A client sends ``ping{t0}`` (its local clock), the server answers ``pong{t0, t1, t2}`` (its clock when the ping
arrived and when the pong left), and the client notes ``t3`` (its local clock when the pong arrived). With
``theta`` the server clock minus the local clock, and ``up``/``down`` the one-way network times,

    t1 - t0 = theta + up          an upper bound on theta, at local time t0
    t2 - t3 = theta - down        a lower bound on theta, at local time t3

Classic NTP averages the two (``offset = ((t1 - t0) + (t2 - t3)) / 2``) and trusts the exchanges with the
smallest round trip. Here the two directions are used apart, which needs far fewer samples: the fastest uplink of
one exchange and the fastest downlink of another pin theta between them, however slow their other halves were.
Every kept exchange gives an upper point ``(t0, t1 - t0)`` and a lower point ``(t3, t2 - t3)``; theta is a line
``offset + skew * (local - ref)`` (the local crystal drifts by tens of ppm). Its slope is the mean of the slopes of
the lower convex hull of the upper points and the upper convex hull of the lower points, each taken at the
points' mean time (the line under all points that lies highest on average: the fit of Moon, Skelly and Towsley
for one-way delays). With that slope, the line is put midway between the lowest upper point and the highest lower
point. The assumption, as in NTP, is that both directions share the same fastest time; slow exchanges and TCP
retransmits only lift upper points or lower lower points, so they never pull the line.

Before the samples span `min_skew_span` seconds the skew is taken as 0; it is clamped to `max_skew` (crystal
oscillators drift by tens of ppm; 500 ppm is a broken clock, not drift). Samples older than `max_age` are dropped.

An exchange that contradicts the current estimate by more than `step_threshold` (theta above its upper bound or
below its lower bound: impossible unless a clock jumped) means the local or server clock was stepped: the old
samples are dropped and a new burst of pings starts.

Time is an argument: callers pass local clock readings in seconds (any epoch, one clock), and the server's in its
own seconds. Nothing here reads a clock. `next_ping_in()` says how long to wait before the next exchange: quickly at
first (a burst, to sync within a second of joining), then at a steady pace.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Sequence
from typing import Final

BURST_SAMPLES: Final = 8
BURST_INTERVAL: Final = 0.1
STEADY_INTERVAL: Final = 1.0

Point = tuple[float, float]


@dataclasses.dataclass(frozen=True, slots=True)
class ClockSample:
    """One ping/pong exchange: local send t0, server receive t1, server send t2, local receive t3 (seconds)."""

    t0: float
    t1: float
    t2: float
    t3: float

    @property
    def delay(self) -> float:
        """Return the round trip spent on the network (never below 0 for a sane exchange)."""
        return (self.t3 - self.t0) - (self.t2 - self.t1)

    @property
    def offset(self) -> float:
        """Return the server clock minus the local clock that this exchange suggests."""
        return ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2

    @property
    def local_mid(self) -> float:
        """Return the local time the offset refers to: halfway between send and receive."""
        return (self.t0 + self.t3) / 2


@dataclasses.dataclass(frozen=True, slots=True)
class ClockEstimate:
    """The server clock as a line through local time: ``server = local + offset + skew * (local - ref)``."""

    offset: float
    skew: float
    ref: float
    delay: float
    """The round trip left between the fastest uplink and the fastest downlink of the samples (seconds)."""
    samples: int
    """How many samples the fit used."""

    def server_time(self, local: float) -> float:
        """Return the server clock reading at local clock reading `local`."""
        return local + self.offset + self.skew * (local - self.ref)

    def local_time(self, server: float) -> float:
        """Return the local clock reading when the server clock reads `server` (the inverse of server_time)."""
        return self.ref + (server - self.offset - self.ref) / (1.0 + self.skew)

    @property
    def error_bound(self) -> float:
        """Return the worst-case error of the offset if both directions are equally fast at best: delay / 2."""
        return self.delay / 2


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _hull(points: Sequence[Point], lower: bool) -> list[Point]:
    """Return the lower (or upper) convex hull of `points`, left to right."""
    sign = 1.0 if lower else -1.0
    hull: list[Point] = []
    for p in sorted(points):
        while len(hull) >= 2 and sign * _cross(hull[-2], hull[-1], p) <= 0:
            hull.pop()
        hull.append(p)
    return hull


def _slopes(hull: Sequence[Point]) -> list[float]:
    return [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(hull, hull[1:]) if b[0] > a[0]]


def _widest_slope(uppers: Sequence[Point], lowers: Sequence[Point], limit: float) -> float:
    """Return the slope in [-limit, limit] that leaves the widest band between the upper and lower points.

    The width ``min(upper - slope * x) - max(lower - slope * x)`` is concave in the slope and changes its own
    slope only where the slope equals a hull edge's, so the widest is at one of those (or at a limit).
    """
    under, over = _hull(uppers, lower=True), _hull(lowers, lower=False)
    candidates = [b for b in _slopes(under) + _slopes(over) if -limit < b < limit] + [-limit, limit]

    def width(b: float) -> float:
        return min(y - b * x for x, y in under) - max(y - b * x for x, y in over)

    return max(candidates, key=lambda b: (width(b), -abs(b)))


@dataclasses.dataclass(frozen=True, slots=True)
class _Band:
    """The last fit: theta lies between ``low + skew * (x - ref)`` and ``high + skew * (x - ref)``."""

    ref: float
    skew: float
    low: float
    high: float

    def contradicts(self, sample: ClockSample, tolerance: float) -> bool:
        upper = sample.t1 - sample.t0 - self.skew * (sample.t0 - self.ref)
        lower = sample.t2 - sample.t3 - self.skew * (sample.t3 - self.ref)
        return upper < self.low - tolerance or lower > self.high + tolerance


class ClockSync:
    """Collect exchanges and estimate the server clock; see the module docstring for how."""

    def __init__(self, *, max_age: float = 120.0, max_samples: int = 256, min_skew_span: float = 20.0,
                 max_skew: float = 500e-6, step_threshold: float = 0.005) -> None:
        if max_samples < 1 or max_age <= 0 or min_skew_span < 0 or max_skew < 0 or step_threshold <= 0:
            raise ValueError("ClockSync: need max_samples >= 1, max_age > 0, min_skew_span >= 0, max_skew >= 0 "
                             "and step_threshold > 0")
        self.max_age = max_age
        self.min_skew_span = min_skew_span
        self.max_skew = max_skew
        self.step_threshold = step_threshold
        self._samples: deque[ClockSample] = deque(maxlen=max_samples)
        self._estimate: ClockEstimate | None = None
        self._band: _Band | None = None
        self._added = 0
        self._steps = 0

    @property
    def estimate(self) -> ClockEstimate | None:
        """Return the current estimate, or None before the first usable sample."""
        return self._estimate

    @property
    def sample_count(self) -> int:
        """Return how many samples are kept now."""
        return len(self._samples)

    @property
    def steps(self) -> int:
        """Return how many clock steps were detected (each one restarted the estimate)."""
        return self._steps

    def add(self, t0: float, t1: float, t2: float, t3: float) -> ClockEstimate | None:
        """Take one exchange, re-estimate and return the new estimate; an insane exchange is ignored.

        Insane: a non-finite value, t3 < t0, t2 < t1, or a delay below zero (beyond 1 ms of rounding).
        """
        values = (t0, t1, t2, t3)
        if not all(math.isfinite(v) for v in values) or t3 < t0 or t2 < t1:
            return self._estimate
        sample = ClockSample(t0, t1, t2, t3)
        if sample.delay < -0.001:
            return self._estimate
        if self._band is not None and self._band.contradicts(sample, self.step_threshold):
            self._samples.clear()
            self._added = 0
            self._steps += 1
        self._samples.append(sample)
        self._added += 1
        self._estimate = self._fit(now=t3)
        return self._estimate

    def next_ping_in(self) -> float:
        """Return how long (seconds) to wait before the next exchange: a quick burst first, then a steady pace."""
        return BURST_INTERVAL if self._added < BURST_SAMPLES else STEADY_INTERVAL

    def _fit(self, now: float) -> ClockEstimate | None:
        while self._samples and self._samples[0].t3 < now - self.max_age:
            self._samples.popleft()
        if not self._samples:
            self._band = None
            return None
        ref = self._samples[-1].t3
        uppers = [(s.t0 - ref, s.t1 - s.t0) for s in self._samples]
        lowers = [(s.t3 - ref, s.t2 - s.t3) for s in self._samples]
        skew = 0.0
        if uppers[-1][0] - uppers[0][0] >= self.min_skew_span:
            skew = _widest_slope(uppers, lowers, self.max_skew)
        high = min(y - skew * x for x, y in uppers)
        low = max(y - skew * x for x, y in lowers)
        self._band = _Band(ref=ref, skew=skew, low=low, high=high)
        return ClockEstimate(offset=(high + low) / 2, skew=skew, ref=ref, delay=max(0.0, high - low),
                             samples=len(self._samples))
