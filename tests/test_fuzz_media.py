"""Fuzzing the media path and the signaling parsers of a real core, with a bystander watching throughout.

One core (`tvapp serve`, ICE on 127.0.0.1 only) holds one room: a publisher (SDK Room: test pattern + tone),
a bystander (SDK Room, subscribed to everything) and a fuzzer (a bare peer connection whose publications send
nothing of their own, so the fuzz owns their SSRCs). Hypothesis then sends:

- from a stranger's raw UDP socket, to every UDP port the core has open: random datagrams in every first-byte
  class of RFC 7983 (STUN, DTLS, SRTP), and RTP, RTCP and STUN with absurd fields;
- through the fuzzer's real DTLS-SRTP session (aiortc's transport, driven from this test process only): RTP
  bursts on the fuzzer's own SSRCs and payload types that reach the SFU's frame assembler, and RTCP compounds
  aimed at the SSRCs of the core's senders (NACK, PLI, FIR, REMB, SR/RR, SDES, BYE, APP);
- the fuzzer's real media mangled on its way out (bits flipped, lengths cut);
- over the signaling websocket: join messages from strangers, every client message with junk fields, candidates
  and SDP answers mangled from real ones.

Every example ends with /healthz answered and no traceback, unhandled exception or ERROR line in the core's log
since the example began; every test ends with the bystander still receiving the publisher's video and audio.
Packets that would make aiortc or aioice raise past their callers (classified in this process with their own
parsers, tvapp.testing.fuzz.*_crash) are sent like any other, since tvapp.rtc.internals guards each such path
now; hypothesis counts them as events. The tests at the end pin each bug the fuzz found, one input apiece. `make fuzz` runs the same tests with TVAPP_FUZZ_EXAMPLES=100000
(500 times the suite's counts: ~870,000 examples, a night on this machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pylibsrtp
import pytest
from aiortc import MediaStreamTrack, RTCSessionDescription
from hypothesis import event, example, given
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tvapp.client import events as ev
from tvapp.client.room import Room
from tvapp.client.signaling import SignalClient, signal_url
from tvapp.client.sources import TestPatternTrack, ToneTrack
from tvapp.protocol.messages import CLIENT_MESSAGE_TYPES, Error, Offer, Pong, Publish
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection
from tvapp.testing import fuzz, packets, procstat
from tvapp.testing.fuzz import LoopThread, SdpMedia, fuzz_settings
from tvapp.testing.logscan import LogWindow
from tvapp.testing.media_peer import MediaPeer
from tvapp.testing.rest import media_token as token
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async as wait_until

LOOPBACK = "127.0.0.1"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
pytestmark = [
    pytest.mark.timeout(0 if fuzz.scale() > 1 else 300),
    # aiortc and aioice draw from the global `random` on the peers' event loop thread while hypothesis generates
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]


# --- the scene --------------------------------------------------------------------------------------------------


class SilentTrack(MediaStreamTrack):
    """A track that never yields a frame: its sender is negotiated (an SSRC, a payload type) but sends nothing."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:  # type: ignore[override]
        await asyncio.Event().wait()


