"""Tests for tvapp.core.mixer: gains and tones survive the mix, loud audio is limited not wrapped, queues behave."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tvapp.core.mixer import AudioMixer, Ducker, MixerStats, mix, soft_limit

RATE = 48000
FRAMES_10MS = 480


def tone(freq: float, amplitude: float, frames: int, start: int = 0, channels: int = 2) -> NDArray[np.float32]:
    """Return a float32 sine of `freq` Hz, identical on every channel, starting at sample `start`."""
    t = (np.arange(frames) + start) / RATE
    mono = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1)


def as_int16(block: NDArray[np.float32]) -> NDArray[np.int16]:
    """Return float samples as int16 (value * 32768, rounded)."""
    return np.rint(block * 32768).astype(np.int16)


def amplitude_at(signal: NDArray[np.int16], freq: float) -> float:
    """Return the amplitude of `freq` in the first channel of `signal`, from an FFT."""
    x = signal[:, 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x)) * 2 / len(x)
    return float(spectrum[round(freq * len(x) / RATE)])


def pull_while_pushing(mixer: AudioMixer, sources: dict[str, float], amplitude: float, blocks: int
                       ) -> NDArray[np.int16]:
    """Push 10 ms of each source's tone, pull 10 ms, `blocks` times; return everything pulled."""
    out = []
    for b in range(blocks):
        for name, freq in sources.items():
            mixer.push(name, as_int16(tone(freq, amplitude, FRAMES_10MS, start=b * FRAMES_10MS)))
        out.append(mixer.pull(FRAMES_10MS))
    return np.concatenate(out)


# --- soft_limit ---------------------------------------------------------------------------------------------

finite = st.floats(-50.0, 50.0, allow_nan=False, width=32)


