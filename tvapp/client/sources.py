"""Local media sources as aiortc tracks: a stamped test pattern, a tone, a looping file, camera and microphone.

Every track here returns raw av frames from recv(); video is paced on the monotonic clock with pts in
1/90000, audio in 20 ms frames with pts counted in samples. The bot CLI picks sources with
parse_video_spec / parse_audio_spec ("pattern", "tone:440", "none", a file path, ...).
"""

from __future__ import annotations

import asyncio
import fractions
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from av.frame import Frame
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tvapp.client.stamp import MIN_WIDTH, stamp, stamp_height

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_FRAME_SECONDS = 0.020
FILE_AUDIO_RATE = 48000
# Catching up a backlog longer than this would burst frames; start the schedule afresh instead.
MAX_LAG_SECONDS = 0.5
_BUFFERED_FRAMES_MAX = 500

TrackFactory = Callable[[], MediaStreamTrack]
Plane = npt.NDArray[np.uint8]


class SourceError(Exception):
    """A media source cannot be opened or a source spec is invalid; the message names which."""


class _Pacer:
    """Schedule frames on the monotonic clock: wait until each is due, never burst after a stall."""

    def __init__(self) -> None:
        self.start: float | None = None
        self._next = 0.0

    async def wait(self, interval: float) -> float:
        """Sleep until the next frame is due; return its offset in seconds from the first frame."""
        now = time.monotonic()
        if self.start is None:
            self.start = self._next = now
        elif self._next > now:
            await asyncio.sleep(self._next - now)
        elif now - self._next > MAX_LAG_SECONDS:
            self._next = now
        due = self._next
        self._next = due + interval
        return due - self.start


def check_pattern_format(width: int, height: int, fps: float) -> None:
    """Raise SourceError unless the test pattern can be drawn at `width` x `height` and `fps`."""
    if width % 2 or height % 2 or width < MIN_WIDTH or height < 120 or width > 4096 or height > 4096:
        raise SourceError(f"test pattern size must be even and between 160x120 and 4096x4096, not {width}x{height}")
    if not 0 < fps <= 120:
        raise SourceError(f"test pattern fps must be in (0, 120], not {fps}")


def check_tone(hz: float, sample_rate: int = 48000, amplitude: float = 0.3) -> None:
    """Raise SourceError unless a tone of `hz` at `sample_rate` and `amplitude` can be made."""
    if not 0 < hz < sample_rate / 2:
        raise SourceError(f"tone frequency must be between 0 and {sample_rate / 2:g} Hz, not {hz}")
    if not 0 <= amplitude <= 1:
        raise SourceError(f"tone amplitude must be in [0, 1], not {amplitude}")
    if sample_rate <= 0 or sample_rate % 50:
        raise SourceError(f"sample rate must be a positive multiple of 50 Hz (20 ms frames), not {sample_rate}")


