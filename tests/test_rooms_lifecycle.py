"""Rooms through the REST API and signaling of a real `tvapp serve`: create, list, get, complete,
the open -> in-progress -> completed life, the empty timeout, and the sessions record."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tvapp.client.signaling import JoinError, SignalClient
from tvapp.protocol.messages import Leave, RoomCompleted
from tvapp.testing.aio import run
from tvapp.testing.rest import create_room, room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.signal_clients import connect

ROOM_FIELDS = {"sid", "name", "status", "max_participants", "empty_timeout", "created_at", "started_at",
               "ended_at", "participant_count"}


def get_room(srv: ServerProcess, ref: str) -> dict[str, Any]:
    response = srv.http.get(f"/v1/rooms/{ref}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def wait_status(srv: ServerProcess, sid: str, status: str, timeout: float) -> float:
    """Poll the room until it has `status`; return when that was seen (time.time())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get_room(srv, sid)["status"] == status:
            return time.time()
        await asyncio.sleep(0.05)
    raise AssertionError(f"room {sid} did not become {status} within {timeout} s: {get_room(srv, sid)}")


def test_create_returns_every_field_with_defaults(server: ServerProcess) -> None:
    before = time.time()
    room = create_room(server)
    assert set(room) == ROOM_FIELDS
    assert room["sid"].startswith("RM_")
    assert room["status"] == "open"
    assert room["max_participants"] == 6 and room["empty_timeout"] == 300
    assert before - 1 <= room["created_at"] <= time.time() + 1
    assert room["started_at"] is None and room["ended_at"] is None
    assert room["participant_count"] == 0
    assert get_room(server, room["name"]) == room
    assert get_room(server, room["sid"]) == room

    custom = create_room(server, max_participants=3, empty_timeout=42)
    assert (custom["max_participants"], custom["empty_timeout"]) == (3, 42)


def test_a_live_name_cannot_be_created_twice(server: ServerProcess) -> None:
    room = create_room(server)
    assert error_of(server.http.post("/v1/rooms", json={"name": room["name"]})) == (409, "room_exists")


@pytest.mark.parametrize("body", [
    {"max_participants": 1}, {"max_participants": 51}, {"max_participants": 0}, {"max_participants": -3},
    {"empty_timeout": 0}, {"empty_timeout": 86_401},
])
def test_limits_out_of_bounds_are_400(server: ServerProcess, body: dict[str, int]) -> None:
    response = server.http.post("/v1/rooms", json={"name": room_name(), **body})
    assert error_of(response) == (400, "invalid_limits")
    assert next(iter(body)) in response.json()["error"]["message"]


@pytest.mark.parametrize("body,code", [
    ({"max_participants": "many"}, "invalid_request"), ({"name": "no spaces allowed"}, "invalid_room"),
    ({"name": ""}, "invalid_room"), ({"colour": "red"}, "invalid_request"),
])
def test_malformed_room_bodies_are_400(server: ServerProcess, body: dict[str, Any], code: str) -> None:
    response = server.http.post("/v1/rooms", json={"name": room_name(), **body})
    assert error_of(response) == (400, code)


def test_limits_at_the_bounds_are_accepted(server: ServerProcess) -> None:
    assert create_room(server, max_participants=2, empty_timeout=1)["max_participants"] == 2
    assert create_room(server, max_participants=50, empty_timeout=86_400)["max_participants"] == 50


def test_unknown_room_is_404(server: ServerProcess) -> None:
    for ref in ("no-such-room-" + uuid.uuid4().hex, "RM_" + uuid.uuid4().hex):
        assert error_of(server.http.get(f"/v1/rooms/{ref}")) == (404, "room_not_found")
        assert error_of(server.http.post(f"/v1/rooms/{ref}/complete")) == (404, "room_not_found")


def test_list_filters_by_status_newest_first(server: ServerProcess) -> None:
    async def scenario() -> None:
        opened = create_room(server)
        started = create_room(server)
        ended = create_room(server)
        alice = await connect(server, started["name"], "alice")
        assert server.http.post(f"/v1/rooms/{ended['sid']}/complete").status_code == 200
        mine = {opened["sid"]: "open", started["sid"]: "in-progress", ended["sid"]: "completed"}

        listed = server.http.get("/v1/rooms", params={"limit": 1000}).json()
        ours = [r for r in listed if r["sid"] in mine]
        assert [r["sid"] for r in ours] == [ended["sid"], started["sid"], opened["sid"]]
        assert all(set(r) == ROOM_FIELDS for r in listed)
        assert [r["created_at"] for r in listed] == sorted((r["created_at"] for r in listed), reverse=True)
        for status in ("open", "in-progress", "completed"):
            rows = server.http.get("/v1/rooms", params={"status": status, "limit": 1000}).json()
            assert rows and all(r["status"] == status for r in rows)
            assert [sid for sid, s in mine.items() if s == status] == [r["sid"] for r in rows if r["sid"] in mine]
        assert len(server.http.get("/v1/rooms", params={"limit": 1}).json()) == 1
        assert error_of(server.http.get("/v1/rooms", params={"status": "sleeping"}))[0] == 400
        assert error_of(server.http.get("/v1/rooms", params={"limit": 0}))[0] == 400
        await alice.close()

    run(scenario())


