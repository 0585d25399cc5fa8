"""Signaling against a real `tvapp serve`: join, presence, tracks, ping, leave, the last-slot race,
identity takeover, the idle drop and hidden participants."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tvapp.client.signaling import JoinError, SignalClient, signal_url
from tvapp.protocol.messages import (
    Error,
    Leave,
    Mute,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnecting,
    Publish,
    TrackMuted,
    TrackPublished,
    TrackUnmuted,
    TrackUnpublished,
    Unpublish,
)
from tvapp.testing.aio import run
from tvapp.testing.rest import create_room, room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.signal_clients import connect, messages_within


async def close_all(*clients: SignalClient) -> None:
    for client in clients:
        await client.close()


def test_joined_describes_room_self_grants_and_the_others_with_their_tracks(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True, name="Alice")
        await alice.send(Publish(cid="mic", kind="audio", source="microphone", name="mic"))
        published = await alice.wait_for(TrackPublished)
        before = time.time()
        bob = await connect(server, room, "bob", publish=False, publish_data=False, name="Bob")
        after = time.time()
        joined = bob.joined
        assert joined.room.name == room
        assert joined.room.sid.startswith("RM_") and joined.room.sid == alice.joined.room.sid
        assert joined.room.status == "in-progress"
        assert joined.room.max_participants == 6
        assert joined.participant.identity == "bob" and joined.participant.name == "Bob"
        assert joined.participant.sid.startswith("PA_") and joined.participant.tracks == ()
        g = joined.grants
        assert (g.room, g.join, g.publish, g.subscribe, g.publish_data, g.host, g.hidden) == (
            room, True, False, True, False, False, False)
        assert alice.joined.grants.host is True and alice.joined.grants.publish is True
        assert [p.identity for p in joined.participants] == ["alice"]
        (other,) = joined.participants
        assert other.sid == alice.joined.participant.sid and other.name == "Alice"
        assert other.tracks == (published.track,)
        assert before - 1 <= joined.server_time <= after + 1
        assert joined.ping_interval == 10.0 and joined.idle_timeout == 30.0
        assert alice.joined.participants == ()
        await close_all(alice, bob)

    run(scenario())


def test_others_see_participants_join_leave_and_disconnect(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True)
        bob = await connect(server, room, "bob")
        seen = await alice.wait_for(ParticipantJoined)
        assert seen.participant.identity == "bob" and seen.participant.sid == bob.joined.participant.sid
        carol = await connect(server, room, "carol")
        for client in (alice, bob):
            assert (await client.wait_for(ParticipantJoined)).participant.identity == "carol"

        await bob.send(Leave())
        assert await bob.wait_closed() == (1000, "left")
        for client in (alice, carol):
            left = await client.wait_for(ParticipantLeft)
            assert (left.identity, left.participant_sid, left.reason) == ("bob", bob.joined.participant.sid, "left")

        await carol.close()  # no leave: the server sees the socket go
        left = await alice.wait_for(ParticipantLeft)
        assert (left.identity, left.reason) == ("carol", "disconnected")
        assert not [m for m in await messages_within(alice) if isinstance(m, ParticipantLeft)]
        await alice.close()

    run(scenario())


def test_publish_unpublish_and_self_mute_reach_everyone(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True)
        bob = await connect(server, room, "bob")
        carol = await connect(server, room, "carol")
        await messages_within(alice)
        await messages_within(bob)

        await bob.send(Publish(cid="cam-1", kind="video", source="camera", name="front"))
        own = await bob.wait_for(TrackPublished)
        assert own.cid == "cam-1" and own.participant_sid == bob.joined.participant.sid
        assert (own.track.kind, own.track.source, own.track.name) == ("video", "camera", "front")
        assert own.track.muted is False
        assert own.track.sid.startswith("TR_")
        for other in (alice, carol):
            seen = await other.wait_for(TrackPublished)
            assert seen.cid is None and seen.track == own.track and seen.participant_sid == own.participant_sid

        await bob.send(Mute(track_sid=own.track.sid, muted=True))
        for client in (alice, bob, carol):
            muted = await client.wait_for(TrackMuted)
            assert (muted.track_sid, muted.participant_sid, muted.by_server) == (
                own.track.sid, bob.joined.participant.sid, False)
        listed = server.http.get(f"/v1/rooms/{room}/participants/bob").json()
        assert listed["tracks"][0]["muted"] is True

        await bob.send(Mute(track_sid=own.track.sid, muted=False))
        for client in (alice, bob, carol):
            unmuted = await client.wait_for(TrackUnmuted)
            assert unmuted.track_sid == own.track.sid and unmuted.by_server is False

        await bob.send(Unpublish(track_sid=own.track.sid))
        for client in (alice, bob, carol):
            gone = await client.wait_for(TrackUnpublished)
            assert (gone.track_sid, gone.participant_sid) == (own.track.sid, bob.joined.participant.sid)
        assert server.http.get(f"/v1/rooms/{room}/participants/bob").json()["tracks"] == []

        await alice.send(Mute(track_sid=own.track.sid, muted=True))  # not hers (and gone): refused
        error = await alice.wait_for(Error)
        assert error.code == "track_not_found"
        await close_all(alice, bob, carol)

    run(scenario())


def test_ping_gets_pong_with_t0_echoed_and_server_times_in_order(server: ServerProcess) -> None:
    async def scenario() -> None:
        alice = await connect(server, room_name(), "alice", host=True, heartbeat=False)
        before = time.time()
        pong = await alice.ping()
        after = time.time()
        assert pong.t0 is not None and before <= pong.t0 <= after
        assert pong.t1 <= pong.t2
        assert before - 1 <= pong.t1 <= after + 1
        await alice.close()

    run(scenario())


async def race_for_last_slot(srv: ServerProcess, max_participants: int, racers: int) -> None:
    """Fill a room to one below its limit, then let `racers` clients race for the last slot."""
    room = create_room(srv, max_participants=max_participants)
    present = [await connect(srv, room["name"], f"in-{i}") for i in range(max_participants - 1)]
    tokens = [srv.token(room["name"], f"racer-{i}")["access_token"] for i in range(racers)]
    results = await asyncio.gather(*(SignalClient.connect(srv.url, t) for t in tokens), return_exceptions=True)
    winners = [r for r in results if isinstance(r, SignalClient)]
    losers = [r for r in results if not isinstance(r, SignalClient)]
    assert len(winners) == 1, results
    assert all(isinstance(r, JoinError) and r.code == "room_full" for r in losers), losers
    assert len(losers) == racers - 1
    listed = srv.http.get(f"/v1/rooms/{room['sid']}/participants").json()
    assert len(listed) == max_participants
    assert srv.http.get(f"/v1/rooms/{room['sid']}").json()["participant_count"] == max_participants
    await close_all(*present, *winners)


@pytest.mark.parametrize("max_participants", [2, 6])
def test_racing_joins_for_the_last_slot_admit_exactly_one(server: ServerProcess, max_participants: int) -> None:
    async def scenario() -> None:
        for _ in range(4):
            await race_for_last_slot(server, max_participants, racers=10)

    run(scenario())


def test_same_identity_joining_again_replaces_the_old_connection(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        watcher = await connect(server, room, "watcher", host=True)
        first = await connect(server, room, "alice")
        await watcher.wait_for(ParticipantJoined)
        second = await connect(server, room, "alice")

        error = await first.wait_for(Error)
        assert error.code == "replaced"
        assert await first.wait_closed() == (1000, "replaced")

        left = await watcher.wait_for(ParticipantLeft)
        assert (left.identity, left.participant_sid, left.reason) == ("alice", first.joined.participant.sid, "replaced")
        joined = await watcher.wait_for(ParticipantJoined)
        assert joined.participant.identity == "alice" and joined.participant.sid == second.joined.participant.sid
        assert second.joined.participant.sid != first.joined.participant.sid
        assert [p.identity for p in second.joined.participants] == ["watcher"]

        listed = server.http.get(f"/v1/rooms/{room}/participants").json()
        assert sorted(p["identity"] for p in listed) == ["alice", "watcher"]
        assert [p["sid"] for p in listed if p["identity"] == "alice"] == [second.joined.participant.sid]
        assert server.http.get(f"/v1/rooms/{room}").json()["participant_count"] == 2

        await second.send(Publish(cid="c", kind="audio", source="microphone"))
        assert (await second.wait_for(TrackPublished)).cid == "c"
        assert (await watcher.wait_for(TrackPublished)).participant_sid == second.joined.participant.sid
        await second.ping()
        sessions = server.http.get(f"/v1/rooms/{room}/sessions").json()
        old = next(s for s in sessions if s["sid"] == first.joined.participant.sid)
        assert old["leave_reason"] == "replaced" and old["left_at"] is not None
        await close_all(watcher, first, second)

    run(scenario())


def test_a_silent_client_is_dropped_for_idleness_and_a_pinging_one_stays(
        make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_SIGNAL_IDLE_TIMEOUT="1", TVAPP_SIGNAL_PING_INTERVAL="0.3",
                      TVAPP_SIGNAL_RECONNECT_GRACE="1")

    async def scenario() -> None:
        room = room_name()
        pinger = await connect(srv, room, "pinger", host=True)  # heartbeat every ping_interval = 0.3 s
        assert pinger.joined.idle_timeout == 1.0 and pinger.joined.ping_interval == 0.3
        silent = await connect(srv, room, "silent", heartbeat=False)
        start = time.monotonic()
        code, reason = await silent.wait_closed(timeout=4)
        waited = time.monotonic() - start
        assert (code, reason) == (1001, "idle timeout")
        assert 0.8 <= waited <= 2.0, waited
        # Idle is a drop, not a leave: reconnecting first, gone once the grace window (1 s) passes too.
        reconnecting = await pinger.wait_for(ParticipantReconnecting, timeout=2)
        assert (reconnecting.identity, reconnecting.cause) == ("silent", "signal")
        left = await pinger.wait_for(ParticipantLeft, timeout=3)
        assert (left.identity, left.reason) == ("silent", "reconnect_timeout")

        await asyncio.sleep(1.5)  # well past the idle timeout since the join
        await pinger.ping()
        listed = srv.http.get(f"/v1/rooms/{room}/participants").json()
        assert [p["identity"] for p in listed] == ["pinger"]
        sessions = srv.http.get(f"/v1/rooms/{room}/sessions").json()
        assert [s["leave_reason"] for s in sessions if s["identity"] == "silent"] == ["reconnect_timeout"]
        await pinger.close()

    run(scenario())


def test_hidden_participants_are_not_listed_and_do_not_count(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = create_room(server, max_participants=2)
        name = room["name"]
        monitor = await connect(server, name, "monitor", hidden=True)
        alice = await connect(server, name, "alice")
        bob = await connect(server, name, "bob")  # two visible: the hidden one took no slot
        assert monitor.joined.grants.hidden is True
        assert [p.identity for p in bob.joined.participants] == ["alice"]
        assert [p.identity for p in alice.joined.participants] == []
        assert monitor.joined.participants == ()
        assert (await monitor.wait_for(ParticipantJoined)).participant.identity == "alice"

        with pytest.raises(JoinError) as full:
            await connect(server, name, "carol")
        assert full.value.code == "room_full"
        second_monitor = await connect(server, name, "monitor-2", hidden=True)  # hidden ones are never refused

        listed = server.http.get(f"/v1/rooms/{name}/participants").json()
        assert sorted(p["identity"] for p in listed) == ["alice", "bob"]
        assert server.http.get(f"/v1/rooms/{name}").json()["participant_count"] == 2

        await monitor.send(Leave())
        await monitor.wait_closed()
        await second_monitor.close()
        seen = await messages_within(alice, 0.5)
        assert all(isinstance(m, ParticipantJoined) and m.participant.identity == "bob" for m in seen), seen
        await close_all(alice, bob)

    run(scenario())


def test_refused_joins_get_an_error_code_and_close_1008(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        host = await connect(server, room, "host", host=True)
        with pytest.raises(JoinError) as refused:
            await SignalClient.connect(server.url, "not-a-token")
        assert refused.value.code == "invalid_token"
        with pytest.raises(JoinError) as refused:
            await connect(server, room, "lurker", join=False)
        assert refused.value.code == "not_allowed"

        async with ws_connect(signal_url(server.url)) as ws:
            await ws.send(json.dumps({"type": "ping", "v": 1}))
            error = json.loads(await ws.recv())
            assert (error["type"], error["code"]) == ("error", "bad_message")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008
        assert [p["identity"] for p in server.http.get(f"/v1/rooms/{room}/participants").json()] == ["host"]
        await host.close()

    run(scenario())
