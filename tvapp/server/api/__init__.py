"""The REST API under /v1, one module per resource, gathered into one `router` (the app includes it).

    models        request bodies (strict pydantic) and response models (for OpenAPI)
    auth          who is calling (API key or host token), and may they touch this room
    tokens        /tokens, /tokens/refresh
    rooms         /rooms, /rooms/{room}, /rooms/{room}/complete, /rooms/{room}/sessions
    invites       /rooms/{room}/invites, /invites/{code}/redeem
    participants  /rooms/{room}/participants[/{identity}[/tracks/{sid}/mute]]
    playback      /rooms/{room}/playback
    sessions      /rooms/{room}/sessions/{session}/actions/{action}, .../participants (search)
    recordings    /rooms/{room}/recording, /recordings[/{sid}[/media]]
    compositions  /compositions[/{sid}[/media]] (rendered by tvapp.compose in a worker process)
    files         one stored file or byte range (recordings' and compositions' downloads)
    openapi       the OpenAPI document's error statuses per route (ROUTE_ERRORS), one Error schema, no 422

Authentication (see `auth.Caller`): server-side calls use HTTP Basic with an API key id and secret;
room-scoped calls also accept `Authorization: Bearer <access token>` whose grants make its holder the
host of that very room. Request bodies are pydantic models (so OpenAPI describes them); responses are
built as plain dicts for speed, with their models given for the docs. A route's `summary=` is its
one-line description (a docstring on a route function would add a description to OpenAPI).
Decisions live below the routes: token acceptance in tvapp.auth, lifetimes in tvapp.core.claims,
invite redemption in tvapp.core.invites, rooms in tvapp.core.room; the routes gather, act and map errors.
Every route first passes `strict_request`: a query parameter twice, a JSON key twice in one object, NaN or
Infinity get 400 invalid_request (a proxy in front may have read them otherwise).
"""

from fastapi import APIRouter, Depends, Request

from tvapp.protocol.fields import ProtocolError, strict_json
from tvapp.server.api import (
    compositions,
    invites,
    participants,
    playback,
    recordings,
    rooms,
    sessions,
    tokens,
)
from tvapp.server.errors import BadRequest


async def strict_request(request: Request) -> None:
    """Refuse what parsers disagree on (400 invalid_request): a query parameter given twice, a JSON body with a key
    twice in one object, NaN or Infinity."""
    names = [name for name, _ in request.query_params.multi_items()]
    if len(set(names)) != len(names):
        twice = next(name for i, name in enumerate(names) if name in names[:i])
        raise BadRequest(f"the query parameter {twice[:64]!r} is given twice", code="invalid_request")
    body = await request.body()  # (already read and capped by the guard; FastAPI parsed it leniently)
    if body and "json" in request.headers.get("content-type", ""):
        try:
            strict_json(body)
        except ProtocolError as exc:
            raise BadRequest(exc.message.removeprefix("message: "), code="invalid_request") from None
        except (ValueError, RecursionError):
            pass  # not JSON at all: FastAPI has already answered that


router = APIRouter(prefix="/v1", dependencies=[Depends(strict_request)])
for _resource in (tokens, rooms, invites, participants, playback, sessions, recordings, compositions):
    router.include_router(_resource.router)

__all__ = ["router"]