class Fuzzer:
    """A joined bare peer whose DTLS-SRTP transport the test writes raw RTP/RTCP into (aiortc's `_send_rtp`).

    Publishes one silent video and one silent audio track and subscribes to the publisher, so the core has
    receivers for the fuzzer's SSRCs and senders towards it whose SSRCs RTCP can name.
    """

    def __init__(self, peer: MediaPeer) -> None:
        self.peer = peer
        self.sent = Counter[str]()
        self._rng = random.Random(0xF022)
        self._seq: dict[int, int] = {}
        self._ts: dict[int, int] = {}

    @classmethod
    async def join(cls, core: ServerProcess, room: str, identity: str, *, silent: bool = True) -> Fuzzer:
        """Join, publish (silent or real) video and audio, and wait until media is negotiated both ways."""
        peer = await MediaPeer.join(core.url, token(core, room, identity))
        if silent:
            await peer.publish("fuzz-video", SilentTrack("video"), "camera")
            await peer.publish("fuzz-audio", SilentTrack("audio"), "microphone")
        else:
            await peer.publish("fuzz-video", TestPatternTrack(160, 120, 15), "camera")
            await peer.publish("fuzz-audio", ToneTrack(330.0), "microphone")
        self = cls(peer)
        await wait_until(lambda: self.ready, 20, "the fuzzer's media to be negotiated")
        return self

    @property
    def transport(self) -> Any:
        """The DTLS transport every m-line is bundled on."""
        return self.peer.pc.getTransceivers()[0].sender.transport

    @property
    def ready(self) -> bool:
        pc = self.peer.pc
        if pc.localDescription is None or pc.remoteDescription is None:
            return False
        return (len(self.own("video").ssrcs) > 0 and len(self.own("audio").ssrcs) > 0 and len(self.core_ssrcs()) >= 2
                and self.transport.state == "connected" and self.peer.frames_of("video") > 0)

    def own(self, kind: str) -> SdpMedia:
        """The fuzzer's own sending m-line of `kind` (from its answer)."""
        return next(m for m in fuzz.sdp_media(self.peer.pc.localDescription.sdp) if m.kind == kind and m.ssrcs)

    def own_ssrcs(self) -> list[int]:
        return [s for m in fuzz.sdp_media(self.peer.pc.localDescription.sdp) for s in m.ssrcs]

    def core_ssrcs(self) -> list[int]:
        """SSRCs the core's senders towards the fuzzer use (from the core's offer)."""
        return [s for m in fuzz.sdp_media(self.peer.pc.remoteDescription.sdp) for s in m.ssrcs]

    def extensions(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for media in fuzz.sdp_media(self.peer.pc.localDescription.sdp):
            found.update(media.extensions)
        return found

    def payload_types(self) -> list[int]:
        return sorted({pt for m in fuzz.sdp_media(self.peer.pc.localDescription.sdp) for pt in m.payload_types.values()})

    async def send(self, datagram: bytes, raw_crash: str | None = None) -> str:
        """Protect and send one RTP/RTCP packet; return what became of it (and what raw aiortc would raise)."""
        try:
            await self.transport._send_rtp(datagram)
            outcome = "sent"
        except pylibsrtp.Error:  # our own libsrtp refuses what it cannot parse, and replayed indexes
            outcome = "refused by the sender's own SRTP"
        if raw_crash is not None:
            outcome += " (guarded: raw " + raw_crash + ")"
        self.sent[outcome] += 1
        return outcome

    async def send_burst(self, burst: fuzz.RtpBurst, extensions: dict[str, int]) -> set[str]:
        """Send a burst of RTP packets continuing this SSRC's sequence and timestamp from the last burst."""
        outcomes = set()
        seq = self._seq.get(burst.ssrc, self._rng.getrandbits(16))
        ts = self._ts.get(burst.ssrc, self._rng.getrandbits(32))
        for seq_step, ts_step, marker, payload in burst.packets:
            seq, ts = (seq + seq_step) & 0xFFFF, (ts + ts_step) & 0xFFFFFFFF
            datagram = packets.rtp(payload_type=burst.payload_type, sequence=seq, timestamp=ts, ssrc=burst.ssrc,
                                   marker=marker, payload=payload)
            outcomes.add(await self.send(datagram, fuzz.rtp_crash(datagram, extensions)))
        self._seq[burst.ssrc], self._ts[burst.ssrc] = seq, ts
        return outcomes

    async def close(self) -> None:
        await self.peer.close()


class Scene:
    """The room under fuzz: publisher and bystander (SDK), the fuzzer, and checks on all of them."""

    def __init__(self, core: ServerProcess, loop: LoopThread, room: str) -> None:
        self.core = core
        self.loop = loop
        self.room = room
        self.publisher: Room | None = None
        self.bystander: Room | None = None
        self.fuzzer: Fuzzer | None = None
        self.witness: MediaPeer | None = None  # raw subscriber: counts the frames the SFU forwards, decodes nothing
        self.watched: dict[str, Any] = {}  # kind -> the bystander's RemoteTrack of the publisher's track
        self.log = LogWindow(core)
        self.http = httpx.Client(base_url=core.url, timeout=10.0)

    async def start(self) -> None:
        self.publisher = await Room.connect(self.core.url, token(self.core, self.room, "publisher"),
                                            host_addresses=[LOOPBACK])
        self.bystander = await Room.connect(self.core.url, token(self.core, self.room, "bystander"),
                                            host_addresses=[LOOPBACK])
        mine = {}
        for track in (TestPatternTrack(320, 240, 15), ToneTrack(440.0)):
            pub = await self.publisher.local_participant.publish_track(track)
            mine[pub.sid] = track.kind

        def seen(e: ev.TrackSubscribed) -> None:
            if e.publication.sid in mine:
                self.watched[mine[e.publication.sid]] = e.track

        self.bystander.on(ev.TrackSubscribed, seen)
        for remote in self.bystander.participants.values():
            for pub in remote.tracks.values():
                if pub.track is not None and pub.sid in mine:
                    self.watched[mine[pub.sid]] = pub.track
        await wait_until(lambda: len(self.watched) == 2, 20, "the bystander to subscribe to the publisher")
        self.fuzzer = await Fuzzer.join(self.core, self.room, "fuzzer")
        self.witness = await MediaPeer.join(self.core.url, token(self.core, self.room, "witness"), raw=True)
        await wait_until(lambda: self.fuzzer_track("video") is not None, 20, "the witness to subscribe to the fuzzer")
        await self.media_flows()

    def fuzzer_track(self, kind: str) -> str | None:
        """The sid of the fuzzer's track of `kind`, once the witness is subscribed to it."""
        fuzzer_sid = self.fuzzer.peer.signal.joined.participant.sid
        return next((i.track_sid for i in self.witness.mids.values()
                     if i.direction == "subscribe" and i.participant_sid == fuzzer_sid and i.kind == kind), None)

    def forwarded(self, kind: str) -> int:
        """Frames of the fuzzer's `kind` track the SFU forwarded to the witness so far."""
        sid = self.fuzzer_track(kind)
        return self.witness.frames.get(sid, 0) if sid else 0

    def frames(self) -> tuple[int, int]:
        return self.watched["video"].frames_received, self.watched["audio"].frames_received

    async def media_flows(self, timeout: float = 30.0) -> None:
        """Wait until the bystander gets 5 more video and 10 more audio frames of the publisher."""
        video, audio = self.frames()
        await wait_until(lambda: self.frames()[0] >= video + 5 and self.frames()[1] >= audio + 10, timeout,
                         "the bystander to keep receiving the publisher's video and audio")

    async def fuzzer_receives(self, fuzzer: Fuzzer, timeout: float = 30.0) -> None:
        """Wait until `fuzzer` decodes more of the publisher's video: the core's side of its session still works."""
        before = fuzzer.peer.frames_of("video")
        await wait_until(lambda: fuzzer.peer.frames_of("video") >= before + 3, timeout,
                         "the core to keep sending to the fuzzer (its side of the DTLS session alive)")

    def assert_core_healthy(self) -> None:
        """The core is alive, answers /healthz, and logged no problem since the window's mark."""
        assert self.core.proc is not None and self.core.proc.poll() is None, "".join(self.core.output)
        response = self.http.get("/healthz")
        assert response.status_code == 200
        time.sleep(0.002)  # let the output pipe's reader thread catch up with what the core printed
        found = self.log.problems()
        assert not found, "the core logged:\n" + "\n".join(found)

    async def stop(self) -> None:
        for room in (self.publisher, self.bystander):
            if room is not None:
                await room.disconnect()
        for peer in (self.fuzzer, self.witness):
            if peer is not None:
                await peer.close()
        self.http.close()


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TVAPP_MEDIA_HOST_ADDRESSES": LOOPBACK, "TVAPP_SERVER_HOST": LOOPBACK}
    with ServerProcess(tmp_path_factory.mktemp("fuzz-core"), env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    internals.set_host_addresses([LOOPBACK])
    thread = LoopThread()
    yield thread
    thread.close()
    internals.set_host_addresses(None)


@pytest.fixture(scope="module")
def scene(core: ServerProcess, loop: LoopThread) -> Iterator[Scene]:
    room = "fuzz-" + uuid.uuid4().hex[:8]
    core.http.post("/v1/rooms", json={"name": room}).raise_for_status()
    built = Scene(core, loop, room)
    loop.run(built.start(), 90)
    yield built
    loop.run(built.stop(), 30)


@pytest.fixture
def fresh(scene: Scene) -> Scene:
    """The scene with the log window restarted and media checked flowing before the test."""
    scene.loop.run(scene.media_flows())
    scene.log.mark()
    return scene


def stranger_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    return sock


# --- a stranger's datagrams -------------------------------------------------------------------------------------


def test_a_strangers_random_datagrams_to_every_sfu_port_harm_no_one(fresh: Scene) -> None:
    ports = procstat.udp_ports(fresh.core.proc.pid)
    assert len(ports) >= 3  # publisher, bystander and fuzzer sessions at least
    sock = stranger_socket()

    @fuzz_settings(300)
    @given(datagram=fuzz.datagrams())
    def fuzz_one(datagram: bytes) -> None:
        raw = fuzz.datagram_crash(datagram)
        if raw is not None:
            event("guarded: raw " + raw)
        for port in ports:
            sock.sendto(datagram, (LOOPBACK, port))
        fresh.assert_core_healthy()

    fuzz_one()
    sock.close()
    fresh.loop.run(fresh.media_flows())
    fresh.loop.run(fresh.fuzzer_receives(fresh.fuzzer))
    fresh.assert_core_healthy()


def test_a_strangers_rtp_rtcp_and_stun_with_absurd_fields_harm_no_one(fresh: Scene) -> None:
    ports = procstat.udp_ports(fresh.core.proc.pid)
    fuzzer = fresh.fuzzer
    sdp = fuzzer.peer.pc.remoteDescription.sdp
    core_ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp).group(1)
    core_pwd = re.search(r"a=ice-pwd:(\S+)", sdp).group(1)
    client_ufrag = re.search(r"a=ice-ufrag:(\S+)", fuzzer.peer.pc.localDescription.sdp).group(1)
    ssrcs = fuzzer.own_ssrcs() + fuzzer.core_ssrcs()
    sock = stranger_socket()
    datagram = st.one_of(
        fuzz.rtp_packets(ssrcs, fuzzer.payload_types(), list(fuzzer.extensions().values())),
        fuzz.rtcp_compounds(ssrcs),
        # the right USERNAME and password of the fuzzer's session, from the wrong address; or wrong ones
        fuzz.stun_messages([f"{core_ufrag}:{client_ufrag}", f"{client_ufrag}:{core_ufrag}"], [core_pwd.encode()]),
    )

    @fuzz_settings(300)
    @given(datagram=datagram)
    def fuzz_one(datagram: bytes) -> None:
        raw = fuzz.datagram_crash(datagram)
        if raw is not None:
            event("guarded: raw " + raw)
        for port in ports:
            sock.sendto(datagram, (LOOPBACK, port))
        fresh.assert_core_healthy()

    fuzz_one()
    sock.close()
    fresh.loop.run(fresh.media_flows())
    fresh.loop.run(fresh.fuzzer_receives(fresh.fuzzer))
    fresh.assert_core_healthy()


# --- a participant's own DTLS-SRTP session ---------------------------------------------------------------------


def test_rtp_bursts_through_the_dtls_session_reach_the_frame_assembler_and_harm_no_one(fresh: Scene) -> None:
    fuzzer = fresh.fuzzer
    extensions = fuzzer.extensions()
    video, audio = fuzzer.own("video"), fuzzer.own("audio")
    ssrcs = list(video.ssrcs) + list(audio.ssrcs)
    payload_types = list(video.payload_types.values()) + list(audio.payload_types.values())

    # a VP8 keyframe in two packets, then an inter frame: proof that the fuzz reaches forwarding
    keyframe = fuzz.RtpBurst(video.ssrcs[0], video.payload_types["VP8"],
                             ((1, 3000, False, b"\x10\x00" + bytes(60)), (1, 0, True, b"\x00" + bytes(60)),
                              (1, 3000, True, b"\x10\x01" + bytes(30))))
    forwarded_before = fresh.forwarded("video")

    @fuzz_settings(200)
    @given(burst=fuzz.rtp_bursts(ssrcs, payload_types))
    @example(burst=keyframe)
    def fuzz_one(burst: fuzz.RtpBurst) -> None:
        for outcome in fresh.loop.run(fuzzer.send_burst(burst, extensions)):
            event(outcome)
        fresh.assert_core_healthy()

    fuzz_one()
    assert sum(n for outcome, n in fuzzer.sent.items() if outcome.startswith("sent")) > 0, fuzzer.sent
    fresh.loop.run(wait_until(lambda: fresh.forwarded("video") > forwarded_before, 10,
                              "a fuzzed video frame forwarded to the witness"))
    fresh.loop.run(fresh.media_flows())
    fresh.loop.run(fresh.fuzzer_receives(fuzzer))
    fresh.assert_core_healthy()


def test_single_rtp_packets_with_absurd_headers_through_the_dtls_session_harm_no_one(fresh: Scene) -> None:
    fuzzer = fresh.fuzzer
    extensions = fuzzer.extensions()

    @fuzz_settings(200)
    @given(datagram=fuzz.rtp_packets(fuzzer.own_ssrcs(), fuzzer.payload_types(), list(extensions.values())))
    def fuzz_one(datagram: bytes) -> None:
        event(fresh.loop.run(fuzzer.send(datagram, fuzz.rtp_crash(datagram, extensions))))
        fresh.assert_core_healthy()

    fuzz_one()
    fresh.loop.run(fresh.media_flows())
    fresh.loop.run(fresh.fuzzer_receives(fuzzer))
    fresh.assert_core_healthy()


def test_rtcp_compounds_through_the_dtls_session_aimed_at_the_cores_senders_harm_no_one(fresh: Scene) -> None:
    fuzzer = fresh.fuzzer
    ssrcs = fuzzer.core_ssrcs() + fuzzer.own_ssrcs()

    @fuzz_settings(200)
    @given(compound=fuzz.rtcp_compounds(ssrcs))
    def fuzz_one(compound: bytes) -> None:
        event(fresh.loop.run(fuzzer.send(compound, fuzz.rtcp_crash(compound))))
        fresh.assert_core_healthy()

    fuzz_one()
    assert sum(n for outcome, n in fuzzer.sent.items() if outcome.startswith("sent")) > 0, fuzzer.sent
    fresh.loop.run(fresh.media_flows())
    fresh.loop.run(fresh.fuzzer_receives(fuzzer))
    fresh.assert_core_healthy()


def mangle(rng: random.Random, datagram: bytes) -> bytes:
    """Flip bits in the header or payload, cut the packet short, or lie in its first byte."""
    data = bytearray(datagram)
    action = rng.choice(["bits_header", "bits_payload", "truncate", "first_byte", "extend"])
    if action == "bits_header":
        for _ in range(rng.randint(1, 4)):
            index = rng.randrange(min(len(data), 24))
            data[index] ^= 1 << rng.randrange(8)
    elif action == "bits_payload" and len(data) > 12:
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(12, len(data))] ^= 1 << rng.randrange(8)
    elif action == "truncate":
        del data[rng.randint(2, max(2, len(data) - 1)):]
    elif action == "first_byte":
        data[0] = (data[0] & 0xC0) | rng.randrange(64)  # keep the version; lie in P, X and CC
    else:
        data += rng.randbytes(rng.randint(1, 200))
    return bytes(data)


