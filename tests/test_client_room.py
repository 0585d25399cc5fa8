"""The SDK's Room against a real `tvapp serve`: presence, tracks, mute, data, calls refused by the server,
token refresh, reconnect through a TCP proxy that cuts connections, removal; and, through the SFU, two
rooms exchanging stamped video and a tone, a late joiner, unsubscribing, camera off/on, format changes."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import av
import jwt
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from tvapp.client import (
    ActiveSpeakersChanged,
    DataReceived,
    Disconnected,
    JoinError,
    ParticipantJoined,
    ParticipantLeft,
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
from tvapp.client.room import refresh_delay, token_times
from tvapp.client.sources import TestPatternTrack, ToneTrack
from tvapp.client.stamp import read_stamp
from tvapp.testing.media import dominant_frequency
from tvapp.testing.server import ServerProcess

E = TypeVar("E", bound=RoomEvent)
LOOPBACK = ["127.0.0.1"]


def run(coro: Coroutine[Any, Any, None], deadline: float = 90) -> None:
    """Run one test coroutine with an overall deadline."""
    asyncio.run(asyncio.wait_for(coro, deadline))


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose SFU offers only 127.0.0.1 as its ICE host address."""
    with ServerProcess(tmp_path_factory.mktemp("server"), env={"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}) as srv:
        yield srv


def room_name() -> str:
    return "room-" + uuid.uuid4().hex[:12]


class Recorder:
    """Every event a room emits after it is attached, with a way to wait for one."""

    def __init__(self, room: Room) -> None:
        self.seen: list[RoomEvent] = []
        self._new = asyncio.Event()
        room.on(RoomEvent, self._add)

    def _add(self, event: RoomEvent) -> None:
        self.seen.append(event)
        self._new.set()

    def of(self, cls: type[E]) -> list[E]:
        return [e for e in self.seen if isinstance(e, cls)]

    async def wait(self, cls: type[E], predicate: Callable[[E], bool] = lambda e: True, timeout: float = 10.0) -> E:
        """Return the first recorded event (past or future) of `cls` matching `predicate`."""
        index = 0
        async with asyncio.timeout(timeout):
            while True:
                while index < len(self.seen):
                    event = self.seen[index]
                    index += 1
                    if isinstance(event, cls) and predicate(event):
                        return event
                self._new.clear()
                await self._new.wait()


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

        await alice.local_participant.unpublish_track(pub)
        gone = await b_log.wait(TrackUnpublished)
        assert gone.track.sid == published.track.sid and published.track.sid not in gone.participant.tracks

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


def test_the_access_token_is_refreshed_before_it_expires(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        alice, a_log = await join(media_server, name, "alice", host=True, ttl=3, refresh=True)
        first_access, first_refresh = alice.access_token, alice.refresh_token
        first = token_times(first_access)
        assert first is not None
        await asyncio.sleep(first[1] - time.time())  # the first token has now expired
        assert alice.access_token != first_access and alice.refresh_token != first_refresh
        renewed = token_times(alice.access_token)
        assert renewed is not None and renewed[1] > first[1]
        # the renewed token is a valid access token of the same identity: the server accepts it for a join
        claims = json.loads(base64.urlsafe_b64decode(alice.access_token.split(".")[1] + "=="))
        assert claims["sub"] == "alice" and claims["typ"] == "access"
        assert not a_log.of(ev.Error)
        await alice.disconnect()

    run(scenario())


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of the server whose connections can be cut (a real network fault)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refusing = False
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Abort every connection going through the proxy."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def test_a_cut_connection_reconnects_with_a_refreshed_token_and_republishes(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        proxy = Proxy(int(media_server.url.rsplit(":", 1)[1]))
        url = await proxy.start()
        host, h_log = await join(media_server, name, "host", host=True)
        alice, a_log = await join(media_server, name, "alice", url=url, ttl=2, refresh=True)
        first_access = alice.access_token
        pub = await alice.local_participant.publish_track(ToneTrack(), name="voice")
        old_sid, old_participant = pub.sid, alice.local_participant.sid
        await h_log.wait(TrackPublished)
        await asyncio.sleep(2.5)  # the token alice joined with has expired: a rejoin needs the refreshed one
        assert alice.access_token != first_access
        proxy.cut()
        await a_log.wait(Reconnecting)
        await a_log.wait(Reconnected)
        assert alice.connection_state == "connected"
        left = await h_log.wait(ParticipantLeft)
        assert left.participant.sid == old_participant
        back = await h_log.wait(ParticipantJoined, lambda e: e.participant.sid != old_participant)
        assert back.participant.identity == "alice" and back.participant.sid == alice.local_participant.sid
        again = await h_log.wait(TrackPublished, lambda e: e.participant.identity == "alice" and e.track.sid != old_sid)
        assert again.track.name == "voice"
        for _ in range(50):
            if pub.sid is not None:
                break
            await asyncio.sleep(0.05)
        assert pub.sid == again.track.sid
        # the host is still known to alice, and data flows over the new connection
        assert [p.identity for p in alice.participants.values()] == ["host"]
        await host.local_participant.send_data("welcome back")
        assert (await a_log.wait(DataReceived)).payload == "welcome back"
        assert not a_log.of(Disconnected)
        for room in (alice, host):
            await room.disconnect()
        await proxy.close()

    run(scenario())


def test_reconnecting_gives_up_after_the_window(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        proxy = Proxy(int(media_server.url.rsplit(":", 1)[1]))
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
