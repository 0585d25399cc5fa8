"""Room-session actions (mute, unmute, kick, end), pure: which participants an action's body selects.

A body names ``participants`` as ``"all"`` (everyone visible in the room session now) or a list of identities,
and may ``exclude`` identities. Listed identities that are not connected are reported back, not refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

MAX_LISTED = 100


class Action(str, Enum):
    """What a room-session action does."""

    MUTE = "mute"
    UNMUTE = "unmute"
    KICK = "kick"
    END = "end"


class SelectionError(ValueError):
    """The body selects nothing that makes sense; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def select(visible: Sequence[str], connected: Sequence[str], participants: str | Sequence[str],
           exclude: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Return (selected identities in room order, listed identities not connected); raise SelectionError.

    ``"all"`` takes the visible participants; a list may also name connected hidden ones.
    """
    if isinstance(participants, str):
        if participants != "all":
            raise SelectionError("invalid_participants", 'participants is "all" or a list of identities')
        wanted = list(visible)
        missing: list[str] = []
    else:
        if not participants:
            raise SelectionError("empty_participants", 'participants is an empty list (use "all" for everyone)')
        if len(participants) > MAX_LISTED or len(exclude) > MAX_LISTED:
            raise SelectionError("too_many_participants", f"at most {MAX_LISTED} identities in a list")
        listed = set(participants)
        wanted = [identity for identity in connected if identity in listed]
        missing = [identity for identity in dict.fromkeys(participants) if identity not in set(connected)]
    if len(exclude) > MAX_LISTED:
        raise SelectionError("too_many_participants", f"at most {MAX_LISTED} identities in a list")
    skip = set(exclude)
    return [identity for identity in wanted if identity not in skip], missing


__all__ = ["MAX_LISTED", "Action", "SelectionError", "select"]
