"""tvapp.core.echo: clock fits, drift in ppm, the reference aligner's reads, the talk state; all on a fake clock."""

from __future__ import annotations

import random

import pytest

from tvapp.core.echo import (
    FRAME, RATE, ClockTrack, ReferenceAligner, TalkMonitor, TalkState, drift_ppm, level_dbfs,
)


def feed_clock(track: ClockTrack, *, ppm: float, seconds: float, jitter_s: float, seed: int = 1,
               start: float = 1000.0) -> None:
    """Add a timestamp per 10 ms of a clock running `ppm` fast, each stamped up to `jitter_s` late."""
    rng = random.Random(seed)
    rate = RATE * (1 + ppm * 1e-6)
    for block in range(int(seconds * 100)):
        index = block * FRAME
        track.add(index, start + index / rate + rng.uniform(0, jitter_s))


def test_a_clock_fit_finds_the_rate_through_jittery_stamps() -> None:
    track = ClockTrack(window_s=30.0)
    feed_clock(track, ppm=80.0, seconds=40.0, jitter_s=0.003)
    assert track.ppm() == pytest.approx(80.0, abs=10.0)
    # The fitted line puts a sample where the clock played it, far better than one stamp's 3 ms jitter.
    index = 39 * RATE
    assert track.time_of(index) == pytest.approx(1000.0 + index / (RATE * (1 + 80e-6)) + 0.0015, abs=0.0005)
    assert track.index_at(track.time_of(index)) == pytest.approx(index, abs=1e-6)


def test_a_clock_is_taken_at_its_nominal_rate_until_it_has_history() -> None:
    track = ClockTrack()
    assert not track.ready
    with pytest.raises(ValueError):
        track.time_of(0)
    feed_clock(track, ppm=500.0, seconds=1.0, jitter_s=0.0)
    assert track.ready and track.rate() == RATE  # one second: not enough to measure
    assert track.span_s == pytest.approx(0.99, abs=0.01)


def test_the_window_forgets_old_stamps() -> None:
    track = ClockTrack(window_s=5.0)
    feed_clock(track, ppm=0.0, seconds=20.0, jitter_s=0.0)
    assert track.span_s <= 5.0
    # A clock that changes its rate (a device restarted at another one) is followed within the window.
    rate = RATE * (1 + 300e-6)
    for block in range(2000, 3000):
        index = block * FRAME
        track.add(index, 1000.0 + 20.0 + (index - 2000 * FRAME) / rate)
    assert track.ppm() == pytest.approx(300.0, abs=1.0)


def test_drift_between_two_clocks_is_measured_in_ppm() -> None:
    output, capture = ClockTrack(), ClockTrack()
    feed_clock(output, ppm=-20.0, seconds=30.0, jitter_s=0.002, seed=1)
    feed_clock(capture, ppm=+40.0, seconds=30.0, jitter_s=0.002, seed=2)
    measured = drift_ppm(output, capture)
    assert measured is not None and measured == pytest.approx(60.0, abs=8.0)
    short_output, short_capture = ClockTrack(), ClockTrack()
    feed_clock(short_output, ppm=0.0, seconds=4.0, jitter_s=0.0)
    feed_clock(short_capture, ppm=0.0, seconds=4.0, jitter_s=0.0)
    assert drift_ppm(short_output, short_capture) is None  # too little history to say


def run_aligner(aligner: ReferenceAligner, *, ppm: float, seconds: float, jitter_s: float = 0.001,
                seed: int = 3) -> list[tuple[float, int, int]]:
    """Drive the aligner as the TV does: output blocks stamped when heard, capture frames `ppm` fast; return
    (capture instant, read start, read count) per frame."""
    rng = random.Random(seed)
    events: list[tuple[float, int, int]] = []
    for block in range(int(seconds * 100) + 20):
        heard = block * FRAME / RATE
        events.append((heard - 0.010, 0, block))
    for frame in range(int(seconds * 100)):
        events.append((frame * FRAME / (RATE * (1 + ppm * 1e-6)) + 0.012, 1, frame))
    reads = []
    for _, kind, index in sorted(events):
        if kind == 0:
            aligner.played(index * FRAME, index * FRAME / RATE + rng.uniform(0, jitter_s))
        else:
            captured = index * FRAME / (RATE * (1 + ppm * 1e-6))
            read = aligner.captured(captured + rng.uniform(0, jitter_s))
            assert read is not None
            reads.append((captured, read.start, read.count))
    return reads


@pytest.mark.parametrize("ppm", [-100.0, 0.0, 100.0])
def test_the_reference_follows_the_capture_clock_by_dropping_or_inserting_samples(ppm: float) -> None:
    aligner = ReferenceAligner(margin_ms=5.0)
    reads = run_aligner(aligner, ppm=ppm, seconds=60.0)
    # Contiguous reads: each starts where the last ended (no jumps after the first frame).
    assert all(start == previous + count for (_, previous, count), (_, start, _) in zip(reads, reads[1:]))
    assert aligner.resyncs == 1
    # The reference stays on the sample the speakers played at capture time + margin: within the deadband (24
    # samples, half a millisecond) plus what the clock fits get wrong from jittery stamps.
    errors = [start - (captured + 0.005) * RATE for captured, start, _ in reads[500:]]
    assert max(abs(error) for error in errors) < aligner.deadband + 12
    # A capture clock 100 ppm fast eats 100 ppm fewer output samples: about 4.8 per second inserted.
    corrections = aligner.inserted - aligner.dropped
    assert corrections == pytest.approx(ppm * 1e-6 * 60 * RATE, abs=40 + aligner.deadband)  # it may end within it
    measured = aligner.drift_ppm()
    assert measured is not None and measured == pytest.approx(ppm, abs=10)


def test_a_stall_resyncs_the_cursor_at_once() -> None:
    aligner = ReferenceAligner(margin_ms=5.0, resync_ms=60.0)
    assert aligner.captured(0.0) is None  # nothing played yet: no reference
    for block in range(200):
        aligner.played(block * FRAME, block * FRAME / RATE)
    first = aligner.captured(0.01)
    assert first is not None and first.resync and first.count == FRAME
    assert first.start == round((0.01 + 0.005) * RATE)
    assert first.delay_hint_ms == 5
    # The device restarts: its sample count goes on, but 0.5 s of wall time passed without playing.
    for block in range(200, 400):
        aligner.played(block * FRAME, 0.5 + block * FRAME / RATE)
    read = aligner.captured(0.02)
    assert read is not None and read.resync
    assert aligner.resyncs == 2


def test_talk_state_from_levels_with_hangover() -> None:
    monitor = TalkMonitor(far_threshold_dbfs=-50.0, near_threshold_dbfs=-45.0, hangover_s=0.3)
    quiet = -90.0
    assert monitor.update(quiet, quiet, 0.00) is TalkState.IDLE
    assert monitor.update(-30.0, quiet, 0.01) is TalkState.FAR_END
    assert monitor.update(quiet, quiet, 0.20) is TalkState.FAR_END        # between two syllables
    assert monitor.update(-30.0, -30.0, 0.25) is TalkState.DOUBLE_TALK
    assert monitor.update(quiet, -30.0, 0.60) is TalkState.NEAR_END       # the TV fell silent 0.35 s ago
    assert monitor.update(quiet, quiet, 0.95) is TalkState.IDLE


def test_level_dbfs() -> None:
    assert level_dbfs(1.0) == 0.0
    assert level_dbfs(0.01) == pytest.approx(-20.0)
    assert level_dbfs(0.0) == -120.0
