"""How far behind the live edge a room settles (pure rules, fake clock): each screen's hold (HoldMeter), the need
(largest hold + a margin), the delay growing to it up front instead of by whole waits, and the catch up after a
stall (CATCH_UP_RATE) that brings the room back to its live point without skipping anything or shrinking the delay."""

from __future__ import annotations

import pytest

from tvapp.core.live import (
    CALM_BEFORE_COMING_BACK,
    CATCH_UP_RATE,
    HOLD_MARGIN,
    HOLD_STEP,
    SLOW_DOWN_MAX,
    SLOW_DOWN_RATE,
    HoldMeter,
    KeptWaits,
    LiveInfo,
    needed_delay,
)
from tvapp.core.playback import LIVE_START_GRACE, PlaybackRoom

URL = "http://edge.example/live/stream.m3u8"
T0 = 1_765_000_000.0


def test_a_screens_hold_is_measured_when_it_first_sees_each_new_segment_plus_its_fetch_time() -> None:
    meter = HoldMeter(target_duration=1.0)
    # The first read: segment 20 may have been listed long before, no sample (it would overstate the hold).
    meter.listed(100.0, 20, T0 + 20, edge=T0 + 23.0)
    assert meter.hold is None and meter.report() is None
    meter.listed(100.5, 20, T0 + 20, edge=T0 + 23.5)  # nothing new
    assert meter.hold is None
    meter.listed(101.0, 21, T0 + 21, edge=T0 + 24.0)  # 21 listed between the reads: 3.0 s behind the room's edge
    assert meter.hold == pytest.approx(3.0)
    meter.fetched(0.2)
    assert meter.hold == pytest.approx(3.2)  # in hand once fetched
    assert meter.report() == pytest.approx(3.2)
    meter.listed(102.0, 22, T0 + 22, edge=T0 + 25.0 + HOLD_STEP / 2)  # a little later: not worth a report
    assert meter.report() is None
    meter.listed(103.0, 23, T0 + 23, edge=T0 + 26.6)  # this one came 0.6 s later
    assert meter.report() == pytest.approx(3.8)
    # A read after a gap (longer than a segment) or that skips a segment gives no sample.
    meter.listed(106.0, 24, T0 + 24, edge=T0 + 40.0)
    meter.listed(106.5, 26, T0 + 26, edge=T0 + 40.0)
    assert meter.hold == pytest.approx(3.8)
    # Only the last few segments count: an old slow one is forgotten.
    for index in range(4):
        meter.listed(107.0 + index, 27 + index, T0 + 27 + index, edge=T0 + 30.0 + index)
    assert meter.hold == pytest.approx(3.2)
    assert needed_delay([], 1.0) is None
    assert needed_delay([2.0, 5.0, 3.0], 2.0) == pytest.approx(5.0 + 2.0 * HOLD_MARGIN)


def loaded(delay: float, now: float = 100.0) -> PlaybackRoom:
    room = PlaybackRoom(lead=0.5, live_delay=delay, stall_timeout=30.0)
    info = LiveInfo(live_edge=T0, fetched_at=now - 1.0, window=30.0, target_duration=1.0, program_date_time=True)
    room.command("load", now, is_host=True, content=URL, live=info)
    return room


def test_the_delay_grows_up_front_to_the_largest_hold_and_never_shrinks() -> None:
    room = loaded(delay=3.0)  # a delay the near screen holds, the far one not
    assert room.buffering("tv-near", False, 100.8, hold=2.4) is None  # within the delay: nothing to do
    grown = room.buffering("tv-far", False, 101.2, hold=6.1)
    assert grown is not None and grown.delay == pytest.approx(6.1 + HOLD_MARGIN)
    assert grown.moving and grown.at == pytest.approx(101.7)  # the screens go back together, at once
    assert grown.behind_at(grown.at) == pytest.approx(6.35)
    # The same or a smaller hold, or one within HOLD_STEP: no change, and never a shrink.
    assert room.buffering("tv-far", False, 102.0, hold=5.0) is None
    assert room.buffering("tv-near", False, 102.0, hold=6.1 + HOLD_STEP / 2) is None
    assert room.state.delay == pytest.approx(6.35)
    # A screen that left no longer counts, yet the delay stays where it is.
    room.left("tv-far", 103.0)
    assert room.state.delay == pytest.approx(6.35)
    assert room.command("live", 110.0, is_host=True).behind_at(111.0) == pytest.approx(6.35)
    # A room time-shifted further back (paused) keeps its position: only the delay (its live point) grows.
    paused = room.command("pause", 112.0, is_host=True)
    room.command("play", 122.0, is_host=True)
    later = room.buffering("tv-near", False, 123.0, hold=8.0)
    assert later is not None and later.delay == pytest.approx(8.25)
    assert later.position_at(123.0) == pytest.approx(paused.position + 0.5)  # resumed at 122.5, no jump


