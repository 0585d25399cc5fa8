"""Tests for the pairing panel on the TV screen (tvapp.tv.render, tvapp.tv.qr): real pygame under SDL's dummy
driver, pixels read back with surfarray. The QR code is checked against segno's own matrix, module by module."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

os.environ["SDL_VIDEODRIVER"] = "dummy"

import numpy as np
import pygame
import pytest
import segno
from numpy.typing import NDArray

from tvapp.core.layout import Rect
from tvapp.tv import pairing_card, render
from tvapp.tv.qr import QUIET_ZONE, qr_matrix, qr_surface
from tvapp.tv.render import Renderer, countdown, grouped
from tvapp.tv.scene import IdleScreen, PairingPanel, RoomBar, RoomScreen, Scene, TileView

URL = "http://192.168.1.20:8800/remote#pair=Zk3q9Vt0bW1xYc2dEe4fGg5hHi6jJk7lLm8nNo9pPq"
OTHER_URL = "http://192.168.1.20:8800/remote#pair=a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uV"
PANEL = PairingPanel(code="483920", url=URL, seconds_left=105, requester="Ann's phone wants to pair")


def room_screen() -> RoomScreen:
    tiles = tuple(TileView(f"p{i}", f"Person {i}", f"P{i}", mic_muted=i == 1, quality=i % 4, speaking=i == 2)
                  for i in range(4))
    return RoomScreen(RoomBar("Friday movie night", "ABCD-EFGH", 4, "Join at http://192.168.1.20:8800"), tiles)


def idle_screen() -> IdleScreen:
    return IdleScreen("Living room", "20:45", "Saturday 1 June", ("Join at http://192.168.1.20:8800",))


SCREENS: dict[str, Callable[[], RoomScreen | IdleScreen]] = {"room": room_screen, "idle": idle_screen}


def segno_matrix(url: str) -> NDArray[np.bool_]:
    """Return the symbol segno makes for url at level M with a 4-module quiet zone (True = dark)."""
    symbol = segno.make(url, error="m", micro=False, boost_error=False)
    return np.array(list(symbol.matrix_iter(scale=1, border=4)), dtype=bool)


def sampled_grid(surface: pygame.Surface, qr: Rect, modules: int) -> NDArray[np.bool_]:
    """Read the module grid back from the pixels: dark where the centre of each module's square is dark."""
    shot = pygame.surfarray.array3d(surface)
    unit = qr.w / modules
    grid = np.zeros((modules, modules), dtype=bool)
    for row in range(modules):
        for col in range(modules):
            x, y = qr.x + int((col + 0.5) * unit), qr.y + int((row + 0.5) * unit)
            grid[row, col] = shot[x, y].mean() < 128
    return grid


def region(surface: pygame.Surface, rect: Rect) -> NDArray[np.uint8]:
    return pygame.surfarray.array3d(surface)[rect.x:rect.right, rect.y:rect.bottom]


@pytest.mark.parametrize("under", SCREENS)
def test_panel_is_drawn_over_the_screen_and_its_qr_code_reads_back(screen: pygame.Surface, under: str) -> None:
    renderer = Renderer(screen)
    renderer.draw(Scene(SCREENS[under](), toasts=("Bob joined", "Carol joined"), pairing=PANEL))
    layout = renderer.pairing
    assert layout is not None
    assert renderer.safe.contains(layout.rect), (layout.rect, renderer.safe)
    assert layout.rect.contains(layout.qr_rect) and layout.rect.contains(layout.code_rect)
    want = segno_matrix(URL)
    assert layout.qr_modules == want.shape[0]
    assert layout.qr_rect.w == layout.qr_rect.h == layout.qr_modules * layout.qr_module_px
    assert np.array_equal(sampled_grid(screen, layout.qr_rect, layout.qr_modules), want)
    # every pixel of every module is pure black or pure white: whole-pixel modules, nothing blended over them
    pixels = region(screen, layout.qr_rect)
    expected = np.repeat(np.repeat(want.T, layout.qr_module_px, 0), layout.qr_module_px, 1)
    assert np.array_equal(pixels.max(axis=2) == 0, expected)
    assert np.array_equal(pixels.min(axis=2) == 255, ~expected)
    assert layout.qr_rect.w >= 300 * renderer.scale * 0.9  # ~300 px at 1080p, scannable from the sofa


