"""Tests for tvapp.tv.render: real pygame under SDL's dummy driver, pixels read back with surfarray."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"

import av
import numpy as np
import pygame
import pytest
from numpy.typing import NDArray

from tvapp.core.layout import Rect
from tvapp.tv.render import Renderer
from tvapp.tv.scene import ConnectingScreen, ErrorScreen, IdleScreen, RoomBar, RoomScreen, Scene, TileView
from tvapp.tv.tiles import card_color
from tvapp.tv.video import VideoSlot, pixel_formats

COLORS = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 220, 40), (40, 210, 210), (210, 40, 210)]
LONG = "Bartholomew Featherstonehaugh-Cholmondeley the Third of Wolverhampton"


def solid_frame(rgb: tuple[int, int, int], width: int = 640, height: int = 480) -> av.VideoFrame:
    """Return a yuv420p frame of one colour, as a decoder hands it over."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:, :] = rgb
    return av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")


def pixels(surface: pygame.Surface) -> NDArray[np.uint8]:
    """Return the screen as an (x, y, rgb) array copy."""
    return pygame.surfarray.array3d(surface)


def near(got: NDArray[np.uint8], want: tuple[int, int, int], tol: int = 8) -> bool:
    return bool(np.all(np.abs(got.astype(int) - np.array(want)) <= tol))


def slots_for(surface: pygame.Surface, count: int) -> list[VideoSlot]:
    slots = []
    for i in range(count):
        slot = VideoSlot(pixel_formats(surface))
        slot.push(solid_frame(COLORS[i]))
        slots.append(slot)
    return slots


def room(tiles: list[TileView], mode: str = "grid", **bar: object) -> Scene:
    info: dict[str, object] = {"room": "Friday movie night", "invite_code": "ABCD-EFGH",
                               "participants": len(tiles), "join_hint": "Join at http://192.168.1.20:8800"}
    info.update(bar)
    return Scene(RoomScreen(RoomBar(**info), tuple(tiles), mode))  # type: ignore[arg-type]


def inside(outer: Rect, inner: Rect) -> bool:
    return outer.contains(inner)


def assert_texts_inside_safe(renderer: Renderer) -> None:
    assert renderer.text_rects
    for rect in renderer.text_rects:
        assert rect.w > 0 and rect.h > 0
        assert renderer.safe.contains(rect), (rect, renderer.safe)


def highlight_mask(renderer: Renderer) -> NDArray[np.bool_]:
    return np.all(pixels(renderer.surface) == np.array(renderer.highlight_color), axis=2)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6])
