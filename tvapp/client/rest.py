"""A typed client for the core's REST API under /v1: tokens, rooms, invites, participants, playback, recordings.

Every /v1 path the SDK, the TV, the bot and the demo call is built here (the `*_path` functions, each path
segment quoted), so nothing else writes a URL by hand:

    api = RestClient("http://127.0.0.1:8800", api_key=(key_id, secret))
    await api.create_room("living-room")
    pair = await api.issue_token("living-room", "tv", grants={"host": True})
    invite = await api.create_invite("living-room")
    await api.set_recording("living-room", True)
    for rec in await api.list_recordings(room="living-room", status="completed"):
        data = await api.download_recording(rec.sid)

Authentication: `api_key` (key id, secret) calls as the key's owner (HTTP Basic), as a customer's auth server
does; `bearer` as the holder of an access token (a room host's token may remove and mute participants); neither
for the calls that need none (redeeming an invite, refreshing tokens).

Errors: an error answer raises `ApiError` with the HTTP status and the server's error code; an answer that is not
the JSON expected raises `ApiError` with status 0 and code ``bad_answer``; an unreachable server raises OSError.
https is checked as tvapp.client.trust says (CA verification, or the fingerprint pinned for that server).
Calls run urllib in a worker thread (`asyncio.to_thread`), so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from tvapp.client.trust import ssl_context
from tvapp.core.playback import PlaybackState
from tvapp.protocol import messages as m

__all__ = [
    "ApiError", "Invite", "ParticipantSession", "Recording", "RestClient", "RoomInfo", "SessionActionResult",
    "TokenPair", "composition_path", "compositions_path", "invites_path", "mute_path", "participant_path", "participants_path", "playback_path",
    "recording_media_path", "recording_path", "recordings_path", "redeem_path", "refresh_path", "room_path",
    "room_recording_path", "rooms_path", "session_action_path", "session_participants_path", "signal_path",
    "tokens_path",
]

DEFAULT_TIMEOUT = 10.0


class ApiError(Exception):
    """A REST call got an error answer: HTTP ``status`` (0: the answer was unreadable) and the server's ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message


# --- paths -------------------------------------------------------------------------------------------------------


def _path(*segments: str) -> str:
    return "/v1/" + "/".join(quote(segment, safe="") for segment in segments)


def tokens_path() -> str:
    """Return the path that issues tokens with an API key."""
    return _path("tokens")


def refresh_path() -> str:
    """Return the path that trades a refresh token for a new pair."""
    return _path("tokens", "refresh")


def rooms_path() -> str:
    """Return the path that creates and lists rooms."""
    return _path("rooms")


def room_path(room: str) -> str:
    """Return the path of one room (by name or sid)."""
    return _path("rooms", room)


def invites_path(room: str) -> str:
    """Return the path that creates invite codes for `room`."""
    return _path("rooms", room, "invites")


def redeem_path(code: str) -> str:
    """Return the path that redeems invite `code` for guest tokens."""
    return _path("invites", code, "redeem")


def participants_path(room: str) -> str:
    """Return the path that lists the participants of `room`."""
    return _path("rooms", room, "participants")


def participant_path(room: str, identity: str) -> str:
    """Return the path of one participant (get, remove)."""
    return _path("rooms", room, "participants", identity)


def mute_path(room: str, identity: str, track_sid: str) -> str:
    """Return the path that mutes or unmutes one published track."""
    return _path("rooms", room, "participants", identity, "tracks", track_sid, "mute")


def playback_path(room: str) -> str:
    """Return the path of the room's shared content timeline."""
    return _path("rooms", room, "playback")


def session_action_path(room: str, session: str, action: str) -> str:
    """Return the path of one room-session action (mute, unmute, kick, end)."""
    return _path("rooms", room, "sessions", session, "actions", action)


def session_participants_path(room: str, session: str) -> str:
    """Return the path that searches one room session's participants."""
    return _path("rooms", room, "sessions", session, "participants")


def room_recording_path(room: str) -> str:
    """Return the path that switches the room session's recording on or off."""
    return _path("rooms", room, "recording")


def recordings_path(**query: str | float | None) -> str:
    """Return the path that lists (or bulk-deletes) recordings, with the given filters as its query."""
    given = {key: str(value) for key, value in query.items() if value is not None}
    return _path("recordings") + ("?" + urlencode(given) if given else "")


def recording_path(sid: str) -> str:
    """Return the path of one recording (get, delete)."""
    return _path("recordings", sid)


