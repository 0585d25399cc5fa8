"""tvapp.tv.audio with real SDL audio: SDL_AUDIODRIVER=disk writes what the TV played to a file we analyse.

Each case runs tests/tv_audio_child.py in its own process (SDL reads its environment when audio starts), which
pushes 20 ms sine-tone av.AudioFrames paced in real time from one thread per source. SDL's disk driver runs a
few percent slower than real time, so the mixer's latency cap drops a little audio now and then; levels are
measured in a band around each tone, which those small splices do not move.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tvapp.testing.media import dominant_frequency, rms_dbfs
from tvapp.tv.audio import AudioError, AudioOutput, choose_device

RATE = 48000
CHILD = Path(__file__).with_name("tv_audio_child.py")
DISK_DEVICE = "System audio output device"  # the one device SDL's disk driver offers


def play(tmp_path: Path, scenario: dict[str, Any]) -> tuple[npt.NDArray[np.int16], dict[str, Any]]:
    """Run a scenario in a child process; return what SDL wrote, shaped (frames, 2), and the child's JSON."""
    played = tmp_path / "played.raw"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SDL_")}
    env.update(SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=str(played))
    result = subprocess.run([sys.executable, str(CHILD), json.dumps(scenario)], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    samples = np.fromfile(played, dtype=np.int16).reshape(-1, 2) if played.exists() else np.zeros((0, 2), np.int16)
    return samples, report


def span(samples: npt.NDArray[np.int16], start_s: float, end_s: float, channel: int = 0) -> npt.NDArray[np.float64]:
    """Return one channel (0 left, 1 right) between two times of the file, as floats in [-1, 1)."""
    return samples[round(start_s * RATE):round(end_s * RATE), channel].astype(np.float64) / 32768


def tone_amplitude(signal: npt.NDArray[np.float64], freq: float, width: float = 30.0) -> float:
    """Return the amplitude of the part of `signal` within `width` Hz of `freq` (band-pass by FFT)."""
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(signal.size, 1 / RATE)
    spectrum[np.abs(freqs - freq) > width] = 0
    band = np.fft.irfft(spectrum, signal.size)
    return float(np.sqrt(np.mean(band * band)) * math.sqrt(2))


def db(ratio: float) -> float:
    return 20 * math.log10(ratio) if ratio > 0 else -math.inf


def test_two_participants_are_mixed_at_their_gains(tmp_path: Path) -> None:
    samples, report = play(tmp_path, {"duration": 2.0, "sources": [
        {"name": "alice", "freq": 440, "amplitude": 0.25, "gain": 1.0},
        # A different format on purpose: mono float at 44.1 kHz is resampled, and played on both speakers.
        {"name": "bob", "freq": 660, "amplitude": 0.25, "gain": 0.5, "rate": 44100, "layout": "mono",
         "format": "fltp"},
    ]})
    stats = report["stats"]
    assert report["device"] is None  # no HDMI device here: SDL's default
    assert stats["callback_errors"] == 0 and stats["callbacks"] > 150
    assert 1.9 < len(samples) / RATE < 2.6
    assert np.array_equal(samples[:, 0], samples[:, 1])
    steady = span(samples, 0.3, 1.8)
    assert dominant_frequency(steady, RATE) == pytest.approx(440, abs=5)  # splices move the peak a little
    alice, bob = tone_amplitude(steady, 440), tone_amplitude(steady, 660)
    assert db(alice / 0.25) == pytest.approx(0, abs=1.5)
    assert db(bob / alice) == pytest.approx(db(0.5), abs=1.5)
    # Resampled, not played at the wrong rate (where 660 Hz at 44.1 kHz would land when read as 48 kHz).
    assert tone_amplitude(steady, 660 * 48000 / 44100, width=5) < 0.1 * tone_amplitude(steady, 660, width=5)
    # on_pulled follows the audio clock: 10 ms buffers, each noted with the wall time it was handed to SDL.
    handed = report["handed"]
    assert len(handed) == stats["callbacks"] and handed[-1][0] == stats["handed_frames"]
    assert [frames for frames, _ in handed] == [480 * (index + 1) for index in range(len(handed))]
    walls = [wall for _, wall in handed]
    assert walls == sorted(walls)
    assert (handed[-1][0] - handed[0][0]) / (walls[-1] - walls[0]) == pytest.approx(RATE, rel=0.1)
    # The mixer queue and the device buffer together stay within [audio] max_queue_ms (60 by default).
    assert stats["device_buffer_ms"] == 20
    assert max(report["latency"]) <= 60 + 1e-6 and min(report["latency"]) >= 20


def test_loud_participants_are_limited_never_clipped(tmp_path: Path) -> None:
    samples, report = play(tmp_path, {"duration": 2.0, "sources": [
        {"name": "a", "freq": 440, "amplitude": 0.9},
        {"name": "b", "freq": 550, "amplitude": 0.9, "gain": 2.0},
        {"name": "c", "freq": 660, "amplitude": 0.9},
    ]})
    assert report["stats"]["callbacks"] > 150
    assert int(np.abs(samples.astype(np.int32)).max()) < 32767
    steady = span(samples, 0.3, 1.8)
    assert rms_dbfs(steady) > -6  # loud: the limiter bends peaks, it does not turn the sound down
    levels = [tone_amplitude(steady, freq) for freq in (440, 550, 660)]
    assert min(levels) > 0.15


def test_a_limited_sum_keeps_its_sign(tmp_path: Path) -> None:
    # Constant samples: +0.5 left and -0.5 right from three sources, 1.5 in sum. Wrapping around in int16 would
    # turn +1.5 into -0.5 (and -1.5 into +0.5), clipping would sit on the rails; the mixer's latency-cap splices
    # cannot flip anything (the signal is the same everywhere).
    sources = [{"name": name, "dc": [0.5, -0.5]} for name in ("a", "b", "c")]
    samples, _ = play(tmp_path, {"duration": 1.0, "sources": sources})
    left, right = samples[:, 0].astype(np.int32), samples[:, 1].astype(np.int32)
    assert left.min() >= 0 and right.max() <= 0
    assert left.max() < 32767 and right.min() > -32767
    assert np.median(left[round(0.2 * RATE):round(0.8 * RATE)]) > 30000


def test_removed_and_muted_participants_are_not_heard(tmp_path: Path) -> None:
    samples, report = play(tmp_path, {"duration": 1.6, "sources": [
        {"name": "alice", "freq": 440, "amplitude": 0.25, "pan": [0.0, 1.0]},  # right speaker only
        # Mono s16 at 48 kHz needs no resampling: copied to both speakers as it is.
        {"name": "bob", "freq": 660, "amplitude": 0.25, "layout": "mono", "stop_at": 1.0, "remove_at": 0.98},
        {"name": "carol", "freq": 935, "amplitude": 0.25, "layout": "mono", "gain": 0.0},
    ]})
    assert report["timeline"]["removed.bob"] == pytest.approx(0.98, abs=0.1)
    left = samples[:, 0]
    before = span(samples, 0.3, 0.85)
    assert db(tone_amplitude(before, 660) / 0.25) == pytest.approx(0, abs=1.5)
    assert db(tone_amplitude(before, 935, width=5) / tone_amplitude(before, 660, width=5)) < -30
    # The left speaker carries bob alone (carol is muted, alice is on the right): once he is removed it is
    # digitally silent at once, without playing out the up to 40 ms the mixer still held for him. The file
    # runs at most one 10 ms chunk ahead of the frames the mixer had handed out when he was removed.
    removed_at = int(report["timeline"]["removed_at_frame.bob"])
    last_sound = int(np.flatnonzero(left)[-1])
    assert last_sound < removed_at + 2 * 480
    assert not left[removed_at + 2 * 480:].any()
    # ... while alice plays on throughout.
    assert db(tone_amplitude(span(samples, 0.3, 1.5, channel=1), 440) / 0.25) == pytest.approx(0, abs=1.5)


def test_closing_never_deadlocks_with_sdls_audio_thread(tmp_path: Path) -> None:
    # pygame's own close() waits for SDL's audio thread holding the GIL that thread needs for the callback;
    # with busy Python threads around, that hangs within a few cycles (the child then never answers).
    _, report = play(tmp_path, {"open_and_close": 40})
    assert report["seconds"] < 30


def test_a_device_is_opened_by_part_of_its_name(tmp_path: Path) -> None:
    _, report = play(tmp_path, {"duration": 0.2, "device": "system AUDIO", "sources": []})
    assert report["device"] == DISK_DEVICE


def test_an_unknown_device_is_refused_with_the_names_of_those_that_exist(tmp_path: Path) -> None:
    _, report = play(tmp_path, {"duration": 0.2, "device": "hdmi:CARD=vc4hdmi0,DEV=0", "sources": []})
    assert report["error"] == f"no audio device 'hdmi:CARD=vc4hdmi0,DEV=0'; the devices are: '{DISK_DEVICE}'"


def test_list_devices_text_names_each_device_and_the_default_choice(tmp_path: Path) -> None:
    _, report = play(tmp_path, {"list": True})
    lines = report["text"].splitlines()
    assert lines[0] == f"  {DISK_DEVICE}"
    assert lines[1].startswith("# no HDMI device")


PI = ["bcm2835 Headphones", "vc4-hdmi-0, MAI PCM i2s-hifi-0", "vc4-hdmi-1, MAI PCM i2s-hifi-0"]
ALSA_NAMES = ["default", "sysdefault:CARD=Headphones", "hdmi:CARD=vc4hdmi0,DEV=0", "hdmi:CARD=vc4hdmi1,DEV=0"]


@pytest.mark.parametrize(("configured", "available", "chosen"), [
    ("", PI, "vc4-hdmi-0, MAI PCM i2s-hifi-0"),
    ("", ALSA_NAMES, "hdmi:CARD=vc4hdmi0,DEV=0"),
    ("", ["Built-in Audio Analog Stereo", "HDA Intel PCM, HDMI 0"], "HDA Intel PCM, HDMI 0"),
    ("", ["Built-in Audio Analog Stereo"], None),
    ("", [], None),
    ("hdmi:CARD=vc4hdmi1,DEV=0", ALSA_NAMES, "hdmi:CARD=vc4hdmi1,DEV=0"),
    ("headphones", PI, "bcm2835 Headphones"),
    ("VC4-HDMI-1", PI, "vc4-hdmi-1, MAI PCM i2s-hifi-0"),
    ("default", ALSA_NAMES, "default"),  # exact beats the substring match in sysdefault
])
def test_choose_device(configured: str, available: list[str], chosen: str | None) -> None:
    assert choose_device(configured, available) == chosen


def test_choose_device_says_which_devices_exist() -> None:
    with pytest.raises(AudioError) as raised:
        choose_device("Living room speakers", PI)
    assert str(raised.value) == ("no audio device 'Living room speakers'; the devices are: 'bcm2835 Headphones', "
                                 "'vc4-hdmi-0, MAI PCM i2s-hifi-0', 'vc4-hdmi-1, MAI PCM i2s-hifi-0'")
    with pytest.raises(AudioError, match=r"the devices are: none"):
        choose_device("hdmi", [])


def test_choose_device_refuses_an_ambiguous_part_of_a_name() -> None:
    with pytest.raises(AudioError) as raised:
        choose_device("vc4-hdmi", PI)
    assert "ambiguous" in str(raised.value)
    assert "'vc4-hdmi-0, MAI PCM i2s-hifi-0', 'vc4-hdmi-1, MAI PCM i2s-hifi-0'" in str(raised.value)
    assert "Headphones" not in str(raised.value)


@pytest.mark.parametrize(("volume", "chunk_ms", "words"), [
    (1.5, 10.0, "volume must be between 0 and 1, got 1.5"),
    (1.0, 0.0, "chunk_ms must be positive"),
    (1.0, 25.0, "leaves 10 ms for the mixer after the device buffer of 50 ms"),
])
def test_settings_that_cannot_work_are_an_audio_error(volume: float, chunk_ms: float, words: str) -> None:
    with pytest.raises(AudioError, match=words):
        AudioOutput("", volume=volume, chunk_ms=chunk_ms, max_queue_ms=60.0)
