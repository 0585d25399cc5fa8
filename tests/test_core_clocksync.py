"""Tests for tvapp.core.clocksync: the server clock estimated through a simulated network with a wrong local clock."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.clocksync import (
    BURST_INTERVAL,
    BURST_SAMPLES,
    STEADY_INTERVAL,
    WARMUP_INTERVAL,
    WARMUP_SAMPLES,
    ClockEstimate,
    ClockSample,
    ClockSync,
)

EPOCH = 1.7e9                  # server clocks read time.time(): keep the magnitudes (and float rounding) real


@dataclasses.dataclass
class Link:
    """A client and a server: the server's clock is true time, the client's is off by `offset` and runs `skew` fast.

    One-way delays are uniform in `delay`, `outliers` of them gain 200-300 ms (a TCP retransmit), `loss` of the
    exchanges never come back. Pings go out when `ClockSync.next_ping_in()` says.
    """

    seed: int
    offset: float = 3.7
    skew: float = 100e-6
    delay: tuple[float, float] = (0.030, 0.070)
    loss: float = 0.01
    outliers: float = 0.02

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.sync = ClockSync()
        self.now = EPOCH + self.rng.uniform(0.0, 1.0)
        self.start = self.now
        self.errors: list[tuple[float, float]] = []
        """(seconds since start, estimate minus truth) after each exchange."""

    def local(self, t: float) -> float:
        """Return the client's clock reading at true time `t`."""
        return EPOCH + (t - EPOCH) * (1 + self.skew) + self.offset

    def true_at(self, local: float) -> float:
        """Return the true time at which the client's clock reads `local`."""
        return EPOCH + (local - self.offset - EPOCH) / (1 + self.skew)

    def one_way(self) -> float:
        extra = self.rng.uniform(0.2, 0.3) if self.rng.random() < self.outliers else 0.0
        return self.rng.uniform(*self.delay) + extra

    def exchange(self) -> None:
        """Ping, maybe get the pong, and note the estimate's error when it arrives."""
        t0 = self.local(self.now)
        if self.rng.random() < self.loss:
            return
        t1 = self.now + self.one_way()
        t2 = t1 + self.rng.uniform(0.0001, 0.001)
        arrival = t2 + self.one_way()
        t3 = self.local(arrival)
        estimate = self.sync.add(t0, t1, t2, t3)
        assert estimate is not None
        self.errors.append((arrival - self.start, estimate.server_time(t3) - arrival))

    def run(self, seconds: float) -> list[tuple[float, float]]:
        """Exchange at the pace ClockSync asks for until `seconds` have passed; return the errors."""
        while self.now - self.start < seconds:
            self.exchange()
            self.now = self.true_at(self.local(self.now) + self.sync.next_ping_in())
        return self.errors

    def true_skew(self) -> float:
        """Return d(server - local)/d(local): what ClockEstimate.skew should be."""
        return -self.skew / (1 + self.skew)


def worst(errors: list[tuple[float, float]], since: float, until: float = math.inf) -> float:
    """Return the largest |error| of the exchanges between `since` and `until` seconds."""
    return max(abs(e) for t, e in errors if since <= t < until)


# --- one exchange, one line -------------------------------------------------------------------------------------

def test_a_sample_gives_offset_delay_and_its_instant() -> None:
    s = ClockSample(t0=10.0, t1=110.03, t2=110.031, t3=10.081)
    assert s.delay == pytest.approx(0.080)
    assert s.offset == pytest.approx(100.0 - 0.010)       # 30 ms up, 50 ms down: half the asymmetry is wrong
    assert s.local_mid == pytest.approx(10.0405)


@given(offset=st.floats(-1e4, 1e4), skew=st.floats(-1e-3, 1e-3), ref=st.floats(0, 2e9), dt=st.floats(-1e4, 1e4))
def test_local_time_inverts_server_time(offset: float, skew: float, ref: float, dt: float) -> None:
    est = ClockEstimate(offset=offset, skew=skew, ref=ref, delay=0.01, samples=1)
    local = ref + dt
    assert est.local_time(est.server_time(local)) == pytest.approx(local, abs=1e-5)
    assert est.error_bound == pytest.approx(0.005)


def test_one_exchange_puts_the_offset_midway_and_bounds_it_by_half_the_round_trip() -> None:
    sync = ClockSync()
    est = sync.add(100.0, 200.03, 200.031, 100.081)
    assert est is not None and est.skew == 0.0 and est.samples == 1
    assert est.server_time(100.081) == pytest.approx(200.081 - 0.010)
    assert est.error_bound == pytest.approx(0.040)


def test_insane_exchanges_are_ignored() -> None:
    sync = ClockSync()
    assert sync.add(1.0, 2.0, 2.0, math.nan) is None
    assert sync.add(1.0, 2.0, 2.0, 0.5) is None             # answer before the question
    assert sync.add(1.0, 2.0, 1.9, 1.5) is None             # server sent before it received
    assert sync.add(1.0, 2.0, 2.9, 1.5) is None             # the server took longer than the round trip
    assert sync.add(1.0, math.inf, 3.0, 1.5) is None
    good = sync.add(1.0, 2.0, 2.0, 1.1)
    assert good is not None and sync.sample_count == 1
    assert sync.add(1.0, 2.0, 2.0, math.nan) is good


