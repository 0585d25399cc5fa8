"""The OpenAPI document as the API really answers: every error status of every route, in one Error schema.

FastAPI documents a 422 on every route with a body or parameters, but the API never answers 422: a request that
does not validate gets 400 ``invalid_request`` (tvapp.web.errors). ``install_openapi`` replaces those entries by
what each route can answer, from ``ROUTE_ERRORS`` (a test checks that every route is listed, that no 422 is left
and that errors provoked on the real server are documented), plus what the HTTP edge answers on any route
(``EDGE_ERRORS``), each with the schema
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable, e.g. room_not_found"},
                "message": {"type": "string", "description": "for people; never echoes secrets"},
            },
        },
    },
}

STATUS_WORDS = {
    400: "invalid_request (the body or a parameter does not validate), invalid_name (a display name or title breaks "
         "the text rule), invalid_room, invalid_limits, invalid_ttl, invalid_value (playback), bad_host, invalid_callback, callback_not_allowed, "
         "invalid_participants, empty_participants, too_many_participants, invalid_cursor, invalid_filter, "
         "filter_required, invalid_session, invalid_layout, invalid_resolution, invalid_format, invalid_fps, "
         "invalid_sources, invalid_trim, no_recordings, no_sources, or a route's own 400 code",
    401: "unauthorized, invalid_credentials, invalid_token, token_expired, token_revoked, or token_reused (a refresh "
         "token used twice: its whole family is revoked): credentials missing or refused",
    403: "bad_origin, key_required, wrong_room, not_host, not_allowed (playback control), removed (a removed guest's "
         "identity), or another refusal",
    404: "room_not_found, session_not_found, participant_not_found, track_not_found, recording_not_found, "
         "composition_not_found, media_not_found, invite_not_found, not_found",
    408: "request_timeout: the request head or body arrived too slowly (the connection is closed)",
    409: "a conflict with the current state (room_exists, identity_taken, no_content, recording_in_progress, "
         "composition_queue_full, composition_in_progress, composition_not_ready)",
    410: "gone: room_completed, invite_expired, invite_used_up, recording_deleted, composition_deleted",
    413: "body_too_large: over [server] max_body_bytes",
    416: "range_not_satisfiable: the Range header asks for no byte of the file (Content-Range: bytes */SIZE)",
    429: "too_many_attempts (wrong invite codes, or wrong API key credentials: [server] auth_failures, from this "
         "address), too_many_requests (a live playlist load while the server already reads its most): wait the "
         "seconds of the Retry-After header when there is one",
    431: "headers_too_large: the request line and headers are over [server] max_header_bytes",
    500: "internal_error: logged on the server; the client sees only this",
    503: "no_key: the server has no active API key to sign with",
}

EDGE_ERRORS = (400, 403, 408, 413, 431, 500)
"""What any route can answer before it runs: Host/Origin guard, body cap, connection limits, an unexpected failure."""

_ROOM = (401, 403, 404)
_LIVE = (*_ROOM, 410)
ROUTE_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/v1/tokens"): (401, 403),
    ("post", "/v1/tokens/refresh"): (401,),
    ("post", "/v1/rooms"): (401, 403, 409),
    ("get", "/v1/rooms"): (401, 403),
    ("get", "/v1/rooms/{room}"): _ROOM,
    ("post", "/v1/rooms/{room}/complete"): _ROOM,
    ("get", "/v1/rooms/{room}/sessions"): _ROOM,
    ("post", "/v1/rooms/{room}/invites"): _LIVE,
    ("post", "/v1/invites/{code}/redeem"): (403, 404, 409, 410, 429, 503),
    ("get", "/v1/rooms/{room}/participants"): _LIVE,
    ("get", "/v1/rooms/{room}/participants/{identity}"): _LIVE,
    ("delete", "/v1/rooms/{room}/participants/{identity}"): _LIVE,
    ("post", "/v1/rooms/{room}/participants/{identity}/tracks/{track_sid}/mute"): _LIVE,
    ("get", "/v1/rooms/{room}/playback"): _LIVE,
    ("post", "/v1/rooms/{room}/playback"): (*_LIVE, 409),
    ("post", "/v1/rooms/{room}/sessions/{session}/actions/{action}"): _LIVE,
    ("get", "/v1/rooms/{room}/sessions/{session}/participants"): _ROOM,
    ("get", "/v1/rooms/{room}/recording"): _ROOM,
    ("post", "/v1/rooms/{room}/recording"): _LIVE,
    ("get", "/v1/recordings"): (401, 403),
    ("delete", "/v1/recordings"): (401, 403),
    ("get", "/v1/recordings/{sid}"): _ROOM,
    ("delete", "/v1/recordings/{sid}"): (*_ROOM, 409),
    ("get", "/v1/recordings/{sid}/media"): (*_ROOM, 409, 410, 416),
    ("post", "/v1/compositions"): (401, 403, 404, 409),
    ("get", "/v1/compositions"): (401, 403),
    ("get", "/v1/compositions/{sid}"): _ROOM,
    ("delete", "/v1/compositions/{sid}"): (*_ROOM, 409),
    ("get", "/v1/compositions/{sid}/media"): (*_ROOM, 409, 410, 416),
    ("get", "/healthz"): (),
}
"""The statuses each route answers itself, besides EDGE_ERRORS."""


CORS_NOTE = """

