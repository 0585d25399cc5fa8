"""Invite redemption: whether a guest may trade an invite code for tokens, decided without I/O.

Rules, in the order they are checked (the first that refuses decides):

1. A client that made too many wrong attempts lately must wait (TOO_MANY_ATTEMPTS; the counting is
   tvapp.core.attempts.AttemptLimiter, keyed by client address).
2. A code that names no invite is NOT_FOUND; an invite at or past its expiry is EXPIRED. Both are wrong
   attempts (`Redemption.wrong_code`): the caller records them with the limiter, so guessing is throttled by rule 1.
3. The invite's own room session must be live: not completed, and not replaced by a later room of the same
   name (ROOM_COMPLETED).
4. An identity removed from that room session stays out of it (REMOVED).
5. An identity someone visible owns in that room session (tvapp.core.owners: connected now or moments ago)
   cannot be taken by a new guest (IDENTITY_TAKEN); hidden owners are left out, so as not to be revealed.
6. An invite whose uses are all spent is USED_UP. The caller counts the use atomically in its store and
   treats a use refused there (a race for the last one, or the expiry passing meanwhile) as USED_UP too.
7. Otherwise ADMIT: the caller counts one use and issues a guest pair (no host, not hidden) tied to that
   room session, with the default access-token lifetime.

Each outcome's value is the error code clients see. Facts are consulted in rule order, so a caller may
leave out a fact an earlier rule already makes moot: a throttled client's code is not even looked up, so it
learns nothing, not even from timing.
"""

import enum
from typing import Protocol


class Redemption(enum.Enum):
    """The outcome of redeeming an invite code; the value is the client-visible error code."""

    ADMIT = "admit"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    NOT_FOUND = "invite_not_found"
    EXPIRED = "invite_expired"
    ROOM_COMPLETED = "room_completed"
    REMOVED = "removed"
    IDENTITY_TAKEN = "identity_taken"
    USED_UP = "invite_used_up"

    @property
    def wrong_code(self) -> bool:
        """Tell whether this outcome counts as a wrong attempt against the client."""
        return self in (Redemption.NOT_FOUND, Redemption.EXPIRED)


class InviteTerms(Protocol):
    """What redemption reads of one invite (tvapp.server.store.InviteRow has these fields)."""

    @property
    def room_sid(self) -> str: ...

    @property
    def expires_at(self) -> float: ...

    @property
    def max_uses(self) -> int: ...

    @property
    def uses(self) -> int: ...


def decide_redemption(
    *,
    now: float,
    retry_after: float,
    invite: InviteTerms | None,
    live_room_sid: str | None = None,
    banned: bool = False,
    identity_present: bool = False,
) -> Redemption:
    """Return what to do with a redemption, given the facts the module docstring lists, at time `now`.

    `retry_after` is the limiter's answer for this client; `live_room_sid` the sid of the live room
    that has the name of the invite's room (None when there is none); `banned` and `identity_present`
    are about the redeeming identity in that live room.
    """
    if retry_after > 0:
        return Redemption.TOO_MANY_ATTEMPTS
    if invite is None:
        return Redemption.NOT_FOUND
    if invite.expires_at <= now:
        return Redemption.EXPIRED
    if live_room_sid is None or live_room_sid != invite.room_sid:
        return Redemption.ROOM_COMPLETED
    if banned:
        return Redemption.REMOVED
    if identity_present:
        return Redemption.IDENTITY_TAKEN
    if invite.uses >= invite.max_uses:
        return Redemption.USED_UP
    return Redemption.ADMIT
