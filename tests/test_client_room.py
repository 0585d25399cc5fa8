"""The SDK's Room against a real `tvapp serve`: presence, tracks, mute, data, calls refused by the server,
token refresh, reconnect through a TCP proxy that cuts connections, removal; and, through the SFU, two
rooms exchanging stamped video and a tone, a late joiner, unsubscribing, camera off/on, format changes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import av
import jwt
import pytest
from aiortc.mediastreams import MediaStreamError

from tvapp.client import (
    ActiveSpeakersChanged,
    DataReceived,
    Disconnected,
    JoinError,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnected,
    ParticipantReconnecting,
    Reconnected,
    Reconnecting,
    RemoteTrack,
    RequestError,
    Room,
    RoomEvent,
    TrackMuted,
    TrackPublished,
    TrackSubscribed,
    TrackUnmuted,
    TrackUnpublished,
    TrackUnsubscribed,
)
from tvapp.client import events as ev
from tvapp.client.tokens import refresh_delay, token_times
from tvapp.client.sources import TestPatternTrack, ToneTrack
from tvapp.client.stamp import read_stamp
from tvapp.testing.aio import runner
from tvapp.testing.media import audio_samples, dominant_frequency
from tvapp.testing.recorder import Recorder
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.tcpproxy import CuttableProxy
from tvapp.testing.waiting import wait_until_async

E = TypeVar("E", bound=RoomEvent)
LOOPBACK = ["127.0.0.1"]


run = runner(deadline=90)


async def join(srv: ServerProcess, room: str, identity: str, *, url: str | None = None,
               **options: Any) -> tuple[Room, Recorder]:
    grants = {k: options.pop(k) for k in ("host", "publish", "subscribe", "publish_data", "hidden", "ttl", "name")
              if k in options}
    pair = srv.token(room, identity, **grants)
    refresh = pair["refresh_token"] if options.pop("refresh", False) else None
    room_obj = await Room.connect(url or srv.url, pair["access_token"], refresh_token=refresh,
                                  host_addresses=LOOPBACK, **options)
    return room_obj, Recorder(room_obj)


# --- pure parts ---------------------------------------------------------------------------------------------------


def test_refresh_happens_a_fifth_of_the_lifetime_early_within_1_to_60_seconds() -> None:
    assert refresh_delay(1000.0, 1600.0, 1000.0) == pytest.approx(540.0)  # 600 s token: 60 s early
    assert refresh_delay(1000.0, 1010.0, 1000.0) == pytest.approx(8.0)  # 10 s token: 2 s early
    assert refresh_delay(1000.0, 1003.0, 1000.0) == pytest.approx(2.0)  # 3 s token: at least 1 s early
    assert refresh_delay(1000.0, 87400.0, 1000.0) == pytest.approx(86340.0)  # a day: at most 60 s early
    assert refresh_delay(1000.0, 1600.0, 1580.0) == 0.0  # already inside the margin: now
    assert refresh_delay(1000.0, 1600.0, 2000.0) == 0.0  # expired: now


def test_token_times_read_iat_and_exp_without_the_key() -> None:
    token = jwt.encode({"iat": 1700000000, "exp": 1700000600, "sub": "x"}, "some-secret-0123456789abcdef0123",
                       algorithm="HS256")
    assert token_times(token) == (1700000000.0, 1700000600.0)
    for bad in ("", "abc", "a.b.c", "a." + base64.urlsafe_b64encode(b'{"iat": 1}').decode().rstrip("=") + ".c",
                "a." + base64.urlsafe_b64encode(b"[1, 2]").decode() + ".c"):
        assert token_times(bad) is None


def test_events_are_found_by_class_or_name() -> None:
    assert ev.event_type("track_subscribed") is TrackSubscribed
    assert ev.event_type(DataReceived) is DataReceived
    assert {cls.NAME for cls in ev.EVENT_TYPES} == set(ev.EVENTS_BY_NAME)
    with pytest.raises(ValueError, match="unknown room event"):
        ev.event_type("track_subscribd")
    with pytest.raises(TypeError):
        ev.event_type(int)  # type: ignore[arg-type]


# --- signaling with a real server ------------------------------------------------------------------------------------


def test_presence_tracks_and_mute_events_between_two_rooms(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True, name="Alice")
        bob, b_log = await join(media_server, name, "bob", name="Bob")
        assert [p.identity for p in bob.participants.values()] == ["alice"]
        assert bob.name == name and bob.local_participant.identity == "bob"
        joined = await a_log.wait(ParticipantJoined)
        assert joined.participant.identity == "bob" and joined.participant.name == "Bob"

        pub = await alice.local_participant.publish_track(ToneTrack(440.0), name="voice")
        assert pub.sid is not None and pub.sid.startswith("TR_") and pub.source == "microphone"
        published = await b_log.wait(TrackPublished)
        assert (published.track.sid, published.track.kind, published.track.name) == (pub.sid, "audio", "voice")
        assert published.participant.identity == "alice"
        assert bob.participants[alice.local_participant.sid].tracks[pub.sid] is published.track

        await pub.mute()
        muted = await b_log.wait(TrackMuted)
        assert muted.track is published.track and muted.track.muted and not muted.by_server
        assert (await a_log.wait(TrackMuted)).participant is alice.local_participant
        await pub.unmute()
        assert not (await b_log.wait(TrackUnmuted)).track.muted

        receiving = await b_log.wait(TrackSubscribed)
        await alice.local_participant.unpublish_track(pub)
        gone = await b_log.wait(TrackUnpublished)
        assert gone.track.sid == published.track.sid and published.track.sid not in gone.participant.tracks
        ended = await b_log.wait(TrackUnsubscribed)
        assert ended.track is receiving.track and b_log.seen.index(ended) < b_log.seen.index(gone)
        assert alice.local_participant.publications == {} and pub.sid is None

        await alice.disconnect()
        left = await b_log.wait(ParticipantLeft)
        assert left.participant.identity == "alice" and left.reason == "left"
        assert bob.participants == {}
        assert (await a_log.wait(Disconnected)).reason == "client_initiated"
        await bob.disconnect()

    run(scenario())


def test_server_mute_reaches_the_publisher_and_stops_its_sending(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True)
        pub = await alice.local_participant.publish_track(ToneTrack(300.0))
        response = await asyncio.to_thread(
            media_server.http.post, f"/v1/rooms/{name}/participants/alice/tracks/{pub.sid}/mute", json={"muted": True})
        assert response.status_code == 200, response.text
        muted = await a_log.wait(TrackMuted)
        assert muted.by_server and muted.track is pub and pub.muted and not pub.sending
        await asyncio.to_thread(
            media_server.http.post, f"/v1/rooms/{name}/participants/alice/tracks/{pub.sid}/mute", json={"muted": False})
        assert (await a_log.wait(TrackUnmuted)).by_server
        assert not pub.muted and pub.sending
        await alice.disconnect()

    run(scenario())


def test_data_messages_to_the_room_and_to_one_identity(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True)
        bob, b_log = await join(media_server, name, "bob")
        carol, c_log = await join(media_server, name, "carol", publish_data=False)
        await alice.local_participant.send_data("hello everyone", topic="chat")
        for log in (b_log, c_log):
            got = await log.wait(DataReceived)
            assert (got.payload, got.topic, got.identity) == ("hello everyone", "chat", "alice")
            assert got.participant is not None and got.participant.identity == "alice"
        await bob.local_participant.send_data("only for carol é", to=["carol"])
        got = await c_log.wait(DataReceived, lambda e: e.identity == "bob")
        assert got.payload == "only for carol é" and got.topic == ""
        await bob.local_participant.send_data("marker")
        await a_log.wait(DataReceived, lambda e: e.payload == "marker")
        assert [e.payload for e in a_log.of(DataReceived)] == ["marker"]  # not the one for carol
        assert all(e.identity != "bob" for e in b_log.of(DataReceived))  # never your own message back
        with pytest.raises(ValueError, match="16384 bytes"):
            await alice.local_participant.send_data("x" * 16385)
        with pytest.raises(RequestError) as refused:
            await carol.local_participant.send_data("not allowed")
        assert refused.value.code == "not_allowed"
        for room in (alice, bob, carol):
            await room.disconnect()

    run(scenario())


def test_refused_calls_raise_request_error_with_the_server_code(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True)
        viewer, v_log = await join(media_server, name, "viewer", publish=False)
        with pytest.raises(RequestError) as refused:
            await viewer.local_participant.publish_track(ToneTrack())
        assert refused.value.code == "not_allowed"
        assert viewer.local_participant.publications == {}
        with pytest.raises(RequestError) as missing:
            await viewer.subscribe("TR_nosuchtrack")
        assert missing.value.code == "track_not_found"
        assert not v_log.of(ev.Error)  # a call's error goes to the caller, not to the event stream
        pub = await alice.local_participant.publish_track(ToneTrack())  # the connection still works
        assert pub.sid is not None
        for room in (alice, viewer):
            await room.disconnect()

    run(scenario())


def test_join_refusals_and_an_unreachable_server_raise(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        with pytest.raises(JoinError) as no_room:
            await join(media_server, room_name(), "guest")
        assert no_room.value.code == "room_not_found"
        with pytest.raises(JoinError) as forged:
            await Room.connect(media_server.url, "a.b.c", host_addresses=LOOPBACK)
        assert forged.value.code == "invalid_token"
        token = media_server.token(room_name(), "x", host=True)["access_token"]
        with pytest.raises(OSError):
            await Room.connect("http://127.0.0.1:9", token, host_addresses=LOOPBACK, timeout=3)

    run(scenario())


def test_a_failing_callback_is_logged_and_the_room_keeps_going(media_server: ServerProcess,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True)

        def broken(event: ParticipantJoined) -> None:
            raise RuntimeError("bug in a user's callback")

        async def broken_later(event: ParticipantJoined) -> None:
            raise RuntimeError("bug in a user's coroutine callback")

        alice.on(ParticipantJoined, broken)
        alice.on("participant_joined", broken_later)
        bob, _ = await join(media_server, name, "bob")
        await a_log.wait(ParticipantJoined)
        await bob.local_participant.send_data("still alive")
        assert (await a_log.wait(DataReceived)).payload == "still alive"
        assert alice.connection_state == "connected"
        for room in (alice, bob):
            await room.disconnect()

    with caplog.at_level("ERROR", logger="tvapp.client.room"):
        run(scenario())
    messages = " ".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "bug in a user's callback" in messages and "bug in a user's coroutine callback" in messages


def test_events_iterator_replays_from_connect_and_ends_at_disconnect(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, _ = await join(media_server, name, "alice", host=True)
        bob, _ = await join(media_server, name, "bob")
        await bob.disconnect()
        await asyncio.sleep(0.3)
        seen: list[str] = []

        async def read() -> None:
            async for event in alice.events():
                seen.append(event.NAME)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.2)
        await alice.disconnect()
        await asyncio.wait_for(reader, 5)
        assert seen == ["connected", "participant_joined", "participant_left", "disconnected"]

    run(scenario())


def test_removed_by_the_host_ends_the_room_without_reconnecting(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, _ = await join(media_server, name, "alice", host=True)
        bob, b_log = await join(media_server, name, "bob", refresh=True)
        response = await asyncio.to_thread(media_server.http.delete, f"/v1/rooms/{name}/participants/bob")
        assert response.status_code == 204
        assert (await b_log.wait(Disconnected)).reason == "removed"
        assert not b_log.of(Reconnecting) and bob.connection_state == "disconnected"
        await alice.disconnect()

    run(scenario())


def test_replaced_and_completed_end_the_room_without_reconnecting(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        host, h_log = await join(media_server, name, "host", host=True)
        first, f_log = await join(media_server, name, "alice", refresh=True)
        second, s_log = await join(media_server, name, "alice")
        assert (await f_log.wait(Disconnected)).reason == "replaced"
        assert [e.code for e in f_log.of(ev.Error)] == ["replaced"] and not f_log.of(Reconnecting)
        response = await asyncio.to_thread(media_server.http.post, f"/v1/rooms/{name}/complete")
        assert response.status_code == 200, response.text
        for log in (h_log, s_log):
            assert (await log.wait(Disconnected)).reason == "room_completed"
            assert not log.of(Reconnecting)
        assert first.connection_state == second.connection_state == host.connection_state == "disconnected"

    run(scenario())


def test_the_access_token_is_refreshed_before_it_expires(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True, ttl=3, refresh=True)
        first_access, first_refresh = alice.access_token, alice.refresh_token
        first = token_times(first_access)
        assert first is not None
        # renewed before the first token expires
        await wait_until_async(lambda: alice.access_token != first_access, first[1] - time.time(), "the refresh")
        assert alice.access_token != first_access and alice.refresh_token != first_refresh
        renewed = token_times(alice.access_token)
        assert renewed is not None and renewed[1] > first[1]
        # the renewed token is a valid access token of the same identity: the server accepts it for a join
        claims = json.loads(base64.urlsafe_b64decode(alice.access_token.split(".")[1] + "=="))
        assert claims["sub"] == "alice" and claims["typ"] == "access"
        assert not a_log.of(ev.Error)
        await alice.disconnect()

    run(scenario())


def test_a_cut_connection_resumes_the_same_participant_and_the_others_see_it_reconnect(
        media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        proxy = CuttableProxy(int(media_server.url.rsplit(":", 1)[1]))
        url = await proxy.start()
        host, h_log = await join(media_server, name, "host", host=True)
        alice, a_log = await join(media_server, name, "alice", url=url, ttl=2, refresh=True)
        first_access = alice.access_token
        pub = await alice.local_participant.publish_track(ToneTrack(), name="voice")
        old_sid, old_participant = pub.sid, alice.local_participant.sid
        await h_log.wait(TrackPublished)
        await asyncio.sleep(2.5)  # the token alice joined with has expired: the resume needs the refreshed one
        assert alice.access_token != first_access
        proxy.cut()
        assert (await a_log.wait(Reconnecting)).reason == "signal"
        back = await a_log.wait(Reconnected)
        assert (back.reason, back.resumed) == ("signal", True)
        assert alice.connection_state == "connected"
        seen = await h_log.wait(ParticipantReconnecting)
        assert seen.participant.sid == old_participant and seen.cause == "signal"
        assert (await h_log.wait(ParticipantReconnected)).participant.sid == old_participant
        assert not h_log.of(ParticipantLeft) and len(h_log.of(ParticipantJoined)) == 1  # only its first join
        assert alice.local_participant.sid == old_participant and pub.sid == old_sid  # nothing republished
        assert [p.identity for p in alice.participants.values()] == ["host"]
        await host.local_participant.send_data("welcome back")
        assert (await a_log.wait(DataReceived)).payload == "welcome back"
        assert not a_log.of(Disconnected)
        for room in (alice, host):
            await room.disconnect()
        await proxy.close()

    run(scenario())


def test_after_the_grace_window_the_room_rejoins_afresh_with_a_refreshed_token_and_republishes(
        make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_MEDIA_HOST_ADDRESSES="127.0.0.1", TVAPP_SIGNAL_RECONNECT_GRACE="1")

    async def scenario() -> None:
        name = room_name()
        proxy = CuttableProxy(int(srv.url.rsplit(":", 1)[1]))
        url = await proxy.start()
        host, h_log = await join(srv, name, "host", host=True)
        alice, a_log = await join(srv, name, "alice", url=url, ttl=2, refresh=True)
        pub = await alice.local_participant.publish_track(ToneTrack(), name="voice")
        old_sid, old_participant = pub.sid, alice.local_participant.sid
        await h_log.wait(TrackPublished)
        await asyncio.sleep(2.5)
        proxy.refusing = True
        proxy.cut()
        await a_log.wait(Reconnecting)
        left = await h_log.wait(ParticipantLeft, timeout=6)
        assert (left.participant.sid, left.reason) == (old_participant, "reconnect_timeout")
        proxy.refusing = False
        back = await a_log.wait(Reconnected, timeout=10)
        assert (back.reason, back.resumed) == ("signal", False)
        joined = await h_log.wait(ParticipantJoined, lambda e: e.participant.sid != old_participant)
        assert joined.participant.identity == "alice" and joined.participant.sid == alice.local_participant.sid
        again = await h_log.wait(TrackPublished, lambda e: e.participant.identity == "alice" and e.track.sid != old_sid)
        assert again.track.name == "voice"
        await wait_until_async(lambda: pub.sid == again.track.sid, timeout=5)
        for room in (alice, host):
            await room.disconnect()
        await proxy.close()

    run(scenario())


def test_reconnecting_gives_up_after_the_window(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        proxy = CuttableProxy(int(media_server.url.rsplit(":", 1)[1]))
        url = await proxy.start()
        alice, a_log = await join(media_server, name, "alice", host=True, url=url, reconnect_window=1.5)
        proxy.refusing = True
        proxy.cut()
        await a_log.wait(Reconnecting)
        started = time.monotonic()
        assert (await a_log.wait(Disconnected, timeout=10)).reason == "reconnect_failed"
        assert 1.0 <= time.monotonic() - started <= 4.0
        assert alice.connection_state == "disconnected"
        with pytest.raises(ConnectionError):
            await alice.local_participant.send_data("too late")
        await proxy.close()

    run(scenario())


# --- media through the SFU ------------------------------------------------------------------------------------------


async def frames_from(track: RemoteTrack | Any, count: int, timeout: float = 10.0) -> list[Any]:
    """Return the next `count` frames of a track."""
    async with asyncio.timeout(timeout):
        return [await track.recv() for _ in range(count)]


async def frames_during(track: RemoteTrack | Any, seconds: float) -> list[Any]:
    """Return the frames a track delivers within `seconds`."""
    frames: list[Any] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                frames.append(await track.recv())
    return frames


def counters(frames: list[av.VideoFrame]) -> list[int]:
    """Return the stamped frame counters that could be read."""
    stamps = [read_stamp(frame.to_ndarray(format="rgb24")) for frame in frames]
    return [stamp[0] for stamp in stamps if stamp is not None]


async def packets_received(room: Room, kind: str) -> int:
    """Return how many RTP packets of `kind` the room's peer connection has received."""
    report = await room.get_stats()
    return sum(getattr(s, "packetsReceived", 0) for s in report.values()
               if s.type == "inbound-rtp" and getattr(s, "kind", None) == kind)