def test_each_tile_shows_its_video_colour_at_its_rect(screen: pygame.Surface, count: int) -> None:
    renderer = Renderer(screen)
    slots = slots_for(screen, count)
    tiles = [TileView(f"p{i}", f"Person {i}", f"P{i}", video=slots[i], mic_muted=True, quality=3)
             for i in range(count)]
    renderer.draw(room(tiles))
    shot = pixels(screen)
    assert list(renderer.tile_rects) == [f"p{i}" for i in range(count)]
    for i in range(count):
        tile, video = renderer.tile_rects[f"p{i}"], renderer.video_rects[f"p{i}"]
        assert renderer.safe.contains(tile) and tile.contains(video)
        assert abs(video.w / video.h - 4 / 3) < 0.02  # letterboxed, aspect kept
        x, y = video.center
        assert near(shot[x, y], COLORS[i]), (i, shot[x, y])
        for dx, dy in ((-video.w // 4, -video.h // 4), (video.w // 4, 0)):
            assert near(shot[x + dx, y + dy], COLORS[i]), (i, dx, dy)
    for a in renderer.tile_rects.values():
        assert sum(a.intersects(b) for b in renderer.tile_rects.values()) == 1
    assert_texts_inside_safe(renderer)


def test_each_new_frame_is_converted_once_and_never_bigger_than_its_tile(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    slots = slots_for(full_hd, 4)
    scene = room([TileView(f"p{i}", f"P{i}", "P", video=slots[i]) for i in range(4)])
    for _ in range(5):
        renderer.draw(scene)
    assert [slot.stats for slot in slots] == [(1, 1, 0)] * 4
    slots[2].push(solid_frame((90, 90, 90)))
    renderer.draw(scene)
    renderer.draw(scene)
    assert slots[2].stats == (2, 2, 0) and slots[0].stats == (1, 1, 0)
    for i, slot in enumerate(slots):
        video, tile = renderer.video_rects[f"p{i}"], renderer.tile_rects[f"p{i}"]
        assert video.w <= tile.w and video.h <= tile.h
        assert video.w % 2 == 0


@pytest.mark.parametrize("mode", ["grid", "speaker", "watch"])
def test_only_the_speaking_tile_has_the_highlight_on_its_outline(screen: pygame.Surface, mode: str) -> None:
    renderer = Renderer(screen)
    slots = slots_for(screen, 5)
    tiles = [TileView(f"p{i}", f"Person {i}", f"P{i}", video=slots[i] if i != 3 else None,
                      mic_muted=i % 2 == 0, quality=i % 4, speaking=i == 2) for i in range(5)]
    renderer.draw(room(tiles, mode, invite_code=None))
    mask = highlight_mask(renderer)
    tile = renderer.tile_rects["p2"]
    band = np.zeros_like(mask)
    band[tile.x:tile.right, tile.y:tile.bottom] = True
    inner = tile.inset(renderer.outline)
    band[inner.x:inner.right, inner.y:inner.bottom] = False
    assert renderer.outline >= 6
    assert np.array_equal(mask, band)  # every outline pixel lit, no highlight pixel anywhere else
    assert renderer.safe.contains(tile)

    renderer.draw(room([TileView(t.sid, t.name, t.initials, t.video) for t in tiles], mode))
    assert not highlight_mask(renderer).any()


def test_highlight_moves_with_the_speaker_and_tiles_stay_put(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    slots = slots_for(full_hd, 4)
    places = []
    for speaker in range(4):
        renderer.draw(room([TileView(f"p{i}", f"P{i}", "P", slots[i], speaking=i == speaker) for i in range(4)]))
        mask = highlight_mask(renderer)
        for i in range(4):
            tile = renderer.tile_rects[f"p{i}"]
            lit = mask[tile.x:tile.right, tile.y:tile.bottom].any()
            assert lit == (i == speaker)
        places.append(dict(renderer.tile_rects))
    assert all(p == places[0] for p in places)


def test_camera_off_and_no_video_show_the_initials_card(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    slot = slots_for(screen, 1)[0]
    tiles = [TileView("cam-off", "Ada Lovelace", "AL", video=slot, camera_off=True),
             TileView("no-video", "Bob", "B", video=None),
             TileView("waiting", "Cy", "C", video=VideoSlot())]
    renderer.draw(room(tiles))
    shot = pixels(screen)
    assert renderer.video_rects == {}
    assert slot.stats == (1, 0, 0)  # a camera-off tile never converts its frames
    for tile in tiles:
        rect = renderer.tile_rects[tile.sid]
        area = shot[rect.x:rect.right, rect.y:rect.bottom]
        assert not np.all(np.abs(area.astype(int) - COLORS[0]) <= 8, axis=2).any()
        color = card_color(tile.sid)
        x, y = rect.center
        radius = min(rect.w, rect.h) // 5
        assert near(shot[x - radius, y], color, tol=0), tile.sid  # the circle, beside the initials
    initials = [r for r in renderer.text_rects if any(t.contains(r) and abs(r.center[0] - t.center[0]) <= 2
                                                      for t in renderer.tile_rects.values())]
    assert len(initials) == 3
    for rect in initials:
        ink = shot[rect.x:rect.right, rect.y:rect.bottom].astype(int)
        assert (ink.min(axis=2) > 220).sum() > rect.w * rect.h // 20  # white letters on the circle


def test_card_colours_are_stable_muted_and_never_the_highlight() -> None:
    colors = {card_color(f"participant-{i}") for i in range(500)}
    assert len(colors) > 50
    assert card_color("abc") == card_color("abc")
    assert all(max(c) < 190 for c in colors)
    assert Renderer.highlight_color not in colors


def test_mic_muted_icon_and_quality_badge_sit_in_the_tile_corners(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    slots = slots_for(full_hd, 2)
    tiles = [TileView("muted", "Muted", "M", VideoSlot(), mic_muted=True, quality=5),
             TileView("open", "Open", "O", VideoSlot(), mic_muted=False, quality=None)]
    del slots
    renderer.draw(room(tiles))
    shot = pixels(full_hd).astype(int)
    red = (shot[..., 0] > 200) & (shot[..., 1] < 90) & (shot[..., 2] < 90)
    green = (shot[..., 0] < 100) & (shot[..., 1] > 160) & (shot[..., 2] < 110)
    muted, unmuted = renderer.tile_rects["muted"], renderer.tile_rects["open"]
    in_muted = red[muted.x:muted.right, muted.y:muted.bottom]
    assert in_muted.any() and not red[unmuted.x:unmuted.right, unmuted.y:unmuted.bottom].any()
    xs, ys = np.nonzero(in_muted)
    assert ys.min() > muted.h // 2 and xs.max() < muted.w // 2  # bottom-left, beside the name
    in_badge = green[muted.x:muted.right, muted.y:muted.bottom]
    xs, ys = np.nonzero(in_badge)
    assert len(xs) and xs.min() > muted.w * 3 // 4 and ys.max() < muted.h // 4  # top-right
    assert not green[unmuted.x:unmuted.right, unmuted.y:unmuted.bottom].any()


@pytest.mark.parametrize("level", range(6))
def test_the_quality_badge_lights_one_bar_per_level_of_5(full_hd: pygame.Surface, level: int) -> None:
    renderer = Renderer(full_hd)
    renderer.draw(room([TileView("p", "Person", "P", VideoSlot(), quality=level)]))
    tile = renderer.tile_rects["p"]
    corner = pixels(full_hd)[tile.right - tile.w // 4:tile.right, tile.y:tile.y + tile.h // 4].astype(int)
    r, g, b = corner[..., 0], corner[..., 1], corner[..., 2]
    colors = {"green": (r < 100) & (g > 160) & (b < 110), "yellow": (r > 200) & (g > 160) & (b < 110),
              "red": (r > 200) & (g < 90) & (b < 90)}
    expected = {5: "green", 4: "green", 3: "yellow", 2: "red", 1: "red", 0: "red"}[level]
    lit = colors[expected]
    assert lit.any(), level
    assert not any(mask.any() for name, mask in colors.items() if name != expected), level
    if level:
        # Along the row just above the bars' bottom every lit bar crosses once: count the runs.
        _, ys = np.nonzero(lit)
        row = lit[:, ys.max() - 1].astype(int)
        runs = int(np.count_nonzero(np.diff(np.concatenate([[0], row, [0]])) == 1))
        assert runs == level, (level, runs)


def test_long_names_and_hints_stay_inside_the_safe_area(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    slots = slots_for(screen, 6)
    tiles = [TileView(f"p{i}", LONG, "BF", slots[i], mic_muted=True, quality=1) for i in range(6)]
    scene = room(tiles, "watch", room=LONG, join_hint=LONG + " " + LONG)
    renderer.draw(Scene(scene.screen, toasts=(LONG + " joined", "Bob left", LONG * 3)))
    assert_texts_inside_safe(renderer)
    renderer.draw(scene)
    for tile in renderer.tile_rects.values():
        labels = [r for r in renderer.text_rects if tile.intersects(r)]
        assert labels and all(tile.contains(r) for r in labels)


def test_room_bar_code_is_large_and_body_text_readable_at_1080p(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    renderer.draw(room([], participants=0))
    heights = sorted(r.h for r in renderer.text_rects)
    assert heights[0] >= 32  # body text: the smallest text on screen
    assert heights[-1] >= 80  # the invite code
    code = max(renderer.text_rects, key=lambda r: r.h)
    assert code.right == renderer.safe.right and code.y == renderer.safe.y
    shot = pixels(full_hd)[code.x:code.right, code.y:code.bottom].astype(int)
    ink_rows = np.nonzero((shot.sum(axis=2) > 600).any(axis=0))[0]
    assert ink_rows.max() - ink_rows.min() >= 50  # capitals of the code, measured in lit pixels
    assert_texts_inside_safe(renderer)


def test_body_capitals_are_at_least_22_px_at_1080p(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    renderer.draw(Scene(IdleScreen("TV", "20:45", how_to_join=("HHHH",))))
    body = min(renderer.text_rects, key=lambda r: r.h)
    shot = pixels(full_hd)[body.x:body.right, body.y:body.bottom].astype(int)
    ink_rows = np.nonzero((shot.sum(axis=2) > 300).any(axis=0))[0]
    assert ink_rows.max() - ink_rows.min() + 1 >= 22


def test_no_tiles_shows_the_waiting_text_centred(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(room([]))
    assert renderer.tile_rects == {}
    waiting = renderer.text_rects[-1]
    w, _ = screen.get_size()
    assert abs(waiting.center[0] - w // 2) <= 2
    assert_texts_inside_safe(renderer)


def test_watch_mode_leaves_the_content_area_dark(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    slots = slots_for(full_hd, 3)
    renderer.draw(room([TileView(f"p{i}", f"P{i}", "P", slots[i]) for i in range(3)], "watch"))
    content = renderer.content_rect
    assert content is not None and renderer.safe.contains(content)
    area = pixels(full_hd)[content.x:content.right, content.y:content.bottom]
    assert area.max() < 20
    for tile in renderer.tile_rects.values():
        assert tile.x >= content.right


def test_toasts_are_stacked_bottom_centre_newest_lowest(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(Scene(IdleScreen("Living room", "20:45"), toasts=("Alice joined", "Bob left")))
    *_, alice, bob = renderer.text_rects  # drawn in scene order
    w, _ = screen.get_size()
    assert abs(alice.center[0] - w // 2) <= 2 and abs(bob.center[0] - w // 2) <= 2
    assert alice.bottom < bob.y
    assert renderer.safe.bottom - bob.bottom < renderer.px(40)
    assert_texts_inside_safe(renderer)


def test_idle_screen_draws_clock_name_and_how_to_join(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(Scene(IdleScreen("Living room TV", "20:45", "Friday 3 May",
                                   ("Open http://192.168.1.20:8800 on your phone", LONG * 2))))
    assert len(renderer.text_rects) == 5
    clock = renderer.text_rects[0]
    assert clock.h == max(r.h for r in renderer.text_rects) and clock.h >= 150 * renderer.scale
    assert_texts_inside_safe(renderer)


def test_connecting_screen_animates_with_now(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    scene = Scene(ConnectingScreen("Joining Friday movie night"))
    renderer.draw(scene, now=0.0)
    first = pixels(screen)
    renderer.draw(scene, now=0.4)
    second = pixels(screen)
    renderer.draw(scene, now=1.0)
    assert not np.array_equal(first, second)
    assert np.array_equal(first, pixels(screen))  # the indicator's cycle is one second
    assert_texts_inside_safe(renderer)


def test_error_screen_says_what_and_what_to_do_in_words(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(Scene(ErrorScreen("Server unreachable", "The TV could not reach the server at "
                                    "http://192.168.1.20:8800 after several tries. " * 4,
                                    "Check that the server is running and on the same network.")))
    assert len(renderer.text_rects) >= 4  # the message wrapped over several lines
    title = renderer.text_rects[0]
    shot = pixels(screen)[title.x:title.right, title.y:title.bottom].astype(int)
    reddish = (shot[..., 0] > 180) & (shot[..., 1] < 120)
    assert reddish.any()
    assert_texts_inside_safe(renderer)


def test_text_cache_is_bounded(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    for i in range(400):
        renderer.draw(Scene(IdleScreen("TV", f"{i // 60:02d}:{i % 60:02d}")))
    assert len(renderer._texts) <= renderer._texts.capacity


@pytest.mark.parametrize("mode", ["grid", "speaker", "watch"])
@pytest.mark.parametrize("count", [0, 1, 3, 6, 7])
def test_every_pixel_is_repainted_each_frame(full_hd: pygame.Surface, mode: str, count: int) -> None:
    renderer = Renderer(full_hd)
    slots = slots_for(full_hd, min(count, 6))
    tiles = [TileView(f"p{i}", f"P{i}", "P", slots[i] if i < 6 and i != 2 else None) for i in range(count)]
    stale = (1, 2, 3)
    full_hd.fill(stale)
    renderer.draw(room(tiles, mode))
    assert not np.all(pixels(full_hd) == np.array(stale), axis=2).any()


def test_the_room_bar_says_where_the_room_lives_before_the_hint(screen: pygame.Surface) -> None:
    renderer = Renderer(screen)
    renderer.draw(room([], join_hint=""))
    plain = [r for r in renderer.text_rects]
    renderer.draw(room([], join_hint="", where="on core.example"))
    with_where = [r for r in renderer.text_rects]
    details = max(range(len(plain)), key=lambda i: with_where[i].w - plain[i].w)
    assert with_where[details].w > plain[details].w  # "1 person in the room  ·  on core.example" is longer
    assert with_where[details].y == plain[details].y
    renderer.draw(room([], where="on a-very-long-host-name-of-a-core.example.org:8443", join_hint=LONG + " " + LONG))
    assert_texts_inside_safe(renderer)


def find_text(shot: NDArray[np.uint8], glyphs: NDArray[np.uint8], area: Rect) -> list[tuple[int, int]]:
    """Return where inside `area` of the screen the exact pixels of `glyphs` (an (x, y, rgb) text render) are."""
    w, h = glyphs.shape[:2]
    found = []
    region = shot[area.x:area.right, area.y:area.bottom].astype(int)
    first = glyphs[0, 0].astype(int)
    xs, ys = np.nonzero(np.all(region == first, axis=2))
    for x, y in zip(xs, ys):
        if x + w <= region.shape[0] and y + h <= region.shape[1] and np.array_equal(region[x:x + w, y:y + h], glyphs):
            found.append((area.x + int(x), area.y + int(y)))
    return found


def test_a_reconnecting_participant_s_tile_is_dimmed_and_reads_reconnecting(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    slots = slots_for(full_hd, 2)
    tiles = [TileView("back", "Ada", "A", video=slots[0], reconnecting=True),
             TileView("fine", "Bob", "B", video=slots[1])]
    renderer.draw(room(tiles))
    shot = pixels(full_hd)
    back, fine = renderer.tile_rects["back"], renderer.tile_rects["fine"]
    size = min(renderer.px(48), max(10, back.h // 6))
    glyphs = pygame.surfarray.array3d(renderer.paint.rendered("Reconnecting…", size, (232, 204, 60), (8, 9, 12)))
    (where,) = find_text(shot, glyphs, back)  # the words, read back pixel for pixel, once, in that tile
    assert abs(where[0] + glyphs.shape[0] // 2 - back.center[0]) <= 2
    assert abs(where[1] + glyphs.shape[1] // 2 - back.center[1]) <= 2
    assert find_text(shot, glyphs, fine) == []
    # The reconnecting tile's video is dimmed; the other's is not.
    corner = (back.x + back.w // 8, back.y + back.h // 3)
    assert shot[corner].astype(int).sum() < np.array(COLORS[0]).sum() * 0.6
    assert near(shot[fine.x + fine.w // 8, fine.y + fine.h // 3], COLORS[1], tol=12)


def test_a_tile_whose_video_is_switched_off_reads_paused_weak_network(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    slots = slots_for(full_hd, 2)
    tiles = [TileView("off", "Ada", "A", video=slots[0], paused=True), TileView("on", "Bob", "B", video=slots[1])]
    renderer.draw(room(tiles))
    shot = pixels(full_hd)
    off, on = renderer.tile_rects["off"], renderer.tile_rects["on"]
    size = min(renderer.px(48), max(10, off.h // 6))
    glyphs = pygame.surfarray.array3d(renderer.paint.rendered("Paused — weak network", size, (232, 204, 60),
                                                              (8, 9, 12)))
    assert len(find_text(shot, glyphs, off)) == 1
    assert find_text(shot, glyphs, on) == []
    corner = (off.x + off.w // 8, off.y + off.h // 3)
    assert shot[corner].astype(int).sum() < np.array(COLORS[0]).sum() * 0.6


def test_the_tv_s_own_reconnecting_state_is_in_the_room_bar(full_hd: pygame.Surface) -> None:
    renderer = Renderer(full_hd)
    renderer.draw(room([TileView("a", "Ada", "A")], connection="Reconnecting…"))
    shot = pixels(full_hd)
    glyphs = pygame.surfarray.array3d(renderer.paint.rendered("Reconnecting…", renderer.px(48), (232, 204, 60),
                                                              (14, 16, 22)))
    bar = Rect(0, 0, full_hd.get_width(), renderer.tile_rects["a"].y)
    assert len(find_text(shot, glyphs, bar)) == 1
    assert_texts_inside_safe(renderer)
    renderer.draw(room([TileView("a", "Ada", "A")]))
    assert find_text(pixels(full_hd), glyphs, bar) == []
