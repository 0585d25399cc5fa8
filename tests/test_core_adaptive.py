"""Tests for tvapp.core.adaptive: the publisher constraints rule, the publisher's scale steps and the message gate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvapp.core.adaptive import (
    BITRATE_HYSTERESIS,
    DOWN_HOLD_MS,
    FULL_FRAMERATE,
    LINK_HEADROOM,
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
    link_share,
    need_bps,
    scale_for,
    scaled_size,
    small_bitrate_change,
)

MAX = 2_500_000


def tile(w: int, h: int, visible: bool = True, priority: str = "standard", link: int | None = None,
         withheld: bool = False, congested: bool = False) -> Viewer:
    return Viewer(ViewerSettings(w, h, visible, priority), link, withheld, congested)


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
    weak, strong = tile(1280, 720, link=200_000), tile(1280, 720, link=1_000_000)
    assert constraints_for([weak, strong], max_bitrate=MAX).max_bitrate == 1_000_000
    assert constraints_for([weak, tile(1280, 720)], max_bitrate=MAX).max_bitrate == int(1280 * 720 * 30 * 0.08)
    assert constraints_for([tile(1280, 720, link=10_000)], max_bitrate=MAX).max_bitrate == MIN_BITRATE


def test_a_withheld_or_congested_subscriber_does_not_drag_the_publisher_down() -> None:
    good = tile(1280, 720, link=1_800_000)
    weak_off = tile(1280, 720, link=300_000, withheld=True, congested=True)
    weak_on = tile(1280, 720, link=300_000, congested=True)  # receives this one, others of its tracks are off
    assert constraints_for([good, weak_off, weak_on], max_bitrate=MAX).max_bitrate == 1_800_000
    unknown_good = tile(1280, 720)
    assert constraints_for([unknown_good, weak_off], max_bitrate=MAX).max_bitrate == int(1280 * 720 * 30 * 0.08)


def test_when_only_weak_subscribers_watch_the_publisher_comes_down_to_fit_the_best_of_them() -> None:
    mid = tile(1280, 720, link=1_000_000, withheld=True, congested=True)
    weaker = tile(1280, 720, link=400_000, withheld=True, congested=True)
    assert constraints_for([mid, weaker], max_bitrate=MAX).max_bitrate == 1_000_000
    assert constraints_for([weaker], max_bitrate=MAX).max_bitrate == 400_000
    assert constraints_for([mid, tile(1280, 720, withheld=True)], max_bitrate=MAX).max_bitrate > 2_000_000  # unknown


def test_a_link_is_split_over_the_tracks_received_by_what_each_needs() -> None:
    big, thumb = need_bps(ViewerSettings(1280, 720), max_bitrate=MAX), need_bps(ViewerSettings(160, 90),
                                                                                  max_bitrate=MAX)
    assert (big, thumb) == (int(1280 * 720 * 30 * 0.08), MIN_BITRATE)
    assert need_bps(None, max_bitrate=MAX) == need_bps(ViewerSettings(0, 0), max_bitrate=MAX) == MAX
    assert need_bps(ViewerSettings(160, 90, priority="high"), max_bitrate=MAX) == MIN_BITRATE
    assert need_bps(ViewerSettings(640, 360, priority="low"), max_bitrate=MAX) == int(640 * 360 * 15 * 0.08)
    link = 3_000_000
    shares = [link_share(link, big, [thumb] * 5)] + [link_share(link, thumb, [big] + [thumb] * 4)] * 5
    assert shares[0] > 4 * shares[1]
    assert sum(shares) == pytest.approx(LINK_HEADROOM * link, rel=1e-3)
    assert link_share(link, big, []) == int(LINK_HEADROOM * link)
    assert link_share(link, big, [big, big]) == int(LINK_HEADROOM * link / 3)
    with pytest.raises(ValueError):
        link_share(-1, big, [])


def test_the_gate_ignores_a_small_bitrate_change_and_sends_a_large_one() -> None:
    gate = ConstraintsGate()
    base = Constraints(max_width=1280, max_height=720, max_framerate=30, max_bitrate=2_000_000)
    gate.offer(base, 0.0)
    assert gate.offer(base, DOWN_HOLD_MS) == base
    nudge = int(2_000_000 * (1 + BITRATE_HYSTERESIS)) - 1
    t = DOWN_HOLD_MS + MIN_INTERVAL_MS
    for bps in (nudge, 2_000_000 * 2 - nudge, 1_800_000):
        assert small_bitrate_change(base, Constraints(1280, 720, 30, bps))
        for k in range(20):
            assert gate.offer(Constraints(1280, 720, 30, bps), t + k * 100.0) is None
    up = Constraints(1280, 720, 30, int(2_000_000 * (1 + BITRATE_HYSTERESIS)))
    assert gate.offer(up, t + 2000.0) == up  # more: at once
    down = Constraints(1280, 720, 30, 1_000_000)
    assert gate.offer(down, t + 3000.0) is None
    assert gate.offer(down, t + 3000.0 + DOWN_HOLD_MS) == down  # less: once it held
    assert not small_bitrate_change(down, Constraints(640, 360, 30, 1_000_000))  # the size changed too
    assert not small_bitrate_change(Constraints(), down)


def test_a_drifting_link_estimate_does_not_hold_a_lower_bitrate_back_forever() -> None:
    gate = ConstraintsGate()
    t = 0.0
    sent = None
    while sent is None and t < 5000.0:  # every 100 ms a slightly different estimate
        sent = gate.offer(Constraints(1280, 720, 30, 1_000_000 + int(t) * 20), t)
        t += 100.0
    assert sent is not None and t <= DOWN_HOLD_MS + 200.0, (sent, t)


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
