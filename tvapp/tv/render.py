"""Draw a `Scene` on the TV's screen: room bar, participant tiles, toasts, and the idle/connecting/error screens.

Everything except the background lies inside the overscan-safe area (`Renderer.safe`). Sizes scale with the
screen height (`scale = height / 1080`) so the UI reads the same from the sofa at 720p and 1080p. Pixels are
the expensive part of a frame, so the renderer keeps them cached: text is rendered once per (text, size,
colour) into the display's pixel format (tvapp.tv.painter, bounded LRU); a participant's tile is drawn by
tvapp.tv.tiles (initials cards cached per tile size, video from each tile's VideoSource already converted to the
size of its letterboxed rectangle, the overlays); this module lays the tiles out and draws everything else.

The highlight colour marks the active speaker's tile and nothing else.

In a room the bar at the top shows the invite code large and, when the TV knows the phones' URL
(`RoomBar.join_url`), a "scan to join" QR code right of it (the phone client's URL with the code, and the
certificate fingerprint when the core's is self-signed); the join hint and the fingerprint wrap under the room name
so that they are never cut off. Where the QR code went is `Renderer.join_qr` (a `JoinQr`).

The TV's own camera and microphone are shown in a room's bottom right corner (tvapp.tv.privacy): a privacy
indicator always, a self-view while the camera is on; where in `Renderer.privacy`.

A pairing panel (`Scene.pairing`) is a card drawn last, centred in the safe area over whatever screen is
showing (tvapp.tv.pairing_card); where its parts went is in `Renderer.pairing` (a `PairingLayout`) for the
screenshot sidecar.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pygame

from tvapp.core.layout import Mode, Rect, fit, safe_area, stage_tile, tiles
from tvapp.tv.painter import (
    BACKGROUND,
    BODY,
    CARD,
    CLOCK,
    CODE,
    CONTENT_BACKGROUND,
    DIM_TEXT,
    EMPTY_BAR,
    ERROR_TITLE,
    MESSAGE,
    PILL,
    RED,
    TEXT,
    TITLE,
    YELLOW,
    Blits,
    Color,
    Lru,
    Painter,
    fill_around,
    to_pygame,
)
from tvapp.tv.pairing_card import PairingCards, PairingLayout, countdown, grouped
from tvapp.tv.privacy import PrivacyPainter
from tvapp.tv.qr import qr_surface
from tvapp.tv.scene import (
    ConnectingScreen,
    ContentView,
    ErrorScreen,
    IdleScreen,
    RoomScreen,
    Scene,
    TileView,
)
from tvapp.tv.tiles import TilePainter

__all__ = ["CARD", "JoinQr", "PairingLayout", "Renderer", "countdown", "grouped"]  # pairing's too

JOIN_QR_WIDTH = 280  # the "scan to join" code's widest at 1080 lines (quiet zone included)
SMALL = 36           # the fingerprint's text size at 1080 lines


@dataclass(frozen=True)
class JoinQr:
    """Where the last draw put the room bar's "scan to join" QR code, and what it says."""

    url: str
    rect: Rect                          # quiet zone included
    module_px: int
    modules: int
    caption_rect: Rect                  # "Scan to join"

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON-ready data (the screenshot sidecar's "join_qr")."""
        return {"url": self.url, "rect": [self.rect.x, self.rect.y, self.rect.w, self.rect.h],
                "module_px": self.module_px, "modules": self.modules}


def fingerprint_text(fingerprint: str) -> str:
    """Return a certificate fingerprint as the TV shows it: "Certificate SHA-256: AB CD EF ..." (wraps by pairs)."""
    digest = fingerprint.split(":", 1)[1] if fingerprint.lower().startswith("sha256:") else fingerprint
    return "Certificate SHA-256: " + " ".join(part for part in digest.upper().split(":") if part)


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
        self.paint = Painter(surface, self.scale)
        self.content_rect: Rect | None = None
        self.content_video_rect: Rect | None = None
        self.pairing: PairingLayout | None = None
        self.join_qr: JoinQr | None = None
        self.bar_lines: tuple[str, ...] = ()  # the room bar's join hint and fingerprint lines, as drawn
        self._qrs: Lru[tuple[pygame.Surface, int]] = Lru(2)
        self._tiles = TilePainter(surface, self.paint, self.outline)
        self._texts = self.paint.texts  # the rendered-text cache (bounded)
        self._pairing_cards = PairingCards(self.paint, self.safe)
        self.privacy = PrivacyPainter(surface, self.paint, self.safe)  # the TV's own camera/mic state, self-view

    @property
    def text_rects(self) -> list[Rect]:
        """Return where the last draw put text."""
        return self.paint.text_rects

    def px(self, size: float) -> int:
        """Return a 1080-line size scaled to this screen, at least 1 px."""
        return self.paint.px(size)

    def draw(self, scene: Scene, now: float | None = None) -> None:
        """Draw the whole scene onto the surface (the caller flips)."""
        now = time.monotonic() if now is None else now
        self.tile_rects, self.video_rects, self.paint.text_rects = {}, {}, []
        self.content_rect = None
        self.content_video_rect = None
        self.pairing = None
        self.join_qr = None
        self.bar_lines = ()
        screen = scene.screen
        if isinstance(screen, RoomScreen):
            self._room(screen)
            self.privacy.draw(screen.local, left=screen.mode is Mode.WATCH_FULL and screen.content is not None)
        else:
            self.privacy.indicator_rect = self.privacy.self_view_rect = None
            self.surface.fill(BACKGROUND)
        if isinstance(screen, IdleScreen):
            self._idle(screen)
        elif isinstance(screen, ConnectingScreen):
            self._connecting(screen, now)
        elif isinstance(screen, ErrorScreen):
            self._error(screen)
        self._toasts(scene.toasts)
        if scene.pairing is not None:
            self.pairing = self._pairing_cards.draw(scene.pairing)

    # --- room -------------------------------------------------------------------------------------------

    def _room(self, screen: RoomScreen) -> None:
        if screen.mode is Mode.WATCH_FULL and screen.content is not None:
            self._room_full(screen, screen.content)
            return
        bar: Blits = []
        bar_bottom = self._room_bar(screen, bar)
        gap = self.px(24)
        area = Rect(self.safe.x, bar_bottom + gap, self.safe.w, max(1, self.safe.bottom - bar_bottom - gap))
        mode = screen.mode if screen.mode is not Mode.WATCH_FULL else Mode.WATCH
        if screen.tiles:
            speaking = next((i for i, tile in enumerate(screen.tiles) if tile.speaking), None)
            big = stage_tile(speaking, [tile.screen for tile in screen.tiles])  # a shared screen, else the speaker
            layout = tiles(len(screen.tiles), self.screen, area, mode, speaker=big)
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
            for i, line in enumerate(self.paint.wrap(screen.waiting_text, size, area.w)):
                self.paint.text(line, size, DIM_TEXT, bg,
                           center=(area.x + area.w // 2, area.y + area.h // 2 + i * self.paint.line_height(size)))
            return
        for tile, rect in zip(screen.tiles, layout.tiles):
            self._tile(tile, rect)

    def _tile(self, tile: TileView, rect: Rect) -> None:
        """Draw one tile (tvapp.tv.tiles) and note where it and its video went."""
        self.tile_rects[tile.sid] = rect
        video = self._tiles.draw(tile, rect, self.highlight_color)
        if video is not None:
            self.video_rects[tile.sid] = video

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
            self.surface.fill(CONTENT_BACKGROUND, to_pygame(rect))
        else:
            self.content_video_rect = shown
            fill_around(self.surface, rect, shown, CONTENT_BACKGROUND)
        if content is None:
            return
        if content.badge:  # bottom left: the top of the picture stays clear
            inner = rect if rect != self.screen else self.safe
            size = self.px(TITLE)
            badge = self.paint.rendered(content.badge, size, TEXT, PILL)
            pill = pygame.Rect(0, 0, badge.get_width() + self.px(32), badge.get_height() + self.px(12))
            pill.bottomleft = (inner.x + self.px(16), inner.bottom - self.px(16))
            pygame.draw.rect(self.surface, PILL, pill, border_radius=pill.h // 2)
            self.paint.text(content.badge, size, TEXT, PILL, center=pill.center)
        status = content.status if shown is not None or content.status else "Loading…"
        if status:
            inner = rect if rect != self.screen else self.safe
            size = self.px(TITLE)
            line = self.paint.fit(f"{content.title}  ·  {status}" if content.title else status, size,
                             max(1, inner.w - self.px(40)))
            text = self.paint.rendered(line, size, TEXT, PILL)
            pill = pygame.Rect(0, 0, text.get_width() + self.px(48), text.get_height() + self.px(20))
            pill.midtop = (inner.x + inner.w // 2, inner.y + self.px(24))
            pygame.draw.rect(self.surface, PILL, pill, border_radius=pill.h // 2)
            self.paint.text(line, size, TEXT, PILL, center=pill.center)

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

    def _room_bar(self, screen: RoomScreen, later: Blits) -> int:
        """Lay out the room bar at the top of the safe area into `later`; return the y just below it."""
        bar = screen.bar
        safe = self.safe
        title, body, code, small = self.px(TITLE), self.px(BODY), self.px(CODE), self.px(SMALL)
        right = safe.right
        bottom = safe.y
        if bar.invite_code and bar.join_url:
            qr, unit = self._join_qr_surface(bar.join_url, self.px(JOIN_QR_WIDTH))
            where = qr.get_rect(topright=(right, safe.y))
            later.append((qr, where))
            qr_rect = Rect(where.x, where.y, where.w, where.h)
            right = where.x - self.px(28)
            bottom = qr_rect.bottom
        if bar.invite_code:
            code_rect = self.paint.text(self.paint.fit(bar.invite_code, code, safe.w // 3), code, TEXT, BACKGROUND,
                                        later, topright=(right, safe.y))
            label = self.paint.text("Code", body, DIM_TEXT, BACKGROUND, later,
                               bottomright=(code_rect.x - self.px(20), code_rect.bottom - self.px(10)))
            left_edge = label.x
            bottom = max(bottom, code_rect.bottom)
            if bar.join_url:
                caption = self.paint.text("Scan to join", body, TEXT, BACKGROUND, later,
                                          topright=(code_rect.right, code_rect.bottom + self.px(12)))
                left_edge = min(left_edge, caption.x)
                self.join_qr = JoinQr(bar.join_url, qr_rect, unit, qr_rect.w // unit, caption)
        else:
            left_edge = right
        left_w = max(1, left_edge - self.px(40) - safe.x)
        name = self.paint.text(self.paint.fit(bar.room, title, left_w), title, TEXT, BACKGROUND, later,
                          topleft=(safe.x, safe.y))
        people = f"{bar.participants} {'person' if bar.participants == 1 else 'people'} in the room"
        details = "  ·  ".join(part for part in (people, bar.where) if part)
        x, top = safe.x, name.bottom + self.px(6)
        if bar.connection:  # the TV's own link is down: said first, in yellow
            state = self.paint.text(self.paint.fit(bar.connection, body, left_w), body, YELLOW, BACKGROUND, later,
                                    topleft=(x, top))
            x = state.right + self.px(24)
        y = self.paint.text(self.paint.fit(details, body, max(1, safe.x + left_w - x)), body, DIM_TEXT, BACKGROUND,
                            later, topleft=(x, top)).bottom
        hint = list(self.paint.wrap(bar.join_hint, body, left_w)) if bar.join_hint else []
        if len(hint) > 2:  # two lines at most; the rest shortened with an ellipsis rather than dropped silently
            hint = [hint[0], self.paint.fit(" ".join(hint[1:]), body, left_w)]
        lines = [(line, body) for line in hint]
        if bar.fingerprint:
            lines += [(line, small) for line in self.paint.wrap(fingerprint_text(bar.fingerprint), small, left_w)[:4]]
        self.bar_lines = tuple(line for line, _ in lines)
        for line, size in lines:
            y = self.paint.text(line, size, DIM_TEXT, BACKGROUND, later, topleft=(safe.x, y + self.px(4))).bottom
        return max(bottom, y)

    def _join_qr_surface(self, url: str, max_width: int) -> tuple[pygame.Surface, int]:
        """Return the QR code for `url` at most max_width wide, and its module size (cached per url)."""
        return self._qrs.get_or_make((url, max_width), lambda: qr_surface(url, max_width, like=self.surface))

    # --- other screens and overlays ---------------------------------------------------------------------

    def _column(self, lines: list[tuple[str, int, Color]], spacing: int) -> None:
        """Draw lines centred horizontally, the block centred vertically in the safe area."""
        safe = self.safe
        fitted = [(self.paint.fit(text, size, safe.w), size, color) for text, size, color in lines if text]
        heights = [self.paint.line_height(size) for _, size, _ in fitted]
        total = sum(heights) + spacing * max(0, len(fitted) - 1)
        y = max(safe.y, safe.y + (safe.h - total) // 2)
        for (text, size, color), h in zip(fitted, heights):
            if y + h > safe.bottom:
                break
            self.paint.text(text, size, color, BACKGROUND, midtop=(safe.x + safe.w // 2, y))
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
        lines = self.paint.wrap(screen.text, size, safe.w)
        line_h = self.paint.line_height(size)
        top = safe.y + safe.h // 2 - line_h * len(lines)
        for i, line in enumerate(lines):
            self.paint.text(line, size, TEXT, BACKGROUND, midtop=(safe.x + safe.w // 2, top + i * line_h))
        radius, step = self.px(12), self.px(44)
        active = int(now * 3) % 3
        y = top + len(lines) * line_h + self.px(48)
        for i in range(3):
            color = TEXT if i == active else EMPTY_BAR
            pygame.draw.circle(self.surface, color, (safe.x + safe.w // 2 + (i - 1) * step, y), radius)

    def _error(self, screen: ErrorScreen) -> None:
        safe = self.safe
        lines: list[tuple[str, int, Color]] = [(screen.title, self.px(ERROR_TITLE), RED)]
        lines += [(line, self.px(MESSAGE), TEXT) for line in self.paint.wrap(screen.message, self.px(MESSAGE), safe.w)]
        lines += [(line, self.px(BODY), DIM_TEXT) for line in self.paint.wrap(screen.hint, self.px(BODY), safe.w)]
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
        pill_h = self.paint.line_height(size) + 2 * pad_y
        fits = max(0, (safe.h + gap) // (pill_h + gap))
        newest = toasts[len(toasts) - fits:] if fits else ()
        shown = [text for text in (self.paint.fit(toast, size, safe.w - 2 * pad_x) for toast in newest) if text]
        y = safe.bottom - len(shown) * (pill_h + gap) + gap
        for text in shown:
            text_w = self.paint.rendered(text, size, TEXT, PILL).get_width()
            pill = pygame.Rect(0, 0, text_w + 2 * pad_x, pill_h)
            pill.midtop = (safe.x + safe.w // 2, y)
            pygame.draw.rect(self.surface, PILL, pill, border_radius=pill_h // 2)
            self.paint.text(text, size, TEXT, PILL, center=pill.center)
            y = pill.bottom + gap
