"""`/v1/rooms`: create, list, get and complete rooms, and list who was in a room session.

A room is named by its name (the live room of that name, else the newest) or by its sid (one room
session, `RM_...`). Creating and listing need API key credentials; the rest also accept the room's
host token. Also the helpers the other room-scoped routers share: `room_json`, `require_live`, `room_error`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from tvapp.core.claims import ClaimError, check_room_name
from tvapp.core.room import RoomStatus, room_limits
from tvapp.core.webhooks import CallbackError, check_callback_url
from tvapp.server.api.auth import Auth, RoomRef, State, resolve
from tvapp.server.api.models import (
    ROOM_FIELDS,
    SESSION_FIELDS,
    RoomCreate,
    RoomOut,
    SessionOut,
)
from tvapp.server.errors import ApiError, BadRequest, Gone
from tvapp.server.live import LiveRoom, RoomError
from tvapp.server.state import ServerState
from tvapp.server.store import RoomRow

router = APIRouter(tags=["rooms"])

ROOM_ERROR_STATUS = {"room_exists": 409, "participant_not_found": 404, "track_not_found": 404,
                     "room_not_found": 404, "room_completed": 410}


def room_json(state: ServerState, row: RoomRow) -> dict[str, Any]:
    """Return a room as the API answers it (`RoomOut`)."""
    out = {name: getattr(row, name) for name in ROOM_FIELDS}
    out["participant_count"] = state.rooms.participant_count(row)
    return out


def require_live(row: RoomRow, live: LiveRoom | None) -> LiveRoom:
    """Return the live room, or refuse with 410 when this room session has completed."""
    if live is None:
        raise Gone("this room has completed", code="room_completed")
    return live


def room_error(exc: RoomError) -> ApiError:
    """Return the API error for a refusal of the room manager."""
    return ApiError(exc.message, code=exc.code, status=ROOM_ERROR_STATUS.get(exc.code, 400))


@router.post("/rooms", response_model=RoomOut, status_code=201, summary="Create a room")
async def create_room(body: RoomCreate, state: State, caller: Auth) -> JSONResponse:
    caller.require_key()
    try:
        check_room_name(body.name)
    except ClaimError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    try:
        limits = room_limits(
            body.max_participants if body.max_participants is not None else state.default_limits.max_participants,
            body.empty_timeout if body.empty_timeout is not None else state.default_limits.empty_timeout)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_limits") from None
    callback = None
    if body.status_callback is not None:
        try:
            callback = check_callback_url(body.status_callback, allow_private=state.config.webhooks.allow_private)
        except CallbackError as exc:
            raise BadRequest(exc.message, code=exc.code) from None
    try:
        row = await state.rooms.create(body.name, limits, callback)
    except RoomError as exc:
        raise room_error(exc) from None
    if body.record:
        found = state.rooms.find(row.sid)
        if found is not None and found[1] is not None:
            await state.recordings.set_recording(found[1], True)
    return JSONResponse(room_json(state, row), status_code=201)


@router.get("/rooms", response_model=list[RoomOut], summary="List rooms, newest first")
async def list_rooms(state: State, caller: Auth,
                     status: Annotated[RoomStatus | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONResponse:
    caller.require_key()
    rows = state.reader.list_rooms(status.value if status else None, limit)
    rows = [state.rooms.current(row) for row in rows]  # a live room's row is newer than the store's
    return JSONResponse([room_json(state, row) for row in rows if status is None or row.status == status.value])


@router.get("/rooms/{room}", response_model=RoomOut, summary="Get a room by name or sid")
async def get_room(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, _ = resolve(state, caller, room)
    return JSONResponse(room_json(state, row))


@router.post("/rooms/{room}/complete", response_model=RoomOut,
             summary="Complete a room: everyone is disconnected and it can never be joined again")
async def complete_room(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    if live is not None:
        row = await state.rooms.complete(live, "completed_by_api")
    return JSONResponse(room_json(state, row))


@router.get("/rooms/{room}/sessions", response_model=list[SessionOut],
            summary="Who was in this room session, from when to when")
async def room_sessions(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, _ = resolve(state, caller, room)
    return JSONResponse([{name: getattr(s, name) for name in SESSION_FIELDS}
                         for s in state.reader.list_sessions(row.sid)])
