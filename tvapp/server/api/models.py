"""The REST API's bodies: request models (validated strictly by pydantic) and response models (for OpenAPI).

Requests are `Strict`: unknown keys are refused and no type is coerced ("600" is not a number, "yes"
is not true). Responses are built as plain dicts for speed; their models exist so that OpenAPI
describes them. Models that mirror a type defined elsewhere are derived from it, so a field added
there appears here too: `GrantsIn` from core.claims.GRANT_FLAGS, `RoomOut` from store.RoomRow,
`SessionOut` from store.SessionRow.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tvapp.core.claims import GRANT_FLAGS, IDENTITY_RE, ROOM_NAME_RE
from tvapp.core.playback import MAX_TITLE_CHARS
from tvapp.core.text import MAX_NAME_CHARS, text_problem
from tvapp.server.errors import BadRequest
from tvapp.server.store import RoomRow, SessionRow

IDENTITY = IDENTITY_RE.pattern
ROOM = ROOM_NAME_RE.pattern
NAME_RULE = (f"Display name: at most {MAX_NAME_CHARS} printable characters, no control or invisible characters "
             "(else 400 invalid_name)")


def checked_text(field: str, text: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """Return a human-readable name or title that follows tvapp.core.text's rule; raise 400 invalid_name."""
    problem = text_problem(text, max_chars)
    if problem is not None:
        raise BadRequest(f"{field} {problem}", code="invalid_name")
    return text


