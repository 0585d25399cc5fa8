"""The guards of tvapp.rtc.internals, in-process: real aiortc peer connections and aioice sockets on 127.0.0.1.

A sender peer connection streams a tone to a receiver; the test writes malformed input at the receiver as a
stranger (a raw UDP socket) and as its own peer (raw RTP/RTCP through the sender's SRTP), then checks that
the guards counted each drop (`internals.dropped()`), that nothing reached the event loop's exception handler,
and that the tone still arrives. Every input here stopped a transport or logged a traceback before the guards.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aioice
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from tvapp.client.sources.synthetic import ToneTrack
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection
from tvapp.testing import fuzz, packets
from tvapp.testing.aio import run
from tvapp.testing.waiting import wait_until_async as wait_until

LOOPBACK = "127.0.0.1"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


class Call:
    """A tone from `sender` to `receiver`, with the receiver's frames counted and loop exceptions kept."""

    def __init__(self, sender: RTCPeerConnection, receiver: RTCPeerConnection) -> None:
        self.sender = sender
        self.receiver = receiver
        self.frames = 0
        self.loop_errors: list[dict[str, Any]] = []
        self._pump: asyncio.Task[None] | None = None

    @property
    def transport(self) -> Any:
        """The receiver's DTLS transport (everything is bundled on it)."""
        return self.receiver.getTransceivers()[0].receiver.transport

    @property
    def port(self) -> int:
        """The receiver's UDP port."""
        return int(self.transport.transport.iceGatherer.getLocalCandidates()[0].port)

    def send_rtp(self, data: bytes) -> Coroutine[Any, Any, None]:
        """Protect `data` (RTP or RTCP) with the sender's SRTP and send it to the receiver."""
        transport: Any = self.sender.getTransceivers()[0].sender.transport
        return transport._send_rtp(data)  # type: ignore[no-any-return]

    async def _count(self) -> None:
        track = self.receiver.getTransceivers()[0].receiver.track
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                self.frames += 1

    async def tone_flows(self, frames: int = 10, timeout: float = 10.0) -> None:
        """Wait until `frames` more frames of the tone arrive."""
        target = self.frames + frames
        await wait_until(lambda: self.frames >= target, timeout, "the tone to keep arriving")


@contextlib.asynccontextmanager
async def call() -> AsyncIterator[Call]:
    internals.set_host_addresses([LOOPBACK])
    sender, receiver = new_peer_connection(), new_peer_connection()
    the_call = Call(sender, receiver)
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: the_call.loop_errors.append(context))
    try:
        sender.addTrack(ToneTrack(440.0))
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        the_call._pump = asyncio.create_task(the_call._count())
        await the_call.tone_flows()
        yield the_call
    finally:
        if the_call._pump is not None:
            the_call._pump.cancel()
        await sender.close()
        await receiver.close()
        internals.set_host_addresses(None)


def count(kind: str) -> int:
    return internals.dropped().get(kind, 0)


def stranger() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    return sock


def test_a_strangers_empty_junk_and_malformed_stun_datagrams_are_dropped_and_counted() -> None:
    kinds = {
        b"": "empty datagrams",
        b"\x80\x60" + bytes(30): "datagrams from an address ICE does not know",
        b"\x17\xfe\xfd" + bytes(30): "datagrams from an address ICE does not know",
        packets.stun([packets.stun_attribute(packets.STUN_ATTR["PRIORITY"], b"\x00\x01")]):
            "STUN messages aioice could not parse (struct.error)",
    }

    async def scenario() -> None:
        async with call() as c:
            before = {kind: count(kind) for kind in kinds.values()}
            sock = stranger()
            for datagram in kinds:
                sock.sendto(datagram, (LOOPBACK, c.port))
            sock.close()
            expected = {kind: before[kind] + list(kinds.values()).count(kind) for kind in before}
            await wait_until(lambda: all(count(k) >= n for k, n in expected.items()), 5, "the drops to be counted")
            await c.tone_flows()
            assert c.transport.state == "connected" and not c.loop_errors

    run(scenario())


def test_an_authenticated_check_without_priority_is_dropped_and_counted() -> None:
    kind = "STUN messages aioice failed on (KeyError)"

    async def scenario() -> None:
        async with call() as c:
            sdp = c.receiver.localDescription.sdp
            ufrag, pwd = re.search(r"a=ice-ufrag:(\S+)", sdp).group(1), re.search(r"a=ice-pwd:(\S+)", sdp).group(1)
            remote_ufrag = re.search(r"a=ice-ufrag:(\S+)", c.sender.localDescription.sdp).group(1)
            username = packets.stun_attribute(packets.STUN_ATTR["USERNAME"], f"{ufrag}:{remote_ufrag}".encode())
            before = count(kind)
            sock = stranger()
            sock.sendto(packets.stun([username], integrity_key=pwd.encode(), fingerprint=True), (LOOPBACK, c.port))
            sock.close()
            await wait_until(lambda: count(kind) > before, 5, "the drop to be counted")
            await c.tone_flows()
            assert not c.loop_errors

    run(scenario())