def recording_media_path(sid: str) -> str:
    """Return the path that downloads one recording's file (Range requests allowed)."""
    return _path("recordings", sid, "media")


def compositions_path(**query: str | int | None) -> str:
    """Return the path that creates or lists compositions (list filters: session, status, limit)."""
    given = {key: str(value) for key, value in query.items() if value is not None}
    return _path("compositions") + ("?" + urlencode(given) if given else "")


def composition_path(sid: str, *rest: str) -> str:
    """Return the path of one composition (get, delete), or below it ("media": download)."""
    return _path("compositions", sid, *rest)


def signal_path() -> str:
    """Return the path of the signaling websocket."""
    return _path("signal")


# --- answers -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TokenPair:
    """An access token and the refresh token that renews it (both JWTs), for `identity` in `room`."""

    access_token: str
    refresh_token: str
    expires_at: float
    refresh_expires_at: float
    identity: str
    room: str


@dataclasses.dataclass(frozen=True)
class Invite:
    """An invite code for a room, valid until `expires_at` (server clock, seconds) for `max_uses` redemptions."""

    code: str
    room: str
    room_sid: str
    expires_at: float
    max_uses: int


@dataclasses.dataclass(frozen=True)
class RoomInfo:
    """A room as the REST API describes it."""

    sid: str
    name: str
    status: str
    max_participants: int
    empty_timeout: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    participant_count: int


@dataclasses.dataclass(frozen=True)
class SessionActionResult:
    """What a room-session action did: to whom, which audio tracks, and which listed identities were not there."""

    action: str
    room_sid: str
    participants: list[str]
    tracks: list[str]
    not_found: list[str]


@dataclasses.dataclass(frozen=True)
class ParticipantSession:
    """One participant's stay in a room session (left_at None while connected)."""

    sid: str
    identity: str
    name: str
    joined_at: float
    left_at: float | None
    leave_reason: str | None


@dataclasses.dataclass(frozen=True)
class Recording:
    """One recorded track (GET /v1/recordings/{sid}); `offset` is seconds from its room session's start."""

    sid: str
    room: str
    session: str
    participant: str
    participant_sid: str
    track: str
    type: str  # audio | video
    codec: str  # opus | vp8 | h264
    container: str  # mka | webm | mkv
    status: str  # processing | completed | failed | deleted
    offset: float
    duration: float
    size: int
    created_at: float
    completed_at: float | None
    reason: str | None


def _fields(cls: type[Any], answer: object) -> dict[str, Any]:
    """Return the answer's values for the fields of dataclass `cls`; ApiError(bad_answer) if one is missing."""
    if not isinstance(answer, dict):
        raise ApiError(0, "bad_answer", "the server's answer was not a JSON object")
    names = [field.name for field in dataclasses.fields(cls)]
    missing = [name for name in names if name not in answer]
    if missing:
        raise ApiError(0, "bad_answer", f"the server's answer lacks {', '.join(missing)}")
    return {name: answer[name] for name in names}


def _record(cls: type[Any], answer: object) -> Any:
    """Return a protocol record read from the answer; ApiError(bad_answer) if it does not fit."""
    try:
        return cls.from_json(answer)
    except m.ProtocolError as exc:
        raise ApiError(0, "bad_answer", f"the server's answer is not a {cls.__name__}: {exc.message}") from None


# --- the client ----------------------------------------------------------------------------------------------------


