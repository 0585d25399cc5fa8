"""kill -9 of the real server: nothing it acknowledged is lost, the database stays sound, live rooms survive.

Writer threads create rooms, invites and tokens and rotate refresh tokens, recording each success only once its
response has fully arrived; the server is SIGKILLed at a random moment, several rounds on one data directory.
After each kill the database must pass `PRAGMA integrity_check` and hold every acknowledged write, and the
restarted server must serve them.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from tvapp.client.signaling import SignalClient
from tvapp.core.codes import hash_code, normalize_invite_code
from tvapp.testing.server import ServerProcess

ROUNDS = 4
WRITERS = 2
FAST_REAPER = {"TVAPP_ROOMS_REAPER_INTERVAL": "0.2"}


@dataclass
class Acked:
    """Every write a server acknowledged, across rounds."""

    rooms: set[str] = field(default_factory=set)
    invites: dict[str, str] = field(default_factory=dict)  # code -> room sid
    refresh: set[str] = field(default_factory=set)  # active refresh token jtis
    retired: set[str] = field(default_factory=set)  # rotated away
    rotating: set[str] = field(default_factory=set)  # sent for rotation, answer not (yet) received
    pairs: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def jti_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def write_until_dead(srv: ServerProcess, acked: Acked) -> None:
    """Create rooms, invites and tokens (and rotate them) until the server dies."""
    with httpx.Client(base_url=srv.url, auth=srv.key, timeout=10.0) as http:
        try:
            while True:
                name = "dur-" + uuid.uuid4().hex[:16]
                response = http.post("/v1/rooms", json={"name": name})
                if response.status_code != 201:
                    raise AssertionError(response.text)
                sid = response.json()["sid"]
                with acked.lock:
                    acked.rooms.add(sid)
                response = http.post(f"/v1/rooms/{sid}/invites", json={"max_uses": 5})
                if response.status_code != 201:
                    raise AssertionError(response.text)
                with acked.lock:
                    acked.invites[response.json()["code"]] = sid
                response = http.post("/v1/tokens", json={"room": name, "identity": "u-" + uuid.uuid4().hex[:8]})
                if response.status_code != 201:
                    raise AssertionError(response.text)
                pair = response.json()
                old = jti_of(pair["refresh_token"])
                with acked.lock:
                    acked.refresh.add(old)
                    acked.rotating.add(old)
                response = http.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]})
                if response.status_code != 200:
                    raise AssertionError(response.text)
                rotated = response.json()
                with acked.lock:
                    acked.rotating.discard(old)
                    acked.refresh.discard(old)
                    acked.retired.add(old)
                    acked.refresh.add(jti_of(rotated["refresh_token"]))
                    acked.pairs.append(rotated)
        except httpx.TransportError:
            return  # the server was killed


def check_database(db: Path, acked: Acked, context: str) -> None:
    """Check the killed server's database directly with sqlite3."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
        rooms = {r[0] for r in conn.execute("SELECT sid FROM rooms")}
        invites = dict(conn.execute("SELECT code_hash, room_sid FROM invites").fetchall())
        tokens = dict(conn.execute("SELECT jti, state FROM refresh_tokens").fetchall())
    conn.close()
    lost = acked.rooms - rooms
    assert not lost, f"{context}: lost {len(lost)} acknowledged rooms, e.g. {sorted(lost)[:3]}"
    for code, sid in acked.invites.items():
        canonical = normalize_invite_code(code)
        assert canonical is not None
        assert invites.get(hash_code(canonical)) == sid, f"{context}: lost invite for {sid}"
    # A rotation cut off by the kill may or may not have committed; everything else is exact.
    assert all(tokens.get(jti) == "active" for jti in acked.refresh - acked.rotating), context
    assert all(tokens.get(jti) in ("active", "retired") for jti in acked.rotating), context
    assert len(acked.rotating) <= WRITERS * ROUNDS
    assert all(tokens.get(jti) == "retired" for jti in acked.retired), context


