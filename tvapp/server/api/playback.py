"""`/v1/rooms/{room}/playback`: read or command a live room's shared content timeline over REST.

The same commands participants send over signaling, given with host rights (only API key holders and
the room's hosts get past `resolve`); tvapp.server.playback.Watch holds the timeline and broadcasts it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tvapp.core.playback import MAX_TITLE_CHARS, PlaybackError
from tvapp.protocol.messages import Playback
from tvapp.server.api.auth import Auth, RoomRef, State, resolve
from tvapp.server.api.models import PlaybackOut, PlaybackRequest, checked_text
from tvapp.server.api.rooms import require_live
from tvapp.server.errors import ApiError

router = APIRouter(tags=["playback"])

PLAYBACK_ERROR_STATUS = {"not_allowed": 403, "no_content": 409, "too_many_requests": 429}


@router.get("/rooms/{room}/playback", response_model=PlaybackOut, summary="Get the room's shared content timeline")
async def get_playback(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    return JSONResponse(state.watch.message(require_live(row, live)).to_json())


@router.post("/rooms/{room}/playback", response_model=PlaybackOut,
             summary="Load, play, pause, seek or stop the room's shared content, or configure who may")
async def command_playback(room: RoomRef, body: PlaybackRequest, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    live = require_live(row, live)
    title = checked_text("title", body.title, MAX_TITLE_CHARS)
    msg = Playback(action=body.action, content=body.content, title=title, position=body.position,
                   play=body.play, control=body.control, on_stall=body.on_stall)
    try:
        await state.watch.command(live, msg, is_host=True)  # resolve() let only API keys and this room's hosts through
    except PlaybackError as exc:
        raise ApiError(exc.message, code=exc.code, status=PLAYBACK_ERROR_STATUS.get(exc.code, 400)) from None
    return JSONResponse(state.watch.message(live).to_json())
