"""A subscriber's video recovers from lost packets: real aiortc peer connections on 127.0.0.1 (issue 18).

The SFU's side is two `Subscription`s (tvapp.server.forwarding) on one bundled peer connection, fed VP8 frames
from a real encoder; the subscriber is a guarded peer connection whose aiortc receivers decode them. The test
loses chosen RTP packets of the second subscription on their way out (in the SFU's transport) and counts the
subscriber's decoded frames per track:

- a packet lost once is retransmitted on the subscriber's NACK and the video goes on (before, aiortc routed the
  retransmission by payload type alone, shared by both video m-lines, and dropped it: the track froze);
- a packet lost for good before the track is switched off does not freeze it once it is switched on again at a
  keyframe (aiortc's own jitter buffer waited for it until 512 packets later; the SDK's gives the gap up after
  `receivebuffer.MAX_WAIT_MS` and decodes on from the keyframe).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from tvapp.client import receivebuffer
from tvapp.client.encoder import VideoEncoder
from tvapp.rtc import internals
from tvapp.rtc.packets import video_packet
from tvapp.rtc.peer import new_peer_connection
from tvapp.server.forwarding import Subscription
from tvapp.testing.aio import run
from tvapp.testing.waiting import wait_until_async as wait_until

FPS = 30
RTX_PT = 98  # aiortc's VP8 retransmission payload type


class Room:
    """Two forwarded video tracks to one subscriber, a real encoder each, a lossy way out for the second."""

    def __init__(self) -> None:
        receivebuffer.install()  # what every SDK (and TV) process does before its first peer connection
        self.sfu = new_peer_connection()
        self.subscriber = new_peer_connection()
        self.subscriptions = [Subscription(self.sfu.addTransceiver("video", direction="sendonly"), "video", "VP8")
                              for _ in range(2)]
        self.encoders = [VideoEncoder("vp8", 160, 120, fps=FPS, bitrate=300_000) for _ in range(2)]
        self.decoded = [0, 0]
        self.lose: Callable[[int, int, int], bool] = lambda ssrc, pt, seq: False
        self.lost: list[int] = []
        self.ssrc = 0  # the second subscription's media SSRC
        self._tasks: list[asyncio.Task[None]] = []
        self._index = 0
        self._rng = np.random.default_rng(3)

    async def connect(self) -> None:
        """Negotiate, start counting decoded frames, lose what `lose` picks."""
        await self.sfu.setLocalDescription(await self.sfu.createOffer())
        await self.subscriber.setRemoteDescription(self.sfu.localDescription)
        await self.subscriber.setLocalDescription(await self.subscriber.createAnswer())
        await self.sfu.setRemoteDescription(self.subscriber.localDescription)
        second = self.sfu.localDescription.sdp.split("m=video")[2]
        self.ssrc = int(re.search(r"a=ssrc:(\d+)", second).group(1))  # type: ignore[union-attr]
        transport: Any = self.sfu.getTransceivers()[0].sender.transport
        send = transport._send_rtp

        async def lossy(data: bytes) -> None:
            ssrc, pt, seq = int.from_bytes(data[8:12], "big"), data[1] & 0x7F, int.from_bytes(data[2:4], "big")
            if data[0] >> 6 == 2 and 96 <= pt <= 127 and self.lose(ssrc, pt, seq):
                self.lost.append(seq)
                return
            await send(data)

        transport._send_rtp = lossy
        for i, transceiver in enumerate(self.subscriber.getTransceivers()):
            self._tasks.append(asyncio.create_task(self._count(i, transceiver.receiver.track)))

    async def _count(self, i: int, track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.decoded[i] += 1

    async def send(self, frames: int, *, keyframe: bool = False) -> None:
        """Encode and forward `frames` frames of noise on both tracks at FPS (a keyframe first if asked)."""
        for n in range(frames):
            image = self._rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
            pts = self._index * 90_000 // FPS
            self._index += 1
            for encoder, subscription in zip(self.encoders, self.subscriptions, strict=True):
                if keyframe and n == 0:
                    encoder.request_keyframe()
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = pts, video_packet(b"", 0).time_base
                for packet in encoder.encode(frame):
                    data = bytes(packet)
                    subscription.deliver(pts, lambda out_pts, d=data: video_packet(d, out_pts), packet.is_keyframe)
            await asyncio.sleep(1 / FPS)  # the frame rate, not a wait for a result

    async def close(self) -> None:
        """Stop everything."""
        for task in self._tasks:
            task.cancel()
        for subscription in self.subscriptions:
            subscription.close()
        await self.sfu.close()
        await self.subscriber.close()


@contextlib.asynccontextmanager
async def room() -> AsyncIterator[Room]:
    internals.set_host_addresses(["127.0.0.1"])
    the_room = Room()
    try:
        await the_room.connect()
        await the_room.send(10, keyframe=True)
        await wait_until(lambda: min(the_room.decoded) >= 5, 10, "both tracks to decode")
        yield the_room
    finally:
        await the_room.close()
        internals.set_host_addresses(None)


def test_a_packet_lost_once_is_retransmitted_and_the_second_video_track_goes_on() -> None:
    async def scenario() -> None:
        async with room() as r:
            # Lose the first transmission of one packet of the second track (not its retransmission).
            r.lose = lambda ssrc, pt, seq: ssrc == r.ssrc and not r.lost
            before = r.decoded[1]
            await r.send(30)
            assert r.lost
            await wait_until(lambda: r.decoded[1] >= before + 28, 5,
                             lambda: f"the second track to decode on after a lost packet ({r.decoded})")

    run(scenario(), 40)


def test_a_track_switched_on_at_a_keyframe_decodes_though_a_packet_before_the_switch_off_never_came() -> None:
    async def scenario() -> None:
        async with room() as r:
            # One packet of the second track is lost for good: its retransmissions too.
            gone: list[int] = []

            def lose(ssrc: int, pt: int, seq: int) -> bool:
                if ssrc == r.ssrc and not gone:
                    gone.append(seq)
                    return True
                return pt == RTX_PT

            r.lose = lose
            await r.send(5)
            r.subscriptions[1].switch(on=False)  # congestion handling switches it off ...
            await r.send(10)
            r.lose = lambda ssrc, pt, seq: False
            r.subscriptions[1].switch(on=True)  # ... and on again: it restarts at the next keyframe
            before = r.decoded[1]
            await r.send(20, keyframe=True)
            assert gone
            await wait_until(lambda: r.decoded[1] >= before + 15, 5,
                             lambda: f"the resumed track to decode from its keyframe ({r.decoded})")

    run(scenario(), 40)
