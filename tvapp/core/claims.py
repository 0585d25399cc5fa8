"""Token claims: what an access or refresh token must say, checked without I/O.

The signature and algorithm are checked by `tvapp.auth.tokens` (PyJWT); everything about the
claims is decided here, with the current time passed in:

- required: iss, sub, aud, iat, nbf, exp, jti, typ (and `grants` on both token types, `fam` on refresh tokens);
- `aud` must be the expected audience, `typ` must fit the use (an access token is never a refresh token);
- `nbf`/`iat` may be at most `leeway` seconds in the future, `exp` at most `leeway` seconds in the past;
- leeway is capped at MAX_LEEWAY seconds whatever the caller asks;
- the display name (`name`) follows tvapp.core.text's rule when a token is built (ValueError otherwise); a signed
  token whose name breaks it anyway (minted by a customer's own auth server) is accepted with the name made
  `displayable()`, so nothing unprintable ever reaches a screen and nobody is locked out by their name;
- a new token lives the configured default unless its issuer asks otherwise, and what it asks must be
  between 1 second and the configured maximum (`checked_ttl`, refused with `invalid_ttl`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any, Mapping

from tvapp.core.errors import CodedError
from tvapp.core.text import MAX_NAME_CHARS, displayable, text_problem

ACCESS = "access"
REFRESH = "refresh"
TOKEN_TYPES = (ACCESS, REFRESH)
REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti", "typ", "grants")
MAX_LEEWAY = 10.0
IDENTITY_RE = re.compile(r"^[A-Za-z0-9_.@:+-]{1,64}$")
# Not dots alone: ".", ".." and "..." vanish from a URL path when it is normalised, so no URL could reach the room.
ROOM_NAME_RE = re.compile(r"^(?!\.+$)[A-Za-z0-9_.:-]{1,64}$")
MAX_NAME_LEN = MAX_NAME_CHARS


class ClaimError(CodedError):
    """A token's claims are not acceptable; `code` is the error code clients see."""


INVALID_ROOM = "invalid_room"


def check_room_name(name: str) -> str:
    """Return ``name`` if it is a room name (ROOM_NAME_RE); raise ClaimError ``invalid_room`` otherwise."""
    if not ROOM_NAME_RE.match(name):
        raise ClaimError(INVALID_ROOM, "a room name is 1-64 letters, digits and _ . : -, and not dots alone")
    return name


@dataclass(frozen=True)
class Grants:
    """What a token allows in one room."""

    room: str
    join: bool = True
    publish: bool = True
    subscribe: bool = True
    publish_data: bool = True
    host: bool = False
    hidden: bool = False

    def to_claim(self) -> dict[str, Any]:
        """Return the `grants` claim object: the room and every flag."""
        return {"room": self.room, **self.flags()}

    def flags(self) -> dict[str, bool]:
        """Return every grant flag by name."""
        return {name: getattr(self, name) for name in GRANT_FLAGS}

    @classmethod
    def from_claim(cls, value: object) -> Grants:
        """Parse a `grants` claim; raise ClaimError when malformed."""
        if not isinstance(value, dict):
            raise ClaimError("invalid_token", "the grants claim must be an object")
        room = value.get("room")
        if not isinstance(room, str) or not ROOM_NAME_RE.match(room):
            raise ClaimError("invalid_token", "the grants claim must name a valid room")
        flags: dict[str, bool] = {}
        for name, default in GRANT_FLAGS.items():
            flag = value.get(name, default)
            if not isinstance(flag, bool):
                raise ClaimError("invalid_token", f"grants.{name} must be true or false")
            flags[name] = flag
        return cls(room=room, **flags)


# Every grant flag and its default, in declaration order: the one list the claim, the REST body and the
# signaling `joined` message are built from.
GRANT_FLAGS: dict[str, bool] = {f.name: getattr(Grants, f.name) for f in fields(Grants) if f.name != "room"}


@dataclass(frozen=True)
class TokenClaims:
    """The checked claims of one token."""

    issuer: str
    identity: str
    audience: str
    issued_at: float
    not_before: float
    expires_at: float
    jti: str
    typ: str
    grants: Grants
    name: str = ""
    family: str | None = None
    room_sid: str | None = None


