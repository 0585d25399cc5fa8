"""No cache may keep what the core's REST answers carry: every /v1 answer says ``Cache-Control: no-store``.

A real core on 127.0.0.1: the token pair (POST /v1/tokens, /v1/tokens/refresh, an invite's redeem), an invite code,
room lists and the refusals all carry ``no-store`` (RFC 6749 5.1 asks it of token answers); downloads keep their
own ``private, no-store``.
"""

from __future__ import annotations

import httpx

from tvapp.testing.server import ServerProcess


def no_store(response: httpx.Response) -> None:
    assert "no-store" in response.headers.get("cache-control", ""), (response.status_code, dict(response.headers))


def test_every_rest_answer_with_a_secret_or_state_is_marked_no_store(server: ServerProcess) -> None:
    server.http.post("/v1/rooms", json={"name": "no-store"})
    pair = server.http.post("/v1/tokens", json={"room": "no-store", "identity": "ann"})
    assert pair.status_code == 201
    no_store(pair)
    invite = server.http.post("/v1/rooms/no-store/invites", json={})
    no_store(invite)
    with httpx.Client(base_url=server.url, timeout=10) as anyone:
        redeemed = anyone.post(f"/v1/invites/{invite.json()['code']}/redeem", json={"identity": "guest"})
        assert redeemed.status_code == 200, redeemed.text
        no_store(redeemed)
        refreshed = anyone.post("/v1/tokens/refresh", json={"refresh_token": pair.json()["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        no_store(refreshed)
        no_store(anyone.get("/v1/rooms"))  # a refusal (401) too
    no_store(server.http.get("/v1/rooms"))
    no_store(server.http.get("/v1/rooms/no-store/participants"))