def check_served(srv: ServerProcess, acked: Acked, context: str) -> None:
    """Check that a restarted server serves what its predecessors acknowledged."""
    for sid in acked.rooms:
        response = srv.http.get(f"/v1/rooms/{sid}")
        assert response.status_code == 200, f"{context}: {sid}: {response.text}"
        assert response.json()["sid"] == sid
    for code in random.sample(sorted(acked.invites), min(5, len(acked.invites))):
        redeemed = httpx.post(f"{srv.url}/v1/invites/{code}/redeem", json={"identity": "g-" + uuid.uuid4().hex[:8]})
        assert redeemed.status_code == 200, f"{context}: {code}: {redeemed.text}"
    for pair in random.sample(acked.pairs, min(3, len(acked.pairs))):
        refreshed = httpx.post(f"{srv.url}/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]})
        assert refreshed.status_code == 200, f"{context}: {refreshed.text}"
        with acked.lock:
            acked.pairs.remove(pair)
            acked.refresh.discard(jti_of(pair["refresh_token"]))
            acked.retired.add(jti_of(pair["refresh_token"]))
            acked.refresh.add(jti_of(refreshed.json()["refresh_token"]))


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acked = Acked()
    rng = random.Random()
    for round_no in range(ROUNDS):
        srv = ServerProcess(data, env=FAST_REAPER).start()
        context = f"round {round_no}"
        if round_no:
            check_served(srv, acked, context)
        before = len(acked.rooms)
        writers = [threading.Thread(target=write_until_dead, args=(srv, acked), daemon=True)
                   for _ in range(WRITERS)]
        for writer in writers:
            writer.start()
        time.sleep(rng.uniform(0.4, 1.2))
        assert all(w.is_alive() for w in writers), f"{context}: a writer stopped early"
        srv.kill()
        assert srv.proc is not None and srv.proc.returncode == -9
        for writer in writers:
            writer.join(15)
            assert not writer.is_alive()
        assert len(acked.rooms) > before + 5, f"{context}: the writers made too little progress"
        check_database(data / "tvapp.db", acked, context)
        srv.stop()
    with ServerProcess(data, env=FAST_REAPER) as srv:
        check_served(srv, acked, "final")
    check_database(data / "tvapp.db", acked, "after a clean stop")


def test_rooms_in_progress_at_the_kill_are_live_after_restart_and_complete_on_their_empty_timeout(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = ServerProcess(data, env=FAST_REAPER).start()

    async def occupy() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[SignalClient]]:
        short = srv.http.post("/v1/rooms", json={"name": "short", "empty_timeout": 3}).json()
        long = srv.http.post("/v1/rooms", json={"name": "long"}).json()
        idle = srv.http.post("/v1/rooms", json={"name": "idle", "empty_timeout": 3}).json()
        clients = [await SignalClient.connect(srv.url, srv.token(name, f"p{i}")["access_token"])
                   for name in ("short", "long") for i in range(2)]
        return short, long, idle, clients

    short, long, idle, clients = asyncio.run(occupy())
    assert srv.http.get("/v1/rooms/short").json()["status"] == "in-progress"
    srv.kill()
    srv.stop()
    del clients  # their sockets died with the server

    launched = time.time()
    with ServerProcess(data, env=FAST_REAPER) as again:
        ready = time.time()
        live = {r["sid"]: r for r in again.http.get("/v1/rooms", params={"status": "in-progress"}).json()}
        assert {short["sid"], long["sid"]} <= set(live)
        assert live[short["sid"]]["participant_count"] == 0
        assert again.http.get("/v1/rooms/idle").json()["status"] == "open"
        assert again.http.get("/healthz").json()["live_rooms"] == 3
        for room in (short, long):
            sessions = again.http.get(f"/v1/rooms/{room['sid']}/sessions").json()
            assert [s["leave_reason"] for s in sessions] == ["server_restart", "server_restart"]
            assert all(s["left_at"] >= launched for s in sessions)

        async def rejoin() -> str:
            client = await SignalClient.connect(again.url, again.token("long", "back")["access_token"])
            await client.close()
            return client.joined.room.sid

        assert asyncio.run(rejoin()) == long["sid"]  # still the same live room, joinable without a host grant

        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            states = {ref: again.http.get(f"/v1/rooms/{ref}").json() for ref in (short["sid"], idle["sid"])}
            if all(r["status"] == "completed" for r in states.values()):
                break
            time.sleep(0.1)
        for room in states.values():
            assert room["status"] == "completed", room
            assert launched + 3 <= room["ended_at"] <= ready + 4.5, (room["ended_at"] - launched, ready - launched)
        assert again.http.get(f"/v1/rooms/{long['sid']}").json()["status"] == "in-progress"