class RestClient:
    """Call one core server's REST API as an API key's owner, a token holder, or nobody (see the module docs)."""

    def __init__(self, server_url: str, *, api_key: tuple[str, str] | None = None, bearer: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.server_url = server_url.rstrip("/")
        self.api_key = api_key
        self.bearer = bearer
        self.timeout = timeout

    # -- tokens and invites ----------------------------------------------------------------------------------------

    async def issue_token(self, room: str, identity: str, *, name: str = "", grants: dict[str, bool] | None = None,
                          ttl: int | None = None) -> TokenPair:
        """Issue a token pair for `identity` in `room` (needs the API key); `grants` as in POST /v1/tokens."""
        body: dict[str, Any] = {"room": room, "identity": identity, "name": name}
        if grants is not None:
            body["grants"] = grants
        if ttl is not None:
            body["ttl"] = ttl
        return TokenPair(**_fields(TokenPair, await self._call("POST", tokens_path(), body)))

    async def refresh_tokens(self, refresh_token: str) -> TokenPair:
        """Trade a refresh token for a new pair; the old refresh token is spent."""
        answer = await self._call("POST", refresh_path(), {"refresh_token": refresh_token})
        return TokenPair(**_fields(TokenPair, answer))

    async def create_invite(self, room: str, *, ttl: int | None = None, max_uses: int | None = None) -> Invite:
        """Create an invite code for `room` (needs the API key or a host token of the room)."""
        body: dict[str, Any] = {}
        if ttl is not None:
            body["ttl"] = ttl
        if max_uses is not None:
            body["max_uses"] = max_uses
        return Invite(**_fields(Invite, await self._call("POST", invites_path(room), body)))

    async def redeem_invite(self, code: str, identity: str, *, name: str = "") -> TokenPair:
        """Redeem invite `code` for a guest token pair (no credentials needed)."""
        answer = await self._call("POST", redeem_path(code), {"identity": identity, "name": name})
        return TokenPair(**_fields(TokenPair, answer))

    # -- rooms and participants ------------------------------------------------------------------------------------

    async def create_room(self, name: str, *, max_participants: int | None = None, empty_timeout: int | None = None,
                          status_callback: str | None = None, record: bool = False) -> RoomInfo:
        """Create a room (needs the API key), recorded from the start if `record`, with its own webhook URL
        `status_callback`; ApiError ``room_exists`` if an open room has that name."""
        body: dict[str, Any] = {"name": name}
        if status_callback is not None:
            body["status_callback"] = status_callback
        if record:
            body["record"] = True
        if max_participants is not None:
            body["max_participants"] = max_participants
        if empty_timeout is not None:
            body["empty_timeout"] = empty_timeout
        return RoomInfo(**_fields(RoomInfo, await self._call("POST", rooms_path(), body)))

    async def list_participants(self, room: str) -> tuple[m.ParticipantInfo, ...]:
        """Return the participants connected to `room` now."""
        answer = await self._call("GET", participants_path(room))
        if not isinstance(answer, list):
            raise ApiError(0, "bad_answer", "the server's answer was not a JSON array")
        return tuple(_record(m.ParticipantInfo, item) for item in answer)

    async def remove_participant(self, room: str, identity: str) -> None:
        """Remove `identity` from `room` (it may not rejoin with the same token)."""
        await self._call("DELETE", participant_path(room, identity))

    async def mute_track(self, room: str, identity: str, track_sid: str, muted: bool = True) -> m.TrackInfo:
        """Mute (or unmute) one track `identity` publishes in `room`; return the track as it is now."""
        answer = await self._call("POST", mute_path(room, identity, track_sid), {"muted": muted})
        return _record(m.TrackInfo, answer)  # type: ignore[no-any-return]

    async def session_action(self, room: str, session: str, action: str,
                             participants: str | list[str] | None = None,
                             exclude: list[str] | None = None) -> SessionActionResult:
        """Mute, ask to unmute, kick (`participants`: "all" or identities, minus `exclude`) or end a room session."""
        body: dict[str, Any] = {}
        if participants is not None:
            body["participants"] = participants
        if exclude:
            body["exclude"] = exclude
        answer = await self._call("POST", session_action_path(room, session, action), body)
        return SessionActionResult(**_fields(SessionActionResult, answer))

    async def search_participants(self, room: str, session: str, *, identity: str | None = None,
                                  status: str | None = None, joined_after: float | None = None,
                                  joined_before: float | None = None, limit: int | None = None,
                                  after: str | None = None) -> list[ParticipantSession]:
        """Return one page of a room session's participants (pass the last sid as `after` for the next page)."""
        query = {k: v for k, v in (("identity", identity), ("status", status), ("joined_after", joined_after),
                                   ("joined_before", joined_before), ("limit", limit), ("after", after))
                 if v is not None}
        path = session_participants_path(room, session)
        if query:
            path += "?" + urlencode(query)
        answer = await self._call("GET", path)
        if not isinstance(answer, list):
            raise ApiError(0, "bad_answer", "the server's answer was not a JSON array")
        return [ParticipantSession(**_fields(ParticipantSession, item)) for item in answer]

    # -- playback ------------------------------------------------------------------------------------------------

    async def get_playback(self, room: str) -> PlaybackState:
        """Return the room's shared content timeline."""
        msg: m.PlaybackStateMsg = _record(m.PlaybackStateMsg, await self._call("GET", playback_path(room)))
        return msg.state()

    async def post_playback(self, room: str, action: str, *, content: str | None = None, title: str = "",
                            position: float | None = None, play: bool = True, control: str | None = None,
                            on_stall: str | None = None) -> PlaybackState:
        """Command the room's content (load, play, pause, seek, stop, configure); return the new timeline."""
        body: dict[str, Any] = {"action": action, "title": title, "play": play}
        for key, value in (("content", content), ("position", position), ("control", control),
                           ("on_stall", on_stall)):
            if value is not None:
                body[key] = value
        msg: m.PlaybackStateMsg = _record(m.PlaybackStateMsg, await self._call("POST", playback_path(room), body))
        return msg.state()

    # -- recordings ---------------------------------------------------------------------------------------------

    async def set_recording(self, room: str, on: bool) -> bool:
        """Start (or stop) recording every published track of the live `room`; return whether it records now."""
        answer = await self._call("POST", room_recording_path(room), {"action": "start" if on else "stop"})
        if not isinstance(answer, dict) or not isinstance(answer.get("recording"), bool):
            raise ApiError(0, "bad_answer", "the server's answer lacks recording")
        return bool(answer["recording"])

    async def list_recordings(self, *, room: str | None = None, session: str | None = None,
                              participant: str | None = None, status: str | None = None, type: str | None = None,
                              started_after: float | None = None, started_before: float | None = None,
                              limit: int | None = None, after: str | None = None) -> list[Recording]:
        """Return recordings newest first (needs the API key); the next page: `after` = the last sid returned."""
        path = recordings_path(room=room, session=session, participant=participant, status=status, type=type,
                               started_after=started_after, started_before=started_before, limit=limit, after=after)
        answer = await self._call("GET", path)
        if not isinstance(answer, list):
            raise ApiError(0, "bad_answer", "the server's answer was not a JSON array")
        return [Recording(**_fields(Recording, item)) for item in answer]

    async def get_recording(self, sid: str) -> Recording:
        """Return one recording."""
        return Recording(**_fields(Recording, await self._call("GET", recording_path(sid))))

    async def download_recording(self, sid: str, *, start: int | None = None, end: int | None = None) -> bytes:
        """Return a finished recording's file, or its bytes `start` to `end` (inclusive; `end` None: to the end)."""
        byte_range = None if start is None and end is None else f"bytes={start or 0}-{'' if end is None else end}"
        return await asyncio.to_thread(self._fetch_blocking, self.server_url + recording_media_path(sid), byte_range)

    async def delete_recording(self, sid: str) -> None:
        """Delete a finished recording's file (it stays listed with status deleted)."""
        await self._call("DELETE", recording_path(sid))

    async def delete_recordings(self, *, room: str | None = None, session: str | None = None,
                                participant: str | None = None, status: str | None = None, type: str | None = None,
                                started_after: float | None = None,
                                started_before: float | None = None) -> tuple[int, int]:
        """Delete every finished recording the filters select (at least one); return (deleted, skipped)."""
        path = recordings_path(room=room, session=session, participant=participant, status=status, type=type,
                               started_after=started_after, started_before=started_before)
        answer = await self._call("DELETE", path)
        if not isinstance(answer, dict) or not all(isinstance(answer.get(k), int) for k in ("deleted", "skipped")):
            raise ApiError(0, "bad_answer", "the server's answer lacks deleted and skipped")
        return int(answer["deleted"]), int(answer["skipped"])

    # -- the wire ------------------------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one request; return the decoded JSON answer ({} for an empty one, such as 204 No Content)."""
        return await asyncio.to_thread(self._call_blocking, method, self.server_url + path, body)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key is not None:
            credentials = f"{self.api_key[0]}:{self.api_key[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        elif self.bearer is not None:
            headers["Authorization"] = f"Bearer {self.bearer}"
        return headers

    def _fetch_blocking(self, url: str, byte_range: str | None) -> bytes:
        headers = {**self._headers(), "Accept": "*/*"}
        if byte_range is not None:
            headers["Range"] = byte_range
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout) as answer:
                return bytes(answer.read())
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from None

    def _call_blocking(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=ssl_context(url)) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from None
        except ValueError:
            raise ApiError(0, "bad_answer", "the server's answer was not JSON") from None
        if not isinstance(answer, (dict, list)):
            raise ApiError(0, "bad_answer", "the server's answer was neither a JSON object nor an array")
        return answer


def _http_error(exc: urllib.error.HTTPError) -> ApiError:
    """Return the ApiError for an error answer (its JSON code and message when it has them)."""
    code, message = f"http_{exc.code}", exc.reason or ""
    with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
        error = json.loads(exc.read())["error"]
        code, message = str(error["code"]), str(error.get("message", ""))
    return ApiError(exc.code, code, message)
