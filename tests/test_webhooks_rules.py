"""The pure webhook rules (tvapp.core.webhooks) on a fake clock, and the SDK verifier against real signatures."""

from __future__ import annotations

import base64
import hashlib
import json

import jwt
import pytest

from tvapp.client.webhooks import WebhookError, verify
from tvapp.core import webhooks as rules
from tvapp.server.webhooks import sign


def test_backoff_doubles_up_to_the_cap_and_gives_up_after_max_attempts() -> None:
    policy = rules.RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=5.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    now = 100.0
    attempts = 0
    times = []
    while True:
        outcome = rules.after_attempt(policy, attempts, ok=False, now=now)
        attempts = outcome.attempts
        if outcome.drop:
            break
        times.append(outcome.next_at - now)
        now = outcome.next_at
    assert outcome.gave_up and attempts == 5 and times == [1.0, 2.0, 4.0, 5.0]
    done = rules.after_attempt(policy, 2, ok=True, now=now)
    assert done.drop and not done.gave_up and done.attempts == 3
    with pytest.raises(ValueError):
        rules.RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        rules.RetryPolicy(base_delay=2.0, max_delay=1.0)


def test_a_lane_head_blocks_its_lane_only() -> None:
    a, b = rules.lane("RM_a", "http://x/"), rules.lane("RM_b", "http://x/")
    pending = [rules.Pending(1, a, 3, next_at=50.0), rules.Pending(2, b, 0, 10.0), rules.Pending(3, a, 0, 0.0),
               rules.Pending(4, b, 0, 10.0)]
    assert [p.seq for p in rules.heads(pending)] == [1, 2]
    assert [p.seq for p in rules.due(pending, now=10.0)] == [2]  # a's head waits for its retry; 3 must not pass it
    assert [p.seq for p in rules.due(pending, now=50.0)] == [1, 2]
    assert [p.seq for p in rules.due(pending, now=50.0, busy=[b])] == [1]
    assert rules.next_wake(pending) == 10.0 and rules.next_wake(pending, busy=[b]) == 50.0
    assert rules.next_wake([]) is None


@pytest.mark.parametrize("url, code", [
    ("ftp://example.org/h", "invalid_callback"),
    ("javascript:alert(1)", "invalid_callback"),
    ("https://user:pw@example.org/h", "invalid_callback"),
    ("https://token@example.org/h", "invalid_callback"),
    ("https:///nohost", "invalid_callback"),
    ("https://example.org/a b", "invalid_callback"),
    ("https://example.org:99999/", "invalid_callback"),
    ("https://example.org/" + "x" * rules.MAX_CALLBACK_URL, "invalid_callback"),
    ("", "invalid_callback"),
])
def test_bad_callback_urls_are_refused(url: str, code: str) -> None:
    with pytest.raises(rules.CallbackError) as caught:
        rules.check_callback_url(url)
    assert caught.value.code == code
    assert "pw" not in caught.value.message


def test_private_addresses_only_when_allowed() -> None:
    for url in ("http://127.0.0.1:8000/h", "http://10.1.2.3/h", "http://localhost/h", "http://[::1]/h"):
        assert rules.check_callback_url(url) == url
        with pytest.raises(rules.CallbackError) as caught:
            rules.check_callback_url(url, allow_private=False)
        assert caught.value.code == "callback_not_allowed"
    longest = "https://example.org/" + "x" * (rules.MAX_CALLBACK_URL - len("https://example.org/"))
    assert rules.check_callback_url(longest, allow_private=False) == longest


def test_payload_shapes() -> None:
    room = {"sid": "RM_1", "name": "r"}
    body = rules.event_payload("track_published", "WH_1", 5.0, room, participant={"sid": "PA_1"}, track={"sid": "T"})
    assert body == {"id": "WH_1", "event": "track_published", "created_at": 5.0, "room": room,
                    "participant": {"sid": "PA_1"}, "track": {"sid": "T"}}
    assert set(rules.EVENTS) >= {"room_started", "room_finished", "participant_joined", "participant_left",
                                 "participant_reconnecting", "participant_reconnected", "track_published",
                                 "track_unpublished", "recording_started", "recording_completed",
                                 "recording_failed", "composition_completed", "composition_failed"}
    with pytest.raises(ValueError):
        rules.event_payload("room_exploded", "WH_2", 5.0, room)
    with pytest.raises(ValueError):
        rules.event_payload("participant_joined", "WH_2", 5.0, room)  # no participant
    with pytest.raises(ValueError):
        rules.event_payload("room_started", "WH_2", 5.0, room, track={"sid": "T"})


BODY = json.dumps({"id": "WH_1", "event": "room_started", "created_at": 1.0, "room": {"sid": "RM_1"}}).encode()
KEY, SECRET = "AK_test", "s" * 43


def test_verify_accepts_a_real_signature() -> None:
    import time
    event = verify(BODY, sign(BODY, KEY, SECRET, time.time()), KEY, SECRET)
    assert (event.id, event.event, event.room) == ("WH_1", "room_started", {"sid": "RM_1"})
    assert verify(BODY.decode(), "Bearer " + sign(BODY, KEY, SECRET, time.time()), KEY, SECRET).id == "WH_1"


def test_verify_refuses_forgeries() -> None:
    import time
    now = time.time()
    good = sign(BODY, KEY, SECRET, now)
    cases = {
        "forged with another secret": (BODY, sign(BODY, KEY, "t" * 43, now), KEY, SECRET),
        "another key id": (BODY, sign(BODY, "AK_other", SECRET, now), KEY, SECRET),
        "body changed": (BODY.replace(b"room_started", b"room_finished"), good, KEY, SECRET),
        "expired": (BODY, sign(BODY, KEY, SECRET, now - 3600), KEY, SECRET),
        "no header": (BODY, "", KEY, SECRET),
        "garbage": (BODY, "not.a.jwt", KEY, SECRET),
        "alg none": (BODY, jwt.encode({"iss": KEY, "exp": now + 60, "sha256": base64.b64encode(
            hashlib.sha256(BODY).digest()).decode()}, None, algorithm="none"), KEY, SECRET),
        "no sha256 claim": (BODY, jwt.encode({"iss": KEY, "exp": now + 60}, SECRET, algorithm="HS256"), KEY, SECRET),
    }
    for name, (body, header, key, secret) in cases.items():
        with pytest.raises(WebhookError):
            verify(body, header, key, secret)
            pytest.fail(name)


def test_a_signed_body_that_is_not_an_event_is_refused() -> None:
    import time
    body = b"[1, 2]"
    with pytest.raises(WebhookError):
        verify(body, sign(body, KEY, SECRET, time.time()), KEY, SECRET)