def row_fields(row_type: type[Any], *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return a store row's fields as required pydantic fields, in their declared order."""
    hints = typing.get_type_hints(row_type)
    return {f.name: (hints[f.name], ...) for f in dataclasses.fields(row_type) if f.name not in leave_out}


class Strict(BaseModel):
    """A request body: unknown keys refused, no type coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "600" is not a number, "yes" is not true


_GRANT_FIELDS: dict[str, Any] = {name: (bool, default) for name, default in GRANT_FLAGS.items()}
if TYPE_CHECKING:
    GrantsIn = Strict  # what type checkers need to know of it: a strict body
else:
    GrantsIn = create_model("GrantsIn", __base__=Strict, **_GRANT_FIELDS)
RoomOut = create_model("RoomOut", **row_fields(RoomRow), participant_count=(int, ...))
SessionOut = create_model("SessionOut", **row_fields(SessionRow, leave_out=("room_sid",)))
ROOM_FIELDS = tuple(name for name in RoomOut.model_fields if name != "participant_count")
SESSION_FIELDS = tuple(SessionOut.model_fields)


# Models below carry comments, not docstrings: pydantic would publish a docstring in OpenAPI.

# POST /tokens: who, which room, what grants, how long.
class TokenRequest(Strict):
    # The room name rule is checked by the route (core.claims.check_room_name: 400 invalid_room); shown here.
    room: str = Field(json_schema_extra={"pattern": ROOM}, description="Room name the token is for")
    identity: str = Field(pattern=IDENTITY, description="The participant's stable identity")
    name: str = Field("", description=NAME_RULE, json_schema_extra={"maxLength": MAX_NAME_CHARS})
    grants: GrantsIn = Field(default_factory=GrantsIn)
    ttl: int | None = Field(None, ge=1, description="Access token lifetime in seconds (default 600, max 86400)")


# POST /tokens/refresh.
class RefreshRequest(Strict):
    refresh_token: str = Field(max_length=8192)


# An access + refresh pair (issue, refresh, redeem).
class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    expires_at: float
    refresh_expires_at: float
    identity: str
    room: str


# POST /rooms: its name and limits (defaults from [rooms]).
class RoomCreate(Strict):
    name: str = Field(json_schema_extra={"pattern": ROOM})  # checked by the route: 400 invalid_room
    max_participants: int | None = Field(None, description="2 to 50 (default 6)")
    empty_timeout: int | None = Field(None, description="Seconds a room may stay empty (default 300)")
    status_callback: str | None = Field(
        None, max_length=2048,
        description="This room's own webhook URL (http or https, no credentials; its events go there as well as "
                    "to [webhooks] urls). Only API key callers create rooms, so only they choose where the core "
                    "sends requests; [webhooks] allow_private = false refuses loopback and private addresses")
    record: bool = Field(False, description="Record every published track from the start (see /v1/recordings)")


# POST /rooms/{room}/invites: how long and how often (defaults from [invites]).
class InviteCreate(Strict):
    ttl: int | None = Field(None, ge=1, description="Seconds the code stays valid (default 900)")
    max_uses: int | None = Field(None, ge=1, le=1000, description="Redemptions allowed (default 10)")


# A new invite; the code is shown once and only its hash is stored.
class InviteOut(BaseModel):
    code: str
    room: str
    room_sid: str
    expires_at: float
    max_uses: int


# POST /invites/{code}/redeem: the guest's identity and display name.
class RedeemRequest(Strict):
    identity: str = Field(pattern=IDENTITY)
    name: str = Field("", description=NAME_RULE, json_schema_extra={"maxLength": MAX_NAME_CHARS})


# What the SFU last asked the publisher of a video track to send (signaling: publish_constraints; null: no limit).
class ConstraintsOut(BaseModel):
    max_width: int | None = None
    max_height: int | None = None
    max_framerate: int | None = None
    max_bitrate: int | None = None
    paused: bool = False


# A second encode of a video track its publisher sends (simulcast by two tracks): never a track of its own.
class RenditionOut(BaseModel):
    sid: str
    layer: str = Field(description="\"low\": 160x90@15, sent to a subscriber whose link cannot carry the track")
    constraints: ConstraintsOut | None = Field(
        default=None, description="what its publisher is asked to send: paused while no subscriber needs it")


# A published track (protocol.messages.TrackInfo as JSON).
class TrackOut(BaseModel):
    sid: str
    kind: str
    source: str
    name: str
    muted: bool
    constraints: ConstraintsOut | None = Field(
        default=None, description="a video track's current publish constraints (adaptive stream: the largest size "
        "any subscriber shows, paused when nobody does); null for audio, or in answers that do not say")
    renditions: list[RenditionOut] = Field(
        default_factory=list, description="its renditions: the SFU sends one in its place to a subscriber whose "
        "link cannot carry it (tvapp.core.simulcast)")


# A connected participant and its tracks.
class ParticipantOut(BaseModel):
    sid: str
    identity: str
    name: str
    joined_at: float
    tracks: list[TrackOut]
    # Its websocket or media dropped; it keeps its place for [signal] reconnect_grace seconds (signaling:
    # participant_reconnecting / participant_reconnected).
    reconnecting: bool = False
    network_quality: int | None = Field(
        default=None, ge=0, le=5, description="network quality on Twilio's scale: 5 excellent .. 1 bad, 0 broken "
        "(nothing heard for 3 s); null until measured (signaling: network_quality)")


# POST .../tracks/{sid}/mute.
class MuteRequest(Strict):
    muted: bool = True


# POST /rooms/{room}/playback: one command of protocol.messages.Playback.
class PlaybackRequest(Strict):
    action: Literal["load", "play", "pause", "seek", "stop", "configure", "live"]
    content: str | None = Field(default=None, max_length=2048,
                                description="load: a media URL or an absolute file path every screen can open")
    title: str = Field(default="", json_schema_extra={"maxLength": MAX_TITLE_CHARS},
                       description="load: the title screens show (the name rule; else 400 invalid_name)")
    position: float | None = Field(default=None, ge=0, description="load/seek: seconds into the content (live: an "
                                   "instant of the event, epoch seconds); \"live\": back to the room's live point")
    play: bool = Field(default=True, description="load: start playing (else paused at the position)")
    control: Literal["host", "everyone"] | None = Field(default=None, description="configure: who may command")
    on_stall: Literal["pause", "continue"] | None = Field(default=None,
                                                          description="configure: what a stalled screen does")


# The room's content timeline (protocol.messages.PlaybackStateMsg as JSON).
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
    live: bool = Field(default=False, description="a live HLS stream: position is an instant of the event")
    live_edge: float | None = Field(default=None, description="live: the live edge's instant at server time `at`")
    delay: float = Field(default=0.0, description="live: seconds the room's live point is behind the live edge")
    window: float = Field(default=0.0, description="live: seconds behind the live edge one can pause or seek to")
    program_date_time: bool = Field(default=True, description="live: False = instants from media sequence")
    server_time: float


# GET /healthz (no credentials).
class HealthOut(BaseModel):
    status: Literal["ok"] = Field(description="always ok: the server answers and its store is open")
    version: str = Field(description="the tvapp version")
    live_rooms: int = Field(description="rooms open or in progress in this process")
