"""When a TV that lost its room (or never got in) tries again by itself, and how long it waits between tries.

A kiosk TV has nobody at a keyboard to restart it: when its core goes away for longer than the SDK's reconnect
window (an upgrade, a reboot, a network outage) or cannot be reached when the TV starts, the TV keeps trying
until the room is back. It stops only for reasons another try cannot fix: the host removed it or ended the room,
another connection took its identity over, it left on purpose, or its credentials were refused for good.
A TV that hosts its room (an API key) makes a new token and the room itself on every try, so an expired or
unknown token and a missing room are fixable there. Pure rules: the caller owns the clock and the sleeping.
"""

from __future__ import annotations

# The TV left, or the room told it to go: trying again would undo what someone decided.
_DECIDED = frozenset({"client_initiated", "removed", "replaced", "room_completed"})
# Refusals another try with the same credentials cannot fix.
_REFUSED = frozenset({"not_allowed", "token_revoked", "token_reused", "wrong_room", "invalid_credentials",
                      "invite_not_found", "invite_expired", "invite_used_up", "nothing_to_join"})
# Refusals a hosting TV fixes itself: it issues a fresh token and creates the room on every try.
_FIXED_BY_HOSTING = frozenset({"token_expired", "invalid_token", "room_not_found"})

FIRST_DELAY = 1.0
MAX_DELAY = 30.0


def should_rejoin(reason: str, *, hosting: bool) -> bool:
    """Return True when a TV kept out of its room for `reason` (a server code, or a lost link) should try again."""
    if reason in _DECIDED or reason in _REFUSED:
        return False
    if reason in _FIXED_BY_HOSTING:
        return hosting
    return True  # unreachable, reconnect_failed, internal errors, room_full, too_many_attempts, ...


def rejoin_delay(attempt: int) -> float:
    """Return the seconds to wait before try number `attempt` (0 first): 1, 2, 4, ... up to MAX_DELAY."""
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, got {attempt}")
    return min(FIRST_DELAY * 2.0 ** min(attempt, 16), MAX_DELAY)
