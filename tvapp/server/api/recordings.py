"""`/v1/recordings` and `/v1/rooms/{room}/recording`: switch a room's recording on or off; list, get, download, delete.

One recording is one published track written as received (tvapp.server.recorder). Switching a room and reading
one recording accept API key credentials or the room's host token (as the other room routes); listing and bulk
deletion need API key credentials. Filters are read by tvapp.core.recordings.parse_filters (400 invalid_filter);
a list is newest first, `limit` per page, the next page asked for with `after=<the last sid>` (the answer's
`X-Next-After` header names it while more may follow). Downloads serve one byte range (206, Content-Range;
416 when it cannot be satisfied). Files are named by the server (sid + extension) and never leave DATA/recordings.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from tvapp.core.recordings import (
    FILTER_KEYS,
    FilterError,
    parse_filters,
    parse_limit,
)
from tvapp.server.api.auth import Auth, Caller, RoomRef, State, resolve
from tvapp.server.api.files import file_response
from tvapp.server.api.models import Strict
from tvapp.server.api.rooms import require_live
from tvapp.server.errors import BadRequest, Conflict, Gone, NotFound
from tvapp.server.recording_store import RecordingRow
from tvapp.server.recording_writer import UnsafePath, recording_path
from tvapp.server.state import ServerState

router = APIRouter(tags=["recordings"])

RecordingSid = Annotated[str, Path(max_length=64, description="The recording's sid (RE_...)")]
CHUNK = 256 * 1024
MEDIA_TYPES = {"mka": "audio/x-matroska", "webm": "video/webm", "mkv": "video/x-matroska"}
PUBLIC = ("sid", "room", "session", "participant", "participant_sid", "track", "type", "codec", "container",
          "status", "offset", "duration", "size", "created_at", "completed_at", "reason")
QUERY_KEYS = frozenset((*FILTER_KEYS, "limit", "after"))
# The filters are read as text and judged by parse_filters / parse_limit, so a bad one is 400 invalid_filter
# (typed parameters would make FastAPI answer invalid_request first); the schema still shows their shape.
StatusQuery = Annotated[str | None, Query(json_schema_extra={"enum": ["processing", "completed", "failed", "deleted"]})]
TypeQuery = Annotated[str | None, Query(json_schema_extra={"enum": ["audio", "video"]})]
TimeQuery = Annotated[str | None, Query(description="epoch seconds (a number, at least 0)")]
LimitQuery = Annotated[str | None, Query(description="page size, a whole number from 1 to 1000 (default 100)")]


# POST /rooms/{room}/recording.
class RecordingAction(Strict):
    action: Literal["start", "stop"]


# A room session's recording switch.
class RoomRecordingOut(BaseModel):
    room: str
    session: str
    recording: bool


# One recorded track.
class RecordingOut(BaseModel):
    sid: str
    room: str
    session: str
    participant: str
    participant_sid: str
    track: str
    type: Literal["audio", "video"]
    codec: str
    container: Literal["mka", "webm", "mkv"]
    status: Literal["processing", "completed", "failed", "deleted"]
    offset: float
    duration: float
    size: int
    created_at: float
    completed_at: float | None
    reason: str | None


# DELETE /recordings?filters.
class BulkDeleteOut(BaseModel):
    deleted: int
    skipped: int


def recording_json(row: RecordingRow) -> dict[str, Any]:
    """Return a recording as the API answers it (`RecordingOut`)."""
    return {name: getattr(row, name) for name in PUBLIC}


def _filters(request: Request) -> tuple[Any, int, str | None]:
    unknown = sorted(set(request.query_params) - QUERY_KEYS)
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)[:200]}", code="invalid_filter")
    params = {key: request.query_params[key] for key in request.query_params}
    try:
        return parse_filters(params), parse_limit(params.get("limit")), params.get("after")
    except FilterError as exc:
        raise BadRequest(exc.message, code=exc.code) from None


def _room_json(state: ServerState, room: str, session: str) -> dict[str, Any]:
    return {"room": room, "session": session, "recording": state.recordings.is_recording(session)}


def _find(state: ServerState, caller: Caller, sid: str) -> RecordingRow:
    row = state.recordings.store.get(sid) if sid.startswith("RE_") else None
    if row is None:
        raise NotFound(f"no recording {sid[:64]!r}", code="recording_not_found")
    room = state.reader.get_room(row.session)
    if room is None:
        caller.require_key()
    else:
        caller.require_room(room)
    return row


@router.get("/rooms/{room}/recording", response_model=RoomRecordingOut,
            summary="Tell whether the room session records")
async def get_room_recording(room: RoomRef, state: State, caller: Auth) -> JSONResponse:
    row, _ = resolve(state, caller, room)
    return JSONResponse(_room_json(state, row.name, row.sid))


@router.post("/rooms/{room}/recording", response_model=RoomRecordingOut,
             summary="Start or stop recording every published track of a live room session")
async def set_room_recording(room: RoomRef, body: RecordingAction, state: State, caller: Auth) -> JSONResponse:
    row, live = resolve(state, caller, room)
    live = require_live(row, live)
    await state.recordings.set_recording(live, body.action == "start")
    return JSONResponse(_room_json(state, row.name, row.sid))


@router.get("/recordings", response_model=list[RecordingOut],
            summary="List recordings, newest first, by room, session, participant, status, type and start time")
async def list_recordings(request: Request, state: State, caller: Auth,
                          room: Annotated[str | None, Query(description="room name or session sid")] = None,
                          session: Annotated[str | None, Query(description="room session sid (RM_...)")] = None,
                          participant: Annotated[str | None, Query(description="identity or sid")] = None,
                          status: StatusQuery = None,
                          type: TypeQuery = None,
                          started_after: TimeQuery = None,
                          started_before: TimeQuery = None,
                          limit: LimitQuery = None,
                          after: Annotated[str | None, Query(max_length=64,
                                                             description="the last sid of the previous page")] = None,
                          ) -> JSONResponse:
    caller.require_key()
    flt, size, cursor = _filters(request)
    last = None
    if cursor is not None:
        last = state.recordings.store.get(cursor)
        if last is None:
            raise BadRequest("after must be the sid of a recording of the previous page", code="invalid_filter")
    rows = state.recordings.matching(flt, size, last)
    headers = {"X-Next-After": rows[-1].sid} if len(rows) == size else {}
    return JSONResponse([recording_json(r) for r in rows], headers=headers)


@router.delete("/recordings", response_model=BulkDeleteOut,
               summary="Delete every finished recording the filters select (at least one filter)")
async def delete_recordings(request: Request, state: State, caller: Auth,
                            room: Annotated[str | None, Query()] = None,
                            session: Annotated[str | None, Query()] = None,
                            participant: Annotated[str | None, Query()] = None,
                            status: StatusQuery = None,
                            type: TypeQuery = None,
                            started_after: TimeQuery = None,
                            started_before: TimeQuery = None) -> JSONResponse:
    caller.require_key()
    flt, _, _ = _filters(request)
    if "limit" in request.query_params or "after" in request.query_params:
        raise BadRequest("a bulk delete takes filters only (no limit or after)", code="invalid_filter")
    if flt.empty:
        raise BadRequest("a bulk delete needs at least one filter", code="filter_required")
    rows = state.recordings.matching(flt, 1_000_000)
    finished = [r for r in rows if r.status in ("completed", "failed")]
    deleted = await state.recordings.delete(finished)
    skipped = sum(1 for r in rows if r.status == "processing")
    return JSONResponse({"deleted": deleted, "skipped": skipped})


@router.get("/recordings/{sid}", response_model=RecordingOut, summary="Get one recording")
async def get_recording(sid: RecordingSid, state: State, caller: Auth) -> JSONResponse:
    return JSONResponse(recording_json(_find(state, caller, sid)))


@router.delete("/recordings/{sid}", status_code=204,
               summary="Delete a finished recording's file (the recording stays listed as deleted)")
async def delete_recording(sid: RecordingSid, state: State, caller: Auth) -> Response:
    row = _find(state, caller, sid)
    if row.status == "processing":
        raise Conflict("the recording is still being written: stop the room's recording first",
                       code="recording_in_progress")
    if row.status != "deleted":
        await state.recordings.delete([row])
    return Response(status_code=204)


@router.get("/recordings/{sid}/media", response_class=StreamingResponse,
            responses={200: {"content": {"audio/x-matroska": {}, "video/webm": {}, "video/x-matroska": {}}},
                       206: {"description": "the byte range asked for (Range: bytes=START-END)"}},
            summary="Download a recording's file (one byte range with Range; 206, Content-Range)")
async def recording_media(sid: RecordingSid, request: Request, state: State, caller: Auth) -> Response:
    row = _find(state, caller, sid)
    if row.status == "deleted":
        raise Gone("this recording was deleted", code="recording_deleted")
    if row.status == "processing":
        raise Conflict("the recording is still being written", code="recording_in_progress")
    try:
        path = recording_path(state.recordings.root, row.file)
    except UnsafePath:
        raise NotFound("the recording has no file", code="media_not_found") from None
    return await file_response(path, request, MEDIA_TYPES.get(row.container, "application/octet-stream"), row.file)
