"""The server's one exception hierarchy for client-visible failures, and its JSON error body.

Every refusal a client can cause is an ApiError with an HTTP status and a stable code; the app
maps it once to `{"error": {"code": ..., "message": ...}}`. Signaling uses the same codes in
its `error` messages.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """A client-visible failure: HTTP status, stable code, human message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Gone(ApiError):
    status, code = 410, "gone"


class TooManyRequests(ApiError):
    status, code = 429, "too_many_requests"


def error_body(code: str, message: str) -> dict[str, Any]:
    """Return the JSON error body."""
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Return a JSON error response."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)
