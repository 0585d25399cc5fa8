"""`/v1/rooms/{room}/participants`: who is connected now; remove one; mute one's published track (server side).

Acts through the room manager (tvapp.server.rooms), which tells everyone in the room; a removed
participant's token is refused from then on and its identity kept out of this room session.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response

from tvapp.protocol.messages import TrackInfo
from tvapp.server.api.auth import Auth, RoomRef, State, resolve
from tvapp.server.api.models import MuteRequest, ParticipantOut, TrackOut
from tvapp.server.api.rooms import require_live, room_error
from tvapp.server.live import LiveParticipant, RoomError
from tvapp.server.media import Sfu

router = APIRouter(tags=["participants"])

Identity = Annotated[str, Path(max_length=64)]


def track_json(track: TrackInfo) -> dict[str, Any]:
    """Return a published track as the API answers it (`TrackOut`, without constraints)."""
    out = track.to_json()
    out.pop("rendition_of", None)  # always null in a room's view: a rendition is never a track there
    out.pop("layer", None)
    return out


def participant_json(p: LiveParticipant, sfu: Sfu) -> dict[str, Any]:
    """Return a participant as the API answers it (`ParticipantOut`), its video tracks' constraints from `sfu`."""
    session = sfu.session(p)

    def constraints(sid: str) -> dict[str, Any] | None:
        publication = session.publications.get(sid) if session is not None else None
        c = publication.constraints if publication is not None and publication.kind == "video" else None
        return None if c is None else {"max_width": c.max_width, "max_height": c.max_height,
                                       "max_framerate": c.max_framerate, "max_bitrate": c.max_bitrate,
                                       "paused": c.paused}

    tracks = []
    for track in p.tracks.values():
        out = {**track_json(track), "constraints": constraints(track.sid)}
        out["renditions"] = [{**r.to_json(), "constraints": constraints(r.sid)} for r in track.renditions]
        tracks.append(out)
    return {"sid": p.sid, "identity": p.identity, "name": p.name, "joined_at": p.joined_at, "tracks": tracks,
            "reconnecting": p.reconnecting, "network_quality": p.network_quality}


@router.get("/rooms/{room}/participants", response_model=list[ParticipantOut],
            summary="List the participants connected now")
async def list_participants(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    return JSONResponse([participant_json(p, state.sfu) for p in (live.visible() if live else [])])


@router.get("/rooms/{room}/participants/{identity}", response_model=ParticipantOut,
            summary="Get one connected participant")
async def get_participant(room: RoomRef, identity: Identity, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    try:
        return JSONResponse(participant_json(
            state.rooms.get_participant(require_live(row, live), identity), state.sfu))
    except RoomError as exc:
        raise room_error(exc) from None


@router.delete("/rooms/{room}/participants/{identity}", status_code=204,
               summary="Remove a participant: disconnected, token refused, kept out of this room session")
async def remove_participant(room: RoomRef, identity: Identity, state: State, caller: Auth) -> Response:
    row, live = resolve(state, caller, room)
    try:
        await state.rooms.remove(require_live(row, live), identity)
    except RoomError as exc:
        raise room_error(exc) from None
    return Response(status_code=204)


@router.post("/rooms/{room}/participants/{identity}/tracks/{track_sid}/mute", response_model=TrackOut,
             summary="Mute or unmute a participant's published track (server side)")
async def mute_track(room: RoomRef, identity: Identity, track_sid: Annotated[str, Path(max_length=64)],
                     body: MuteRequest, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    live = require_live(row, live)
    try:
        participant = state.rooms.get_participant(live, identity)
        track = state.rooms.set_muted(live, participant, track_sid, body.muted, by_server=True)
    except RoomError as exc:
        raise room_error(exc) from None
    return JSONResponse(track_json(track))
