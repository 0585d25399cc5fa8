"""Room-session actions and participant search against a real `tvapp serve`, with SDK participants.

mute stops the SFU forwarding the selected participants' audio (bare MediaPeers keep sending: what stops is
the SFU's doing) and tells everyone; unmute reaches the SDK as UnmuteRequested, declined unless the app
accepts; kick removes; end completes the room session. Bad input answers a JSON error with a fitting 4xx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest

from tvapp.client import Room, TrackMuted, TrackUnmuted, UnmuteRequested
from tvapp.client.rest import ApiError, RestClient
from tvapp.client.signaling import JoinError, SignalClient
from tvapp.client.sources import ToneTrack
from tvapp.protocol.messages import Removed, TrackPublished
from tvapp.protocol.messages import TrackMuted as TrackMutedMsg
from tvapp.rtc import internals
from tvapp.testing import aio
from tvapp.testing.media_peer import MediaPeer
from tvapp.testing.recorder import Recorder
from tvapp.testing.rest import media_token, new_room, room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async

LOOPBACK = ["127.0.0.1"]


def run(coro: Coroutine[Any, Any, None], deadline: float = 90) -> None:
    internals.set_host_addresses(LOOPBACK)
    try:
        aio.run(coro, deadline)
    finally:
        internals.set_host_addresses(None)


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def action(srv: ServerProcess, room: str, session: str, name: str, body: Any = None) -> httpx.Response:
    kwargs = {} if body is None else {"json": body}
    return srv.http.post(f"/v1/rooms/{room}/sessions/{session}/actions/{name}", **kwargs)


def own_track(peer: MediaPeer) -> str:
    """Return the sid of the track a peer published itself (its copy of track_published carries its cid)."""
    return next(msg.track.sid for msg in peer.messages if isinstance(msg, TrackPublished) and msg.cid is not None)


async def growth(count: Any, seconds: float) -> int:
    before = count()
    await asyncio.sleep(seconds)
    return int(count() - before)


def test_mute_all_but_one_stops_their_audio_at_the_sfu(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        room = new_room(media_server, "act")
        alice = await MediaPeer.join(media_server.url, media_token(media_server, room, "alice"))
        carol = await MediaPeer.join(media_server.url, media_token(media_server, room, "carol"))
        bob = await MediaPeer.join(media_server.url, media_token(media_server, room, "bob"))
        await alice.publish("mic", ToneTrack(440.0), "microphone")
        await carol.publish("mic", ToneTrack(660.0), "microphone")
        await wait_until_async(lambda: len([i for i in bob.mids.values() if i.kind == "audio"]) == 2
                               and all(bob.frames[i.track_sid] > 25 for i in bob.mids.values() if i.kind == "audio"),
                               what="bob hearing alice and carol")
        session = alice.signal.joined.room.sid
        a_sid, c_sid = own_track(alice), own_track(carol)
        response = await asyncio.to_thread(action, media_server, room, session, "mute",
                                           {"participants": "all", "exclude": ["carol"]})
        assert response.status_code == 200, response.text
        assert response.json() == {"action": "mute", "room_sid": session, "participants": ["alice", "bob"],
                                   "tracks": [a_sid], "not_found": []}
        muted = await bob.wait_for(TrackMutedMsg)
        assert muted.by_server and muted.track_sid == a_sid  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)  # what was already in flight
        counts = await asyncio.gather(growth(lambda: bob.frames[a_sid], 1.0), growth(lambda: bob.frames[c_sid], 1.0))
        assert counts[0] == 0 and counts[1] > 25  # alice still sends: the SFU drops it; carol was excluded
        listed = (await asyncio.to_thread(media_server.http.get, f"/v1/rooms/{room}/participants/alice")).json()
        assert listed["tracks"][0]["muted"] is True
        for peer in (alice, bob, carol):
            await peer.close()

    run(scenario())


def test_unmute_is_a_request_the_sdk_declines_unless_the_app_accepts(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        rooms = []
        for identity in ("alice", "bob"):
            token = media_server.token(room, identity, host=identity == "alice")["access_token"]
            rooms.append(await Room.connect(media_server.url, token, host_addresses=LOOPBACK))
        alice, bob = rooms
        a_log, b_log = Recorder(alice), Recorder(bob)
        a_pub = await alice.local_participant.publish_track(ToneTrack(300.0))
        b_pub = await bob.local_participant.publish_track(ToneTrack(500.0))
        accepted: list[UnmuteRequested] = []

        async def accept(event: UnmuteRequested) -> None:
            accepted.append(event)
            await event.accept()

        bob.on(UnmuteRequested, accept)  # bob's app agrees; alice's has no handler: the SDK declines for it
        api = RestClient(media_server.url, api_key=media_server.key)
        session = (await asyncio.to_thread(media_server.http.get, f"/v1/rooms/{room}")).json()["sid"]
        result = await api.session_action(room, session, "mute", "all")
        assert sorted(result.tracks) == sorted([a_pub.sid, b_pub.sid])
        assert (await a_log.wait(TrackMuted, lambda e: e.track is a_pub)).by_server and not a_pub.sending
        await b_log.wait(TrackMuted, lambda e: e.track is b_pub)
        assert not b_pub.sending

        result = await api.session_action(room, session, "unmute", ["alice", "bob", "nobody"])
        assert result.participants == ["alice", "bob"] and result.not_found == ["nobody"]
        request = await a_log.wait(UnmuteRequested)
        assert request.track is a_pub
        unmuted = await b_log.wait(TrackUnmuted, lambda e: e.track is b_pub)  # bob's app accepted
        assert not unmuted.by_server and b_pub.sending and len(accepted) == 1
        await a_log.wait(TrackUnmuted, lambda e: e.track.sid == b_pub.sid)  # everyone is told
        participants = await api.list_participants(room)
        by_identity = {p.identity: p for p in participants}
        assert by_identity["alice"].tracks[0].muted and not by_identity["bob"].tracks[0].muted
        assert a_pub.muted and not a_pub.sending  # alice's app did nothing: declined, her microphone stays off
        for r in rooms:
            await r.disconnect()

    run(scenario())


def test_kick_and_end(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        clients = {identity: await SignalClient.connect(
            server.url, server.token(room, identity, host=identity == "alice")["access_token"])
            for identity in ("alice", "bob", "carol", "dave")}
        session = clients["alice"].joined.room.sid
        kicked = await asyncio.to_thread(action, server, room, session, "kick",
                                         {"participants": ["bob", "carol", "ghost"], "exclude": ["carol"]})
        assert kicked.status_code == 200, kicked.text
        assert kicked.json()["participants"] == ["bob"] and kicked.json()["not_found"] == ["ghost"]
        assert (await clients["bob"].wait_for(Removed)).reason == "removed by the host"
        await clients["bob"].wait_closed()
        rejoin = await asyncio.to_thread(server.token, room, "bob")
        with pytest.raises(JoinError) as refused:
            await SignalClient.connect(server.url, rejoin["access_token"])
        assert refused.value.code == "removed"
        left = [p["identity"] for p in server.http.get(f"/v1/rooms/{room}/participants").json()]
        assert left == ["alice", "carol", "dave"]

        ended = await asyncio.to_thread(action, server, session, session, "end")
        assert ended.status_code == 200 and ended.json()["participants"] == ["alice", "carol", "dave"]
        for identity in ("alice", "carol", "dave"):
            await clients[identity].wait_closed()
        assert server.http.get(f"/v1/rooms/{session}").json()["status"] == "completed"
        again = await asyncio.to_thread(action, server, room, session, "mute", {"participants": "all"})
        assert error_of(again) == (410, "room_completed")

    aio.run(scenario())


def test_bad_input(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await SignalClient.connect(server.url, server.token(room, "alice", host=True)["access_token"])
        session = alice.joined.room.sid
        other = await SignalClient.connect(server.url, server.token(room_name(), "x", host=True)["access_token"])
        cases = [
            (("nope-room", session, "mute", {"participants": "all"}), (404, "room_not_found")),
            ((room, "RM_nope", "mute", {"participants": "all"}), (404, "session_not_found")),
            ((room, "not-a-sid", "mute", {"participants": "all"}), (404, "session_not_found")),
            ((room, other.joined.room.sid, "mute", {"participants": "all"}), (404, "session_not_found")),
            ((room, session, "explode", {"participants": "all"}), (400, "invalid_request")),
            ((room, session, "mute", {"participants": "everyone"}), (400, "invalid_request")),
            ((room, session, "mute", {"participants": 5}), (400, "invalid_request")),
            ((room, session, "mute", {"participants": "all", "extra": 1}), (400, "invalid_request")),
            ((room, session, "mute", {"participants": ["bad identity!"]}), (400, "invalid_request")),
            ((room, session, "mute", {"participants": []}), (400, "empty_participants")),
            ((room, session, "kick", {}), (400, "invalid_participants")),
            ((room, session, "kick", None), (400, "invalid_participants")),
            ((room, session, "kick", {"participants": [f"p{i}" for i in range(101)]}),
             (400, "too_many_participants")),
            ((room, session, "kick", {"participants": "all", "exclude": [f"p{i}" for i in range(101)]}),
             (400, "invalid_request")),
        ]
        for args, expected in cases:
            response = await asyncio.to_thread(action, server, *args)
            assert error_of(response) == expected, (args[2:], response.text)
            assert set(response.json()) == {"error"} and response.json()["error"]["message"]
        limit = await asyncio.to_thread(action, server, room, session, "kick",
                                        {"participants": [f"p{i}" for i in range(100)]})
        assert limit.status_code == 200 and len(limit.json()["not_found"]) == 100
        noauth = await asyncio.to_thread(httpx.post, f"{server.url}/v1/rooms/{room}/sessions/{session}/actions/end")
        assert noauth.status_code == 401
        api = RestClient(server.url, api_key=server.key)
        with pytest.raises(ApiError) as caught:
            await api.session_action(room, "RM_nope", "end")
        assert (caught.value.status, caught.value.code) == (404, "session_not_found")
        await alice.close()
        await other.close()

    aio.run(scenario())


def test_participant_search_filters_and_pages(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        api = RestClient(server.url, api_key=server.key)
        first = await SignalClient.connect(server.url, server.token(room, "alice", host=True)["access_token"])
        session = first.joined.room.sid
        between = time.time()
        others = [await SignalClient.connect(server.url, server.token(room, f"guest{i}")["access_token"])
                  for i in range(5)]
        await others[0].close()
        await wait_until_async(lambda: len(server.http.get(f"/v1/rooms/{room}/participants").json()) == 5,
                               what="guest0 gone")
        everyone = await api.search_participants(room, session)
        assert [p.identity for p in everyone] == ["alice"] + [f"guest{i}" for i in range(5)]
        gone = await api.search_participants(room, session, status="disconnected")
        assert [p.identity for p in gone] == ["guest0"] and gone[0].left_at is not None and gone[0].leave_reason
        here = await api.search_participants(room, session, status="connected")
        assert len(here) == 5 and all(p.left_at is None for p in here)
        assert [p.identity for p in await api.search_participants(room, session, identity="guest3")] == ["guest3"]
        later = await api.search_participants(room, session, joined_after=between)
        assert [p.identity for p in later] == [f"guest{i}" for i in range(5)]
        assert [p.identity for p in await api.search_participants(room, session, joined_before=between)] == ["alice"]
        pages, after = [], None
        while True:
            page = await api.search_participants(room, session, limit=2, after=after)
            if not page:
                break
            pages.append([p.identity for p in page])
            after = page[-1].sid
        assert pages == [["alice", "guest0"], ["guest1", "guest2"], ["guest3", "guest4"]]
        for query, code in (("status=maybe", "invalid_request"), ("limit=0", "invalid_request"),
                            ("limit=1001", "invalid_request"), ("joined_after=soon", "invalid_request"),
                            ("after=PA_nope", "invalid_cursor")):
            response = server.http.get(f"/v1/rooms/{room}/sessions/{session}/participants?{query}")
            assert error_of(response) == (400, code), query
        assert error_of(server.http.get(f"/v1/rooms/{room}/sessions/RM_nope/participants")) == (
            404, "session_not_found")
        for client in (first, *others[1:]):
            await client.close()

    aio.run(scenario())
