"""Tests for tvapp.core.keyframes: the keyframe request (PLI) rate limit."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.keyframes import KeyframeRequestGate


def test_first_request_goes_through_at_once() -> None:
    gate = KeyframeRequestGate()
    assert gate.next_deadline() is None
    assert gate.request(1000.0) is True
    assert not gate.pending
    assert gate.next_deadline() is None
    assert gate.due(1000.0) is False


def test_requests_inside_the_interval_coalesce_into_one_deferred_request() -> None:
    gate = KeyframeRequestGate(min_interval_ms=300)
    assert gate.request(0.0)
    assert gate.request(10.0) is False
    assert gate.request(120.0) is False
    assert gate.request(299.9) is False
    assert gate.pending
    assert gate.next_deadline() == 300.0
    assert gate.due(299.9) is False
    assert gate.due(300.0) is True
    assert gate.due(300.0) is False
    assert gate.due(10_000.0) is False
    assert gate.next_deadline() is None


def test_deferred_request_sent_late_restarts_the_interval_from_when_it_went() -> None:
    gate = KeyframeRequestGate(min_interval_ms=300)
    gate.request(0.0)
    gate.request(50.0)
    assert gate.due(450.0)  # the caller polled late: the interval counts from this PLI
    assert gate.request(600.0) is False
    assert gate.next_deadline() == 750.0


def test_request_after_the_interval_goes_through_and_clears_a_deferred_one() -> None:
    gate = KeyframeRequestGate(min_interval_ms=300)
    gate.request(0.0)
    gate.request(100.0)
    assert gate.request(300.0) is True  # the deferred request rides along with this one
    assert not gate.pending
    assert gate.due(10_000.0) is False


def test_zero_interval_never_defers() -> None:
    gate = KeyframeRequestGate(min_interval_ms=0)
    assert all(gate.request(5.0) for _ in range(3))
    assert gate.next_deadline() is None


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        KeyframeRequestGate(min_interval_ms=-1)


@given(
    st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=500)), max_size=60),
    st.integers(min_value=1, max_value=1000),
)
def test_plis_are_spaced_and_no_request_is_lost(steps: list[tuple[bool, int]], interval: int) -> None:
    """Requests and polls at increasing times: PLIs at least an interval apart, every request served."""
    gate = KeyframeRequestGate(min_interval_ms=interval)
    now = 0
    sent: list[int] = []
    unserved_since: int | None = None
    for is_request, step in steps:
        now += step
        if is_request:
            if unserved_since is None:
                unserved_since = now
            if gate.request(now):
                sent.append(now)
                unserved_since = None
        else:
            deadline = gate.next_deadline()
            went = gate.due(now)
            assert went == (deadline is not None and now >= deadline)
            if went:
                sent.append(now)
                unserved_since = None
        assert gate.pending == (unserved_since is not None)
        if unserved_since is not None:
            deadline = gate.next_deadline()
            assert deadline is not None and deadline <= unserved_since + interval
    assert all(b - a >= interval for a, b in zip(sent, sent[1:]))


def test_a_request_deferred_before_anything_was_sent_is_due_at_once() -> None:
    gate = KeyframeRequestGate(min_interval_ms=300)
    gate.defer()  # the caller knew no stream to address yet
    assert gate.pending
    assert gate.next_deadline() == float("-inf")
    assert gate.due(5.0) is True
    assert not gate.pending and gate.next_deadline() is None
    assert gate.request(100.0) is False  # the interval counts from that PLI
    assert gate.next_deadline() == 305.0


def test_defer_after_a_pli_waits_for_the_interval() -> None:
    gate = KeyframeRequestGate(min_interval_ms=300)
    assert gate.request(0.0)
    gate.defer()
    assert gate.due(200.0) is False
    assert gate.next_deadline() == 300.0
    assert gate.due(300.0) is True


@given(st.lists(st.sampled_from(["request", "defer", "due"]), max_size=40), st.integers(min_value=0, max_value=500))
def test_pending_exactly_when_a_deadline_is_set(ops: list[str], interval: int) -> None:
    gate = KeyframeRequestGate(min_interval_ms=interval)
    for now, op in enumerate(ops):
        getattr(gate, op)(*(() if op == "defer" else (float(now * 37),)))
        assert gate.pending == (gate.next_deadline() is not None)
