"""Small pieces of state behind the TV's room screen: tile order, the speaker highlight, toasts, initials.

The TV's session keeps one of each per room and builds its Scene (tvapp.tv.scene) from them:
- `TileOrder`: who sits in which tile. Tiles are in join order (ties broken by sid), so when someone
  comes or goes the others keep their relative places and nobody jumps because somebody spoke.
- `SpeakerHighlight`: whose tile is outlined. It follows the server's dominant speaker at once, and when
  the server reports silence it keeps the last speaker outlined for `hold_ms` so pauses do not flicker.
- `Toasts`: short notices ("Alice joined") that fade after `duration_ms`.
- `initials`: the letters on the card shown when a camera is off.
"""

from __future__ import annotations

import re
from collections import deque


class TileOrder:
    """Participants in tile order: by join time, ties by sid."""

    def __init__(self) -> None:
        self._joined: dict[str, float] = {}
        self._order: tuple[str, ...] = ()

    def add(self, sid: str, joined_at: float) -> None:
        """Add a participant who joined at `joined_at`; a sid already present keeps its place."""
        if sid in self._joined:
            return
        self._joined[sid] = joined_at
        self._order = tuple(sorted(self._joined, key=lambda s: (self._joined[s], s)))

    def remove(self, sid: str) -> None:
        """Remove a participant (unknown sids are ignored)."""
        if self._joined.pop(sid, None) is not None:
            self._order = tuple(s for s in self._order if s != sid)

    def order(self) -> tuple[str, ...]:
        """Return the sids in tile order."""
        return self._order

    def index(self, sid: str) -> int | None:
        """Return `sid`'s tile index, or None if it is not here."""
        return self._order.index(sid) if sid in self._joined else None

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, sid: object) -> bool:
        return sid in self._joined


class SpeakerHighlight:
    """Whose tile carries the active-speaker outline, following the server without flicker."""

    def __init__(self, hold_ms: float = 1500.0) -> None:
        if hold_ms < 0:
            raise ValueError(f"hold_ms cannot be negative, got {hold_ms}")
        self.hold_ms = hold_ms
        self._sid: str | None = None
        self._silent_since: float | None = None

    def update(self, dominant_sid: str | None, now_ms: float) -> None:
        """Take the server's dominant speaker at `now_ms` (None: nobody is speaking)."""
        if dominant_sid is not None:
            self._sid = dominant_sid
            self._silent_since = None
        elif self._sid is not None and self._silent_since is None:
            self._silent_since = now_ms

    def current(self, now_ms: float) -> str | None:
        """Return the sid to highlight at `now_ms`, or None."""
        if self._silent_since is not None and now_ms - self._silent_since >= self.hold_ms:
            self._sid = None
            self._silent_since = None
        return self._sid

    def remove(self, sid: str) -> None:
        """Drop the highlight at once if it is on `sid` (who left)."""
        if self._sid == sid:
            self._sid = None
            self._silent_since = None


class Toasts:
    """Short notices on screen: newest last, at most `max_visible`, each gone after `duration_ms`."""

    def __init__(self, duration_ms: float = 4000.0, max_visible: int = 3) -> None:
        if duration_ms <= 0:
            raise ValueError(f"duration_ms must be positive, got {duration_ms}")
        if max_visible < 1:
            raise ValueError(f"max_visible must be at least 1, got {max_visible}")
        self.duration_ms = duration_ms
        # Older toasts expire first, so one pushed out by newer ones could never show again: drop it.
        self._items: deque[tuple[str, float]] = deque(maxlen=max_visible)

    def add(self, text: str, now_ms: float) -> None:
        """Show `text` from `now_ms` on."""
        self._items.append((text, now_ms))

    def visible(self, now_ms: float) -> tuple[str, ...]:
        """Return the texts on screen at `now_ms`, newest last."""
        while self._items and now_ms - self._items[0][1] >= self.duration_ms:
            self._items.popleft()
        return tuple(text for text, _ in self._items)


_WORD_SEPARATORS = re.compile(r"[\s\-_.]+")


def initials(name: str) -> str:
    """Return up to two uppercase letters/digits from the first two words of `name` ("?" if none)."""
    letters = []
    for word in _WORD_SEPARATORS.split(name):
        first = next((c for c in word if c.isalnum()), None)
        if first is not None:
            letters.append(first.upper()[0])
        if len(letters) == 2:
            break
    return "".join(letters) or "?"
