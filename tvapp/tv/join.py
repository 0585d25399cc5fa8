"""How the TV gets into a room (`JoinPlan`) and why it is not in one (`JoinProblem`), in words for the sofa.

The session (tvapp.tv.session) follows a JoinPlan: an access token, an invite code, or a room to host with an API
key. What goes wrong becomes a JoinProblem whose error screen says it in words (server error codes are mapped
here), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvapp.tv.scene import ErrorScreen


@dataclass(frozen=True)
class JoinPlan:
    """How the TV gets into a room: exactly one of `token`, `invite` or `room` (with `api_key`)."""

    server: str
    token: str | None = None
    refresh_token: str | None = None
    invite: str | None = None
    room: str | None = None
    api_key: tuple[str, str] | None = None
    identity: str = ""
    name: str = ""


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
    """Return the words for a server that does not answer."""
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return JoinProblem("Server unreachable", f"Cannot reach the server at {server} ({reason}).",
                       "Check the network, or that the server is running.", "unreachable")


def disconnected(reason: str) -> JoinProblem:
    """Return the words for a room that ended the TV's connection for `reason` (a server code, or a lost link)."""
    if reason in _WORDS:
        return problem_for(reason)
    return JoinProblem("Connection lost", "The TV lost its connection to the room.",
                       "Check the network; restart the TV to join again.", reason)
