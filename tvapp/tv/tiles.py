"""Draw one participant's tile: their video letterboxed (or an initials card), and what is drawn over it.

Over the picture: "Reconnecting…" or "Paused" across a dimmed tile, the name label and a mic-muted icon at the
bottom left, the network-quality badge (5 bars) at the top right, and the active speaker's outline. Initials cards
are cached per (sid, initials, size); video comes from the tile's VideoSource already at the letterboxed size.
Used by tvapp.tv.render.Renderer, which lays the tiles out and remembers where each went.
"""

from __future__ import annotations

import colorsys
import zlib

import pygame

from tvapp.core.layout import Rect, fit
from tvapp.tv.painter import (
    BODY,
    CARD_CACHE,
    EMPTY_BAR,
    GREEN,
    PILL,
    RED,
    TEXT,
    TILE_BACKGROUND,
    YELLOW,
    Color,
    Lru,
    Painter,
    fill_around,
    to_pygame,
)
from tvapp.tv.scene import PAUSED_TEXT, RECONNECTING_TEXT, TileView


def card_color(sid: str) -> Color:
    """Return the initials card colour of a participant: stable per sid, muted (never the highlight)."""
    hue = (zlib.crc32(sid.encode()) % 360) / 360
    r, g, b = colorsys.hsv_to_rgb(hue, 0.5, 0.7)
    return (round(r * 255), round(g * 255), round(b * 255))


