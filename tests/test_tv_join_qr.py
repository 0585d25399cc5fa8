"""The TV's "scan to join" QR code beside the invite code, read back from the pixels, and its hint on screen."""

from __future__ import annotations

import numpy as np
import pygame
import segno
from numpy.typing import NDArray

from tvapp.core.layout import Rect
from tvapp.tv.render import Renderer, fingerprint_text
from tvapp.tv.scene import RoomBar, RoomScreen, Scene, TileView

FP = "sha256:" + ":".join(f"{(i * 37) % 256:02X}" for i in range(32))
URL = f"https://192.168.1.20:8800/?code=ABCD-EFGH#fp={FP}"
HINT = "On a phone: open https://192.168.1.20:8800/ and enter ABCD-EFGH"


def matrix(url: str) -> NDArray[np.bool_]:
    symbol = segno.make(url, error="m", micro=False, boost_error=False)
    return np.array(list(symbol.matrix_iter(scale=1, border=4)), dtype=bool)


def read_back(surface: pygame.Surface, qr: Rect, modules: int) -> NDArray[np.bool_]:
    shot = pygame.surfarray.array3d(surface)
    unit = qr.w / modules
    grid = np.zeros((modules, modules), dtype=bool)
    for row in range(modules):
        for col in range(modules):
            grid[row, col] = shot[qr.x + int((col + 0.5) * unit), qr.y + int((row + 0.5) * unit)].mean() < 128
    return grid


def room(**bar: object) -> Scene:
    tiles = tuple(TileView(f"p{i}", f"Person {i}", f"P{i}") for i in range(3))
    fields = {"room": "Friday movie night", "invite_code": "ABCD-EFGH", "participants": 4, "join_hint": HINT,
              "join_url": URL, "fingerprint": FP, **bar}
    return Scene(RoomScreen(RoomBar(**fields), tiles), ())  # type: ignore[arg-type]


def test_qr_beside_the_code_reads_back_and_every_text_fits(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(room())
    join = renderer.join_qr
    assert join is not None and join.url == URL
    want = matrix(URL)
    assert join.modules == want.shape[0] and join.rect.w == join.modules * join.module_px
    assert np.array_equal(read_back(screen, join.rect, join.modules), want)
    assert join.module_px >= 2  # whole pixels per module, at least 2 even at 720p
    safe = renderer.safe
    assert safe.contains(join.rect)
    for rect in renderer.text_rects:
        assert safe.contains(rect), (rect, safe)  # nothing cut off at either resolution
        assert not rect.intersects(join.rect)
    for tile in renderer.tile_rects.values():
        assert tile.y >= join.rect.bottom and tile.y >= join.caption_rect.bottom  # tiles below the bar
    # The hint and the fingerprint are shown whole (wrapped, not shortened).
    lines = renderer.bar_lines
    assert "…" not in "".join(lines)
    joined = " ".join(lines)
    assert HINT in joined and fingerprint_text(FP) in joined


def test_no_qr_without_a_url_or_while_the_code_is_hidden(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(room(join_url=None, fingerprint=None))
    assert renderer.join_qr is None
    renderer.draw(room(invite_code=None))
    assert renderer.join_qr is None  # the code is hidden: so is the QR code that carries it


def test_fingerprint_text_groups_pairs() -> None:
    assert fingerprint_text("sha256:ab:CD:01") == "Certificate SHA-256: AB CD 01"
