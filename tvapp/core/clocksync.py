"""Estimate the server's clock from NTP-style four-timestamp exchanges: offset, drift and how sure we are.

A client sends ``ping{t0}`` (its local clock), the server answers ``pong{t0, t1, t2}`` (its clock when the ping
arrived and when the pong left), and the client notes ``t3`` (its local clock when the pong arrived). With
``theta`` the server clock minus the local clock, and ``up``/``down`` the one-way network times,

    t1 - t0 = theta + up          an upper bound on theta, at local time t0
    t2 - t3 = theta - down        a lower bound on theta, at local time t3

Classic NTP averages the two (``offset = ((t1 - t0) + (t2 - t3)) / 2``) and trusts the exchanges with the smallest
round trip. Here the two directions are used apart, which needs far fewer samples: the fastest uplink of one
exchange and the fastest downlink of another pin theta between them, however slow their other halves were. Slow
exchanges and TCP retransmits only lift upper bounds or lower lower bounds, so they never pull the estimate. As in
NTP, both directions are assumed to be equally fast at best.

Theta drifts (crystals are off by tens of ppm), so it is a line ``offset + skew * (local - ref)``, ``ref`` being the
newest sample. For a given skew ``b`` the band left for theta at ``ref`` is

    h(b) = min(upper - b * x)    g(b) = max(lower - b * x)      (x: sample time - ref)

and theta is put midway, ``(h(b) + g(b)) / 2``. The skew is not the single best-fitting slope (that one swings
whenever a lucky sample lands near another): it is averaged over every slope the samples allow, weighted by how
likely the samples are under it when the network adds a random extra delay above its fastest time. That weight is
``exp(k * ((h(b) + b * mean_x_up) - (g(b) + b * mean_x_down)))``, ``k`` growing with the sample count and the
sharper the network's floor (from the median extra delay). The log weight and the midpoint are linear in ``b``
between the slopes of the hull edges of the two point clouds, so the averages are exact sums over those pieces;
skews beyond `max_skew` (500 ppm is a broken clock, not drift) are not considered.

The samples of the last `max_age` seconds are kept (at most `max_samples`). An exchange that contradicts the
current band by more than `step_threshold` (theta above its upper bound or below its lower bound: impossible unless
a clock jumped) means the local or server clock was stepped: the old samples are dropped and a new burst starts.

Time is an argument: callers pass local clock readings in seconds (any epoch, one clock), and the server's in its
own seconds. Nothing here reads a clock. `next_ping_in()` says how long to wait before the next exchange: quickly at
first (a burst, to sync within a second of joining; then a faster pace while the drift is still unknown), then at a
steady pace.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Sequence
from typing import Final

BURST_SAMPLES: Final = 8
BURST_INTERVAL: Final = 0.1
WARMUP_SAMPLES: Final = 250
WARMUP_INTERVAL: Final = 0.25
STEADY_INTERVAL: Final = 1.0
MIN_SPREAD: Final = 1e-6
"""The smallest median extra delay believed (seconds): keeps the weights finite on perfectly regular samples."""

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


def _hull(points: Sequence[Point], lower: bool) -> list[Point]:
    """Return the lower (or upper) convex hull of `points`, left to right."""
    sign = 1.0 if lower else -1.0
    hull: list[Point] = []
    for p in sorted(points):
        while len(hull) >= 2 and sign * ((hull[-1][0] - hull[-2][0]) * (p[1] - hull[-2][1])
                                         - (hull[-1][1] - hull[-2][1]) * (p[0] - hull[-2][0])) <= 0:
            hull.pop()
        hull.append(p)
    return hull


def _edge_slopes(hull: Sequence[Point]) -> list[float]:
    return [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(hull, hull[1:]) if b[0] > a[0]]


def _spread(residuals: list[float]) -> float:
    """Return the median of `residuals` above their minimum."""
    residuals.sort()
    return residuals[len(residuals) // 2] - residuals[0]


def _segment_moments(width: float, l0: float, l1: float) -> tuple[float, float]:
    """Return the integrals of exp(l) and of u * exp(l) over a piece where l goes linearly from l0 to l1, u 0 to 1.

    Both scaled by the piece's width; l0, l1 <= 0 (the log weights are taken relative to their maximum).
    """
    d = l1 - l0
    e0, e1 = math.exp(l0), math.exp(l1)
    if abs(d) < 1e-4:
        return width * e0 * (1 + d / 2 + d * d / 6), width * e0 * (0.5 + d / 3 + d * d / 8)
    return width * (e1 - e0) / d, width * (e1 * (d - 1) + e0) / (d * d)


@dataclasses.dataclass(frozen=True, slots=True)
class _Fit:
    """The skew and theta's band [low, high] at x = 0 under it."""

    skew: float
    low: float
    high: float


