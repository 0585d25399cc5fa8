"""`/v1/tokens`: issue an access + refresh pair with API key credentials, and refresh with rotation.

A new pair starts a refresh family, recorded in the store; refreshing retires the presented refresh
token and issues the next of its family (reusing a retired one revokes the whole family: see
`Store.rotate_refresh`). Lifetimes follow core.claims.checked_ttl.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tvapp.auth.keys import ApiKey
from tvapp.auth.tokens import REFRESH, IssuedToken, TokenError
from tvapp.core.claims import ClaimError, Grants, check_room_name, checked_ttl
from tvapp.server.api.auth import Auth, State
from tvapp.server.api.models import RefreshRequest, TokenPair, TokenRequest, checked_text
from tvapp.server.errors import BadRequest, Unauthorized
from tvapp.server.state import ServerState
from tvapp.server.store import RefreshResult

router = APIRouter(tags=["tokens"])


def pair_json(access: IssuedToken, refresh: IssuedToken) -> dict[str, Any]:
    """Return a token pair as the API answers it (`TokenPair`)."""
    return {
        "access_token": access.token, "refresh_token": refresh.token,
        "expires_at": access.claims.expires_at, "refresh_expires_at": refresh.claims.expires_at,
        "identity": access.claims.identity, "room": access.claims.grants.room,
    }


async def issue_pair(state: ServerState, key: ApiKey, *, identity: str, grants: Grants, name: str,
                     ttl: int | None, room_sid: str | None = None) -> tuple[IssuedToken, IssuedToken]:
    """Issue a pair starting a new refresh family and record the family; raise 400 for a bad ttl."""
    auth = state.config.auth
    try:
        ttl = checked_ttl(ttl, default=auth.access_ttl, maximum=auth.access_ttl_max)
    except ClaimError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    access, refresh = state.tokens.issue_pair(key, identity=identity, grants=grants, access_ttl=ttl,
                                              refresh_ttl=auth.refresh_ttl, now=time.time(), name=name,
                                              room_sid=room_sid)
    await state.writer.call(lambda s: s.insert_refresh(refresh.claims.jti, refresh.claims.family or "",
                                                       refresh.claims.expires_at))
    return access, refresh


@router.post("/tokens", response_model=TokenPair, status_code=201,
             summary="Issue an access + refresh token (for a customer's auth server)")
async def create_token(body: TokenRequest, state: State, caller: Auth) -> JSONResponse:
    key = caller.require_key()
    try:
        room = check_room_name(body.room)
    except ClaimError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    grants = Grants(room=room, **body.grants.model_dump())
    access, refresh = await issue_pair(state, key, identity=body.identity, grants=grants,
                                       name=checked_text("name", body.name), ttl=body.ttl)
    return JSONResponse(pair_json(access, refresh), status_code=201)


REFRESH_REFUSALS: dict[RefreshResult, tuple[str, str]] = {
    RefreshResult.RETIRED: ("token_reused", "this refresh token was already used; its whole family is now revoked"),
    RefreshResult.EXPIRED: ("token_expired", "the refresh token has expired"),
    RefreshResult.REVOKED: ("token_revoked", "this refresh token is not valid any more"),
    RefreshResult.UNKNOWN: ("token_revoked", "this refresh token is not valid any more"),
}


@router.post("/tokens/refresh", response_model=TokenPair,
             summary="Trade a refresh token for a new pair; the old refresh token is retired")
async def refresh_token(body: RefreshRequest, state: State) -> JSONResponse:
    now = time.time()
    try:
        old = state.tokens.verify(body.refresh_token, typ=REFRESH, now=now)
    except TokenError as exc:
        raise Unauthorized(exc.message, code=exc.code) from None
    key = state.keys.get(old.issuer)
    if key is None:
        raise Unauthorized("the token's key is unknown or revoked", code="invalid_token")
    access, refresh = state.tokens.issue_pair(
        key, identity=old.identity, grants=old.grants, access_ttl=state.config.auth.access_ttl,
        refresh_ttl=state.config.auth.refresh_ttl, now=now, name=old.name, family=old.family,
        room_sid=old.room_sid)
    result = await state.writer.call(
        lambda s: s.rotate_refresh(old.jti, refresh.claims.jti, refresh.claims.expires_at, now))
    if result is RefreshResult.OK:
        return JSONResponse(pair_json(access, refresh))
    if result is RefreshResult.RETIRED and old.family is not None:
        await state.end_sessions_of_family(old.family)  # a replay: whoever holds the family is out, now
    code, message = REFRESH_REFUSALS[result]
    raise Unauthorized(message, code=code)
