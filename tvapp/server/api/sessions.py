"""`/v1/rooms/{room}/sessions/{session}/...`: room-session actions (mute, unmute, kick, end) and participant search.

A room session is one life of a room name, named by its sid (`RM_...`, as `GET /v1/rooms/{room}` answers it);
`{room}` is the room's name or that same sid. Actions act through the room manager as the single-participant
routes do: mute stops forwarding a participant's audio and tells everyone (track_muted, by_server); unmute only
*asks* the client (`unmute_request`), which may decline: the server never switches a microphone on; kick removes
(the participant's token is refused and its identity kept out of this room session); end completes the room
session for everyone. Which participants a body selects is tvapp.core.actions' rule.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tvapp.core.actions import MAX_LISTED, Action, SelectionError, select
from tvapp.protocol.messages import UnmuteRequest
from tvapp.server.api.auth import Auth, RoomRef, State, resolve
from tvapp.server.api.models import IDENTITY, SessionOut, Strict
from tvapp.server.api.rooms import require_live, room_error
from tvapp.server.errors import BadRequest, NotFound
from tvapp.server.live import LiveRoom, RoomError
from tvapp.server.state import ServerState
from tvapp.server.store import RoomRow

router = APIRouter(tags=["room sessions"])

SessionRef = Annotated[str, Path(max_length=64, description="The room session's sid (RM_...)")]
IdentityItem = Annotated[str, Field(max_length=64, pattern=IDENTITY)]
KICK_REASON = "removed by the host"


class SessionActionIn(Strict):
    participants: Literal["all"] | list[IdentityItem] | None = Field(
        None, description='"all" (everyone visible now) or up to 100 identities; required except for end')
    exclude: list[IdentityItem] = Field(default_factory=list, max_length=MAX_LISTED,
                                        description="Identities left out of the selection")


class SessionActionOut(BaseModel):
    action: str
    room_sid: str
    participants: list[str] = Field(description="Identities the action was applied to (unmute: asked)")
    tracks: list[str] = Field(description="mute/unmute: the audio track sids muted or asked to unmute")
    not_found: list[str] = Field(description="Listed identities not connected to this room session")


def session_of(state: ServerState, caller: Any, room: str, session: str) -> tuple[RoomRow, LiveRoom | None]:
    """Return the room session `session` of room `room` (name or sid); raise 404 when it is not one of its."""
    row, _ = resolve(state, caller, room)
    found = state.rooms.find(session) if session.startswith("RM_") else None
    if found is None or found[0].name != row.name:
        raise NotFound(f"room {row.name!r} has no session {session!r}", code="session_not_found")
    return found


@router.post("/rooms/{room}/sessions/{session}/actions/{action}", response_model=SessionActionOut,
             summary="Mute, ask to unmute, kick, or end for everyone: participants in one room session")
async def session_action(room: RoomRef, session: SessionRef, action: Action, state: State, caller: Auth,
                         body: SessionActionIn | None = None) -> JSONResponse:
    row, live = session_of(state, caller, room, session)
    live = require_live(row, live)
    body = body or SessionActionIn(participants=None)
    if action is Action.END:
        ended = sorted(p.identity for p in live.visible())
        await state.rooms.complete(live, "ended_by_api")
        return _answer(action, row, ended, [], [])
    if body.participants is None:
        raise BadRequest(f'{action.value} needs "participants": "all" or a list of identities',
                         code="invalid_participants")
    connected = list(live.participants)
    try:
        chosen, missing = select([p.identity for p in live.visible()], connected, body.participants, body.exclude)
    except SelectionError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    tracks: list[str] = []
    try:
        for identity in chosen:
            participant = live.participants.get(identity)
            if participant is None:  # left meanwhile (a kick's own await)
                continue
            if action is Action.KICK:
                await state.rooms.remove(live, identity, KICK_REASON)
                continue
            for track in [t for t in participant.tracks.values() if t.kind == "audio"]:
                if action is Action.MUTE and not track.muted:
                    state.rooms.set_muted(live, participant, track.sid, True, by_server=True)
                    tracks.append(track.sid)
                elif action is Action.UNMUTE and track.muted:
                    participant.peer.send(UnmuteRequest(track_sid=track.sid))
                    tracks.append(track.sid)
    except RoomError as exc:
        raise room_error(exc) from None
    return _answer(action, row, chosen, tracks, missing)


def _answer(action: Action, row: RoomRow, chosen: list[str], tracks: list[str], missing: list[str]) -> JSONResponse:
    return JSONResponse({"action": action.value, "room_sid": row.sid, "participants": chosen, "tracks": tracks,
                         "not_found": missing})


@router.get("/rooms/{room}/sessions/{session}/participants", response_model=list[SessionOut],
            summary="Search the participants of one room session (paginated: limit, after)")
async def search_participants(
        room: RoomRef, session: SessionRef, state: State, caller: Auth,
        identity: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[Literal["connected", "disconnected"] | None, Query()] = None,
        joined_after: Annotated[float | None, Query(ge=0, description="joined at or after (epoch seconds)")] = None,
        joined_before: Annotated[float | None, Query(ge=0, description="joined before (epoch seconds)")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[str | None, Query(max_length=64,
                                           description="the sid of the last participant session of the "
                                                       "previous page")] = None) -> JSONResponse:
    row, _ = session_of(state, caller, room, session)
    if after is not None:
        previous = state.reader.get_session(after)
        if previous is None or previous.room_sid != row.sid:
            raise BadRequest("after is not a participant session of this room session", code="invalid_cursor")
    connected = None if status is None else status == "connected"
    rows = state.reader.search_sessions(row.sid, identity=identity, connected=connected, joined_after=joined_after,
                                        joined_before=joined_before, after=after, limit=limit)
    return JSONResponse([{"sid": s.sid, "identity": s.identity, "name": s.name, "joined_at": s.joined_at,
                          "left_at": s.left_at, "leave_reason": s.leave_reason} for s in rows])
