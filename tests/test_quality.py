"""Tests for tvapp.core.quality: levels from loss, jitter and frame rate; the meter over cumulative counters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.quality import QualityMeter, quality_level


@pytest.mark.parametrize(("loss", "jitter", "level"), [
    (0.0, 5.0, 3),
    (0.019, 29.0, 3),
    (0.02, 10.0, 2),
    (0.0, 30.0, 2),
    (0.049, 59.0, 2),
    (0.05, 10.0, 1),
    (0.01, 60.0, 1),
    (0.01, 500.0, 1),
    (0.149, 10.0, 1),
    (0.15, 10.0, 0),
    (1.0, 0.0, 0),
    (-0.01, 5.0, 3),                    # duplicates can make RTP's loss negative
])
def test_levels_follow_the_documented_thresholds(loss: float, jitter: float, level: int) -> None:
    assert quality_level(loss, jitter) == level


def test_frame_rate_caps_the_level() -> None:
    assert quality_level(0.0, 5.0, 30.0, 30.0) == 3
    assert quality_level(0.0, 5.0, 23.0, 30.0) == 2
    assert quality_level(0.0, 5.0, 14.0, 30.0) == 1
    assert quality_level(0.0, 5.0, 0.0, 30.0) == 0
    assert quality_level(0.0, 5.0, 0.0) == 0            # frozen video is lost even without a target
    assert quality_level(0.0, 5.0, 10.0) == 3           # no target: any moving video is fine
    assert quality_level(0.1, 5.0, 30.0, 30.0) == 1     # the rate never raises a level


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="jitter"):
        quality_level(0.0, -1.0)
    with pytest.raises(ValueError, match="number"):
        quality_level(float("nan"), 1.0)


@given(loss=st.floats(0, 1), jitter=st.floats(0, 1000), more_loss=st.floats(0, 1), more_jitter=st.floats(0, 1000))
def test_worse_stats_never_give_a_better_level(loss: float, jitter: float, more_loss: float,
                                               more_jitter: float) -> None:
    level = quality_level(loss, jitter)
    assert 0 <= level <= 3
    assert quality_level(max(loss, more_loss), max(jitter, more_jitter)) <= level


def test_meter_reports_nothing_until_it_has_an_interval() -> None:
    meter = QualityMeter()
    assert meter.update(100, 0, 5.0, 0.0) is None
    assert meter.level is None
    assert meter.update(200, 0, 5.0, 1000.0) == 3
    assert meter.level == 3


def test_meter_uses_the_loss_since_the_previous_update() -> None:
    meter = QualityMeter()
    meter.update(1000, 500, 5.0, 0.0)                    # a bad past does not count
    assert meter.update(1100, 500, 5.0, 1000.0) == 3
    assert meter.update(1180, 520, 5.0, 2000.0) == 0     # 20 of 100 lost this second
    assert meter.update(1280, 521, 5.0, 3000.0) == 3


def test_meter_levels_for_loss_and_jitter_intervals() -> None:
    meter = QualityMeter()
    meter.update(0, 0, 0.0, 0.0)
    assert meter.update(97, 3, 10.0, 1000.0) == 2
    assert meter.update(187, 13, 10.0, 2000.0) == 1
    assert meter.update(287, 13, 80.0, 3000.0) == 1


def test_meter_goes_to_lost_after_three_seconds_without_packets() -> None:
    meter = QualityMeter()
    meter.update(100, 0, 5.0, 0.0)
    assert meter.update(200, 0, 5.0, 1000.0) == 3
    assert meter.update(200, 0, 5.0, 2000.0) == 3        # 1 s quiet: keep the last level
    assert meter.update(200, 0, 5.0, 3999.0) == 3
    assert meter.update(200, 0, 5.0, 4000.0) == 0        # 3 s since the last packet
    assert meter.update(300, 0, 5.0, 5000.0) == 3        # packets again


def test_meter_restarts_when_counters_go_back() -> None:
    meter = QualityMeter()
    meter.update(5000, 10, 5.0, 0.0)
    assert meter.update(5100, 10, 5.0, 1000.0) == 3
    assert meter.update(50, 0, 5.0, 2000.0) is None      # a new stream: start over
    assert meter.update(150, 0, 5.0, 3000.0) == 3


def test_meter_reads_the_frame_rate_from_frames_decoded() -> None:
    meter = QualityMeter(expected_fps=30.0)
    meter.update(0, 0, 5.0, 0.0, frames_decoded=0)
    assert meter.update(100, 0, 5.0, 1000.0, frames_decoded=30) == 3
    assert meter.update(200, 0, 5.0, 2000.0, frames_decoded=50) == 2      # 20 fps of 30
    assert meter.update(300, 0, 5.0, 3000.0, frames_decoded=60) == 1      # 10 fps
    assert meter.update(400, 0, 5.0, 4000.0, frames_decoded=60) == 0      # frozen
    assert meter.update(500, 0, 5.0, 5000.0, frames_decoded=10) is None   # decoder restarted