def test_a_participants_real_media_mangled_on_its_way_out_harms_no_one(fresh: Scene) -> None:
    """A second fuzzer publishes real video and audio; a third of its RTP and RTCP is mangled before SRTP."""
    seconds = min(1800.0, 6.0 * fuzz.scale())
    mangler = fresh.loop.run(Fuzzer.join(fresh.core, fresh.room, "mangler-" + uuid.uuid4().hex[:6], silent=False))
    transport = mangler.transport
    extensions = mangler.extensions()
    send = transport._send_rtp
    rng = random.Random(0x5EED)
    tally = Counter[str]()

    async def mangled_send(data: bytes) -> None:
        if rng.random() < 0.33:
            out = mangle(rng, data)
            rtcp = len(out) > 1 and 192 <= out[1] <= 208  # how aiortc tells RTCP from RTP
            raw = fuzz.rtcp_crash(out) if rtcp else fuzz.rtp_crash(out, extensions)
            tally["mangled"] += 1
            if raw is not None:
                tally["guarded: raw " + raw] += 1
        else:
            out = data
        try:
            await send(out)
        except pylibsrtp.Error:
            tally["refused by our SRTP"] += 1

    transport._send_rtp = mangled_send
    try:
        fresh.log.mark()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            fresh.assert_core_healthy()
            time.sleep(0.2)
    finally:
        transport._send_rtp = send
    assert tally["mangled"] > 50, tally
    fresh.loop.run(fresh.media_flows())
    fresh.loop.run(fresh.fuzzer_receives(mangler))
    fresh.loop.run(mangler.close())
    fresh.assert_core_healthy()


