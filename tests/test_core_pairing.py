"""Tests for tvapp.core.pairing: the pairing state machine's rules, one by one, then as properties."""

import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tvapp.core.pairing import (
    TRANSITIONS,
    Decision,
    Outcome,
    Pairing,
    PairingConfig,
    PairingEvent,
    PairingState,
    Pending,
)


class Sequence:
    """Deterministic randomness: codes 000001, 000002, ... and tokens tok1, tok2, ..."""

    def __init__(self) -> None:
        self._codes: Iterator[int] = itertools.count(1)
        self._tokens: Iterator[int] = itertools.count(1)

    def digits(self, n: int) -> str:
        return f"{next(self._codes):0{n}d}"

    def token(self) -> str:
        return f"tok{next(self._tokens)}"


def make(**config: Any) -> Pairing:
    source = Sequence()
    return Pairing(PairingConfig(**config), source.digits, source.token)


def started(decision: Decision) -> Pending:
    assert decision.outcome is Outcome.STARTED
    assert decision.pending is not None
    return decision.pending


def wrong(code: str) -> str:
    return "9" * len(code) if code != "9" * len(code) else "8" * len(code)


# -- requests: one pairing at a time -------------------------------------------------------------


def test_request_starts_a_pairing_with_code_secret_and_expiry() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 10.0))
    assert pending.code == "000001"
    assert pending.requester == "phone-a"
    assert pending.expires_at == 130.0
    assert pending.secret and pending.pairing_id and pending.secret != pending.pairing_id
    assert pairing.current(10.0) == pending
    assert pairing.is_open(10.0)


def test_second_requester_is_busy_until_the_pending_pairing_expires() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    busy = pairing.request("phone-b", 100.0)
    assert busy == Decision(Outcome.BUSY, retry_after=20.0)
    assert pairing.current(100.0) == pending
    replacement = started(pairing.request("phone-b", 120.0))
    assert replacement.requester == "phone-b"
    assert replacement.pairing_id != pending.pairing_id
    assert replacement.code != pending.code


def test_same_requester_gets_the_same_pairing_back() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    assert started(pairing.request("phone-a", 50.0)) == pending


def test_same_requester_after_expiry_gets_a_new_pairing() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    assert pairing.current(119.9) == pending
    assert pairing.current(120.0) is None
    assert started(pairing.request("phone-a", 121.0)).pairing_id != pending.pairing_id


def test_code_digits_come_from_config() -> None:
    pending = started(make(code_digits=8).request("a", 0.0))
    assert pending.code == "00000001"


def test_config_refuses_codes_shorter_than_six_digits() -> None:
    with pytest.raises(ValueError, match="code_digits"):
        PairingConfig(code_digits=5)


def test_random_digits_of_the_wrong_shape_are_refused() -> None:
    pairing = Pairing(PairingConfig(), lambda n: "12345", lambda: "tok")
    with pytest.raises(ValueError, match="6 ASCII digits"):
        pairing.request("a", 0.0)
    pairing = Pairing(PairingConfig(), lambda n: "١٢٣٤٥٦", lambda: "tok")
    with pytest.raises(ValueError, match="6 ASCII digits"):
        pairing.request("a", 0.0)


# -- attempts ---------------------------------------------------------------------------------------


def test_right_code_pairs_and_ends_the_pairing() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    assert pairing.attempt(pending.pairing_id, 5.0, code=pending.code) == Decision(Outcome.PAIRED, pending)
    assert pairing.current(5.0) is None
    assert pairing.attempt(pending.pairing_id, 6.0, code=pending.code).outcome is Outcome.NO_PAIRING
    assert started(pairing.request("phone-b", 6.0)).requester == "phone-b"


def test_right_secret_pairs() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    assert pairing.attempt(pending.pairing_id, 1.0, secret=pending.secret).outcome is Outcome.PAIRED


def test_wrong_secret_is_a_failure() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    decision = pairing.attempt(pending.pairing_id, 1.0, secret=pending.secret + "x")
    assert decision == Decision(Outcome.WRONG_CODE, retry_after=1.0)
    assert pairing.failures(1.0) == 1