def checked_ttl(requested: int | None, *, default: int, maximum: int) -> int:
    """Return the lifetime to issue: `default` when none is asked; raise ClaimError when not 1..`maximum`."""
    ttl = default if requested is None else requested
    if not 0 < ttl <= maximum:
        raise ClaimError("invalid_ttl", f"ttl must be between 1 and {maximum} seconds")
    return ttl


def build_claims(
    *,
    issuer: str,
    identity: str,
    audience: str,
    grants: Grants,
    now: float,
    ttl: float,
    typ: str,
    jti: str,
    name: str = "",
    family: str | None = None,
    room_sid: str | None = None,
) -> dict[str, Any]:
    """Return the claim set of a new token (validated the same way tokens are checked)."""
    if typ not in TOKEN_TYPES:
        raise ValueError(f"unknown token type {typ!r}")
    if not IDENTITY_RE.match(identity):
        raise ValueError("identity must be 1-64 characters of letters, digits and _ . @ : + -")
    if not ROOM_NAME_RE.match(grants.room):
        raise ValueError("room must be 1-64 characters of letters, digits and _ . : -, not dots alone")
    problem = text_problem(name)
    if problem is not None:
        raise ValueError(f"name {problem}")
    if not ttl > 0:
        raise ValueError("ttl must be positive")
    iat = int(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": identity,
        "aud": audience,
        "iat": iat,
        "nbf": iat,
        "exp": iat + int(math.ceil(ttl)),
        "jti": jti,
        "typ": typ,
        "grants": grants.to_claim(),
    }
    if name:
        claims["name"] = name
    if family is not None:
        claims["fam"] = family
    if room_sid is not None:
        claims["rsid"] = room_sid
    return claims


def check_claims(
    claims: Mapping[str, object],
    *,
    typ: str,
    audience: str,
    issuer: str,
    now: float,
    leeway: float,
) -> TokenClaims:
    """Check a decoded claim set for `typ` use at time `now`; return it typed or raise ClaimError."""
    leeway = min(max(leeway, 0.0), MAX_LEEWAY)
    for name in REQUIRED_CLAIMS:
        if name not in claims:
            raise ClaimError("invalid_token", f"the token lacks the required claim {name!r}")
    iss = _text(claims, "iss")
    sub = _text(claims, "sub")
    jti = _text(claims, "jti")
    token_typ = _text(claims, "typ")
    iat = _number(claims, "iat")
    nbf = _number(claims, "nbf")
    exp = _number(claims, "exp")
    aud = claims["aud"]
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise ClaimError("invalid_token", "the aud claim must be a string or a list of strings")
    if audience not in audiences:
        raise ClaimError("wrong_audience", "the token is not meant for this server")
    if iss != issuer:
        raise ClaimError("invalid_token", "the token's issuer does not match its signing key")
    if token_typ != typ:
        raise ClaimError("wrong_token_type", f"a {token_typ!r} token cannot be used where a {typ!r} token is needed")
    if not IDENTITY_RE.match(sub):
        raise ClaimError("invalid_token", "the token's identity (sub) is not valid")
    if exp <= nbf:
        raise ClaimError("invalid_token", "the token expires before it becomes valid")
    if now > exp + leeway:
        raise ClaimError("token_expired", "the token has expired")
    if nbf > now + leeway or iat > now + leeway:
        raise ClaimError("token_not_yet_valid", "the token is not valid yet")
    grants = Grants.from_claim(claims["grants"])
    raw_name = claims.get("name", "")
    if not isinstance(raw_name, str) or len(raw_name) > MAX_NAME_LEN:
        raise ClaimError("invalid_token", "the name claim must be a short string")
    name = displayable(raw_name)
    family = _optional_text(claims, "fam")
    if typ == REFRESH and family is None:
        raise ClaimError("invalid_token", "a refresh token must carry its family (fam)")
    return TokenClaims(
        issuer=iss,
        identity=sub,
        audience=audience,
        issued_at=iat,
        not_before=nbf,
        expires_at=exp,
        jti=jti,
        typ=token_typ,
        grants=grants,
        name=name,
        family=family,
        room_sid=_optional_text(claims, "rsid"),
    )


def _text(claims: Mapping[str, object], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ClaimError("invalid_token", f"the {name} claim must be a non-empty string")
    return value


def _optional_text(claims: Mapping[str, object], name: str) -> str | None:
    if name not in claims:
        return None
    return _text(claims, name)


def _number(claims: Mapping[str, object], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ClaimError("invalid_token", f"the {name} claim must be a number")
    return float(value)