class TestPatternTrack(MediaStreamTrack):
    """A moving colour-bar pattern stamped with a frame counter and its wall-clock capture time (ms).

    With `color` (r, g, b) the bars give way to that one colour, so a receiver can tell senders apart by colour.
    """

    __test__ = False
    kind = "video"

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0,
                 color: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self._pacer = _Pacer()
        self._last_pts = -1
        self.counter = 0
        self.color = color
        self.set_format(width, height, fps)

    @property
    def width(self) -> int:
        """Return the current frame width."""
        return self._width

    @property
    def height(self) -> int:
        """Return the current frame height."""
        return self._height

    @property
    def fps(self) -> float:
        """Return the current frame rate."""
        return self._fps

    def set_format(self, width: int, height: int, fps: float) -> None:
        """Make frames of `width` x `height` at `fps` from the next frame on."""
        check_pattern_format(width, height, fps)
        self._width, self._height, self._fps = width, height, float(fps)
        self._background = _pattern_background(width, height, self.color)

    async def recv(self) -> av.VideoFrame:
        """Return the next frame once it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        offset = await self._pacer.wait(1.0 / self._fps)
        pts = max(round(offset * VIDEO_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        frame = self.make_frame(self.counter, int(time.time() * 1000), offset)
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self.counter = (self.counter + 1) & 0xFFFFFFFF
        return frame

    def make_frame(self, counter: int, capture_ms: int, seconds: float) -> av.VideoFrame:
        """Draw the pattern as it looks `seconds` after the start, stamped with `counter` and `capture_ms`."""
        width, height = self._width, self._height
        frame = av.VideoFrame(width, height, "yuv420p")
        planes = [_plane_view(frame, index) for index in range(3)]
        for plane, background in zip(planes, self._background):
            plane[...] = background
        _draw_box(planes, width, height, seconds)
        stamp(planes[0], counter, capture_ms)
        return frame


class ToneTrack(MediaStreamTrack):
    """A sine tone in 20 ms s16 mono frames with continuous phase; silence while `enabled` is False.

    `gate(wall_seconds)`, when given, decides per frame instead of `enabled`, at the frame's capture time
    (bots taking turns use it, so a turn starts within one frame of its wall-clock boundary).
    """

    kind = "audio"

    def __init__(self, hz: float = 440.0, sample_rate: int = 48000, amplitude: float = 0.3,
                 gate: Callable[[float], bool] | None = None) -> None:
        check_tone(hz, sample_rate, amplitude)
        super().__init__()
        self.gate = gate
        self.hz = hz
        self.sample_rate = sample_rate
        self.amplitude = amplitude
        self.enabled = True
        self._samples = sample_rate // 50
        self._pacer = _Pacer()
        self._phase = 0.0
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        """Return the next 20 ms frame once it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        await self._pacer.wait(AUDIO_FRAME_SECONDS)
        cycles = self._phase + self.hz * np.arange(self._samples) / self.sample_rate
        self._phase = (self._phase + self.hz * self._samples / self.sample_rate) % 1.0
        if (self.enabled if self.gate is None else self.gate(time.time())):
            samples = np.round(np.sin(2 * np.pi * cycles) * self.amplitude * 32767).astype(np.int16)
        else:
            samples = np.zeros(self._samples, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        self._pts += self._samples
        return frame


class _FilePlayer:
    """Demux and decode one media file on demand (from worker threads), looping, for its two tracks.

    Both tracks share one clock so audio and video stay together: a frame's `seconds` is its place on
    the playback timeline, which keeps growing across loops.
    """

    def __init__(self, path: str, loop: bool) -> None:
        self.path = path
        self.loop = loop
        self.container = _open_container(path)
        audio = [s for s in self.container.streams if s.type == "audio"]
        video = [s for s in self.container.streams if s.type == "video"]
        self.audio_stream = audio[0] if audio else None
        self.video_stream = video[0] if video else None
        self.streams = [s for s in (self.audio_stream, self.video_stream) if s is not None]
        if not self.streams:
            self.container.close()
            raise SourceError(f"media file {path} has neither audio nor video")
        self.pacer = _Pacer()
        self._lock = threading.Lock()
        self._buffers: dict[str, deque[tuple[Frame, float]]] = {"audio": deque(), "video": deque()}
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=FILE_AUDIO_RATE, frame_size=960)
        self._packets = self.container.demux(self.streams)
        self._origin: float | None = None
        self._loop_offset = 0.0
        self._pass_end = 0.0
        self._pass_frames = 0
        self._audio_clock: float | None = None
        self._open_tracks = len(self.streams)
        self._closed = False

    def next_frame(self, kind: str) -> tuple[Frame, float] | None:
        """Return the next (frame, seconds) of `kind`, or None at the end (blocks: call from a worker)."""
        with self._lock:
            buffer = self._buffers[kind]
            while not buffer:
                if self._closed or not self._decode_more():
                    return None
            return buffer.popleft()

    def release(self) -> None:
        """Note that one track stopped; close the file once both did."""
        with self._lock:
            self._open_tracks -= 1
            if self._open_tracks <= 0 and not self._closed:
                self._closed = True
                self.container.close()

    def _decode_more(self) -> bool:
        try:
            packet = next(self._packets)
        except StopIteration:
            return self._restart()
        except av.FFmpegError as exc:
            raise SourceError(f"cannot read media file {self.path}: {exc}") from exc
        try:
            frames = packet.decode()
        except av.FFmpegError:
            return True
        for frame in frames:
            if isinstance(frame, av.VideoFrame):
                self._add_video(frame)
            elif isinstance(frame, av.AudioFrame):
                for chunk in self._resampler.resample(frame):
                    self._add_audio(chunk, frame.time)
        return True

    def _restart(self) -> bool:
        if not self.loop or self._pass_frames == 0:
            return False
        self._loop_offset = self._pass_end
        self._pass_frames = 0
        self._audio_clock = None
        for stream in self.streams:
            stream.codec_context.flush_buffers()
        self.container.seek(0)
        self._packets = self.container.demux(self.streams)
        return True

    def _timeline(self, media_seconds: float | None) -> float:
        if media_seconds is None:
            return self._pass_end
        if self._origin is None:
            self._origin = media_seconds
        return self._loop_offset + max(0.0, media_seconds - self._origin)

    def _add_video(self, frame: av.VideoFrame) -> None:
        seconds = self._timeline(frame.time)
        rate = self.video_stream.average_rate if self.video_stream is not None else None
        duration = 1 / float(rate) if rate else 1 / 30
        self._push("video", frame, seconds, seconds + duration)

    def _add_audio(self, frame: av.AudioFrame, source_seconds: float | None) -> None:
        if self._audio_clock is None:
            self._audio_clock = self._timeline(source_seconds)
        seconds = self._audio_clock
        self._audio_clock += frame.samples / FILE_AUDIO_RATE
        self._push("audio", frame, seconds, self._audio_clock)

    def _push(self, kind: str, frame: Frame, seconds: float, end: float) -> None:
        self._pass_frames += 1
        self._pass_end = max(self._pass_end, end)
        buffer = self._buffers[kind]
        buffer.append((frame, seconds))
        if len(buffer) > _BUFFERED_FRAMES_MAX:
            buffer.popleft()


