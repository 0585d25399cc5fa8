"""X-Forwarded-For/-Proto/-Host: believed only from `[server] trusted_proxies`, ignored from anyone else.

Real `tvapp serve` processes on 127.0.0.1: one that trusts 127.0.0.1 (the test's own address plays the proxy)
and one that trusts only an address the test never comes from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tvapp.core.forwarded import forwarded, parse_networks
from tvapp.testing.rest import create_invite, create_room
from tvapp.testing.server import ServerProcess

WRONG = "2222-2222"


def redeem(srv: ServerProcess, code: str, **headers: str) -> httpx.Response:
    return srv.http.post(f"/v1/invites/{code}/redeem", json={"identity": "guesser"},
                         headers={k.replace("_", "-"): v for k, v in headers.items()})


def code_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def port_of(srv: ServerProcess) -> int:
    return int(srv.url.rsplit(":", 1)[1])


def test_untrusted_peer_cannot_pick_its_address_for_the_rate_limit(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_SERVER_TRUSTED_PROXIES="192.0.2.7")
    room = create_room(srv)
    real = create_invite(srv, room["name"])["code"]
    wrong = WRONG if real != WRONG else "3333-3333"
    for n in range(5):  # a new made-up address each time: still one client, the real peer
        assert code_of(redeem(srv, wrong, X_Forwarded_For=f"198.51.100.{n}")) == (404, "invite_not_found")
    assert code_of(redeem(srv, real, X_Forwarded_For="198.51.100.200")) == (429, "too_many_attempts")


def test_trusted_proxy_rate_limit_is_per_forwarded_client(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_SERVER_TRUSTED_PROXIES="127.0.0.0/8")
    room = create_room(srv)
    real = create_invite(srv, room["name"])["code"]
    wrong = WRONG if real != WRONG else "3333-3333"
    for _ in range(5):
        # The client's own made-up entry comes first; the proxy appended the address it saw, which counts.
        assert code_of(redeem(srv, wrong, X_Forwarded_For="203.0.113.9, 198.51.100.1")) == (404, "invite_not_found")
    assert code_of(redeem(srv, real, X_Forwarded_For="198.51.100.1")) == (429, "too_many_attempts")
    # Another client behind the same proxy has its own budget.
    assert redeem(srv, real, X_Forwarded_For="198.51.100.2").status_code == 200


def test_host_check_uses_the_real_host_from_an_untrusted_peer(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_SERVER_TRUSTED_PROXIES="192.0.2.7", TVAPP_SERVER_ALLOWED_HOSTS="core.test")
    port = port_of(srv)
    # A forwarded Host does not rescue a foreign Host, nor does a foreign forwarded Host spoil a good one.
    refused = srv.http.get("/healthz", headers={"Host": "evil.example", "X-Forwarded-Host": "core.test"})
    assert code_of(refused) == (400, "bad_host")
    assert srv.http.get("/healthz", headers={"X-Forwarded-Host": "evil.example"}).status_code == 200
    # Same-origin judged on the real Host: an Origin matching only the forwarded Host is cross-site.
    post = srv.http.post("/v1/invites/2222-2222/redeem", json={"identity": "x"},
                         headers={"Origin": "https://core.test", "X-Forwarded-Host": "core.test",
                                  "X-Forwarded-Proto": "https"})
    assert code_of(post) == (403, "bad_origin")
    assert refused_websocket(f"ws://127.0.0.1:{port}/v1/signal",
                             {"Origin": "https://core.test", "X-Forwarded-Host": "core.test"}) == 403


def test_trusted_proxy_forwarded_host_and_origin_are_checked(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_SERVER_TRUSTED_PROXIES="127.0.0.1", TVAPP_SERVER_ALLOWED_HOSTS="core.test")
    port = port_of(srv)
    assert code_of(srv.http.get("/healthz", headers={"X-Forwarded-Host": "evil.example"})) == (400, "bad_host")
    assert srv.http.get("/healthz", headers={"Host": "evil.example", "X-Forwarded-Host": "core.test"}).status_code == 200
    repeated = [("X-Forwarded-Host", "core.test"), ("X-Forwarded-Host", "evil.example")]
    assert code_of(srv.http.get("/healthz", headers=httpx.Headers(repeated))) == (400, "bad_host")
    good = {"Origin": "https://core.test:8443", "X-Forwarded-Host": "core.test:8443", "X-Forwarded-Proto": "https"}
    post = srv.http.post("/v1/invites/2222-2222/redeem", json={"identity": "x"}, headers=good)
    assert code_of(post) == (404, "invite_not_found")  # past the Origin check: same origin as forwarded
    page = srv.http.get("/", headers=good)
    assert "wss://core.test:8443" in page.headers["content-security-policy"]
    # The websocket handshake is judged the same way (101 then the join timeout; not 403).
    assert refused_websocket(f"ws://127.0.0.1:{port}/v1/signal", good) is None
    assert refused_websocket(f"ws://127.0.0.1:{port}/v1/signal",
                             {"Origin": "https://evil.example", "X-Forwarded-Host": "core.test"}) == 403


def refused_websocket(url: str, headers: dict[str, str]) -> int | None:
    async def attempt() -> int | None:
        try:
            async with ws_connect(url, additional_headers=headers, open_timeout=5):
                return None
        except InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(attempt())


@pytest.mark.parametrize("peer, xff, expected", [
    ("10.0.0.5", ["198.51.100.1"], "10.0.0.5"),                      # untrusted peer: header ignored
    ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
    ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 127.0.0.2"], "198.51.100.1"),  # rightmost untrusted, proxies skipped
    ("127.0.0.1", ["not-an-address"], "127.0.0.1"),                  # malformed: the peer's own address stands
    ("::ffff:127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
    ("127.0.0.1", [], "127.0.0.1"),
])
def test_forwarded_for_rule(peer: str, xff: list[str], expected: str) -> None:
    view = forwarded(peer, ["core"], forwarded_for=xff, forwarded_proto=["https"], forwarded_host=[],
                     trusted=parse_networks(["127.0.0.0/8"]))
    assert view.client == expected
    assert view.scheme == ("https" if peer != "10.0.0.5" else None)