# --- signaling --------------------------------------------------------------------------------------------------


async def ws_exchange(url: str, texts: list[str], timeout: float = 10.0) -> tuple[list[dict[str, Any]], int | None]:
    """Open a signaling websocket, send `texts`, read until the core closes it; return (messages, close code)."""
    received: list[dict[str, Any]] = []
    async with ws_connect(signal_url(url), open_timeout=timeout, max_size=2**20) as ws:
        for text in texts:
            await ws.send(text)
        try:
            async with asyncio.timeout(timeout):
                async for data in ws:
                    received.append(json.loads(data))
        except ConnectionClosed:
            pass
        return received, ws.close_code


@st.composite
def first_messages(draw: st.DrawFn) -> str:
    """What a stranger sends first: a join with a junk token, any client message, any JSON, or not JSON."""
    b64 = st.from_regex(r"[A-Za-z0-9_\-]{0,60}", fullmatch=True)
    jwtish = st.tuples(b64, b64, b64).map(".".join)
    join = st.fixed_dictionaries({"type": st.just("join"), "v": st.just(1) | fuzz.json_scalars,
                                  "token": jwtish | fuzz.texts_with_controls() | fuzz.json_values},
                                 optional={"auto_subscribe": fuzz.json_values})
    obj = draw(st.one_of(join, join, fuzz.client_message_objects(), fuzz.json_values))
    text = fuzz.encoded(obj)
    return draw(st.just(text) | st.just(text) | st.text(max_size=200))


