"""Tests for tvapp.tv.video: frames converted once per new frame, at the size asked, into the display's layout."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

os.environ["SDL_VIDEODRIVER"] = "dummy"

import av
import numpy as np
import pygame
import pytest

from tvapp.tv.video import VideoSlot, pixel_formats


def solid_frame(rgb: tuple[int, int, int], width: int = 640, height: int = 480) -> av.VideoFrame:
    """Return a yuv420p frame of one colour, as a decoder would hand it over."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:, :] = rgb
    return av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")


@pytest.fixture()
def screen() -> Iterator[pygame.Surface]:
    pygame.display.init()
    yield pygame.display.set_mode((640, 360))
    pygame.display.quit()


def pixel(surface: pygame.Surface, x: int, y: int) -> tuple[int, int, int]:
    r, g, b = pygame.surfarray.pixels3d(surface)[x, y]
    return (int(r), int(g), int(b))


def assert_close(got: tuple[int, int, int], want: tuple[int, int, int], tol: int = 6) -> None:
    assert all(abs(a - b) <= tol for a, b in zip(got, want)), (got, want)


def test_pixel_formats_match_the_display_surface(screen: pygame.Surface) -> None:
    assert pixel_formats(screen) == ("bgra", "BGRA")  # SDL's XRGB8888 on a little-endian machine
    assert pixel_formats(pygame.Surface((4, 4), depth=24)) == ("rgb24", "RGB")
    assert pixel_formats(pygame.Surface((4, 4), depth=16)) == ("rgb24", "RGB")


def test_no_frame_no_surface(screen: pygame.Surface) -> None:
    slot = VideoSlot(pixel_formats(screen))
    assert slot.frame_size() is None
    assert slot.surface(320, 240) is None
    assert slot.shown is None
    assert slot.stats == (0, 0, 0)


def test_new_frame_is_converted_once_at_the_size_asked(screen: pygame.Surface) -> None:
    slot = VideoSlot(pixel_formats(screen))
    frame = solid_frame((200, 40, 30))
    slot.push(frame)
    assert slot.frame_size() == (640, 480)
    first = slot.surface(160, 120)
    assert first is not None and first.get_size() == (160, 120)
    assert slot.shown is frame
    for _ in range(5):
        assert slot.surface(160, 120) is first
    assert slot.stats == (1, 1, 0)
    screen.blit(first, (10, 10))
    assert_close(pixel(screen, 90, 70), (200, 40, 30))


def test_blit_is_a_copy_not_a_blend(screen: pygame.Surface) -> None:
    slot = VideoSlot(pixel_formats(screen))
    slot.push(solid_frame((20, 180, 90)))
    surface = slot.surface(64, 48)
    assert surface is not None
    assert not surface.get_flags() & pygame.SRCALPHA
    screen.fill((255, 255, 255))
    screen.blit(surface, (0, 0))
    assert_close(pixel(screen, 30, 20), (20, 180, 90))


def test_size_change_reconverts_the_same_frame_without_upscaling_beyond_the_ask(screen: pygame.Surface) -> None:
    slot = VideoSlot(pixel_formats(screen))
    frame = solid_frame((10, 10, 240))
    slot.push(frame)
    small = slot.surface(64, 48)
    big = slot.surface(320, 240)
    assert small is not None and big is not None
    assert big.get_size() == (320, 240) and small.get_size() == (64, 48)
    assert slot.stats == (1, 2, 0)
    assert slot.shown is frame


def test_newest_frame_wins_and_replaced_frames_count_as_skipped(screen: pygame.Surface) -> None:
    slot = VideoSlot(pixel_formats(screen))
    frames = [solid_frame(c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    for f in frames:
        slot.push(f)
    surface = slot.surface(32, 24)
    assert surface is not None
    assert slot.shown is frames[-1]
    assert slot.stats == (3, 1, 2)
    screen.blit(surface, (0, 0))
    assert_close(pixel(screen, 16, 12), (0, 0, 255))
    slot.push(solid_frame((255, 255, 0), 320, 240))
    assert slot.frame_size() == (320, 240)
    again = slot.surface(32, 24)
    assert again is not None and again is not surface
    assert slot.stats == (4, 2, 2)


def test_padded_rows_are_read_with_their_pitch(screen: pygame.Surface) -> None:
    slot = VideoSlot(pixel_formats(screen))
    pixels = np.zeros((50, 70, 3), np.uint8)
    pixels[:, :35] = (255, 0, 0)   # left half red, right half green: a wrong pitch would shear it
    pixels[:, 35:] = (0, 255, 0)
    slot.push(av.VideoFrame.from_ndarray(pixels, format="rgb24"))
    surface = slot.surface(70, 50)  # 280 bytes a row: av pads rows to its alignment
    assert surface is not None
    screen.fill((0, 0, 0))
    screen.blit(surface, (0, 0))
    for y in (2, 25, 47):
        assert_close(pixel(screen, 5, y), (255, 0, 0), tol=20)
        assert_close(pixel(screen, 65, y), (0, 255, 0), tol=20)


def test_rgb24_fallback_format(screen: pygame.Surface) -> None:
    slot = VideoSlot(("rgb24", "RGB"))
    slot.push(solid_frame((120, 60, 200)))
    surface = slot.surface(40, 30)
    assert surface is not None
    screen.blit(surface, (0, 0))
    assert_close(pixel(screen, 20, 15), (120, 60, 200))


def test_push_from_another_thread_while_rendering(screen: pygame.Surface) -> None:
    slot = VideoSlot(pixel_formats(screen))
    frames = [solid_frame((i * 40 % 256, 100, 50), 64, 48) for i in range(6)]
    done = threading.Event()

    def decoder() -> None:
        for i in range(600):
            slot.push(frames[i % len(frames)])
        done.set()

    thread = threading.Thread(target=decoder)
    thread.start()
    shown = 0
    while not done.is_set():
        if slot.surface(32, 24) is not None:
            shown += 1
    thread.join()
    slot.surface(32, 24)
    received, converted, skipped = slot.stats
    assert received == 600
    assert converted + skipped == received  # every frame was either converted or replaced, none counted twice
    assert slot.shown is frames[599 % len(frames)]
