"""QR codes for the TV screen: segno makes the symbol, this module turns it into a crisp pygame surface.

Phones scan a code on a TV from the sofa only when its modules are sharp squares with a white margin, so
the surface has dark modules black on white, the standard quiet zone of 4 modules, and every module the same
whole number of pixels (no smoothing scaler ever touches it). Error correction is level M: the code carries a
one-time secret in a URL of modest length, and M keeps the symbol small enough for big modules.
"""

from __future__ import annotations

import numpy as np
import pygame
import segno
from numpy.typing import NDArray

QUIET_ZONE = 4
DARK = (0, 0, 0)
LIGHT = (255, 255, 255)


def qr_matrix(data: str) -> NDArray[np.bool_]:
    """Return the QR symbol for `data` (level M, quiet zone included) as a (rows, columns) array, True = dark."""
    symbol = segno.make(data, error="m", micro=False, boost_error=False)
    return np.array(list(symbol.matrix_iter(scale=1, border=QUIET_ZONE)), dtype=bool)


def module_size(modules: int, max_width: int) -> int:
    """Return the largest whole number of pixels per module that fits `modules` across in max_width (>= 1)."""
    return max(1, max_width // modules)


def qr_surface(data: str, max_width: int, like: pygame.Surface | None = None) -> tuple[pygame.Surface, int]:
    """Return (surface, pixels per module): the QR code for `data`, at most max_width wide when it can be.

    With `like`, the surface is converted to that surface's pixel format, so blitting it is a plain copy.
    """
    matrix = qr_matrix(data)
    unit = module_size(matrix.shape[1], max_width)
    big = np.repeat(np.repeat(matrix, unit, axis=0), unit, axis=1)
    rgb = np.where(big[..., None], np.array(DARK, np.uint8), np.array(LIGHT, np.uint8)).astype(np.uint8)
    surface = pygame.surfarray.make_surface(rgb.transpose(1, 0, 2))  # surfarray indexes (x, y)
    if like is not None:
        surface = surface.convert(like)
    return surface, unit
