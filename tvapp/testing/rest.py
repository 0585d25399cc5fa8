"""REST shortcuts for tests against a real ``tvapp serve``: room names, rooms, invites, tokens, recordings.

Each helper makes one real request through ``ServerProcess.http`` and checks its status, so a test reads as what it
does (``create_room(srv, max_participants=2)``) rather than how the request is spelled.
"""

from __future__ import annotations

import uuid
from typing import Any

from tvapp.client.rest import invites_path, recordings_path, rooms_path
from tvapp.testing.server import ServerProcess

ALL_GRANTS = {"join": True, "publish": True, "subscribe": True, "publish_data": True}


def room_name(prefix: str = "room", length: int = 12) -> str:
    """Return a room name no other test uses: `prefix`, a dash and `length` random hex digits."""
    return f"{prefix}-{uuid.uuid4().hex[:length]}"


def create_room(srv: ServerProcess, name: str | None = None, **body: Any) -> dict[str, Any]:
    """Create a room (a fresh name unless `name`) with the given body fields; return the 201 response's JSON."""
    response = srv.http.post(rooms_path(), json={"name": name or room_name(), **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def new_room(srv: ServerProcess, prefix: str = "room", length: int = 10, **body: Any) -> str:
    """Create a room with a fresh name starting with `prefix`; return the name."""
    name = room_name(prefix, length)
    create_room(srv, name, **body)
    return name


def media_token(srv: ServerProcess, room: str, identity: str, **grants: Any) -> str:
    """Mint an access token for `identity` in `room` with every media and data grant unless `grants` says otherwise."""
    return str(srv.token(room, identity, **{**ALL_GRANTS, **grants})["access_token"])


def create_invite(srv: ServerProcess, room: str, **body: Any) -> dict[str, Any]:
    """Create an invite to `room` (name or sid) with the given body fields; return the 201 response's JSON."""
    response = srv.http.post(invites_path(room), json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def recordings(srv: ServerProcess, **filters: str) -> list[dict[str, Any]]:
    """Return the recordings GET /v1/recordings lists with these query `filters` (checking its 200)."""
    answer = srv.http.get(recordings_path(), params=filters)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows
