"""Local media sources: pattern and tone pacing and content, looping files, devices and bot specs."""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from tvapp.client.sources import (
    FileTracks,
    SourceError,
    TestPatternTrack,
    ToneTrack,
    camera_track,
    microphone_track,
    parse_audio_spec,
    parse_video_spec,
)
from tvapp.client.stamp import stamp_height
from tvapp.testing.aio import runner
from tvapp.testing.media import audio_samples, dominant_frequency, read_stamps, rms_dbfs

FILE_SECONDS = 0.6
FILE_FRAMES = 18


run = runner(deadline=30)


def write_media(path: Path, video: bool = True, audio: bool = True) -> Path:
    """Write a matroska file of FILE_SECONDS: stamped 160x120 VP8 pattern (counter = frame) and 440 Hz Opus."""
    container = av.open(str(path), "w", format="matroska")
    # Every stream is added before the first packet is muxed (the header is written then).
    video_stream = container.add_stream("libvpx", rate=30) if video else None
    audio_stream = container.add_stream("libopus", rate=48000) if audio else None
    if video_stream is not None:
        video_stream.width, video_stream.height, video_stream.pix_fmt = 160, 120, "yuv420p"
        video_stream.bit_rate = 300_000
    if audio_stream is not None:
        audio_stream.layout = "stereo"
    if video_stream is not None:
        pattern = TestPatternTrack(160, 120, 30)
        for index in range(FILE_FRAMES):
            frame = pattern.make_frame(index, index, index / 30)
            frame.pts, frame.time_base = index, fractions.Fraction(1, 30)
            container.mux(video_stream.encode(frame))
        container.mux(video_stream.encode(None))
        pattern.stop()
    if audio_stream is not None:
        times = np.arange(int(FILE_SECONDS * 48000)) / 48000
        tone = (np.sin(2 * np.pi * 440 * times) * 0.3 * 32767).astype(np.int16)
        for start in range(0, tone.size, 960):
            chunk = np.repeat(tone[start:start + 960], 2).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, fractions.Fraction(1, 48000)
            container.mux(audio_stream.encode(frame))
        container.mux(audio_stream.encode(None))
    container.close()
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    write_media(folder / "both.mkv")
    write_media(folder / "video.mkv", audio=False)
    write_media(folder / "audio.mkv", video=False)
    (folder / "garbage.mkv").write_bytes(b"this is not a media file" * 100)
    return folder


async def timed_frames(track: Any, count: int) -> tuple[list[Any], float]:
    """Receive `count` frames; return them and the seconds between the first and the last."""
    frames = [await track.recv()]
    start = time.monotonic()
    for _ in range(count - 1):
        frames.append(await track.recv())
    return frames, time.monotonic() - start


# -- test pattern -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [30, 15])
def test_pattern_frames_are_paced_stamped_and_timestamped(fps: int) -> None:
    async def scenario() -> None:
        track = TestPatternTrack(320, 240, fps)
        before_ms = int(time.time() * 1000)
        frames, elapsed = await timed_frames(track, fps + 1)
        after_ms = int(time.time() * 1000)
        assert elapsed == pytest.approx(1.0, rel=0.1)
        assert all((frame.width, frame.height, frame.format.name) == (320, 240, "yuv420p") for frame in frames)
        assert all(frame.time_base == fractions.Fraction(1, 90000) for frame in frames)
        steps = np.diff([frame.pts for frame in frames])
        assert steps.min() > 0 and abs(steps.mean() - 90000 / fps) < 90000 / fps * 0.1
        stamps = read_stamps(frames)
        assert [entry[0] for entry in stamps if entry] == list(range(fps + 1))
        capture = [entry[1] for entry in stamps if entry]
        assert before_ms <= capture[0] and capture[-1] <= after_ms
        assert capture == sorted(capture) and capture[-1] - capture[0] == pytest.approx(1000, abs=100)
        track.stop()
        with pytest.raises(MediaStreamError):
            await track.recv()

    run(scenario())


