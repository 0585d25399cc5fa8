"""Synthetic sources: a moving colour-bar test pattern stamped with a counter and capture time, and a sine tone.

Video is yuv420p paced on the monotonic clock with pts in 1/90000; the pattern can be one solid colour instead of
bars (`parse_color`, `rgb_to_yuv`), so a receiver can tell senders apart. Audio is 20 ms s16 mono frames with pts
counted in samples.
"""

from __future__ import annotations

import fractions
import time
from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tvapp.client.sources.common import AUDIO_FRAME_SECONDS, VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, Pacer, SourceError
from tvapp.client.stamp import MIN_WIDTH, stamp, stamp_height

Plane = npt.NDArray[np.uint8]


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
        self._pacer = Pacer()
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
        self._pacer = Pacer()
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
