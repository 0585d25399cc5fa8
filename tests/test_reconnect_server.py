"""Reconnection as a state against a real `tvapp serve`: a dropped websocket makes its participant `reconnecting`
(the others are told, its slot and tracks stay), a new connection with the resume token takes it over (same sid),
a replayed or foreign resume token is refused, and only past [signal] reconnect_grace do the others see it leave."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tvapp.client.signaling import JoinError, signal_url
from tvapp.protocol.messages import (
    Error,
    MediaRestart,
    Offer,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnected,
    ParticipantReconnecting,
    Publish,
    TrackPublished,
)
from tvapp.testing.aio import run
from tvapp.testing.rest import create_room, room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.signal_clients import connect, messages_within


@pytest.fixture(scope="module")
def grace_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with ServerProcess(tmp_path_factory.mktemp("grace"), env={"TVAPP_SIGNAL_RECONNECT_GRACE": "1.5"}) as srv:
        yield srv


def test_a_drop_is_reconnecting_and_the_resume_token_takes_the_same_participant_over(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True)
        bob = await connect(server, room, "bob")
        await alice.wait_for(ParticipantJoined)
        await bob.send(Publish(cid="mic", kind="audio", source="microphone", name="mic"))
        track = (await bob.wait_for(TrackPublished)).track
        await alice.wait_for(TrackPublished)
        first_token = bob.joined.resume_token
        assert first_token and len(first_token) >= 32
        bob.abort()  # the network drops: no close frame
        reconnecting = await alice.wait_for(ParticipantReconnecting)
        assert (reconnecting.participant_sid, reconnecting.identity, reconnecting.cause) == (
            bob.joined.participant.sid, "bob", "signal")
        listed = server.http.get(f"/v1/rooms/{room}/participants").json()
        assert [(p["identity"], p["reconnecting"]) for p in listed] == [("alice", False), ("bob", True)]  # kept

        back = await connect(server, room, "bob", resume_token=first_token)
        assert back.joined.resumed is True
        assert back.joined.participant.sid == bob.joined.participant.sid
        assert back.joined.participant.tracks == (track,)  # same publication, same sid
        assert [p.identity for p in back.joined.participants] == ["alice"]
        assert back.joined.resume_token and back.joined.resume_token != first_token
        reconnected = await alice.wait_for(ParticipantReconnected)
        assert reconnected.participant_sid == bob.joined.participant.sid
        listed = server.http.get(f"/v1/rooms/{room}/participants").json()
        assert [p["reconnecting"] for p in listed] == [False, False]
        assert not [m for m in await messages_within(alice, 0.5) if isinstance(m, (ParticipantLeft, ParticipantJoined))]

        # The token is used up: replaying it (even while bob is reconnecting again) is refused.
        back.abort()
        await alice.wait_for(ParticipantReconnecting)
        with pytest.raises(JoinError) as replayed:
            await connect(server, room, "bob", resume_token=first_token)
        assert replayed.value.code == "resume_refused"
        # Another identity's access token with bob's current resume token is refused too.
        with pytest.raises(JoinError) as foreign:
            await connect(server, room, "mallory", resume_token=back.joined.resume_token)
        assert foreign.value.code == "resume_refused"
        again = await connect(server, room, "bob", resume_token=back.joined.resume_token)
        assert again.joined.participant.sid == bob.joined.participant.sid
        await alice.wait_for(ParticipantReconnected)
        for client in (again, alice):
            await client.close()

    run(scenario())


def test_a_resume_takes_over_a_connection_the_server_still_thought_alive(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True)
        bob = await connect(server, room, "bob")
        await alice.wait_for(ParticipantJoined)
        newer = await connect(server, room, "bob", resume_token=bob.joined.resume_token)
        assert newer.joined.participant.sid == bob.joined.participant.sid
        assert await bob.wait_closed() == (1000, "resumed")
        seen = await messages_within(alice, 0.7)
        assert not [m for m in seen if isinstance(m, (ParticipantLeft, ParticipantJoined, ParticipantReconnecting))]
        for client in (newer, alice):
            await client.close()

    run(scenario())


def test_a_clean_close_is_a_leave_at_once(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True)
        bob = await connect(server, room, "bob")
        await alice.wait_for(ParticipantJoined)
        await bob.close()  # close frame 1000: the page went away on purpose
        left = await alice.wait_for(ParticipantLeft, timeout=2)
        assert (left.identity, left.reason) == ("bob", "disconnected")
        with pytest.raises(JoinError) as refused:
            await connect(server, room, "bob", resume_token=bob.joined.resume_token)
        assert refused.value.code == "resume_refused"
        await alice.close()

    run(scenario())


def test_past_the_grace_window_the_others_see_a_clean_leave_and_the_slot_is_held_until_then(
        grace_server: ServerProcess) -> None:
    async def scenario() -> None:
        room = create_room(grace_server, max_participants=2)["name"]
        alice = await connect(grace_server, room, "alice", host=True)
        bob = await connect(grace_server, room, "bob")
        await alice.wait_for(ParticipantJoined)
        bob.abort()
        await alice.wait_for(ParticipantReconnecting)
        dropped = time.monotonic()
        with pytest.raises(JoinError) as full:  # the reconnecting participant still holds its slot
            await connect(grace_server, room, "carol")
        assert full.value.code == "room_full"
        left = await alice.wait_for(ParticipantLeft, timeout=5)
        waited = time.monotonic() - dropped
        assert (left.identity, left.reason) == ("bob", "reconnect_timeout")
        assert 1.2 <= waited <= 3.0, waited
        with pytest.raises(JoinError) as late:
            await connect(grace_server, room, "bob", resume_token=bob.joined.resume_token)
        assert late.value.code == "resume_refused"
        carol = await connect(grace_server, room, "carol")  # the slot is free now
        sessions = grace_server.http.get(f"/v1/rooms/{room}/sessions").json()
        assert [s["leave_reason"] for s in sessions if s["identity"] == "bob"] == ["reconnect_timeout"]
        for client in (carol, alice):
            await client.close()

    run(scenario())


def test_a_resume_token_longer_than_the_limit_is_refused_as_a_bad_join(server: ServerProcess) -> None:
    async def scenario() -> None:
        token = server.token(room_name(), "alice", host=True)["access_token"]
        async with ws_connect(signal_url(server.url)) as ws:
            await ws.send(json.dumps({"type": "join", "v": 1, "token": token, "resume_token": "r" * 129}))
            error = json.loads(await ws.recv())
            assert error["type"] == "error" and error["code"] == "bad_message"
            assert "resume_token" in error["message"] and "rrrr" not in error["message"]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1008

    run(scenario())


def test_media_restart_is_a_fresh_offer_of_that_generation_rate_limited_and_tells_the_others(
        server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True)
        bob = await connect(server, room, "bob")
        await alice.wait_for(ParticipantJoined)
        await bob.send(Publish(cid="cam", kind="video", source="camera", name="cam"))
        track = (await bob.wait_for(TrackPublished)).track
        first = await bob.wait_for(Offer)
        assert first.generation == 0
        await bob.send(MediaRestart(generation=1))
        fresh = await bob.wait_for(Offer)
        assert fresh.generation == 1
        assert [(t.direction, t.track_sid, t.cid) for t in fresh.transceivers] == [("publish", track.sid, "cam")]
        seen = await alice.wait_for(ParticipantReconnecting)
        assert (seen.participant_sid, seen.cause) == (bob.joined.participant.sid, "media")
        await bob.send(MediaRestart(generation=2))  # again at once: refused
        refused = await bob.wait_for(Error)
        assert refused.code == "media_restart_too_soon"
        await bob.send(MediaRestart(generation=1))  # a generation already served: ignored, no error, no offer
        later = await messages_within(bob, 0.6)
        assert not [m for m in later if isinstance(m, (Error, Offer))], later
        await asyncio.sleep(0.5)  # a second after the first restart
        await bob.send(MediaRestart(generation=2))
        assert (await bob.wait_for(Offer)).generation == 2
        listed = server.http.get(f"/v1/rooms/{room}/participants").json()
        bob_listed = next(p for p in listed if p["identity"] == "bob")
        assert [t["sid"] for t in bob_listed["tracks"]] == [track.sid]  # same track sid throughout
        for client in (bob, alice):
            await client.close()

    run(scenario())


@pytest.mark.parametrize("value", ["0.5", "601", "soon"])
def test_a_reconnect_grace_out_of_range_is_refused_at_start(tmp_path: Path, value: str) -> None:
    done = subprocess.run([sys.executable, "-m", "tvapp", "serve", "--host", "127.0.0.1", "--port", "0", "--data",
                           str(tmp_path)], env={**os.environ, "TVAPP_SIGNAL_RECONNECT_GRACE": value},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "reconnect_grace" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