def test_set_format_changes_size_and_rate_live() -> None:
    async def scenario() -> None:
        track = TestPatternTrack(640, 480, 30)
        first, _ = await timed_frames(track, 3)
        track.set_format(320, 240, 10)
        assert (track.width, track.height, track.fps) == (320, 240, 10)
        second, elapsed = await timed_frames(track, 6)
        assert [(frame.width, frame.height) for frame in first] == [(640, 480)] * 3
        assert [(frame.width, frame.height) for frame in second] == [(320, 240)] * 6
        assert elapsed == pytest.approx(0.5, rel=0.1)
        pts = [frame.pts for frame in first + second]
        assert pts == sorted(pts) and len(set(pts)) == len(pts)
        assert [entry[0] for entry in read_stamps(first + second) if entry] == list(range(9))

    run(scenario())


def test_pattern_does_not_burst_after_a_stall() -> None:
    async def scenario() -> None:
        track = TestPatternTrack(160, 120, 30)
        await track.recv()
        await asyncio.sleep(0.7)
        _, elapsed = await timed_frames(track, 7)
        assert elapsed == pytest.approx(0.2, rel=0.15)

    run(scenario())


def test_pattern_moves_below_the_stamp() -> None:
    track = TestPatternTrack(640, 480, 30)
    band = stamp_height(640)
    early = track.make_frame(5, 5, 0.0).to_ndarray(format="rgb24")
    late = track.make_frame(5, 5, 0.5).to_ndarray(format="rgb24")
    assert np.array_equal(early[:band], late[:band])
    assert not np.array_equal(early[band:], late[band:])
    colours = {tuple(pixel) for pixel in early[-1, 40::80]}
    assert len(colours) == 8


@pytest.mark.parametrize(("width", "height", "fps"), [(641, 480, 30), (158, 120, 30), (640, 100, 30),
                                                      (640, 480, 0), (640, 480, 500), (8192, 480, 30)])
def test_pattern_refuses_bad_formats(width: int, height: int, fps: float) -> None:
    with pytest.raises(SourceError, match="test pattern"):
        TestPatternTrack(width, height, fps)
    track = TestPatternTrack()
    with pytest.raises(SourceError, match="test pattern"):
        track.set_format(width, height, fps)
    assert (track.width, track.height, track.fps) == (640, 480, 30)


@pytest.mark.parametrize(("width", "height"), [(160, 120), (1920, 1080)])
def test_pattern_stamps_every_supported_size(width: int, height: int) -> None:
    track = TestPatternTrack(width, height, 30)
    assert read_stamps([track.make_frame(77, 123456789, 1.5)]) == [(77, 123456789)]


# -- tone -----------------------------------------------------------------------------------------------------


def test_tone_is_paced_20ms_frames_at_the_right_pitch_and_level() -> None:
    async def scenario() -> None:
        track = ToneTrack(440.0)
        frames, elapsed = await timed_frames(track, 51)
        assert elapsed == pytest.approx(1.0, rel=0.1)
        assert all(frame.samples == 960 and frame.sample_rate == 48000 for frame in frames)
        assert all(frame.format.name == "s16" and frame.layout.name == "mono" for frame in frames)
        assert [frame.pts for frame in frames] == [index * 960 for index in range(51)]
        samples = audio_samples(frames)
        assert dominant_frequency(samples, 48000) == pytest.approx(440.0, abs=1.0)
        assert rms_dbfs(samples) == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.1)

    run(scenario())


