"""Tests for tvapp.core.invites: the redemption rules and their order, without a server.

The same rules on a real `tvapp serve` (codes, statuses, the limiter) are in test_invites.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from tvapp.core.invites import Redemption, decide_redemption

NOW = 1_000.0


@dataclass(frozen=True)
class Invite:
    room_sid: str = "RM_a"
    expires_at: float = NOW + 60
    max_uses: int = 3
    uses: int = 0


def decide(invite: Invite | None = Invite(), **facts: Any) -> Redemption:
    given: dict[str, Any] = {"now": NOW, "retry_after": 0.0, "invite": invite, "live_room_sid": "RM_a",
                             "banned": False, "identity_present": False}
    given.update(facts)
    return decide_redemption(**given)


def test_a_good_code_for_a_live_room_admits() -> None:
    assert decide() is Redemption.ADMIT
    assert decide(Invite(uses=2)) is Redemption.ADMIT


@pytest.mark.parametrize("invite,facts,outcome", [
    (Invite(), {"retry_after": 0.5}, Redemption.TOO_MANY_ATTEMPTS),
    (None, {}, Redemption.NOT_FOUND),
    (Invite(expires_at=NOW), {}, Redemption.EXPIRED),
    (Invite(), {"live_room_sid": None}, Redemption.ROOM_COMPLETED),
    (Invite(), {"live_room_sid": "RM_later"}, Redemption.ROOM_COMPLETED),
    (Invite(), {"banned": True}, Redemption.REMOVED),
    (Invite(), {"identity_present": True}, Redemption.IDENTITY_TAKEN),
    (Invite(uses=3), {}, Redemption.USED_UP),
])
def test_each_rule_refuses_alone(invite: Invite | None, facts: dict[str, Any], outcome: Redemption) -> None:
    assert decide(invite, **facts) is outcome


def test_rules_apply_in_their_order() -> None:
    worst = {"retry_after": 1.0, "live_room_sid": None, "banned": True, "identity_present": True}
    spent = Invite(expires_at=NOW - 1, uses=3)
    order = [Redemption.TOO_MANY_ATTEMPTS, Redemption.EXPIRED, Redemption.ROOM_COMPLETED, Redemption.REMOVED,
             Redemption.IDENTITY_TAKEN, Redemption.USED_UP]
    cures: list[tuple[str, Any]] = [("retry_after", 0.0), ("invite", replace(spent, expires_at=NOW + 1)),
                                    ("live_room_sid", "RM_a"), ("banned", False), ("identity_present", False),
                                    ("invite", Invite())]
    facts: dict[str, Any] = {**worst, "invite": spent}
    for expected, (name, cure) in zip(order, cures):
        assert decide(**facts) is expected
        facts[name] = cure
    assert decide(**facts) is Redemption.ADMIT


def test_a_throttled_client_needs_no_facts_at_all() -> None:
    assert decide_redemption(now=NOW, retry_after=3.0, invite=None) is Redemption.TOO_MANY_ATTEMPTS


def test_only_a_wrong_code_counts_against_the_client() -> None:
    assert {r for r in Redemption if r.wrong_code} == {Redemption.NOT_FOUND, Redemption.EXPIRED}


def test_outcomes_carry_the_error_codes_clients_see() -> None:
    assert [r.value for r in Redemption if r is not Redemption.ADMIT] == [
        "too_many_attempts", "invite_not_found", "invite_expired", "room_completed", "removed", "identity_taken",
        "invite_used_up"]