class _FileTrack(MediaStreamTrack):
    """One stream of a _FilePlayer, paced on the player's shared clock."""

    def __init__(self, player: _FilePlayer, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._player = player
        self._last_pts = -1

    async def recv(self) -> Frame:
        """Return the next frame of the file once it is due (MediaStreamError at the end)."""
        if self.readyState != "live":
            raise MediaStreamError
        item = await asyncio.get_running_loop().run_in_executor(None, self._player.next_frame, self.kind)
        if item is None or self.readyState != "live":
            self.stop()
            raise MediaStreamError
        frame, seconds = item
        await _wait_until(self._player.pacer, seconds)
        rate = VIDEO_CLOCK_RATE if self.kind == "video" else FILE_AUDIO_RATE
        pts = max(round(seconds * rate), self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, rate)
        return frame

    def stop(self) -> None:
        """End this track; the file closes once its other track ended too."""
        if self.readyState == "live":
            super().stop()
            self._player.release()


async def _wait_until(pacer: _Pacer, seconds: float) -> None:
    now = time.monotonic()
    if pacer.start is None:
        pacer.start = now - seconds
    due = pacer.start + seconds
    if due > now:
        await asyncio.sleep(due - now)
    elif now - due > MAX_LAG_SECONDS:
        pacer.start = now - seconds


class FileTracks:
    """Play a media file as (audio, video) tracks, looping, paced; unpack with `audio, video = FileTracks(p)`."""

    def __init__(self, path: str, loop: bool = True) -> None:
        player = _FilePlayer(path, loop)
        self.audio: MediaStreamTrack | None = _FileTrack(player, "audio") if player.audio_stream else None
        self.video: MediaStreamTrack | None = _FileTrack(player, "video") if player.video_stream else None

    def __iter__(self) -> Iterator[MediaStreamTrack | None]:
        """Yield the audio track then the video track (None where the file has no such stream)."""
        yield self.audio
        yield self.video

    def stop(self) -> None:
        """End both tracks and close the file."""
        for track in (self.audio, self.video):
            if track is not None:
                track.stop()


class _DeviceTrack(MediaStreamTrack):
    """Frames read from a live capture device; the device paces them."""

    def __init__(self, kind: str, container: Any, description: str) -> None:
        super().__init__()
        self.kind = kind
        self._container = container
        self._description = description
        self._stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        self._frames = container.decode(self._stream)
        self._lock = threading.Lock()
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=FILE_AUDIO_RATE, frame_size=960)
        self._pending: deque[Frame] = deque()
        self._origin: float | None = None
        self._audio_pts = 0
        self._last_pts = -1

    def _read(self) -> Frame | None:
        with self._lock:
            while not self._pending:
                try:
                    frame = next(self._frames)
                except (StopIteration, av.FFmpegError, ValueError):
                    return None
                if self.kind == "audio":
                    self._pending.extend(self._resampler.resample(frame))
                else:
                    self._pending.append(frame)
            return self._pending.popleft()

    async def recv(self) -> Frame:
        """Return the next captured frame (MediaStreamError when the device stops)."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await asyncio.get_running_loop().run_in_executor(None, self._read)
        if frame is None:
            self.stop()
            raise MediaStreamError(f"{self._description} stopped")
        if isinstance(frame, av.AudioFrame):
            frame.pts = self._audio_pts
            frame.time_base = fractions.Fraction(1, FILE_AUDIO_RATE)
            self._audio_pts += frame.samples
            return frame
        now = frame.time if frame.time is not None else time.monotonic()
        if self._origin is None:
            self._origin = now
        pts = max(round((now - self._origin) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        return frame

    def stop(self) -> None:
        """End the track and release the device."""
        if self.readyState == "live":
            super().stop()
            with self._lock:
                self._container.close()


def camera_track(device: str = "/dev/video0", width: int = 640, height: int = 480,
                 fps: float = 30.0) -> MediaStreamTrack:
    """Open the V4L2 camera at `device` as a video track (SourceError naming the device if it cannot)."""
    if not os.path.exists(device):
        raise SourceError(f"no camera at {device}")
    if not _has_input_format("v4l2"):
        raise SourceError(f"cannot open camera {device}: this av build has no v4l2 input")
    options = {"video_size": f"{width}x{height}", "framerate": f"{fps:g}"}
    try:
        container = av.open(device, format="v4l2", options=options)
    except av.FFmpegError as exc:
        raise SourceError(f"cannot open camera {device}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"camera {device} gives no video")
    return _DeviceTrack("video", container, f"camera {device}")


def microphone_track(device: str = "default") -> MediaStreamTrack:
    """Open the ALSA capture device `device` as an audio track (SourceError naming the device if it cannot)."""
    if not _has_input_format("alsa"):
        raise SourceError(f"cannot open microphone {device!r}: this av build has no alsa input")
    try:
        container = av.open(device, format="alsa")
    except av.FFmpegError as exc:
        raise SourceError(f"cannot open microphone {device!r}: {exc}") from exc
    if not container.streams.audio:
        container.close()
        raise SourceError(f"microphone {device!r} gives no audio")
    return _DeviceTrack("audio", container, f"microphone {device!r}")


def parse_video_spec(spec: str, color: tuple[int, int, int] | None = None) -> TrackFactory | None:
    """Turn a bot's video spec into a track factory, or None for "none".

    Specs: "pattern", "pattern:WIDTHxHEIGHT[@FPS]", "camera[:DEVICE]", "none", or a media file path.
    `color` makes a pattern one solid colour instead of colour bars.
    """
    if spec == "none":
        return None
    if spec == "pattern" or spec.startswith("pattern:"):
        width, height, fps = _parse_pattern_format(spec)
        check_pattern_format(width, height, fps)
        return lambda: TestPatternTrack(width, height, fps, color)
    if spec == "camera" or spec.startswith("camera:"):
        device = spec.partition(":")[2] or "/dev/video0"
        return lambda: camera_track(device)
    return _file_factory(spec, "video", "'pattern', 'pattern:WxH@FPS', 'camera[:DEVICE]', 'none'")


def parse_audio_spec(spec: str) -> TrackFactory | None:
    """Turn a bot's audio spec into a track factory, or None for "none".

    Specs: "tone", "tone:HZ", "mic[:DEVICE]", "none", or a media file path.
    """
    if spec == "none":
        return None
    if spec == "tone" or spec.startswith("tone:"):
        text = spec.partition(":")[2] or "440"
        try:
            hz = float(text)
        except ValueError:
            raise SourceError(f"audio spec {spec!r}: {text!r} is not a frequency in Hz") from None
        if not math.isfinite(hz):
            raise SourceError(f"audio spec {spec!r}: {text!r} is not a frequency in Hz")
        check_tone(hz)
        return lambda: ToneTrack(hz)
    if spec == "mic" or spec.startswith("mic:"):
        device = spec.partition(":")[2] or "default"
        return lambda: microphone_track(device)
    return _file_factory(spec, "audio", "'tone', 'tone:HZ', 'mic[:DEVICE]', 'none'")


def _parse_pattern_format(spec: str) -> tuple[int, int, float]:
    text = spec.partition(":")[2]
    if not text:
        return 640, 480, 30.0
    size, _, rate = text.partition("@")
    try:
        width_text, height_text = size.lower().split("x")
        width, height = int(width_text), int(height_text)
        fps = float(rate) if rate else 30.0
    except ValueError:
        raise SourceError(f"video spec {spec!r}: expected pattern:WIDTHxHEIGHT[@FPS], e.g. pattern:640x480@30") \
            from None
    return width, height, fps


def _file_factory(spec: str, kind: str, alternatives: str) -> TrackFactory:
    if not spec:
        raise SourceError(f"empty {kind} spec: expected {alternatives} or a media file")
    if not os.path.isfile(spec):
        raise SourceError(f"{kind} spec {spec!r} is not {alternatives} nor an existing media file")
    container = _open_container(spec)
    try:
        if not any(stream.type == kind for stream in container.streams):
            raise SourceError(f"media file {spec} has no {kind} stream")
    finally:
        container.close()

    def factory() -> MediaStreamTrack:
        tracks = FileTracks(spec)
        track = tracks.audio if kind == "audio" else tracks.video
        other = tracks.video if kind == "audio" else tracks.audio
        if other is not None:
            other.stop()
        if track is None:
            raise SourceError(f"media file {spec} has no {kind} stream")
        return track

    return factory


def _open_container(path: str) -> Any:
    if not os.path.isfile(path):
        raise SourceError(f"no media file at {path}")
    try:
        return av.open(path)
    except av.FFmpegError as exc:
        raise SourceError(f"cannot open media file {path}: {exc}") from exc


def _has_input_format(name: str) -> bool:
    return any(name in entry.split(",") for entry in av.formats_available)


def _plane_view(frame: av.VideoFrame, index: int) -> Plane:
    plane = frame.planes[index]
    buffer = np.frombuffer(memoryview(plane), dtype=np.uint8)
    rows = buffer.reshape(-1, plane.line_size)
    return rows[:plane.height, :plane.width]


# BT.601 limited-range YUV of white, yellow, cyan, green, magenta, red, blue, black.
_BARS_YUV = (
    (235, 128, 128), (210, 16, 146), (170, 166, 16), (145, 54, 34),
    (106, 202, 222), (81, 90, 240), (41, 240, 110), (16, 128, 128),
)


def parse_color(text: str) -> tuple[int, int, int]:
    """Return (r, g, b) for "#rrggbb", "rrggbb" or a basic colour name (red, green, blue, ...)."""
    value = _COLOR_NAMES.get(text.strip().lower(), text.strip().lstrip("#"))
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        names = ", ".join(sorted(_COLOR_NAMES))
        raise SourceError(f"colour {text!r}: expected #RRGGBB or one of {names}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Return BT.601 limited-range (Y, Cb, Cr) of an sRGB colour: what decoders turn back into that colour."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(cb), round(cr)


_COLOR_NAMES = {
    "red": "e03030", "green": "30c040", "blue": "3050e0", "yellow": "e0d030", "magenta": "d040d0",
    "cyan": "30c8d8", "orange": "f08020", "white": "f0f0f0",
}


def _pattern_background(width: int, height: int,
                        color: tuple[int, int, int] | None = None) -> tuple[Plane, Plane, Plane]:
    y = np.full((height, width), 128, dtype=np.uint8)
    u = np.full((height // 2, width // 2), 128, dtype=np.uint8)
    v = np.full((height // 2, width // 2), 128, dtype=np.uint8)
    top = stamp_height(width)
    if color is not None:
        luma, cb, cr = rgb_to_yuv(color)
        y[top:], u[top // 2:], v[top // 2:] = luma, cb, cr
        return y, u, v
    bar_width = width // len(_BARS_YUV)
    for index, (luma, cb, cr) in enumerate(_BARS_YUV):
        left = index * bar_width
        right = width if index == len(_BARS_YUV) - 1 else left + bar_width
        y[top:, left:right] = luma
        u[top // 2:, left // 2:right // 2] = cb
        v[top // 2:, left // 2:right // 2] = cr
    return y, u, v


def _draw_box(planes: list[Plane], width: int, height: int, seconds: float) -> None:
    top = stamp_height(width)
    size = max(16, (min(width, height - top) // 5) // 2 * 2)
    x = _bounce(seconds * width * 0.25, width - size)
    y = top + _bounce(seconds * (height - top) * 0.3, height - top - size)
    shade = int(seconds * 4) % 2
    planes[0][y:y + size, x:x + size] = 235 if shade else 16
    planes[1][y // 2:(y + size) // 2, x // 2:(x + size) // 2] = 128
    planes[2][y // 2:(y + size) // 2, x // 2:(x + size) // 2] = 128


def _bounce(distance: float, span: int) -> int:
    if span <= 0:
        return 0
    position = int(distance) % (2 * span)
    return (position if position < span else 2 * span - position) // 2 * 2
