"""Draw a `Scene` on the TV's screen: room bar, participant tiles, toasts, and the idle/connecting/error screens.

Everything except the background lies inside the overscan-safe area (`Renderer.safe`). Sizes scale with the
screen height (`scale = height / 1080`) so the UI reads the same from the sofa at 720p and 1080p. Pixels are
the expensive part of a frame, so the renderer keeps them cached: text is rendered once per (text, size,
colour) into the display's pixel format (bounded LRU), initials cards once per tile size, and video comes
from each tile's VideoSource already converted to the size of its letterboxed rectangle.

The highlight colour marks the active speaker's tile and nothing else.

A pairing panel (`Scene.pairing`) is a card drawn last, centred in the safe area over whatever screen is
showing: the one-time code in digit groups and the QR code (tvapp.tv.qr). The card without its countdown is
one cached surface per (code, url, requester), so a frame costs one blit plus the countdown text; where its
parts went is in `Renderer.pairing` (a `PairingLayout`) for the screenshot sidecar.
"""

from __future__ import annotations

import colorsys
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import pygame

from tvapp.core.layout import Mode, Rect, fit, safe_area, tiles
from tvapp.tv.qr import qr_surface
from tvapp.tv.scene import (
    ConnectingScreen,
    ContentView,
    ErrorScreen,
    IdleScreen,
    PairingPanel,
    RoomScreen,
    Scene,
    TileView,
)

Color = tuple[int, int, int]
_Blits = list[tuple[pygame.Surface, pygame.Rect]]
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
CARD_CACHE = 24


class _Lru(OrderedDict[Hashable, T]):
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


def card_color(sid: str) -> Color:
    """Return the initials card colour of a participant: stable per sid, muted (never the highlight)."""
    hue = (zlib.crc32(sid.encode()) % 360) / 360
    r, g, b = colorsys.hsv_to_rgb(hue, 0.5, 0.7)
    return (round(r * 255), round(g * 255), round(b * 255))


def grouped(code: str) -> str:
    """Return a pairing code as shown: digits in groups of three ("483920" -> "483 920"), or four when that fits."""
    size = 4 if len(code) % 4 == 0 and len(code) % 3 != 0 else 3
    return " ".join(code[i:i + size] for i in range(0, len(code), size))


def countdown(seconds_left: int) -> str:
    """Return the expiry line for a pairing code, e.g. "Code expires in 1:45"."""
    seconds = max(0, seconds_left)
    return f"Code expires in {seconds // 60}:{seconds % 60:02d}"


@dataclass(frozen=True)
class PairingLayout:
    """Where the last draw put the pairing panel: the card, the QR code (quiet zone included) and the code."""

    rect: Rect
    qr_rect: Rect
    qr_module_px: int                   # every module is this many pixels square
    qr_modules: int                     # modules across, quiet zone included
    code: str                           # exactly as shown, e.g. "483 920"
    code_rect: Rect
    expiry: str

    def to_json(self) -> dict[str, Any]:
        """Return the layout as the screenshot sidecar's "pairing" entry (rects as [x, y, w, h])."""
        def box(rect: Rect) -> list[int]:
            return [rect.x, rect.y, rect.w, rect.h]
        return {"rect": box(self.rect), "qr_rect": box(self.qr_rect), "qr_module_px": self.qr_module_px,
                "qr_modules": self.qr_modules, "code": self.code, "code_rect": box(self.code_rect),
                "expiry": self.expiry}


@dataclass(frozen=True)
class _PairingCard:
    """A pairing card rendered without its countdown, with its parts' positions relative to the card."""

    surface: pygame.Surface
    texts: tuple[Rect, ...]             # title, requester, code, caption lines
    code_rect: Rect
    qr_rect: Rect
    qr_module_px: int
    qr_modules: int
    expiry_center: tuple[int, int]


def _to_pygame(rect: Rect) -> pygame.Rect:
    return pygame.Rect(rect.x, rect.y, rect.w, rect.h)


def _from_pygame(rect: pygame.Rect) -> Rect:
    return Rect(rect.x, rect.y, rect.w, rect.h)


