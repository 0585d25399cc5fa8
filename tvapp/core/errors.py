"""The base of every refusal a client can see: a stable error code, a human message, and the HTTP status it earns.

Every coded exception that can reach a client (an HTTP answer, a signaling or remote-control error message)
derives from CodedError: token and claim refusals, room and playback refusals, protocol violations, the core's
ApiError and the TV's pairing and command refusals. tvapp.web maps it once to ``{"error": {"code", "message"}}``
with ``status`` (400 unless the class or the raiser says otherwise).
"""

from __future__ import annotations


class CodedError(Exception):
    """A refusal with a stable `code` (what programs match on) and a `message` (what people read).

    ``status`` is the HTTP status the refusal is answered with when it reaches an HTTP client: a class sets its
    own, or the raiser passes one.
    """

    status: int = 400

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
