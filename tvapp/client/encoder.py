"""Encode local video frames into packets ourselves, so the SDK controls keyframes and bitrate.

aiortc's RTCRtpSender only packetizes when a track's recv() returns an av.Packet. VideoEncoder
wraps av's libvpx (VP8) or libx264 (H.264) in real-time settings; EncodedVideoTrack pulls frames
from a source track, encodes them on a worker thread and hands the packets to the sender.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import os
import threading
from collections import deque
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.codec.context import CodecContext
from av.video.codeccontext import VideoCodecContext

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
CODECS = ("vp8", "h264")
DEFAULT_KEYFRAME_INTERVAL = 4.0
MIN_BITRATE = 50_000
MAX_BITRATE = 20_000_000


class EncoderError(Exception):
    """The encoder cannot be set up or cannot encode a frame."""


class VideoEncoder:
    """A real-time video encoder: VideoFrames in, av.Packets (time base 1/90000) out.

    Resolution follows the input frames (a change restarts the codec, so the next packet is a
    keyframe); framerate follows their timestamps. Not thread-safe for `encode` itself; the other
    methods may be called from any thread while an encode runs.
    """

    def __init__(self, codec: str = "vp8", width: int = 640, height: int = 480, fps: float = 30.0,
                 bitrate: int = 500_000, keyframe_interval: float = DEFAULT_KEYFRAME_INTERVAL) -> None:
        if codec not in CODECS:
            raise EncoderError(f"unknown video codec {codec!r} (expected one of {', '.join(CODECS)})")
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise EncoderError(f"frame size must be positive and even, not {width}x{height}")
        if fps <= 0:
            raise EncoderError(f"fps must be positive, not {fps}")
        if keyframe_interval <= 0:
            raise EncoderError(f"keyframe_interval must be positive, not {keyframe_interval}")
        self.codec_name = codec
        self.width = width
        self.height = height
        self.fps = fps
        self.keyframe_interval = keyframe_interval
        self._bitrate = _check_bitrate(bitrate)
        self._lock = threading.Lock()
        self._keyframe_requested = False
        self._context: VideoCodecContext | None = None
        self._context_bitrate = 0
        self._last_pts: int | None = None
        self._last_keyframe_pts: int | None = None

    @property
    def bitrate(self) -> int:
        """Return the target bitrate in bits per second."""
        return self._bitrate

    def set_bitrate(self, bps: int) -> None:
        """Aim at `bps` bits per second from the next frame on (the codec restarts on a change over 10%)."""
        with self._lock:
            self._bitrate = _check_bitrate(bps)

    def request_keyframe(self) -> None:
        """Make the next packet a keyframe."""
        with self._lock:
            self._keyframe_requested = True

    def encode(self, frame: av.VideoFrame) -> list[av.Packet[Any]]:
        """Encode one frame and return the packets it produced (usually one)."""
        pts = self._frame_pts(frame)
        with self._lock:
            bitrate = self._bitrate
            keyframe = self._keyframe_requested
            self._keyframe_requested = False
        if self._needs_new_context(frame, bitrate):
            self._context = self._open(frame.width, frame.height, bitrate)
            self._context_bitrate = bitrate
            keyframe = True
        elif self._last_keyframe_pts is not None and \
                pts - self._last_keyframe_pts >= self.keyframe_interval * VIDEO_TIME_BASE.denominator:
            keyframe = True
        assert self._context is not None
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        try:
            packets = list(self._context.encode(frame))
        except av.FFmpegError as exc:
            raise EncoderError(f"{self.codec_name} encoder failed: {exc}") from exc
        for packet in packets:
            packet.time_base = VIDEO_TIME_BASE
            if packet.is_keyframe and packet.pts is not None:
                self._last_keyframe_pts = packet.pts
        return packets

    def _frame_pts(self, frame: av.VideoFrame) -> int:
        if frame.pts is None or frame.time_base is None:
            pts = 0 if self._last_pts is None else self._last_pts + round(90000 / self.fps)
        else:
            pts = int(frame.pts * fractions.Fraction(frame.time_base.numerator, frame.time_base.denominator)
                      * VIDEO_TIME_BASE.denominator)
        if self._last_pts is not None and pts <= self._last_pts:
            # libvpx rate control divides by the time since the previous frame.
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def _needs_new_context(self, frame: av.VideoFrame, bitrate: int) -> bool:
        if self._context is None:
            return True
        if (frame.width, frame.height) != (self._context.width, self._context.height):
            log.debug("video encoder: size %dx%d -> %dx%d", self._context.width, self._context.height,
                      frame.width, frame.height)
            return True
        return abs(bitrate - self._context_bitrate) > self._context_bitrate // 10

    def _open(self, width: int, height: int, bitrate: int) -> VideoCodecContext:
        self.width, self.height = width, height
        name = "libvpx" if self.codec_name == "vp8" else "libx264"
        try:
            context = CodecContext.create(name, "w")
        except av.FFmpegError as exc:
            raise EncoderError(f"this av build has no {name} encoder: {exc}") from exc
        assert isinstance(context, VideoCodecContext)
        context.width = width
        context.height = height
        context.pix_fmt = "yuv420p"
        context.bit_rate = bitrate
        context.time_base = VIDEO_TIME_BASE
        context.framerate = fractions.Fraction(self.fps).limit_denominator(1001)
        # Keyframes come from request_keyframe() and the interval check, never from the codec's GOP.
        context.gop_size = 1 << 30
        context.thread_count = _threads(width * height)
        if self.codec_name == "vp8":
            context.options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "lag-in-frames": "0",
                "error-resilient": "1",
                "auto-alt-ref": "0",
                "static-thresh": "0",
                "undershoot-pct": "95",
                "overshoot-pct": "15",
                "bufsize": str(bitrate),
                "minrate": str(bitrate),
                "maxrate": str(bitrate),
                "qmin": "4",
                "qmax": "56",
            }
        else:
            context.options = {
                "preset": "veryfast",
                "tune": "zerolatency",
                "profile": "baseline",
                "bufsize": str(bitrate),
                "maxrate": str(bitrate),
                "forced-idr": "1",
                "x264-params": "repeat-headers=1:annexb=1:scenecut=0",
            }
        try:
            context.open()
        except av.FFmpegError as exc:
            raise EncoderError(f"cannot open the {name} encoder at {width}x{height}: {exc}") from exc
        return context


class EncodedVideoTrack(MediaStreamTrack):
    """A video track whose recv() returns packets encoded from `source_track`'s frames."""

    kind = "video"

    def __init__(self, source_track: MediaStreamTrack, encoder: VideoEncoder) -> None:
        super().__init__()
        self.source = source_track
        self.encoder = encoder
        self._pending: deque[av.Packet[Any]] = deque()

    async def recv(self) -> av.Packet[Any]:
        """Return the next encoded packet (MediaStreamError once the track or its source ended)."""
        loop = asyncio.get_running_loop()
        while not self._pending:
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self.source.recv()
            if not isinstance(frame, av.VideoFrame):
                raise MediaStreamError(f"source track gave {type(frame).__name__}, not a VideoFrame")
            packets = await loop.run_in_executor(None, self.encoder.encode, frame)
            self._pending.extend(packets)
        return self._pending.popleft()

    def request_keyframe(self) -> None:
        """Make the next packet a keyframe (the SFU asked for one)."""
        self.encoder.request_keyframe()

    def stop(self) -> None:
        """End this track and its source."""
        super().stop()
        self.source.stop()


def _check_bitrate(bps: int) -> int:
    if not MIN_BITRATE <= bps <= MAX_BITRATE:
        raise EncoderError(f"bitrate must be between {MIN_BITRATE} and {MAX_BITRATE} bps, not {bps}")
    return bps


def _threads(pixels: int) -> int:
    cpus = os.cpu_count() or 1
    if pixels >= 1280 * 720:
        return max(1, min(4, cpus))
    if pixels > 640 * 480:
        return max(1, min(2, cpus))
    return 1
