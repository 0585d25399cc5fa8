"""Encoded media as av.Packets for aiortc's sender, and what the SFU needs to know about a frame."""

from __future__ import annotations

from fractions import Fraction

import av

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK)
AUDIO_TIME_BASE = Fraction(1, AUDIO_CLOCK)


def video_packet(data: bytes, pts: int) -> av.Packet:
    """Wrap one encoded video frame; `pts` is in 90 kHz RTP units."""
    packet = av.Packet(data)
    packet.pts = pts
    packet.time_base = VIDEO_TIME_BASE
    return packet


def audio_packet(data: bytes, pts: int) -> av.Packet:
    """Wrap one encoded Opus frame; `pts` is in 48 kHz RTP units."""
    packet = av.Packet(data)
    packet.pts = pts
    packet.time_base = AUDIO_TIME_BASE
    return packet


def vp8_frame_start(rtp_payload: bytes) -> bool | None:
    """Return whether a VP8 RTP payload starts a frame (S bit with partition 0), None if unreadable."""
    if not rtp_payload:
        return None
    first = rtp_payload[0]
    return bool(first & 0x10) and (first & 0x07) == 0


def is_keyframe(codec: str, frame: bytes) -> bool:
    """Return whether an encoded frame (VP8 bytes, or H.264 Annex B as aiortc depayloads it) is a keyframe."""
    if not frame:
        return False
    name = codec.lower()
    if name == "vp8":
        return frame[0] & 0x01 == 0
    if name == "h264":
        return _h264_has_idr(frame)
    return True


def _h264_has_idr(frame: bytes) -> bool:
    i = frame.find(b"\x00\x00\x01")
    while i != -1:
        if i + 3 < len(frame) and frame[i + 3] & 0x1F in (5, 7):
            return True
        i = frame.find(b"\x00\x00\x01", i + 3)
    return False
