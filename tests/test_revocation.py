"""Revocation reaches live sessions within a second; a token's expiry does not end a session already joined.

Before, `tvapp keys revoke` and a refresh-token replay (which revokes the family) refused new uses of the tokens
but left their holders connected. Now the server looks at keys.json every 0.5 s and ends the live sessions of a
revoked key's tokens, and a replay ends the family's sessions at once: the holder gets the error
`token_revoked` and the close reason `token_revoked`, the others see it leave with that reason.

Expiry is the other way round, as in Twilio and LiveKit: a token is checked when it is used to join; a joined
session outlives it, but the expired token cannot join again.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tvapp.client.signaling import JoinError, SignalClient
from tvapp.protocol.messages import Error, ParticipantLeft, Pong
from tvapp.testing.server import ServerProcess


def room_name() -> str:
    return "revoke-" + uuid.uuid4().hex[:8]


def keys_cli(server: ServerProcess, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tvapp", "keys", *args, "--data", str(server.data_dir)],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


async def ended_within(client: SignalClient, started: float, timeout: float = 5.0) -> tuple[float, list[Any]]:
    """Wait for the server to close `client`; return the seconds since `started` and the messages before."""
    seen = []
    async with asyncio.timeout(timeout):
        while not client.ended.is_set() or not client.events.empty():
            try:
                seen.append(await client.next(0.05))
            except TimeoutError:
                pass
    await client.wait_closed()
    return time.monotonic() - started, seen


def test_revoking_a_key_ends_the_live_sessions_of_its_tokens_within_a_second(server: ServerProcess) -> None:
    room = room_name()
    new_key = json.loads(keys_cli(server, "create", "--json"))
    with httpx.Client(base_url=server.url, auth=(new_key["id"], new_key["secret"]), timeout=10) as http:
        answer = http.post("/v1/tokens", json={"room": room, "identity": "signed-by-new", "grants": {"host": True}})
        assert answer.status_code == 201, answer.text
        doomed_token = answer.json()["access_token"]

    async def scenario() -> None:
        doomed = await SignalClient.connect(server.url, doomed_token)
        other = await SignalClient.connect(server.url, server.token(room, "other")["access_token"])
        keys_cli(server, "revoke", new_key["id"])
        elapsed, seen = await ended_within(doomed, time.monotonic())
        assert elapsed < 1.0, elapsed
        assert any(isinstance(m, Error) and m.code == "token_revoked" for m in seen), seen
        assert doomed.ws.close_code == 1008 and doomed.ws.close_reason == "token_revoked"
        left = await other.wait_for(ParticipantLeft, 2)
        assert (left.identity, left.reason) == ("signed-by-new", "token_revoked")
        assert isinstance(await other.ping(), Pong)  # a token of another key is untouched
        try:
            await SignalClient.connect(server.url, doomed_token)
            raise AssertionError("a revoked key's token joined")
        except JoinError as exc:
            assert exc.code == "invalid_token"
        await other.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    sessions = server.http.get(f"/v1/rooms/{room}/sessions").json()
    assert {s["identity"]: s["leave_reason"] for s in sessions}["signed-by-new"] == "token_revoked"


def test_a_refresh_token_replay_ends_the_live_session_of_its_family(server: ServerProcess) -> None:
    room = room_name()
    pair = server.token(room, "alice", host=True)

    async def scenario() -> None:
        alice = await SignalClient.connect(server.url, pair["access_token"])
        bob = await SignalClient.connect(server.url, server.token(room, "bob")["access_token"])
        refresh = server.http.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]}, auth=None)
        assert refresh.status_code == 200, refresh.text
        assert isinstance(await alice.ping(), Pong)  # an honest refresh leaves the session alone
        started = time.monotonic()
        replay = server.http.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]}, auth=None)
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "token_reused"
        elapsed, seen = await ended_within(alice, started)
        assert elapsed < 1.0, elapsed
        assert any(isinstance(m, Error) and m.code == "token_revoked" for m in seen), seen
        assert alice.ws.close_code == 1008 and alice.ws.close_reason == "token_revoked"
        left = await bob.wait_for(ParticipantLeft, 2)
        assert (left.identity, left.reason) == ("alice", "token_revoked")
        assert isinstance(await bob.ping(), Pong)
        await bob.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_an_expired_token_keeps_its_joined_session_but_cannot_join_again(
        make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(TVAPP_AUTH_LEEWAY="0")
    room = room_name()
    pair = server.token(room, "short", host=True, ttl=2)

    async def scenario() -> None:
        short = await SignalClient.connect(server.url, pair["access_token"])
        while time.time() <= pair["expires_at"] + 0.5:  # pinging as a client does, past the token's expiry
            assert isinstance(await short.ping(), Pong)
            await asyncio.sleep(0.2)
        assert isinstance(await short.ping(), Pong)
        assert not short.ended.is_set()
        listed = server.http.get(f"/v1/rooms/{room}/participants").json()
        assert [p["identity"] for p in listed] == ["short"]
        try:
            await SignalClient.connect(server.url, pair["access_token"])
            raise AssertionError("an expired token joined")
        except JoinError as exc:
            assert exc.code == "token_expired"
        assert isinstance(await short.ping(), Pong)  # the refused second join did not replace the first
        await short.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