def test_rest_calls_need_credentials(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/v1/rooms").status_code == 401
    wrong = httpx.get(server.url + "/v1/rooms", auth=(server.key[0], "not-the-secret"))
    assert error_of(wrong) == (401, "invalid_credentials")


def test_room_life_open_in_progress_completed(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = create_room(server)
        assert room["status"] == "open"
        before = time.time()
        alice = await connect(server, room["name"], "alice")
        bob = await connect(server, room["name"], "bob")
        assert alice.joined.room.status == "in-progress" and alice.joined.room.sid == room["sid"]
        live = get_room(server, room["sid"])
        assert live["status"] == "in-progress" and live["participant_count"] == 2
        assert before - 1 <= live["started_at"] <= time.time() + 1 and live["ended_at"] is None
        assert live["started_at"] == alice.joined.participant.joined_at

        await bob.send(Leave())
        await bob.wait_closed()
        await asyncio.sleep(0.1)
        after_leave = get_room(server, room["sid"])
        assert after_leave["status"] == "in-progress" and after_leave["participant_count"] == 1

        response = server.http.post(f"/v1/rooms/{room['name']}/complete")
        assert response.status_code == 200
        done = response.json()
        assert done["sid"] == room["sid"] and done["status"] == "completed"
        assert done["ended_at"] >= done["started_at"] and done["participant_count"] == 0
        completed = await alice.wait_for(RoomCompleted)
        assert completed.room_sid == room["sid"]
        assert await alice.wait_closed() == (1000, "room completed")
        assert get_room(server, room["sid"]) == done
        assert server.http.post(f"/v1/rooms/{room['sid']}/complete").json() == done  # completing again changes nothing

    run(scenario())


def test_completing_tells_everyone_and_closes_them(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = create_room(server)
        clients = [await connect(server, room["name"], f"p{i}") for i in range(4)]
        clients.append(await connect(server, room["name"], "monitor", hidden=True))
        assert server.http.post(f"/v1/rooms/{room['sid']}/complete").status_code == 200
        for client in clients:
            assert (await client.wait_for(RoomCompleted)).room_sid == room["sid"]
            assert await client.wait_closed() == (1000, "room completed")
        sessions = server.http.get(f"/v1/rooms/{room['sid']}/sessions").json()
        assert len(sessions) == 5
        assert {s["leave_reason"] for s in sessions} == {"completed_by_api"}

    run(scenario())


def test_a_completed_room_is_never_joined_again(server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        host = await connect(server, name, "host", host=True)
        old_sid = host.joined.room.sid
        invite = server.http.post(f"/v1/rooms/{name}/invites", json={}).json()
        guest_pair = server.http.post(f"/v1/invites/{invite['code']}/redeem", json={"identity": "guest"}).json()
        assert server.http.post(f"/v1/rooms/{name}/complete").status_code == 200
        await host.wait_closed()

        with pytest.raises(JoinError) as refused:  # no live room: the invite's room is over
            await SignalClient.connect(server.url, guest_pair["access_token"])
        assert refused.value.code == "room_completed"
        with pytest.raises(JoinError) as refused:
            await connect(server, name, "plain")
        assert refused.value.code == "room_not_found"

        again = await connect(server, name, "host", host=True)
        assert again.joined.room.sid != old_sid and again.joined.room.name == name
        assert again.joined.room.status == "in-progress"
        with pytest.raises(JoinError) as refused:  # a live room of that name now, but not the invite's
            await SignalClient.connect(server.url, guest_pair["access_token"])
        assert refused.value.code == "room_completed"
        assert get_room(server, old_sid)["status"] == "completed"
        assert get_room(server, name)["sid"] == again.joined.room.sid
        redeem = server.http.post(f"/v1/invites/{invite['code']}/redeem", json={"identity": "late"})
        assert error_of(redeem) == (410, "room_completed")
        await again.close()

    run(scenario())


def test_a_name_can_be_reused_after_completion(server: ServerProcess) -> None:
    first = create_room(server)
    assert server.http.post(f"/v1/rooms/{first['sid']}/complete").json()["status"] == "completed"
    second = create_room(server, first["name"], max_participants=4)
    assert second["sid"] != first["sid"] and second["status"] == "open" and second["max_participants"] == 4
    assert get_room(server, first["name"])["sid"] == second["sid"]
    assert get_room(server, first["sid"])["status"] == "completed"


def test_joining_a_name_without_a_live_room(server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        with pytest.raises(JoinError) as refused:
            await connect(server, name, "guest")
        assert refused.value.code == "room_not_found"
        assert error_of(server.http.get(f"/v1/rooms/{name}")) == (404, "room_not_found")

        host = await connect(server, name, "host", host=True)
        room = get_room(server, name)
        assert room["sid"] == host.joined.room.sid and room["status"] == "in-progress"
        assert room["max_participants"] == 6 and room["empty_timeout"] == 300
        guest = await connect(server, name, "guest")
        assert guest.joined.room.sid == room["sid"]
        await host.close()
        await guest.close()

    run(scenario())


def test_racing_host_joins_create_one_room(server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        tokens = [server.token(name, f"host-{i}", host=True)["access_token"] for i in range(6)]
        clients = await asyncio.gather(*(SignalClient.connect(server.url, t) for t in tokens))
        assert len({c.joined.room.sid for c in clients}) == 1
        rooms = [r for r in server.http.get("/v1/rooms", params={"limit": 1000}).json() if r["name"] == name]
        assert len(rooms) == 1 and rooms[0]["participant_count"] == 6
        for client in clients:
            await client.close()

    run(scenario())


def test_empty_rooms_complete_after_their_empty_timeout(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_ROOMS_REAPER_INTERVAL="0.2")

    async def scenario() -> None:
        never = create_room(srv, empty_timeout=1)
        used = create_room(srv, empty_timeout=1)
        lasting = create_room(srv)  # the default 300 s
        alice = await connect(srv, used["name"], "alice")

        ended = await wait_status(srv, never["sid"], "completed", timeout=3)
        assert 0.9 <= ended - never["created_at"] <= 1.8, ended - never["created_at"]
        assert 0.99 <= get_room(srv, never["sid"])["ended_at"] - never["created_at"] <= 1.8

        await asyncio.sleep(1.0)  # occupied rooms never time out
        assert get_room(srv, used["sid"])["status"] == "in-progress"
        await alice.send(Leave())
        await alice.wait_closed()
        left_at = time.time()
        ended = await wait_status(srv, used["sid"], "completed", timeout=3)
        assert 0.9 <= ended - left_at <= 1.8, ended - left_at
        assert get_room(srv, lasting["sid"])["status"] == "open"
        sessions = srv.http.get(f"/v1/rooms/{used['sid']}/sessions").json()
        assert [s["leave_reason"] for s in sessions] == ["left"]

    run(scenario())


def test_empty_timeout_reaper_completes_a_room_its_last_participant_left_by_disconnect(
        make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_ROOMS_REAPER_INTERVAL="0.2")

    async def scenario() -> None:
        room = create_room(srv, empty_timeout=1)
        alice = await connect(srv, room["name"], "alice")
        monitor = await connect(srv, room["name"], "monitor", hidden=True)
        await alice.close()
        gone = time.time()
        ended = await wait_status(srv, room["sid"], "completed", timeout=3)  # a hidden one keeps no room alive
        assert 0.9 <= ended - gone <= 1.8
        assert (await monitor.wait_for(RoomCompleted)).room_sid == room["sid"]
        assert await monitor.wait_closed() == (1000, "room completed")

    run(scenario())


def test_sessions_list_who_was_there_when_and_why_they_left(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = create_room(server)
        name = room["name"]
        alice = await connect(server, name, "alice", name="Alice")
        bob = await connect(server, name, "bob")
        carol = await connect(server, name, "carol")
        await bob.send(Leave())
        await bob.wait_closed()
        await carol.close()
        await asyncio.sleep(0.2)
        during = server.http.get(f"/v1/rooms/{name}/sessions").json()
        assert [(s["identity"], s["leave_reason"]) for s in during] == [
            ("alice", None), ("bob", "left"), ("carol", "disconnected")]
        assert during[0]["left_at"] is None and during[0]["name"] == "Alice"
        assert server.http.post(f"/v1/rooms/{name}/complete").status_code == 200
        await alice.wait_closed()

        sessions = server.http.get(f"/v1/rooms/{room['sid']}/sessions").json()
        assert [s["sid"] for s in sessions] == [c.joined.participant.sid for c in (alice, bob, carol)]
        assert [s["leave_reason"] for s in sessions] == ["completed_by_api", "left", "disconnected"]
        for s in sessions:
            assert set(s) == {"sid", "identity", "name", "joined_at", "left_at", "leave_reason"}
            assert room["created_at"] <= s["joined_at"] <= s["left_at"]
        assert [s["joined_at"] for s in sessions] == sorted(s["joined_at"] for s in sessions)
        ended = get_room(server, room["sid"])["ended_at"]
        assert sessions[0]["left_at"] == ended

        fresh = create_room(server)
        assert server.http.get(f"/v1/rooms/{fresh['sid']}/sessions").json() == []

    run(scenario())