**Authentication.** Server-side calls use HTTP Basic with an API key id and secret (`tvapp keys`); room-scoped
calls also accept `Authorization: Bearer <access token>` with the `host` grant for that room. Invite redemption,
token refresh and `/healthz` need no credentials.

**Signaling** is not REST and so not a path here: the websocket `/v1/signal` carries JSON text messages, each with
`"type"` and `"v": 1`; the first is `{"type": "join", "v": 1, "token": ACCESS_TOKEN}` (README.md, "Signaling
messages"; the definitions are the package tvapp/protocol/messages).

**Pages on other origins (CORS).** Browser pages on an origin listed in `[server] cors_origins` (exact origins,
never `*`) may call this API and open the signaling websocket `/v1/signal`: a CORS preflight (`OPTIONS` with
`Access-Control-Request-Method`) from such an origin is answered `204` with `Access-Control-Allow-Origin: <origin>`,
`Access-Control-Allow-Methods: GET, HEAD, POST, DELETE`,
`Access-Control-Allow-Headers: Authorization, Content-Type` and `Access-Control-Max-Age: 600`; every answer to it carries `Access-Control-Allow-Origin: <origin>`,
`Vary: Origin` and `Access-Control-Expose-Headers: Retry-After`. No `Access-Control-Allow-Credentials`: tokens are
bearer tokens, never cookies. A preflight from any other origin gets `403 bad_origin`, as do its websocket and its
POST/DELETE requests; its GET answers carry no CORS header, so its page cannot read them. The core's own origin
needs no listing. `/sdk/` files answer `Access-Control-Allow-Origin: *` (any page may import the SDK)."""


def install_openapi(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with every route's error statuses and no 422."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=(app.description or "") + CORS_NOTE,
                              routes=app.routes)
            app.openapi_schema = document_errors(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Return ``doc`` with each operation's error responses set from ROUTE_ERRORS and no validation schemas."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = ERROR_SCHEMA
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            statuses = set(EDGE_ERRORS) | set(ROUTE_ERRORS.get((method, path), ()))
            if 401 in statuses:
                statuses.add(429)  # Basic credentials from an address past [server] auth_failures
            for status in sorted(statuses):
                responses[str(status)] = {
                    "description": STATUS_WORDS[status],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
                if status == 429:
                    responses["429"]["headers"] = {"Retry-After": RETRY_AFTER}
            for (success, name), header in SUCCESS_HEADERS.get((method, path), {}).items():
                if success in responses:
                    responses[success].setdefault("headers", {})[name] = header
    return doc


RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
_RANGE = {("206", "Content-Range"): {"description": "bytes START-END/SIZE", "schema": {"type": "string"}},
          ("200", "Accept-Ranges"): {"description": "bytes", "schema": {"type": "string"}}}
SUCCESS_HEADERS: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {
    ("get", "/v1/recordings"): {("200", "X-Next-After"): {
        "description": "the last sid of this page, when more may follow: ask again with after=<it>",
        "schema": {"type": "string"}}},
    ("get", "/v1/recordings/{sid}/media"): _RANGE,
    ("get", "/v1/compositions/{sid}/media"): _RANGE,
}
"""Headers a route's success answers carry that its body schema cannot say."""
