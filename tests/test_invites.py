"""Invite codes on a real `tvapp serve`: create, redeem (forgiving input), the guest token, use and time limits,
the failed-attempt limiter, taken and removed identities, and who may create invites.

Failed redeems count against the client address (127.0.0.1 for every test), so every test that expects
a failure starts its own server with a fresh limiter.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tvapp.client.signaling import SignalClient
from tvapp.core.codes import INVITE_ALPHABET
from tvapp.testing.aio import run
from tvapp.testing.rest import create_invite, create_room
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async

CODE_RE = re.compile(f"^[{INVITE_ALPHABET}]{{4}}-[{INVITE_ALPHABET}]{{4}}$")


def redeem(srv: ServerProcess, code: str, identity: str, **body: Any) -> httpx.Response:
    """Redeem without credentials, as a phone would."""
    return httpx.post(f"{srv.url}/v1/invites/{code}/redeem", json={"identity": identity, **body}, timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_create_with_api_key_gives_a_readable_code(server: ServerProcess) -> None:
    room = create_room(server)
    before = time.time()
    invite = create_invite(server, room["name"])
    assert set(invite) == {"code", "room", "room_sid", "expires_at", "max_uses"}
    assert CODE_RE.match(invite["code"]), invite["code"]
    assert not set(invite["code"]) & set("01ILO")
    assert (invite["room"], invite["room_sid"], invite["max_uses"]) == (room["name"], room["sid"], 10)
    assert before + 899 <= invite["expires_at"] <= time.time() + 901
    custom = create_invite(server, room["sid"], ttl=60, max_uses=3)
    assert custom["max_uses"] == 3 and custom["expires_at"] <= time.time() + 61
    codes = {create_invite(server, room["name"])["code"] for _ in range(20)}
    assert len(codes) == 20


def test_create_with_the_room_hosts_bearer_token(server: ServerProcess) -> None:
    room = create_room(server)
    host = server.token(room["name"], "host", host=True)["access_token"]
    response = httpx.post(f"{server.url}/v1/rooms/{room['name']}/invites", json={"max_uses": 1},
                          headers=bearer(host))
    assert response.status_code == 201, response.text
    assert CODE_RE.match(response.json()["code"]) and response.json()["room_sid"] == room["sid"]
    assert redeem(server, response.json()["code"], "guest").status_code == 200


@pytest.mark.parametrize("body, code", [
    ({"ttl": 86_401}, "invalid_ttl"), ({"ttl": 0}, "invalid_request"), ({"max_uses": 0}, "invalid_request"),
    ({"max_uses": 1001}, "invalid_request"), ({"uses": 3}, "invalid_request"),
])
def test_bad_invite_bodies_are_400(server: ServerProcess, body: dict[str, int], code: str) -> None:
    room = create_room(server)
    assert error_of(server.http.post(f"/v1/rooms/{room['name']}/invites", json=body)) == (400, code)


def test_invites_for_completed_or_unknown_rooms_are_refused(server: ServerProcess) -> None:
    room = create_room(server)
    server.http.post(f"/v1/rooms/{room['sid']}/complete").raise_for_status()
    assert error_of(server.http.post(f"/v1/rooms/{room['sid']}/invites", json={})) == (410, "room_completed")
    assert error_of(server.http.post(f"/v1/rooms/nope-{uuid.uuid4().hex}/invites", json={})) == (
        404, "room_not_found")


def test_redeem_forgives_case_and_dashes_and_the_guest_token_joins(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = create_room(server)
        code = create_invite(server, room["name"])["code"]
        for typed, identity in ((code, "g1"), (code.lower(), "g2"), (code.replace("-", ""), "g3"),
                                (" " + code.lower().replace("-", " ") + " ", "g4")):
            response = redeem(server, typed, identity, name=f"Guest {identity}")
            assert response.status_code == 200, (typed, response.text)
            pair = response.json()
            assert set(pair) == {"access_token", "refresh_token", "expires_at", "refresh_expires_at",
                                 "identity", "room"}
            assert (pair["identity"], pair["room"]) == (identity, room["name"])
            assert time.time() + 500 <= pair["expires_at"] <= time.time() + 601

        guest = await SignalClient.connect(server.url, pair["access_token"])
        assert guest.joined.room.sid == room["sid"]
        assert guest.joined.participant.identity == "g4" and guest.joined.participant.name == "Guest g4"
        assert guest.joined.grants.host is False and guest.joined.grants.hidden is False
        assert guest.joined.grants.publish is True
        await guest.close()

    run(scenario())


def test_max_uses_is_enforced(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    room = create_room(srv)
    code = create_invite(srv, room["name"], max_uses=2)["code"]
    assert redeem(srv, code, "a").status_code == 200
    assert redeem(srv, code, "b").status_code == 200
    for identity in ("c", "d"):
        assert error_of(redeem(srv, code, identity)) == (410, "invite_used_up")
    other = create_invite(srv, room["name"], max_uses=1)["code"]  # each code counts on its own
    assert redeem(srv, other, "c").status_code == 200


def test_an_expired_code_is_gone(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    room = create_room(srv)
    short = create_invite(srv, room["name"], ttl=1)["code"]
    lasting = create_invite(srv, room["name"], ttl=60)["code"]
    time.sleep(1.2)  # the server's own clock must pass the 1 s TTL (a redeem before it would use the code up)
    assert error_of(redeem(srv, short, "late")) == (410, "invite_expired")
    assert redeem(srv, lasting, "late").status_code == 200


def test_unknown_and_malformed_codes_are_404(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    room = create_room(srv)
    real = create_invite(srv, room["name"])["code"]
    unknown = next(c + d for c in ("2222", "3333") for d in ("-2222", "-3333") if c + d != real)
    assert error_of(redeem(srv, unknown, "someone")) == (404, "invite_not_found")
    assert error_of(redeem(srv, "0000-1111", "someone")) == (404, "invite_not_found")  # outside the alphabet
    assert error_of(redeem(srv, "ABC", "someone")) == (404, "invite_not_found")
    assert redeem(srv, real, "someone").status_code == 200


def test_too_many_failures_from_one_address_are_429(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_INVITES_REDEEM_WINDOW="3")
    room = create_room(srv)
    real = create_invite(srv, room["name"])["code"]
    wrong = "2222-2222" if real != "2222-2222" else "3333-3333"
    for _ in range(5):
        assert error_of(redeem(srv, wrong, "guesser")) == (404, "invite_not_found")
    refused = redeem(srv, real, "guesser")  # even the right code, while the address is locked out
    assert error_of(refused) == (429, "too_many_attempts")
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 3
    assert error_of(redeem(srv, wrong, "guesser")) == (429, "too_many_attempts")
    time.sleep(retry + 0.2)  # the lockout ends by the server's clock: the time passing is what is tested
    assert redeem(srv, real, "guesser").status_code == 200


def test_the_default_lockout_lasts_about_a_minute(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    for _ in range(5):
        redeem(srv, "2222-2222", "guesser")
    refused = redeem(srv, "2222-2222", "guesser")
    assert error_of(refused) == (429, "too_many_attempts")
    assert 55 <= int(refused.headers["Retry-After"]) <= 60


def test_an_identity_in_the_room_cannot_redeem(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = create_room(server)
        alice = await SignalClient.connect(server.url, server.token(room["name"], "alice")["access_token"])
        code = create_invite(server, room["name"])["code"]
        assert error_of(redeem(server, code, "alice")) == (409, "identity_taken")
        await alice.close()
        await wait_until_async(lambda: not server.http.get(f"/v1/rooms/{room['name']}/participants").json(), 5,
                               "alice to leave the room")
        assert error_of(redeem(server, code, "alice")) == (409, "identity_taken")  # still hers while the room lives

    run(scenario())


def test_a_guest_cannot_create_invites_nor_a_host_of_another_room(server: ServerProcess) -> None:
    room = create_room(server)
    other = create_room(server)
    guest = redeem(server, create_invite(server, room["name"])["code"], "guest").json()["access_token"]
    response = httpx.post(f"{server.url}/v1/rooms/{room['name']}/invites", json={}, headers=bearer(guest))
    assert error_of(response) == (403, "not_host")
    plain = server.token(room["name"], "plain")["access_token"]
    response = httpx.post(f"{server.url}/v1/rooms/{room['name']}/invites", json={}, headers=bearer(plain))
    assert error_of(response) == (403, "not_host")
    foreign_host = server.token(other["name"], "host", host=True)["access_token"]
    response = httpx.post(f"{server.url}/v1/rooms/{room['name']}/invites", json={}, headers=bearer(foreign_host))
    assert error_of(response) == (403, "wrong_room")
    response = httpx.post(f"{server.url}/v1/rooms/{room['name']}/invites", json={}, headers=bearer("not.a.jwt"))
    assert response.status_code == 401


def test_a_removed_identity_cannot_redeem_again_in_that_room_session(server: ServerProcess) -> None:
    async def scenario() -> None:
        room = create_room(server)
        code = create_invite(server, room["name"])["code"]
        pair = redeem(server, code, "pest").json()
        pest = await SignalClient.connect(server.url, pair["access_token"])
        response = server.http.delete(f"/v1/rooms/{room['name']}/participants/pest")
        assert response.status_code == 204
        await pest.wait_closed()
        assert error_of(redeem(server, code, "pest")) == (403, "removed")
        fresh = create_invite(server, room["name"])["code"]
        assert error_of(redeem(server, fresh, "pest")) == (403, "removed")
        assert redeem(server, fresh, "friend").status_code == 200

        server.http.post(f"/v1/rooms/{room['sid']}/complete").raise_for_status()
        again = create_room(server, name=room["name"])  # a new session of that name: the ban was for the old one
        assert redeem(server, create_invite(server, again["name"])["code"], "pest").status_code == 200

    run(scenario())