def test_after_a_stall_the_room_catches_up_to_its_live_point_instead_of_keeping_the_wait() -> None:
    room = loaded(delay=6.0)
    room.buffering("tv-a", False, 101.0, hold=4.0)
    room.buffering("tv-b", False, 101.2, hold=5.0)  # both hold 6 s: no growth
    assert room.state.delay == 6.0
    assert room.tick(100.5 + LIVE_START_GRACE) is None
    waiting = room.buffering("tv-b", True, 110.0)  # a CPU or network hiccup, after the grace
    assert waiting is not None and waiting.waiting_for == ("tv-b",) and not waiting.moving
    resumed = room.buffering("tv-b", False, 111.5)
    assert resumed is not None and resumed.moving and resumed.at == pytest.approx(112.0)
    assert resumed.delay == 6.0  # the wait is not kept: the old rule made it 8.0
    assert resumed.position == pytest.approx(waiting.position)  # nothing skipped
    assert resumed.rate == CATCH_UP_RATE
    excess = resumed.behind_at(112.0) - 6.0  # type: ignore[operator]
    assert excess == pytest.approx(2.0)
    until = room.next_deadline()
    assert until == pytest.approx(112.0 + excess / (CATCH_UP_RATE - 1.0))
    assert until is not None and room.tick(until - 0.01) is None
    caught = room.tick(until + 0.02)  # a late timer: the room never gets closer than its delay
    assert caught is not None and caught.rate == 1.0 and caught.moving
    assert caught.behind_at(until + 0.02) == pytest.approx(6.0, abs=1e-6)
    assert room.next_deadline() is None


def test_a_stall_that_needs_more_grows_to_what_the_screen_holds_and_a_command_ends_a_catch_up() -> None:
    room = loaded(delay=6.0)
    room.buffering("tv-a", False, 101.0, hold=5.0)
    room.tick(100.5 + LIVE_START_GRACE)
    room.buffering("tv-a", True, 110.0)
    # While the room waits, the screen finds its edge later than it was: its hold says what it needs.
    frozen = room.buffering("tv-a", True, 110.8, hold=6.5)
    assert frozen is not None and frozen.delay == pytest.approx(6.75) and frozen.waiting_for == ("tv-a",)
    resumed = room.buffering("tv-a", False, 111.5)
    assert resumed is not None and resumed.delay == pytest.approx(6.75)  # not 6.0 + the 2 s wait
    assert resumed.rate == CATCH_UP_RATE
    assert resumed.behind_at(112.0) == pytest.approx(6.0 + 2.0)  # frozen at 110: 2 s standing still
    # A pause ends the catch up: the host's time shift is the host's.
    paused = room.command("pause", 113.0, is_host=True)
    assert paused.rate == 1.0 and room.next_deadline() is None


def test_a_screen_that_never_told_its_hold_still_grows_the_delay_by_the_wait() -> None:
    room = loaded(delay=6.0)
    room.buffering("tv-a", False, 101.0, hold=5.0)
    room.tick(100.5 + LIVE_START_GRACE)
    room.buffering("phone", True, 110.0)  # a screen that does not measure its hold (it may not hold the delay)
    resumed = room.buffering("phone", False, 111.5)
    assert resumed is not None and resumed.delay == pytest.approx(8.0) and resumed.rate == 1.0


