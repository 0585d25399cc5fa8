"""Token attacks against a real server: every forged, stale, misused or revoked token is refused on signaling and REST.

Each case of the table is tried twice: as the `join` of a signaling websocket (an error code, then close 1008) and as
the Bearer token of a room-scoped REST call (401 with the same code). Stateful attacks (reuse, removal, key
revocation, another room) have their own tests below.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from security_helpers import (
    assert_error,
    assert_refused_join,
    b64url,
    base_claims,
    call,
    craft,
    join,
    run_cli,
    sign_hs256,
)

from tvapp.client.signaling import JoinError, SignalClient
from tvapp.testing.server import ServerProcess

ROOM = "atk-room"
Key = tuple[str, str]


@dataclass(frozen=True)
class Attack:
    """One row of the table: how to build the token and what each door answers."""

    name: str
    build: Callable[[ServerProcess, str], str]
    code: str | None  # None: the token is good (accepted)
    join_code: str | None = None  # when signaling refuses with another code than REST (protocol-level checks)


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _rs256(srv: ServerProcess, ident: str) -> str:
    kid, _ = srv.key
    return jwt.encode(base_claims(kid, ROOM, ident), _rsa_key(), algorithm="RS256", headers={"kid": kid})


def _hs256_with_public_pem(srv: ServerProcess, ident: str) -> str:
    """The classic confusion: HMAC keyed with an RSA public key, hoping the server uses a public key as secret."""
    pem = _rsa_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return craft(srv.key, ROOM, ident, secret=pem)


def _hs512(srv: ServerProcess, ident: str) -> str:
    kid, secret = srv.key
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns that the key is short for SHA-512; that is not the point here
        return jwt.encode(base_claims(kid, ROOM, ident), secret, algorithm="HS512", headers={"kid": kid})


def _unsigned(alg: str) -> Callable[[ServerProcess, str], str]:
    def build(srv: ServerProcess, ident: str) -> str:
        kid, _ = srv.key
        head = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
        return head + "." + b64url(json.dumps(base_claims(kid, ROOM, ident)).encode()) + "."
    return build


def _alg_none_pyjwt(srv: ServerProcess, ident: str) -> str:
    kid, _ = srv.key
    return jwt.encode(base_claims(kid, ROOM, ident), "", algorithm="none", headers={"kid": kid})


def _none_header_real_signature(srv: ServerProcess, ident: str) -> str:
    """A correctly signed token whose header claims alg none: the header is what is checked, and it lies."""
    kid, secret = srv.key
    return sign_hs256(base_claims(kid, ROOM, ident), secret, {"alg": "none", "typ": "JWT", "kid": kid})


def _changed(**changes: Any) -> Callable[[ServerProcess, str], str]:
    def build(srv: ServerProcess, ident: str) -> str:
        now = int(time.time())
        values = {k: (v(now) if callable(v) else v) for k, v in changes.items()}
        return craft(srv.key, ROOM, ident, **values)
    return build


def _without(claim: str) -> Callable[[ServerProcess, str], str]:
    def build(srv: ServerProcess, ident: str) -> str:
        return craft(srv.key, ROOM, ident, drop=(claim,))
    return build


def _header(**header: object) -> Callable[[ServerProcess, str], str]:
    def build(srv: ServerProcess, ident: str) -> str:
        return craft(srv.key, ROOM, ident, header={"alg": "HS256", "typ": "JWT", **header})
    return build


def _wrong_secret(srv: ServerProcess, ident: str) -> str:
    return craft(srv.key, ROOM, ident, secret="not-the-secret-" + "x" * 32)


def _unknown_kid(srv: ServerProcess, ident: str) -> str:
    _, secret = srv.key
    return craft(("AK00000000deadbeef", secret), ROOM, ident)


def _real_refresh(srv: ServerProcess, ident: str) -> str:
    return srv.token(ROOM, ident, host=True)["refresh_token"]  # type: ignore[no-any-return]


def _literal(text: str) -> Callable[[ServerProcess, str], str]:
    return lambda srv, ident: text


ATTACKS = [
    Attack("alg-none-pyjwt", _alg_none_pyjwt, "invalid_token"),
    Attack("alg-none-unsigned", _unsigned("none"), "invalid_token"),
    Attack("alg-None-unsigned", _unsigned("None"), "invalid_token"),
    Attack("alg-NONE-unsigned", _unsigned("NONE"), "invalid_token"),
    Attack("alg-none-header-real-signature", _none_header_real_signature, "invalid_token"),
    Attack("hs512-right-key", _hs512, "invalid_token"),
    Attack("rs256-own-rsa-key", _rs256, "invalid_token"),
    Attack("hs256-keyed-with-rsa-public-pem", _hs256_with_public_pem, "invalid_token"),
    Attack("right-kid-wrong-secret", _wrong_secret, "invalid_token"),
    Attack("unknown-kid", _unknown_kid, "invalid_token"),
    Attack("missing-kid", _header(), "invalid_token"),
    Attack("kid-not-a-string", _header(kid=123), "invalid_token"),
    Attack("expired-beyond-leeway", _changed(iat=lambda t: t - 700, nbf=lambda t: t - 700,
                                             exp=lambda t: t - 30), "token_expired"),
    Attack("expired-within-leeway", _changed(iat=lambda t: t - 600, nbf=lambda t: t - 600,
                                             exp=lambda t: t - 2), None),
    Attack("nbf-in-future", _changed(nbf=lambda t: t + 60, exp=lambda t: t + 660), "token_not_yet_valid"),
    Attack("iat-in-future", _changed(iat=lambda t: t + 60), "token_not_yet_valid"),
    *(Attack(f"missing-{claim}", _without(claim), "invalid_token")
      for claim in ("iss", "sub", "aud", "iat", "nbf", "exp", "jti", "typ", "grants")),
    Attack("wrong-audience", _changed(aud="someone-else"), "wrong_audience"),
    Attack("wrong-audience-list", _changed(aud=["a", "b"]), "wrong_audience"),
    Attack("issuer-not-kid", _changed(iss="AK0000000000000000"), "invalid_token"),
    Attack("exp-not-a-number", _changed(exp="tomorrow"), "invalid_token"),
    Attack("exp-before-nbf", _changed(exp=lambda t: t - 1, nbf=lambda t: t + 1, iat=lambda t: t), "invalid_token"),
    Attack("grants-without-room", _changed(grants={"host": True}), "invalid_token"),
    Attack("grants-host-not-bool", _changed(grants={"room": ROOM, "host": "yes"}), "invalid_token"),
    Attack("typ-unknown", _changed(typ="admin"), "wrong_token_type"),
    Attack("refresh-used-as-access", _real_refresh, "wrong_token_type"),
    Attack("crafted-refresh-used-as-access", _changed(typ="refresh", fam="F1"), "wrong_token_type"),
    Attack("empty-string", _literal(""), "invalid_token", join_code="bad_message"),
    Attack("9-kb", _literal("eyJ" + "A" * 9 * 1024), "invalid_token", join_code="bad_message"),
    Attack("not-base64", _literal("!!!.@@@.###"), "invalid_token"),
    Attack("two-segments", _literal("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0"), "invalid_token"),
    Attack("one-segment", _literal("garbage"), "invalid_token"),
    Attack("four-segments", _literal("a.b.c.d"), "invalid_token"),
]


@pytest.fixture(scope="module")
def room(server: ServerProcess) -> str:
    """Create the room the table's tokens name (so an accepted Bearer token finds it)."""
    response = server.http.post("/v1/rooms", json={"name": ROOM})
    assert response.status_code in (201, 409), response.text
    return ROOM


