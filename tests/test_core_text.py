"""The one rule for human-readable text (tvapp.core.text)."""

from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.text import (
    MAX_NAME_CHARS,
    allowed_char,
    displayable,
    screen_label,
    text_problem,
)


def test_ordinary_names_follow_the_rule() -> None:
    for name in ("", "Ann", "Zoë Müller", "李小龍", "Den TV (2)", "👨\u200d👩\u200d👧 family", "a" * MAX_NAME_CHARS):
        assert text_problem(name) is None, name


def test_control_format_and_separator_characters_are_refused_without_echoing_the_text() -> None:
    for bad in ("\x00", "a\x00b", "tab\there", "line\nbreak", "\x1b[31mred", "evil\u202ereversed", "zero\u200bwidth",
                "\ud800", "\u2028", "\ue000private", "\x7f"):
        problem = text_problem(bad)
        assert problem is not None and "control or invisible" in problem
        assert bad not in problem


def test_length_and_type() -> None:
    assert text_problem("a" * (MAX_NAME_CHARS + 1)) == f"must be at most {MAX_NAME_CHARS} characters"
    assert text_problem("a" * 200, max_chars=200) is None
    assert text_problem(12) == "must be a string"


@given(st.text(max_size=300))
def test_displayable_always_follows_the_rule(text: str) -> None:
    shown = displayable(text)
    assert text_problem(shown) is None
    assert all(allowed_char(c) for c in shown)


def test_displayable_keeps_good_text_and_drops_the_rest() -> None:
    assert displayable("Ann") == "Ann"
    assert displayable("A\x00n\x1bn") == "Ann"
    assert displayable("x" * 100, max_chars=10) == "x" * 9 + "…"


def test_a_shared_screen_is_labelled_after_its_sharer_by_the_same_rule() -> None:
    assert screen_label("Ann") == "Ann's screen"
    assert screen_label("Ev\u202eil") == "Evil's screen"  # the name follows the rule first
    assert screen_label("x" * 100) == "x" * (MAX_NAME_CHARS - 1) + "…'s screen"
