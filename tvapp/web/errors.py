"""One mapping from failures to JSON error answers, installed on both servers' apps.

Every refusal a client can cause is a tvapp.core.errors.CodedError; ``install_error_handlers`` answers it with
``{"error": {"code", "message"}}`` and its status, and answers validation errors, routing errors and anything
unexpected in the same shape (the vocabulary is in tvapp.web's docstring). An HttpError also carries response
headers (Retry-After) and extra top-level fields next to ``"error"`` (``retry_after``, ``rotated``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tvapp.core.errors import CodedError

log = logging.getLogger(__name__)

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 413: "body_too_large",
              415: "unsupported_media_type", 422: "bad_request", 429: "too_many_requests"}
"""The code of an HTTP error raised by routing or by Starlette itself, by status ("http_error" otherwise)."""

INVALID_REQUEST = "invalid_request"
INTERNAL_ERROR = "internal_error"


class HttpError(CodedError):
    """A coded refusal with what HTTP adds: response ``headers`` and ``extra`` fields next to "error" in the body."""

    def __init__(self, code: str, message: str, *, status: int | None = None, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(code, message, status=status)
        self.headers = headers or {}
        self.extra = extra or {}


class BodyTooLarge(CodedError):
    """A request body grew past the cap (the guard raises it while the body is read)."""

    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("body_too_large", f"request bodies are limited to {limit} bytes")


def error_body(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the JSON error body."""
    return {"error": {"code": code, "message": message}, **(extra or {})}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   extra: dict[str, Any] | None = None) -> JSONResponse:
    """Return a JSON error response."""
    return JSONResponse(error_body(code, message, extra), status_code=status, headers=headers or None)


def coded_response(exc: CodedError) -> JSONResponse:
    """Return the JSON answer to a coded refusal."""
    if isinstance(exc, HttpError):
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.extra)
    return error_response(exc.status, exc.code, exc.message)


def describe_validation(errors: object) -> str:
    """Summarize pydantic validation errors without echoing the input values."""
    parts: list[str] = []
    for err in list(errors)[:5] if isinstance(errors, (list, tuple)) else []:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if loc == "body" and err.get("type") in ("model_attributes_type", "dict_type", "missing"):
            parts.append("the body must be a JSON object (Content-Type: application/json)")
            continue
        if err.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'decode error')})")
            continue
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI, *, internal_message: str) -> None:
    """Answer every failure on ``app`` as a JSON error; ``internal_message`` is what an unexpected one says."""

    async def coded(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CodedError)
        return coded_response(exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, INVALID_REQUEST, describe_validation(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI turns errors raised while reading a body into a 400
            return coded_response(exc.__cause__)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, INTERNAL_ERROR, internal_message)

    async def invalid_websocket(websocket: WebSocket, exc: Exception) -> None:
        await websocket.close(1008, "invalid request")

    app.add_exception_handler(CodedError, coded)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(WebSocketRequestValidationError, invalid_websocket)
    app.add_exception_handler(Exception, unexpected)
