"""The core server's refusals: ApiError and its status-named subclasses, all tvapp.web HttpErrors.

Every refusal a client can cause is an ApiError (a CodedError with an HTTP status, a stable code and optional
headers), answered once by tvapp.web as `{"error": {"code": ..., "message": ...}}`. Signaling uses the same codes
in its `error` messages. `ApiError(message, code=..., status=...)` keeps the order the routes write it in: the
message first, the code and status from the class unless given.
"""

from __future__ import annotations

from tvapp.web.errors import HttpError
from tvapp.web.errors import error_body as error_body
from tvapp.web.errors import error_response as error_response


class ApiError(HttpError):
    """A client-visible failure of the core's API: HTTP status, stable code, human message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(code or type(self).code, message, status=status, headers=headers)


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