def test_malformed_rtp_and_rtcp_from_the_peer_itself_are_dropped_and_the_transport_lives_on() -> None:
    rtcp_kind = "RTCP packets aiortc could not parse (a field of the wrong size or count)"
    rtp_kind = "RTP packets aiortc could not parse (a field of the wrong size or count)"

    async def scenario() -> None:
        async with call() as c:
            (audio,) = fuzz.sdp_media(c.receiver.remoteDescription.sdp)
            before = count(rtcp_kind), count(rtp_kind)
            await c.send_rtp(packets.remb(audio.ssrcs[0], 1_000_000, [], count=5))
            await c.send_rtp(packets.rtp(
                payload_type=audio.payload_types["OPUS"], sequence=1, timestamp=960, ssrc=0x5EED,
                payload=b"\xf8\xff\xfe", extension=packets.one_byte_extensions([(audio.extensions[AUDIO_LEVEL],
                                                                                  b"\x80\x80")])))
            await wait_until(lambda: (count(rtcp_kind), count(rtp_kind)) >= (before[0] + 1, before[1] + 1), 5,
                             "both drops to be counted")
            await c.tone_flows()
            assert c.transport.state == "connected" and not c.loop_errors

    run(scenario())


def test_a_transport_decrypts_packets_of_a_few_ssrcs_per_m_line_and_drops_the_rest_before_srtp() -> None:
    kind = "SRTP packets of SSRCs beyond the transport's limit"

    async def scenario() -> None:
        async with call() as c:
            (audio,) = fuzz.sdp_media(c.receiver.remoteDescription.sdp)
            admission = internals.ssrc_admission(c.transport)
            assert admission is not None
            admitted, limit = admission
            assert limit == internals.SSRCS_BASE + internals.SSRCS_PER_MLINE * 1  # one m-line: a receiver
            assert 1 <= admitted < limit  # the tone's SSRC, and the sender's RTCP SSRC
            before = count(kind)
            extra = 500
            for n in range(extra):
                await c.send_rtp(packets.rtp(payload_type=audio.payload_types["OPUS"], sequence=n, timestamp=n * 960,
                                             ssrc=0x10000 + n, payload=b"\xf8\xff\xfe"))
            dropped = extra - (limit - admitted)
            await wait_until(lambda: count(kind) >= before + dropped, 5, "the packets beyond the limit to be dropped")
            assert internals.ssrc_admission(c.transport) == (limit, limit)
            await c.tone_flows()  # the tone's SSRC was admitted first: it still arrives
            assert not c.loop_errors

    run(scenario())


def test_at_most_so_many_datagrams_wait_for_ice_to_connect() -> None:
    """Before connect(), nothing reads an ICE connection's queue: a known address's flood must not fill memory."""
    kind = "datagrams beyond the receive queue's limit (nothing reads it before ICE connects)"

    async def scenario() -> None:
        internals.set_host_addresses([LOOPBACK])
        internals.install_guards()
        connection = aioice.Connection(ice_controlling=False)
        try:
            await connection.gather_candidates()
            port = connection.local_candidates[0].port
            sock = stranger()
            # an authenticated check makes the address known (aioice keeps it until connect() starts)
            username = packets.stun_attribute(packets.STUN_ATTR["USERNAME"], f"{connection.local_username}:peer".encode())
            sock.sendto(packets.stun([username, packets.stun_attribute(packets.STUN_ATTR["PRIORITY"], bytes(4))],
                                     integrity_key=connection.local_password.encode(), fingerprint=True), (LOOPBACK, port))
            sock.setblocking(False)
            await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(sock, 2048), 5)  # the check was taken
            before = count(kind)
            flood = internals.MAX_QUEUED_DATAGRAMS + 200
            for batch in range(0, flood, 50):  # batches a socket buffer holds, each read before the next
                for n in range(batch, batch + 50):
                    sock.sendto(b"\x80" + n.to_bytes(4, "big") + bytes(20), (LOOPBACK, port))
                await wait_until(lambda sent=batch + 50: connection._queue.qsize() + count(kind) - before >= sent, 5,
                                 "the batch to be read")
            sock.close()
            assert count(kind) - before == 200
            assert connection._queue.qsize() == internals.MAX_QUEUED_DATAGRAMS
        finally:
            await connection.close()
            internals.set_host_addresses(None)

    run(scenario())