@pytest.mark.parametrize("under", SCREENS)
def test_code_is_recorded_exactly_as_shown_and_is_the_biggest_text(screen: pygame.Surface, under: str) -> None:
    renderer = Renderer(screen)
    renderer.draw(Scene(SCREENS[under]()))
    below = len(renderer.text_rects)
    renderer.draw(Scene(SCREENS[under](), pairing=PANEL))
    layout = renderer.pairing
    assert layout is not None
    assert layout.code == "483 920" and layout.code.replace(" ", "") == PANEL.code
    assert layout.expiry == "Code expires in 1:45"
    inside_card = renderer.text_rects[below:]  # the card's texts come after the screen's
    assert all(layout.rect.contains(r) for r in inside_card)
    assert len(inside_card) >= 6  # title, requester, code, caption (wrapped), expiry
    assert layout.code_rect in inside_card
    assert layout.code_rect.h == max(r.h for r in inside_card)
    assert layout.code_rect.h >= 140 * renderer.scale  # ~110 px digits at 1080p
    assert not layout.code_rect.intersects(layout.qr_rect)
    for rect in renderer.text_rects:
        assert renderer.safe.contains(rect)
    code = region(screen, layout.code_rect)
    assert (code.min(axis=2) > 220).sum() > 0.15 * layout.code_rect.w * layout.code_rect.h  # bright digits


