"""The SDK's video encoder and encoded track: decodable VP8/H.264, keyframes on request, bitrate, sizes."""

from __future__ import annotations

import asyncio
import fractions
import threading
from typing import Any

import av
import numpy as np
import pytest
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.mediastreams import MediaStreamError

from tvapp.client.encoder import EncodedVideoTrack, EncoderError, VideoEncoder
from tvapp.client.sources import TestPatternTrack
from tvapp.client.stamp import stamp
from tvapp.testing.aio import runner
from tvapp.testing.media import decode_video, moving_texture, read_stamps, vp8_keyframe

TIME_BASE = fractions.Fraction(1, 90000)


def pattern_frames(count: int, width: int = 640, height: int = 480, fps: int = 30) -> list[av.VideoFrame]:
    """Return `count` stamped test-pattern frames with pts at `fps` in 1/90000 (counter = index)."""
    pattern = TestPatternTrack(width, height, fps)
    frames = []
    for index in range(count):
        frame = pattern.make_frame(index, 1_000 + index, index / fps)
        frame.pts = index * 90000 // fps
        frame.time_base = TIME_BASE
        frames.append(frame)
    pattern.stop()
    return frames


def texture_frame(index: int, width: int = 640, height: int = 480) -> av.VideoFrame:
    """Return a stamped frame of a detailed moving scene at 30 fps."""
    image = stamp(moving_texture(width, height, index), index, index)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.pts = index * 3000
    frame.time_base = TIME_BASE
    return frame


def encode_all(encoder: VideoEncoder, frames: list[av.VideoFrame]) -> list[av.Packet[Any]]:
    packets = []
    for frame in frames:
        packets.extend(encoder.encode(frame))
    return packets


def test_vp8_packets_decode_to_the_stamped_frames() -> None:
    frames = pattern_frames(30)
    packets = encode_all(VideoEncoder("vp8", 640, 480, 30, 500_000), frames)
    assert len(packets) == 30
    assert [packet.pts for packet in packets] == [frame.pts for frame in frames]
    assert all(packet.time_base == TIME_BASE for packet in packets)
    assert packets[0].is_keyframe and vp8_keyframe(bytes(packets[0]))
    assert not any(vp8_keyframe(bytes(packet)) for packet in packets[1:])
    decoded = decode_video(packets)
    assert [(frame.width, frame.height) for frame in decoded] == [(640, 480)] * 30
    assert read_stamps(decoded) == [(index, 1_000 + index) for index in range(30)]


def test_keyframe_on_request_and_only_then() -> None:
    encoder = VideoEncoder("vp8", 640, 480, 30, 500_000, keyframe_interval=60)
    keyframes = []
    for index, frame in enumerate(pattern_frames(40)):
        if index in (12, 31):
            encoder.request_keyframe()
        for packet in encoder.encode(frame):
            if vp8_keyframe(bytes(packet)):
                assert packet.is_keyframe
                keyframes.append(index)
    assert keyframes == [0, 12, 31]


def test_keyframe_interval_fallback_follows_the_timestamps() -> None:
    encoder = VideoEncoder("vp8", 320, 240, 30, 300_000, keyframe_interval=1.0)
    packets = encode_all(encoder, pattern_frames(95, 320, 240))
    assert [index for index, packet in enumerate(packets) if vp8_keyframe(bytes(packet))] == [0, 30, 60, 90]


def test_resolution_follows_the_input_frames() -> None:
    encoder = VideoEncoder("vp8", 640, 480, 30, 500_000)
    small = pattern_frames(10, 320, 240)
    for frame in small:
        frame.pts += 10 * 3000
    packets = encode_all(encoder, pattern_frames(10) + small)
    assert [index for index, packet in enumerate(packets) if vp8_keyframe(bytes(packet))] == [0, 10]
    decoded = decode_video(packets)
    assert [(frame.width, frame.height) for frame in decoded] == [(640, 480)] * 10 + [(320, 240)] * 10
    assert encoder.width == 320 and encoder.height == 240
    assert read_stamps(decoded) == [(index, 1_000 + index) for index in range(10)] * 2


def test_set_bitrate_changes_the_output_rate() -> None:
    encoder = VideoEncoder("vp8", 640, 480, 30, 1_000_000)
    high = encode_all(encoder, [texture_frame(index) for index in range(60)])
    encoder.set_bitrate(200_000)
    assert encoder.bitrate == 200_000
    low = encode_all(encoder, [texture_frame(index) for index in range(60, 120)])
    high_bps = sum(packet.size for packet in high[15:]) * 8 / 1.5
    low_bps = sum(packet.size for packet in low[15:]) * 8 / 1.5
    assert 600_000 < high_bps < 1_300_000
    assert 100_000 < low_bps < 300_000
    assert read_stamps(decode_video(high + low)) == [(index, index) for index in range(120)]


