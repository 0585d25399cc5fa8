"""`/v1/rooms/{room}/invites` and `/v1/invites/{code}/redeem`: invite codes for a live room, and guests redeeming them.

Whether a redemption is admitted is decided by tvapp.core.invites.decide_redemption (its docstring lists the
rules and their order); the redeem route gathers the facts it needs, counts the use in the store, issues the
guest's pair, and maps every refusal to its HTTP error here (`REDEMPTION_ERRORS`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from tvapp.core.claims import ClaimError, Grants, checked_ttl
from tvapp.core.codes import format_invite_code, hash_code, new_invite_code, normalize_invite_code
from tvapp.core.invites import Redemption, decide_redemption
from tvapp.core.owners import redeem_conflict
from tvapp.server.api.auth import Auth, RoomRef, State, resolve
from tvapp.server.api.models import InviteCreate, InviteOut, RedeemRequest, TokenPair, checked_text
from tvapp.server.api.rooms import require_live
from tvapp.server.api.tokens import issue_pair, pair_json
from tvapp.server.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    TooManyRequests,
)
from tvapp.server.state import ServerState
from tvapp.server.store import InviteRow, RoomRow

router = APIRouter(tags=["invites"])

REDEMPTION_ERRORS: dict[Redemption, tuple[type[ApiError], str]] = {
    Redemption.TOO_MANY_ATTEMPTS: (TooManyRequests, "too many wrong invite codes; try again later"),
    Redemption.NOT_FOUND: (NotFound, "no such invite code"),
    Redemption.EXPIRED: (Gone, "this invite code has expired"),
    Redemption.ROOM_COMPLETED: (Gone, "the room of this invite has ended"),
    Redemption.REMOVED: (Forbidden, "you were removed from this room"),
    Redemption.IDENTITY_TAKEN: (Conflict, "this identity belongs to someone else in this room"),
    Redemption.USED_UP: (Gone, "this invite code has been used up"),
}


@router.post("/rooms/{room}/invites", response_model=InviteOut, status_code=201,
             summary="Create an invite code for a room")
async def create_invite(room: RoomRef, body: InviteCreate, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    require_live(row, live)
    cfg = state.config.invites
    try:
        ttl = checked_ttl(body.ttl, default=cfg.ttl, maximum=cfg.ttl_max)
    except ClaimError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    code = new_invite_code()
    now = time.time()
    invite = InviteRow(code_hash=hash_code(code), room_sid=row.sid, created_at=now, expires_at=now + ttl,
                       max_uses=cfg.max_uses if body.max_uses is None else body.max_uses, uses=0,
                       created_by=caller.name())
    await state.writer.call(lambda s: s.insert_invite(invite))
    return JSONResponse({"code": format_invite_code(code), "room": row.name, "room_sid": row.sid,
                         "expires_at": invite.expires_at, "max_uses": invite.max_uses}, status_code=201)


@router.post("/invites/{code}/redeem", response_model=TokenPair,
             summary="Redeem an invite code for guest tokens (no credentials needed)")
async def redeem_invite(code: Annotated[str, Path(max_length=64)], body: RedeemRequest, request: Request,
                        state: State) -> JSONResponse:
    checked_text("name", body.name)
    client = request.client.host if request.client else "unknown"
    now = time.time()
    tick = time.monotonic()  # the limiter's windows must not jump with the wall clock
    wait = state.redeem_limiter.retry_after(client, tick)
    canonical = normalize_invite_code(code) if wait <= 0 else None  # a throttled client's code is not looked up
    invite = state.reader.get_invite(hash_code(canonical)) if canonical else None
    row = state.reader.get_room(invite.room_sid) if invite else None
    live = state.rooms.live.get(row.name) if row else None
    owner = live.owners.get(body.identity) if live else None
    outcome = decide_redemption(
        now=now, retry_after=wait, invite=invite, live_room_sid=live.row.sid if live else None,
        banned=live is not None and (state.reader.is_banned(live.row.sid, body.identity)
                                     or (owner is not None and owner.removed)),
        identity_present=redeem_conflict(owner))
    if outcome.wrong_code:
        state.redeem_limiter.record_failure(client, tick)
    if outcome is Redemption.ADMIT and invite is not None and row is not None:
        used = await state.writer.call(lambda s: s.use_invite(invite.code_hash, now))
        if used is not None:
            return JSONResponse(await guest_pair(state, body, row))
        outcome = Redemption.USED_UP  # the last use went to someone else meanwhile
    error, message = REDEMPTION_ERRORS[outcome]
    headers = {"Retry-After": str(max(1, round(wait)))} if outcome is Redemption.TOO_MANY_ATTEMPTS else None
    raise error(message, code=outcome.value, headers=headers)


async def guest_pair(state: ServerState, body: RedeemRequest, row: RoomRow) -> dict[str, Any]:
    """Issue the pair of a guest admitted by an invite: no host, not hidden, tied to this room session."""
    key = state.keys.signing_key()
    if key is None:
        raise ApiError("the server has no active API key", code="no_key", status=503)
    grants = Grants(room=row.name, host=False, hidden=False)
    access, refresh = await issue_pair(state, key, identity=body.identity, grants=grants, name=body.name,
                                       ttl=None, room_sid=row.sid)
    return pair_json(access, refresh)
