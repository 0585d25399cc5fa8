"""How the TV's screen is painted: its colours and text sizes, and a `Painter` that renders, fits and places text.

tvapp.tv.render (the scene), tvapp.tv.tiles (a participant's tile) and tvapp.tv.pairing_card (the pairing card)
draw with one Painter per screen surface; `fill_around` fills letterbox bars.
Pixels are the expensive part of a frame, so text is rendered once per (text, size, colour, background) into
the display's pixel format and kept in a bounded LRU, like fitted and wrapped lines. Sizes are given at 1080
lines and scaled to the screen (`px`). Every text placed through `text()` is recorded in `text_rects`, which
tests use to check that nothing is drawn outside the overscan-safe area. Every text goes through `shown()`
(tvapp.core.text's rule) before pygame sees it: a name with a NUL byte or a control character, from a newer
peer or an old token, is drawn without them instead of making pygame raise.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import pygame

from tvapp.core.layout import Rect
from tvapp.core.text import displayable

Color = tuple[int, int, int]
Blits = list[tuple[pygame.Surface, pygame.Rect]]
T = TypeVar("T")

BACKGROUND: Color = (14, 16, 22)
TILE_BACKGROUND: Color = (30, 33, 42)
CONTENT_BACKGROUND: Color = (4, 4, 6)
PILL: Color = (8, 9, 12)
TEXT: Color = (240, 241, 244)
DIM_TEXT: Color = (160, 166, 178)
RED: Color = (228, 60, 56)
GREEN: Color = (70, 180, 90)
YELLOW: Color = (232, 204, 60)
EMPTY_BAR: Color = (80, 84, 96)
CARD: Color = (34, 38, 50)
CARD_BORDER: Color = (96, 102, 118)
CARD_KEY: Color = (255, 0, 255)     # the card surface's transparent corners

# Sizes are pygame default-font sizes at 1080 lines. That font's cap height is size / 2 and its line height
# size * 0.75, so BODY (48) draws 36 px lines with 24 px capitals: a 32 px-class font on a 1080p screen.
BODY = 48
TITLE = 64
CODE = 112          # the invite code: ~80 px lines, read from across the room
CLOCK = 300
ERROR_TITLE = 96
MESSAGE = 56
PAIR_CODE = 220     # the pairing code: ~110 px digits at 1080p, read from the sofa
QR_WIDTH = 440      # the QR code's widest (quiet zone included): >= ~300 px at 1080p scans from 3 m
TEXT_CACHE = 256
MAX_SHOWN_CHARS = 1024  # no text on a TV screen is longer; the longest are wrapped messages
CARD_CACHE = 24


class Lru(OrderedDict[Hashable, T]):
    """A bounded mapping that forgets the least recently used entry."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def get_or_make(self, key: Hashable, make: Callable[[], T]) -> T:
        """Return the cached value for `key`, making (and caching) it when absent."""
        try:
            self.move_to_end(key)
            return self[key]
        except KeyError:
            value = self[key] = make()
            if len(self) > self.capacity:
                self.popitem(last=False)
            return value


def shown(text: str) -> str:
    """Return `text` as the screen may draw it: tvapp.core.text's rule applied, cut to MAX_SHOWN_CHARS."""
    return displayable(text, MAX_SHOWN_CHARS)


def from_pygame(rect: pygame.Rect) -> Rect:
    """Return a pygame rectangle as a tvapp.core.layout.Rect."""
    return Rect(rect.x, rect.y, rect.w, rect.h)


def to_pygame(rect: Rect) -> pygame.Rect:
    """Return a tvapp.core.layout.Rect as a pygame rectangle."""
    return pygame.Rect(rect.x, rect.y, rect.w, rect.h)