@settings(max_examples=300)
@given(a=finite, b=finite)
def test_soft_limit_is_monotonic(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    y = soft_limit(np.array([lo, hi], dtype=np.float32))
    assert y[0] <= y[1]


@settings(max_examples=300)
@given(x=st.lists(finite, min_size=1, max_size=64), threshold=st.floats(0.0, 0.95))
def test_soft_limit_is_odd_and_stays_below_one(x: list[float], threshold: float) -> None:
    arr = np.array(x, dtype=np.float32)
    y = soft_limit(arr, threshold)
    assert y.dtype == np.float32 and y.shape == arr.shape
    assert np.array_equal(soft_limit(-arr, threshold), -y)
    assert np.all(np.abs(y) < 1.0)
    assert np.all(np.sign(y) == np.sign(arr))


@settings(max_examples=300)
@given(x=st.lists(st.floats(-0.699999988079071, 0.699999988079071, width=32), min_size=1, max_size=64))
def test_soft_limit_is_the_identity_below_the_threshold(x: list[float]) -> None:
    arr = np.array(x, dtype=np.float32)
    assert np.array_equal(soft_limit(arr), arr)


def test_soft_limit_bends_smoothly_above_the_threshold() -> None:
    y = soft_limit(np.array([0.71, 0.9, 1.5, 3.0, 1000.0], dtype=np.float32))
    assert 0.7 < y[0] <= 0.71
    assert y[1] < 0.9 and y[2] < y[3] < 1.0
    assert y[4] < 1.0


def test_soft_limit_rejects_a_bad_threshold() -> None:
    with pytest.raises(ValueError):
        soft_limit(np.zeros(4, dtype=np.float32), 1.0)


# --- mix ------------------------------------------------------------------------------------------------------

def test_mix_applies_gains_and_master() -> None:
    a = np.full((4, 2), 0.25, dtype=np.float32)
    b = np.full((4, 2), 0.1, dtype=np.float32)
    out = mix([a, b], [1.0, 2.0], 0.5)
    assert out.dtype == np.int16 and out.shape == (4, 2)
    assert np.all(out == round(0.5 * (0.25 + 0.2) * 32768))


def test_mix_of_loud_blocks_never_clips_or_wraps() -> None:
    loud = tone(440, 1.0, 4800)
    out = mix([loud, loud, loud], [4.0, 4.0, 4.0], 1.0)
    assert int(np.abs(out.astype(np.int32)).max()) < 32767
    audible = np.abs(loud[:, 0]) > 1e-3
    assert np.all(np.sign(out[audible, 0]) == np.sign(loud[audible, 0]))


def test_mix_rejects_no_blocks_and_mismatches() -> None:
    with pytest.raises(ValueError, match="at least one"):
        mix([], [], 1.0)
    with pytest.raises(ValueError, match="gains"):
        mix([np.zeros((4, 2), dtype=np.float32)], [1.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="same shape"):
        mix([np.zeros((4, 2), dtype=np.float32), np.zeros((5, 2), dtype=np.float32)], [1.0, 1.0], 1.0)


# --- AudioMixer ------------------------------------------------------------------------------------------------

def test_two_tones_at_gains_one_and_a_half_come_out_two_to_one() -> None:
    mixer = AudioMixer(RATE, 2)
    mixer.set_gain("bob", 0.5)
    out = pull_while_pushing(mixer, {"alice": 500.0, "bob": 1500.0}, 0.3, 100)
    steady = out[-RATE // 2:]
    alice, bob = amplitude_at(steady, 500.0), amplitude_at(steady, 1500.0)
    assert alice == pytest.approx(0.3 * 32768, rel=0.02)
    assert alice / bob == pytest.approx(2.0, rel=0.02)
    assert amplitude_at(steady, 1000.0) < 0.01 * alice


def test_master_volume_scales_the_output() -> None:
    mixer = AudioMixer(RATE, 2)
    mixer.master = 0.25
    out = pull_while_pushing(mixer, {"alice": 500.0}, 0.4, 100)[-RATE // 2:]
    assert amplitude_at(out, 500.0) == pytest.approx(0.1 * 32768, rel=0.02)


def test_loud_sources_are_limited_not_wrapped() -> None:
    mixer = AudioMixer(RATE, 2)
    for name in ("a", "b", "c"):
        mixer.set_gain(name, 4.0)
    out = pull_while_pushing(mixer, {"a": 300.0, "b": 300.0, "c": 300.0}, 0.99, 50)
    assert int(np.abs(out.astype(np.int32)).max()) < 32767
    assert int(np.abs(out.astype(np.int32)).max()) > 30000
    reference = tone(300.0, 1.0, len(out) + FRAMES_10MS)
    delay = FRAMES_10MS                                      # one block waits for the 20 ms prefill
    expected_sign = np.sign(reference[:len(out) - delay, 0])
    got = out[delay:, 0]
    audible = np.abs(reference[:len(out) - delay, 0]) > 0.01
    assert np.all(np.sign(got[audible]) == expected_sign[audible])


def test_no_sources_pull_silence_of_the_right_shape() -> None:
    mixer = AudioMixer(RATE, 2)
    out = mixer.pull(256)
    assert out.shape == (256, 2) and out.dtype == np.int16 and not out.any()
    assert AudioMixer(44100, 1).pull(10).shape == (10, 1)


def test_a_source_waits_for_the_prefill_before_it_plays() -> None:
    mixer = AudioMixer(RATE, 2, prefill_ms=20.0)
    mixer.push("a", np.full((480, 2), 1000, dtype=np.int16))
    assert not mixer.pull(480).any()                         # 10 ms queued: not yet
    assert mixer.queued_ms("a") == pytest.approx(10.0)
    mixer.push("a", np.full((480, 2), 1000, dtype=np.int16))
    assert np.all(mixer.pull(480) == 1000)                   # 20 ms queued: plays
    assert mixer.queued_ms("a") == pytest.approx(10.0)


def test_underrun_pads_silence_then_waits_for_the_prefill_again() -> None:
    mixer = AudioMixer(RATE, 2, prefill_ms=20.0)
    mixer.push("a", np.full((1200, 2), 1000, dtype=np.int16))
    out = mixer.pull(1440)
    assert np.all(out[:1200] == 1000) and not out[1200:].any()
    assert mixer.stats.underruns == 1
    mixer.push("a", np.full((480, 2), 2000, dtype=np.int16))   # 10 ms: a tiny fragment waits
    assert not mixer.pull(480).any()
    assert mixer.stats.underruns == 1
    mixer.push("a", np.full((480, 2), 2000, dtype=np.int16))
    assert np.all(mixer.pull(960) == 2000)
    assert mixer.stats == MixerStats(pulled_frames=1440 + 480 + 960, underruns=1, dropped_frames=0)


def test_latency_cap_drops_the_oldest_samples() -> None:
    mixer = AudioMixer(RATE, 1, prefill_ms=20.0, max_queue_ms=60.0)
    ramp = np.arange(4800, dtype=np.int16).reshape(-1, 1)    # 100 ms, each sample its own index
    for start in range(0, 4800, 480):
        mixer.push("a", ramp[start:start + 480])
    # At 70 ms (over the cap) it goes back to 40 ms, halfway between prefill and cap: twice in 100 ms here.
    assert mixer.queued_ms("a") == pytest.approx(40.0)
    assert mixer.stats.dropped_frames == 2880
    out = mixer.pull(1920)
    assert np.array_equal(out[:, 0], np.arange(2880, 4800))


def test_a_fast_sender_skips_rarely_not_on_every_push() -> None:
    mixer = AudioMixer(RATE, 1, prefill_ms=20.0, max_queue_ms=60.0)
    skips = 0
    for _ in range(500):                      # 10 s: 20 ms pushed, 19.8 ms pulled (the sender runs 1% fast)
        before = mixer.stats.dropped_frames
        mixer.push("a", np.ones((960, 1), dtype=np.int16))
        skips += mixer.stats.dropped_frames > before
        mixer.pull(950)
    assert 1 <= skips <= 6, skips


def test_one_push_longer_than_the_cap_keeps_its_newest_part() -> None:
    mixer = AudioMixer(RATE, 1, prefill_ms=0.0, max_queue_ms=10.0)
    mixer.push("a", np.arange(1000, dtype=np.int16).reshape(-1, 1))
    assert np.array_equal(mixer.pull(240)[:, 0], np.arange(760, 1000))


def test_float_samples_and_gain_set_before_the_source_arrives() -> None:
    mixer = AudioMixer(RATE, 2, prefill_ms=0.0)
    mixer.set_gain("late", 2.0)
    mixer.push("late", np.full((100, 2), 0.125, dtype=np.float32))
    assert np.all(mixer.pull(100) == 8192)


def test_sources_gain_and_remove() -> None:
    mixer = AudioMixer(RATE, 2, prefill_ms=0.0)
    mixer.push("a", np.full((100, 2), 1000, dtype=np.int16))
    mixer.push("b", np.full((100, 2), 500, dtype=np.int16))
    assert mixer.sources() == ("a", "b")
    mixer.remove("a")
    mixer.remove("nobody")
    assert mixer.sources() == ("b",) and mixer.queued_ms("a") == 0.0
    assert np.all(mixer.pull(100) == 500)


@pytest.mark.parametrize("gain", [-0.1, 4.01])
def test_gain_out_of_range_is_rejected(gain: float) -> None:
    with pytest.raises(ValueError, match="gain"):
        AudioMixer().set_gain("a", gain)


@pytest.mark.parametrize("master", [-0.5, 1.5])
def test_master_out_of_range_is_rejected(master: float) -> None:
    mixer = AudioMixer()
    with pytest.raises(ValueError, match="master"):
        mixer.master = master
    assert mixer.master == 1.0


@pytest.mark.parametrize("shape", [(480,), (480, 1), (480, 3), (2, 480, 2)])
def test_wrong_shapes_are_rejected(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shaped"):
        AudioMixer(RATE, 2).push("a", np.zeros(shape, dtype=np.int16))


def test_other_dtypes_are_rejected() -> None:
    with pytest.raises(ValueError, match="int16 or float32"):
        AudioMixer(RATE, 2).push("a", np.zeros((4, 2), dtype=np.float64))  # type: ignore[arg-type]


def test_prefill_longer_than_the_cap_is_rejected() -> None:
    with pytest.raises(ValueError, match="prefill"):
        AudioMixer(prefill_ms=80.0, max_queue_ms=60.0)


def test_pushed_samples_are_copied_not_aliased() -> None:
    mixer = AudioMixer(RATE, 1, prefill_ms=0.0)
    buf = np.full((10, 1), 0.5, dtype=np.float32)
    mixer.push("a", buf)
    buf[:] = 0.0
    assert np.all(mixer.pull(10) == 16384)


# --- Ducker ------------------------------------------------------------------------------------------------------

DUCKED_12 = 10 ** (-12 / 20)


def test_speech_ducks_the_content_with_the_attack_time_constant() -> None:
    ducker = Ducker(duck_db=-12.0, attack_ms=150.0, release_ms=600.0)
    assert ducker.gain(False, 1000.0) == 1.0
    assert ducker.gain(True, 150.0) == pytest.approx(DUCKED_12 + (1 - DUCKED_12) * math.exp(-1))
    assert ducker.gain(True, 2000.0) == pytest.approx(DUCKED_12, abs=1e-5)


def test_silence_brings_it_back_with_the_release_time_constant() -> None:
    ducker = Ducker(duck_db=-12.0, attack_ms=150.0, release_ms=600.0)
    ducker.gain(True, 10_000.0)
    assert ducker.gain(False, 600.0) == pytest.approx(1 - (1 - DUCKED_12) * math.exp(-1))
    assert ducker.gain(False, 10_000.0) == pytest.approx(1.0)


def test_the_call_rate_does_not_matter() -> None:
    fine, coarse = Ducker(), Ducker()
    for _ in range(100):
        fine.gain(True, 3.0)                 # a 144-frame audio callback at 48 kHz, a hundred times
    assert coarse.gain(True, 300.0) == pytest.approx(fine.gain(True, 0.0))
    for _ in range(40):
        fine.gain(False, 10.0)
    assert coarse.gain(False, 400.0) == pytest.approx(fine.gain(False, 0.0))


def test_a_short_word_only_dips_the_content() -> None:
    ducker = Ducker(duck_db=-20.0, attack_ms=150.0)
    dipped = ducker.gain(True, 50.0)
    assert 10 ** (-20 / 20) < dipped < 1.0 and dipped == pytest.approx(1 - 0.9 * (1 - math.exp(-50 / 150)))


def test_zero_db_disables_ducking() -> None:
    ducker = Ducker(duck_db=0.0)
    assert all(ducker.gain(speaking, 100.0) == 1.0 for speaking in (True, True, False, True))


def test_a_bad_span_changes_nothing() -> None:
    ducker = Ducker()
    ducker.gain(True, 100.0)
    before = ducker.gain(True, 0.0)
    assert ducker.gain(True, -50.0) == before and ducker.gain(False, math.nan) == before


@settings(max_examples=200)
@given(steps=st.lists(st.tuples(st.booleans(), st.floats(0.0, 5000.0)), max_size=60),
       duck_db=st.floats(-60.0, 0.0))
def test_the_gain_stays_between_the_ducked_level_and_one_and_moves_toward_its_target(
        steps: list[tuple[bool, float]], duck_db: float) -> None:
    ducker = Ducker(duck_db=duck_db)
    floor = 10 ** (duck_db / 20)
    gain = 1.0
    for speaking, elapsed in steps:
        new = ducker.gain(speaking, elapsed)
        assert floor - 1e-12 <= new <= 1.0 + 1e-12
        assert (new <= gain + 1e-12) if speaking else (new >= gain - 1e-12)
        gain = new


@pytest.mark.parametrize("kwargs,word", [({"duck_db": 3.0}, "duck_db"), ({"duck_db": -61.0}, "duck_db"),
                                         ({"duck_db": math.nan}, "duck_db"), ({"attack_ms": 0.0}, "attack_ms"),
                                         ({"release_ms": -1.0}, "release_ms"), ({"attack_ms": math.inf}, "attack_ms"),
                                         ({"release_ms": math.nan}, "release_ms")])
def test_bad_ducker_settings_are_refused_with_the_reason(kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        Ducker(**kwargs)
