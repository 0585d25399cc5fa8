"""Baseline relays the SFU benchmarks measure against, each a standalone process pinned like the server.

Default mode, the decode/re-encode relay (for bench.sfu_fanout): plain aiortc with
`aiortc.contrib.media.MediaRelay`. It receives the publisher's video and audio (aiortc decodes them once; MediaRelay buffers frames for each consumer, its default),
and every subscriber's sender re-encodes what the relay hands it (VP8 and Opus, aiortc's own encoders).
This is what forwarding costs without a packet-level SFU. Like the tvapp server it makes every offer;
SDP goes over stdin/stdout as JSON lines:

    -> {"op": "publisher"}              <- {"op": "offer", "sdp": ..., "slots": [[mid, "publish", kind], ...]}
    -> {"op": "subscriber"}             <- {"op": "offer", "sdp": ..., "slots": [[mid, "subscribe", kind], ...]}
    -> {"op": "answer", "sdp": ...}     <- {"op": "ok"}          (answers the last offer)
    -> {"op": "stop"}                   <- {"op": "stopped"}     (then the process exits)

`--udp` mode, the minimal packet relay (for bench.sfu_room): an asyncio UDP socket that forwards each
datagram to every other participant that has said hello. No SRTP, RTCP, ICE, congestion control or
keyframe logic: the floor of moving the same packets through Python. It prints {"op": "listening", "port": P}
and runs until stdin closes.

Run: python -m bench.relay_baseline [--udp]   (started by the benchmarks, not by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, cast

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class DecodeRelay:
    """One publisher's tracks decoded once and re-encoded for each subscriber (aiortc MediaRelay)."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.sources: dict[str, MediaStreamTrack] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.pending: RTCPeerConnection | None = None

    async def offer_publisher(self) -> dict[str, Any]:
        """Make a peer connection that receives video + audio; return its offer."""
        pc = new_peer_connection()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.sources[track.kind] = track

        for kind in ("video", "audio"):
            pc.addTransceiver(kind, direction="recvonly")
        return await self._offer(pc, "publish")

    async def offer_subscriber(self) -> dict[str, Any]:
        """Make a peer connection that sends the publisher's tracks (re-encoded); return its offer."""
        pc = new_peer_connection()
        for kind in ("video", "audio"):
            pc.addTransceiver(self.relay.subscribe(self.sources[kind]), direction="sendonly")
        return await self._offer(pc, "subscribe")

    async def _offer(self, pc: RTCPeerConnection, role: str) -> dict[str, Any]:
        self.pcs.append(pc)
        self.pending = pc
        await pc.setLocalDescription(await pc.createOffer())
        slots = [[t.mid, role, t.kind] for t in pc.getTransceivers()]
        return {"op": "offer", "sdp": pc.localDescription.sdp, "slots": slots}

    async def answer(self, sdp: str) -> None:
        """Apply the answer to the last offer."""
        assert self.pending is not None
        await self.pending.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self.pending = None

    async def close(self) -> None:
        """Close every peer connection."""
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


async def decode_relay() -> None:
    """Serve the decode/re-encode relay over stdin/stdout until told to stop."""
    internals.set_host_addresses(["127.0.0.1"])
    relay = DecodeRelay()
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            break
        request = json.loads(line)
        op = request["op"]
        if op == "publisher":
            _say(await relay.offer_publisher())
        elif op == "subscriber":
            _say(await relay.offer_subscriber())
        elif op == "answer":
            await relay.answer(request["sdp"])
            _say({"op": "ok"})
        elif op == "stop":
            break
    await relay.close()
    _say({"op": "stopped"})


class UdpRelay(asyncio.DatagramProtocol):
    """Forward each datagram to every other known participant."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.forwarded = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's UDPTransport is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if addr not in self.peers:
            self.peers.append(addr)
            return
        assert self.transport is not None
        for peer in self.peers:
            if peer != addr:
                self.transport.sendto(data, peer)
                self.forwarded += 1


async def udp_relay() -> None:
    """Serve the minimal UDP relay on 127.0.0.1 until stdin closes."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(UdpRelay, local_addr=("127.0.0.1", 0))
    _say({"op": "listening", "port": transport.get_extra_info("sockname")[1]})
    while await asyncio.to_thread(sys.stdin.readline):
        pass
    transport.close()
    _say({"op": "stopped", "forwarded": protocol.forwarded})


def main() -> None:
    """Run one of the baseline relays."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--udp", action="store_true", help="the minimal UDP packet relay instead of MediaRelay")
    args = p.parse_args()
    from bench.common import run

    run(udp_relay() if args.udp else decode_relay())


if __name__ == "__main__":
    main()