async def video_bitrate(room: Room, seconds: float) -> float:
    """Return the bits per second of video the room sends over the next `seconds`."""

    async def sent() -> int:
        report = await room.get_stats()
        return sum(getattr(s, "bytesSent", 0) for s in report.values()
                   if s.type == "outbound-rtp" and getattr(s, "kind", None) == "video")

    before = await sent()
    await asyncio.sleep(seconds)
    return (await sent() - before) * 8 / seconds


def subscribed(kind: str, identity: str | None = None) -> Callable[[TrackSubscribed], bool]:
    return lambda e: e.track.kind == kind and (identity is None or e.participant.identity == identity)


def test_two_rooms_exchange_stamped_video_and_a_tone(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True)
        bob, b_log = await join(media_server, name, "bob")
        sources = []
        for room, hz in ((alice, 440.0), (bob, 660.0)):
            video, audio = TestPatternTrack(320, 240, 30), ToneTrack(hz)
            sources += [video, audio]
            await room.local_participant.publish_track(video, source="camera")
            await room.local_participant.publish_track(audio, source="microphone")
        for log, sender, hz in ((b_log, "alice", 440.0), (a_log, "bob", 660.0)):
            video_sub = await log.wait(TrackSubscribed, subscribed("video", sender))
            assert video_sub.publication.source == "camera" and video_sub.publication.track is video_sub.track
            frames = await frames_from(video_sub.track, 30)
            assert (frames[-1].width, frames[-1].height) == (320, 240)
            seen = counters(frames)
            assert len(seen) >= 27, seen
            assert all(b > a for a, b in zip(seen, seen[1:])), seen
            assert seen[-1] - seen[0] >= 25
            audio_sub = await log.wait(TrackSubscribed, subscribed("audio", sender))
            audio_frames = (await frames_from(audio_sub.track, 75))[25:]  # let Opus settle
            frequency = dominant_frequency(audio_samples(audio_frames), audio_frames[0].sample_rate)
            assert abs(frequency - hz) < 3, frequency
        for room in (alice, bob):
            await room.disconnect()
        for source in sources:
            source.stop()

    run(scenario())


