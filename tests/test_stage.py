"""Tests for tvapp.core.stage: tile order, the speaker highlight's hold, toasts, and initials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.stage import SpeakerHighlight, TileOrder, Toasts, initials


# --- TileOrder ------------------------------------------------------------------------------------------

def test_tiles_are_in_join_order_with_ties_by_sid() -> None:
    order = TileOrder()
    order.add("c", 30.0)
    order.add("b", 10.0)
    order.add("a", 10.0)
    assert order.order() == ("a", "b", "c")
    assert order.index("c") == 2 and order.index("zz") is None
    assert len(order) == 3 and "a" in order and "zz" not in order


def test_re_adding_keeps_the_original_place() -> None:
    order = TileOrder()
    order.add("a", 1.0)
    order.add("b", 2.0)
    order.add("a", 99.0)
    assert order.order() == ("a", "b")


def test_leaving_keeps_the_others_in_place_and_unknown_removal_is_ignored() -> None:
    order = TileOrder()
    for i, sid in enumerate("abcd"):
        order.add(sid, float(i))
    order.remove("b")
    order.remove("nobody")
    assert order.order() == ("a", "c", "d")
    order.add("b", 10.0)                                 # back later: at the end
    assert order.order() == ("a", "c", "d", "b")


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 20), st.booleans()), max_size=40))
def test_order_of_those_present_never_changes_relatively(events: list[tuple[str, int, bool]]) -> None:
    order = TileOrder()
    for sid, joined_at, leave in events:
        before = order.order()
        if leave:
            order.remove(sid)
        else:
            order.add(sid, float(joined_at))
        after = order.order()
        kept = [s for s in before if s in after]
        assert [s for s in after if s in before] == kept


# --- SpeakerHighlight -------------------------------------------------------------------------------------

def test_a_named_speaker_is_highlighted_at_once() -> None:
    hl = SpeakerHighlight()
    assert hl.current(0.0) is None
    hl.update("alice", 0.0)
    assert hl.current(0.0) == "alice"
    hl.update("bob", 100.0)
    assert hl.current(100.0) == "bob"


def test_silence_keeps_the_last_speaker_for_the_hold() -> None:
    hl = SpeakerHighlight(hold_ms=1500.0)
    hl.update("alice", 0.0)
    hl.update(None, 1000.0)
    hl.update(None, 2000.0)                              # still silent: the hold counts from 1000
    assert hl.current(2499.0) == "alice"
    assert hl.current(2500.0) is None
    hl.update(None, 3000.0)
    assert hl.current(3000.0) is None


def test_speech_within_the_hold_cancels_it() -> None:
    hl = SpeakerHighlight(hold_ms=1500.0)
    hl.update("alice", 0.0)
    hl.update(None, 100.0)
    hl.update("alice", 1000.0)
    assert hl.current(5000.0) == "alice"


def test_removing_the_highlighted_speaker_drops_it_at_once() -> None:
    hl = SpeakerHighlight()
    hl.update("alice", 0.0)
    hl.remove("bob")
    assert hl.current(1.0) == "alice"
    hl.remove("alice")
    assert hl.current(1.0) is None


# --- Toasts ----------------------------------------------------------------------------------------------

def test_toasts_expire_after_their_duration() -> None:
    toasts = Toasts(duration_ms=4000.0)
    toasts.add("Alice joined", 0.0)
    toasts.add("Bob joined", 1000.0)
    assert toasts.visible(3999.0) == ("Alice joined", "Bob joined")
    assert toasts.visible(4000.0) == ("Bob joined",)
    assert toasts.visible(5000.0) == ()


def test_at_most_max_visible_newest_last() -> None:
    toasts = Toasts(max_visible=3)
    for i in range(5):
        toasts.add(f"t{i}", float(i))
    assert toasts.visible(10.0) == ("t2", "t3", "t4")


def test_toasts_reject_bad_settings() -> None:
    with pytest.raises(ValueError):
        Toasts(duration_ms=0.0)
    with pytest.raises(ValueError):
        Toasts(max_visible=0)


# --- initials -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("Ada Lovelace", "AL"),
    ("ada lovelace byron", "AL"),
    ("bot-7", "B7"),
    ("living_room.tv", "LR"),
    ("alice", "A"),
    ("  Émile   zola ", "ÉZ"),
    ("(Ada) (Lovelace)", "AL"),
    ("straße", "S"),
    ("", "?"),
    ("--- ...", "?"),
    ("🎉", "?"),
])
def test_initials(name: str, expected: str) -> None:
    assert initials(name) == expected


@given(st.text(max_size=40))
def test_initials_are_short_and_never_empty(name: str) -> None:
    out = initials(name)
    assert 1 <= len(out) <= 2
    assert out == "?" or all(c.isalnum() for c in out)
