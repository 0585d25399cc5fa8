"""The HTTP edge both servers share (the core's app and the TV's endpoints for phones).

``guard`` refuses a foreign Host, a cross-site Origin and an oversized body before any route; ``errors`` maps every
CodedError, validation error, HTTP error and unexpected exception once to ``{"error": {"code", "message"}}`` with
its status, and never lets a traceback reach a client; ``http`` binds the listening socket and holds every
connection to its limits (idle, request-head size, head and body deadlines). The decisions come from tvapp.core (hosts, errors); this package only reads requests and
writes answers. It imports tvapp.core, starlette, fastapi and uvicorn, and nothing else of tvapp.

The error vocabulary both servers answer with at the edge:

    400 bad_host            the Host header is missing, malformed, repeated, or a name this server does not answer to
    403 bad_origin          a browser request from another origin (or a repeated Origin header)
    413 body_too_large      the body is over the server's limit (Content-Length or counted while reading)
    431 headers_too_large   the request line and headers are over [server] max_header_bytes (connection closed)
    408 request_timeout     the head or body did not arrive within [server] header_timeout / body_timeout (closed)
    400 invalid_request     the request does not validate (which field, never the value)
    4xx <HTTP_CODES>        routing and method errors: not_found, method_not_allowed, ...
    500 internal_error      anything unexpected (logged with its traceback; the client sees only this)
"""