def test_a_start_up_overtaken_by_the_next_answer_ends_quietly_and_the_next_one_starts_everything() -> None:
    """aiortc's start-up task of the first answer, still waiting for DTLS, resumes while the second answer is half
    applied (its new m-line marked, the description not replaced yet): it died on an IndexError."""

    async def scenario() -> None:
        internals.set_host_addresses([LOOPBACK])
        sfu, client = new_peer_connection(), new_peer_connection()  # the server offers, as tvapp's SFU does
        try:
            sfu.addTransceiver(ToneTrack(440.0), direction="sendonly")
            await sfu.setLocalDescription(await sfu.createOffer())
            await client.setRemoteDescription(sfu.localDescription)
            await client.setLocalDescription(await client.createAnswer())
            await sfu.setRemoteDescription(client.localDescription)  # start-up #1 now waits for ICE and DTLS
            sfu.addTransceiver("audio", direction="recvonly")  # a publication, offered before DTLS is up
            await sfu.setLocalDescription(await sfu.createOffer())
            await client.setRemoteDescription(sfu.localDescription)
            client.getTransceivers()[1].sender.replaceTrack(ToneTrack(330.0))
            client.getTransceivers()[1].direction = "sendonly"
            await client.setLocalDescription(await client.createAnswer())

            held = asyncio.Event()
            ice: Any = sfu.getTransceivers()[0].receiver.transport.transport
            add_candidate = ice.addRemoteCandidate

            async def hold_then_add(candidate: Any) -> None:  # the second answer waits here, half applied
                await held.wait()
                await add_candidate(candidate)

            ice.addRemoteCandidate = hold_then_add
            start_ups = [t for t in asyncio.all_tasks() if t.get_coro().__name__ in ("__connect", "connect")]
            assert start_ups  # the two descriptions' start-ups, still waiting for ICE and DTLS
            applying = asyncio.create_task(sfu.setRemoteDescription(client.localDescription))
            done, _ = await asyncio.wait(start_ups, timeout=10)
            assert len(done) == len(start_ups)
            assert [t.exception() for t in done if t.exception() is not None] == []
            held.set()
            await applying
            track = sfu.getTransceivers()[1].receiver.track
            for _ in range(10):  # the second answer's own start-up started the new m-line's receiver
                await asyncio.wait_for(track.recv(), 5)
        finally:
            await sfu.close()
            await client.close()
            internals.set_host_addresses(None)

    run(scenario())


def test_a_start_up_overtaken_by_the_peer_connection_closing_ends_quietly() -> None:
    """A participant leaves while aiortc's start-up task waits for DTLS on its first m-line: the task resumed on the
    closed peer connection and died on "InvalidStateError: RTCIceTransport is closed" at the next m-line (a traceback
    in the server's log, found by the soak)."""

    async def scenario() -> None:
        internals.set_host_addresses([LOOPBACK])
        sfu, client = new_peer_connection(), new_peer_connection()
        try:
            sfu.addTransceiver(ToneTrack(440.0), direction="sendonly")
            sfu.addTransceiver("audio", direction="recvonly")  # a second m-line: the start-up goes on to it
            await sfu.setLocalDescription(await sfu.createOffer())
            await client.setRemoteDescription(sfu.localDescription)
            await client.setLocalDescription(await client.createAnswer())
            reached, closed = asyncio.Event(), asyncio.Event()
            dtls: Any = sfu.getTransceivers()[0].receiver.transport

            async def held_start(parameters: Any) -> None:  # the first m-line's DTLS start-up, until the close
                reached.set()
                await closed.wait()

            dtls.start = held_start
            before = asyncio.all_tasks()
            await sfu.setRemoteDescription(client.localDescription)
            start_ups = [t for t in asyncio.all_tasks() - before if t.get_coro().__name__ in ("__connect", "connect")]
            assert len(start_ups) == 1
            await asyncio.wait_for(reached.wait(), 10)
            ice: Any = dtls.transport
            ice.on("statechange", lambda: closed.set() if ice.state == "closed" else None)
            closing = asyncio.create_task(sfu.close())  # what leaving does meanwhile: the start-up resumes mid-close
            done, _ = await asyncio.wait(start_ups, timeout=10)
            await closing
            assert done and [t.exception() for t in done] == [None]
        finally:
            await sfu.close()
            await client.close()
            internals.set_host_addresses(None)

    run(scenario())