def _participants(srv: ServerProcess, token: str, room: str = ROOM) -> httpx.Response:
    return call(srv.url, "GET", f"/v1/rooms/{room}/participants", token=token)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_on_signaling_join(server: ServerProcess, room: str, attack: Attack) -> None:
    token = attack.build(server, "sig-" + attack.name[:40])
    if attack.code is None:
        first, close_code = join(server.url, token)
        assert first["type"] == "joined", first
        assert close_code is None
    else:
        assert_refused_join(server.url, token, attack.join_code or attack.code)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_on_room_rest_call(server: ServerProcess, room: str, attack: Attack) -> None:
    token = attack.build(server, "rest-" + attack.name[:40])
    response = _participants(server, token)
    if attack.code is None:
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), list)
    else:
        assert_error(response, 401, attack.code)
        assert token not in response.text or not token


def test_good_crafted_token_is_accepted_by_both(server: ServerProcess, room: str) -> None:
    """The table's refusals mean something only if the same crafting accepts an honest token."""
    token = craft(server.key, ROOM, "honest")
    first, close_code = join(server.url, token)
    assert first["type"] == "joined" and close_code is None
    assert _participants(server, token).status_code == 200


def test_host_token_for_room_a_is_refused_on_room_b(server: ServerProcess) -> None:
    for name in ("atk-a", "atk-b"):
        assert server.http.post("/v1/rooms", json={"name": name}).status_code in (201, 409)
    token_a = server.token("atk-a", "host-a", host=True)["access_token"]
    for path in ("/v1/rooms/atk-b", "/v1/rooms/atk-b/participants", "/v1/rooms/atk-b/sessions"):
        assert_error(call(server.url, "GET", path, token=token_a), 403, "wrong_room")
    assert_error(call(server.url, "POST", "/v1/rooms/atk-b/invites", json={}, token=token_a),
                 403, "wrong_room")
    assert_error(call(server.url, "POST", "/v1/rooms/atk-b/complete", token=token_a), 403, "wrong_room")
    assert server.http.get("/v1/rooms/atk-b").json()["status"] != "completed"
    assert _participants(server, token_a, "atk-a").status_code == 200
    # On signaling the token names its room, so it can only ever join room A.
    first, _ = join(server.url, token_a)
    assert first["type"] == "joined" and first["room"]["name"] == "atk-a"


