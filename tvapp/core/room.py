"""The room state machine, room limits and the decision whether a participant may join.

Rules:

- A room is created OPEN. The first participant to join makes it IN_PROGRESS; joins and leaves keep it so.
- COMPLETE (a REST call, or the room staying empty for its empty timeout) ends an OPEN or IN_PROGRESS room.
- COMPLETED is final: every event on it is an InvalidTransition. An adapter that disconnects participants
  because their room completed does not feed their leaving back in.
- Hidden participants (recorders, monitors) neither count toward max_participants nor are refused by it.
- An identity that is already connected takes over its own place (REPLACE); it is never locked out by the
  limit, unless the takeover would turn a hidden participant into one more visible one in a full room.
- Empty means no visible participant: hidden ones do not keep a room alive.

Every (status, event) pair missing from TRANSITIONS is invalid.
"""

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass


class RoomStatus(enum.StrEnum):
    """Where a room is in its life."""

    OPEN = "open"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"


class RoomEvent(enum.Enum):
    """Something that happens to a room."""

    PARTICIPANT_JOINED = "participant-joined"
    PARTICIPANT_LEFT = "participant-left"
    COMPLETE = "complete"


TRANSITIONS: dict[tuple[RoomStatus, RoomEvent], RoomStatus] = {
    (RoomStatus.OPEN, RoomEvent.PARTICIPANT_JOINED): RoomStatus.IN_PROGRESS,
    (RoomStatus.OPEN, RoomEvent.COMPLETE): RoomStatus.COMPLETED,
    (RoomStatus.IN_PROGRESS, RoomEvent.PARTICIPANT_JOINED): RoomStatus.IN_PROGRESS,
    (RoomStatus.IN_PROGRESS, RoomEvent.PARTICIPANT_LEFT): RoomStatus.IN_PROGRESS,
    (RoomStatus.IN_PROGRESS, RoomEvent.COMPLETE): RoomStatus.COMPLETED,
}


class InvalidTransition(Exception):
    """An event that cannot happen to a room in its current status."""

    def __init__(self, status: RoomStatus, event: RoomEvent) -> None:
        super().__init__(f"room is {status.value}: cannot handle {event.name}")
        self.status = status
        self.event = event


def next_status(status: RoomStatus, event: RoomEvent) -> RoomStatus:
    """Return the status a room in `status` moves to on `event`; raise InvalidTransition if it cannot."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(status, event) from None


MAX_PARTICIPANTS_DEFAULT = 6
MAX_PARTICIPANTS_MIN = 2
MAX_PARTICIPANTS_MAX = 50
EMPTY_TIMEOUT_DEFAULT = 300
EMPTY_TIMEOUT_MIN = 1
EMPTY_TIMEOUT_MAX = 86_400


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer between {low} and {high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{field} must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class RoomLimits:
    """How many visible participants a room holds and how long (seconds) it may stay empty."""

    max_participants: int = MAX_PARTICIPANTS_DEFAULT
    empty_timeout: int = EMPTY_TIMEOUT_DEFAULT

    def __post_init__(self) -> None:
        _check_range("max_participants", self.max_participants, MAX_PARTICIPANTS_MIN, MAX_PARTICIPANTS_MAX)
        _check_range("empty_timeout", self.empty_timeout, EMPTY_TIMEOUT_MIN, EMPTY_TIMEOUT_MAX)


def room_limits(max_participants: int | None, empty_timeout: int | None) -> RoomLimits:
    """Return the limits asked for, defaults in place of None; raise ValueError naming a field out of range."""
    return RoomLimits(
        max_participants=MAX_PARTICIPANTS_DEFAULT if max_participants is None else max_participants,
        empty_timeout=EMPTY_TIMEOUT_DEFAULT if empty_timeout is None else empty_timeout,
    )


class JoinDecision(enum.Enum):
    """What to do with a participant asking to join."""

    ADMIT = "admit"
    REPLACE = "replace"
    ROOM_FULL = "room-full"
    ROOM_COMPLETED = "room-completed"


def decide_join(
    status: RoomStatus, present: Mapping[str, bool], identity: str, hidden: bool, max_participants: int
) -> JoinDecision:
    """Decide whether `identity` may join a room whose connected participants map identity -> hidden."""
    if status is RoomStatus.COMPLETED:
        return JoinDecision.ROOM_COMPLETED
    if hidden:
        return JoinDecision.REPLACE if identity in present else JoinDecision.ADMIT
    was_hidden = present.get(identity)
    if was_hidden is False:
        return JoinDecision.REPLACE
    visible = sum(1 for is_hidden in present.values() if not is_hidden)
    if visible >= max_participants:
        return JoinDecision.ROOM_FULL
    return JoinDecision.ADMIT if was_hidden is None else JoinDecision.REPLACE


def completion_due(
    status: RoomStatus, participant_count: int, empty_since: float | None, empty_timeout: int, now: float
) -> bool:
    """Return True when a live room with nobody in it has been empty for at least `empty_timeout` seconds."""
    return (
        status is not RoomStatus.COMPLETED
        and participant_count == 0
        and empty_since is not None
        and now - empty_since >= empty_timeout
    )


@dataclass
class EmptyClock:
    """Remembers since when a room has had no visible participant (None while someone is in it)."""

    empty_since: float | None

    @classmethod
    def created(cls, now: float) -> "EmptyClock":
        """Return the clock of a room created empty at `now`."""
        return cls(empty_since=now)

    def observe(self, participant_count: int, now: float) -> None:
        """Note how many visible participants the room has at `now` (call after every join and leave)."""
        if participant_count > 0:
            self.empty_since = None
        elif self.empty_since is None:
            self.empty_since = now

    def due(self, status: RoomStatus, participant_count: int, empty_timeout: int, now: float) -> bool:
        """Return True when the room should be completed for having stayed empty too long."""
        return completion_due(status, participant_count, self.empty_since, empty_timeout, now)


@dataclass(frozen=True)
class Participant:
    """A connected participant as the roster knows it."""

    identity: str
    hidden: bool
    joined_at: float


class Roster:
    """The participants connected to one room, in the order they first joined."""

    def __init__(self) -> None:
        self._participants: dict[str, Participant] = {}

    def join(self, identity: str, hidden: bool, now: float) -> Participant:
        """Add `identity`, or on a takeover keep its place and join time and update its hidden flag."""
        previous = self._participants.get(identity)
        joined_at = now if previous is None else previous.joined_at
        participant = Participant(identity=identity, hidden=hidden, joined_at=joined_at)
        self._participants[identity] = participant
        return participant

    def leave(self, identity: str) -> bool:
        """Remove `identity`; return whether it was there."""
        return self._participants.pop(identity, None) is not None

    def present(self) -> dict[str, bool]:
        """Return identity -> hidden for everyone connected, the input decide_join expects."""
        return {p.identity: p.hidden for p in self._participants.values()}

    def visible(self) -> list[Participant]:
        """Return the visible participants in join order."""
        return [p for p in self._participants.values() if not p.hidden]

    def visible_count(self) -> int:
        """Return how many visible participants are connected."""
        return sum(1 for p in self._participants.values() if not p.hidden)

    def __contains__(self, identity: object) -> bool:
        return identity in self._participants

    def __iter__(self) -> Iterator[Participant]:
        return iter(list(self._participants.values()))

    def __len__(self) -> int:
        return len(self._participants)