def test_a_strangers_first_message_gets_an_error_never_a_crash(fresh: Scene) -> None:
    @fuzz_settings(150)
    @given(text=first_messages())
    def fuzz_one(text: str) -> None:
        received, close_code = fresh.loop.run(ws_exchange(fresh.core.url, [text]))
        assert close_code in (1003, 1008, 1009), (close_code, received)
        assert not [m for m in received if m.get("type") == "joined"], received
        codes = [m.get("code") for m in received if m.get("type") == "error"]
        assert codes and "internal_error" not in codes, received
        fresh.assert_core_healthy()

    fuzz_one()
    fresh.loop.run(fresh.media_flows())


class Joined:
    """A joined signaling client that sends raw text and reads until the pong of a barrier ping."""

    barriers = itertools.count(1)

    def __init__(self, client: SignalClient) -> None:
        self.client = client

    @classmethod
    async def join(cls, core: ServerProcess, room: str) -> Joined:
        return cls(await SignalClient.connect(core.url, token(core, room, "sig-" + uuid.uuid4().hex[:6]),
                                              heartbeat=False))

    async def exchange(self, text: str, timeout: float = 15.0) -> list[Any]:
        """Send `text` raw, then a ping; return the messages that came before its pong."""
        barrier = f"b{next(self.barriers)}"
        await self.client.ws.send(text)
        await self.client.ws.send(json.dumps({"type": "ping", "v": 1, "id": barrier}))
        before = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.client.receive()
                if isinstance(msg, Pong) and msg.id == barrier:
                    return before
                before.append(msg)

    async def close(self) -> None:
        await self.client.close()


def test_every_client_message_with_junk_fields_gets_an_error_never_a_crash(fresh: Scene) -> None:
    state: dict[str, Any] = {"client": None, "used": 0}

    async def client() -> Joined:
        if state["client"] is None or state["used"] >= 100:  # bound what one session accumulates
            if state["client"] is not None:
                await state["client"].close()
            state["client"], state["used"] = await Joined.join(fresh.core, fresh.room), 0
        state["used"] += 1
        return state["client"]

    types = [t for t in CLIENT_MESSAGE_TYPES if t != "leave"]

    @fuzz_settings(200)
    @given(obj=fuzz.client_message_objects(types))
    def fuzz_one(obj: dict[str, Any]) -> None:
        if obj["type"] == "candidate" and isinstance(obj.get("candidate"), str):
            raw = fuzz.candidate_crash(obj["candidate"])
            if raw is not None:  # issue 13 item 7: the core reads candidates itself now (tvapp.core.candidates)
                event("guarded: raw " + raw)
        joined = fresh.loop.run(client())
        before = fresh.loop.run(joined.exchange(fuzz.encoded(obj)))
        errors = [m.code for m in before if isinstance(m, Error)]
        assert "internal_error" not in errors, (obj, before)
        fresh.assert_core_healthy()

    fuzz_one()
    if state["client"] is not None:
        fresh.loop.run(state["client"].close())
    fresh.loop.run(fresh.media_flows())