@pytest.mark.parametrize("kwargs", [{"max_samples": 0}, {"max_age": 0.0}, {"max_skew": 0.0},
                                    {"step_threshold": -1.0}, {"max_age": math.nan}])
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ClockSync(**kwargs)  # type: ignore[arg-type]


def test_pings_come_in_a_burst_then_faster_while_warming_up_then_steadily() -> None:
    sync = ClockSync()
    paces = []
    for i in range(WARMUP_SAMPLES + 5):
        paces.append(sync.next_ping_in())
        sync.add(float(i), 5.0 + i, 5.0 + i, i + 0.001)
    assert paces[:BURST_SAMPLES] == [BURST_INTERVAL] * BURST_SAMPLES
    assert set(paces[BURST_SAMPLES:WARMUP_SAMPLES]) == {WARMUP_INTERVAL}
    assert paces[WARMUP_SAMPLES:] == [STEADY_INTERVAL] * 5
    assert BURST_SAMPLES * BURST_INTERVAL + (WARMUP_SAMPLES - BURST_SAMPLES) * WARMUP_INTERVAL < 70


def test_old_samples_age_out() -> None:
    sync = ClockSync(max_age=10.0)
    for i in range(30):
        sync.add(float(i), 5.0 + i, 5.0 + i, i + 0.001)
    assert sync.sample_count == 11
    assert ClockSync(max_samples=5).add(0, 1, 1, 0.1) is not None


# --- through a network ---------------------------------------------------------------------------------------

def test_loopback_without_jitter_is_right_within_half_a_millisecond() -> None:
    link = Link(seed=7, delay=(0.00005, 0.00007), loss=0.0, outliers=0.0)
    errors = link.run(180)
    assert worst(errors, 0) < 0.0005
    assert worst(errors, 1) < 0.0001


def test_loopback_with_rare_scheduling_hiccups_stays_within_half_a_millisecond() -> None:
    link = Link(seed=8, delay=(0.00005, 0.0003), loss=0.0, outliers=0.01)
    assert worst(link.run(120), 0) < 0.0005


@pytest.mark.parametrize("seed", range(1000, 1024))
def test_jitter_loss_and_retransmits_within_5_ms_after_10_s_and_2_ms_after_60_s(seed: int) -> None:
    # netem-like: 50 ms +- 20 ms each way, 1% lost, 2% of trips 200-300 ms late; clock +3.7 s and 100 ppm fast.
    errors = Link(seed=seed).run(150)
    assert worst(errors, 10) <= 0.005
    assert worst(errors, 60) <= 0.002


@pytest.mark.parametrize("seed,skew", [(2000, 100e-6), (2001, -100e-6), (2002, 30e-6), (2003, 250e-6)])
def test_drift_is_tracked_for_ten_minutes(seed: int, skew: float) -> None:
    link = Link(seed=seed, skew=skew)
    errors = link.run(600)
    assert worst(errors, 60) <= 0.002
    est = link.sync.estimate
    assert est is not None
    assert abs(est.skew - link.true_skew()) < 5e-6
    assert all(abs(e) <= 0.035 for _, e in errors)          # never beyond half the slowest sane round trip
    assert link.sync.steps == 0


def test_the_offset_sign_and_size_do_not_matter() -> None:
    for offset in (-86400.0, -0.25, 0.0, 1e6):
        errors = Link(seed=3000, offset=offset).run(90)
        assert worst(errors, 60) <= 0.002, offset


def test_a_burst_of_retransmits_does_not_pull_the_estimate() -> None:
    link = Link(seed=4000)
    link.run(120)
    link.outliers = 1.0                                      # every trip now 200-300 ms late, for a minute
    errors = link.run(180)
    assert worst(errors, 120) <= 0.002


def test_a_stepped_clock_restarts_the_estimate_with_a_new_burst() -> None:
    link = Link(seed=5000, loss=0.0)
    link.run(120)
    assert link.sync.next_ping_in() == STEADY_INTERVAL
    link.offset += 0.75                                      # the client's clock is set forward (an NTP step)
    link.exchange()
    assert link.sync.steps == 1 and link.sync.sample_count == 1
    assert link.sync.next_ping_in() == BURST_INTERVAL
    errors = link.run(240)
    assert worst(errors, 121) < 0.03
    assert worst(errors, 130) <= 0.005


@pytest.mark.parametrize("delay,bound", [((0.030, 0.070), 0.06), ((0.0001, 0.0002), 0.01)])
def test_a_broken_clock_beyond_max_skew_is_followed_by_restarts(delay: tuple[float, float], bound: float) -> None:
    # 3000 ppm is no crystal's drift (it is a clock being slewed): the estimate restarts whenever it is caught out,
    # which happens once it is wrong by more than the fastest one-way trip plus step_threshold.
    link = Link(seed=6000, skew=3000e-6, delay=delay)
    errors = link.run(300)
    est = link.sync.estimate
    assert est is not None and abs(est.skew) <= link.sync.max_skew
    assert link.sync.steps >= 3
    assert worst(errors, 10) < bound
