"""Tests for tvapp.core.attempts: the sliding-window failure limiter."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.attempts import AttemptLimiter


def test_allows_until_max_failures_then_refuses() -> None:
    limiter = AttemptLimiter(max_failures=3, window_s=60)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after("a", t) == 0.0
        limiter.record_failure("a", t)
    assert limiter.retry_after("a", 3.0) == pytest.approx(57.0)


def test_retry_after_is_when_oldest_failure_leaves_window() -> None:
    limiter = AttemptLimiter(max_failures=2, window_s=10)
    limiter.record_failure("a", 0.0)
    limiter.record_failure("a", 4.0)
    assert limiter.retry_after("a", 5.0) == 5.0
    assert limiter.retry_after("a", 9.5) == 0.5
    assert limiter.retry_after("a", 10.0) == 0.0
    limiter.record_failure("a", 10.0)
    assert limiter.retry_after("a", 10.0) == 4.0


def test_extra_failures_extend_refusal() -> None:
    limiter = AttemptLimiter(max_failures=2, window_s=10)
    for t in (0.0, 1.0, 2.0, 3.0):
        limiter.record_failure("a", t)
    # Failures at 2 and 3 are the newest two: allowed again once the one at 2 expires.
    assert limiter.retry_after("a", 3.0) == 9.0


def test_keys_are_independent_and_reset_forgets() -> None:
    limiter = AttemptLimiter(max_failures=1, window_s=10)
    limiter.record_failure("a", 0.0)
    assert limiter.retry_after("a", 1.0) == 9.0
    assert limiter.retry_after("b", 1.0) == 0.0
    limiter.reset("a")
    assert limiter.retry_after("a", 1.0) == 0.0
    limiter.reset("never-seen")


def test_memory_bounded_by_max_keys_evicting_least_recently_touched() -> None:
    limiter = AttemptLimiter(max_failures=1, window_s=100, max_keys=3)
    for key in "abc":
        limiter.record_failure(key, 0.0)
    assert limiter.retry_after("a", 1.0) > 0  # touches "a": "b" is now least recently touched
    limiter.record_failure("d", 2.0)
    assert len(limiter) == 3
    assert limiter.retry_after("b", 3.0) == 0.0
    assert limiter.retry_after("a", 3.0) > 0
    assert limiter.retry_after("c", 3.0) > 0
    assert limiter.retry_after("d", 3.0) > 0


def test_expired_keys_are_pruned() -> None:
    limiter = AttemptLimiter(max_failures=5, window_s=10)
    for i in range(100):
        limiter.record_failure(f"k{i}", 0.0)
    assert len(limiter) == 100
    limiter.record_failure("late", 20.0)
    assert len(limiter) == 1
    assert limiter.retry_after("late", 20.0) == 0.0
    limiter.record_failure("late", 21.0)
    assert limiter.retry_after("late", 40.0) == 0.0
    assert len(limiter) == 0


def test_many_keys_stay_bounded() -> None:
    limiter = AttemptLimiter(max_failures=3, window_s=1000, max_keys=50)
    for i in range(10_000):
        limiter.record_failure(f"10.0.{i // 256}.{i % 256}", float(i))
        assert len(limiter) <= 50


@pytest.mark.parametrize(
    "kwargs", [dict(max_failures=0, window_s=1), dict(max_failures=1, window_s=0), dict(max_failures=1, window_s=1, max_keys=0)]
)
def test_rejects_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AttemptLimiter(**kwargs)  # type: ignore[arg-type]


attempt_gaps = st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=200)


@given(
    max_failures=st.integers(min_value=1, max_value=6),
    window=st.integers(min_value=1, max_value=50),
    gaps=attempt_gaps,
    keys=st.lists(st.sampled_from(["a", "b", "c"]), min_size=200, max_size=200),
)
def test_never_more_than_max_failures_in_any_window(
    max_failures: int, window: int, gaps: list[int], keys: list[str]
) -> None:
    # Every attempt fails; the attacker tries whenever it likes, the limiter must hold the line per key.
    limiter = AttemptLimiter(max_failures=max_failures, window_s=float(window))
    let_through: dict[str, list[int]] = {}
    now = 0
    for gap, key in zip(gaps, keys):
        now += gap
        if limiter.retry_after(key, float(now)) == 0.0:
            limiter.record_failure(key, float(now))
            let_through.setdefault(key, []).append(now)
    for times in let_through.values():
        for t in times:
            in_window = [u for u in times if t - window < u <= t]
            assert len(in_window) <= max_failures


@given(
    max_failures=st.integers(min_value=1, max_value=6),
    window=st.integers(min_value=1, max_value=50),
    gaps=attempt_gaps,
)
def test_refused_client_is_allowed_exactly_at_retry_after(max_failures: int, window: int, gaps: list[int]) -> None:
    limiter = AttemptLimiter(max_failures=max_failures, window_s=float(window))
    now = 0
    for gap in gaps:
        now += gap
        wait = limiter.retry_after("a", float(now))
        assert 0.0 <= wait <= window
        if wait == 0.0:
            limiter.record_failure("a", float(now))
        else:
            assert limiter.retry_after("a", now + wait - 0.5) > 0.0
            assert limiter.retry_after("a", now + wait) == 0.0
            now += int(wait)  # the probe moved the limiter's clock forward: never go back in time