def test_candidates_of_every_shape_get_an_error_never_a_crash(fresh: Scene) -> None:
    joined = fresh.loop.run(Joined.join(fresh.core, fresh.room))
    parts = st.one_of(st.sampled_from(["candidate:", "candidate:1 1 udp 1 127.0.0.1 9 typ host", "1", "udp", "typ",
                                       "host", "raddr", "::1", "999999999999", "-1", "tcptype", "generation"]),
                      st.text(max_size=12))
    line = st.lists(parts, max_size=14).map(" ".join)

    @fuzz_settings(150)
    @given(line=line, mid=st.none() | st.text(max_size=8), index=st.none() | st.integers(0, 10))
    def fuzz_one(line: str, mid: str | None, index: int | None) -> None:
        raw = fuzz.candidate_crash(line)
        if raw is not None:
            event("guarded: raw " + raw)
        text = fuzz.encoded({"type": "candidate", "v": 1, "candidate": line, "sdp_mid": mid, "sdp_mline_index": index})
        before = fresh.loop.run(joined.exchange(text))
        assert "internal_error" not in [m.code for m in before if isinstance(m, Error)], (line, before)
        fresh.assert_core_healthy()

    fuzz_one()
    fresh.loop.run(joined.close())


class Answerer:
    """A joined client that publishes a track per round and answers the core's offer with a mangled real answer."""

    def __init__(self, client: SignalClient) -> None:
        self.client = client
        self.cids = itertools.count(1)
        self.pending: list[Offer] = []  # offers that came while waiting for something else

    async def next_offer(self, timeout: float = 15.0) -> Offer:
        if self.pending:
            return self.pending.pop(0)
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.client.receive()
                if isinstance(msg, Offer):
                    return msg

    async def real_answer(self) -> str:
        """Publish a track, take the core's offer and return the answer a real peer connection makes to it."""
        await self.client.send(Publish(cid=f"c{next(self.cids)}", kind="audio", source="microphone"))
        offer = await self.next_offer()
        pc = new_peer_connection()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            return str(pc.localDescription.sdp)
        finally:
            await pc.close()

    async def answer(self, sdp: str) -> list[Any]:
        """Send `sdp` as the answer (raw, unchecked); return what came before the barrier pong.

        An offer among them (the core offering again at once) is kept for `next_offer`: unanswered, it would
        hold back every later offer."""
        before = await Joined(self.client).exchange(json.dumps({"type": "answer", "v": 1, "sdp": sdp}))
        self.pending += [m for m in before if isinstance(m, Offer)]
        return before


def test_sdp_answers_mangled_from_real_ones_get_bad_answer_never_a_crash(fresh: Scene) -> None:
    state: dict[str, Any] = {"answerer": None, "used": 0}

    async def answerer() -> Answerer:
        if state["answerer"] is None or state["used"] >= 10:  # each round adds an m-line: start over now and then
            if state["answerer"] is not None:
                await state["answerer"].client.close()
            state["answerer"] = Answerer(await SignalClient.connect(
                fresh.core.url, token(fresh.core, fresh.room, "answer-" + uuid.uuid4().hex[:6]), heartbeat=False))
            state["used"] = 0
        state["used"] += 1
        return state["answerer"]

    @fuzz_settings(30)
    @given(edits=fuzz.sdp_mutations())
    def fuzz_one(edits: list[fuzz.SdpMutation]) -> None:
        current = fresh.loop.run(answerer())
        sdp = fuzz.mangle_sdp(fresh.loop.run(current.real_answer()), edits)
        before = fresh.loop.run(current.answer(sdp))
        errors = [m.code for m in before if isinstance(m, Error)]
        assert "internal_error" not in errors, before
        event("answer refused" if "bad_answer" in errors else "answer accepted")
        fresh.assert_core_healthy()

    fuzz_one()
    if state["answerer"] is not None:
        fresh.loop.run(state["answerer"].client.close())
    fresh.loop.run(fresh.media_flows())


# --- bugs found: one input each, with what it did before tvapp guarded it ----------------------------------


def stun_barrier(sock: socket.socket, ports: list[int], required: Iterable[int], timeout: float = 5.0) -> set[int]:
    """Wait until the core has handled what `sock` sent to `ports` so far; return the ports that answered.

    Sends each port a binding request without credentials, which aioice answers with an error response;
    datagrams from one socket to one port are handled in order. Ports that are not (or no longer) ICE sockets
    may stay silent; every one of `required` must answer within `timeout`."""
    pending = {}
    for port in ports:
        transaction = uuid.uuid4().bytes[:12]
        pending[transaction] = port
        sock.sendto(packets.stun([packets.stun_attribute(packets.STUN_ATTR["USERNAME"], b"nobody:nobody")],
                                 transaction_id=transaction), (LOOPBACK, port))
    answered: set[int] = set()
    deadline = time.monotonic() + timeout
    while pending and not set(required) <= answered and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            data, _ = sock.recvfrom(2048)
            port = pending.pop(data[8:20], None)
            if port is not None:
                answered.add(port)
    missing = set(required) - answered
    assert not missing, f"ports {sorted(missing)} did not answer a binding request within {timeout} s"
    return answered