class Renderer:
    """Draw Scenes onto one surface (the display's); remembers where things went in the last draw."""

    highlight_color: Color = (255, 190, 0)

    def __init__(self, surface: pygame.Surface, margin: float = 0.05) -> None:
        self.surface = surface
        self.margin = margin
        width, height = surface.get_size()
        self.screen = Rect(0, 0, width, height)
        self.safe: Rect = safe_area(width, height, margin)
        self.scale = height / 1080
        self.outline = max(6, round(8 * self.scale))
        self.tile_rects: dict[str, Rect] = {}
        self.video_rects: dict[str, Rect] = {}
        self.text_rects: list[Rect] = []
        self.content_rect: Rect | None = None
        self.content_video_rect: Rect | None = None
        self.pairing: PairingLayout | None = None
        self._fonts: dict[int, pygame.font.Font] = {}
        self._texts: _Lru[pygame.Surface] = _Lru(TEXT_CACHE)
        self._fitted: _Lru[str] = _Lru(TEXT_CACHE)
        self._wrapped: _Lru[tuple[str, ...]] = _Lru(64)
        self._cards: _Lru[pygame.Surface] = _Lru(CARD_CACHE)
        self._qr_codes: _Lru[tuple[pygame.Surface, int]] = _Lru(2)
        self._pairing_cards: _Lru[_PairingCard] = _Lru(2)
        if not pygame.font.get_init():
            pygame.font.init()

    def px(self, size: float) -> int:
        """Return a 1080-line size scaled to this screen, at least 1 px."""
        return max(1, round(size * self.scale))

    def draw(self, scene: Scene, now: float | None = None) -> None:
        """Draw the whole scene onto the surface (the caller flips)."""
        now = time.monotonic() if now is None else now
        self.tile_rects, self.video_rects, self.text_rects = {}, {}, []
        self.content_rect = None
        self.content_video_rect = None
        self.pairing = None
        screen = scene.screen
        if isinstance(screen, RoomScreen):
            self._room(screen)
        else:
            self.surface.fill(BACKGROUND)
        if isinstance(screen, IdleScreen):
            self._idle(screen)
        elif isinstance(screen, ConnectingScreen):
            self._connecting(screen, now)
        elif isinstance(screen, ErrorScreen):
            self._error(screen)
        self._toasts(scene.toasts)
        if scene.pairing is not None:
            self._pairing(scene.pairing)

    # --- text -------------------------------------------------------------------------------------------

    def _font(self, size: int) -> pygame.font.Font:
        font = self._fonts.get(size)
        if font is None:
            font = self._fonts[size] = pygame.font.Font(None, size)
        return font

    def _rendered(self, text: str, size: int, color: Color, bg: Color) -> pygame.Surface:
        def make() -> pygame.Surface:
            # Rendered onto its known background and converted: blitting it is a plain copy, not a blend.
            return self._font(size).render(text, True, color, bg).convert(self.surface)
        return self._texts.get_or_make((text, size, color, bg), make)

    def _fit(self, text: str, size: int, max_w: int) -> str:
        """Return `text`, shortened with an ellipsis when it is wider than max_w."""
        def make() -> str:
            font = self._font(size)
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

    def _wrap(self, text: str, size: int, max_w: int) -> tuple[str, ...]:
        """Return `text` broken into lines no wider than max_w (a too-long word is shortened)."""
        def make() -> tuple[str, ...]:
            font = self._font(size)
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
            return tuple(self._fit(one, size, max_w) for one in lines)
        return self._wrapped.get_or_make((text, size, max_w), make)

    def _text(self, text: str, size: int, color: Color, bg: Color, later: _Blits | None = None,
              **anchor: tuple[int, int] | int) -> Rect:
        """Blit text placed by a pygame.Rect anchor (e.g. midtop=(x, y)), or add it to `later`; return its rect."""
        if not text:
            return Rect(0, 0, 0, 0)
        rendered = self._rendered(text, size, color, bg)
        where = rendered.get_rect(**anchor)
        if later is None:
            self.surface.blit(rendered, where)
        else:
            later.append((rendered, where))
        rect = _from_pygame(where)
        self.text_rects.append(rect)
        return rect

    def _line_height(self, size: int) -> int:
        return self._font(size).get_linesize()

    # --- room -------------------------------------------------------------------------------------------

    def _room(self, screen: RoomScreen) -> None:
        if screen.mode is Mode.WATCH_FULL and screen.content is not None:
            self._room_full(screen, screen.content)
            return
        bar: _Blits = []
        bar_bottom = self._room_bar(screen, bar)
        gap = self.px(24)
        area = Rect(self.safe.x, bar_bottom + gap, self.safe.w, max(1, self.safe.bottom - bar_bottom - gap))
        mode = screen.mode if screen.mode is not Mode.WATCH_FULL else Mode.WATCH
        if screen.tiles:
            speaking = next((i for i, tile in enumerate(screen.tiles) if tile.speaking), 0)
            layout = tiles(len(screen.tiles), self.screen, area, mode, speaker=speaking)
        else:
            layout = tiles(0, self.screen, area, mode)
        painted = list(layout.tiles[:len(screen.tiles)])
        self._fill_except(painted + ([layout.content] if layout.content else []))
        self.surface.blits(bar, doreturn=False)
        self._content(layout.content, screen.content)
        if not screen.tiles:
            if screen.content is not None and layout.content is not None:
                return
            bg = BACKGROUND
            if self.content_rect is not None:
                area, bg = self.content_rect, CONTENT_BACKGROUND
            size = self.px(TITLE)
            for i, line in enumerate(self._wrap(screen.waiting_text, size, area.w)):
                self._text(line, size, DIM_TEXT, bg,
                           center=(area.x + area.w // 2, area.y + area.h // 2 + i * self._line_height(size)))
            return
        for tile, rect in zip(screen.tiles, layout.tiles):
            self._tile(tile, rect)

    def _room_full(self, screen: RoomScreen, content: ContentView) -> None:
        """The content on the whole screen, the call as picture-in-picture tiles over its bottom right corner."""
        speaking = next((i for i, tile in enumerate(screen.tiles) if tile.speaking), 0)
        layout = tiles(len(screen.tiles), self.screen, self.safe, Mode.WATCH_FULL,
                       speaker=speaking if screen.tiles else None)
        self._content(layout.content, content)
        for tile, rect in zip(screen.tiles, layout.tiles):
            self._tile(tile, rect)

    def _fill_except(self, painted: list[Rect]) -> None:
        """Fill the background everywhere but the (non-overlapping) rects that get painted over anyway."""
        width, height = self.surface.get_size()
        edges = sorted({0, height, *(r.y for r in painted), *(r.bottom for r in painted)})
        for top, bottom in zip(edges, edges[1:]):
            spans = sorted((r.x, r.right) for r in painted if r.y <= top and r.bottom >= bottom)
            x = 0
            for left, right in spans + [(width, width)]:
                if left > x:
                    self.surface.fill(BACKGROUND, (x, top, left - x, bottom - top))
                x = max(x, right)

    def _content(self, rect: Rect | None, content: ContentView | None = None) -> None:
        if rect is None:
            return
        self.content_rect = rect
        shown = self._content_video(rect, content) if content is not None else None
        if shown is None:
            self.surface.fill(CONTENT_BACKGROUND, _to_pygame(rect))
        else:
            self.content_video_rect = shown
            self._fill_around_with(rect, shown, CONTENT_BACKGROUND)
        if content is None:
            return
        status = content.status if shown is not None or content.status else "Loading…"
        if status:
            inner = rect if rect != self.screen else self.safe
            size = self.px(TITLE)
            line = self._fit(f"{content.title}  ·  {status}" if content.title else status, size,
                             max(1, inner.w - self.px(40)))
            text = self._rendered(line, size, TEXT, PILL)
            pill = pygame.Rect(0, 0, text.get_width() + self.px(48), text.get_height() + self.px(20))
            pill.midtop = (inner.x + inner.w // 2, inner.y + self.px(24))
            pygame.draw.rect(self.surface, PILL, pill, border_radius=pill.h // 2)
            self._text(line, size, TEXT, PILL, center=pill.center)

    def _content_video(self, rect: Rect, content: ContentView) -> Rect | None:
        """Blit the content's current frame letterboxed into rect; return where, or None when there is none."""
        video = content.video
        size = video.frame_size() if video is not None else None
        if video is None or size is None or min(size) <= 0:
            return None
        box = fit(size[0], size[1], rect)
        width = box.w - box.w % 2
        if width <= 0 or box.h <= 0:
            return None
        frame = video.surface(width, box.h)
        if frame is None:
            return None
        shown = Rect(box.x + (box.w - width) // 2, box.y, width, box.h)
        self.surface.blit(frame, (shown.x, shown.y))
        return shown

    def _room_bar(self, screen: RoomScreen, later: _Blits) -> int:
        """Lay out the room bar at the top of the safe area into `later`; return the y just below it."""
        bar = screen.bar
        safe = self.safe
        title, body, code = self.px(TITLE), self.px(BODY), self.px(CODE)
        right = safe.right
        code_w = 0
        if bar.invite_code:
            code_rect = self._text(self._fit(bar.invite_code, code, safe.w // 2), code, TEXT, BACKGROUND, later,
                                   topright=(right, safe.y))
            label = self._text("Code", body, DIM_TEXT, BACKGROUND, later,
                               bottomright=(code_rect.x - self.px(20), code_rect.bottom - self.px(10)))
            code_w = code_rect.right - label.x + self.px(40)
            bottom = code_rect.bottom
        else:
            bottom = safe.y
        left_w = max(1, safe.w - code_w)
        name = self._text(self._fit(bar.room, title, left_w), title, TEXT, BACKGROUND, later,
                          topleft=(safe.x, safe.y))
        people = f"{bar.participants} {'person' if bar.participants == 1 else 'people'} in the room"
        details = f"{people}  ·  {bar.join_hint}" if bar.join_hint else people
        line = self._text(self._fit(details, body, left_w), body, DIM_TEXT, BACKGROUND, later,
                          topleft=(safe.x, name.bottom + self.px(6)))
        return max(bottom, line.bottom)

    def _tile(self, tile: TileView, rect: Rect) -> None:
        self.tile_rects[tile.sid] = rect
        if not self._video(tile, rect):
            self.surface.blit(self._card(tile, rect), (rect.x, rect.y))
        self._tile_overlays(tile, rect)
        if tile.speaking:
            pygame.draw.rect(self.surface, self.highlight_color, _to_pygame(rect), width=self.outline)

    def _video(self, tile: TileView, rect: Rect) -> bool:
        """Blit the tile's video letterboxed in rect (bars filled); return False when there is none to show."""
        if tile.video is None or tile.camera_off:
            return False
        size = tile.video.frame_size()
        if size is None or min(size) <= 0:
            return False
        box = fit(size[0], size[1], rect)
        width = box.w - box.w % 2  # even widths keep libswscale on its fast path (see tvapp.tv.video)
        if width <= 0 or box.h <= 0:
            return False
        frame = tile.video.surface(width, box.h)
        if frame is None:
            return False
        video = Rect(box.x + (box.w - width) // 2, box.y, width, box.h)
        self._fill_around(rect, video)
        self.surface.blit(frame, (video.x, video.y))
        self.video_rects[tile.sid] = video
        return True

    def _fill_around(self, outer: Rect, inner: Rect) -> None:
        """Fill the parts of outer not covered by inner (the letterbox bars) with the tile background."""
        self._fill_around_with(outer, inner, TILE_BACKGROUND)

    def _fill_around_with(self, outer: Rect, inner: Rect, color: Color) -> None:
        """Fill the parts of outer not covered by inner with `color`."""
        bars = (Rect(outer.x, outer.y, outer.w, inner.y - outer.y),
                Rect(outer.x, inner.bottom, outer.w, outer.bottom - inner.bottom),
                Rect(outer.x, inner.y, inner.x - outer.x, inner.h),
                Rect(inner.right, inner.y, outer.right - inner.right, inner.h))
        for bar in bars:
            if bar.w > 0 and bar.h > 0:
                self.surface.fill(color, _to_pygame(bar))

    def _card(self, tile: TileView, rect: Rect) -> pygame.Surface:
        """Return the camera-off card for a tile: a coloured circle with the initials, on the tile background."""
        radius = max(4, round(min(rect.w, rect.h) * 0.24))
        size = max(8, round(radius * 1.3))
        initials = tile.initials or "?"

        def make() -> pygame.Surface:
            card = pygame.Surface(rect.size).convert(self.surface)
            card.fill(TILE_BACKGROUND)
            color = card_color(tile.sid)
            center = (rect.w // 2, rect.h // 2)
            pygame.draw.circle(card, color, center, radius)
            pygame.draw.aacircle(card, color, center, radius)
            text = self._font(size).render(initials, True, TEXT, color).convert(self.surface)
            card.blit(text, text.get_rect(center=center))
            return card

        card = self._cards.get_or_make((tile.sid, initials, rect.size), make)
        text_w, text_h = self._font(size).size(initials)
        self.text_rects.append(Rect(rect.x + (rect.w - text_w) // 2, rect.y + (rect.h - text_h) // 2,
                                    text_w, text_h))
        return card

    def _tile_overlays(self, tile: TileView, rect: Rect) -> None:
        """Draw the name label, the mic-muted icon and the quality badge, clear of the tile's middle."""
        inset = self.outline + self.px(10)
        size = min(self.px(BODY), max(10, rect.h // 4))
        line = self._line_height(size)
        pad_x, pad_y = self.px(14), self.px(6)
        pill_h = line + 2 * pad_y
        top = rect.bottom - inset - pill_h
        if top <= rect.y + rect.h // 2 + 2:
            return  # too small a tile for a label that keeps off the video's middle
        icon_w = pill_h + self.px(8) if tile.mic_muted else 0
        name = self._fit(tile.name, size, rect.w - 2 * inset - 2 * pad_x - icon_w)
        x = rect.x + inset
        if name:
            text_w = self._rendered(name, size, TEXT, PILL).get_width()
            pill = pygame.Rect(x, top, text_w + 2 * pad_x, pill_h)
            pygame.draw.rect(self.surface, PILL, pill, border_radius=pill_h // 2)
            self._text(name, size, TEXT, PILL, midleft=(pill.x + pad_x, pill.centery))
            x = pill.right + self.px(8)
        if tile.mic_muted:
            self._mic_muted(pygame.Rect(x, top, pill_h, pill_h))
        if tile.quality is not None:
            badge_h = min(self.px(40), rect.h // 5)
            badge = pygame.Rect(0, 0, round(badge_h * 1.25), badge_h)
            badge.topright = (rect.right - inset, rect.y + inset)
            self._quality(badge, tile.quality)

    def _mic_muted(self, box: pygame.Rect) -> None:
        """Draw a red microphone with a slash through it on a dark disc filling box."""
        pygame.draw.circle(self.surface, PILL, box.center, box.w // 2)
        unit = box.w / 10
        cx, cy = box.centerx, box.centery
        width = max(2, round(unit * 0.8))
        capsule = pygame.Rect(0, 0, round(unit * 3), round(unit * 4.4))
        capsule.midbottom = (cx, round(cy + unit * 0.6))
        pygame.draw.rect(self.surface, RED, capsule, border_radius=capsule.w // 2)
        cup = pygame.Rect(0, 0, round(unit * 5), round(unit * 4.6))
        cup.midbottom = (cx, round(cy + unit * 2.2))
        pygame.draw.arc(self.surface, RED, cup, 3.3, 6.12, width)
        pygame.draw.line(self.surface, RED, (cx, cup.bottom), (cx, round(cy + unit * 3.4)), width)
        pygame.draw.line(self.surface, RED, (round(cx - unit * 1.6), round(cy + unit * 3.4)),
                         (round(cx + unit * 1.6), round(cy + unit * 3.4)), width)
        pygame.draw.line(self.surface, RED, (round(cx - unit * 3), round(cy - unit * 3)),
                         (round(cx + unit * 3), round(cy + unit * 3)), max(2, round(unit)))

    def _quality(self, badge: pygame.Rect, level: int) -> None:
        """Draw a connection-quality badge: `level` of 3 bars lit, green (3), yellow (2) or red (0-1)."""
        pygame.draw.rect(self.surface, PILL, badge, border_radius=max(2, badge.h // 4))
        lit = {3: GREEN, 2: YELLOW}.get(level, RED)
        pad = max(2, badge.h // 6)
        inner = badge.inflate(-2 * pad, -2 * pad)
        bar_w = max(1, (inner.w - 2 * pad) // 3)
        for i in range(3):
            h = max(2, round(inner.h * (i + 1) / 3))
            bar = pygame.Rect(inner.x + i * (bar_w + pad), inner.bottom - h, bar_w, h)
            pygame.draw.rect(self.surface, lit if i < level else EMPTY_BAR, bar)

    # --- other screens and overlays ---------------------------------------------------------------------

    def _column(self, lines: list[tuple[str, int, Color]], spacing: int) -> None:
        """Draw lines centred horizontally, the block centred vertically in the safe area."""
        safe = self.safe
        fitted = [(self._fit(text, size, safe.w), size, color) for text, size, color in lines if text]
        heights = [self._line_height(size) for _, size, _ in fitted]
        total = sum(heights) + spacing * max(0, len(fitted) - 1)
        y = max(safe.y, safe.y + (safe.h - total) // 2)
        for (text, size, color), h in zip(fitted, heights):
            if y + h > safe.bottom:
                break
            self._text(text, size, color, BACKGROUND, midtop=(safe.x + safe.w // 2, y))
            y += h + spacing

    def _idle(self, screen: IdleScreen) -> None:
        body = self.px(BODY)
        lines: list[tuple[str, int, Color]] = [(screen.clock, self.px(CLOCK), TEXT),
                                               (screen.date, self.px(TITLE), DIM_TEXT),
                                               ("", 0, TEXT),
                                               (screen.friendly_name, self.px(TITLE), TEXT)]
        lines += [(line, body, DIM_TEXT) for line in screen.how_to_join]
        self._column(lines, self.px(16))

    def _connecting(self, screen: ConnectingScreen, now: float) -> None:
        safe = self.safe
        size = self.px(TITLE)
        lines = self._wrap(screen.text, size, safe.w)
        line_h = self._line_height(size)
        top = safe.y + safe.h // 2 - line_h * len(lines)
        for i, line in enumerate(lines):
            self._text(line, size, TEXT, BACKGROUND, midtop=(safe.x + safe.w // 2, top + i * line_h))
        radius, step = self.px(12), self.px(44)
        active = int(now * 3) % 3
        y = top + len(lines) * line_h + self.px(48)
        for i in range(3):
            color = TEXT if i == active else EMPTY_BAR
            pygame.draw.circle(self.surface, color, (safe.x + safe.w // 2 + (i - 1) * step, y), radius)

    def _error(self, screen: ErrorScreen) -> None:
        safe = self.safe
        lines: list[tuple[str, int, Color]] = [(screen.title, self.px(ERROR_TITLE), RED)]
        lines += [(line, self.px(MESSAGE), TEXT) for line in self._wrap(screen.message, self.px(MESSAGE), safe.w)]
        lines += [(line, self.px(BODY), DIM_TEXT) for line in self._wrap(screen.hint, self.px(BODY), safe.w)]
        self._column(lines, self.px(14))
        if self.text_rects:
            title = self.text_rects[0]
            accent = pygame.Rect(0, 0, min(title.w, self.px(160)), self.px(8))
            accent.midbottom = (title.x + title.w // 2, title.y - self.px(12))
            pygame.draw.rect(self.surface, RED, accent)

    def _toasts(self, toasts: tuple[str, ...]) -> None:
        """Draw toasts as dark pills stacked up from the bottom centre of the safe area, newest lowest."""
        if not toasts:
            return
        safe = self.safe
        size = self.px(BODY)
        pad_x, pad_y, gap = self.px(28), self.px(10), self.px(12)
        pill_h = self._line_height(size) + 2 * pad_y
        fits = max(0, (safe.h + gap) // (pill_h + gap))
        newest = toasts[len(toasts) - fits:] if fits else ()
        shown = [text for text in (self._fit(toast, size, safe.w - 2 * pad_x) for toast in newest) if text]
        y = safe.bottom - len(shown) * (pill_h + gap) + gap
        for text in shown:
            text_w = self._rendered(text, size, TEXT, PILL).get_width()
            pill = pygame.Rect(0, 0, text_w + 2 * pad_x, pill_h)
            pill.midtop = (safe.x + safe.w // 2, y)
            pygame.draw.rect(self.surface, PILL, pill, border_radius=pill_h // 2)
            self._text(text, size, TEXT, PILL, center=pill.center)
            y = pill.bottom + gap

    # --- pairing ----------------------------------------------------------------------------------------

    def _qr(self, url: str, max_width: int) -> tuple[pygame.Surface, int]:
        """Return the QR code surface for url and its pixels per module (made once per url and width)."""
        return self._qr_codes.get_or_make((url, max_width), lambda: qr_surface(url, max_width, self.surface))

    def _pairing(self, panel: PairingPanel) -> None:
        """Blit the pairing card centred in the safe area, then its countdown; record where it all went."""
        card = self._pairing_cards.get_or_make((panel.code, panel.url, panel.requester),
                                               lambda: self._pairing_card(panel))
        safe = self.safe
        where = card.surface.get_rect(center=(safe.x + safe.w // 2, safe.y + safe.h // 2))
        self.surface.blit(card.surface, where)

        def moved(rect: Rect) -> Rect:
            return Rect(rect.x + where.x, rect.y + where.y, rect.w, rect.h)

        self.text_rects.extend(moved(rect) for rect in card.texts)
        expiry = countdown(panel.seconds_left)
        cx, cy = card.expiry_center
        self._text(expiry, self.px(BODY), DIM_TEXT, CARD, center=(where.x + cx, where.y + cy))
        self.pairing = PairingLayout(rect=_from_pygame(where), qr_rect=moved(card.qr_rect),
                                     qr_module_px=card.qr_module_px, qr_modules=card.qr_modules,
                                     code=grouped(panel.code), code_rect=moved(card.code_rect), expiry=expiry)

    def _pairing_card(self, panel: PairingPanel) -> _PairingCard:
        """Render the card: title, requester, code and expiry space on the left; QR code and caption right."""
        safe = self.safe
        pad, gap, line_gap = self.px(56), self.px(72), self.px(14)
        title, body, big = self.px(TITLE), self.px(BODY), self.px(PAIR_CODE)
        body_h = self._line_height(body)
        caption_w = self.px(QR_WIDTH)
        caption = self._wrap("Or scan this code with the phone's camera", body, caption_w)
        qr_room = safe.h - 2 * pad - len(caption) * body_h - line_gap
        qr, unit = self._qr(panel.url, max(1, min(self.px(QR_WIDTH), qr_room)))
        qr_w = qr.get_width()
        right_w = max(qr_w, max((self._font(body).size(line)[0] for line in caption), default=0))
        left_max = max(1, safe.w - 2 * pad - gap - right_w)
        left: list[tuple[str, int, Color, int]] = [(self._fit("Pair a phone", title, left_max), title, TEXT, 0)]
        if panel.requester:
            left.append((self._fit(panel.requester, body, left_max), body, DIM_TEXT, line_gap))
        left.append((self._fit(grouped(panel.code), big, left_max), big, TEXT, self.px(24)))
        widths = [self._font(size).size(text)[0] for text, size, _, _ in left]
        left_w = max(widths + [self._font(body).size(countdown(59 * 60 + 59))[0]])
        left_h = sum(self._line_height(size) + space for _, size, _, space in left) + self.px(24) + body_h
        right_h = qr.get_height() + line_gap + len(caption) * body_h
        width = min(safe.w, 2 * pad + left_w + gap + right_w)
        height = min(safe.h, 2 * pad + max(left_h, right_h))

        surface = pygame.Surface((width, height)).convert(self.surface)
        surface.fill(CARD_KEY)
        radius = self.px(28)
        pygame.draw.rect(surface, CARD, surface.get_rect(), border_radius=radius)
        pygame.draw.rect(surface, CARD_BORDER, surface.get_rect(), width=max(2, self.px(3)), border_radius=radius)
        surface.set_colorkey(CARD_KEY, pygame.RLEACCEL)

        texts: list[Rect] = []

        def put(text: str, size: int, color: Color, **anchor: tuple[int, int]) -> Rect:
            rendered = self._rendered(text, size, color, CARD)
            rect = rendered.get_rect(**anchor)
            surface.blit(rendered, rect)
            texts.append(_from_pygame(rect))
            return texts[-1]

        left_x = pad + left_w // 2
        y = (height - left_h) // 2
        code_rect = Rect(0, 0, 0, 0)
        for text, size, color, space in left:
            y += space
            rect = put(text, size, color, midtop=(left_x, y))
            if size == big:
                code_rect = rect
            y += self._line_height(size)
        expiry_center = (left_x, y + self.px(24) + body_h // 2)

        right_x = width - pad - right_w // 2
        top = (height - right_h) // 2
        qr_rect = qr.get_rect(midtop=(right_x, top))
        surface.blit(qr, qr_rect)
        y = qr_rect.bottom + line_gap
        for line in caption:
            put(line, body, DIM_TEXT, midtop=(right_x, y))
            y += body_h
        modules = qr_w // unit
        return _PairingCard(surface=surface, texts=tuple(texts), code_rect=code_rect, qr_rect=_from_pygame(qr_rect),
                            qr_module_px=unit, qr_modules=modules, expiry_center=expiry_center)
