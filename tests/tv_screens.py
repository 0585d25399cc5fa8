"""Pygame screens for renderer tests: SDL's dummy driver at the TV sizes the tests draw at (shared fixtures)."""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ["SDL_VIDEODRIVER"] = "dummy"

import pygame
import pytest

SIZES = [(1920, 1080), (1280, 720)]


@pytest.fixture(params=SIZES, ids=["1080p", "720p"])
def screen(request: pytest.FixtureRequest) -> Iterator[pygame.Surface]:
    """Open the display at each TV size in turn."""
    pygame.display.init()
    yield pygame.display.set_mode(request.param)
    pygame.display.quit()


@pytest.fixture()
def full_hd() -> Iterator[pygame.Surface]:
    """Open the display at 1920x1080."""
    pygame.display.init()
    yield pygame.display.set_mode((1920, 1080))
    pygame.display.quit()
