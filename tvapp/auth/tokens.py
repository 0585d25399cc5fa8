"""Sign, verify and accept JWTs (HS256 with an API key's secret) with PyJWT; claims are checked by tvapp.core.claims.

Verification order: parse the header, allow only HS256, look up the `kid` among active keys,
check the signature, then hand the claims to `check_claims` with the current time. Every
failure raises TokenError with a stable code; messages never include the token itself.

Acceptance (`TokenAuthority.accept`, the one check every use of an access token goes through, REST
and signaling alike) adds the rules that need the server's memory, asked through a `Revocations`
object: a token whose id (jti) was revoked, or whose refresh family was revoked, is refused with
`token_revoked`; a token used to join a room must grant `join` (`not_allowed`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

import jwt

from tvapp.auth.keys import ApiKey, KeyStore
from tvapp.core.claims import ACCESS, REFRESH, ClaimError, Grants, TokenClaims, build_claims, check_claims
from tvapp.core.errors import CodedError

ALGORITHMS = ("HS256",)
MAX_TOKEN_BYTES = 8192


class TokenError(CodedError):
    """A token was refused; `code` is what clients see."""


@dataclass(frozen=True)
class IssuedToken:
    """A signed token with its checked claims."""

    token: str
    claims: TokenClaims


class Revocations(Protocol):
    """What acceptance asks of the server's memory of revoked tokens (tvapp.server.store.Store is one)."""

    def jti_revoked(self, jti: str) -> bool: ...

    def family_revoked(self, family: str) -> bool: ...


class TokenAuthority:
    """Issues and verifies tokens with the keys of one key store."""

    def __init__(self, keys: KeyStore, *, audience: str, leeway: float) -> None:
        self.keys = keys
        self.audience = audience
        self.leeway = leeway

    def issue(
        self,
        key: ApiKey,
        *,
        identity: str,
        grants: Grants,
        ttl: float,
        now: float,
        typ: str = ACCESS,
        name: str = "",
        family: str | None = None,
        room_sid: str | None = None,
    ) -> IssuedToken:
        """Sign a new token with `key`; raise ValueError for an invalid identity, room or ttl."""
        claims = build_claims(
            issuer=key.id,
            identity=identity,
            audience=self.audience,
            grants=grants,
            now=now,
            ttl=ttl,
            typ=typ,
            jti=secrets.token_urlsafe(16),
            name=name,
            family=family,
            room_sid=room_sid,
        )
        token = jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.id, "typ": "JWT"})
        checked = check_claims(claims, typ=typ, audience=self.audience, issuer=key.id, now=now, leeway=0)
        return IssuedToken(token=token, claims=checked)

    def issue_pair(
        self,
        key: ApiKey,
        *,
        identity: str,
        grants: Grants,
        access_ttl: float,
        refresh_ttl: float,
        now: float,
        name: str = "",
        family: str | None = None,
        room_sid: str | None = None,
    ) -> tuple[IssuedToken, IssuedToken]:
        """Sign an access token and a refresh token of one family (a new family unless given)."""
        family = family or secrets.token_urlsafe(12)
        access, refresh = (self.issue(key, identity=identity, grants=grants, ttl=ttl, now=now, typ=typ, name=name,
                                      family=family, room_sid=room_sid)
                           for typ, ttl in ((ACCESS, access_ttl), (REFRESH, refresh_ttl)))
        return access, refresh

    def verify(self, token: object, *, typ: str, now: float) -> TokenClaims:
        """Check a token's signature and claims for `typ` use; raise TokenError when refused."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
            raise TokenError("invalid_token", "the token is missing or too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("invalid_token", "the token is not a well-formed JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenError("invalid_token", "the token's signing algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenError("invalid_token", "the token does not name its key (kid)")
        key = self.keys.get(kid)
        if key is None:
            raise TokenError("invalid_token", "the token's key is unknown or revoked")
        try:
            claims = jwt.decode(
                token,
                key.secret,
                algorithms=list(ALGORITHMS),
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_jti": False,
                    "verify_sub": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError("invalid_token", "the token's signature does not match") from None
        except jwt.PyJWTError:
            raise TokenError("invalid_token", "the token could not be decoded") from None
        try:
            return check_claims(claims, typ=typ, audience=self.audience, issuer=kid, now=now, leeway=self.leeway)
        except ClaimError as exc:
            raise TokenError(exc.code, exc.message) from None

    def accept(self, token: object, *, now: float, revocations: Revocations, joining: bool = False) -> TokenClaims:
        """Verify an access token and apply the acceptance rules (revocation; `join` when joining)."""
        claims = self.verify(token, typ=ACCESS, now=now)
        if revocations.jti_revoked(claims.jti) or (claims.family and revocations.family_revoked(claims.family)):
            raise TokenError("token_revoked", "this token has been revoked")
        if joining and not claims.grants.join:
            raise TokenError("not_allowed", "this token does not allow joining")
        return claims


__all__ = ["ACCESS", "REFRESH", "IssuedToken", "Revocations", "TokenAuthority", "TokenError"]
