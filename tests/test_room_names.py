"""Room names that survive a URL: dots alone (".", "..", "...") are refused by the one rule, core.claims.ROOM_NAME_RE.

Any name the rule refuses gets 400 `invalid_room` on REST (rooms and tokens).

A URL path normalises "." and ".." away, so a room with such a name could never be reached by
/v1/rooms/{room}/...; the rule refuses them wherever a room name enters: REST bodies, token minting (REST and
`tvapp token`) and the grants claim of a token.
"""

from __future__ import annotations

import pytest

from tvapp.core.claims import (
    ROOM_NAME_RE,
    ClaimError,
    Grants,
    build_claims,
    check_room_name,
)
from tvapp.testing.server import ServerProcess

DOTS = [".", "..", "...", "." * 64]


@pytest.mark.parametrize("name", DOTS)
def test_dots_alone_are_not_a_room_name(name: str) -> None:
    assert ROOM_NAME_RE.match(name) is None
    with pytest.raises(ClaimError):
        Grants.from_claim({"room": name})
    with pytest.raises(ClaimError) as refused:
        check_room_name(name)
    assert refused.value.code == "invalid_room"
    with pytest.raises(ValueError, match="not dots alone"):
        build_claims(issuer="tvapp", identity="alice", audience="tvapp", grants=Grants(room=name), now=0.0,
                     ttl=60, typ="access", jti="j")


@pytest.mark.parametrize("name", ["a.b", ".hidden", "v1..2", "...x", "x...", "a", "a" * 64])
def test_names_with_dots_and_more_are_room_names(name: str) -> None:
    assert ROOM_NAME_RE.match(name) is not None


@pytest.mark.parametrize("name", DOTS)
def test_rest_refuses_dots_as_a_room_name(server: ServerProcess, name: str) -> None:
    created = server.http.post("/v1/rooms", json={"name": name})
    assert created.status_code == 400
    assert created.json()["error"]["code"] == "invalid_room"
    assert "not dots alone" in created.json()["error"]["message"]
    minted = server.http.post("/v1/tokens", json={"room": name, "identity": "alice"})
    assert minted.status_code == 400
    assert minted.json()["error"]["code"] == "invalid_room"


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "room/1", "é"])
def test_rest_answers_invalid_room_for_any_bad_room_name(server: ServerProcess, name: str) -> None:
    for path, body in (("/v1/rooms", {"name": name}), ("/v1/tokens", {"room": name, "identity": "alice"})):
        answer = server.http.post(path, json=body)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_room", (path, answer.text)


def test_rest_still_takes_a_dotted_room_name(server: ServerProcess) -> None:
    assert server.http.post("/v1/rooms", json={"name": "den.tv"}).status_code == 201
    assert server.http.get("/v1/rooms/den.tv").status_code == 200
    assert server.http.post("/v1/tokens", json={"room": "den.tv", "identity": "alice"}).status_code == 201
