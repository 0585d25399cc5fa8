"""The base of every client-visible refusal: a stable error code and a human message."""

from __future__ import annotations


class CodedError(Exception):
    """A refusal with a stable `code` (what programs match on) and a `message` (what people read)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
