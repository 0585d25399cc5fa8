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


def _refusal(name: str, status: int, code: str) -> type[ApiError]:
    """Return an ApiError subclass whose status and code default to ``status`` and ``code``."""
    return type(name, (ApiError,), {"status": status, "code": code, "__module__": __name__,
                                    "__doc__": f"A refusal answered {status} {code} unless told otherwise."})


# The kinds of refusal the routes raise by name (``raise NotFound("no such room", code="room_not_found")``).
BadRequest = _refusal("BadRequest", 400, "bad_request")
Unauthorized = _refusal("Unauthorized", 401, "unauthorized")
Forbidden = _refusal("Forbidden", 403, "forbidden")
NotFound = _refusal("NotFound", 404, "not_found")
Conflict = _refusal("Conflict", 409, "conflict")
Gone = _refusal("Gone", 410, "gone")
TooManyRequests = _refusal("TooManyRequests", 429, "too_many_requests")
