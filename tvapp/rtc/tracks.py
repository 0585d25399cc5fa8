"""A MediaStreamTrack that hands pre-encoded av.Packets to aiortc's RTCRtpSender, which only packetizes them."""

from __future__ import annotations

import asyncio
import collections

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class PacketTrack(MediaStreamTrack):
    """Packets pushed with `push()` come out of `recv()` in order; `close()` ends the track.

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
        while not self._packets:
            if self._closed or self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._packets.popleft()

    def close(self) -> None:
        """End the track: the sender reading it stops."""
        self._closed = True
        self._ready.set()
        self.stop()