def test_after_the_grace_a_small_growth_slows_the_room_down_together_and_a_large_one_jumps_back() -> None:
    room = loaded(delay=6.0)
    assert room.tick(100.5 + LIVE_START_GRACE) is None  # no stall: nothing to wait for
    before = room.state
    slowed = room.buffering("tv-far", False, 110.0, hold=6.25)  # needs 6.5: half a second more
    assert slowed is not None and slowed.delay == pytest.approx(6.5) and slowed.moving
    assert slowed.rate == SLOW_DOWN_RATE and slowed.at == 110.0
    assert slowed.position == pytest.approx(before.position_at(110.0))  # no jump: every screen just slows down
    until = room.next_deadline()
    assert until == pytest.approx(110.0 + 0.5 / (1.0 - SLOW_DOWN_RATE))
    assert until is not None and room.tick(until - 0.01) is None
    steady = room.tick(until + 0.02)
    assert steady is not None and steady.rate == 1.0
    assert steady.behind_at(until + 0.02) == pytest.approx(6.5 + 0.002, abs=1e-6)  # never closer than the delay
    # A hold that comes while a resume has not taken effect yet (its lead): slowed down from where it starts.
    room.buffering("tv-far", True, 120.0)
    resumed = room.buffering("tv-far", True, 120.1) or room.buffering("tv-far", False, 120.1)
    assert resumed is not None and resumed.at == 120.6 and resumed.rate == CATCH_UP_RATE  # 7.1 s behind
    late = room.buffering("tv-far", False, 120.3, hold=7.0)  # needs 7.25: closer than that when it starts
    assert late is not None and late.delay == pytest.approx(7.25)
    assert late.rate == SLOW_DOWN_RATE and late.at == 120.6  # it used to jump back (a seek for every screen)
    assert late.position == pytest.approx(resumed.position)
    room.tick(room.next_deadline() or 0.0)
    # More than SLOW_DOWN_MAX at once: every screen goes back together now (a seek), rather than 10+ s of slow motion.
    jumped = room.buffering("tv-far", False, 130.0, hold=7.25 + SLOW_DOWN_MAX + 0.25)
    assert jumped is not None and jumped.rate == 1.0 and jumped.at == pytest.approx(130.5)
    assert jumped.behind_at(jumped.at) == pytest.approx(7.25 + SLOW_DOWN_MAX + 0.5)


def test_a_stall_while_catching_up_keeps_its_wait_in_the_delay() -> None:
    # Screens that cannot hold the faster pace (a machine short of CPU decodes 10 % more frames a second) would
    # otherwise stall, catch up, stall again: the second wait is kept, as for a screen that tells no hold.
    room = loaded(delay=6.0)
    room.buffering("tv-a", False, 101.0, hold=5.0)
    room.tick(100.5 + LIVE_START_GRACE)
    room.buffering("tv-a", True, 110.0)
    catching = room.buffering("tv-a", False, 111.5)
    assert catching is not None and catching.rate == CATCH_UP_RATE and catching.delay == 6.0
    room.buffering("tv-a", True, 113.0)
    resumed = room.buffering("tv-a", False, 114.0)
    # Kept: the 1.5 s wait and the 1.9 s not made up yet (2 s at 1.1 from 112.0 to 113.0 made up 0.1 s); the delay
    # says where the room is (it used to say 7.5 with the room 9.4 s behind).
    assert resumed is not None and resumed.rate == 1.0 and resumed.delay == pytest.approx(6.0 + 1.5 + 1.9)
    assert resumed.behind_at(114.5) == pytest.approx(resumed.delay)
    assert room.next_deadline() == pytest.approx(114.5 + CALM_BEFORE_COMING_BACK)  # kept for a calm while only
    # The next stall (not during a catch up) is caught up again.
    room.buffering("tv-a", True, 120.0)
    again = room.buffering("tv-a", False, 121.0)
    assert again is not None and again.rate == CATCH_UP_RATE and again.delay == pytest.approx(9.4)


