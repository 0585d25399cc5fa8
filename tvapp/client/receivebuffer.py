"""The SDK's video receive buffer: whole frames from RTP packets, giving up on a lost packet instead of stalling.

aiortc's own video jitter buffer hands a frame to the decoder only once every packet before it arrived, and gives
up on a missing one only when 512 newer packets are waiting: a packet lost for good (its retransmission lost too,
or older than the sender's history) held every later frame back for 512 packets, over 30 s on a 15 fps
rendition, and asked for no keyframe meanwhile. `VideoReceiveBuffer` stands in for it in each video receiver the
SDK makes (`install()`, through tvapp.rtc.internals): tvapp.core.framing.FrameAssembler (the SFU's own reassembly)
waits `MAX_WAIT_MS` for a gap to be filled by a NACK retransmission, then gives the frames touching it up; from
then on nothing but a keyframe goes to the decoder (a VP8 delta frame after a loss decodes to garbage or not at
all) and a keyframe is asked for (PLI, which the SFU routes to the publisher of whatever the subscription carries,
main track or rendition), again every `PLI_REPEAT_MS` while none came.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from tvapp.core.framing import FrameAssembler
from tvapp.rtc import internals
from tvapp.rtc.packets import is_keyframe, vp8_frame_start

MAX_WAIT_MS = 400.0
"""How long a missing packet may wait for its retransmission before the frames touching it are given up."""
PLI_REPEAT_MS = 1000.0
"""How often a keyframe is asked for again while the stream waits for one."""

_lock = threading.Lock()
_installed = False


class VideoReceiveBuffer:
    """Stands in for aiortc's video JitterBuffer: `add(packet)` returns (send a PLI?, a frame to decode or None)."""

    capacity = 512

    def __init__(self, codec_of: Callable[[int], str | None], clock: Callable[[], float] | None = None) -> None:
        self.codec_of = codec_of  # payload type -> codec name ("VP8", "H264"), None if unknown
        self.clock = clock or (lambda: time.monotonic() * 1000.0)
        self.assembler = FrameAssembler("video", max_wait_ms=MAX_WAIT_MS, capacity=self.capacity)
        self.broken = True  # nothing decodable until a keyframe
        # complete frames not yet handed out: aiortc's receiver takes one per packet (after a filled gap the rest
        # follow with the next packets; a frame has at least one packet, so this never grows)
        self.ready: deque[JitterFrame] = deque()
        self.last_pli_ms: float | None = None
        self.given_up = 0  # times frames were given up (a stat for tests)

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """Take one packet (already depayloaded by the receiver); return (pli, frame or None)."""
        now = self.clock()
        if self.last_pli_ms is None:
            self.last_pli_ms = now  # the SFU asks for a keyframe as it starts a subscription: none asked at once
        codec = self.codec_of(packet.payload_type) or "VP8"
        start = vp8_frame_start(packet.payload) if codec.upper() == "VP8" else None
        data = internals.depayloaded(packet)
        result = self.assembler.add(packet.sequence_number, packet.timestamp, bool(packet.marker), data, now,
                                    frame_start=start)
        if result.lost:
            self.given_up += 1
            self.broken = True
            self.ready.clear()  # what waits would decode against a picture the decoder never got
        for frame in result.frames:
            if is_keyframe(codec, frame.data):
                self.broken = False
            elif self.broken:
                continue
            self.ready.append(JitterFrame(data=frame.data, timestamp=frame.timestamp))
        pli = self.broken and (self.last_pli_ms is None or now - self.last_pli_ms >= PLI_REPEAT_MS)
        if pli:
            self.last_pli_ms = now
        return pli, self.ready.popleft() if self.ready else None


def install() -> None:
    """Make every video receiver aiortc creates from now on in this process use a VideoReceiveBuffer (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    internals.use_video_receive_buffers(VideoReceiveBuffer)