def fill_around(surface: pygame.Surface, outer: Rect, inner: Rect, color: Color) -> None:
    """Fill the parts of `outer` not covered by `inner` with `color` (letterbox bars)."""
    bars = (Rect(outer.x, outer.y, outer.w, inner.y - outer.y),
            Rect(outer.x, inner.bottom, outer.w, outer.bottom - inner.bottom),
            Rect(outer.x, inner.y, inner.x - outer.x, inner.h),
            Rect(inner.right, inner.y, outer.right - inner.right, inner.h))
    for bar in bars:
        if bar.w > 0 and bar.h > 0:
            surface.fill(color, to_pygame(bar))


class Painter:
    """Text on one surface: fonts, cached renderings, fitting and wrapping, and where the text went."""

    def __init__(self, surface: pygame.Surface, scale: float) -> None:
        self.surface = surface
        self.scale = scale
        self.text_rects: list[Rect] = []
        self._fonts: dict[int, pygame.font.Font] = {}
        self.texts: Lru[pygame.Surface] = Lru(TEXT_CACHE)
        self._fitted: Lru[str] = Lru(TEXT_CACHE)
        self._wrapped: Lru[tuple[str, ...]] = Lru(64)
        if not pygame.font.get_init():
            pygame.font.init()

    def px(self, size: float) -> int:
        """Return a 1080-line size scaled to this screen, at least 1 px."""
        return max(1, round(size * self.scale))

    def font(self, size: int) -> pygame.font.Font:
        """Return the default font at `size` (made once)."""
        font = self._fonts.get(size)
        if font is None:
            font = self._fonts[size] = pygame.font.Font(None, size)
        return font

    def rendered(self, text: str, size: int, color: Color, bg: Color) -> pygame.Surface:
        """Return `text` rendered on `bg` in the surface's pixel format (cached per text, size and colours)."""
        def make() -> pygame.Surface:
            # Rendered onto its known background and converted: blitting it is a plain copy, not a blend.
            return self.font(size).render(shown(text), True, color, bg).convert(self.surface)
        return self.texts.get_or_make((text, size, color, bg), make)

    def size_of(self, text: str, size: int) -> tuple[int, int]:
        """Return the width and height `text` takes at `size` (as drawn: after the text rule)."""
        return self.font(size).size(shown(text))

    def fit(self, text: str, size: int, max_w: int) -> str:
        """Return `text` (after the text rule), shortened with an ellipsis when it is wider than max_w."""
        text = shown(text)

        def make() -> str:
            font = self.font(size)
            if font.size(text)[0] <= max_w:
                return text
            lo, hi = 0, len(text)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if font.size(text[:mid].rstrip() + "…")[0] <= max_w:
                    lo = mid
                else:
                    hi = mid - 1
            return text[:lo].rstrip() + "…" if lo else ""
        return self._fitted.get_or_make((text, size, max_w), make)

    def wrap(self, text: str, size: int, max_w: int) -> tuple[str, ...]:
        """Return `text` broken into lines no wider than max_w (a too-long word is shortened)."""
        text = shown(text)

        def make() -> tuple[str, ...]:
            font = self.font(size)
            lines: list[str] = []
            line = ""
            for word in text.split():
                candidate = f"{line} {word}" if line else word
                if line and font.size(candidate)[0] > max_w:
                    lines.append(line)
                    line = word
                else:
                    line = candidate
            if line:
                lines.append(line)
            return tuple(self.fit(one, size, max_w) for one in lines)
        return self._wrapped.get_or_make((text, size, max_w), make)

    def text(self, text: str, size: int, color: Color, bg: Color, later: Blits | None = None,
              **anchor: tuple[int, int] | int) -> Rect:
        """Blit text placed by a pygame.Rect anchor (e.g. midtop=(x, y)), or add it to `later`; return its rect."""
        if not text:
            return Rect(0, 0, 0, 0)
        rendered = self.rendered(text, size, color, bg)
        where = rendered.get_rect(**anchor)
        if later is None:
            self.surface.blit(rendered, where)
        else:
            later.append((rendered, where))
        rect = from_pygame(where)
        self.text_rects.append(rect)
        return rect

    def line_height(self, size: int) -> int:
        """Return the line height of the default font at `size`."""
        return self.font(size).get_linesize()
