"""The TV's own camera and microphone on its screen (tvapp.tv.privacy through tvapp.tv.render): real pygame under
SDL's dummy driver, pixels read back. The indicator is there in every room screen while the TV has a device, green
for on and red for off; the self-view shows the camera's picture while it is on and never while it is off."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"

import numpy as np
import pygame
import pytest
from test_tv_render import near, pixels, room, slots_for, solid_frame

from tvapp.core.layout import Mode, Rect
from tvapp.tv.painter import GREEN, RED
from tvapp.tv.render import Renderer
from tvapp.tv.scene import ContentView, LocalDevices, RoomBar, RoomScreen, Scene, TileView
from tvapp.tv.video import VideoSlot, pixel_formats

SELF = (250, 120, 20)   # the camera's picture: a colour no tile or card uses


def with_local(scene: Scene, local: LocalDevices) -> Scene:
    screen = scene.screen
    assert isinstance(screen, RoomScreen)
    return Scene(RoomScreen(screen.bar, screen.tiles, screen.mode, content=screen.content, local=local))


def count(region: np.ndarray, color: tuple[int, int, int], tol: int = 12) -> int:
    return int(np.all(np.abs(region.astype(int) - np.array(color)) <= tol, axis=-1).sum())


def area(shot: np.ndarray, rect: Rect) -> np.ndarray:
    return shot[rect.x:rect.right, rect.y:rect.bottom]


def camera_slot(surface: pygame.Surface) -> VideoSlot:
    slot = VideoSlot(pixel_formats(surface))
    slot.push(solid_frame(SELF, 320, 240))
    return slot


def tiles(surface: pygame.Surface, n: int) -> list[TileView]:
    return [TileView(sid=f"PA_{i}", name=f"Guest {i}", initials="G", video=slot)
            for i, slot in enumerate(slots_for(surface, n))]


def test_self_view_and_green_indicator_while_both_are_on(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(with_local(room(tiles(screen, 3)), LocalDevices("on", "on", camera_slot(screen))))
    shot = pixels(screen)
    view, pill = renderer.privacy.self_view_rect, renderer.privacy.indicator_rect
    assert view is not None and pill is not None
    assert renderer.safe.contains(view) and renderer.safe.contains(pill)
    assert view.bottom <= pill.y                                   # the self-view sits above the indicator
    assert 0.12 * renderer.safe.w <= view.w <= 0.2 * renderer.safe.w  # small
    assert near(area(shot, Rect(view.x + view.w // 4, view.y + view.h // 4, view.w // 2, view.h // 2)).reshape(-1, 3)
                .mean(axis=0).round().astype(np.uint8), SELF, 10)
    assert count(area(shot, pill), GREEN) > 200 and count(area(shot, pill), RED) == 0


def test_camera_off_shows_no_self_view_and_a_red_camera(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    slot = camera_slot(screen)                                     # frames left in the slot are never shown
    renderer.draw(with_local(room(tiles(screen, 2)), LocalDevices("off", "on", None)))
    shot = pixels(screen)
    pill = renderer.privacy.indicator_rect
    assert renderer.privacy.self_view_rect is None and pill is not None
    assert count(shot, SELF) == 0
    left, right = Rect(pill.x, pill.y, pill.w // 2, pill.h), Rect(pill.x + pill.w // 2, pill.y, pill.w // 2, pill.h)
    assert count(area(shot, left), RED) > 200 and count(area(shot, left), GREEN) == 0      # camera: off
    assert count(area(shot, right), GREEN) > 200 and count(area(shot, right), RED) == 0    # mic: on
    del slot


def test_the_indicator_is_there_with_nobody_else_and_over_full_screen_content(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(with_local(room([]), LocalDevices("off", "off")))
    pill = renderer.privacy.indicator_rect
    assert pill is not None and count(area(pixels(screen), pill), RED) > 300
    content = ContentView(video=camera_slot(screen), title="Film")
    film = Scene(RoomScreen(RoomBar(room="r"), tuple(tiles(screen, 2)), Mode.WATCH_FULL, content=content,
                            local=LocalDevices("none", "on")))
    renderer.draw(film)
    pill = renderer.privacy.indicator_rect
    assert pill is not None and count(area(pixels(screen), pill), GREEN) > 200
    assert pill.w < pill.h * 2                                     # only the microphone: the TV has no camera
    assert pill.x == renderer.safe.x                               # bottom left: the call's tiles are bottom right
    assert all(not pill.intersects(rect) for rect in renderer.tile_rects.values())


def test_no_devices_no_indicator(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(room(tiles(screen, 2)))
    assert renderer.privacy.indicator_rect is None and renderer.privacy.self_view_rect is None


@pytest.mark.parametrize("state", ["on", "off"])
def test_the_indicator_keeps_clear_of_the_toasts(full_hd: pygame.Surface, state: str) -> None:
    renderer = Renderer(full_hd)
    scene = with_local(room(tiles(full_hd, 1)), LocalDevices(state, state))
    renderer.draw(Scene(scene.screen, ("Ann joined",)))
    pill = renderer.privacy.indicator_rect
    assert pill is not None
    assert renderer.text_rects and all(not pill.intersects(text) for text in renderer.text_rects)  # names, toasts
