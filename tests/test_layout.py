"""Tests for tvapp.core.layout: tiles inside the safe area, never overlapping, stable, and fit's letterboxing."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvapp.core.layout import (
    PIP_MAX,
    WATCH_SIDEBAR_MAX,
    Layout,
    Mode,
    Rect,
    fit,
    safe_area,
    stage_tile,
    tiles,
)

SCREEN = Rect(0, 0, 1920, 1080)
SAFE = safe_area(1920, 1080)

widths = st.integers(320, 3840)
heights = st.integers(240, 2160)
margins = st.floats(0.0, 0.2)
counts = st.integers(0, 12)
modes = st.sampled_from(list(Mode))


def every_rect(layout: Layout) -> list[Rect]:
    """Return the tiles plus the content area, if any (not a full-screen content that PiP tiles lie over)."""
    behind = layout.content is not None and layout.content.x == 0 and layout.content.y == 0
    return list(layout.tiles) + ([layout.content] if layout.content is not None and not behind else [])


# --- Rect ----------------------------------------------------------------------------------------------

def test_rect_edges_size_and_center() -> None:
    r = Rect(10, 20, 30, 40)
    assert (r.right, r.bottom, r.size, r.center) == (40, 60, (30, 40), (25, 40))


def test_rect_contains_includes_touching_edges() -> None:
    outer = Rect(0, 0, 100, 100)
    assert outer.contains(Rect(0, 0, 100, 100))
    assert outer.contains(Rect(90, 90, 10, 10))
    assert not outer.contains(Rect(91, 90, 10, 10))
    assert not outer.contains(Rect(-1, 0, 10, 10))


def test_rect_intersects_only_with_positive_area() -> None:
    a = Rect(0, 0, 10, 10)
    assert a.intersects(Rect(9, 9, 10, 10))
    assert not a.intersects(Rect(10, 0, 10, 10))   # touching on the right edge
    assert not a.intersects(Rect(0, 10, 10, 10))   # touching on the bottom edge
    assert not a.intersects(Rect(5, 5, 0, 0))      # empty


def test_rect_inset_shrinks_and_never_goes_negative() -> None:
    assert Rect(0, 0, 100, 50).inset(10) == Rect(10, 10, 80, 30)
    assert Rect(0, 0, 100, 50).inset(-5) == Rect(-5, -5, 110, 60)
    shrunk = Rect(0, 0, 10, 10).inset(20)
    assert shrunk.size == (0, 0) and Rect(0, 0, 10, 10).contains(shrunk)


def test_rect_rejects_negative_size() -> None:
    with pytest.raises(ValueError):
        Rect(0, 0, -1, 5)


# --- safe_area -------------------------------------------------------------------------------------------

def test_safe_area_takes_the_margin_off_each_side() -> None:
    assert SAFE == Rect(96, 54, 1728, 972)
    assert safe_area(1920, 1080, 0.0) == SCREEN


@pytest.mark.parametrize("margin", [-0.01, 0.5, 0.7])
def test_safe_area_rejects_bad_margins(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        safe_area(1920, 1080, margin)


def test_safe_area_rejects_empty_screen() -> None:
    with pytest.raises(ValueError):
        safe_area(0, 1080)


# --- tiles: bad input ----------------------------------------------------------------------------------

def test_negative_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        tiles(-1, SCREEN, SAFE)


def test_unknown_mode_is_rejected_with_the_choices() -> None:
    with pytest.raises(ValueError, match="grid, speaker, watch"):
        tiles(2, SCREEN, SAFE, "mosaic")


@pytest.mark.parametrize("speaker", [-1, 3, 10])
def test_speaker_out_of_range_is_rejected(speaker: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        tiles(3, SCREEN, SAFE, Mode.SPEAKER, speaker=speaker)


def test_safe_area_outside_the_screen_is_rejected() -> None:
    with pytest.raises(ValueError, match="inside the screen"):
        tiles(2, SCREEN, Rect(100, 100, 1900, 900))


def test_empty_safe_area_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        tiles(2, SCREEN, Rect(10, 10, 0, 100))


def test_negative_gap_is_rejected() -> None:
    with pytest.raises(ValueError, match="gap"):
        tiles(2, SCREEN, SAFE, gap=-1)


def test_mode_may_be_given_as_its_string() -> None:
    assert tiles(4, SCREEN, SAFE, "speaker", speaker=1) == tiles(4, SCREEN, SAFE, Mode.SPEAKER, speaker=1)


# --- tiles: properties -------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(count=counts, width=widths, height=heights, margin=margins, mode=modes, data=st.data())
def test_tiles_stay_inside_the_safe_area_and_never_overlap(count: int, width: int, height: int, margin: float,
                                                            mode: Mode, data: st.DataObject) -> None:
    screen = Rect(0, 0, width, height)
    area = safe_area(width, height, margin)
    speaker = data.draw(st.none() | st.integers(0, count - 1)) if count else None
    layout = tiles(count, screen, area, mode, speaker=speaker)
    expected = {Mode.WATCH: min(count, WATCH_SIDEBAR_MAX), Mode.WATCH_FULL: min(count, PIP_MAX)}.get(mode, count)
    assert len(layout.tiles) == expected
    assert (layout.content is not None) == (mode in (Mode.WATCH, Mode.WATCH_FULL))
    if mode is Mode.WATCH_FULL:
        assert layout.content == screen  # the content fills the screen; the tiles float over it
    rects = every_rect(layout)
    for r in rects:
        assert area.contains(r), (r, area)
        assert r.w > 0 and r.h > 0
    for a, b in combinations(rects, 2):
        assert not a.intersects(b), (a, b)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(2, 12), width=widths, height=heights, margin=margins, mode=modes)
def test_tiles_are_separated_by_the_gap(count: int, width: int, height: int, margin: float, mode: Mode) -> None:
    area = safe_area(width, height, margin)
    gap = max(4, round(0.015 * min(area.w, area.h)))
    rects = every_rect(tiles(count, Rect(0, 0, width, height), area, mode))
    for a, b in combinations(rects, 2):
        apart_x = max(b.x - a.right, a.x - b.right)
        apart_y = max(b.y - a.bottom, a.y - b.bottom)
        assert max(apart_x, apart_y) >= gap, (a, b, gap)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 12), width=widths, height=heights, margin=margins, data=st.data())
def test_grid_tile_depends_only_on_count_and_index(count: int, width: int, height: int, margin: float,
                                                   data: st.DataObject) -> None:
    screen, area = Rect(0, 0, width, height), safe_area(width, height, margin)
    speaker = data.draw(st.integers(0, count - 1))
    assert tiles(count, screen, area, Mode.GRID, speaker=speaker) == tiles(count, screen, area, Mode.GRID)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 12), width=widths, height=heights, margin=margins, data=st.data())
def test_grid_cells_are_all_the_same_size(count: int, width: int, height: int, margin: float,
                                          data: st.DataObject) -> None:
    layout = tiles(count, Rect(0, 0, width, height), safe_area(width, height, margin), Mode.GRID)
    assert len({r.size for r in layout.tiles}) == 1


@settings(max_examples=200, deadline=None)
@given(count=st.integers(2, 12), width=widths, height=heights, margin=margins, data=st.data())
def test_speaker_view_keeps_the_others_in_order(count: int, width: int, height: int, margin: float,
                                                data: st.DataObject) -> None:
    area = safe_area(width, height, margin)
    speaker = data.draw(st.integers(0, count - 1))
    layout = tiles(count, Rect(0, 0, width, height), area, Mode.SPEAKER, speaker=speaker)
    big = layout.tiles[speaker]
    others = [r for i, r in enumerate(layout.tiles) if i != speaker]
    assert all(big.w * big.h > r.w * r.h for r in others)
    assert [r.x for r in others] == sorted(r.x for r in others)
    assert len({r.size for r in others}) == 1
    assert len({r.y for r in others}) == 1
    assert all(r.y >= big.bottom for r in others)


def test_a_shared_screen_is_the_speaker_views_big_tile_over_any_face() -> None:
    # tiles: Ann's camera, Ann's screen, Ben's camera, Cat's camera, Cat's screen; Ben speaks
    screens = [False, True, False, False, True]
    assert stage_tile(2, screens) == 1  # the first shared screen, not the speaker
    assert stage_tile(None, screens) == 1
    assert stage_tile(2, [False, False, False]) == 2  # no screen: the speaker
    assert stage_tile(None, [False, False]) == 0
    assert stage_tile(None, []) is None
    with pytest.raises(ValueError, match="out of range"):
        stage_tile(3, [False, True, False])
    layout = tiles(5, SCREEN, SAFE, Mode.SPEAKER, speaker=stage_tile(2, screens))
    assert max(range(5), key=lambda i: layout.tiles[i].w * layout.tiles[i].h) == 1


@settings(max_examples=300, deadline=None)
@given(src_w=st.integers(1, 4000), src_h=st.integers(1, 4000),
       box=st.builds(Rect, st.integers(-100, 100), st.integers(-100, 100), st.integers(1, 3000),
                     st.integers(1, 3000)))
def test_fit_keeps_the_aspect_stays_inside_and_is_centred(src_w: int, src_h: int, box: Rect) -> None:
    r = fit(src_w, src_h, box)
    assert box.contains(r)
    assert r.w == box.w or r.h == box.h                              # as large as the box allows
    assert abs(r.h - r.w * src_h / src_w) <= 1 or abs(r.w - r.h * src_w / src_h) <= 1
    assert abs((r.x - box.x) - (box.right - r.right)) <= 1
    assert abs((r.y - box.y) - (box.bottom - r.bottom)) <= 1


# --- examples at 1920x1080 ------------------------------------------------------------------------------

def test_fit_letterboxes_and_pillarboxes() -> None:
    assert fit(1920, 1080, Rect(0, 0, 800, 800)) == Rect(0, 175, 800, 450)
    assert fit(640, 480, Rect(0, 0, 1600, 900)) == Rect(200, 0, 1200, 900)
    assert fit(1280, 720, Rect(10, 10, 160, 90)) == Rect(10, 10, 160, 90)


def test_fit_rejects_an_empty_source() -> None:
    with pytest.raises(ValueError):
        fit(0, 720, SCREEN)


def test_no_participants_no_tiles() -> None:
    assert tiles(0, SCREEN, SAFE) == Layout(())
    assert tiles(0, SCREEN, SAFE, Mode.SPEAKER) == Layout(())


def test_grid_one_fills_the_safe_area() -> None:
    assert tiles(1, SCREEN, SAFE).tiles == (SAFE,)


def test_grid_two_are_left_and_right_halves() -> None:
    left, right = tiles(2, SCREEN, SAFE, gap=16).tiles
    assert left == Rect(96, 54, 856, 972)
    assert right == Rect(968, 54, 856, 972)


def test_grid_three_is_two_by_two_with_the_last_row_centred() -> None:
    a, b, c = tiles(3, SCREEN, SAFE, gap=16).tiles
    assert a == Rect(96, 54, 856, 478) and b == Rect(968, 54, 856, 478)
    assert c.y == 54 + 478 + 16 and c.size == a.size
    assert c.center[0] == SAFE.center[0]


def test_grid_four_is_two_by_two() -> None:
    rects = tiles(4, SCREEN, SAFE, gap=16).tiles
    assert {(r.x, r.y) for r in rects} == {(96, 54), (968, 54), (96, 548), (968, 548)}
    assert rects[2].x == 96 and rects[3].x == 968          # row by row, left to right


def test_grid_five_and_six_are_three_by_two() -> None:
    five = tiles(5, SCREEN, SAFE).tiles
    six = tiles(6, SCREEN, SAFE).tiles
    assert len({r.y for r in six}) == 2 and len({r.x for r in six}) == 3
    assert five[:3] == six[:3]
    bottom = five[3:]
    assert abs((bottom[0].x - SAFE.x) - (SAFE.right - bottom[1].right)) <= 1


def test_grid_one_tile_on_an_ultrawide_window_is_not_a_silly_band() -> None:
    (tile,) = tiles(1, Rect(0, 0, 3840, 600), Rect(0, 0, 3840, 600)).tiles
    assert tile.w / tile.h <= 2.0 and tile.h == 600 and tile.center[0] == 1920


def test_speaker_view_gives_the_speaker_the_top_and_the_rest_a_strip() -> None:
    layout = tiles(4, SCREEN, SAFE, Mode.SPEAKER, speaker=2)
    big = layout.tiles[2]
    assert (big.x, big.y, big.w) == (SAFE.x, SAFE.y, SAFE.w)
    assert 0.75 <= big.h / SAFE.h <= 0.8
    strip = [layout.tiles[i] for i in (0, 1, 3)]
    assert strip[0].x < strip[1].x < strip[2].x
    assert abs((strip[0].x - SAFE.x) - (SAFE.right - strip[2].right)) <= 1


def test_speaker_view_defaults_to_the_first_participant_and_one_is_full() -> None:
    assert tiles(3, SCREEN, SAFE, Mode.SPEAKER) == tiles(3, SCREEN, SAFE, Mode.SPEAKER, speaker=0)
    assert tiles(1, SCREEN, SAFE, Mode.SPEAKER).tiles == (SAFE,)


def test_watch_mode_has_content_on_the_left_and_a_sidebar() -> None:
    layout = tiles(3, SCREEN, SAFE, Mode.WATCH)
    assert layout.content is not None
    assert (layout.content.x, layout.content.y, layout.content.h) == (SAFE.x, SAFE.y, SAFE.h)
    assert layout.content.w == round(SAFE.w * 0.75)
    ys = [r.y for r in layout.tiles]
    assert ys == sorted(ys) and len({r.size for r in layout.tiles}) == 1
    assert all(r.x >= layout.content.right for r in layout.tiles)
    top, bottom = layout.tiles[0].y - SAFE.y, SAFE.bottom - layout.tiles[-1].bottom
    assert abs(top - bottom) <= 1


def test_watch_mode_shows_at_most_six_and_content_when_alone() -> None:
    assert len(tiles(9, SCREEN, SAFE, Mode.WATCH).tiles) == WATCH_SIDEBAR_MAX
    assert tiles(9, SCREEN, SAFE, Mode.WATCH).tiles == tiles(6, SCREEN, SAFE, Mode.WATCH).tiles
    empty = tiles(0, SCREEN, SAFE, Mode.WATCH)
    assert empty.tiles == () and empty.content == tiles(2, SCREEN, SAFE, Mode.WATCH).content


def test_watch_full_puts_the_content_on_the_whole_screen_and_the_tiles_in_the_bottom_right_corner() -> None:
    layout = tiles(3, SCREEN, SAFE, Mode.WATCH_FULL)
    assert layout.content == SCREEN
    assert len(layout.tiles) == 3
    assert max(t.right for t in layout.tiles) == SAFE.right and max(t.bottom for t in layout.tiles) == SAFE.bottom
    assert all(t.w <= SAFE.w * 0.16 + 1 and abs(t.w / t.h - 16 / 9) < 0.05 for t in layout.tiles)
    assert tiles(9, SCREEN, SAFE, Mode.WATCH_FULL).tiles[:3] != ()
    assert len(tiles(9, SCREEN, SAFE, Mode.WATCH_FULL).tiles) == PIP_MAX
