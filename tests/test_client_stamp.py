"""The frame stamp: exact round trips, refusal of unstamped or damaged frames, survival through real codecs."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvapp.client.encoder import VideoEncoder
from tvapp.client.stamp import layout_for_width, read_stamp, stamp, stamp_height

SIZES = [(160, 120), (320, 240), (640, 480), (854, 480), (1280, 720), (1920, 1080)]
MAX_COUNTER = (1 << 32) - 1
MAX_MS = (1 << 48) - 1


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Return coloured 8x8 blocks: detail a codec must spend bits on, like a real picture."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width]


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize(("counter", "capture_ms"), [(0, 0), (MAX_COUNTER, MAX_MS), (123456, 1_700_000_000_123)])
def test_round_trip_rgb_and_luma(width: int, height: int, counter: int, capture_ms: int) -> None:
    rgb = texture(height, width)
    assert stamp(rgb, counter, capture_ms) is rgb
    assert read_stamp(rgb) == (counter, capture_ms)
    luma = texture(height, width)[:, :, 0].copy()
    stamp(luma, counter, capture_ms)
    assert read_stamp(luma) == (counter, capture_ms)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_stamp_is_a_top_band_aligned_to_8x8_blocks(width: int, height: int) -> None:
    layout = layout_for_width(width)
    assert layout.cell >= 16 and layout.cell % 8 == 0
    assert layout.columns * layout.cell <= width
    assert layout.height == stamp_height(width) < height
    before = texture(height, width)
    after = stamp(before.copy(), 7, 7)
    assert np.array_equal(before[layout.height:], after[layout.height:])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_COUNTER), st.integers(0, MAX_MS), st.sampled_from(SIZES[:3]), st.integers(0, 1000))
def test_round_trip_property(counter: int, capture_ms: int, size: tuple[int, int], seed: int) -> None:
    width, height = size
    assert read_stamp(stamp(texture(height, width, seed), counter, capture_ms)) == (counter, capture_ms)


@pytest.mark.parametrize("fill", [0, 128, 255])
def test_plain_frames_carry_no_stamp(fill: int) -> None:
    assert read_stamp(np.full((480, 640, 3), fill, dtype=np.uint8)) is None
    assert read_stamp(np.full((720, 640), fill, dtype=np.uint8)) is None


def test_noise_frames_carry_no_stamp() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        assert read_stamp(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) is None
        assert read_stamp(texture(240, 320, int(rng.integers(1 << 30)))) is None


def test_a_changed_cell_fails_the_checksum() -> None:
    layout = layout_for_width(640)
    for index in range(2, 50):
        rgb = stamp(np.zeros((480, 640, 3), dtype=np.uint8), 99, 12345)
        y, x = layout.origin(index)
        cell = rgb[y:y + layout.cell, x:x + layout.cell]
        cell[...] = 85 if cell[0, 0, 0] != 85 else 170
        assert read_stamp(rgb) is None, index


def test_bad_arguments_are_refused() -> None:
    rgb = np.zeros((480, 640, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="32 bits"):
        stamp(rgb, 1 << 32, 0)
    with pytest.raises(ValueError, match="48 bits"):
        stamp(rgb, 0, -1)
    with pytest.raises(ValueError, match="160 px wide"):
        stamp(np.zeros((120, 158, 3), dtype=np.uint8), 0, 0)
    with pytest.raises(ValueError, match="rows"):
        stamp(np.zeros((40, 160, 3), dtype=np.uint8), 0, 0)
    with pytest.raises(ValueError, match="uint8"):
        stamp(np.zeros((480, 640, 3), dtype=np.float32), 0, 0)
    with pytest.raises(ValueError, match="shape"):
        read_stamp(np.zeros((480, 640, 4), dtype=np.uint8))
    assert read_stamp(np.zeros((40, 160, 3), dtype=np.uint8)) is None


def encode_decode(codec: str, width: int, height: int, frames: int, bitrate: int) -> tuple[int, list[bool], float]:
    """Stamp moving textured frames, encode them at `bitrate`, decode; return (decoded, stamp ok, bps)."""
    encoder = VideoEncoder(codec, width, height, fps=30, bitrate=bitrate)
    decoder = av.CodecContext.create("libvpx" if codec == "vp8" else "h264", "r")
    scene = texture(2 * height, 2 * width)
    results: list[bool] = []
    size = 0
    for index in range(frames):
        image = np.ascontiguousarray(scene[index * 2:index * 2 + height, index * 3:index * 3 + width])
        expected = (index * 7919, 1_700_000_000_000 + index * 33)
        stamp(image, *expected)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        for packet in encoder.encode(frame):
            size += packet.size
            for decoded in decoder.decode(packet):
                results.append(read_stamp(decoded.to_ndarray(format="rgb24")) == expected
                               and read_stamp(decoded.to_ndarray()) == expected)
    return len(results), results, size * 8 * 30 / frames


@pytest.mark.parametrize(("width", "height"), [(640, 480), (320, 240)])
def test_stamp_survives_vp8_at_300_kbps(width: int, height: int) -> None:
    decoded, ok, bps = encode_decode("vp8", width, height, frames=90, bitrate=300_000)
    assert decoded == 90
    assert all(ok), [index for index, good in enumerate(ok) if not good]
    assert bps < 300_000 * 1.3


def test_stamp_survives_h264_at_300_kbps() -> None:
    decoded, ok, bps = encode_decode("h264", 320, 240, frames=60, bitrate=300_000)
    assert decoded == 60
    assert all(ok), [index for index, good in enumerate(ok) if not good]
    assert bps < 300_000 * 1.3


def test_the_tv_trace_reads_no_stamp_from_a_frame_too_narrow_to_carry_one() -> None:
    """Adaptive stream sends a small tile's video small: the TV's flip trace must skip it, not die (it did)."""
    import av

    from tvapp.client.stamp import MIN_WIDTH
    from tvapp.tv.fliptrace import _stamp_band

    narrow = av.VideoFrame(MIN_WIDTH - 54, 60, "yuv420p")
    assert _stamp_band(narrow) is None
    wide = av.VideoFrame(MIN_WIDTH, 120, "yuv420p")
    assert _stamp_band(wide).shape[1] == MIN_WIDTH


@pytest.mark.parametrize(("source", "scaled"), [((640, 480), (426, 320)), ((640, 480), (320, 240)),
                                                 ((640, 480), (214, 160)), ((1280, 720), (640, 360)),
                                                 ((1280, 720), (320, 180))])
def test_a_stamp_scaled_down_by_a_publisher_before_encoding_is_still_read(
        source: tuple[int, int], scaled: tuple[int, int]) -> None:
    """Adaptive stream: a publisher scales its stamped picture to the tile's size (publish_constraints)."""
    import av

    from tvapp.client.stamp import read_stamp, stamp

    image = np.full((source[1], source[0], 3), 120, dtype=np.uint8)
    stamp(image, 4242, 1_796_000_000_123)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(scaled[0], scaled[1], format="yuv420p")
    luma = frame.to_ndarray()[:scaled[1]]
    assert read_stamp(luma) == (4242, 1_796_000_000_123)