def test_attempt_needs_exactly_one_of_code_or_secret() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    with pytest.raises(ValueError, match="exactly one"):
        pairing.attempt(pending.pairing_id, 1.0)
    with pytest.raises(ValueError, match="exactly one"):
        pairing.attempt(pending.pairing_id, 1.0, code=pending.code, secret=pending.secret)


def test_unknown_pairing_id_is_no_pairing_and_not_a_failure() -> None:
    pairing = make()
    assert pairing.attempt("nope", 0.0, code="000001").outcome is Outcome.NO_PAIRING
    pending = started(pairing.request("phone-a", 0.0))
    assert pairing.attempt("nope", 1.0, code=pending.code).outcome is Outcome.NO_PAIRING
    assert pairing.failures(1.0) == 0
    assert pairing.current(1.0) == pending


def test_attempt_after_expiry_ends_the_pairing() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    assert pairing.attempt(pending.pairing_id, 120.0, code=pending.code) == Decision(Outcome.EXPIRED)
    assert pairing.attempt(pending.pairing_id, 121.0, code=pending.code).outcome is Outcome.NO_PAIRING
    assert pairing.failures(121.0) == 0
    assert pairing.current(121.0) is None


def test_three_wrong_tries_rotate_the_code() -> None:
    pairing = make(backoff_base=0.0)
    pending = started(pairing.request("phone-a", 0.0))
    assert pairing.attempt(pending.pairing_id, 1.0, code="999999").outcome is Outcome.WRONG_CODE
    assert pairing.attempt(pending.pairing_id, 2.0, code="999999").outcome is Outcome.WRONG_CODE
    rotated = pairing.attempt(pending.pairing_id, 100.0, code="999999")
    assert rotated.outcome is Outcome.ROTATED
    fresh = rotated.pending
    assert fresh is not None
    assert fresh.code != pending.code and len(fresh.code) == 6
    assert (fresh.pairing_id, fresh.secret, fresh.requester) == (pending.pairing_id, pending.secret, "phone-a")
    assert fresh.expires_at == 220.0
    assert pairing.current(100.0) == fresh
    assert pairing.attempt(pending.pairing_id, 101.0, code=pending.code).outcome is Outcome.WRONG_CODE
    assert pairing.attempt(pending.pairing_id, 102.0, code=fresh.code).outcome is Outcome.PAIRED


def test_the_same_requester_sees_the_rotated_code() -> None:
    pairing = make(backoff_base=0.0)
    pending = started(pairing.request("phone-a", 0.0))
    for t in (1.0, 2.0, 3.0):
        decision = pairing.attempt(pending.pairing_id, t, code="999999")
    assert started(pairing.request("phone-a", 4.0)) == decision.pending


def test_backoff_doubles_per_consecutive_failure_up_to_the_maximum() -> None:
    pairing = make(backoff_base=1.0, backoff_max=30.0, tries_per_code=100)
    pending = started(pairing.request("phone-a", 0.0))
    now = 0.0
    waits = []
    for _ in range(7):
        decision = pairing.attempt(pending.pairing_id, now, code="999999")
        assert decision.outcome is Outcome.WRONG_CODE
        waits.append(decision.retry_after)
        now += decision.retry_after
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_attempt_during_backoff_is_too_soon_and_not_checked() -> None:
    pairing = make()
    pending = started(pairing.request("phone-a", 0.0))
    pairing.attempt(pending.pairing_id, 10.0, code="999999")
    pairing.attempt(pending.pairing_id, 11.0, code="999999")
    assert pairing.attempt(pending.pairing_id, 12.5, code=pending.code) == Decision(Outcome.TOO_SOON, retry_after=0.5)
    assert pairing.attempt(pending.pairing_id, 12.9, code="999999").outcome is Outcome.TOO_SOON
    assert pairing.failures(12.9) == 2
    assert pairing.attempt(pending.pairing_id, 13.0, code=pending.code).outcome is Outcome.PAIRED