def test_a_malformed_candidate_is_refused_as_invalid_candidate_without_a_traceback(fresh: Scene) -> None:
    """Issue 13 item 7: 'candidate:garbage' made aiortc's candidate_from_sdp assert; the client got
    internal_error and the core logged a traceback, as often as a client cared to send it."""
    joined = fresh.loop.run(Joined.join(fresh.core, fresh.room))
    try:
        before = fresh.loop.run(joined.exchange(json.dumps({"type": "candidate", "v": 1,
                                                            "candidate": "candidate:garbage", "sdp_mid": "0"})))
    finally:
        fresh.loop.run(joined.close())
    assert [m.code for m in before if isinstance(m, Error)] == ["invalid_candidate"]
    fresh.assert_core_healthy()


def test_after_a_refused_answer_the_core_offers_again(fresh: Scene) -> None:
    """Issue 13 item 8: after bad_answer the core never offered again, so that participant's media stayed
    unnegotiated (the bound on re-offers is tests/test_media_session.py's)."""
    async def scenario() -> bool:
        client = await SignalClient.connect(fresh.core.url, token(fresh.core, fresh.room, "reoffer"), heartbeat=False)
        answerer = Answerer(client)
        try:
            await answerer.real_answer()
            before = await answerer.answer("v=0\r\nthis is not sdp\r\n")
            assert "bad_answer" in [m.code for m in before if isinstance(m, Error)], before
            with contextlib.suppress(TimeoutError):
                await answerer.next_offer(timeout=5.0)
                return True
            return False
        finally:
            await client.close()

    assert fresh.loop.run(scenario()), "no new offer within 5 s of bad_answer"


def test_a_strangers_stun_attribute_of_the_wrong_size_logs_no_traceback(fresh: Scene) -> None:
    """A STUN attribute of a fixed-size type (PRIORITY) with a 2-byte value made aioice's parse_message raise
    struct.error, which its datagram_received lets out: uvloop logged 'Unhandled exception in event loop' with
    a traceback, for one 24-byte datagram from anyone to any SFU port."""
    datagram = packets.stun([packets.stun_attribute(packets.STUN_ATTR["PRIORITY"], b"\x00\x01")])
    assert fuzz.stun_crash(datagram) == "aioice parse_message: error"
    ports = procstat.udp_ports(fresh.core.proc.pid)
    sock = stranger_socket()
    try:
        for port in ports:
            sock.sendto(datagram, (LOOPBACK, port))
        stun_barrier(sock, ports, required=fuzz.sdp_candidate_ports(fresh.fuzzer.peer.pc.remoteDescription.sdp))
    finally:
        sock.close()
    fresh.assert_core_healthy()


def test_an_authenticated_check_without_priority_logs_no_traceback(fresh: Scene) -> None:
    """Found by the fuzz: a binding request with the session's right USERNAME and MESSAGE-INTEGRITY but no
    PRIORITY (what a participant, who knows its session's password, can send) made aioice's check_incoming
    raise KeyError out of datagram_received: a traceback in the core's log per datagram."""
    fuzzer = fresh.fuzzer
    core_sdp, client_sdp = fuzzer.peer.pc.remoteDescription.sdp, fuzzer.peer.pc.localDescription.sdp
    core_ufrag = re.search(r"a=ice-ufrag:(\S+)", core_sdp).group(1)
    core_pwd = re.search(r"a=ice-pwd:(\S+)", core_sdp).group(1)
    client_ufrag = re.search(r"a=ice-ufrag:(\S+)", client_sdp).group(1)
    username = packets.stun_attribute(packets.STUN_ATTR["USERNAME"], f"{core_ufrag}:{client_ufrag}".encode())
    datagram = packets.stun([username], integrity_key=core_pwd.encode(), fingerprint=True)
    ports = fuzz.sdp_candidate_ports(core_sdp)
    sock = stranger_socket()
    try:
        for port in ports:
            sock.sendto(datagram, (LOOPBACK, port))
        stun_barrier(sock, ports, required=ports)
    finally:
        sock.close()
    fresh.assert_core_healthy()
    fresh.loop.run(fresh.fuzzer_receives(fuzzer, timeout=5.0))


def test_a_remb_promising_more_ssrcs_than_it_carries_keeps_the_session_alive(fresh: Scene) -> None:
    """A REMB whose SSRC count exceeds the SSRCs it carries made aiortc's unpack_remb_fci raise struct.error in
    RtpRouter.route_rtcp (which catches ValueError only): the core's DTLS transport logged a traceback and
    stopped, and that participant's media died while its peer connection still said connected."""
    fuzzer = fresh.loop.run(Fuzzer.join(fresh.core, fresh.room, "remb-" + uuid.uuid4().hex[:6]))
    try:
        compound = packets.remb(fuzzer.own_ssrcs()[0], 1_000_000, [], count=5)
        assert fuzz.rtcp_crash(compound) == "aiortc unpack_remb_fci: error"
        fresh.loop.run(fuzzer.transport._send_rtp(compound))
        fresh.loop.run(fresh.fuzzer_receives(fuzzer, timeout=5.0))
        fresh.assert_core_healthy()
    finally:
        fresh.loop.run(fuzzer.close())