def test_a_kept_wait_is_caught_up_after_a_calm_while_to_what_the_screens_hold_never_below() -> None:
    room = loaded(delay=6.0)
    room.buffering("tv-a", False, 101.0, hold=5.0)
    room.buffering("tv-b", False, 101.0, hold=5.5)
    room.tick(100.5 + LIVE_START_GRACE)
    room.buffering("tv-a", True, 110.0)
    room.buffering("tv-a", False, 111.5)  # catching up at 1.1 from 112.0 (2 s to make up: until 132.0)
    room.buffering("tv-a", True, 113.0)  # a stall during the catch up: its wait (and what was left) is kept
    kept = room.buffering("tv-a", False, 114.0)
    assert kept is not None and kept.rate == 1.0 and kept.delay == pytest.approx(9.4)  # see the test above
    due = 114.5 + CALM_BEFORE_COMING_BACK
    assert room.next_deadline() == pytest.approx(due)
    # Another wait (caught up as usual) starts the calm again.
    room.buffering("tv-b", True, 118.0)
    catching = room.buffering("tv-b", False, 118.2)
    assert catching is not None and catching.rate == CATCH_UP_RATE and catching.delay == pytest.approx(9.4)
    assert room.tick(due) is None  # catching up: not now
    caught = room.tick(room.next_deadline() or 0.0)  # 0.7 s made up by 125.7
    assert caught is not None and caught.rate == 1.0 and caught.delay == pytest.approx(9.4)
    due = room.next_deadline()
    assert due is not None and due == pytest.approx(118.7 + CALM_BEFORE_COMING_BACK)
    assert room.tick(due - 0.01) is None
    # A screen found it needs more meanwhile: the room comes back to that, not to the 6 s chosen at the load.
    assert room.buffering("tv-b", False, due - 0.5, hold=6.5) is None  # 6.75 < 9.4: nothing to grow
    back = room.tick(due)
    assert back is not None and back.delay == pytest.approx(6.75) and back.rate == CATCH_UP_RATE and back.moving
    assert back.position == pytest.approx(caught.position_at(due))  # together, nothing skipped, no seek
    until = room.next_deadline()
    assert until == pytest.approx(due + (9.4 - 6.75) / (CATCH_UP_RATE - 1.0))
    done = room.tick(until or 0.0)
    assert done is not None and done.rate == 1.0 and done.behind_at(until or 0.0) == pytest.approx(6.75, abs=1e-6)
    assert room.next_deadline() is None


def test_kept_waits_back_off_and_are_not_undone_for_a_screen_without_a_hold_or_while_time_shifted() -> None:
    waits = KeptWaits(6.0)
    waits.kept(10.0)
    assert waits.back_to(10.0 + CALM_BEFORE_COMING_BACK - 0.01, 7.5, [5.0], 1.0) is None
    assert waits.back_to(10.0 + CALM_BEFORE_COMING_BACK, 7.5, [5.0], 1.0) == 6.0
    assert waits.back_to(30.0, 7.5, [5.0], 1.0) is None  # done: nothing due
    waits.kept(40.0)  # a second kept wait: twice the calm
    assert waits.due == pytest.approx(40.0 + 2 * CALM_BEFORE_COMING_BACK)
    assert waits.back_to(waits.due, 6.0 + HOLD_STEP / 2, [], 1.0) is None  # too little to undo
    # The phone page tells no hold: its wait grows the delay for good (nothing to come back from).
    room = loaded(delay=6.0)
    room.buffering("tv-a", False, 101.0, hold=5.0)
    room.tick(100.5 + LIVE_START_GRACE)
    room.buffering("tv-a", True, 110.0)
    room.buffering("tv-a", False, 111.5)
    room.buffering("phone", True, 113.0)
    assert room.buffering("phone", False, 114.0) is not None and room.state.delay == pytest.approx(9.4)
    assert room.next_deadline() is None
    # Time-shifted by the host when it is due: only the live point (the delay) comes back, the position stays.
    room = loaded(delay=6.0)
    room.buffering("tv-a", False, 101.0, hold=5.0)
    room.tick(100.5 + LIVE_START_GRACE)
    room.buffering("tv-a", True, 110.0)
    room.buffering("tv-a", False, 111.5)
    room.buffering("tv-a", True, 113.0)
    room.buffering("tv-a", False, 114.0)
    room.command("pause", 115.0, is_host=True)
    assert room.tick(114.5 + CALM_BEFORE_COMING_BACK) is None  # paused: later
    played = room.command("play", 130.0, is_host=True)
    due = room.next_deadline()
    assert due is not None and due > 130.5
    shifted = room.tick(due)
    assert shifted is not None and shifted.delay == pytest.approx(6.0) and shifted.rate == 1.0
    assert shifted.position_at(due) == pytest.approx(played.position_at(due))
