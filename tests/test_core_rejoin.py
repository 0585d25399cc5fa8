"""tvapp.core.rejoin: which reasons a TV out of its room tries again for, and its pauses between tries."""

from __future__ import annotations

import pytest

from tvapp.core.rejoin import MAX_DELAY, rejoin_delay, should_rejoin


@pytest.mark.parametrize("reason", ["reconnect_failed", "unreachable", "internal_error", "room_full",
                                    "too_many_attempts", "some_future_code"])
def test_a_lost_link_or_a_passing_refusal_is_tried_again(reason: str) -> None:
    assert should_rejoin(reason, hosting=False) and should_rejoin(reason, hosting=True)


@pytest.mark.parametrize("reason", ["client_initiated", "removed", "replaced", "room_completed", "token_revoked",
                                    "token_reused", "not_allowed", "wrong_room", "invalid_credentials",
                                    "invite_not_found", "invite_expired", "invite_used_up", "nothing_to_join"])
def test_a_decision_or_a_final_refusal_is_not(reason: str) -> None:
    assert not should_rejoin(reason, hosting=False) and not should_rejoin(reason, hosting=True)


@pytest.mark.parametrize("reason", ["token_expired", "invalid_token", "room_not_found"])
def test_a_hosting_tv_fixes_its_token_and_room_itself(reason: str) -> None:
    assert should_rejoin(reason, hosting=True)
    assert not should_rejoin(reason, hosting=False)


def test_pauses_double_from_one_second_up_to_the_cap() -> None:
    assert [rejoin_delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_DELAY, MAX_DELAY]
    assert rejoin_delay(10_000) == MAX_DELAY
    with pytest.raises(ValueError):
        rejoin_delay(-1)
