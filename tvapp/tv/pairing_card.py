"""The pairing card: drawn over whatever screen is showing while a phone pairs (`Scene.pairing`).

The card sits centred in the overscan-safe area: the one-time code in digit groups, who asks, the countdown, and
the QR code (tvapp.tv.qr) that carries the pairing secret. The card without its countdown is one cached surface
per (code, url, requester), so a frame costs one blit plus the countdown text; `PairingCards.draw` returns where
its parts went (a `PairingLayout`, the screenshot sidecar's "pairing" entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pygame

from tvapp.core.layout import Rect
from tvapp.tv.painter import (
    BODY,
    CARD,
    CARD_BORDER,
    CARD_KEY,
    DIM_TEXT,
    PAIR_CODE,
    QR_WIDTH,
    TEXT,
    TITLE,
    Color,
    Lru,
    Painter,
    from_pygame,
)
from tvapp.tv.qr import qr_surface
from tvapp.tv.scene import PairingPanel


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


class PairingCards:
    """Draw the pairing card onto the painter's surface, centred in `safe`; cards and QR codes are kept (two each)."""

    def __init__(self, paint: Painter, safe: Rect) -> None:
        self.paint = paint
        self.safe = safe
        self.surface = paint.surface
        self._qr_codes: Lru[tuple[pygame.Surface, int]] = Lru(2)
        self._cards: Lru[_PairingCard] = Lru(2)

    def _qr(self, url: str, max_width: int) -> tuple[pygame.Surface, int]:
        """Return the QR code surface for url and its pixels per module (made once per url and width)."""
        return self._qr_codes.get_or_make((url, max_width), lambda: qr_surface(url, max_width, self.surface))

    def draw(self, panel: PairingPanel) -> PairingLayout:
        """Blit the pairing card centred in the safe area, then its countdown; return where it all went."""
        card = self._cards.get_or_make((panel.code, panel.url, panel.requester),
                                               lambda: self._card(panel))
        safe = self.safe
        where = card.surface.get_rect(center=(safe.x + safe.w // 2, safe.y + safe.h // 2))
        self.surface.blit(card.surface, where)

        def moved(rect: Rect) -> Rect:
            return Rect(rect.x + where.x, rect.y + where.y, rect.w, rect.h)

        self.paint.text_rects.extend(moved(rect) for rect in card.texts)
        expiry = countdown(panel.seconds_left)
        cx, cy = card.expiry_center
        self.paint.text(expiry, self.paint.px(BODY), DIM_TEXT, CARD, center=(where.x + cx, where.y + cy))
        return PairingLayout(rect=from_pygame(where), qr_rect=moved(card.qr_rect),
                                     qr_module_px=card.qr_module_px, qr_modules=card.qr_modules,
                                     code=grouped(panel.code), code_rect=moved(card.code_rect), expiry=expiry)

    def _card(self, panel: PairingPanel) -> _PairingCard:
        """Render the card: title, requester, code and expiry space on the left; QR code and caption right."""
        safe = self.safe
        pad, gap, line_gap = self.paint.px(56), self.paint.px(72), self.paint.px(14)
        title, body, big = self.paint.px(TITLE), self.paint.px(BODY), self.paint.px(PAIR_CODE)
        body_h = self.paint.line_height(body)
        caption_w = self.paint.px(QR_WIDTH)
        caption = self.paint.wrap("Or scan this code with the phone's camera", body, caption_w)
        qr_room = safe.h - 2 * pad - len(caption) * body_h - line_gap
        qr, unit = self._qr(panel.url, max(1, min(self.paint.px(QR_WIDTH), qr_room)))
        qr_w = qr.get_width()
        right_w = max(qr_w, max((self.paint.size_of(line, body)[0] for line in caption), default=0))
        left_max = max(1, safe.w - 2 * pad - gap - right_w)
        left: list[tuple[str, int, Color, int]] = [(self.paint.fit("Pair a phone", title, left_max), title, TEXT, 0)]
        if panel.requester:
            left.append((self.paint.fit(panel.requester, body, left_max), body, DIM_TEXT, line_gap))
        left.append((self.paint.fit(grouped(panel.code), big, left_max), big, TEXT, self.paint.px(24)))
        widths = [self.paint.size_of(text, size)[0] for text, size, _, _ in left]
        left_w = max(widths + [self.paint.size_of(countdown(59 * 60 + 59), body)[0]])
        left_h = sum(self.paint.line_height(size) + space for _, size, _, space in left) + self.paint.px(24) + body_h
        right_h = qr.get_height() + line_gap + len(caption) * body_h
        width = min(safe.w, 2 * pad + left_w + gap + right_w)
        height = min(safe.h, 2 * pad + max(left_h, right_h))

        surface = pygame.Surface((width, height)).convert(self.surface)
        surface.fill(CARD_KEY)
        radius = self.paint.px(28)
        pygame.draw.rect(surface, CARD, surface.get_rect(), border_radius=radius)
        pygame.draw.rect(surface, CARD_BORDER, surface.get_rect(), width=max(2, self.paint.px(3)), border_radius=radius)
        surface.set_colorkey(CARD_KEY, pygame.RLEACCEL)

        texts: list[Rect] = []

        def put(text: str, size: int, color: Color, **anchor: tuple[int, int]) -> Rect:
            rendered = self.paint.rendered(text, size, color, CARD)
            rect = rendered.get_rect(**anchor)
            surface.blit(rendered, rect)
            texts.append(from_pygame(rect))
            return texts[-1]

        left_x = pad + left_w // 2
        y = (height - left_h) // 2
        code_rect = Rect(0, 0, 0, 0)
        for text, size, color, space in left:
            y += space
            rect = put(text, size, color, midtop=(left_x, y))
            if size == big:
                code_rect = rect
            y += self.paint.line_height(size)
        expiry_center = (left_x, y + self.paint.px(24) + body_h // 2)

        right_x = width - pad - right_w // 2
        top = (height - right_h) // 2
        qr_rect = qr.get_rect(midtop=(right_x, top))
        surface.blit(qr, qr_rect)
        y = qr_rect.bottom + line_gap
        for line in caption:
            put(line, body, DIM_TEXT, midtop=(right_x, y))
            y += body_h
        modules = qr_w // unit
        return _PairingCard(surface=surface, texts=tuple(texts), code_rect=code_rect, qr_rect=from_pygame(qr_rect),
                            qr_module_px=unit, qr_modules=modules, expiry_center=expiry_center)
