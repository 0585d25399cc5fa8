"""Tests for token acceptance (tvapp.auth.tokens.TokenAuthority.accept) and the lifetime rule (core.claims.checked_ttl).

In-process, with a real key store in a temporary folder and a set-backed `Revocations`: the end-to-end
attacks on a running server are in test_token_attacks.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tvapp.auth.keys import KeyStore
from tvapp.auth.tokens import REFRESH, TokenAuthority, TokenError
from tvapp.core.claims import ClaimError, Grants, checked_ttl

NOW = 1_700_000_000.0


@dataclass
class Revoked:
    jtis: set[str] = field(default_factory=set)
    families: set[str] = field(default_factory=set)

    def jti_revoked(self, jti: str) -> bool:
        return jti in self.jtis

    def family_revoked(self, family: str) -> bool:
        return family in self.families


@pytest.fixture
def authority(tmp_path: Path) -> TokenAuthority:
    keys = KeyStore(tmp_path)
    keys.ensure_key(NOW)
    return TokenAuthority(keys, audience="tvapp", leeway=5)


def pair(authority: TokenAuthority, grants: Grants | None = None) -> tuple[str, str]:
    key = authority.keys.signing_key()
    assert key is not None
    access, refresh = authority.issue_pair(key, identity="ana", grants=grants or Grants(room="r"),
                                           access_ttl=600, refresh_ttl=3600, now=NOW)
    return access.token, refresh.token


def refused(authority: TokenAuthority, token: str, revoked: Revoked, **kw: bool) -> str:
    with pytest.raises(TokenError) as info:
        authority.accept(token, now=NOW + 1, revocations=revoked, **kw)
    return info.value.code


def test_a_good_access_token_is_accepted_for_rest_and_for_joining(authority: TokenAuthority) -> None:
    access, _ = pair(authority)
    assert authority.accept(access, now=NOW + 1, revocations=Revoked()).identity == "ana"
    assert authority.accept(access, now=NOW + 1, revocations=Revoked(), joining=True).grants.room == "r"


def test_a_revoked_id_or_family_is_refused(authority: TokenAuthority) -> None:
    access, _ = pair(authority)
    claims = authority.verify(access, typ="access", now=NOW + 1)
    assert refused(authority, access, Revoked(jtis={claims.jti})) == "token_revoked"
    assert claims.family is not None
    assert refused(authority, access, Revoked(families={claims.family}), joining=True) == "token_revoked"


def test_joining_needs_the_join_grant(authority: TokenAuthority) -> None:
    access, _ = pair(authority, Grants(room="r", join=False))
    assert authority.accept(access, now=NOW + 1, revocations=Revoked()).grants.join is False
    assert refused(authority, access, Revoked(), joining=True) == "not_allowed"


def test_verification_comes_first(authority: TokenAuthority) -> None:
    _, refresh = pair(authority)
    assert refused(authority, refresh, Revoked()) == "wrong_token_type"
    assert refused(authority, "not.a.jwt", Revoked()) == "invalid_token"
    assert authority.verify(refresh, typ=REFRESH, now=NOW + 1).family is not None


@pytest.mark.parametrize("requested,expected", [(None, 600), (1, 1), (86_400, 86_400)])
def test_checked_ttl_gives_the_default_or_what_was_asked(requested: int | None, expected: int) -> None:
    assert checked_ttl(requested, default=600, maximum=86_400) == expected


@pytest.mark.parametrize("requested", [0, -5, 86_401])
def test_checked_ttl_refuses_outside_one_to_the_maximum(requested: int) -> None:
    with pytest.raises(ClaimError) as info:
        checked_ttl(requested, default=600, maximum=86_400)
    assert info.value.code == "invalid_ttl"
    assert info.value.message == "ttl must be between 1 and 86400 seconds"


def test_checked_ttl_refuses_a_default_above_the_maximum() -> None:
    with pytest.raises(ClaimError):
        checked_ttl(None, default=900, maximum=600)