def test_non_host_token_cannot_call_room_api(server: ServerProcess, room: str) -> None:
    token = server.token(ROOM, "guest-only")["access_token"]
    assert_error(_participants(server, token), 403, "not_host")


def test_token_holder_cannot_use_key_only_calls(server: ServerProcess, room: str) -> None:
    token = server.token(ROOM, "host-no-key", host=True)["access_token"]
    assert_error(call(server.url, "GET", "/v1/rooms", token=token), 403, "key_required")
    assert_error(call(server.url, "POST", "/v1/rooms", json={"name": "atk-z"}, token=token),
                 403, "key_required")
    assert_error(call(server.url, "POST", "/v1/tokens", json={"room": ROOM, "identity": "x", "grants": {"host": True}},
                      token=token), 403, "key_required")


def test_access_token_is_refused_at_refresh(server: ServerProcess) -> None:
    pair = server.token(ROOM, "acc-at-refresh")
    response = call(server.url, "POST", "/v1/tokens/refresh", json={"refresh_token": pair["access_token"]})
    assert_error(response, 401, "wrong_token_type")


def test_replayed_refresh_revokes_the_whole_family(server: ServerProcess, room: str) -> None:
    first = server.token(ROOM, "replayer", host=True)
    second = server.http.post("/v1/tokens/refresh", json={"refresh_token": first["refresh_token"]}).json()
    third = server.http.post("/v1/tokens/refresh", json={"refresh_token": second["refresh_token"]}).json()
    assert _participants(server, third["access_token"]).status_code == 200

    replay = call(server.url, "POST", "/v1/tokens/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error(replay, 401, "token_reused")

    newest = call(server.url, "POST", "/v1/tokens/refresh", json={"refresh_token": third["refresh_token"]})
    assert_error(newest, 401, "token_revoked")
    for pair in (first, second, third):
        assert_error(_participants(server, pair["access_token"]), 401, "token_revoked")
        assert_refused_join(server.url, pair["access_token"], "token_revoked")
    # A pair of another family for the same identity is untouched.
    other = server.token(ROOM, "replayer", host=True)
    assert _participants(server, other["access_token"]).status_code == 200


def test_removed_participants_token_is_revoked(server: ServerProcess) -> None:
    room = "atk-removal"
    host = server.token(room, "atk-host", host=True)["access_token"]
    guest = server.token(room, "atk-guest", host=True)

    async def scenario() -> tuple[int | None, str]:
        owner = await SignalClient.connect(server.url, host)
        visitor = await SignalClient.connect(server.url, guest["access_token"])
        try:
            removed = call(server.url, "DELETE", f"/v1/rooms/{room}/participants/atk-guest", token=host)
            assert removed.status_code == 204, removed.text
            closed = await visitor.wait_closed()
            with pytest.raises(JoinError) as refused:
                await SignalClient.connect(server.url, guest["access_token"])
            assert refused.value.code == "token_revoked"
            return closed
        finally:
            await visitor.close()
            await owner.close()

    code, reason = asyncio.run(scenario())
    assert code == 1000 and reason == "removed"
    assert_refused_join(server.url, guest["access_token"], "token_revoked")
    assert_error(_participants(server, guest["access_token"], room), 401, "token_revoked")
    refresh = call(server.url, "POST", "/v1/tokens/refresh", json={"refresh_token": guest["refresh_token"]})
    assert_error(refresh, 401, "token_revoked")


def test_tokens_signed_by_a_revoked_key_are_refused(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    created = run_cli("keys", "create", "--json", data=srv.data_dir)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    crafted = craft((key["id"], key["secret"]), "atk-revoked", "by-new-key")
    issued = srv.http.post("/v1/tokens", json={"room": "atk-revoked", "identity": "issued", "grants": {"host": True}},
                           auth=(key["id"], key["secret"]))
    assert issued.status_code == 201, issued.text
    issued_token = issued.json()["access_token"]
    assert jwt.get_unverified_header(issued_token)["kid"] == key["id"]
    for token in (crafted, issued_token):
        first, _ = join(srv.url, token)
        assert first["type"] == "joined", first
        assert _participants(srv, token, "atk-revoked").status_code == 200

    revoked = run_cli("keys", "revoke", key["id"], data=srv.data_dir)
    assert revoked.returncode == 0, revoked.stderr
    assert srv.proc is not None and srv.proc.poll() is None
    for token in (crafted, issued_token):
        assert_refused_join(srv.url, token, "invalid_token")
        assert_error(_participants(srv, token, "atk-revoked"), 401, "invalid_token")
    # Tokens of the server's first key keep working: only the revoked key's tokens died.
    assert _participants(srv, craft(srv.key, "atk-revoked", "old-key"), "atk-revoked").status_code == 200


@pytest.fixture
def rsa_public_pem() -> Iterator[bytes]:
    """An RSA public key PEM, the 'public key' an HS/RS confusion attacker would use."""
    yield _rsa_key().public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)


def test_hs256_with_public_pem_and_unknown_kid_is_refused(server: ServerProcess, room: str,
                                                          rsa_public_pem: bytes) -> None:
    """Name a kid the server does not know and key the HMAC with a public PEM: no lookup can succeed."""
    kid = "AK" + "f" * 16
    token = sign_hs256(base_claims(kid, ROOM, "pem-kid"), rsa_public_pem, {"alg": "HS256", "kid": kid})
    assert_refused_join(server.url, token, "invalid_token")
    assert_error(_participants(server, token), 401, "invalid_token")
