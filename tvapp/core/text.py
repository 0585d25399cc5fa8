"""Human-readable text from strangers: one rule for every name a person types and other people read.

Display names (REST tokens and invite redemption, the token's `name` claim), track names and titles reach
other people's screens: the phone client, the TV's pygame renderer, logs. The rule, in one place:

- a name is at most `MAX_NAME_CHARS` characters (titles and other texts pass their own limit);
- every character is printable: no control characters (NUL, escape, newline, tab...), no format characters
  (bidi overrides such as U+202E that reverse what a reader sees, zero-width spaces), no surrogates, no
  private-use or unassigned code points, no line or paragraph separators. The one exception is the zero-width
  joiner U+200D, without which family and profession emoji fall apart;
- the empty name is allowed (the identity is shown instead).

`screen_label()` names a shared screen after its sharer ("Ann's screen"), wherever a person reads it.

`text_problem()` says what is wrong with a text, for an error message that never repeats the text;
`displayable()` turns any text, including one that broke the rule on its way in (an old token, a newer peer), into
one a renderer can draw: characters the rule refuses are dropped and the result is cut to a length.
"""

from __future__ import annotations

from typing import Final

MAX_NAME_CHARS: Final = 64
ZERO_WIDTH_JOINER: Final = "\u200d"


def allowed_char(char: str) -> bool:
    """Return whether one character may appear in a human-readable text."""
    return char.isprintable() or char == ZERO_WIDTH_JOINER


def text_problem(text: object, max_chars: int = MAX_NAME_CHARS) -> str | None:
    """Return what makes `text` unfit to show people (never quoting it), or None when it follows the rule."""
    if not isinstance(text, str):
        return "must be a string"
    if len(text) > max_chars:
        return f"must be at most {max_chars} characters"
    for char in text:
        if not allowed_char(char):
            return f"must not contain control or invisible characters (U+{ord(char):04X})"
    return None


def displayable(text: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """Return `text` without the characters the rule refuses, cut to `max_chars` characters (with an ellipsis)."""
    cleaned = "".join(char for char in text if allowed_char(char))
    if len(cleaned) > max_chars:
        cleaned = cleaned[: max(0, max_chars - 1)] + "…"
    return cleaned


def screen_label(name: str) -> str:
    """Return the label of the screen `name` shares: "NAME's screen" (the name made displayable first)."""
    return f"{displayable(name)}'s screen"
