"""The SFU's own enforcement, with real peer connections through a real server on 127.0.0.1.

Publishers here are bare MediaPeers (tvapp.testing.media_peer) that keep sending whatever the server
says, so what stops at the subscribers is stopped by the SFU. The SDK's view of the same features is
tested in test_client_room.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from tvapp.client.signaling import SignalClient
from tvapp.client.sources import TestPatternTrack, ToneTrack
from tvapp.protocol.messages import ActiveSpeakers, Answer, Error, Offer, Removed, TrackMuted
from tvapp.rtc import internals
from tvapp.testing import aio
from tvapp.testing.media_peer import MediaPeer
from tvapp.testing.rest import media_token as token
from tvapp.testing.rest import new_room
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async as wait_until

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def run(coro: Coroutine[Any, Any, None], deadline: float = 90) -> None:
    """Run one test coroutine with an overall deadline, offering only loopback ICE candidates."""
    internals.set_host_addresses(["127.0.0.1"])
    try:
        aio.run(coro, deadline)
    finally:
        internals.set_host_addresses(None)


@pytest.fixture(scope="module")
def sfu_server(media_server: ServerProcess) -> ServerProcess:
    return media_server


async def growth(count: Any, seconds: float) -> int:
    before = count()
    await asyncio.sleep(seconds)
    return int(count() - before)


def test_server_mute_stops_audio_at_the_subscribers_and_unmute_resumes_it(sfu_server: ServerProcess) -> None:
    async def scenario() -> None:
        room = new_room(sfu_server, "sfu")
        alice = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "alice"))
        bob = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "bob"))
        await alice.publish("mic", ToneTrack(440.0), "microphone")
        await wait_until(lambda: bob.frames_of("audio") > 25, what="bob hearing alice")
        track_sid = next(i.track_sid for i in bob.mids.values() if i.kind == "audio")
        response = sfu_server.http.post(f"/v1/rooms/{room}/participants/alice/tracks/{track_sid}/mute",
                                        json={"muted": True})
        assert response.status_code == 200, response.text
        muted = await alice.wait_for(TrackMuted)
        assert isinstance(muted, TrackMuted) and muted.by_server and muted.track_sid == track_sid
        await asyncio.sleep(0.3)  # what was already in flight
        assert await growth(lambda: bob.frames_of("audio"), 1.0) == 0  # alice still sends: the SFU drops it
        sfu_server.http.post(f"/v1/rooms/{room}/participants/alice/tracks/{track_sid}/mute",
                             json={"muted": False}).raise_for_status()
        assert await growth(lambda: bob.frames_of("audio"), 1.0) > 25
        await alice.close()
        await bob.close()

    run(scenario())


def test_removing_a_participant_closes_its_media_and_ends_its_subscriptions(sfu_server: ServerProcess) -> None:
    async def scenario() -> None:
        room = new_room(sfu_server, "sfu")
        alice = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "alice"))
        bob = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "bob"))
        await alice.publish("cam", TestPatternTrack(320, 240, 15), "camera")
        await bob.publish("cam", TestPatternTrack(320, 240, 15), "camera")
        await wait_until(lambda: bob.frames_of("video") > 5 and alice.frames_of("video") > 5, what="video both ways")
        sfu_server.http.delete(f"/v1/rooms/{room}/participants/alice").raise_for_status()
        await alice.wait_for(Removed)
        # bob's next offer no longer lists alice's track, and nothing more arrives from her
        await wait_until(lambda: not any(i.direction == "subscribe" for i in bob.mids.values()),
                         what="alice's track to leave bob's offer")
        await asyncio.sleep(0.3)
        assert await growth(lambda: sum(bob.frames.values()), 1.0) == 0
        # and the server stopped sending to alice: her peer connection sees no new frames either
        assert await growth(lambda: sum(alice.frames.values()), 1.0) == 0
        listed = sfu_server.http.get(f"/v1/rooms/{room}/participants").json()
        assert [p["identity"] for p in listed] == ["bob"]
        await alice.close()
        await bob.close()

    run(scenario())


def test_unsubscribe_then_subscribe_again_reuses_the_m_line(sfu_server: ServerProcess) -> None:
    async def scenario() -> None:
        from tvapp.protocol.messages import Subscribe, Unsubscribe

        room = new_room(sfu_server, "sfu")
        alice = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "alice"))
        bob = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "bob"))
        await alice.publish("cam", TestPatternTrack(320, 240, 15), "camera")
        await wait_until(lambda: bob.frames_of("video") > 5, what="bob seeing alice")
        (slot,) = [i for i in bob.mids.values() if i.direction == "subscribe"]
        await bob.signal.send(Unsubscribe(track_sid=slot.track_sid))
        await wait_until(lambda: not bob.mids, what="the subscription to end")
        await asyncio.sleep(0.3)
        assert await growth(lambda: bob.frames[slot.track_sid], 1.0) == 0
        started = time.monotonic()
        await bob.signal.send(Subscribe(track_sid=slot.track_sid))
        await wait_until(lambda: bool(bob.mids), what="the subscription to come back")
        assert [i.mid for i in bob.mids.values()] == [slot.mid]  # the idle m-line was reused
        before = bob.frames[slot.track_sid]
        await wait_until(lambda: bob.frames[slot.track_sid] > before, what="video again")
        assert time.monotonic() - started < 2.0
        await alice.close()
        await bob.close()

    run(scenario())


def test_client_offers_and_stray_answers_get_errors_and_the_connection_stays(sfu_server: ServerProcess) -> None:
    async def scenario() -> None:
        room = new_room(sfu_server, "sfu")
        client = await SignalClient.connect(sfu_server.url, token(sfu_server, room, "carol"))
        await client.send(Offer(sdp=SDP))
        error = await client.next()
        assert isinstance(error, Error) and error.code == "server_offers"
        await client.send(Answer(sdp=SDP))
        error = await client.next()
        assert isinstance(error, Error) and error.code == "no_offer"
        peer = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "dave"))
        await peer.publish("mic", ToneTrack(), "microphone")
        offer = await peer.wait_for(Offer)
        assert isinstance(offer, Offer)
        await client.close()
        await peer.close()

    run(scenario())


def test_a_garbage_answer_is_refused_without_harming_the_others(sfu_server: ServerProcess) -> None:
    async def scenario() -> None:
        from tvapp.protocol.messages import Publish

        room = new_room(sfu_server, "sfu")
        alice = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "alice"))
        bob = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "bob"))
        mallory = await SignalClient.connect(sfu_server.url, token(sfu_server, room, "mallory"))
        await alice.publish("mic", ToneTrack(), "microphone")
        await mallory.send(Publish(cid="x", kind="audio", source="microphone"))
        while not isinstance(msg := await mallory.next(), Offer):
            pass
        await mallory.send(Answer(sdp="v=0\r\nthis is not sdp\r\n"))
        while not isinstance(msg := await mallory.next(), Error):
            pass
        assert msg.code == "bad_answer"
        await wait_until(lambda: bob.frames_of("audio") > 25, what="bob still hearing alice")
        await mallory.close()
        await alice.close()
        await bob.close()

    run(scenario())


def test_a_scripted_three_speaker_scene_gives_the_expected_dominant_speakers(sfu_server: ServerProcess) -> None:
    """A speaks, B takes over, A interjects for 200 ms, C takes over: dominant A, B, C and never A again."""

    async def scenario() -> None:
        room = new_room(sfu_server, "sfu")
        observer = await SignalClient.connect(sfu_server.url, token(sfu_server, room, "observer"))
        tones = {name: ToneTrack(hz) for name, hz in (("a", 300.0), ("b", 500.0), ("c", 700.0))}
        peers = {}
        for name, tone in tones.items():
            tone.enabled = False
            peers[name] = await MediaPeer.join(sfu_server.url, token(sfu_server, room, name), auto_subscribe=False)
            await peers[name].publish("mic", tone, "microphone")
        sids = {observer.joined.participant.sid: "observer"}
        sids.update({p.signal.joined.participant.sid: name for name, p in peers.items()})
        await asyncio.sleep(2.0)  # every publication negotiated and flowing (silence)
        changes: list[tuple[float, str | None]] = []

        async def watch() -> None:
            while True:
                msg = await observer.receive()
                if isinstance(msg, ActiveSpeakers):
                    dominant = sids.get(msg.dominant_sid or "")
                    if not changes or changes[-1][1] != dominant:
                        changes.append((time.monotonic(), dominant))

        watcher = asyncio.create_task(watch())
        t0 = time.monotonic()
        script = [(0.0, "a", True), (2.5, "a", False), (2.5, "b", True), (3.5, "a", True), (3.7, "a", False),
                  (5.0, "b", False), (5.0, "c", True), (7.0, "c", False)]
        for at, name, on in script:
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            tones[name].enabled = on
        await asyncio.sleep(1.0)
        watcher.cancel()
        dominants = [d for _, d in changes if d is not None]
        assert dominants == ["a", "b", "c"], changes
        switch_to = {d: t - t0 for t, d in changes}
        assert switch_to["a"] < 1.0  # generous here; bench/speaker_switch.py measures the latency itself
        assert 2.5 < switch_to["b"] < 3.5
        assert 5.0 < switch_to["c"] < 6.0
        await observer.close()
        for peer in peers.values():
            await peer.close()

    run(scenario())


def test_h264_is_forwarded_when_the_server_prefers_it(tmp_path: Any) -> None:
    """Publisher and subscriber both offer H.264; frames arrive decodable with their stamps intact."""

    async def scenario(srv: ServerProcess) -> None:
        from aiortc.mediastreams import VideoStreamTrack

        from tvapp.client.stamp import read_stamp

        room = new_room(srv, "sfu")
        alice = await MediaPeer.join(srv.url, token(srv, room, "alice"))
        bob = await MediaPeer.join(srv.url, token(srv, room, "bob"))
        pattern = TestPatternTrack(320, 240, 15)

        class Frames(VideoStreamTrack):  # aiortc encodes these itself, with the negotiated codec
            async def recv(self):  # type: ignore[no-untyped-def]
                return await pattern.recv()

        await alice.publish("cam", Frames(), "camera")
        await wait_until(lambda: bob.frames_of("video") > 10, timeout=15, what="bob decoding alice's video")
        sdp = alice.pc.remoteDescription.sdp
        assert "H264/90000" in sdp and "VP8" not in sdp  # the server asked for H.264 only
        sent = [t for t in alice.pc.getTransceivers() if t.sender.track is not None]
        assert internals.negotiated_codecs(sent[0])[0].mimeType == "video/H264"
        counters = []
        (slot,) = [t for t in bob.pc.getTransceivers() if t.receiver.track is not None and t.kind == "video"]
        bob._pumps[0].cancel()  # read the frames here instead of counting them
        for _ in range(5):
            frame = await slot.receiver.track.recv()
            stamp = read_stamp(frame.to_ndarray(format="rgb24"))
            if stamp is not None:
                counters.append(stamp[0])
        assert len(counters) >= 3 and counters == sorted(counters)
        await alice.close()
        await bob.close()

    env = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "TVAPP_MEDIA_VIDEO_CODECS": "H264"}
    with ServerProcess(tmp_path, env=env) as srv:
        run(scenario(srv))


def test_late_joiners_start_at_a_keyframe_within_a_second_and_plis_are_coalesced(sfu_server: ServerProcess) -> None:
    """The publisher's encoder only makes keyframes when asked (aiortc: every 3000 frames otherwise)."""

    async def scenario() -> None:
        from aiortc.mediastreams import VideoStreamTrack

        from tvapp.rtc.packets import is_keyframe

        room = new_room(sfu_server, "sfu")
        alice = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "alice"))
        pattern = TestPatternTrack(320, 240, 30)

        class Frames(VideoStreamTrack):
            async def recv(self):  # type: ignore[no-untyped-def]
                return await pattern.recv()

        await alice.publish("cam", Frames(), "camera")
        await wait_until(lambda: any(t.sender.track is not None for t in alice.pc.getTransceivers()),
                         what="alice's track attached")
        requests: list[float] = []
        (sender,) = [t.sender for t in alice.pc.getTransceivers() if t.sender.track is not None]
        force_keyframe = sender._send_keyframe  # noqa: SLF001 - the aiortc encoder's own keyframe flag
        internals.on_keyframe_request(sender, lambda: (requests.append(time.monotonic()), force_keyframe()))
        await asyncio.sleep(3.0)  # no subscriber yet: nobody asks for keyframes
        assert requests == []

        # A late joiner that does not decode: the first frame it is sent must be a keyframe.
        raw = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "raw"), raw=True)
        # Four decoding late joiners in a row (a room holds six), each asking for a keyframe when it arrives.
        joined_at = time.monotonic()
        late, join_times = [], []
        for i in range(4):
            join_times.append(time.monotonic())
            late.append(await MediaPeer.join(sfu_server.url, token(sfu_server, room, f"late{i}")))
        await wait_until(lambda: all(p.frames_of("video") > 0 for p in late), timeout=5, what="late joiners' video")
        waits = [min(p.first_frame_at.values()) - t for p, t in zip(late, join_times)]
        assert max(waits) < 1.0, waits  # decodable video within 1 s of joining
        await wait_until(lambda: bool(raw.first_payloads), what="raw's first frame")
        # The first packet the SFU sends on an m-line starts the first frame it forwards there.
        (first,) = raw.first_payloads.values()
        assert is_keyframe("VP8", first)
        window_start = joined_at
        await asyncio.sleep(1.5)
        in_window = [t for t in requests if t >= window_start]
        spread = max(in_window) - min(in_window) if len(in_window) > 1 else 0.0
        # Never closer than the 0.3 s coalescing interval, less 50 ms for the jitter between the SFU's clock and
        # the publisher seeing the request (two requests 0.2998 s apart once failed a count bound with no slack).
        assert 1 <= len(in_window) <= 1 + spread / 0.25 + 1e-6, (len(in_window), spread)
        gaps = [b - a for a, b in zip(in_window, in_window[1:])]
        assert all(gap >= 0.25 for gap in gaps), gaps
        for peer in [alice, raw, *late]:
            await peer.close()

    run(scenario())


def test_publishers_are_told_the_video_bitrate_cap_by_remb(sfu_server: ServerProcess) -> None:
    async def scenario() -> None:
        from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

        room = new_room(sfu_server, "sfu")
        alice = await MediaPeer.join(sfu_server.url, token(sfu_server, room, "alice"))
        await alice.publish("cam", TestPatternTrack(160, 120, 15), "camera")
        await wait_until(lambda: any(t.sender.track is not None for t in alice.pc.getTransceivers()),
                         what="alice's track attached")
        (sender,) = [t.sender for t in alice.pc.getTransceivers() if t.sender.track is not None]
        caps: list[int] = []
        handle = sender._handle_rtcp_packet  # noqa: SLF001 - observe what reaches the publisher

        async def observe(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                caps.append(unpack_remb_fci(packet.fci)[0])
            await handle(packet)

        sender._handle_rtcp_packet = observe  # type: ignore[method-assign]
        await wait_until(lambda: len(caps) >= 2, timeout=5, what="two REMB packets")
        assert all(abs(cap - 2_500_000) / 2_500_000 < 0.01 for cap in caps), caps  # REMB's mantissa rounds
        await alice.close()

    run(scenario())
