"""`/v1/compositions`: render a room session's recordings into one video file; list, get (progress), download, delete.

A composition is queued (enqueued), rendered by a worker process (processing, with `percent` and `eta`), then
completed (the file can be downloaded) or failed (`reason`); composition_completed/failed webhooks follow. Every
route needs API key credentials. The request is validated by tvapp.core.compositions.parse_request (400
invalid_session, invalid_layout, invalid_resolution, invalid_format, invalid_fps, invalid_sources, invalid_trim);
an unknown session is 404 session_not_found, a session with no recordings 400 no_recordings, sources that pick
nothing 400 no_sources, a session still recording 409 recording_in_progress, more than MAX_PENDING (16) waiting
or rendering 409 composition_queue_full. Downloads share the recordings'
Range handling (tvapp.server.api.files).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from tvapp.core.compositions import MEDIA_TYPES, STATUSES, parse_request
from tvapp.core.recordings import FilterError, parse_limit
from tvapp.server.api.auth import Auth, State
from tvapp.server.api.files import file_response
from tvapp.server.api.models import Strict
from tvapp.server.compositions import CompositionRow, CompositionService
from tvapp.server.errors import BadRequest, Conflict, Gone, NotFound
from tvapp.server.state import ServerState

router = APIRouter(tags=["compositions"])

CompositionSid = Annotated[str, Path(max_length=64, description="The composition's sid (CJ_...)")]
PUBLIC = ("sid", "room", "session", "layout", "resolution", "format", "status", "percent", "eta", "duration",
          "size", "created_at", "started_at", "completed_at", "reason")


# trim of POST /compositions: seconds of the room session.
class Trim(Strict):
    start: float = 0.0
    end: float | None = None


# POST /compositions.
class CompositionIn(Strict):
    session: str = Field(description="the room session's sid (RM_...)")
    layout: str = Field("grid", description="grid | speaker | single")
    resolution: str = Field("640x360", description="WIDTHxHEIGHT, even, from 64x64 to 1920x1080")
    format: str = Field("mp4", description="mp4 (H.264 + AAC) | webm (VP8 + Opus)")
    fps: int = Field(15, description="10 | 15 | 25 | 30")
    audio_sources: list[str] | Literal["all"] = "all"
    video_sources: list[str] | Literal["all"] = "all"
    trim: Trim | None = None


# One composition and how far its render got.
class CompositionOut(BaseModel):
    sid: str
    room: str
    session: str
    layout: Literal["grid", "speaker", "single"]
    resolution: str
    format: Literal["mp4", "webm"]
    status: Literal["enqueued", "processing", "completed", "failed", "deleted"]
    percent: float
    eta: float | None
    duration: float
    size: int
    created_at: float
    started_at: float | None
    completed_at: float | None
    reason: str | None


def composition_json(row: CompositionRow) -> dict[str, Any]:
    """Return a composition as the API answers it (`CompositionOut`)."""
    return {name: getattr(row, name) for name in PUBLIC}


def _service(state: ServerState) -> CompositionService:
    assert state.compositions is not None
    return state.compositions


def _find(state: ServerState, sid: str) -> CompositionRow:
    row = _service(state).rows.get(sid) if sid.startswith("CJ_") else None
    if row is None:
        raise NotFound(f"no composition {sid[:64]!r}", code="composition_not_found")
    return row


@router.post("/compositions", response_model=CompositionOut, status_code=201,
             summary="Render a room session's recordings into one video file (queued; poll its progress)")
async def create_composition(body: CompositionIn, state: State, caller: Auth) -> JSONResponse:
    caller.require_key()
    raw = body.model_dump(exclude_none=True)
    req = parse_request(raw)
    room = state.reader.get_room(req.session)
    if room is None:
        raise NotFound(f"no room session {req.session[:64]!r}", code="session_not_found")
    row = _service(state).create(req, room.name)
    return JSONResponse(composition_json(row), status_code=201)


@router.get("/compositions", response_model=list[CompositionOut],
            summary="List compositions, newest first, by session and status")
async def list_compositions(state: State, caller: Auth,
                            session: Annotated[str | None, Query(max_length=64,
                                                                 description="room session sid (RM_...)")] = None,
                            status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
                            limit: Annotated[str | None, Query(description="1-1000, default 100",
                                                               json_schema_extra={"type": "integer"})] = None
                            ) -> JSONResponse:
    caller.require_key()
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}", code="invalid_filter")
    try:  # read as text so that a bad one is invalid_filter like the status (as for recordings)
        size = parse_limit(limit)
    except FilterError as exc:
        raise BadRequest(exc.message, code=exc.code) from None
    rows = _service(state).rows.select(session, status, size)
    return JSONResponse([composition_json(r) for r in rows])


@router.get("/compositions/{sid}", response_model=CompositionOut,
            summary="Get one composition: status, percent and ETA while it renders")
async def get_composition(sid: CompositionSid, state: State, caller: Auth) -> JSONResponse:
    caller.require_key()
    return JSONResponse(composition_json(_find(state, sid)))


@router.delete("/compositions/{sid}", status_code=204,
               summary="Delete a finished composition's file (the composition stays listed as deleted)")
async def delete_composition(sid: CompositionSid, state: State, caller: Auth) -> Response:
    caller.require_key()
    row = _find(state, sid)
    if row.status in ("enqueued", "processing"):
        raise Conflict("the composition is still being rendered", code="composition_in_progress")
    if row.status != "deleted":
        _service(state).delete(row)
    return Response(status_code=204)


@router.get("/compositions/{sid}/media", response_class=StreamingResponse,
            responses={200: {"content": {"video/mp4": {}, "video/webm": {}}},
                       206: {"description": "the byte range asked for (Range: bytes=START-END)"}},
            summary="Download a completed composition (one byte range with Range; 206, Content-Range)")
async def composition_media(sid: CompositionSid, request: Request, state: State, caller: Auth) -> Response:
    caller.require_key()
    row = _find(state, sid)
    if row.status == "deleted":
        raise Gone("this composition was deleted", code="composition_deleted")
    if row.status != "completed":
        raise Conflict(f"the composition is {row.status}, not completed", code="composition_not_ready")
    return await file_response(_service(state).root / row.file, request, MEDIA_TYPES[row.format], row.file)