def test_tone_phase_is_continuous_across_frames_and_mute() -> None:
    async def scenario() -> None:
        track = ToneTrack(1000.0, sample_rate=16000, amplitude=0.5)
        frames = []
        for index in range(30):
            track.enabled = not 10 <= index < 20
            frames.append(await track.recv())
        samples = np.concatenate([frame.to_ndarray()[0] for frame in frames]).astype(np.float64)
        ideal = np.round(np.sin(2 * np.pi * 1000 * np.arange(samples.size) / 16000) * 0.5 * 32767)
        ideal[10 * 320:20 * 320] = 0
        assert np.abs(samples - ideal).max() <= 1
        assert rms_dbfs(samples[10 * 320:20 * 320].astype(np.int16)) == -np.inf

    run(scenario())


def test_tone_survives_opus_at_the_right_frequency() -> None:
    async def scenario() -> None:
        track = ToneTrack(523.25)
        encoder, decoder = OpusEncoder(), OpusDecoder()
        decoded = []
        for _ in range(60):
            frame = await track.recv()
            payloads, timestamp = encoder.encode(frame)
            for payload in payloads:
                decoded.extend(decoder.decode(JitterFrame(data=payload, timestamp=timestamp)))
        samples = audio_samples(decoded)[48000 // 5:]
        assert dominant_frequency(samples, 48000) == pytest.approx(523.25, abs=1.0)
        # aiortc upmixes mono to stereo at -3 dB per channel.
        assert rms_dbfs(samples) == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)) - 3, abs=1.0)

    run(scenario())


@pytest.mark.parametrize(("hz", "rate", "amplitude"), [(0, 48000, 0.3), (30000, 48000, 0.3),
                                                       (440, 48000, 1.5), (440, 44101, 0.3)])
def test_tone_refuses_bad_settings(hz: float, rate: int, amplitude: float) -> None:
    with pytest.raises(SourceError):
        ToneTrack(hz, rate, amplitude)


# -- files ----------------------------------------------------------------------------------------------------


def test_file_plays_audio_and_video_paced_and_looping(media_dir: Path) -> None:
    async def scenario() -> None:
        audio, video = FileTracks(str(media_dir / "both.mkv"))
        assert audio is not None and video is not None
        assert (audio.kind, video.kind) == ("audio", "video")
        start = time.monotonic()
        (video_frames, _), (audio_frames, _) = await asyncio.gather(timed_frames(video, 45),
                                                                   timed_frames(audio, 75))
        assert time.monotonic() - start == pytest.approx(1.5, rel=0.15)
        counters = [entry[0] if entry else None for entry in read_stamps(video_frames)]
        assert counters == (list(range(FILE_FRAMES)) * 3)[:45]
        for frames, rate in ((video_frames, 90000), (audio_frames, 48000)):
            pts = [frame.pts for frame in frames]
            assert all(frame.time_base == fractions.Fraction(1, rate) for frame in frames)
            assert pts == sorted(pts) and len(set(pts)) == len(pts)
            assert pts[-1] / rate == pytest.approx(1.45, abs=0.1)
        assert all(frame.samples == 960 and frame.sample_rate == 48000 for frame in audio_frames)
        assert dominant_frequency(audio_samples(audio_frames), 48000) == pytest.approx(440, abs=2)
        audio.stop()
        video.stop()
        with pytest.raises(MediaStreamError):
            await video.recv()

    run(scenario())


def test_file_without_loop_ends(media_dir: Path) -> None:
    async def scenario() -> None:
        tracks = FileTracks(str(media_dir / "video.mkv"), loop=False)
        assert tracks.audio is None and tracks.video is not None
        frames = []
        with pytest.raises(MediaStreamError):
            while True:
                frames.append(await tracks.video.recv())
        assert len(frames) == FILE_FRAMES
        assert tracks.video.readyState == "ended"

    run(scenario())


def test_audio_only_file(media_dir: Path) -> None:
    async def scenario() -> None:
        audio, video = FileTracks(str(media_dir / "audio.mkv"))
        assert video is None and audio is not None
        frames = [await audio.recv() for _ in range(20)]
        assert dominant_frequency(audio_samples(frames), 48000) == pytest.approx(440, abs=5)
        audio.stop()

    run(scenario())


