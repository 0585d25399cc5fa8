"""Reconnection as a state: whether a participant is connected, reconnecting (and why) or gone, and what to tell.

A participant whose signaling websocket drops, or whose media path goes dead, is not gone: it is RECONNECTING for
a grace window (`[signal] reconnect_grace`), keeping its place in the room. The others are told once when it starts
reconnecting and once when it is back; only when the window passes do they see it leave ("reconnect_timeout").

Rules (the transition table `TRANSITIONS` below is what `Presence` runs):

- There are two causes, SIGNAL (its websocket is gone) and MEDIA (no packet of any kind, RTP or RTCP, reached the
  server from its peer connection for `MEDIA_SILENCE_S`, or it asked for a fresh peer connection). A participant is
  RECONNECTING while at least one cause holds, CONNECTED when none does.
- CONNECTED --lost(cause)--> RECONNECTING: announce `participant_reconnecting`; the window starts now.
- RECONNECTING --lost(another cause)--> RECONNECTING: nothing to announce; the window does not restart.
- RECONNECTING --back(cause)--> RECONNECTED when it was the last cause (announce `participant_reconnected`), else stays.
- CONNECTED --back(cause)--> CONNECTED: nothing (media flowing as usual).
- RECONNECTING --tick at or past the deadline--> GONE (announce `participant_left`, reason "reconnect_timeout"), with
  one exception: when MEDIA is the only cause and its signaling spoke after the window started, the participant is
  alive and repairing its media itself; it stays RECONNECTING (its tile says so) and is not removed for silence.
- GONE is final: every event is ignored.
- A client's address change (`address_lost`): an address its signaling connection or its media path is bound to is
  no longer one of the host's. Those sockets are dead whatever their timers say (no packet will ever come back to
  an address the host gave up), so the client resumes its signaling and makes a fresh peer connection at once,
  instead of waiting out MEDIA_SILENCE_S and the signaling silence. The check is exact, not a timer: a jitter spike
  or a quiet path never looks like one.

Time is an argument everywhere (seconds, any monotonic origin).
"""

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

RECONNECT_GRACE_DEFAULT: Final = 20.0
RECONNECT_GRACE_MIN: Final = 1.0
RECONNECT_GRACE_MAX: Final = 600.0
MEDIA_SILENCE_S: Final = 1.5
"""Seconds without a single packet from a peer connection that should be receiving before its path counts as dead.

The SDK's clients send RTCP at least every 1.5 s on every peer connection that carries anything, so 1.5 s of
nothing is a dead path, not a quiet one."""
MIN_MEDIA_RESTART_INTERVAL_S: Final = 1.0
"""A participant may ask for a fresh peer connection at most once per this many seconds."""
TIMEOUT_REASON: Final = "reconnect_timeout"


class Cause(enum.StrEnum):
    """Why a participant is reconnecting."""

    SIGNAL = "signal"
    MEDIA = "media"


class LinkState(enum.StrEnum):
    """Where a participant's connection is."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    GONE = "gone"


class LinkEvent(enum.Enum):
    """Something that happens to a participant's connection."""

    LOST = "lost"  # a cause starts
    BACK = "back"  # a cause ends
    LAST_BACK = "last-back"  # the last cause ends
    EXPIRED = "expired"  # the grace window passed


class Announce(enum.Enum):
    """What the room should tell the others."""

    NOTHING = "nothing"
    RECONNECTING = "participant_reconnecting"
    RECONNECTED = "participant_reconnected"
    LEFT = "participant_left"


TRANSITIONS: Final[dict[tuple[LinkState, LinkEvent], tuple[LinkState, Announce]]] = {
    (LinkState.CONNECTED, LinkEvent.LOST): (LinkState.RECONNECTING, Announce.RECONNECTING),
    (LinkState.CONNECTED, LinkEvent.BACK): (LinkState.CONNECTED, Announce.NOTHING),
    (LinkState.CONNECTED, LinkEvent.LAST_BACK): (LinkState.CONNECTED, Announce.NOTHING),
    (LinkState.RECONNECTING, LinkEvent.LOST): (LinkState.RECONNECTING, Announce.NOTHING),
    (LinkState.RECONNECTING, LinkEvent.BACK): (LinkState.RECONNECTING, Announce.NOTHING),
    (LinkState.RECONNECTING, LinkEvent.LAST_BACK): (LinkState.CONNECTED, Announce.RECONNECTED),
    (LinkState.RECONNECTING, LinkEvent.EXPIRED): (LinkState.GONE, Announce.LEFT),
}
"""Every (state, event) pair not listed (anything on GONE, EXPIRED while CONNECTED) changes nothing."""


