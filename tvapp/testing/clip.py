"""Test clips for watch-together: every video frame says which frame it is and where it sits on the timeline.

`make_clip` writes an H.264/AAC .mp4 (``+faststart``, so a browser can stream it) or a VP8/Opus .webm whose frames
each carry a stamp (tvapp.client.stamp) of the frame index and the frame's pts in ms, over a background whose colour
changes every second and a bar that sweeps across once a second (a screenshot shows motion). The audio is a sine at
`audio_hz`, 48 kHz stereo, at `TONE_AMPLITUDE`; its phase is ``2 pi audio_hz t`` at content time ``t``, so a test can
tell from the sound where in the content a player is (modulo one period).

Clips are cached in the folder the caller gives, one file per set of arguments: a session's tests make each clip once.
`read_clip_stamp` reads a screenshot's stamp back; a clip whose width is a multiple of 320 carries a stamp laid out
in 40 x 2 cells across its whole width, which reads at any scale (the screen may show the content smaller).
"""

from __future__ import annotations

import fractions
import os
import secrets
from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from tvapp.client.sources import rgb_to_yuv
from tvapp.client.stamp import read_stamp, stamp, stamp_height

CLIP_FORMAT = 1
"""Bumped when the clip's content changes, so cached clips of an older format are not reused."""
TONE_AMPLITUDE = 0.5
AUDIO_RATE = 48000
_READ_WIDTH = 640
_SECOND_COLORS = (
    (200, 40, 40), (40, 160, 60), (40, 70, 200), (200, 180, 40), (170, 50, 170),
    (40, 170, 180), (220, 120, 30), (120, 120, 120), (90, 40, 20), (20, 90, 60),
)
_CODECS = {
    "h264": ("mp4", "libx264", "aac"),
    "vp8": ("webm", "libvpx", "libopus"),
}

Image = npt.NDArray[np.uint8]


def make_clip(path: str | os.PathLike[str], *, seconds: float = 10.0, fps: int = 30,
              size: tuple[int, int] = (640, 360), codec: str = "h264", audio_hz: float = 440.0, audio: bool = True,
              gop: int | None = None) -> Path:
    """Write (or find already written) a stamped clip in the folder `path` and return the clip's path.

    `codec` "h264" gives .mp4 (libx264 ultrafast, yuv420p, AAC), "vp8" gives .webm (libvpx realtime, Opus).
    `gop` is the number of frames between keyframes (None: two seconds' worth).
    """
    if codec not in _CODECS:
        raise ValueError(f"codec must be one of {sorted(_CODECS)}, not {codec!r}")
    width, height = size
    if width % 2 or height % 2 or width < 320 or height < 120:
        raise ValueError(f"clip size must be even and at least 320x120, not {width}x{height}")
    if not (seconds > 0 and fps > 0 and 0 < audio_hz < AUDIO_RATE / 2):
        raise ValueError("seconds and fps must be positive and audio_hz below 24 kHz")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    extension = _CODECS[codec][0]
    keyint = gop if gop is not None else 2 * fps
    name = (f"clip{CLIP_FORMAT}-{codec}-{width}x{height}-{fps}fps-{seconds:g}s-"
            f"{f'{audio_hz:g}hz' if audio else 'silent'}-gop{keyint}.{extension}")
    target = folder / name
    if target.exists():
        return target
    partial = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part"
    try:
        _write_clip(partial, extension, codec, seconds, fps, width, height, audio_hz if audio else None, keyint)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def read_clip_stamp(rgb_image: Image) -> tuple[int, int] | None:
    """Return (frame_index, pts_ms) stamped in an RGB screenshot of a clip frame, or None if none reads."""
    found = read_stamp(rgb_image)
    if found is not None or rgb_image.shape[1] == _READ_WIDTH:
        return found
    height, width = rgb_image.shape[:2]
    rows = max(1, round(height * _READ_WIDTH / width))
    ys = np.minimum((np.arange(rows) + 0.5) * height / rows, height - 1).astype(np.intp)
    xs = np.minimum((np.arange(_READ_WIDTH) + 0.5) * width / _READ_WIDTH, width - 1).astype(np.intp)
    return read_stamp(np.ascontiguousarray(rgb_image[ys][:, xs]))