def test_card_covers_the_screen_below_it(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    renderer.draw(Scene(room_screen()))
    tiles = list(renderer.tile_rects.values())
    renderer.draw(Scene(room_screen(), pairing=PANEL))
    layout = renderer.pairing
    assert layout is not None
    assert any(layout.rect.intersects(tile) for tile in tiles)
    x, y = layout.rect.x + layout.rect.w // 2, layout.rect.y + 10
    assert tuple(pygame.surfarray.array3d(full_hd)[x, y]) == render.CARD


def test_no_panel_no_record(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    renderer.draw(Scene(idle_screen()))
    assert renderer.pairing is None
    renderer.draw(Scene(idle_screen(), pairing=PANEL))
    assert renderer.pairing is not None
    renderer.draw(Scene(room_screen()))
    assert renderer.pairing is None


def test_countdown_ticks_without_touching_the_rest_of_the_card(full_hd: pygame.Surface,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def counting(data: str, max_width: int, like: pygame.Surface | None = None) -> tuple[pygame.Surface, int]:
        made.append(data)
        return qr_surface(data, max_width, like)

    monkeypatch.setattr(pairing_card, "qr_surface", counting)  # the card (tvapp.tv.pairing_card) makes QR codes
    renderer = Renderer(full_hd)
    renderer.draw(Scene(idle_screen(), pairing=PANEL))
    first = renderer.pairing
    before = pygame.surfarray.array3d(full_hd)
    renderer.draw(Scene(idle_screen(), pairing=PairingPanel("483920", URL, 9, PANEL.requester)))
    second = renderer.pairing
    assert first is not None and second is not None
    assert second.expiry == "Code expires in 0:09"
    assert (first.rect, first.qr_rect, first.code_rect) == (second.rect, second.qr_rect, second.code_rect)
    changed = np.argwhere(np.any(pygame.surfarray.array3d(full_hd) != before, axis=2))
    assert len(changed) > 0
    x0, y0 = changed.min(axis=0)
    x1, y1 = changed.max(axis=0)
    touched = Rect(int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1))
    expiry = renderer.text_rects[-1]  # drawn last, on top of the cached card
    assert expiry.y <= touched.y and touched.bottom <= expiry.bottom  # only the countdown's line changed
    assert second.rect.contains(touched) and not touched.intersects(second.qr_rect)
    assert not touched.intersects(second.code_rect)
    assert made == [URL]  # the QR code was made once for this url


def test_a_rotated_code_shows_the_new_code_and_qr(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    renderer.draw(Scene(idle_screen(), pairing=PANEL))
    renderer.draw(Scene(idle_screen(), pairing=PairingPanel("105837", OTHER_URL, 120)))
    layout = renderer.pairing
    assert layout is not None
    assert layout.code == "105 837" and layout.expiry == "Code expires in 2:00"
    want = segno_matrix(OTHER_URL)
    assert not np.array_equal(want, segno_matrix(URL))
    assert np.array_equal(sampled_grid(full_hd, layout.qr_rect, layout.qr_modules), want)


def test_a_long_requester_is_shortened_inside_the_card(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    requester = "Bartholomew Featherstonehaugh-Cholmondeley's very long phone name " * 3 + "wants to pair"
    renderer.draw(Scene(idle_screen(), pairing=PairingPanel("483920", URL, 100, requester)))
    layout = renderer.pairing
    assert layout is not None
    assert renderer.safe.contains(layout.rect)
    card_texts = [r for r in renderer.text_rects if layout.rect.intersects(r)]
    assert all(layout.rect.contains(r) for r in card_texts)
    assert not any(r.intersects(layout.qr_rect) for r in card_texts)


def test_layout_record_is_json_for_the_sidecar(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    renderer.draw(Scene(idle_screen(), pairing=PANEL))
    assert renderer.pairing is not None
    record = json.loads(json.dumps(renderer.pairing.to_json()))
    layout = renderer.pairing
    assert record["code"] == "483 920"
    assert record["rect"] == [layout.rect.x, layout.rect.y, layout.rect.w, layout.rect.h]
    x, y, w, h = record["qr_rect"]
    assert np.array_equal(sampled_grid(full_hd, Rect(x, y, w, h), record["qr_modules"]), segno_matrix(URL))


@pytest.mark.parametrize(("code", "shown"), [("483920", "483 920"), ("48392012", "4839 2012"),
                                             ("123456789", "123 456 789"), ("1234567", "123 456 7")])
def test_code_digit_groups(code: str, shown: str) -> None:
    assert grouped(code) == shown


@pytest.mark.parametrize(("seconds", "line"), [(105, "1:45"), (120, "2:00"), (9, "0:09"), (0, "0:00"), (-4, "0:00")])
def test_countdown(seconds: int, line: str) -> None:
    assert countdown(seconds) == f"Code expires in {line}"


def test_qr_matrix_has_the_quiet_zone_and_finder_patterns() -> None:
    matrix = qr_matrix(URL)
    size = matrix.shape[0]
    assert matrix.shape == (size, size) and (size - 2 * QUIET_ZONE - 17) % 4 == 0  # a version 1-40 symbol
    assert not matrix[:QUIET_ZONE].any() and not matrix[-QUIET_ZONE:].any()
    assert not matrix[:, :QUIET_ZONE].any() and not matrix[:, -QUIET_ZONE:].any()
    q = QUIET_ZONE
    for top, left in ((q, q), (q, size - q - 7), (size - q - 7, q)):
        finder = matrix[top:top + 7, left:left + 7]
        assert finder[0].all() and finder[6].all() and finder[:, 0].all() and finder[:, 6].all()
        assert not finder[1, 1:6].any() and finder[2:5, 2:5].all()
    assert segno.make(URL, error="m", micro=False, boost_error=False).error == "M"


@pytest.mark.parametrize("max_width", [300, 401, 1000, 10])
def test_qr_surface_uses_whole_pixel_modules(full_hd: pygame.Surface, max_width: int) -> None:
    surface, unit = qr_surface(URL, max_width, full_hd)
    modules = qr_matrix(URL).shape[0]
    assert surface.get_size() == (modules * unit, modules * unit)
    assert unit == max(1, max_width // modules)
    assert surface.get_width() <= max(max_width, modules)
