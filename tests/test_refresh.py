"""Refresh-token rotation against a real server: new pairs, retired tokens, reuse detection, expiry and removal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from security_helpers import assert_error, assert_refused_join, call, craft, join

from tvapp.client.signaling import SignalClient
from tvapp.testing.server import ServerProcess


def refresh(srv: ServerProcess, token: str) -> httpx.Response:
    """POST /v1/tokens/refresh without any credentials (the refresh token is the credential)."""
    return call(srv.url, "POST", "/v1/tokens/refresh", json={"refresh_token": token})


def claims_of(token: str) -> dict[str, Any]:
    """Read a token's claims without checking it (the server did)."""
    return jwt.decode(token, options={"verify_signature": False})


def test_refresh_returns_a_new_pair_of_the_same_family(server: ServerProcess) -> None:
    old = server.token("rf-room", "rf-alice", host=True, name="Alice")
    response = refresh(server, old["refresh_token"])
    assert response.status_code == 200, response.text
    new = response.json()
    assert set(new) == {"access_token", "refresh_token", "expires_at", "refresh_expires_at", "identity", "room"}
    assert new["identity"] == "rf-alice" and new["room"] == "rf-room"
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] > time.time() and new["refresh_expires_at"] > time.time()
    old_refresh, new_refresh, new_access = (claims_of(t) for t in
                                            (old["refresh_token"], new["refresh_token"], new["access_token"]))
    assert new_refresh["fam"] == old_refresh["fam"] == new_access["fam"]
    assert new_refresh["jti"] != old_refresh["jti"]
    assert new_access["typ"] == "access" and new_refresh["typ"] == "refresh"
    assert new_access["grants"] == claims_of(old["access_token"])["grants"]
    assert new_access.get("name") == "Alice"


def test_refreshed_access_token_joins_with_its_grants(server: ServerProcess) -> None:
    old = server.token("rf-join", "rf-bob", host=True)
    new = refresh(server, old["refresh_token"]).json()

    async def scenario() -> None:
        client = await SignalClient.connect(server.url, new["access_token"])
        try:
            assert client.joined.room.name == "rf-join"
            assert client.joined.participant.identity == "rf-bob"
            assert client.joined.grants.host
            await client.ping()
        finally:
            await client.close()

    asyncio.run(scenario())
    assert call(server.url, "GET", "/v1/rooms/rf-join/participants", token=new["access_token"]).status_code == 200


def test_rotation_can_go_on(server: ServerProcess) -> None:
    pair = server.token("rf-chain", "rf-carol")
    seen = {pair["refresh_token"]}
    for _ in range(5):
        response = refresh(server, pair["refresh_token"])
        assert response.status_code == 200, response.text
        pair = response.json()
        assert pair["refresh_token"] not in seen
        seen.add(pair["refresh_token"])


def test_replaying_the_old_refresh_token_revokes_the_family(server: ServerProcess) -> None:
    old = server.token("rf-replay", "rf-dave", host=True)
    new = refresh(server, old["refresh_token"]).json()
    first, _ = join(server.url, new["access_token"])
    assert first["type"] == "joined"

    assert_error(refresh(server, old["refresh_token"]), 401, "token_reused")
    assert_error(refresh(server, new["refresh_token"]), 401, "token_revoked")
    assert_error(refresh(server, old["refresh_token"]), 401, "token_revoked")
    for token in (old["access_token"], new["access_token"]):
        assert_refused_join(server.url, token, "token_revoked")
        assert_error(call(server.url, "GET", "/v1/rooms/rf-replay", token=token), 401, "token_revoked")


def test_racing_refreshes_of_one_token_let_exactly_one_win(server: ServerProcess) -> None:
    pair = server.token("rf-race", "rf-erin")

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as client:
            return list(await asyncio.gather(*(
                client.post("/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]}) for _ in range(4))))

    responses = asyncio.run(race())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401], [r.text for r in responses]
    codes = {r.json()["error"]["code"] for r in responses if r.status_code == 401}
    assert codes <= {"token_reused", "token_revoked"} and "token_reused" in codes
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert_error(refresh(server, winner["refresh_token"]), 401, "token_revoked")


def test_expired_refresh_token_is_refused(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_AUTH_REFRESH_TTL="1")
    pair = srv.token("rf-exp", "rf-frank")
    assert pair["refresh_expires_at"] - time.time() <= 2.0
    time.sleep(max(0.0, pair["refresh_expires_at"] - time.time()) + 0.2)
    # Still inside the JWT leeway, so it is the store that knows the token has expired.
    assert_error(refresh(srv, pair["refresh_token"]), 401, "token_expired")
    # An expired token grants nothing, so it revokes nothing: a token of another family still works.
    other = srv.token("rf-exp", "rf-frank")
    assert refresh(srv, other["refresh_token"]).status_code == 200


def test_refresh_token_past_the_leeway_is_refused(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_AUTH_REFRESH_TTL="1", TVAPP_AUTH_LEEWAY="0")
    pair = srv.token("rf-exp0", "rf-gina")
    time.sleep(max(0.0, pair["refresh_expires_at"] - time.time()) + 1.1)
    assert_error(refresh(srv, pair["refresh_token"]), 401, "token_expired")


def test_refresh_after_removal_is_refused(server: ServerProcess) -> None:
    host = server.token("rf-removal", "rf-host", host=True)
    guest = server.token("rf-removal", "rf-guest")

    async def scenario() -> None:
        owner = await SignalClient.connect(server.url, host["access_token"])
        visitor = await SignalClient.connect(server.url, guest["access_token"])
        try:
            response = server.http.delete("/v1/rooms/rf-removal/participants/rf-guest")
            assert response.status_code == 204, response.text
            await visitor.wait_closed()
        finally:
            await visitor.close()
            await owner.close()

    asyncio.run(scenario())
    assert_error(refresh(server, guest["refresh_token"]), 401, "token_revoked")
    # The host's own family is not touched by removing someone else.
    assert refresh(server, host["refresh_token"]).status_code == 200


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, {"refresh_token": 5}, {"refresh_token": "a.b.c"},
                                  {"refresh_token": "x" * 9000}, {"refresh_token": "t", "extra": 1}])
def test_malformed_refresh_requests_are_refused(server: ServerProcess, body: dict[str, Any]) -> None:
    response = call(server.url, "POST", "/v1/tokens/refresh", json=body)
    error = assert_error(response)
    assert response.status_code in (400, 401), error


def test_refresh_token_with_unknown_jti_is_refused(server: ServerProcess) -> None:
    """A well-signed refresh token the store never issued (e.g. minted elsewhere) cannot rotate."""
    token = craft(server.key, "rf-unknown", "rf-henry", typ="refresh", fam="never-issued")
    assert_error(refresh(server, token), 401, "token_revoked")
