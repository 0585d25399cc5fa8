"""Tests for tvapp.core.room: state machine, limits, join decisions, empty timeout, roster."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.room import (
    EMPTY_TIMEOUT_DEFAULT,
    MAX_PARTICIPANTS_DEFAULT,
    TRANSITIONS,
    EmptyClock,
    InvalidTransition,
    JoinDecision,
    RoomEvent,
    RoomLimits,
    RoomStatus,
    Roster,
    completion_due,
    decide_join,
    next_status,
    room_limits,
)

OPEN, IN_PROGRESS, COMPLETED = RoomStatus.OPEN, RoomStatus.IN_PROGRESS, RoomStatus.COMPLETED
JOINED, LEFT, COMPLETE = RoomEvent.PARTICIPANT_JOINED, RoomEvent.PARTICIPANT_LEFT, RoomEvent.COMPLETE


def test_status_values_are_the_wire_names() -> None:
    assert [s.value for s in RoomStatus] == ["open", "in-progress", "completed"]
    assert RoomStatus("in-progress") is IN_PROGRESS
    assert f"{COMPLETED}" == "completed"


@pytest.mark.parametrize(
    ("status", "event", "after"),
    [
        (OPEN, JOINED, IN_PROGRESS),
        (IN_PROGRESS, JOINED, IN_PROGRESS),
        (IN_PROGRESS, LEFT, IN_PROGRESS),
        (OPEN, COMPLETE, COMPLETED),
        (IN_PROGRESS, COMPLETE, COMPLETED),
    ],
)
def test_valid_transitions(status: RoomStatus, event: RoomEvent, after: RoomStatus) -> None:
    assert next_status(status, event) is after


@pytest.mark.parametrize("event", list(RoomEvent))
def test_completed_is_final(event: RoomEvent) -> None:
    with pytest.raises(InvalidTransition) as info:
        next_status(COMPLETED, event)
    assert info.value.status is COMPLETED
    assert info.value.event is event


def test_leave_on_open_room_is_invalid() -> None:
    with pytest.raises(InvalidTransition):
        next_status(OPEN, LEFT)


@pytest.mark.parametrize(("status", "event"), list(itertools.product(RoomStatus, RoomEvent)))
def test_every_pair_is_in_table_or_raises(status: RoomStatus, event: RoomEvent) -> None:
    if (status, event) in TRANSITIONS:
        assert next_status(status, event) is TRANSITIONS[(status, event)]
    else:
        with pytest.raises(InvalidTransition):
            next_status(status, event)


def test_room_limits_defaults() -> None:
    assert room_limits(None, None) == RoomLimits(MAX_PARTICIPANTS_DEFAULT, EMPTY_TIMEOUT_DEFAULT) == RoomLimits()
    assert room_limits(2, None) == RoomLimits(2, 300)
    assert room_limits(None, 86_400) == RoomLimits(6, 86_400)
    assert room_limits(50, 1) == RoomLimits(50, 1)


@pytest.mark.parametrize(
    ("max_participants", "empty_timeout", "field", "message"),
    [
        (1, None, "max_participants", "between 2 and 50"),
        (51, None, "max_participants", "between 2 and 50"),
        (-3, None, "max_participants", "between 2 and 50"),
        (None, 0, "empty_timeout", "between 1 and 86400"),
        (None, 86_401, "empty_timeout", "between 1 and 86400"),
        (True, None, "max_participants", "between 2 and 50"),
        (6.5, None, "max_participants", "between 2 and 50"),
    ],
)
def test_room_limits_out_of_range(
    max_participants: int | None, empty_timeout: int | None, field: str, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        room_limits(max_participants, empty_timeout)
    assert field in str(info.value)
    assert message in str(info.value)


def test_room_limits_checked_when_built_directly() -> None:
    with pytest.raises(ValueError, match="max_participants"):
        RoomLimits(max_participants=500)


def test_decide_join_basic() -> None:
    assert decide_join(OPEN, {}, "alice", False, 2) is JoinDecision.ADMIT
    assert decide_join(IN_PROGRESS, {"alice": False}, "bob", False, 2) is JoinDecision.ADMIT
    assert decide_join(IN_PROGRESS, {"alice": False, "bob": False}, "carol", False, 2) is JoinDecision.ROOM_FULL


def test_decide_join_completed_room() -> None:
    assert decide_join(COMPLETED, {}, "alice", False, 6) is JoinDecision.ROOM_COMPLETED
    assert decide_join(COMPLETED, {}, "rec", True, 6) is JoinDecision.ROOM_COMPLETED


def test_same_identity_takes_over_even_when_full() -> None:
    full = {"alice": False, "bob": False}
    assert decide_join(IN_PROGRESS, full, "alice", False, 2) is JoinDecision.REPLACE
    assert decide_join(IN_PROGRESS, {"rec": True}, "rec", True, 2) is JoinDecision.REPLACE


def test_hidden_participants_neither_count_nor_are_refused() -> None:
    full = {"alice": False, "bob": False}
    assert decide_join(IN_PROGRESS, full, "recorder", True, 2) is JoinDecision.ADMIT
    with_hidden = {"alice": False, "rec1": True, "rec2": True, "rec3": True}
    assert decide_join(IN_PROGRESS, with_hidden, "bob", False, 2) is JoinDecision.ADMIT


def test_hidden_identity_turning_visible_respects_limit() -> None:
    present = {"alice": False, "bob": False, "rec": True}
    assert decide_join(IN_PROGRESS, present, "rec", False, 2) is JoinDecision.ROOM_FULL
    assert decide_join(IN_PROGRESS, present, "rec", False, 3) is JoinDecision.REPLACE
    assert decide_join(IN_PROGRESS, present, "alice", True, 2) is JoinDecision.REPLACE


join_requests = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave"]),
        st.sampled_from([f"p{i}" for i in range(10)]),
        st.booleans(),
    ),
    max_size=80,
)


@given(max_participants=st.integers(min_value=2, max_value=6), requests=join_requests)
def test_decide_join_never_admits_beyond_limit(
    max_participants: int, requests: list[tuple[str, str, bool]]
) -> None:
    status = OPEN
    present: dict[str, bool] = {}
    for action, identity, hidden in requests:
        if action == "leave":
            if identity in present:
                del present[identity]
                status = next_status(status, LEFT)
            continue
        decision = decide_join(status, present, identity, hidden, max_participants)
        visible_before = sum(1 for h in present.values() if not h)
        if identity in present and (present[identity] is False or hidden):
            assert decision is JoinDecision.REPLACE
        if hidden and identity not in present:
            assert decision is JoinDecision.ADMIT
        if not hidden and identity not in present:
            full = visible_before >= max_participants
            assert decision is (JoinDecision.ROOM_FULL if full else JoinDecision.ADMIT)
        if decision is JoinDecision.ADMIT:
            assert identity not in present
            present[identity] = hidden
            status = next_status(status, JOINED)
        elif decision is JoinDecision.REPLACE:
            assert identity in present
            present[identity] = hidden
        assert sum(1 for h in present.values() if not h) <= max_participants


def test_completion_due() -> None:
    assert not completion_due(OPEN, 0, 100.0, 300, 399.0)
    assert completion_due(OPEN, 0, 100.0, 300, 400.0)
    assert completion_due(IN_PROGRESS, 0, 100.0, 300, 1000.0)
    assert not completion_due(IN_PROGRESS, 1, 100.0, 300, 1000.0)
    assert not completion_due(IN_PROGRESS, 0, None, 300, 1000.0)
    assert not completion_due(COMPLETED, 0, 100.0, 300, 1000.0)


def test_empty_clock_follows_joins_and_leaves() -> None:
    clock = EmptyClock.created(now=0.0)
    assert clock.due(OPEN, 0, 300, 299.0) is False
    assert clock.due(OPEN, 0, 300, 300.0) is True
    clock.observe(1, now=100.0)
    assert clock.empty_since is None
    assert clock.due(IN_PROGRESS, 1, 300, 10_000.0) is False
    clock.observe(0, now=500.0)
    clock.observe(0, now=600.0)  # still empty: stays empty since 500
    assert clock.empty_since == 500.0
    assert clock.due(IN_PROGRESS, 0, 300, 799.0) is False
    assert clock.due(IN_PROGRESS, 0, 300, 800.0) is True
    assert clock.due(COMPLETED, 0, 300, 800.0) is False


def test_roster_keeps_join_order_and_place_on_takeover() -> None:
    roster = Roster()
    roster.join("alice", False, 1.0)
    roster.join("rec", True, 2.0)
    roster.join("bob", False, 3.0)
    roster.join("carol", False, 4.0)
    assert [p.identity for p in roster.visible()] == ["alice", "bob", "carol"]
    assert roster.visible_count() == 3
    assert len(roster) == 4
    assert roster.present() == {"alice": False, "rec": True, "bob": False, "carol": False}

    again = roster.join("alice", False, 10.0)
    assert again.joined_at == 1.0
    assert [p.identity for p in roster] == ["alice", "rec", "bob", "carol"]

    assert roster.leave("bob") is True
    assert roster.leave("bob") is False
    assert "bob" not in roster and "alice" in roster
    roster.join("bob", False, 11.0)
    assert [p.identity for p in roster.visible()] == ["alice", "carol", "bob"]
