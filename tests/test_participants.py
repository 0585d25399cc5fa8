"""Participants through the REST API of a real `tvapp serve`: list, get, remove, server-side mute,
and which callers (API key, host token of the room, other tokens) may do that."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tvapp.client.signaling import JoinError, SignalClient
from tvapp.protocol.messages import (
    ParticipantJoined,
    ParticipantLeft,
    Publish,
    Removed,
    TrackMuted,
    TrackPublished,
    TrackUnmuted,
)
from tvapp.testing.aio import run
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.signal_clients import connect


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def publish(client: SignalClient, kind: str = "audio", source: str = "microphone") -> str:
    await client.send(Publish(cid="c-" + kind, kind=kind, source=source))
    return (await client.wait_for(TrackPublished)).track.sid


def test_list_and_get_participants(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True, name="Alice")
        bob = await connect(server, room, "bob")
        monitor = await connect(server, room, "monitor", hidden=True)
        track = await publish(bob, "video", "camera")

        listed = server.http.get(f"/v1/rooms/{room}/participants").json()
        assert [p["identity"] for p in listed] == ["alice", "bob"]
        for p in listed:
            assert set(p) == {"sid", "identity", "name", "joined_at", "tracks", "reconnecting", "network_quality"}
        assert listed[0]["sid"] == alice.joined.participant.sid and listed[0]["name"] == "Alice"
        assert listed[0]["joined_at"] == alice.joined.participant.joined_at and listed[0]["tracks"] == []
        unconstrained = {"max_width": None, "max_height": None, "max_framerate": None, "max_bitrate": None,
                         "paused": False}  # nobody was asked anything yet (adaptive stream)
        assert listed[1]["tracks"] == [{"sid": track, "kind": "video", "source": "camera", "name": "", "muted": False,
                                        "constraints": unconstrained, "renditions": []}]

        one = server.http.get(f"/v1/rooms/{alice.joined.room.sid}/participants/bob")
        assert one.status_code == 200 and one.json() == listed[1]
        missing = server.http.get(f"/v1/rooms/{room}/participants/nobody")
        assert error_of(missing) == (404, "participant_not_found")
        assert "nobody" in missing.json()["error"]["message"]
        no_room = server.http.get(f"/v1/rooms/nope-{uuid.uuid4().hex}/participants")
        assert error_of(no_room) == (404, "room_not_found")

        server.http.post(f"/v1/rooms/{room}/complete").raise_for_status()
        sid = alice.joined.room.sid
        assert server.http.get(f"/v1/rooms/{sid}/participants").json() == []
        assert error_of(server.http.get(f"/v1/rooms/{sid}/participants/bob")) == (410, "room_completed")
        for client in (alice, bob, monitor):
            await client.close()

    run(scenario())


def test_removing_a_participant(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True)
        pair = server.token(room, "bob")
        bob = await SignalClient.connect(server.url, pair["access_token"])
        carol = await connect(server, room, "carol")
        await bob.wait_for(ParticipantJoined)  # carol

        response = server.http.delete(f"/v1/rooms/{room}/participants/bob")
        assert response.status_code == 204 and response.content == b""
        removed = await bob.next()
        assert isinstance(removed, Removed), removed
        assert await bob.wait_closed() == (1000, "removed")
        for other in (alice, carol):
            left = await other.wait_for(ParticipantLeft)
            assert (left.identity, left.participant_sid, left.reason) == ("bob", bob.joined.participant.sid, "removed")

        assert [p["identity"] for p in server.http.get(f"/v1/rooms/{room}/participants").json()] == ["alice", "carol"]
        with pytest.raises(JoinError) as refused:
            await SignalClient.connect(server.url, pair["access_token"])
        assert refused.value.code == "token_revoked"
        with pytest.raises(JoinError) as refused:  # a brand-new token for the same identity
            await connect(server, room, "bob")
        assert refused.value.code == "removed"
        refresh = httpx.post(f"{server.url}/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]})
        assert error_of(refresh)[0] == 401

        sessions = server.http.get(f"/v1/rooms/{room}/sessions").json()
        bob_session = next(s for s in sessions if s["identity"] == "bob")
        assert bob_session["leave_reason"] == "removed" and bob_session["left_at"] is not None
        assert error_of(server.http.delete(f"/v1/rooms/{room}/participants/bob")) == (404, "participant_not_found")
        for client in (alice, carol):
            await client.close()

    run(scenario())


def test_muting_a_published_track_from_the_server(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        alice = await connect(server, room, "alice", host=True)
        bob = await connect(server, room, "bob")
        track = await publish(bob)
        await alice.wait_for(TrackPublished)
        url = f"/v1/rooms/{room}/participants/bob/tracks/{track}/mute"

        response = server.http.post(url, json={"muted": True})
        assert response.status_code == 200
        assert response.json() == {"sid": track, "kind": "audio", "source": "microphone", "name": "", "muted": True,
                                   "renditions": []}  # TrackOut: no rendition_of/layer (never a track of its own)
        for client in (alice, bob):
            muted = await client.wait_for(TrackMuted)
            assert (muted.track_sid, muted.participant_sid, muted.by_server) == (
                track, bob.joined.participant.sid, True)
        assert server.http.get(f"/v1/rooms/{room}/participants/bob").json()["tracks"][0]["muted"] is True

        assert server.http.post(url, json={"muted": False}).json()["muted"] is False
        for client in (alice, bob):
            unmuted = await client.wait_for(TrackUnmuted)
            assert unmuted.track_sid == track and unmuted.by_server is True
        assert server.http.get(f"/v1/rooms/{room}/participants/bob").json()["tracks"][0]["muted"] is False

        assert server.http.post(url, json={}).json()["muted"] is True  # muting is the default
        assert (await bob.wait_for(TrackMuted)).by_server is True

        unknown = server.http.post(f"/v1/rooms/{room}/participants/bob/tracks/TR_nope/mute", json={"muted": True})
        assert error_of(unknown) == (404, "track_not_found")
        not_hers = server.http.post(f"/v1/rooms/{room}/participants/alice/tracks/{track}/mute", json={"muted": True})
        assert error_of(not_hers) == (404, "track_not_found")
        nobody = server.http.post(f"/v1/rooms/{room}/participants/nobody/tracks/{track}/mute", json={"muted": True})
        assert error_of(nobody) == (404, "participant_not_found")
        assert error_of(server.http.post(url, json={"muted": "loud"}))[0] == 400
        for client in (alice, bob):
            await client.close()

    run(scenario())


def test_a_host_token_manages_its_own_room_only(server: ServerProcess) -> None:
    async def scenario() -> None:
        room, other = room_name(), room_name()
        host_pair = server.token(room, "host", host=True)
        host = await SignalClient.connect(server.url, host_pair["access_token"])
        bob = await connect(server, room, "bob")
        track = await publish(bob)
        outsider = await connect(server, other, "outsider", host=True)
        as_host = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {host_pair['access_token']}"})
        with as_host:
            assert [p["identity"] for p in as_host.get(f"/v1/rooms/{room}/participants").json()] == ["host", "bob"]
            assert as_host.get(f"/v1/rooms/{room}/participants/bob").status_code == 200
            muted = as_host.post(f"/v1/rooms/{room}/participants/bob/tracks/{track}/mute", json={"muted": True})
            assert muted.status_code == 200 and muted.json()["muted"] is True
            assert (await bob.wait_for(TrackMuted)).by_server is True

            for response in (
                as_host.get(f"/v1/rooms/{other}/participants"),
                as_host.get(f"/v1/rooms/{other}/participants/outsider"),
                as_host.delete(f"/v1/rooms/{other}/participants/outsider"),
                as_host.post(f"/v1/rooms/{outsider.joined.room.sid}/complete"),
            ):
                assert error_of(response) == (403, "wrong_room")
            assert error_of(as_host.get("/v1/rooms")) == (403, "key_required")

            assert as_host.delete(f"/v1/rooms/{room}/participants/bob").status_code == 204
            assert isinstance(await bob.wait_for(Removed), Removed)
        assert [p["identity"] for p in server.http.get(f"/v1/rooms/{other}/participants").json()] == ["outsider"]
        for client in (host, bob, outsider):
            await client.close()

    run(scenario())


def test_a_token_without_host_grant_gets_not_host(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = room_name()
        host = await connect(server, room, "host", host=True)
        bob = await connect(server, room, "bob")
        track = await publish(bob)
        plain = server.token(room, "carol")["access_token"]
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {plain}"}) as as_guest:
            for response in (
                as_guest.get(f"/v1/rooms/{room}/participants"),
                as_guest.get(f"/v1/rooms/{room}/participants/bob"),
                as_guest.delete(f"/v1/rooms/{room}/participants/bob"),
                as_guest.post(f"/v1/rooms/{room}/participants/bob/tracks/{track}/mute", json={"muted": True}),
            ):
                assert error_of(response) == (403, "not_host")
        assert [p["identity"] for p in server.http.get(f"/v1/rooms/{room}/participants").json()] == ["host", "bob"]
        listed = server.http.get(f"/v1/rooms/{room}/participants/bob").json()
        assert listed["tracks"][0]["muted"] is False
        bad = httpx.get(f"{server.url}/v1/rooms/{room}/participants", headers={"Authorization": "Bearer x.y.z"})
        assert bad.status_code == 401
        for client in (host, bob):
            await client.close()

    run(scenario())
