"""Tests for tvapp.core.quality: the E-model levels 0..5, the bitrate cap, and the meters over cumulative counters."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.quality import (
    BROKEN,
    Counters,
    DirectionMeter,
    LinkMeasures,
    QualityMeter,
    announce_due,
    combine,
    level_for,
    mos,
    r_factor,
)


@pytest.mark.parametrize(("loss", "jitter", "rtt", "level"), [
    (0.0, 2.0, 100.0, 5),       # a good home link: 50 ms each way
    (0.0, 0.0, None, 5),
    (0.005, 5.0, 40.0, 5),
    (0.02, 2.0, 100.0, 4),      # 2 % loss
    (0.05, 2.0, 100.0, 3),
    (0.10, 2.0, 100.0, 2),      # 10 % loss
    (0.30, 2.0, 100.0, 1),
    (1.0, 0.0, 0.0, 1),         # nothing gets through but the reports: bad, not broken
    (0.0, 2.0, 600.0, 3),       # 300 ms each way
    (0.02, 2.0, 600.0, 2),
    (0.10, 2.0, 600.0, 1),
    (0.0, 100.0, 100.0, 4),     # jitter is delay (a jitter buffer)
    (0.0, 200.0, 100.0, 2),
    (-0.01, 2.0, 100.0, 5),     # duplicates can make RTP's loss negative
])
def test_levels_follow_the_e_model(loss: float, jitter: float, rtt: float | None, level: int) -> None:
    assert level_for(LinkMeasures(loss=loss, jitter_ms=jitter, rtt_ms=rtt)) == level


@pytest.mark.parametrize(("achieved", "wanted", "level"), [
    (1_000_000, 1_000_000, 5),
    (950_000, 1_000_000, 5),
    (850_000, 1_000_000, 4),
    (600_000, 1_000_000, 3),
    (400_000, 1_000_000, 2),
    (100_000, 1_000_000, 1),
    (100_000, None, 5),          # nothing wanted: no cap
    (100_000, 0, 5),
])
def test_the_bitrate_share_caps_the_level(achieved: float, wanted: float | None, level: int) -> None:
    assert level_for(LinkMeasures(loss=0.0, rtt_ms=40.0, achieved_bps=achieved, wanted_bps=wanted)) == level


def test_the_cap_never_raises_a_level() -> None:
    assert level_for(LinkMeasures(loss=0.10, rtt_ms=100.0, achieved_bps=1e6, wanted_bps=1e6)) == 2


def test_mos_is_the_g107_curve_clamped() -> None:
    assert mos(0.0) == 1.0 and mos(100.0) == 4.5
    assert mos(93.2) == pytest.approx(4.41, abs=0.01)
    assert mos(50.0) == pytest.approx(2.58, abs=0.01)


def test_bad_measures_are_refused() -> None:
    with pytest.raises(ValueError):
        r_factor(math.nan, 0.0, 0.0)
    with pytest.raises(ValueError):
        r_factor(0.0, -1.0, 0.0)
    with pytest.raises(ValueError):
        r_factor(0.0, 0.0, -5.0)


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 500), st.floats(0, 2000), st.floats(0, 2000))
def test_more_loss_or_delay_never_raises_the_level(loss_a: float, loss_b: float, jitter: float,
                                                   rtt_a: float, rtt_b: float) -> None:
    worse = LinkMeasures(loss=max(loss_a, loss_b), jitter_ms=jitter, rtt_ms=max(rtt_a, rtt_b))
    better = LinkMeasures(loss=min(loss_a, loss_b), jitter_ms=jitter, rtt_ms=min(rtt_a, rtt_b))
    assert 1 <= level_for(worse) <= level_for(better) <= 5


def test_combine_takes_the_worse_direction() -> None:
    assert combine(5, 2) == 2 and combine(None, 3) == 3 and combine(4, None) == 4 and combine(None, None) is None
    assert combine(0, 5) == 0


def feed(meter: DirectionMeter, seconds: int, per_second: int, lost_per_second: int, start: int = 0,
         received: int = 0, lost: int = 0, rtt: float = 100.0) -> tuple[int, int]:
    for t in range(start, start + seconds):
        received += per_second
        lost += lost_per_second
        meter.update(Counters(received=received, lost=lost, jitter_ms=2.0, rtt_ms=rtt), t * 1000.0)
    return received, lost


def test_the_meter_counts_loss_over_its_window() -> None:
    meter = DirectionMeter(window_ms=5000)
    assert meter.update(Counters(received=0, lost=0), 0.0) is None          # one sample: no interval yet
    received, lost = feed(meter, 6, 98, 2, start=1)
    assert meter.report is not None and meter.report.level == 4
    assert meter.report.measures is not None and meter.report.measures.loss == pytest.approx(0.02)
    feed(meter, 6, 100, 0, start=7, received=received, lost=lost)           # the lossy seconds leave the window
    assert meter.report.level == 5


def test_silence_for_the_stall_time_is_broken_and_packets_bring_it_back() -> None:
    meter = QualityMeter(window_ms=5000, stall_ms=3000)
    for t in range(4):
        meter.update(Counters(received=100 * t, lost=0, rtt_ms=40), None, t * 1000.0)
    assert meter.level == 5
    meter.update(Counters(received=300, lost=0, rtt_ms=40), None, 5000.0)
    assert meter.level == 5                    # 2 s of silence: not yet
    meter.update(Counters(received=300, lost=0, rtt_ms=40), None, 6000.0)
    assert meter.level == BROKEN
    received = 300
    for t in range(7, 14):
        received += 100
        meter.update(Counters(received=received, lost=0, rtt_ms=40), None, t * 1000.0)
    assert meter.level == 5


def test_a_direction_that_carries_nothing_does_not_count() -> None:
    meter = QualityMeter()
    for t in range(3):
        meter.update(Counters(received=100 * t, lost=10 * t, rtt_ms=40), None, t * 1000.0)
    assert meter.level == 2
    assert meter.update(None, None, 3000.0) is None


def test_the_participant_level_is_the_worse_direction() -> None:
    meter = QualityMeter()
    for t in range(3):
        meter.update(Counters(received=100 * t, lost=0, rtt_ms=40),
                     Counters(received=90 * t, lost=10 * t, rtt_ms=40), t * 1000.0)
    assert meter.uplink.report is not None and meter.uplink.report.level == 5
    assert meter.level == 2


def test_a_restarted_stream_starts_a_new_window() -> None:
    meter = DirectionMeter()
    feed(meter, 4, 50, 50)
    assert meter.report is not None and meter.report.level == 1
    meter.update(Counters(received=10, lost=0, rtt_ms=40), 5000.0)
    meter.update(Counters(received=110, lost=0, rtt_ms=40), 6000.0)
    assert meter.report.level == 5


def test_bytes_give_the_achieved_bitrate() -> None:
    meter = DirectionMeter()
    meter.update(Counters(received=0, lost=0, bytes=0, wanted_bps=1_000_000, rtt_ms=40), 0.0)
    report = meter.update(Counters(received=100, lost=0, bytes=50_000, wanted_bps=1_000_000, rtt_ms=40), 1000.0)
    assert report is not None and report.measures is not None
    assert report.measures.achieved_bps == pytest.approx(400_000)
    assert report.level == 2


def test_the_room_hears_levels_on_a_change_and_every_5_seconds_otherwise() -> None:
    assert announce_due({"a": 5}, {}, None, 0.0)                         # first time
    assert not announce_due({"a": 5}, {"a": 5}, 0.0, 4999.0)             # same levels, too soon
    assert announce_due({"a": 5}, {"a": 5}, 0.0, 5000.0)                 # the periodic reminder
    assert announce_due({"a": 4}, {"a": 5}, 0.0, 1000.0)                 # a change goes out at once
    assert announce_due({"a": 5, "b": None}, {"a": 5}, 0.0, 1000.0)      # someone new
    assert not announce_due({"a": 5}, {"a": 5, "gone": 3}, 0.0, 1000.0)  # someone leaving is not news here
    assert not announce_due({}, {}, None, 0.0)                           # nobody to tell about
    assert not announce_due({"a": None, "b": None}, {}, None, 0.0)       # nothing known (no media): nothing said
    assert not announce_due({"a": None}, {"a": None}, 0.0, 9000.0)       # ... not even as a reminder
    assert announce_due({"a": None}, {"a": 3}, 0.0, 1000.0)              # a known level lost is news
