"""Who is calling the REST API, and may they touch this room.

Server-side calls use HTTP Basic with an API key id and secret; room-scoped calls also accept
`Authorization: Bearer <access token>` whose grants make its holder the host of that very room.
A bearer token goes through the same acceptance as a signaling join (tvapp.auth.tokens.TokenAuthority.accept);
this module only maps its refusal to 401.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated

from fastapi import Depends, Path, Request

from tvapp.auth.keys import ApiKey
from tvapp.auth.tokens import TokenError
from tvapp.core.claims import ROOM_NAME_RE, ClaimError, TokenClaims, check_room_name
from tvapp.server.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from tvapp.server.live import LiveRoom
from tvapp.server.state import ServerState
from tvapp.server.store import RoomRow

# No max_length here: resolve() judges the name rule (1-64 characters) itself, so a bad one is 400 invalid_room.
RoomRef = Annotated[str, Path(description="The room's name or sid (RM_...)",
                              json_schema_extra={"pattern": ROOM_NAME_RE.pattern})]


class Caller:
    """Who is calling: an API key holder (server side) or the holder of a room host token."""

    def __init__(self, key: ApiKey | None = None, claims: TokenClaims | None = None) -> None:
        self.key = key
        self.claims = claims

    def require_key(self) -> ApiKey:
        """Return the API key, or refuse a token holder."""
        if self.key is None:
            raise Forbidden("this call needs API key credentials (HTTP Basic)", code="key_required")
        return self.key

    def require_room(self, row: RoomRow) -> None:
        """Refuse a token holder who is not the host of this room."""
        if self.key is not None:
            return
        assert self.claims is not None
        if self.claims.grants.room != row.name or (self.claims.room_sid not in (None, row.sid)):
            raise Forbidden("this token is for another room", code="wrong_room")
        if not self.claims.grants.host:
            raise Forbidden("this call needs a host token", code="not_host")

    def name(self) -> str:
        """Return how the store records this caller as an author (`created_by`)."""
        if self.key is not None:
            return self.key.id
        assert self.claims is not None
        return f"identity:{self.claims.identity}"


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones on a worker thread per request,
# which cost a third of a GET's CPU and put the loop's reader Store on other threads.
# Both wait for the store's writer first (`StoreWriter.settled`): the live rooms change at once and the store a
# commit later, so a read that did not wait could list a participant gone while its session still looks open.
async def state_of(request: Request) -> ServerState:
    """Return the server state the app's lifespan opened, once every store write queued before is committed."""
    state: ServerState = request.app.state.tvapp
    await state.writer.settled()
    return state


State = Annotated[ServerState, Depends(state_of)]


async def authenticate(request: Request) -> Caller:
    """Check the Authorization header: Basic key credentials or a Bearer access token."""
    state = await state_of(request)
    header = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": 'Basic realm="tvapp"'}
    if not header:
        raise Unauthorized("credentials are required", code="unauthorized", headers=challenge)
    if len(request.headers.getlist("authorization")) > 1:  # which one a proxy checked is anyone's guess: fail closed
        raise Unauthorized("send one Authorization header", code="unauthorized", headers=challenge)
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        client, tick = request.client.host if request.client else "unknown", time.monotonic()
        wait = state.auth_limiter.retry_after(client, tick)
        if wait > 0:  # a guesser's next try is not even checked
            raise TooManyRequests("too many wrong API key credentials from this address: try again later",
                                  code="too_many_attempts", headers={"Retry-After": str(max(1, round(wait)))})
        try:
            key_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unauthorized("malformed Basic credentials", code="invalid_credentials", headers=challenge) from None
        key = state.keys.check_secret(key_id, secret) if sep else None
        if key is None:
            if sep and state.keys.get(key_id) is not None:  # a guess at a real key's secret (its id is public)
                state.auth_limiter.record_failure(client, tick)
            raise Unauthorized("unknown key or wrong secret", code="invalid_credentials", headers=challenge)
        return Caller(key=key)
    if scheme == "bearer":
        return Caller(claims=verify_access(state, value.strip()))
    raise Unauthorized("use Basic (API key) or Bearer (token) authorization", code="unauthorized", headers=challenge)


def verify_access(state: ServerState, token: str) -> TokenClaims:
    """Accept an access token (signature, claims, revocation); raise 401 when refused."""
    try:
        return state.tokens.accept(token, now=time.time(), revocations=state.reader)
    except TokenError as exc:
        raise Unauthorized(exc.message, code=exc.code) from None


Auth = Annotated[Caller, Depends(authenticate)]


def resolve(state: ServerState, caller: Caller, ref: str) -> tuple[RoomRow, LiveRoom | None]:
    """Find a room by name or sid and check that the caller may touch it; raise 400 (not a room name), 404 or 403."""
    try:
        check_room_name(ref)  # a sid (RM_...) follows the rule too
    except ClaimError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    found = state.rooms.find(ref)
    if found is None:
        raise NotFound(f"no room {ref!r}", code="room_not_found")
    caller.require_room(found[0])
    return found