def test_a_late_joiner_gets_video_within_a_second(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, _ = await join(media_server, name, "alice", host=True)
        pub = await alice.local_participant.set_camera_enabled(True)
        assert pub is not None and pub.source == "camera"
        await pub.set_video_format(320, 240, 30)
        await asyncio.sleep(1.5)  # well inside the 4 s keyframe interval: the SFU must ask for a keyframe
        started = time.monotonic()
        carol, c_log = await join(media_server, name, "carol")
        sub = await c_log.wait(TrackSubscribed, subscribed("video"))
        first = (await frames_from(sub.track, 1))[0]
        elapsed = time.monotonic() - started
        assert counters([first]), "the first frame is whole (decoded from a keyframe)"
        assert elapsed < 1.0, elapsed
        for room in (alice, carol):
            await room.disconnect()

    run(scenario())


def test_unsubscribe_stops_the_media_and_subscribe_brings_it_back(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, _ = await join(media_server, name, "alice", host=True)
        bob, b_log = await join(media_server, name, "bob")
        source = TestPatternTrack(320, 240, 30)
        await alice.local_participant.publish_track(source)
        first = await b_log.wait(TrackSubscribed, subscribed("video"))
        before = counters(await frames_from(first.track, 10))
        await bob.unsubscribe(first.track.sid)
        ended = await b_log.wait(TrackUnsubscribed)
        assert ended.track is first.track and not ended.publication.subscribed
        with pytest.raises(MediaStreamError):
            for _ in range(100):
                await asyncio.wait_for(first.track.recv(), 2)
        await asyncio.sleep(0.5)
        packets = await packets_received(bob, "video")
        await asyncio.sleep(1.0)
        assert await packets_received(bob, "video") - packets <= 2  # nothing arrives while unsubscribed
        assert len(b_log.of(TrackSubscribed)) == 1
        await bob.subscribe(first.track.sid)
        again = await b_log.wait(TrackSubscribed, lambda e: e.track is not first.track)
        assert again.publication is first.publication and first.publication.track is again.track
        after = counters(await frames_from(again.track, 10))
        assert after and before and after[0] > before[-1]
        for room in (alice, bob):
            await room.disconnect()
        source.stop()

    run(scenario())


def test_camera_and_microphone_off_stop_sending_and_on_resumes(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, _ = await join(media_server, name, "alice", host=True)
        bob, b_log = await join(media_server, name, "bob")
        me = alice.local_participant
        cam = await me.set_camera_enabled(True)
        mic = await me.set_microphone_enabled(True)
        assert cam is not None and mic is not None and mic.source == "microphone" and mic.kind == "audio"
        video = await b_log.wait(TrackSubscribed, subscribed("video"))
        audio = await b_log.wait(TrackSubscribed, subscribed("audio"))
        tone = (await frames_from(audio.track, 60))[20:]
        assert abs(dominant_frequency(audio_samples(tone), tone[0].sample_rate) - 440.0) < 3
        before = counters(await frames_from(video.track, 5))

        await me.set_camera_enabled(False)
        await me.set_microphone_enabled(False)
        muted = [await b_log.wait(TrackMuted, lambda e, k=k: e.track.kind == k) for k in ("video", "audio")]
        assert all(e.track.muted and not e.by_server for e in muted)
        assert cam.muted and mic.muted
        await frames_during(video.track, 0.5)  # what was on its way
        await frames_during(audio.track, 0.01)
        counts = {kind: await packets_received(bob, kind) for kind in ("video", "audio")}
        assert await frames_during(video.track, 1.0) == []
        for kind in ("video", "audio"):
            assert await packets_received(bob, kind) - counts[kind] <= 2, kind

        await me.set_camera_enabled(True)
        await me.set_microphone_enabled(True)
        await b_log.wait(TrackUnmuted, lambda e: e.track.kind == "video")
        resumed = counters(await frames_from(video.track, 5, timeout=2.0))
        assert resumed and before and resumed[0] > before[-1]
        assert await me.set_camera_enabled(True) is cam  # the same publication, not a second camera
        assert len(me.publications) == 2
        for room in (alice, bob):
            await room.disconnect()
        assert me.publications and all(p.track.readyState == "ended" for p in me.publications.values())

    run(scenario())


def test_video_format_and_bitrate_follow_the_publication_settings(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, _ = await join(media_server, name, "alice", host=True)
        bob, b_log = await join(media_server, name, "bob")
        source = TestPatternTrack(640, 480, 30)
        pub = await alice.local_participant.publish_track(source)
        sub = await b_log.wait(TrackSubscribed, subscribed("video"))
        frames = await frames_from(sub.track, 5)
        assert (frames[-1].width, frames[-1].height) == (640, 480)
        full = await video_bitrate(alice, 2.0)
        pub.set_max_bitrate(50_000)
        await asyncio.sleep(1.0)  # the encoder restarts with a keyframe
        low = await video_bitrate(alice, 2.0)
        assert low < 0.9 * full, (low, full)  # the pattern is simple: ~210 kbps at most, ~160 at the lowest
        await pub.set_video_format(320, 240, 10)
        async with asyncio.timeout(5):
            while ((frame := await sub.track.recv()).width, frame.height) != (320, 240):
                pass
        rate = len(await frames_during(sub.track, 2.0)) / 2.0
        assert 7 <= rate <= 13, rate
        with pytest.raises(ValueError):
            await pub.set_video_format(321, 240, 10)
        with pytest.raises(ValueError):
            pub.set_max_bitrate(10)
        audio = await alice.local_participant.publish_track(ToneTrack())
        with pytest.raises(ValueError):
            audio.set_max_bitrate(64_000)
        for room in (alice, bob):
            await room.disconnect()
        source.stop()

    run(scenario())


def test_camera_preview_shows_frames_without_publishing(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, _ = await join(media_server, name, "alice", host=True)
        bob, b_log = await join(media_server, name, "bob")
        view = alice.local_participant.preview(width=320, height=240, fps=15)
        seen = counters(await frames_from(view, 8))
        assert len(seen) == 8 and all(b > a for a, b in zip(seen, seen[1:]))
        assert alice.local_participant.publications == {}
        await asyncio.sleep(0.3)
        assert not b_log.of(TrackPublished)
        await alice.local_participant.set_camera_enabled(True)  # publishes the previewed camera
        sub = await b_log.wait(TrackSubscribed, subscribed("video"))
        remote = counters(await frames_from(sub.track, 5))
        local = counters(await frames_from(view, 5))
        assert remote and local and abs(remote[-1] - local[-1]) < 30  # one camera, two consumers
        for room in (alice, bob):
            await room.disconnect()
        assert view.readyState == "ended"

    run(scenario())


def test_without_auto_subscribe_media_comes_only_on_request(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, _ = await join(media_server, name, "alice", host=True)
        tone = ToneTrack(523.0)
        pub = await alice.local_participant.publish_track(tone)  # published before bob joins
        bob, b_log = await join(media_server, name, "bob", auto_subscribe=False)
        published = bob.participants[alice.local_participant.sid].tracks[pub.sid]
        later = await alice.local_participant.set_camera_enabled(True)  # and one after
        assert later is not None
        await b_log.wait(TrackPublished, lambda e: e.track.sid == later.sid)
        await asyncio.sleep(1.0)
        assert not b_log.of(TrackSubscribed) and not published.subscribed
        await bob.subscribe(published.sid)
        sub = await b_log.wait(TrackSubscribed)
        assert sub.publication is published and sub.track.sid == pub.sid
        frames = (await frames_from(sub.track, 60))[20:]
        assert abs(dominant_frequency(audio_samples(frames), frames[0].sample_rate) - 523.0) < 3
        for room in (alice, bob):
            await room.disconnect()
        tone.stop()

    run(scenario())


def test_the_one_speaking_becomes_the_dominant_speaker(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True)
        bob, b_log = await join(media_server, name, "bob")
        await alice.local_participant.set_microphone_enabled(True)
        for log in (a_log, b_log):
            change = await log.wait(ActiveSpeakersChanged, lambda e: e.dominant is not None)
            assert change.dominant is not None and change.dominant.identity == "alice"
            assert change.speakers and change.speakers[0].identity == "alice" and 0 < change.speakers[0].level <= 1
        assert (await a_log.wait(ActiveSpeakersChanged, lambda e: e.dominant is not None)).dominant \
            is alice.local_participant
        for room in (alice, bob):
            await room.disconnect()

    run(scenario())


def test_a_signaling_blip_never_stops_the_media_the_others_receive(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        proxy = CuttableProxy(int(media_server.url.rsplit(":", 1)[1]))
        url = await proxy.start()
        host, h_log = await join(media_server, name, "host", host=True)
        alice, a_log = await join(media_server, name, "alice", url=url)
        source = TestPatternTrack(320, 240, 30)
        await alice.local_participant.publish_track(source)
        first = await h_log.wait(TrackSubscribed, subscribed("video"))
        before = counters(await frames_from(first.track, 5))
        proxy.cut()
        await a_log.wait(Reconnected)
        after = counters(await frames_from(first.track, 5))  # the same subscription: it never ended
        assert before and after and after[0] > before[-1]
        assert not h_log.of(TrackUnsubscribed)
        assert source.readyState == "live"
        for room in (alice, host):
            await room.disconnect()
        await proxy.close()
        source.stop()

    run(scenario())
