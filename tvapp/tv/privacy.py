"""The TV's own camera and microphone on its screen: a privacy indicator always, a small self-view while the camera is on.

Drawn last over the room (tiles, content) in the bottom right corner of the overscan-safe area, clear of the
toasts (bottom centre), the room bar (top) and the tiles' name labels (bottom left of each tile); over full-screen
content it moves to the bottom left, out of the way of the picture-in-picture tiles (bottom right):
- the indicator: a dark pill holding a camera icon and a microphone icon, each green while on and red with a
  slash while off; a device the TV does not have is left out (no devices: no pill);
- the self-view: the camera's picture, mirrored like a mirror, at about a sixth of the safe width, with a thin
  border, just above the indicator.
"""

from __future__ import annotations

import pygame

from tvapp.core.layout import Rect, fit
from tvapp.tv.painter import GREEN, PILL, RED, TEXT, Painter
from tvapp.tv.scene import LocalDevices

SELF_VIEW_WIDTH = 0.17     # of the safe area's width
ICON = 56                  # icon disc diameter at 1080 lines


class PrivacyPainter:
    """Draw the TV's own devices' state (and the self-view) onto one surface; remembers where."""

    def __init__(self, surface: pygame.Surface, paint: Painter, safe: Rect) -> None:
        self.surface = surface
        self.paint = paint
        self.safe = safe
        self.indicator_rect: Rect | None = None
        self.self_view_rect: Rect | None = None
        self._mirrored: tuple[pygame.Surface, pygame.Surface] | None = None  # (the slot's surface, it mirrored)

    def draw(self, local: LocalDevices, left: bool = False) -> None:
        """Draw the indicator and, while the camera is on, the self-view (in the bottom right corner, or left)."""
        self.indicator_rect = self.self_view_rect = None
        shown = [(kind, state) for kind, state in (("camera", local.camera), ("mic", local.mic)) if state != "none"]
        if not shown:
            return
        px = self.paint.px
        icon, pad, gap = px(ICON), px(10), px(12)
        pill = pygame.Rect(0, 0, 2 * pad + len(shown) * icon + (len(shown) - 1) * gap, icon + 2 * pad)
        if left:
            pill.bottomleft = (self.safe.x, self.safe.bottom)
        else:
            pill.bottomright = (self.safe.right, self.safe.bottom)
        pygame.draw.rect(self.surface, PILL, pill, border_radius=pill.h // 2)
        for i, (kind, state) in enumerate(shown):
            box = pygame.Rect(pill.x + pad + i * (icon + gap), pill.y + pad, icon, icon)
            color = GREEN if state == "on" else RED
            pygame.draw.circle(self.surface, color, box.center, icon // 2)
            (self._camera if kind == "camera" else self._mic)(box)
            if state != "on":
                unit = icon / 10
                pygame.draw.line(self.surface, TEXT, (round(box.centerx - unit * 3), round(box.centery - unit * 3)),
                                 (round(box.centerx + unit * 3), round(box.centery + unit * 3)), max(2, round(unit)))
        self.indicator_rect = Rect(pill.x, pill.y, pill.w, pill.h)
        if local.camera == "on" and local.self_view is not None:
            self._self_view(local, pill.y - px(12), left)

    def _self_view(self, local: LocalDevices, bottom: int, left: bool) -> None:
        view = local.self_view
        assert view is not None
        size = view.frame_size()
        if size is None or min(size) <= 0:
            return
        width = round(self.safe.w * SELF_VIEW_WIDTH)
        box = fit(size[0], size[1], Rect(self.safe.x, bottom - width, width, width))
        w, h = box.w - box.w % 2, box.h
        frame = view.surface(w, h) if w > 0 and h > 0 else None
        if frame is None:
            return
        if self._mirrored is None or self._mirrored[0] is not frame:  # the slot hands a new surface per new frame
            self._mirrored = (frame, pygame.transform.flip(frame, True, False))
        border = max(2, self.paint.px(3))
        x = self.safe.x + border if left else self.safe.right - border - w
        rect = pygame.Rect(x, bottom - h - border, w, h)
        pygame.draw.rect(self.surface, TEXT, rect.inflate(2 * border, 2 * border))
        self.surface.blit(self._mirrored[1], rect.topleft)
        self.self_view_rect = Rect(rect.x, rect.y, rect.w, rect.h)

    def _camera(self, box: pygame.Rect) -> None:
        """Draw a white video-camera glyph (body and lens cone) in box."""
        unit = box.w / 10
        body = pygame.Rect(0, 0, round(unit * 4.6), round(unit * 3.6))
        body.center = (round(box.centerx - unit * 0.8), box.centery)
        pygame.draw.rect(self.surface, TEXT, body, border_radius=max(1, round(unit * 0.6)))
        x = body.right
        pygame.draw.polygon(self.surface, TEXT, [(x, box.centery), (round(x + unit * 2.2), round(box.centery - unit * 1.6)),
                                                 (round(x + unit * 2.2), round(box.centery + unit * 1.6))])

    def _mic(self, box: pygame.Rect) -> None:
        """Draw a white microphone glyph (capsule and stand) in box."""
        unit = box.w / 10
        width = max(2, round(unit * 0.7))
        capsule = pygame.Rect(0, 0, round(unit * 2.6), round(unit * 4.2))
        capsule.midbottom = (box.centerx, round(box.centery + unit * 0.8))
        pygame.draw.rect(self.surface, TEXT, capsule, border_radius=capsule.w // 2)
        pygame.draw.line(self.surface, TEXT, (box.centerx, round(box.centery + unit * 1.6)),
                         (box.centerx, round(box.centery + unit * 3)), width)