def tone_phase(samples: npt.ArrayLike, hz: float, rate: int = AUDIO_RATE) -> float:
    """Return where (seconds, in [0, 1/hz)) a stretch of a clip's tone starts in the tone's period.

    `samples` is one channel of the tone as the clip has it (or slightly rate-nudged); a clip's tone at content
    time ``t`` is ``sin(2 pi hz t)``, so the result is the content position of the first sample modulo ``1/hz``.
    """
    signal = np.asarray(samples, dtype=np.float64).reshape(-1)
    t = np.arange(signal.size) / rate
    # Least squares for a*sin(wt) + b*cos(wt): the content position p gives a = cos(wp), b = sin(wp).
    basis = np.stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, signal, rcond=None)
    return float((np.arctan2(b, a) / (2 * np.pi * hz)) % (1.0 / hz))


def _write_clip(path: Path, extension: str, codec: str, seconds: float, fps: int, width: int, height: int,
                audio_hz: float | None, keyint: int) -> None:
    _, video_codec, audio_codec = _CODECS[codec]
    options = {"movflags": "+faststart"} if extension == "mp4" else {}
    with av.open(str(path), "w", format=extension, options=options) as container:
        video = cast(VideoStream, container.add_stream(video_codec, rate=fps))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = fractions.Fraction(1, fps)
        video.codec_context.gop_size = keyint
        if codec == "h264":
            video.options = {"preset": "ultrafast", "crf": "20", "x264-params": f"keyint={keyint}:min-keyint={keyint}"}
        else:
            video.bit_rate = max(500_000, width * height * 4)
            video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                             "kf-max-dist": str(keyint), "kf-min-dist": str(keyint)}
        tone = None
        if audio_hz is not None:
            tone = cast(AudioStream, container.add_stream(audio_codec, rate=AUDIO_RATE))
            tone.layout = "stereo"
            tone.bit_rate = 128_000
        frames = max(1, round(seconds * fps))
        painter = _Painter(width, height)
        audio_written = 0
        total_samples = round(seconds * AUDIO_RATE)
        for index in range(frames):
            if tone is not None and audio_hz is not None:
                due = min(total_samples, round((index + 1) * AUDIO_RATE / fps))
                audio_written = _write_tone(container, tone, audio_hz, audio_written, due)
            frame = painter.frame(index, fps)
            frame.pts = index
            frame.time_base = fractions.Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if tone is not None and audio_hz is not None:
            _write_tone(container, tone, audio_hz, audio_written, total_samples, flush=True)


def _write_tone(container: av.container.OutputContainer, stream: AudioStream, hz: float, start: int,
                end: int, flush: bool = False) -> int:
    size = stream.codec_context.frame_size or 960
    fmt = stream.codec_context.format.name
    while end - start >= size or (flush and end > start):
        count = min(size, end - start)
        t = (start + np.arange(size)) / AUDIO_RATE
        wave = (TONE_AMPLITUDE * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        wave[count:] = 0.0
        both = np.stack([wave, wave])
        if fmt == "fltp":
            frame = av.AudioFrame.from_ndarray(both, format="fltp", layout="stereo")
        elif fmt == "flt":
            frame = av.AudioFrame.from_ndarray(both.T.reshape(1, -1), format="flt", layout="stereo")
        else:
            ints = np.round(both.T.reshape(1, -1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(ints, format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        container.mux(stream.encode(frame))
        start += count
    if flush:
        container.mux(stream.encode(None))
    return start


class _Painter:
    """Draw clip frames straight into yuv420p planes: second-coloured background, sweeping bar, stamp band."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.band = stamp_height(width)
        self.bar = max(8, width // 40) // 2 * 2

    def frame(self, index: int, fps: int) -> av.VideoFrame:
        """Return frame `index` of a clip at `fps`."""
        pts_ms = round(index * 1000 / fps)
        second, within = divmod(index, fps)
        luma, cb, cr = rgb_to_yuv(_SECOND_COLORS[second % len(_SECOND_COLORS)])
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y, u, v = (_plane(frame, plane) for plane in range(3))
        y[...] = luma
        u[...] = cb
        v[...] = cr
        left = (within * (self.width - self.bar) // max(1, fps - 1)) // 2 * 2
        y[self.band:, left:left + self.bar] = 235
        u[self.band // 2:, left // 2:(left + self.bar) // 2] = 128
        v[self.band // 2:, left // 2:(left + self.bar) // 2] = 128
        u[:self.band // 2] = 128
        v[:self.band // 2] = 128
        stamp(y, index, pts_ms)
        return frame


def _plane(frame: av.VideoFrame, index: int) -> Image:
    plane = frame.planes[index]
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
    return rows[:plane.height, :plane.width]
