"""The REST API under /v1: tokens, rooms, invites, participants, room sessions.

Authentication (see `Caller`): server-side calls use HTTP Basic with an API key id and secret;
room-scoped calls also accept `Authorization: Bearer <access token>` whose grants make its
holder the host of that very room. Request bodies are pydantic models (so OpenAPI describes
them); responses are built as plain dicts for speed, with their models given for the docs.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tvapp.auth.keys import ApiKey
from tvapp.auth.tokens import REFRESH, IssuedToken, TokenError
from tvapp.core.claims import IDENTITY_RE, ROOM_NAME_RE, ClaimError, Grants, TokenClaims, checked_ttl
from tvapp.core.playback import PlaybackError
from tvapp.core.codes import format_invite_code, hash_code, new_invite_code, normalize_invite_code
from tvapp.core.invites import Redemption, decide_redemption
from tvapp.core.room import RoomStatus, room_limits
from tvapp.protocol.messages import Playback
from tvapp.server.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from tvapp.server.rooms import LiveRoom, RoomError
from tvapp.server.state import ServerState
from tvapp.server.store import InviteRow, RefreshResult, RoomRow

router = APIRouter(prefix="/v1")

IDENTITY = IDENTITY_RE.pattern
ROOM = ROOM_NAME_RE.pattern
RoomRef = Annotated[str, Path(max_length=64, description="The room's name or sid (RM_...)")]


# --- models ------------------------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "600" is not a number, "yes" is not true


class GrantsIn(Strict):
    join: bool = True
    publish: bool = True
    subscribe: bool = True
    publish_data: bool = True
    host: bool = False
    hidden: bool = False


class TokenRequest(Strict):
    room: str = Field(pattern=ROOM, description="Room name the token is for")
    identity: str = Field(pattern=IDENTITY, description="The participant's stable identity")
    name: str = Field("", max_length=64, description="Display name")
    grants: GrantsIn = Field(default_factory=GrantsIn)
    ttl: int | None = Field(None, ge=1, description="Access token lifetime in seconds (default 600, max 86400)")


class RefreshRequest(Strict):
    refresh_token: str = Field(max_length=8192)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    expires_at: float
    refresh_expires_at: float
    identity: str
    room: str


class RoomCreate(Strict):
    name: str = Field(pattern=ROOM)
    max_participants: int | None = Field(None, description="2 to 50 (default 6)")
    empty_timeout: int | None = Field(None, description="Seconds a room may stay empty (default 300)")


class RoomOut(BaseModel):
    sid: str
    name: str
    status: str
    max_participants: int
    empty_timeout: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    participant_count: int


class InviteCreate(Strict):
    ttl: int | None = Field(None, ge=1, description="Seconds the code stays valid (default 900)")
    max_uses: int | None = Field(None, ge=1, le=1000, description="Redemptions allowed (default 10)")


class InviteOut(BaseModel):
    code: str
    room: str
    room_sid: str
    expires_at: float
    max_uses: int


class RedeemRequest(Strict):
    identity: str = Field(pattern=IDENTITY)
    name: str = Field("", max_length=64)


class TrackOut(BaseModel):
    sid: str
    kind: str
    source: str
    name: str
    muted: bool


class ParticipantOut(BaseModel):
    sid: str
    identity: str
    name: str
    joined_at: float
    tracks: list[TrackOut]


class MuteRequest(Strict):
    muted: bool = True


class PlaybackRequest(Strict):
    action: Literal["load", "play", "pause", "seek", "stop", "configure"]
    content: str | None = Field(default=None, max_length=2048,
                                description="load: a media URL or an absolute file path every screen can open")
    title: str = Field(default="", max_length=200)
    position: float | None = Field(default=None, ge=0, description="load/seek: seconds into the content")
    play: bool = Field(default=True, description="load: start playing (else paused at the position)")
    control: Literal["host", "everyone"] | None = Field(default=None, description="configure: who may command")
    on_stall: Literal["pause", "continue"] | None = Field(default=None,
                                                          description="configure: what a stalled screen does")


class PlaybackOut(BaseModel):
    content: str
    title: str
    playing: bool
    position: float
    rate: float
    at: float
    seq: int
    waiting_for: list[str]
    control: str
    on_stall: str
    duration: float | None
    server_time: float


class SessionOut(BaseModel):
    sid: str
    identity: str
    name: str
    joined_at: float
    left_at: float | None
    leave_reason: str | None


# --- authentication ----------------------------------------------------------------------------------------


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


# Dependencies are `async def` on purpose: FastAPI runs plain `def` ones on a worker thread per request,
# which cost a third of a GET's CPU and put the loop's reader Store on other threads.
async def state_of(request: Request) -> ServerState:
    return request.app.state.tvapp  # type: ignore[no-any-return]


State = Annotated[ServerState, Depends(state_of)]


async def authenticate(request: Request) -> Caller:
    """Check the Authorization header: Basic key credentials or a Bearer access token."""
    state: ServerState = request.app.state.tvapp
    header = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": 'Basic realm="tvapp"'}
    if not header:
        raise Unauthorized("credentials are required", code="unauthorized", headers=challenge)
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            key_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Unauthorized("malformed Basic credentials", code="invalid_credentials", headers=challenge) from None
        key = state.keys.check_secret(key_id, secret) if sep else None
        if key is None:
            raise Unauthorized("unknown key or wrong secret", code="invalid_credentials", headers=challenge)
        return Caller(key=key)
    if scheme == "bearer":
        claims = verify_access(state, value.strip())
        return Caller(claims=claims)
    raise Unauthorized("use Basic (API key) or Bearer (token) authorization", code="unauthorized", headers=challenge)


def verify_access(state: ServerState, token: str) -> TokenClaims:
    """Accept an access token (signature, claims, revocation); raise 401 when refused."""
    try:
        return state.tokens.accept(token, now=time.time(), revocations=state.reader)
    except TokenError as exc:
        raise Unauthorized(exc.message, code=exc.code) from None


Auth = Annotated[Caller, Depends(authenticate)]


# --- helpers -----------------------------------------------------------------------------------------------


def room_json(state: ServerState, row: RoomRow) -> dict[str, Any]:
    return {
        "sid": row.sid, "name": row.name, "status": row.status, "max_participants": row.max_participants,
        "empty_timeout": row.empty_timeout, "created_at": row.created_at, "started_at": row.started_at,
        "ended_at": row.ended_at, "participant_count": state.rooms.participant_count(row),
    }


def pair_json(access: IssuedToken, refresh: IssuedToken) -> dict[str, Any]:
    return {
        "access_token": access.token, "refresh_token": refresh.token,
        "expires_at": access.claims.expires_at, "refresh_expires_at": refresh.claims.expires_at,
        "identity": access.claims.identity, "room": access.claims.grants.room,
    }


def resolve(state: ServerState, caller: Caller, ref: str) -> tuple[RoomRow, LiveRoom | None]:
    found = state.rooms.find(ref)
    if found is None:
        raise NotFound(f"no room {ref!r}", code="room_not_found")
    caller.require_room(found[0])
    return found


def require_live(row: RoomRow, live: LiveRoom | None) -> LiveRoom:
    if live is None:
        raise Gone("this room has completed", code="room_completed")
    return live


def room_error(exc: RoomError) -> ApiError:
    status = {"room_exists": 409, "participant_not_found": 404, "track_not_found": 404,
              "room_not_found": 404, "room_completed": 410}.get(exc.code, 400)
    return ApiError(exc.message, code=exc.code, status=status)


async def issue_pair(state: ServerState, key: ApiKey, *, identity: str, grants: Grants, name: str,
                     ttl: int | None, room_sid: str | None = None, family: str | None = None
                     ) -> tuple[IssuedToken, IssuedToken]:
    auth = state.config.auth
    try:
        ttl = checked_ttl(ttl, default=auth.access_ttl, maximum=auth.access_ttl_max)
    except ClaimError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    access, refresh = state.tokens.issue_pair(key, identity=identity, grants=grants, access_ttl=ttl,
                                              refresh_ttl=auth.refresh_ttl, now=time.time(), name=name,
                                              family=family, room_sid=room_sid)
    if family is None:
        await state.writer.call(lambda s: s.insert_refresh(refresh.claims.jti, refresh.claims.family or "",
                                                           refresh.claims.expires_at))
    return access, refresh


# --- tokens ------------------------------------------------------------------------------------------------


@router.post("/tokens", response_model=TokenPair, status_code=201, tags=["tokens"],
             summary="Issue an access + refresh token (for a customer's auth server)")
async def create_token(body: TokenRequest, state: State, caller: Auth) -> JSONResponse:
    key = caller.require_key()
    grants = Grants(room=body.room, **body.grants.model_dump())
    access, refresh = await issue_pair(state, key, identity=body.identity, grants=grants, name=body.name,
                                       ttl=body.ttl)
    return JSONResponse(pair_json(access, refresh), status_code=201)


@router.post("/tokens/refresh", response_model=TokenPair, tags=["tokens"],
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
    if result is RefreshResult.RETIRED:
        raise Unauthorized("this refresh token was already used; its whole family is now revoked",
                           code="token_reused")
    if result is RefreshResult.EXPIRED:
        raise Unauthorized("the refresh token has expired", code="token_expired")
    raise Unauthorized("this refresh token is not valid any more", code="token_revoked")


# --- rooms -------------------------------------------------------------------------------------------------


@router.post("/rooms", response_model=RoomOut, status_code=201, tags=["rooms"], summary="Create a room")
async def create_room(body: RoomCreate, state: State, caller: Auth) -> JSONResponse:
    caller.require_key()
    try:
        limits = room_limits(
            body.max_participants if body.max_participants is not None else state.default_limits.max_participants,
            body.empty_timeout if body.empty_timeout is not None else state.default_limits.empty_timeout)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_limits") from None
    try:
        row = await state.rooms.create(body.name, limits)
    except RoomError as exc:
        raise room_error(exc) from None
    return JSONResponse(room_json(state, row), status_code=201)


@router.get("/rooms", response_model=list[RoomOut], tags=["rooms"], summary="List rooms, newest first")
async def list_rooms(state: State, caller: Auth,
                     status: Annotated[RoomStatus | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
    caller.require_key()
    rows = state.reader.list_rooms(status.value if status else None, limit)
    return JSONResponse([room_json(state, row) for row in rows])


@router.get("/rooms/{room}", response_model=RoomOut, tags=["rooms"], summary="Get a room by name or sid")
async def get_room(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, _ = resolve(state, caller, room)
    return JSONResponse(room_json(state, row))


@router.post("/rooms/{room}/complete", response_model=RoomOut, tags=["rooms"],
             summary="Complete a room: everyone is disconnected and it can never be joined again")
async def complete_room(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    if live is not None:
        row = await state.rooms.complete(live, "completed_by_api")
    return JSONResponse(room_json(state, row))


@router.get("/rooms/{room}/sessions", response_model=list[SessionOut], tags=["rooms"],
            summary="Who was in this room session, from when to when")
async def room_sessions(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, _ = resolve(state, caller, room)
    return JSONResponse([
        {"sid": s.sid, "identity": s.identity, "name": s.name, "joined_at": s.joined_at,
         "left_at": s.left_at, "leave_reason": s.leave_reason}
        for s in state.reader.list_sessions(row.sid)
    ])


# --- invites -----------------------------------------------------------------------------------------------


@router.post("/rooms/{room}/invites", response_model=InviteOut, status_code=201, tags=["invites"],
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
                       created_by=caller.key.id if caller.key else f"identity:{caller.claims.identity}")  # type: ignore[union-attr]
    await state.writer.call(lambda s: s.insert_invite(invite))
    return JSONResponse({"code": format_invite_code(code), "room": row.name, "room_sid": row.sid,
                         "expires_at": invite.expires_at, "max_uses": invite.max_uses}, status_code=201)


REDEMPTION_ERRORS: dict[Redemption, tuple[type[ApiError], str]] = {
    Redemption.TOO_MANY_ATTEMPTS: (TooManyRequests, "too many wrong invite codes; try again later"),
    Redemption.NOT_FOUND: (NotFound, "no such invite code"),
    Redemption.EXPIRED: (Gone, "this invite code has expired"),
    Redemption.ROOM_COMPLETED: (Gone, "the room of this invite has ended"),
    Redemption.REMOVED: (Forbidden, "you were removed from this room"),
    Redemption.IDENTITY_TAKEN: (Conflict, "someone with this identity is in the room"),
    Redemption.USED_UP: (Gone, "this invite code has been used up"),
}


@router.post("/invites/{code}/redeem", response_model=TokenPair, tags=["invites"],
             summary="Redeem an invite code for guest tokens (no credentials needed)")
async def redeem_invite(code: Annotated[str, Path(max_length=64)], body: RedeemRequest, request: Request,
                        state: State) -> JSONResponse:
    client = request.client.host if request.client else "unknown"
    now = time.time()
    tick = time.monotonic()  # the limiter's windows must not jump with the wall clock
    wait = state.redeem_limiter.retry_after(client, tick)
    canonical = normalize_invite_code(code) if wait <= 0 else None  # a throttled client's code is not looked up
    invite = state.reader.get_invite(hash_code(canonical)) if canonical else None
    row = state.reader.get_room(invite.room_sid) if invite else None
    live = state.rooms.live.get(row.name) if row else None
    outcome = decide_redemption(
        now=now, retry_after=wait, invite=invite, live_room_sid=live.row.sid if live else None,
        banned=live is not None and state.reader.is_banned(live.row.sid, body.identity),
        identity_present=live is not None and body.identity in live.participants)
    if outcome.wrong_code:
        state.redeem_limiter.record_failure(client, tick)
    if outcome is Redemption.ADMIT and invite is not None and row is not None:
        used = await state.writer.call(lambda s: s.use_invite(invite.code_hash, now))
        if used is not None:
            return JSONResponse(await guest_pair(state, body, row))
        outcome = Redemption.USED_UP
    error, message = REDEMPTION_ERRORS[outcome]
    headers = {"Retry-After": str(max(1, round(wait)))} if outcome is Redemption.TOO_MANY_ATTEMPTS else None
    raise error(message, code=outcome.value, headers=headers)


async def guest_pair(state: ServerState, body: RedeemRequest, row: RoomRow) -> dict[str, Any]:
    """Issue the token pair of a guest admitted by an invite: no host, not hidden, tied to this room session."""
    key = state.keys.signing_key()
    if key is None:
        raise ApiError("the server has no active API key", code="no_key", status=503)
    grants = Grants(room=row.name, host=False, hidden=False)
    access, refresh = await issue_pair(state, key, identity=body.identity, grants=grants, name=body.name,
                                       ttl=None, room_sid=row.sid)
    return pair_json(access, refresh)


# --- participants ------------------------------------------------------------------------------------------


def participant_json(p: Any) -> dict[str, Any]:
    return {"sid": p.sid, "identity": p.identity, "name": p.name, "joined_at": p.joined_at,
            "tracks": [t.to_json() for t in p.tracks.values()]}


@router.get("/rooms/{room}/participants", response_model=list[ParticipantOut], tags=["participants"],
            summary="List the participants connected now")
async def list_participants(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    return JSONResponse([participant_json(p) for p in (live.visible() if live else [])])


@router.get("/rooms/{room}/participants/{identity}", response_model=ParticipantOut, tags=["participants"],
            summary="Get one connected participant")
async def get_participant(room: RoomRef, identity: Annotated[str, Path(max_length=64)], state: State,
                          caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    try:
        return JSONResponse(participant_json(state.rooms.get_participant(require_live(row, live), identity)))
    except RoomError as exc:
        raise room_error(exc) from None


@router.delete("/rooms/{room}/participants/{identity}", status_code=204, tags=["participants"],
               summary="Remove a participant: disconnected, token refused, kept out of this room session")
async def remove_participant(room: RoomRef, identity: Annotated[str, Path(max_length=64)], state: State,
                             caller: Auth) -> Response:
    row, live = resolve(state, caller, room)
    try:
        await state.rooms.remove(require_live(row, live), identity)
    except RoomError as exc:
        raise room_error(exc) from None
    return Response(status_code=204)


@router.post("/rooms/{room}/participants/{identity}/tracks/{track_sid}/mute", response_model=TrackOut,
             tags=["participants"], summary="Mute or unmute a participant's published track (server side)")
async def mute_track(room: RoomRef, identity: Annotated[str, Path(max_length=64)],
                     track_sid: Annotated[str, Path(max_length=64)], body: MuteRequest, state: State,
                     caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    live = require_live(row, live)
    try:
        participant = state.rooms.get_participant(live, identity)
        track = state.rooms.set_muted(live, participant, track_sid, body.muted, by_server=True)
    except RoomError as exc:
        raise room_error(exc) from None
    return JSONResponse(track.to_json())


# --- shared content -----------------------------------------------------------------------------------------


@router.get("/rooms/{room}/playback", response_model=PlaybackOut, tags=["playback"],
            summary="Get the room's shared content timeline")
async def get_playback(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    return JSONResponse(state.watch.message(require_live(row, live)).to_json())


@router.post("/rooms/{room}/playback", response_model=PlaybackOut, tags=["playback"],
             summary="Load, play, pause, seek or stop the room's shared content, or configure who may")
async def command_playback(room: RoomRef, body: PlaybackRequest, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    live = require_live(row, live)
    msg = Playback(action=body.action, content=body.content, title=body.title, position=body.position,
                   play=body.play, control=body.control, on_stall=body.on_stall)
    try:
        state.watch.command(live, msg, is_host=True)  # resolve() let only API keys and this room's hosts through
    except PlaybackError as exc:
        status = 403 if exc.code == "not_allowed" else 409 if exc.code == "no_content" else 400
        raise ApiError(exc.message, code=exc.code, status=status) from None
    return JSONResponse(state.watch.message(live).to_json())
