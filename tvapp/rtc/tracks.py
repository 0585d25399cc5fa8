"""A MediaStreamTrack that hands pre-encoded av.Packets to aiortc's RTCRtpSender, which only packetizes them."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class PacketTrack(MediaStreamTrack):
    """Packets pushed with `push()` come out of `recv()` in order; `close()` ends the track.

    `on_sent(packet)`, when set, is called once the sender has sent all of a packet's RTP packets.
    A bounded backlog: when the sender falls `max_backlog` packets behind, `push()` drops the backlog and
    returns False, so the owner can ask for a keyframe instead of sending stale video.
    """

    def __init__(self, kind: str, *, max_backlog: int = 256) -> None:
        super().__init__()
        self.kind = kind
        self.max_backlog = max_backlog
        self._packets: collections.deque[av.Packet] = collections.deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._handed: av.Packet | None = None
        self.on_sent: Callable[[av.Packet], None] | None = None

    def push(self, packet: av.Packet) -> bool:
        """Queue a packet for sending; return False if the backlog had to be dropped first."""
        if self._closed:
            return False
        kept = True
        if len(self._packets) >= self.max_backlog:
            self._packets.clear()
            kept = False
        self._packets.append(packet)
        self._ready.set()
        return kept

    def clear(self) -> None:
        """Drop every packet not yet sent."""
        self._packets.clear()

    @property
    def backlog(self) -> int:
        """Packets waiting to be sent."""
        return len(self._packets)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        """Return the next packet, waiting for one; raise MediaStreamError once closed."""
        if self._handed is not None:
            # The sender asks for the next packet only after sending every RTP packet of the previous one.
            if self.on_sent is not None:
                self.on_sent(self._handed)
            self._handed = None
        while not self._packets:
            if self._closed or self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        packet = self._packets.popleft()
        if self.on_sent is not None:
            self._handed = packet
        return packet

    def close(self) -> None:
        """End the track: the sender reading it stops."""
        self._closed = True
        self._ready.set()
        self.stop()
