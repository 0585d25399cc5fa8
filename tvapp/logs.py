"""What may reach a log from a websocket: a frame's kind and size, never its contents.

The websockets library logs every frame at DEBUG (through uvicorn's "uvicorn.error" logger on both servers, and
"websockets.client" in the SDK and the remote-control client), showing its first and last bytes. Those bytes
carry secrets: the access token in `join`, the TURN credential at the end of `joined`, chat and data payloads,
device credentials on the remote link. ``redact_frames()`` puts a filter on those loggers that rewrites each
frame argument to ``TEXT [566 bytes]``: at ``--log-level debug`` an operator still sees the traffic, not the
secrets. It is installed by the core server (and so the TV's built-in core) and by the clients when they connect.
(The SDK's REST calls go through urllib, which logs nothing: a redeem URL's invite code is never logged.)
"""

from __future__ import annotations

import logging

FRAME_LOGGERS = ("uvicorn.error", "websockets.client", "websockets.server")
"""The loggers the websockets library writes frames to in this program (uvicorn passes it "uvicorn.error")."""


class RedactFrames(logging.Filter):
    """Rewrite websocket frame arguments of a record to their opcode and length."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace each frame in ``record.args`` by its kind and size; always keep the record."""
        args = record.args
        if isinstance(args, tuple) and any(_is_frame(arg) for arg in args):
            record.args = tuple(_summary(arg) if _is_frame(arg) else arg for arg in args)
        return True


def _is_frame(value: object) -> bool:
    # websockets.frames.Frame, recognised by shape so this module needs no websockets import.
    return hasattr(value, "opcode") and isinstance(getattr(value, "data", None), (bytes, bytearray, memoryview))


def _summary(frame: object) -> str:
    opcode = getattr(frame, "opcode", None)
    data = getattr(frame, "data", b"")
    return f"{getattr(opcode, 'name', opcode)} [{len(data)} bytes]"


_FILTER = RedactFrames()


def redact_frames() -> None:
    """Install the frame filter on every logger websockets writes frames to (idempotent)."""
    for name in FRAME_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