def test_unusable_files_are_named_in_the_error(media_dir: Path) -> None:
    with pytest.raises(SourceError, match="no media file at .*missing.mkv"):
        FileTracks(str(media_dir / "missing.mkv"))
    with pytest.raises(SourceError, match="cannot open media file .*garbage.mkv"):
        FileTracks(str(media_dir / "garbage.mkv"))


# -- devices --------------------------------------------------------------------------------------------------


def test_missing_camera_is_named() -> None:
    with pytest.raises(SourceError, match="no camera at /dev/video-nope"):
        camera_track("/dev/video-nope")


def test_a_file_that_is_not_a_camera_is_named(tmp_path: Path) -> None:
    not_a_camera = tmp_path / "video9"
    not_a_camera.write_bytes(b"")
    with pytest.raises(SourceError, match=f"cannot open camera {not_a_camera}"):
        camera_track(str(not_a_camera))


def test_missing_microphone_is_named() -> None:
    with pytest.raises(SourceError, match="cannot open microphone 'hw:CARD=nope,DEV=0'"):
        microphone_track("hw:CARD=nope,DEV=0")


# -- bot specs ------------------------------------------------------------------------------------------------


def test_video_specs(media_dir: Path) -> None:
    assert parse_video_spec("none") is None
    factory = parse_video_spec("pattern")
    assert factory is not None
    track = factory()
    assert isinstance(track, TestPatternTrack) and (track.width, track.height, track.fps) == (640, 480, 30)
    factory = parse_video_spec("pattern:320x240@15")
    assert factory is not None
    track = factory()
    assert isinstance(track, TestPatternTrack) and (track.width, track.height, track.fps) == (320, 240, 15)
    factory = parse_video_spec(str(media_dir / "both.mkv"))
    assert factory is not None and factory().kind == "video"
    factory = parse_video_spec("camera:/dev/video-nope")
    assert factory is not None
    with pytest.raises(SourceError, match="/dev/video-nope"):
        factory()


def test_audio_specs(media_dir: Path) -> None:
    assert parse_audio_spec("none") is None
    for spec, hz in (("tone", 440.0), ("tone:1000", 1000.0), ("tone:261.63", 261.63)):
        factory = parse_audio_spec(spec)
        assert factory is not None
        track = factory()
        assert isinstance(track, ToneTrack) and track.hz == hz
    factory = parse_audio_spec(str(media_dir / "audio.mkv"))
    assert factory is not None and factory().kind == "audio"


@pytest.mark.parametrize(("spec", "message"), [
    ("pattern:big", "pattern:WIDTHxHEIGHT"),
    ("pattern:641x480", "test pattern size"),
    ("pattern:640x480@0", "test pattern fps"),
    ("", "empty video spec"),
    ("patern", "'patern' is not 'pattern'"),
    ("/nowhere/clip.mp4", "'/nowhere/clip.mp4' is not"),
])
def test_bad_video_specs(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_video_spec(spec)


@pytest.mark.parametrize(("spec", "message"), [
    ("tone:abc", "'abc' is not a frequency"),
    ("tone:nan", "not a frequency"),
    ("tone:0", "tone frequency"),
    ("tone:99999", "tone frequency"),
    ("", "empty audio spec"),
    ("beep", "'beep' is not 'tone'"),
])
def test_bad_audio_specs(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_audio_spec(spec)


def test_specs_naming_a_file_without_that_stream(media_dir: Path) -> None:
    with pytest.raises(SourceError, match="video.mkv has no audio stream"):
        parse_audio_spec(str(media_dir / "video.mkv"))
    with pytest.raises(SourceError, match="audio.mkv has no video stream"):
        parse_video_spec(str(media_dir / "audio.mkv"))
    with pytest.raises(SourceError, match="cannot open media file"):
        parse_video_spec(str(media_dir / "garbage.mkv"))
