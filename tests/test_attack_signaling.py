"""A hostile participant flooding room-changing messages over signaling, against a real core on 127.0.0.1.

Each `mute` toggle is broadcast to everyone in the room: without a budget, a second of toggles (tens of thousands)
made a participant whose link paused for two seconds fall `send_queue_max` messages behind and be disconnected
("too slow"). Past [signal] control_burst_messages / control_rate_messages the flooder's messages are dropped with
`rate_limited`; the others stay.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from security_helpers import ws_url
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

FLOOD = 60_000
BURST, RATE = 100, 20.0  # the [signal] control_* defaults


async def joined(server: ServerProcess, room: str, identity: str, **options: Any) -> ClientConnection:
    token = server.token(room, identity, host=True)["access_token"]
    ws = await connect(ws_url(server.url), max_size=2**22, **options)
    await ws.send(json.dumps({"type": "join", "v": 1, "token": token}))
    first = json.loads(await ws.recv())
    assert first["type"] == "joined", first
    return ws


async def until(ws: ClientConnection, kind: str, seen: list[dict[str, Any]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            seen.append(message)
            if message["type"] == kind:
                return


def test_a_mute_flood_is_rate_limited_and_never_disconnects_a_participant_whose_link_paused(
        server: ServerProcess) -> None:
    room = room_name("atk-flood", 12)
    assert server.http.post("/v1/rooms", json={"name": room}).status_code == 201

    async def scenario() -> None:
        victim = await joined(server, room, "victim", max_queue=1)  # reads nothing while the flood lasts
        attacker = await joined(server, room, "attacker")
        await attacker.send(json.dumps({"type": "publish", "v": 1, "cid": "c1", "kind": "audio",
                                        "source": "microphone"}))
        told: list[dict[str, Any]] = []
        await until(attacker, "track_published", told)
        sid = told[-1]["track"]["sid"]
        started = time.monotonic()
        for index in range(FLOOD):
            await attacker.send(json.dumps({"type": "mute", "v": 1, "track_sid": sid, "muted": index % 2 == 0}))
        await attacker.send(json.dumps({"type": "ping", "v": 1, "id": "after-flood"}))
        await until(attacker, "pong", told, timeout=30.0)  # the core has handled the whole flood
        flooded = time.monotonic() - started
        assert any(m["type"] == "error" and m["code"] == "rate_limited" for m in told), told[-5:]
        assert sum(m["type"] == "error" for m in told) <= flooded + 2  # told about once a second, not per drop

        marker = server.http.post(f"/v1/rooms/{room}/playback", json={"action": "load", "content": "/srv/a.mp4"})
        assert marker.status_code == 200, marker.text
        seen: list[dict[str, Any]] = []
        try:
            await until(victim, "playback_state", seen)  # the victim reads again: everything queued, then this
        except ConnectionClosed as exc:
            raise AssertionError(f"the flood disconnected the victim: {exc}") from None
        toggles = sum(m["type"] in ("track_muted", "track_unmuted") for m in seen)
        assert toggles <= BURST + RATE * (time.monotonic() - started) + 5, toggles
        await victim.close()
        await attacker.close()

    asyncio.run(scenario())


def test_a_token_joining_and_leaving_in_a_loop_is_refused_past_the_join_budget(server: ServerProcess) -> None:
    from tvapp.server.state import JOIN_WINDOW, JOINS_PER_WINDOW
    room = room_name("atk-churn", 12)
    assert server.http.post("/v1/rooms", json={"name": room}).status_code == 201
    token = server.token(room, "churner")["access_token"]

    async def join_once() -> dict[str, Any]:
        async with connect(ws_url(server.url)) as ws:
            await ws.send(json.dumps({"type": "join", "v": 1, "token": token}))
            first: dict[str, Any] = json.loads(await ws.recv())
            if first["type"] == "joined":
                await ws.send(json.dumps({"type": "leave", "v": 1}))
            return first

    async def scenario() -> None:
        started = time.monotonic()
        for _ in range(JOINS_PER_WINDOW):
            assert (await join_once())["type"] == "joined"
        refused = await join_once()
        assert time.monotonic() - started < JOIN_WINDOW  # all within one window
        assert refused["type"] == "error" and refused["code"] == "rate_limited", refused
        other = await joined(server, room, "someone-else")  # another identity is not limited by it
        await other.close()

    asyncio.run(scenario())
