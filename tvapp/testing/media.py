"""Analysis helpers for media tests and benches: tone frequency and level, frame stamps, VP8 keyframes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
from av.video.codeccontext import VideoCodecContext

from tvapp.client.stamp import read_stamp


def moving_texture(width: int, height: int, index: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """Return RGB frame `index` of a scene of coloured 8x8 blocks panning diagonally (hard for a codec)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, ((2 * height) // 8 + 1, (2 * width) // 8 + 1, 3), dtype=np.uint8)
    scene = np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))
    top, left = (index * 2) % height, (index * 3) % width
    return np.ascontiguousarray(scene[top:top + height, left:left + width])


def audio_samples(frames: Iterable[av.AudioFrame]) -> npt.NDArray[np.float64]:
    """Return the first channel of `frames` as one float array in [-1, 1)."""
    chunks = []
    for frame in frames:
        array = frame.to_ndarray()
        planar = frame.format.is_planar
        channels = len(frame.layout.channels)
        first = array[0] if planar else array.reshape(-1)[::channels]
        chunks.append(_normalized(first))
    return np.concatenate(chunks) if chunks else np.zeros(0)


def dominant_frequency(samples: npt.ArrayLike, sample_rate: int) -> float:
    """Return the frequency in Hz of the strongest tone in `samples` (int16 or float, mono)."""
    signal = _normalized(np.asarray(samples).reshape(-1))
    if signal.size < 4:
        raise ValueError("need at least 4 samples to find a frequency")
    windowed = (signal - signal.mean()) * np.hanning(signal.size)
    spectrum = np.abs(np.fft.rfft(windowed))
    peak = int(np.argmax(spectrum[1:])) + 1
    offset = 0.0
    if peak + 1 < spectrum.size:
        # Fit a parabola through the log magnitudes around the peak bin.
        left, centre, right = (math.log(max(value, 1e-12)) for value in spectrum[peak - 1:peak + 2])
        denominator = left - 2 * centre + right
        if denominator != 0:
            offset = 0.5 * (left - right) / denominator
    return (peak + offset) * sample_rate / signal.size


def rms_dbfs(samples: npt.ArrayLike) -> float:
    """Return the RMS level of `samples` (int16 or float in [-1, 1]) in dB full scale (-inf for silence)."""
    signal = _normalized(np.asarray(samples).reshape(-1))
    if signal.size == 0:
        raise ValueError("no samples")
    rms = float(np.sqrt(np.mean(signal * signal)))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def read_stamps(frames: Iterable[av.VideoFrame | npt.NDArray[np.uint8]]) -> list[tuple[int, int] | None]:
    """Return the (counter, capture_ms) stamp of each frame, None where a frame carries none."""
    stamps = []
    for frame in frames:
        image: npt.NDArray[np.uint8]
        if isinstance(frame, av.VideoFrame):
            planar = frame.format.name == "yuv420p"
            image = np.asarray(frame.to_ndarray() if planar else frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        else:
            image = frame
        stamps.append(read_stamp(image))
    return stamps


def vp8_keyframe(data: bytes) -> bool:
    """Return whether `data` (one VP8 frame, no RTP descriptor) is a keyframe."""
    # RFC 6386 9.1: bit 0 of the frame tag is 0 for a keyframe, which then carries the start code 9d 01 2a.
    return len(data) >= 10 and data[0] & 1 == 0 and data[3:6] == b"\x9d\x01\x2a"


def decode_video(packets: Iterable[av.Packet[Any]], codec: str = "vp8") -> list[av.VideoFrame]:
    """Decode `packets` of `codec` ("vp8" or "h264") with a fresh decoder and return the frames."""
    context = cast(VideoCodecContext, av.CodecContext.create("libvpx" if codec == "vp8" else codec, "r"))
    frames: list[av.VideoFrame] = []
    for packet in packets:
        frames.extend(frame for frame in context.decode(packet) if isinstance(frame, av.VideoFrame))
    frames.extend(frame for frame in context.decode(None) if isinstance(frame, av.VideoFrame))
    return frames


def _normalized(samples: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    if samples.dtype == np.int16:
        return samples.astype(np.float64) / 32768.0
    if np.issubdtype(samples.dtype, np.integer):
        raise ValueError(f"integer samples must be int16, not {samples.dtype}")
    return samples.astype(np.float64)
