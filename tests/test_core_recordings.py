"""tvapp.core.recordings, the pure rules: containers, filters and their limits, byte ranges, quota, retention
(with a fake clock), offsets and RTP timestamp unwrapping; and the one way from a row to a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvapp.core.recordings import (
    MAX_LIMIT,
    SECONDS_PER_DAY,
    ByteRange,
    FilterError,
    RangeError,
    RecordingFilter,
    container_for,
    expired,
    fits_quota,
    offset_of,
    parse_filters,
    parse_limit,
    parse_range,
    unwrap_timestamp,
)
from tvapp.server.recording_writer import (
    UnsafePath,
    h264_size,
    recording_path,
    vp8_size,
)


def test_each_codec_has_its_container_and_others_are_refused() -> None:
    assert container_for("opus") == ("mka", "matroska")
    assert container_for("VP8") == ("webm", "webm")
    assert container_for("h264") == ("mkv", "matroska")
    with pytest.raises(KeyError):
        container_for("AV1")


def test_filters_are_read_and_checked() -> None:
    flt = parse_filters({"room": "den", "session": "RM_abc", "participant": "gran", "status": "completed",
                         "type": "audio", "started_after": "10", "started_before": "20.5", "other": "x"})
    assert flt == RecordingFilter("den", "RM_abc", "gran", "completed", "audio", 10.0, 20.5)
    assert parse_filters({}).empty and not flt.empty
    for bad in ({"status": "done"}, {"type": "screen"}, {"session": "PA_x"}, {"session": "RM_../x"},
                {"room": "a/b"}, {"room": "x" * 65}, {"participant": "a b"}, {"started_after": "soon"},
                {"started_after": "nan"}, {"started_before": "-1"}, {"started_before": "inf"},
                {"started_after": "20", "started_before": "10"}):
        with pytest.raises(FilterError) as caught:
            parse_filters(bad)
        assert caught.value.code == "invalid_filter" and caught.value.status == 400


def test_limit_is_from_1_to_the_maximum() -> None:
    assert parse_limit(None) == 100
    assert parse_limit("1") == 1 and parse_limit(str(MAX_LIMIT)) == MAX_LIMIT
    for bad in ("0", str(MAX_LIMIT + 1), "-1", "ten", "1.5", ""):
        with pytest.raises(FilterError):
            parse_limit(bad)


def test_one_byte_range_is_served_and_the_rest_is_416() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == ByteRange(0, 9, 100)
    assert parse_range("bytes=90-", 100) == ByteRange(90, 99, 100)
    assert parse_range("bytes=90-500", 100) == ByteRange(90, 99, 100)
    assert parse_range("bytes=-10", 100) == ByteRange(90, 99, 100)
    assert parse_range("bytes=-500", 100) == ByteRange(0, 99, 100)
    assert parse_range("bytes=5-5", 100).length == 1  # type: ignore[union-attr]
    assert ByteRange(0, 9, 100).content_range() == "bytes 0-9/100"
    for bad in ("bytes=100-", "bytes=10-5", "bytes=-0", "bytes=-", "bytes=0-1,5-6", "items=0-1", "bytes=a-b",
                "bytes=" + "9" * 20 + "-"):
        with pytest.raises(RangeError) as caught:
            parse_range(bad, 100)
        assert caught.value.status == 416
    with pytest.raises(RangeError):
        parse_range("bytes=-1", 0)


def test_quota_counts_what_is_kept_plus_the_next_write() -> None:
    assert fits_quota(0, 10, 0) and fits_quota(10**12, 10**9, 0)  # 0: no quota
    assert fits_quota(90, 10, 100) and not fits_quota(91, 10, 100)


def test_retention_with_a_fake_clock() -> None:
    ended = 1_000_000.0
    assert not expired(ended, ended + 2 * SECONDS_PER_DAY - 1, 2)
    assert expired(ended, ended + 2 * SECONDS_PER_DAY, 2)
    assert expired(ended, ended + 0.5 * SECONDS_PER_DAY, 0.5)
    assert not expired(ended, ended + 1000 * SECONDS_PER_DAY, 0)  # 0 days: kept until deleted


def test_offsets_and_timestamp_unwrapping() -> None:
    assert offset_of(105.25, 100.0) == 5.25
    assert offset_of(99.0, 100.0) == 0.0
    assert unwrap_timestamp(1000, 4000) == 4000
    assert unwrap_timestamp(0xFFFFF000, 0x00000100) == 0x100000100  # past the 32-bit wrap
    assert unwrap_timestamp(0x100000100, 0xFFFFFF00) == 0xFFFFFF00  # a late frame just before it
    assert unwrap_timestamp(5000, 4000) == 4000


def test_a_recording_file_is_only_a_server_made_name_inside_the_folder(tmp_path: Path) -> None:
    assert recording_path(tmp_path, "RE_abc-DEF_1.mka") == (tmp_path / "RE_abc-DEF_1.mka").resolve()
    for bad in ("../RE_x.mka", "RE_x.mka/../../etc/passwd", "/etc/passwd", "RE_x.txt", "RE_x", "re_x.mka",
                "RE_../x.mka", "RE_x.mka\x00", "sub/RE_x.mka", ""):
        with pytest.raises(UnsafePath):
            recording_path(tmp_path, bad)


def test_vp8_keyframe_size() -> None:
    header = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]) + (320).to_bytes(2, "little") + (240).to_bytes(2, "little")
    assert vp8_size(header) == (320, 240)
    assert vp8_size(bytes([0x11]) + header[1:]) is None  # an interframe
    assert vp8_size(b"\x10\x02") is None


def test_h264_size_is_read_from_the_sps_of_a_real_keyframe() -> None:
    from fractions import Fraction

    import av
    import numpy as np

    for width, height in ((320, 240), (640, 360), (318, 238)):
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = Fraction(1, 30)
        encoder.options = {"tune": "zerolatency"}
        encoder.open()  # type: ignore[attr-defined]
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = 0
        encode = encoder.encode  # type: ignore[attr-defined]
        packets = [bytes(p) for p in encode(frame)] + [bytes(p) for p in encode(None)]
        assert h264_size(packets[0]) == (width, height)
    assert h264_size(b"\x00\x00\x00\x01\x41\x9a\x00") is None  # a slice, no SPS
    assert h264_size(b"\x00\x00\x00\x01\x67\x64") is None  # a cut-off SPS
