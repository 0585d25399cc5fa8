"""How the TV gets into a room (`JoinPlan`) and why it is not in one (`JoinProblem`), in words for the sofa.

The session (tvapp.tv.session) follows a JoinPlan: an access token, an invite code, or a room to host with an API
key. What goes wrong becomes a JoinProblem whose error screen says it in words (server error codes are mapped
here), never a traceback.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from tvapp.client.trust import PinMismatch
from tvapp.tv.scene import ErrorScreen


@dataclass(frozen=True)
class JoinPlan:
    """How the TV gets into a room: exactly one of `token`, `invite` or `room` (with `api_key`).

    With `token`, `invite` is the code it was redeemed from (shown for others). `fingerprint` is the certificate
    pinned for an https `server` (tvapp.client.trust holds the pin). `keep_trying` False: a first join that fails is
    shown and not retried (a join a remote asked for on another core); rejoins after a drop are tried as always.
    """

    server: str
    token: str | None = None
    refresh_token: str | None = None
    invite: str | None = None
    room: str | None = None
    api_key: tuple[str, str] | None = None
    identity: str = ""
    name: str = ""
    fingerprint: str | None = None
    keep_trying: bool = True


class JoinProblem(Exception):
    """Why the TV is not in its room, in words for the error screen; `code` is the reason for tvapp.core.rejoin."""

    def __init__(self, title: str, message: str, hint: str = "", code: str = "") -> None:
        super().__init__(f"{title}: {message}")
        self.code = code
        self.screen = ErrorScreen(title=title, message=message, hint=hint)

    def retrying(self) -> JoinProblem:
        """Return the same problem saying that the TV tries again by itself (no restart needed)."""
        screen = self.screen
        return JoinProblem(screen.title, screen.message, RETRY_HINT, self.code)


RETRY_HINT = "The TV keeps trying and rejoins by itself when the server is back."


# Server error codes -> (title, message, hint) for people on a sofa.
_WORDS: dict[str, tuple[str, str, str]] = {
    "invite_not_found": ("Invite not valid", "This invite code does not exist.", "Check the code, or ask for a new one."),
    "invite_expired": ("Invite expired", "This invite code is no longer valid.", "Ask the host for a new code."),
    "invite_used_up": ("Invite used up", "This invite code has been used as often as it may.",
                       "Ask the host for a new code."),
    "too_many_attempts": ("Too many tries", "Too many wrong codes were entered.", "Wait a minute and try again."),
    "room_full": ("Room full", "This room already has as many people as it can hold.", "Try again when someone leaves."),
    "room_not_found": ("No such room", "The room does not exist (any more).", "Ask the host to start it again."),
    "room_completed": ("The room has ended", "The host closed this room.", ""),
    "removed": ("Removed from the room", "The host removed this TV from the room.", ""),
    "token_expired": ("Sign-in expired", "The TV's access token has expired.", "Start the TV with a new token."),
    "token_revoked": ("Sign-in revoked", "The TV's access token was revoked.", "Start the TV with a new token."),
    "invalid_token": ("Sign-in refused", "The server did not accept the TV's access token.",
                      "Start the TV with a token from this server."),
    "invalid_credentials": ("Sign-in refused", "The server did not accept the API key.", "Check the key and secret."),
    "not_allowed": ("Not allowed", "The TV's token does not allow joining this room.", ""),
}


def problem_for(code: str, message: str = "") -> JoinProblem:
    """Return the error screen words for a server error code."""
    title, text, hint = _WORDS.get(code, ("Cannot join", message or f"The server refused ({code}).", ""))
    return JoinProblem(title, text, hint, code)


def unreachable(server: str, exc: BaseException) -> JoinProblem:
    """Return the words for a server that does not answer, or whose certificate the TV cannot trust."""
    cause = getattr(exc, "reason", None)
    cause = cause if isinstance(cause, BaseException) else exc.__cause__ or exc.__context__ or exc
    for candidate in (exc, cause):
        if isinstance(candidate, PinMismatch):
            return JoinProblem("Wrong certificate", f"The server at {server} did not show the certificate the invite "
                               "link pins (#fp=).", "Check the link with the server's owner.", "fingerprint_mismatch")
        if isinstance(candidate, ssl.SSLError):
            return JoinProblem("Secure connection failed", f"The TV cannot check the certificate of {server} "
                               f"({getattr(candidate, 'verify_message', None) or candidate.reason or 'TLS error'}).",
                               "A server with a self-signed certificate needs its #fp=sha256:… in the link.",
                               "tls_failed")
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return JoinProblem("Server unreachable", f"Cannot reach the server at {server} ({reason}).",
                       "Check the network, or that the server is running.", "unreachable")


def disconnected(reason: str) -> JoinProblem:
    """Return the words for a room that ended the TV's connection for `reason` (a server code, or a lost link)."""
    if reason in _WORDS:
        return problem_for(reason)
    return JoinProblem("Connection lost", "The TV lost its connection to the room.",
                       "Check the network; restart the TV to join again.", reason)