def test_success_resets_the_backoff_but_not_the_failure_count() -> None:
    pairing = make()
    pending = started(pairing.request("a", 0.0))
    pairing.attempt(pending.pairing_id, 0.0, code="999999")
    pairing.attempt(pending.pairing_id, 1.0, code="999999")
    pairing.attempt(pending.pairing_id, 3.0, code=pending.code)
    pending = started(pairing.request("a", 3.0))
    assert pairing.attempt(pending.pairing_id, 3.0, code="999999").retry_after == 1.0
    assert pairing.failures(3.0) == 3


def test_backoff_outlives_the_pairing_it_was_earned_on() -> None:
    pairing = make()
    pending = started(pairing.request("a", 0.0))
    for t in (0.0, 1.0, 3.0, 7.0):
        pairing.attempt(pending.pairing_id, t, code="999999")
    pending = started(pairing.request("b", 200.0))
    assert pairing.attempt(pending.pairing_id, 200.0, code="999999").retry_after == 16.0


def test_twenty_failures_close_pairing_for_fifteen_minutes() -> None:
    pairing = make(backoff_base=0.0)
    pending = started(pairing.request("attacker", 0.0))
    outcomes = []
    for i in range(20):
        current = pairing.current(float(i))
        assert current is not None
        decision = pairing.attempt(current.pairing_id, float(i), code=wrong(current.code))
        outcomes.append(decision.outcome)
    assert outcomes.count(Outcome.ROTATED) == 6
    assert outcomes[-1] is Outcome.CLOSED
    assert pairing.failures(19.0) == 20
    assert not pairing.is_open(19.0)
    assert pairing.current(19.0) is None
    assert pairing.request("owner", 20.0) == Decision(Outcome.CLOSED, retry_after=899.0)
    assert pairing.attempt(pending.pairing_id, 20.0, code=pending.code).outcome is Outcome.CLOSED
    assert not pairing.is_open(918.9)
    assert pairing.request("owner", 918.9).outcome is Outcome.CLOSED
    assert pairing.failures(918.9) == 20
    assert pairing.is_open(919.0)
    assert pairing.failures(919.0) == 0
    assert started(pairing.request("owner", 919.0)).requester == "owner"
    assert pairing.failures(919.0) == 0


def test_reopen_from_the_tv_ends_the_lock_and_resets_failures() -> None:
    pairing = make(max_failures=2, backoff_base=5.0)
    pending = started(pairing.request("a", 0.0))
    pairing.attempt(pending.pairing_id, 0.0, code="999999")
    assert pairing.attempt(pending.pairing_id, 5.0, code="999999").outcome is Outcome.CLOSED
    assert not pairing.is_open(6.0)
    pairing.reopen(6.0)
    assert pairing.is_open(6.0)
    assert pairing.failures(6.0) == 0
    pending = started(pairing.request("a", 6.0))
    assert pairing.attempt(pending.pairing_id, 6.0, code="999999") == Decision(Outcome.WRONG_CODE, retry_after=5.0)


def test_tv_can_close_and_reopen_at_will() -> None:
    pairing = make()
    pending = started(pairing.request("a", 0.0))
    pairing.close()
    assert not pairing.is_open(1.0)
    assert pairing.current(1.0) is None
    assert pairing.request("a", 1.0) == Decision(Outcome.CLOSED)
    assert pairing.attempt(pending.pairing_id, 1.0, code=pending.code) == Decision(Outcome.CLOSED)
    assert not pairing.is_open(10_000.0)
    pairing.reopen(10_000.0)
    assert pairing.is_open(10_000.0)
    assert pairing.attempt(pending.pairing_id, 10_000.0, code=pending.code).outcome is Outcome.NO_PAIRING
    assert started(pairing.request("a", 10_000.0)).pairing_id != pending.pairing_id


def test_close_during_a_lock_holds_until_reopen() -> None:
    pairing = make(max_failures=1)
    pending = started(pairing.request("a", 0.0))
    assert pairing.attempt(pending.pairing_id, 0.0, code="999999").outcome is Outcome.CLOSED
    pairing.close()
    assert not pairing.is_open(5_000.0)
    assert pairing.request("a", 5_000.0) == Decision(Outcome.CLOSED)