def _fit_line(uppers: Sequence[Point], lowers: Sequence[Point], sharpness: float, limit: float) -> _Fit:
    """Average the midline over the allowed skews, weighted as the module docstring says."""
    under, over = _hull(uppers, lower=True), _hull(lowers, lower=False)
    mean_up = sum(x for x, _ in uppers) / len(uppers)
    mean_down = sum(x for x, _ in lowers) / len(lowers)
    slopes = sorted({b for b in _edge_slopes(under) + _edge_slopes(over) if -limit < b < limit} | {-limit, limit})
    highs = [min(y - b * x for x, y in under) for b in slopes]
    lows = [max(y - b * x for x, y in over) for b in slopes]
    logs = [sharpness * ((h + b * mean_up) - (g + b * mean_down)) for b, h, g in zip(slopes, highs, lows)]
    top = max(logs)
    total = skew_sum = mid_sum = 0.0
    for i in range(len(slopes) - 1):
        width = slopes[i + 1] - slopes[i]
        m0, m1 = _segment_moments(width, logs[i] - top, logs[i + 1] - top)
        mid0 = (highs[i] + lows[i]) / 2
        mid1 = (highs[i + 1] + lows[i + 1]) / 2
        total += m0
        skew_sum += slopes[i] * m0 + width * m1
        mid_sum += mid0 * m0 + (mid1 - mid0) * m1
    if total <= 0:
        best = logs.index(top)
        return _Fit(skew=slopes[best], low=lows[best], high=highs[best])
    skew, mid = skew_sum / total, mid_sum / total
    high = min(y - skew * x for x, y in under)
    low = max(y - skew * x for x, y in over)
    # The band under the averaged skew, re-centred on the averaged midpoint (they differ by the averaging only).
    half = max(0.0, high - low) / 2
    return _Fit(skew=skew, low=mid - half, high=mid + half)


class ClockSync:
    """Collect exchanges and estimate the server clock; see the module docstring for how."""

    def __init__(self, *, max_age: float = 600.0, max_samples: int = 600, max_skew: float = 500e-6,
                 step_threshold: float = 0.005) -> None:
        if max_samples < 1 or not max_age > 0 or not max_skew > 0 or not step_threshold > 0:
            raise ValueError("ClockSync: need max_samples >= 1, max_age > 0, max_skew > 0 and step_threshold > 0")
        self.max_age = max_age
        self.max_skew = max_skew
        self.step_threshold = step_threshold
        self._samples: deque[ClockSample] = deque(maxlen=max_samples)
        self._estimate: ClockEstimate | None = None
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
        if self._contradicts(sample):
            self._samples.clear()
            self._added = 0
            self._steps += 1
        self._samples.append(sample)
        self._added += 1
        self._estimate = self._fit(now=t3)
        return self._estimate

    def next_ping_in(self) -> float:
        """Return how long (seconds) to wait before the next exchange: a quick burst first, then a steady pace."""
        if self._added < BURST_SAMPLES:
            return BURST_INTERVAL
        return WARMUP_INTERVAL if self._added < WARMUP_SAMPLES else STEADY_INTERVAL

    def _contradicts(self, sample: ClockSample) -> bool:
        """Return whether `sample` leaves no room for the current estimate: a clock was stepped."""
        est = self._estimate
        if est is None:
            return False
        upper = sample.t1 - sample.t0
        lower = sample.t2 - sample.t3
        theta_up = est.server_time(sample.t0) - sample.t0
        theta_down = est.server_time(sample.t3) - sample.t3
        return upper < theta_up - self.step_threshold or lower > theta_down + self.step_threshold

    def _fit(self, now: float) -> ClockEstimate | None:
        while self._samples and self._samples[0].t3 < now - self.max_age:
            self._samples.popleft()
        if not self._samples:
            return None
        ref = self._samples[-1].t3
        uppers = [(s.t0 - ref, s.t1 - s.t0) for s in self._samples]
        lowers = [(s.t3 - ref, s.t2 - s.t3) for s in self._samples]
        prior = self._estimate.skew if self._estimate is not None else 0.0
        spread = (_spread([y - prior * x for x, y in uppers]) + _spread([prior * x - y for x, y in lowers])) / 2
        # A uniform extra delay on [0, J] has median J/2 and density 1/J at the floor; half that density was
        # steadier in simulation while few samples are in.
        sharpness = len(uppers) / (4 * max(spread, MIN_SPREAD))
        fit = _fit_line(uppers, lowers, sharpness, self.max_skew)
        return ClockEstimate(offset=(fit.low + fit.high) / 2, skew=fit.skew, ref=ref,
                             delay=fit.high - fit.low, samples=len(self._samples))
