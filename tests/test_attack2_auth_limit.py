"""Guessing API key secrets over HTTP Basic is throttled per client address ([server] auth_failures/auth_window).

Real cores on 127.0.0.1. Past `auth_failures` wrong secrets for a real key id from one address within `auth_window`
seconds (junk and unknown key ids are not guesses at a secret and are not counted), every Basic call from that address (even with the right secret: a guesser learns nothing) gets 429
``too_many_attempts`` with Retry-After, until the window passes. Another address, and Bearer tokens, are unaffected.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tvapp.testing.server import ServerProcess


def client(srv: ServerProcess, address: str, auth: tuple[str, str] | None = None) -> httpx.Client:
    """Return an HTTP client to `srv` whose connections come from the loopback `address`."""
    return httpx.Client(base_url=srv.url, auth=auth, timeout=10,
                        transport=httpx.HTTPTransport(local_address=address))


def test_wrong_api_key_secrets_are_throttled_per_address(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()  # the default: 20 failures a minute
    key_id, secret = srv.key
    srv.http.post("/v1/rooms", json={"name": "guarded"})
    host = srv.token("guarded", "alice", host=True)["access_token"]
    with client(srv, "127.0.0.3", (key_id, "wrong-" + secret)) as guesser, \
            client(srv, "127.0.0.3", (key_id, secret)) as same_address, \
            client(srv, "127.0.0.4", (key_id, secret)) as other_address, client(srv, "127.0.0.3") as bearer:
        for _ in range(20):
            wrong = guesser.get("/v1/rooms")
            assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials", wrong.text
        for attempt in (guesser, same_address):
            throttled = attempt.get("/v1/rooms")
            assert throttled.status_code == 429, throttled.text
            assert throttled.json()["error"]["code"] == "too_many_attempts" and throttled.json()["error"]["message"]
            assert 1 <= int(throttled.headers["retry-after"]) <= 60
            assert secret not in throttled.text
        assert other_address.get("/v1/rooms").status_code == 200
        with client(srv, "127.0.0.4", ("AK0000000000000000", secret)) as unknown_key:
            assert {unknown_key.get("/v1/rooms").status_code for _ in range(25)} == {401}
        assert other_address.get("/v1/rooms").status_code == 200
        assert bearer.get("/v1/rooms/guarded", headers={"authorization": f"Bearer {host}"}).status_code == 200
        malformed = guesser.get("/v1/rooms", headers={"authorization": "Basic !!!"})
        assert malformed.status_code == 429


def test_the_throttle_follows_the_config_and_ends_with_its_window(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_SERVER_AUTH_FAILURES="2", TVAPP_SERVER_AUTH_WINDOW="1.5")
    key_id, secret = srv.key
    with client(srv, "127.0.0.5", (key_id, "x")) as guesser, client(srv, "127.0.0.5", (key_id, secret)) as owner:
        assert [guesser.get("/v1/rooms").status_code for _ in range(3)] == [401, 401, 429]
        assert owner.get("/v1/rooms").status_code == 429
        deadline = time.monotonic() + 10
        while (status := owner.get("/v1/rooms").status_code) == 429 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 200  # the window passed: the right secret works again
