"""Stamped test clips (tvapp.testing.clip): every decoded frame reads back its index and pts, the tone is where
and how loud it should be, clips are cached, mp4s stream (moov first), and stamps read at other scales."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from tvapp.testing.clip import AUDIO_RATE, TONE_AMPLITUDE, make_clip, read_clip_stamp, tone_phase
from tvapp.testing.media import dominant_frequency, rms_dbfs


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


def decoded_audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="stereo", rate=AUDIO_RATE)
        chunks = [out.to_ndarray().reshape(-1, 2) for frame in container.decode(audio=0)
                  for out in resampler.resample(frame)]
    return np.concatenate(chunks)


@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("vp8", ".webm")])
def test_every_frame_reads_back_its_index_and_pts(clips: Path, codec: str, suffix: str) -> None:
    path = make_clip(clips, seconds=3.0, fps=30, codec=codec)
    assert path.suffix == suffix and path.parent == clips
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.width, stream.codec_context.height) == \
            ({"h264": "h264", "vp8": "vp8"}[codec], 640, 360)
        frames = list(container.decode(video=0))
    assert len(frames) == 90
    for index, frame in enumerate(frames):
        assert frame.time is not None
        assert read_clip_stamp(frame.to_ndarray(format="rgb24")) == (index, round(frame.time * 1000)), index
        assert round(frame.time * 1000) == round(index * 1000 / 30)


@pytest.mark.parametrize("codec", ["h264", "vp8"])
def test_the_tone_is_a_sine_at_its_frequency_level_and_phase(clips: Path, codec: str) -> None:
    path = make_clip(clips, seconds=3.0, codec=codec, audio_hz=440.0)
    samples = decoded_audio(path)
    assert abs(len(samples) / AUDIO_RATE - 3.0) < 0.05
    middle = samples[AUDIO_RATE:2 * AUDIO_RATE]
    assert abs(dominant_frequency(middle[:, 0], AUDIO_RATE) - 440) < 2
    assert abs(rms_dbfs(middle[:, 1]) - 20 * np.log10(TONE_AMPLITUDE / np.sqrt(2))) < 0.5
    period = 1 / 440
    for position in (0.25, 1.0, 2.3):  # the sample at content time t is sin(2 pi f t): a player can be located
        start = round(position * AUDIO_RATE)
        offset = (tone_phase(samples[start:start + 2400, 0], 440.0) - position % period + period / 2) % period
        assert abs(offset - period / 2) < 0.0002


def test_a_silent_clip_has_no_audio_and_a_long_gop_has_few_keyframes(clips: Path) -> None:
    path = make_clip(clips, seconds=2.0, audio=False, gop=60)
    with av.open(str(path)) as container:
        assert not container.streams.audio
        keyframes = [packet.is_keyframe for packet in container.demux(video=0) if packet.size]
    assert sum(keyframes) == 1 and len(keyframes) == 60


def test_the_background_changes_colour_every_second(clips: Path) -> None:
    path = make_clip(clips, seconds=3.0)
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    corners = [frames[i][-20:, -20:].reshape(-1, 3).mean(axis=0) for i in (5, 20, 35, 65)]
    assert np.abs(corners[0] - corners[1]).max() < 8  # same second
    assert np.abs(corners[1] - corners[2]).max() > 40 and np.abs(corners[2] - corners[3]).max() > 40
    assert np.abs(frames[5].astype(int) - frames[20].astype(int)).max() > 100  # the bar moved within the second


def test_clips_are_cached_by_arguments(clips: Path) -> None:
    first = make_clip(clips, seconds=1.0, fps=25)
    mtime = first.stat().st_mtime_ns
    assert make_clip(clips, seconds=1.0, fps=25) == first and first.stat().st_mtime_ns == mtime
    other = make_clip(clips, seconds=1.0, fps=24)
    assert other != first and other.exists()
    assert not [name for name in os.listdir(clips) if name.endswith(".part")]


def test_an_mp4_streams_from_its_start(clips: Path) -> None:
    data = make_clip(clips, seconds=1.0).read_bytes()
    assert 0 <= data.index(b"moov") < data.index(b"mdat")


def test_a_1080p_clip_is_made_quickly_and_reads_back(clips: Path) -> None:
    path = make_clip(clips, seconds=2.0, size=(1920, 1080))
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert (frames[0].width, frames[0].height, len(frames)) == (1920, 1080, 60)
    assert read_clip_stamp(frames[59].to_ndarray(format="rgb24")) == (59, 1967)


def test_a_stamp_reads_at_other_scales_and_not_from_noise(clips: Path) -> None:
    path = make_clip(clips, seconds=1.0)
    with av.open(str(path)) as container:
        rgb = list(container.decode(video=0))[17].to_ndarray(format="rgb24")
    for width in (480, 1280, 1920):
        height = width * 9 // 16
        ys = np.arange(height) * 360 // height
        xs = np.arange(width) * 640 // width
        assert read_clip_stamp(np.ascontiguousarray(rgb[ys][:, xs])) == (17, 567), width
    noise = np.random.default_rng(1).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    assert read_clip_stamp(noise) is None


def test_bad_arguments_are_refused(clips: Path) -> None:
    for kwargs in ({"codec": "hevc"}, {"size": (641, 360)}, {"seconds": 0.0}, {"audio_hz": 30000.0}):
        with pytest.raises(ValueError):
            make_clip(clips, **kwargs)  # type: ignore[arg-type]