class TilePainter:
    """Draws tiles onto one surface; keeps the initials cards it made (bounded)."""

    def __init__(self, surface: pygame.Surface, paint: Painter, outline: int) -> None:
        self.surface = surface
        self.paint = paint
        self.outline = outline  # the active speaker's outline width, px
        self._cards: Lru[pygame.Surface] = Lru(CARD_CACHE)

    def draw(self, tile: TileView, rect: Rect, highlight: Color) -> Rect | None:
        """Draw `tile` into `rect` (video or initials card, state, overlays, the speaker's outline in `highlight`);
        return where its video went (None: the card was drawn)."""
        video = self._video(tile, rect)
        if video is None:
            self.surface.blit(self._card(tile, rect), (rect.x, rect.y))
        if tile.reconnecting:
            self._reconnecting(rect)
        elif tile.paused:
            self._reconnecting(rect, PAUSED_TEXT)
        self._tile_overlays(tile, rect)
        if tile.speaking:
            pygame.draw.rect(self.surface, highlight, to_pygame(rect), width=self.outline)
        return video

    def _reconnecting(self, rect: Rect, what: str = RECONNECTING_TEXT) -> None:
        """Dim a tile whose participant is reconnecting (or whose video is paused) and say so across its middle."""
        shade = pygame.Surface(rect.size)
        shade.fill((0, 0, 0))
        shade.set_alpha(150)
        self.surface.blit(shade, (rect.x, rect.y))
        size = min(self.paint.px(BODY), max(10, rect.h // 6))
        text = self.paint.fit(what, size, rect.w - 2 * self.paint.px(10))
        if not text:
            return
        text_w, text_h = self.paint.size_of(text, size)
        pad = self.paint.px(12)
        pill = pygame.Rect(0, 0, text_w + 2 * pad, text_h + pad)
        pill.center = (rect.x + rect.w // 2, rect.y + rect.h // 2)
        pygame.draw.rect(self.surface, PILL, pill, border_radius=pill.h // 2)
        self.paint.text(text, size, YELLOW, PILL, center=pill.center)

    def _video(self, tile: TileView, rect: Rect) -> Rect | None:
        """Blit the tile's video letterboxed in rect (bars filled); return where, or None when there is none."""
        if tile.video is None or tile.camera_off:
            return None
        size = tile.video.frame_size()
        if size is None or min(size) <= 0:
            return None
        box = fit(size[0], size[1], rect)
        width = box.w - box.w % 2  # even widths keep libswscale on its fast path (see tvapp.tv.video)
        if width <= 0 or box.h <= 0:
            return None
        frame = tile.video.surface(width, box.h)
        if frame is None:
            return None
        video = Rect(box.x + (box.w - width) // 2, box.y, width, box.h)
        fill_around(self.surface, rect, video, TILE_BACKGROUND)  # the letterbox bars
        self.surface.blit(frame, (video.x, video.y))
        return video

    def _card(self, tile: TileView, rect: Rect) -> pygame.Surface:
        """Return the camera-off card for a tile: a coloured circle with the initials, on the tile background."""
        radius = max(4, round(min(rect.w, rect.h) * 0.24))
        size = max(8, round(radius * 1.3))
        initials = self.paint.fit(tile.initials, size, rect.w) or "?"

        def make() -> pygame.Surface:
            card = pygame.Surface(rect.size).convert(self.surface)
            card.fill(TILE_BACKGROUND)
            color = card_color(tile.sid)
            center = (rect.w // 2, rect.h // 2)
            pygame.draw.circle(card, color, center, radius)
            pygame.draw.aacircle(card, color, center, radius)
            text = self.paint.font(size).render(initials, True, TEXT, color).convert(self.surface)
            card.blit(text, text.get_rect(center=center))
            return card

        card = self._cards.get_or_make((tile.sid, initials, rect.size), make)
        text_w, text_h = self.paint.size_of(initials, size)
        self.paint.text_rects.append(Rect(rect.x + (rect.w - text_w) // 2, rect.y + (rect.h - text_h) // 2,
                                    text_w, text_h))
        return card

    def _tile_overlays(self, tile: TileView, rect: Rect) -> None:
        """Draw the name label, the mic-muted icon and the quality badge, clear of the tile's middle."""
        inset = self.outline + self.paint.px(10)
        size = min(self.paint.px(BODY), max(10, rect.h // 4))
        line = self.paint.line_height(size)
        pad_x, pad_y = self.paint.px(14), self.paint.px(6)
        pill_h = line + 2 * pad_y
        top = rect.bottom - inset - pill_h
        if top <= rect.y + rect.h // 2 + 2:
            return  # too small a tile for a label that keeps off the video's middle
        icon_w = pill_h + self.paint.px(8) if tile.mic_muted else 0
        name = self.paint.fit(tile.name, size, rect.w - 2 * inset - 2 * pad_x - icon_w)
        x = rect.x + inset
        if name:
            text_w = self.paint.rendered(name, size, TEXT, PILL).get_width()
            pill = pygame.Rect(x, top, text_w + 2 * pad_x, pill_h)
            pygame.draw.rect(self.surface, PILL, pill, border_radius=pill_h // 2)
            self.paint.text(name, size, TEXT, PILL, midleft=(pill.x + pad_x, pill.centery))
            x = pill.right + self.paint.px(8)
        if tile.mic_muted:
            self._mic_muted(pygame.Rect(x, top, pill_h, pill_h))
        if tile.quality is not None:
            badge_h = min(self.paint.px(40), rect.h // 5)
            badge = pygame.Rect(0, 0, round(badge_h * 1.5), badge_h)
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
        """Draw a network-quality badge: `level` of 5 bars lit, green (4-5), yellow (3) or red (1-2); 0 crossed out."""
        pygame.draw.rect(self.surface, PILL, badge, border_radius=max(2, badge.h // 4))
        lit = {5: GREEN, 4: GREEN, 3: YELLOW}.get(level, RED)
        pad = max(2, badge.h // 8)
        inner = badge.inflate(-2 * pad, -2 * pad)
        gap = max(1, pad // 2)
        bar_w = max(1, (inner.w - 4 * gap) // 5)
        for i in range(5):
            h = max(2, round(inner.h * (i + 1) / 5))
            bar = pygame.Rect(inner.x + i * (bar_w + gap), inner.bottom - h, bar_w, h)
            pygame.draw.rect(self.surface, lit if i < level else EMPTY_BAR, bar)
        if level == 0:   # broken: nothing heard from them for seconds
            pygame.draw.line(self.surface, RED, inner.topleft, inner.bottomright, max(2, pad))