def test_reopen_while_open_keeps_the_pending_pairing_and_clears_backoff() -> None:
    pairing = make()
    pending = started(pairing.request("a", 0.0))
    pairing.attempt(pending.pairing_id, 0.0, code="999999")
    pairing.reopen(0.5)
    assert pairing.current(0.5) == pending
    assert pairing.failures(0.5) == 0
    assert pairing.attempt(pending.pairing_id, 0.5, code=pending.code).outcome is Outcome.PAIRED


def test_state_reports_the_machine_state() -> None:
    pairing = make(max_failures=1)
    assert pairing.state(0.0) is PairingState.IDLE
    pending = started(pairing.request("a", 0.0))
    assert pairing.state(0.0) is PairingState.PENDING
    pairing.attempt(pending.pairing_id, 0.0, code="999999")
    assert pairing.state(899.0) is PairingState.LOCKED
    assert pairing.state(900.0) is PairingState.IDLE
    pairing.close()
    assert pairing.state(900.0) is PairingState.CLOSED


def test_transition_table_covers_close_and_reopen_from_every_state() -> None:
    for state in PairingState:
        assert (state, PairingEvent.CLOSE) in TRANSITIONS
        assert (state, PairingEvent.REOPEN) in TRANSITIONS
    assert all(state is not PairingState.CLOSED for (state, event) in TRANSITIONS if event is PairingEvent.START)


def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    pairing = make()
    pending = started(pairing.request("a", 0.0))
    pairing.attempt(pending.pairing_id, 0.0, secret="guess")
    assert (b"guess", pending.secret.encode()) in calls
    pairing.attempt(pending.pairing_id, 1.0, code="123456")
    assert (b"123456", pending.code.encode()) in calls


# -- properties -----------------------------------------------------------------------------------

CONFIG = PairingConfig(
    code_ttl=30.0, tries_per_code=3, max_failures=5, closed_for=100.0, backoff_base=0.5, backoff_max=4.0
)
REQUESTERS = st.sampled_from(["a", "b", "c"])
DIGITS = st.text(alphabet="0123456789", min_size=6, max_size=6)