def check_grace(value: float) -> float:
    """Return `value` as a grace window in seconds; raise ValueError when it is out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"reconnect_grace must be a number of seconds, got {value!r}")
    if not RECONNECT_GRACE_MIN <= value <= RECONNECT_GRACE_MAX:
        raise ValueError(f"reconnect_grace must be between {RECONNECT_GRACE_MIN:g} and {RECONNECT_GRACE_MAX:g} s,"
                         f" got {value}")
    return float(value)


@dataclass
class Presence:
    """One participant's connection state; feed it what happens, act on the Announce it returns."""

    grace: float
    state: LinkState = LinkState.CONNECTED
    causes: set[Cause] = field(default_factory=set)
    since: float | None = None  # when the current reconnecting began
    signal_seen: float | None = None  # the last time its signaling spoke

    @property
    def deadline(self) -> float | None:
        """Return when the grace window ends (None unless reconnecting)."""
        return None if self.since is None or self.state is not LinkState.RECONNECTING else self.since + self.grace

    def lost(self, cause: Cause, now: float) -> Announce:
        """Note that `cause` started at `now`."""
        if self.state is LinkState.GONE:
            return Announce.NOTHING
        self.causes.add(cause)
        announce = self._step(LinkEvent.LOST)
        if announce is Announce.RECONNECTING:
            self.since = now
        return announce

    def back(self, cause: Cause, now: float) -> Announce:
        """Note that `cause` ended at `now` (a resumed websocket, media flowing again)."""
        if self.state is LinkState.GONE:
            return Announce.NOTHING
        if cause is Cause.SIGNAL:
            self.signal_seen = now
        self.causes.discard(cause)
        announce = self._step(LinkEvent.BACK if self.causes else LinkEvent.LAST_BACK)
        if self.state is LinkState.CONNECTED:
            self.since = None
        return announce

    def signal_activity(self, now: float) -> None:
        """Note that its signaling connection delivered a message at `now`."""
        self.signal_seen = now

    def tick(self, now: float) -> Announce:
        """Return LEFT (and become GONE) once the grace window has passed, else NOTHING."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return Announce.NOTHING
        assert self.since is not None
        alive = self.signal_seen is not None and self.signal_seen >= self.since
        if self.causes == {Cause.MEDIA} and alive:
            return Announce.NOTHING
        return self._step(LinkEvent.EXPIRED)

    def _step(self, event: LinkEvent) -> Announce:
        rule = TRANSITIONS.get((self.state, event))
        if rule is None:
            return Announce.NOTHING
        self.state, announce = rule
        return announce


def media_dead(packets: int, last_count: int, last_change: float, now: float, *,
               expecting: bool, silence: float = MEDIA_SILENCE_S) -> bool:
    """Tell whether a peer connection's path is dead: it should receive (`expecting`) and its packet counter has
    stayed at `last_count` (== `packets`) since `last_change`, `silence` seconds or more ago."""
    return expecting and packets == last_count and now - last_change >= silence


@dataclass
class PacketWatch:
    """Follows one peer connection's received-packet counter and says when its path goes dead or comes back."""

    silence: float = MEDIA_SILENCE_S
    count: int = 0
    changed_at: float | None = None
    dead: bool = False

    def observe(self, packets: int, now: float, *, expecting: bool) -> bool | None:
        """Feed the counter read at `now`; return True when the path just died, False when it just came back,
        None when nothing changed. Nothing is judged before the first packet arrived."""
        if self.changed_at is None or packets != self.count:
            if self.changed_at is None and packets == 0:
                return None  # nothing ever arrived: a path not yet up is not a dead one
            self.count, self.changed_at = packets, now
            if self.dead:
                self.dead = False
                return False
            return None
        if not self.dead and media_dead(packets, self.count, self.changed_at, now, expecting=expecting,
                                        silence=self.silence):
            self.dead = True
            return True
        return None


def may_restart_media(last_restart: float | None, now: float,
                      interval: float = MIN_MEDIA_RESTART_INTERVAL_S) -> bool:
    """Tell whether a participant that last asked for a fresh peer connection at `last_restart` may ask again now."""
    return last_restart is None or now - last_restart >= interval


def address_lost(in_use: Iterable[str | None], still_local: Callable[[str], bool]) -> str | None:
    """Return the first address in `in_use` (the local addresses a client's links are bound to; None: unknown) that
    `still_local` says the host no longer has, or None when every one is still there."""
    for address in in_use:
        if address and address not in UNSPECIFIED and not still_local(address):
            return address
    return None


UNSPECIFIED: Final = frozenset({"0.0.0.0", "::", ""})