def test_an_rtp_extension_of_the_wrong_size_keeps_the_session_alive(fresh: Scene) -> None:
    """An RTP header extension element of a negotiated id with the wrong size (a 2-byte ssrc-audio-level) made
    aiortc's HeaderExtensionsMap.get raise struct.error past _handle_rtp_data: the transport stopped."""
    fuzzer = fresh.loop.run(Fuzzer.join(fresh.core, fresh.room, "ext-" + uuid.uuid4().hex[:6]))
    try:
        audio = fuzzer.own("audio")
        datagram = packets.rtp(payload_type=audio.payload_types["OPUS"], sequence=1, timestamp=960,
                               ssrc=audio.ssrcs[0], payload=b"\xf8\xff\xfe",
                               extension=packets.one_byte_extensions([(audio.extensions[AUDIO_LEVEL], b"\x80\x80")]))
        assert fuzz.rtp_crash(datagram, audio.extensions) == "aiortc RtpPacket.parse: error"
        fresh.loop.run(fuzzer.transport._send_rtp(datagram))
        fresh.loop.run(fresh.fuzzer_receives(fuzzer, timeout=5.0))
        fresh.assert_core_healthy()
    finally:
        fresh.loop.run(fuzzer.close())


def test_thousands_of_ssrcs_from_one_participant_do_not_grow_the_core(fresh: Scene) -> None:
    """Every new SSRC a participant sent with a negotiated payload type cost the core ~0.8 KB never given back
    while the session lasted (a libsrtp stream per SSRC, aiortc's per-SSRC dicts): unbounded memory."""
    fuzzer = fresh.loop.run(Fuzzer.join(fresh.core, fresh.room, "ssrcs-" + uuid.uuid4().hex[:6]))
    pid = fresh.core.proc.pid
    video = fuzzer.own("video")
    pt = video.payload_types["VP8"]
    count = 8000

    async def spray(distinct: bool) -> int:
        await asyncio.sleep(1.0)
        before = procstat.sample(pid).rss
        base = random.getrandbits(32)
        for i in range(count):
            ssrc = (base + i) & 0xFFFFFFFF if distinct else video.ssrcs[0]
            await fuzzer.transport._send_rtp(packets.rtp(payload_type=pt, sequence=i, timestamp=i * 3000, ssrc=ssrc,
                                                         payload=b"\x10" + bytes(40)))
            if i % 100 == 0:
                await asyncio.sleep(0.005)
        await asyncio.sleep(1.0)
        return procstat.sample(pid).rss - before

    try:
        baseline = fresh.loop.run(spray(distinct=False), 120)  # the same packets on one SSRC: the sampler's noise
        grown = fresh.loop.run(spray(distinct=True), 120)
    finally:
        fresh.loop.run(fuzzer.close())
    assert grown - baseline < 2_000_000, f"{count} new SSRCs grew the core by {(grown - baseline) / 1e6:.1f} MB " \
                                         f"more than {count} packets on one SSRC ({baseline / 1e6:.1f} MB)"


def test_an_empty_datagram_from_a_stranger_does_not_end_anyones_media(core: ServerProcess, loop: LoopThread) -> None:
    """An empty UDP datagram from anyone to an SFU port ended that participant's media: aioice passed it on (it is
    not STUN) whatever its source, and aiortc's DTLS transport read its first byte unchecked and stopped.

    Run last: a victim room of its own, so the shared scene is not harmed if the bug is there."""
    room = "victim-" + uuid.uuid4().hex[:8]
    core.http.post("/v1/rooms", json={"name": room}).raise_for_status()
    before = set(procstat.udp_ports(core.proc.pid))
    victims = Scene(core, loop, room)

    async def start() -> None:  # publisher and bystander only
        victims.publisher = await Room.connect(core.url, token(core, room, "publisher"), host_addresses=[LOOPBACK])
        victims.bystander = await Room.connect(core.url, token(core, room, "bystander"), host_addresses=[LOOPBACK])
        video = await victims.publisher.local_participant.publish_track(TestPatternTrack(160, 120, 15))
        audio = await victims.publisher.local_participant.publish_track(ToneTrack(440.0))
        wanted = {video.sid: "video", audio.sid: "audio"}

        def found() -> bool:
            for remote in victims.bystander.participants.values():
                for pub in remote.tracks.values():
                    if pub.sid in wanted and pub.track is not None:
                        victims.watched[wanted[pub.sid]] = pub.track
            return len(victims.watched) == 2

        await wait_until(found, 20, "the victim bystander to subscribe")
        await victims.media_flows()

    loop.run(start(), 60)
    try:
        ports = sorted(set(procstat.udp_ports(core.proc.pid)) - before)
        assert ports, "the victims' sessions opened no new UDP port"
        victims.log.mark()
        sock = stranger_socket()
        try:
            for port in ports:
                sock.sendto(b"", (LOOPBACK, port))
            stun_barrier(sock, ports, required=ports)
        finally:
            sock.close()
        loop.run(victims.media_flows(timeout=5.0))
        victims.assert_core_healthy()
    finally:
        loop.run(victims.stop(), 30)