def test_timestamps_that_do_not_advance_are_nudged_forward() -> None:
    encoder = VideoEncoder("vp8", 320, 240, 30, 300_000)
    frames = pattern_frames(3, 320, 240)
    for frame in frames:
        frame.pts = 9000
    assert [packet.pts for packet in encode_all(encoder, frames)] == [9000, 9001, 9002]


def test_h264_packets_decode_and_keyframes_on_request() -> None:
    encoder = VideoEncoder("h264", 640, 480, 30, 800_000)
    packets = []
    for index, frame in enumerate(pattern_frames(20)):
        if index == 9:
            encoder.request_keyframe()
        packets.extend(encoder.encode(frame))
    assert [index for index, packet in enumerate(packets) if packet.is_keyframe] == [0, 9]
    assert bytes(packets[0]).startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))
    decoded = decode_video(packets, "h264")
    assert read_stamps(decoded) == [(index, 1_000 + index) for index in range(20)]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(EncoderError, match="unknown video codec 'av1'"):
        VideoEncoder("av1")
    with pytest.raises(EncoderError, match="even"):
        VideoEncoder("vp8", 641, 480)
    with pytest.raises(EncoderError, match="bitrate"):
        VideoEncoder("vp8", bitrate=10)
    encoder = VideoEncoder("vp8")
    with pytest.raises(EncoderError, match="bitrate"):
        encoder.set_bitrate(10**9)
    with pytest.raises(EncoderError, match="fps"):
        VideoEncoder("vp8", fps=0)


def test_packets_survive_aiortc_packetization() -> None:
    packets = encode_all(VideoEncoder("vp8", 640, 480, 30, 500_000), pattern_frames(10))
    packer = Vp8Encoder()
    rebuilt = []
    for packet in packets:
        payloads, timestamp = packer.pack(packet)
        assert timestamp == packet.pts
        data = b"".join(vp8_depayload(payload) for payload in payloads)
        assert data == bytes(packet)
        rebuilt.append(av.Packet(data))
    assert read_stamps(decode_video(rebuilt)) == [(index, 1_000 + index) for index in range(10)]


class ThreadRecordingEncoder(VideoEncoder):
    """A real encoder that notes which thread each encode ran on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads: set[int] = set()

    def encode(self, frame: av.VideoFrame) -> list[av.Packet[Any]]:
        self.threads.add(threading.get_ident())
        return super().encode(frame)


run = runner(deadline=30)


def test_encoded_track_streams_packets_off_the_event_loop() -> None:
    run(stream_packets_off_the_event_loop())


async def stream_packets_off_the_event_loop() -> None:
    source = TestPatternTrack(320, 240, 30)
    encoder = ThreadRecordingEncoder("vp8", 320, 240, 30, 300_000)
    track = EncodedVideoTrack(source, encoder)
    assert track.kind == "video"
    packets = []
    for index in range(20):
        if index == 10:
            track.request_keyframe()
        packets.append(await track.recv())
    assert all(isinstance(packet, av.Packet) and packet.time_base == TIME_BASE for packet in packets)
    pts = [packet.pts for packet in packets]
    assert pts == sorted(pts) and len(set(pts)) == 20
    assert [index for index, packet in enumerate(packets) if vp8_keyframe(bytes(packet))] == [0, 10]
    stamps = read_stamps(decode_video(packets))
    assert [entry[0] for entry in stamps if entry is not None] == list(range(20))
    assert threading.get_ident() not in encoder.threads
    track.stop()
    assert source.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_encoded_track_ends_when_its_source_ends() -> None:
    run(end_with_the_source())


async def end_with_the_source() -> None:
    source = TestPatternTrack(320, 240, 30)
    track = EncodedVideoTrack(source, VideoEncoder("vp8", 320, 240, 30, 300_000))
    await track.recv()
    source.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(track.recv(), 2)


def test_decoded_frames_have_the_source_size() -> None:
    frames = pattern_frames(2, 160, 120)
    decoded = decode_video(encode_all(VideoEncoder("vp8", 160, 120, 30, 100_000), frames))
    assert [frame.to_ndarray(format="rgb24").shape for frame in decoded] == [(120, 160, 3)] * 2
    assert np.array_equal(read_stamps(decoded), [(0, 1_000), (1, 1_001)])