class PairingMachine(RuleBasedStateMachine):
    """Drives a Pairing with arbitrary requests, attempts, time steps, closes and reopens.

    The machine keeps its own account of the rules (failures since pairing opened, when it locked, whether
    the TV closed it) and checks every answer against it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.issued: list[Pending] = []
        self.failures_since_open = 0
        self.consecutive_failures = 0
        self.next_attempt_at = 0.0
        self.locked_at: float | None = None
        self.closed_by_tv = False

    @initialize(seed=st.randoms(use_true_random=False))
    def start(self, seed: random.Random) -> None:
        tokens = itertools.count()
        self.pairing = Pairing(
            CONFIG,
            lambda n: "".join(seed.choice("0123456789") for _ in range(n)),
            lambda: f"t{next(tokens)}",
        )

    def expect_open(self) -> bool:
        if self.locked_at is not None and self.now >= self.locked_at + CONFIG.closed_for:
            self.forget_failures()
        return not self.closed_by_tv and self.locked_at is None

    def forget_failures(self) -> None:
        self.locked_at = None
        self.failures_since_open = 0
        self.consecutive_failures = 0
        self.next_attempt_at = 0.0

    def check_attempt(self, target: Pending, proof: str, by_secret: bool) -> None:
        before = self.pairing.current(self.now)
        was_open = self.expect_open()
        if by_secret:
            decision = self.pairing.attempt(target.pairing_id, self.now, secret=proof)
        else:
            decision = self.pairing.attempt(target.pairing_id, self.now, code=proof)
        if not was_open:
            assert decision == Decision(Outcome.CLOSED, retry_after=decision.retry_after)
            return
        is_current = before is not None and before.pairing_id == target.pairing_id
        if not is_current:
            assert decision.outcome in (Outcome.NO_PAIRING, Outcome.EXPIRED)
            return
        assert before is not None
        right = proof == (before.secret if by_secret else before.code)
        if self.now < self.next_attempt_at:
            assert decision.outcome is Outcome.TOO_SOON
            assert decision.retry_after == pytest.approx(self.next_attempt_at - self.now)
        elif right:
            assert decision == Decision(Outcome.PAIRED, before)
            self.consecutive_failures = 0
            self.next_attempt_at = 0.0
        else:
            self.failures_since_open += 1
            self.consecutive_failures += 1
            wait = min(CONFIG.backoff_max, CONFIG.backoff_base * 2 ** (self.consecutive_failures - 1))
            self.next_attempt_at = self.now + wait
            if self.failures_since_open == CONFIG.max_failures:
                assert decision.outcome is Outcome.CLOSED
                assert decision.retry_after == pytest.approx(CONFIG.closed_for)
                self.locked_at = self.now
            else:
                assert decision.outcome in (Outcome.WRONG_CODE, Outcome.ROTATED)
                assert decision.retry_after == wait
        if decision.outcome is Outcome.ROTATED:
            assert decision.pending is not None
            assert decision.pending.pairing_id == before.pairing_id
            self.issued.append(decision.pending)

    @rule(dt=st.one_of(st.floats(min_value=0.0, max_value=5.0), st.sampled_from([30.0, 100.0])))
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule(requester=REQUESTERS)
    def request(self, requester: str) -> None:
        before = self.pairing.current(self.now)
        decision = self.pairing.request(requester, self.now)
        if not self.expect_open():
            assert decision.outcome is Outcome.CLOSED
            return
        if before is not None and before.requester != requester:
            assert decision.outcome is Outcome.BUSY and decision.pending is None
            assert decision.retry_after == pytest.approx(before.expires_at - self.now)
        else:
            assert decision.outcome is Outcome.STARTED
            assert decision.pending is not None
            if before is not None:
                assert decision.pending == before
            else:
                assert all(decision.pending.pairing_id != old.pairing_id for old in self.issued)
            self.issued.append(decision.pending)

    @precondition(lambda self: len(self.issued) > 0)
    @rule(back=st.integers(min_value=0, max_value=2), by_secret=st.booleans())
    def prove(self, back: int, by_secret: bool) -> None:
        target = self.issued[-1 - min(back, len(self.issued) - 1)]
        current = self.pairing.current(self.now)
        shown = current if current is not None and current.pairing_id == target.pairing_id else target
        self.check_attempt(target, shown.secret if by_secret else shown.code, by_secret)

    @precondition(lambda self: len(self.issued) > 0)
    @rule(guess=DIGITS, by_secret=st.booleans(), patient=st.booleans())
    def guess(self, guess: str, by_secret: bool, patient: bool) -> None:
        if patient:
            self.now += CONFIG.backoff_max
        self.check_attempt(self.issued[-1], guess, by_secret)

    @precondition(lambda self: len(self.issued) > 0)
    @rule()
    def replay_a_superseded_pairing(self) -> None:
        current = self.pairing.current(self.now)
        stale = [p for p in self.issued if current is None or p.pairing_id != current.pairing_id]
        if stale:
            self.check_attempt(stale[-1], stale[-1].code, by_secret=False)

    @rule()
    def close(self) -> None:
        self.pairing.close()
        self.closed_by_tv = True

    @rule()
    def reopen(self) -> None:
        self.pairing.reopen(self.now)
        self.closed_by_tv = False
        self.forget_failures()

    @invariant()
    def shown_code_has_the_configured_digits(self) -> None:
        pending = self.pairing.current(self.now)
        if pending is not None:
            assert len(pending.code) == CONFIG.code_digits and pending.code.isdigit()
            assert self.now < pending.expires_at

    @invariant()
    def open_bit_follows_the_rules(self) -> None:
        assert self.pairing.is_open(self.now) == self.expect_open()
        if not self.expect_open():
            assert self.pairing.current(self.now) is None

    @invariant()
    def failure_count_follows_the_rules(self) -> None:
        if self.expect_open():
            assert self.pairing.failures(self.now) == self.failures_since_open


PairingMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_pairing_machine = PairingMachine.TestCase
