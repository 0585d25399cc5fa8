"""Tests for tvapp.core.adaptive: the publisher constraints rule, the publisher's scale steps and the message gate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.adaptive import (
    DOWN_HOLD_MS,
    FULL_FRAMERATE,
    MIN_BITRATE,
    MIN_INTERVAL_MS,
    PAUSED,
    SCALE_STEPS,
    THUMBNAIL_FRAMERATE,
    Constraints,
    ConstraintsGate,
    Viewer,
    ViewerSettings,
    asks_for_more,
    constraints_for,
    scale_for,
    scaled_size,
)

MAX = 2_500_000


def tile(w: int, h: int, visible: bool = True, priority: str = "standard", link: int | None = None,
         tracks: int = 1) -> Viewer:
    return Viewer(ViewerSettings(w, h, visible, priority), link, tracks)


def test_nobody_watching_pauses_unless_something_else_needs_the_track() -> None:
    assert constraints_for([], max_bitrate=MAX) == PAUSED
    assert constraints_for([tile(400, 300, visible=False)] * 3, max_bitrate=MAX) == PAUSED
    recorded = constraints_for([], max_bitrate=MAX, keep_running=True)
    assert not recorded.paused and recorded.max_width is None and recorded.max_bitrate == MAX


def test_a_subscriber_that_said_nothing_gets_the_full_size() -> None:
    c = constraints_for([tile(320, 180), Viewer()], max_bitrate=MAX)
    assert (c.max_width, c.max_height, c.max_framerate, c.max_bitrate) == (None, None, FULL_FRAMERATE, MAX)
    assert constraints_for([tile(0, 0)], max_bitrate=MAX).max_width is None


def test_the_largest_visible_tile_rounded_down_to_even_sets_the_box() -> None:
    c = constraints_for([tile(400, 225), tile(1150, 450), tile(1900, 1000, visible=False)], max_bitrate=MAX)
    assert (c.max_width, c.max_height) == (1150, 450)
    assert not c.paused and c.max_framerate == FULL_FRAMERATE
    assert constraints_for([tile(5, 5)], max_bitrate=MAX).max_width == 4
    assert constraints_for([tile(1, 1)], max_bitrate=MAX).max_width == 2


def test_thumbnails_get_a_lower_frame_rate_unless_high_priority_and_low_priority_never_raises_it() -> None:
    assert constraints_for([tile(160, 90)], max_bitrate=MAX).max_framerate == THUMBNAIL_FRAMERATE
    assert constraints_for([tile(160, 90, priority="high")], max_bitrate=MAX).max_framerate == FULL_FRAMERATE
    assert constraints_for([tile(1280, 720, priority="low")], max_bitrate=MAX).max_framerate == THUMBNAIL_FRAMERATE


def test_bitrate_follows_the_size_within_the_server_limits() -> None:
    small = constraints_for([tile(160, 96)], max_bitrate=MAX)
    assert small.max_bitrate == MIN_BITRATE
    mid = constraints_for([tile(640, 360)], max_bitrate=MAX)
    assert mid.max_bitrate == int(640 * 360 * 30 * 0.08)
    assert constraints_for([tile(3840, 2160)], max_bitrate=MAX).max_bitrate == MAX


def test_the_strongest_known_link_caps_the_bitrate_and_an_unknown_link_does_not() -> None:
    weak, strong = tile(1280, 720, link=400_000, tracks=2), tile(1280, 720, link=3_000_000, tracks=3)
    assert constraints_for([weak, strong], max_bitrate=MAX).max_bitrate == 1_000_000
    assert constraints_for([weak, tile(1280, 720)], max_bitrate=MAX).max_bitrate == int(1280 * 720 * 30 * 0.08)
    assert constraints_for([tile(1280, 720, link=10_000)], max_bitrate=MAX).max_bitrate == MIN_BITRATE


@given(st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 3000), st.booleans(),
                          st.sampled_from(["low", "standard", "high"]),
                          st.one_of(st.none(), st.integers(0, 20_000_000))), max_size=8))
def test_constraints_stay_in_range_and_never_cut_a_visible_tile(rows: list[tuple[int, int, bool, str, int | None]]
                                                                 ) -> None:
    viewers = [tile(w, h, v, p, link) for w, h, v, p, link in rows]
    c = constraints_for(viewers, max_bitrate=MAX)
    visible = [row for row in rows if row[2]]
    assert c.paused == (not visible)
    if c.paused:
        assert c == PAUSED
        return
    assert c.max_bitrate is not None and MIN_BITRATE <= c.max_bitrate <= MAX
    if c.max_width is not None and c.max_height is not None:
        assert c.max_width % 2 == 0 and c.max_height % 2 == 0
        widest, tallest = max(w for w, *_ in visible), max(h for _, h, *_ in visible)
        assert all(w > 0 and h > 0 for w, h, *_ in visible)  # else no limit
        assert widest - 2 < c.max_width <= max(2, widest) and tallest - 2 < c.max_height <= max(2, tallest)


@given(st.integers(2, 4000), st.integers(2, 3000), st.integers(1, 4000), st.integers(1, 3000))
def test_the_scaled_picture_fits_the_box_by_a_scale_step(w: int, h: int, box_w: int, box_h: int) -> None:
    c = Constraints(max_width=box_w, max_height=box_h)
    scale = scale_for(w, h, c)
    sw, sh = scaled_size(w, h, c)
    assert sw % 2 == 0 and sh % 2 == 0
    assert (sw <= max(2, box_w) and sh <= max(2, box_h))
    if scale <= SCALE_STEPS[-1]:
        assert scale in SCALE_STEPS


def test_a_camera_in_a_grid_tile_is_sent_at_a_quarter_and_unlimited_at_full_size() -> None:
    assert scaled_size(1280, 720, Constraints(max_width=400, max_height=224)) == (320, 180)
    assert scaled_size(1280, 720, Constraints(max_width=1150, max_height=450)) == (640, 360)
    assert scaled_size(1280, 720, Constraints(max_width=640, max_height=360)) == (640, 360)
    assert scaled_size(1280, 720, Constraints()) == (1280, 720)


def test_asks_for_more() -> None:
    base = Constraints(max_width=320, max_height=176, max_framerate=15, max_bitrate=200_000)
    assert asks_for_more(PAUSED, base) and not asks_for_more(base, PAUSED)
    assert asks_for_more(base, Constraints(max_width=640, max_height=176, max_framerate=15, max_bitrate=200_000))
    assert asks_for_more(base, Constraints())
    assert not asks_for_more(Constraints(), base)


def test_the_gate_sends_more_at_once_and_less_once_it_has_held() -> None:
    gate = ConstraintsGate()
    assert gate.offer(Constraints(), 0.0) is None  # a publisher starts unconstrained
    small = Constraints(max_width=320, max_height=176, max_framerate=15, max_bitrate=200_000)
    assert gate.offer(small, 0.0) is None
    assert gate.offer(small, DOWN_HOLD_MS - 1) is None
    assert gate.offer(small, DOWN_HOLD_MS) == small
    big = Constraints(max_width=1136, max_height=448, max_framerate=30, max_bitrate=1_200_000)
    assert gate.offer(big, DOWN_HOLD_MS + 10) is None  # within MIN_INTERVAL_MS of the last message
    assert gate.offer(big, DOWN_HOLD_MS + MIN_INTERVAL_MS) == big
    assert gate.sent == big


def test_a_shrinking_storm_sends_one_message_when_it_settles() -> None:
    gate = ConstraintsGate()
    sent = []
    t = 0.0
    for width in range(1280, 320, -16):  # 60 resizes, 50 ms apart
        c = Constraints(max_width=width, max_height=width * 9 // 16 // 16 * 16, max_framerate=30)
        out = gate.offer(c, t)
        if out is not None:
            sent.append(out)
        t += 50
    last = c
    while gate.offer(last, t) is None and t < 10_000:
        t += 50
    assert gate.sent == last and len(sent) <= 1


def test_a_growing_storm_is_limited_to_one_message_per_interval() -> None:
    gate = ConstraintsGate()
    gate.offer(PAUSED, 0.0)
    assert gate.offer(PAUSED, DOWN_HOLD_MS) == PAUSED
    sent = 0
    for i in range(40):
        if gate.offer(Constraints(max_width=320 + 16 * i, max_height=176, max_framerate=30),
                      DOWN_HOLD_MS + 1 + i * 25.0) is not None:
            sent += 1
    assert 1 <= sent <= 40 * 25 / MIN_INTERVAL_MS + 1


@pytest.mark.parametrize("wanted", [PAUSED, Constraints(max_width=16, max_height=16)])
def test_the_same_wish_is_never_sent_twice(wanted: Constraints) -> None:
    gate = ConstraintsGate()
    assert gate.offer(wanted, 0.0) is None
    assert gate.offer(wanted, DOWN_HOLD_MS) == wanted
    assert all(gate.offer(wanted, DOWN_HOLD_MS + k * 100.0) is None for k in range(1, 30))
