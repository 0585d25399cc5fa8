"""Who owns an identity in a room session, decided without I/O.

An identity in a live room session belongs to whoever first joined with it, for as long as that room session
lives (not only while connected: an owner who dropped for a moment keeps it). Owners are of two kinds:

- the customer's auth server: every token signed with an API key and not tied to one room session (no `rsid`)
  vouches for its identity, so all such tokens for one identity are one owner (`family` None);
- one invited guest: a token redeemed from an invite is tied to the room session (`rsid`) and belongs to one
  refresh family; that family is the owner.

Rules (`claim_identity`):

1. A free identity is taken by whoever joins with it (TAKE).
2. The owner joining again keeps it: a reconnect, or another connection of the same owner, which replaces the old
   connection as before (KEEP). Every key-issued token for one identity is the same owner.
3. A key-issued token takes an identity a guest holds (TAKE_OVER): the customer's auth server outranks an
   invite, and the guest is replaced (and cannot take it back: rule 4).
4. A guest never takes an identity another owner holds, even while that owner is disconnected (TAKEN:
   `identity_taken`).

Redeeming an invite starts a new guest family, which by rule 4 can take no owned identity: `redeem_conflict`
refuses it up front, but only for identities a visible participant owns, so that the answer to a redemption is
the same whether or not a hidden participant (a recorder, a monitor) holds that identity. A guest who then
joins with a hidden participant's exact identity is refused `identity_taken` at join: the one way left to
learn of a hidden participant, at the cost of one invite use per guessed identity.

Removing a guest revokes its family and marks its ownership `removed`: guests who redeem that identity again are
told `removed`, and the identity is not banned, so a key-issued owner whose identity an impostor had picked
still joins with it (rule 3).
"""

import enum
from dataclasses import dataclass


class Claim(enum.Enum):
    """What a join does to the ownership of its identity."""

    TAKE = "take"
    KEEP = "keep"
    TAKE_OVER = "take_over"
    TAKEN = "identity_taken"


@dataclass(frozen=True)
class Owner:
    """Who holds an identity: the auth server (`family` None) or one guest refresh family; hidden or not."""

    family: str | None
    hidden: bool = False
    removed: bool = False  # a guest family removed by the host: its identity stays blocked for guests ("removed")

    @property
    def is_guest(self) -> bool:
        """Tell whether the owner is an invited guest's token family."""
        return self.family is not None

    @classmethod
    def of(cls, room_sid: str | None, family: str | None, hidden: bool) -> "Owner":
        """Return the owner a token stands for: its family when it is tied to a room session, else the key's."""
        return cls(family if room_sid is not None else None, hidden)


def claim_identity(current: Owner | None, claimant: Owner) -> Claim:
    """Decide what `claimant` joining does to an identity `current` owns (None: free)."""
    if current is None:
        return Claim.TAKE
    if current.family == claimant.family:
        return Claim.KEEP
    if not claimant.is_guest:
        return Claim.TAKE_OVER
    return Claim.TAKEN


def redeem_conflict(current: Owner | None) -> bool:
    """Tell whether a new guest must be refused an identity `current` owns (hidden owners are not revealed)."""
    return current is not None and not current.hidden
