"""The content player's stall, readiness and seek rules (tvapp.core.stall) on a fake clock: no sleeps, no decoder."""

from __future__ import annotations

import dataclasses
import math

import pytest

from tvapp.core.stall import FAR, READY_AHEAD, STALL_AFTER, BufferView, Report, StallDecision, StallMonitor

NOTHING = StallDecision()
STEP = 0.02  # what the player's monitor thread waits between two looks


def view(ahead: float, *, target: float = 5.0, moving: bool = True, oldest: float | None = None,
         **flags: bool) -> BufferView:
    """Return a buffer `ahead` seconds past `target`, starting a little behind it unless `oldest` says otherwise."""
    return BufferView(target=target, moving=moving, ahead=ahead, oldest=target - 0.3 if oldest is None else oldest,
                      **flags)


def run(monitor: StallMonitor, start: float, seconds: float, buffer: BufferView, *,
        stalled: bool = False) -> list[tuple[float, StallDecision]]:
    """Feed the same view every STEP seconds from `start` for `seconds`; return the decisions that did something."""
    out = []
    for i in range(round(seconds / STEP) + 1):
        now = start + i * STEP
        decision = monitor.update(now, buffer, stalled=stalled)
        if decision != NOTHING:
            out.append((now, decision))
            if decision.report is not None:
                stalled = decision.report is Report.STALLED
    return out


def test_a_moving_timeline_past_the_buffer_is_a_stall_only_after_stall_after() -> None:
    monitor = StallMonitor()
    starving = view(-0.01)
    assert run(monitor, 100.0, STALL_AFTER - 0.01, starving) == []
    decided = monitor.update(100.0 + STALL_AFTER + 0.01, starving, stalled=False)
    assert decided == StallDecision(report=Report.STALLED)


def test_a_short_gap_is_forgotten_once_the_buffer_catches_up() -> None:
    monitor = StallMonitor()
    assert run(monitor, 0.0, 0.2, view(-0.01)) == []
    assert monitor.update(0.22, view(0.3), stalled=False) == NOTHING  # caught up: the clock starts again
    assert run(monitor, 0.24, 0.2, view(-0.01)) == []  # 0.2 s of a new gap is not a stall yet


def test_a_paused_timeline_never_stalls() -> None:
    monitor = StallMonitor()
    assert [d.report for _, d in run(monitor, 0.0, 2.0, view(-math.inf, moving=False)) if d.report] == []


def test_a_stalled_screen_is_ready_once_ready_ahead_is_buffered() -> None:
    monitor = StallMonitor()
    assert monitor.update(0.0, view(READY_AHEAD - 0.01), stalled=True) == NOTHING
    assert monitor.update(0.02, view(READY_AHEAD), stalled=True) == StallDecision(report=Report.READY)
    assert monitor.update(0.04, view(READY_AHEAD), stalled=False) == NOTHING  # said once


def test_a_stalled_screen_stays_stalled_while_paused_with_too_little_buffered() -> None:
    monitor = StallMonitor()
    assert run(monitor, 0.0, 1.0, view(0.1, moving=False), stalled=True) == []
    assert monitor.update(1.1, view(0.6, moving=False), stalled=True).report is Report.READY


def test_a_failed_content_only_ever_reports_ready() -> None:
    monitor = StallMonitor()
    broken = view(math.inf, failed=True)
    assert run(monitor, 0.0, 1.0, dataclasses.replace(broken, ahead=-1.0)) == []
    assert monitor.update(1.1, broken, stalled=True) == StallDecision(report=Report.READY)


def test_a_timeline_that_jumped_back_before_the_buffer_seeks_at_once() -> None:
    monitor = StallMonitor()
    jumped = view(8.0, target=1.0, oldest=1.0 + FAR + 0.01)
    assert monitor.update(0.0, jumped, stalled=False) == StallDecision(seek=True)
    assert monitor.update(0.02, view(8.0, target=1.0, oldest=1.0 + FAR), stalled=False) == NOTHING


def test_a_buffer_far_behind_that_does_not_catch_up_seeks_after_far_seconds() -> None:
    monitor = StallMonitor()
    behind = view(-(FAR + 0.2), moving=False)
    decisions = run(monitor, 10.0, 2.0, behind)
    seeks = [now for now, d in decisions if d.seek]
    assert seeks and seeks[0] == pytest.approx(10.0 + FAR + STEP)  # the first look past `far` seconds
    assert all(b - a > 1.0 for a, b in zip(seeks, seeks[1:]))  # never two within seek_gap


def test_a_buffer_far_behind_that_is_catching_up_is_left_alone() -> None:
    monitor = StallMonitor()
    gap, now = 3.0, 0.0
    while gap > FAR:  # 40 looks, 0.8 s: longer than `far`, but the gap shrinks by more than `progress` each look
        assert not monitor.update(now, view(-gap, moving=False), stalled=False).seek
        gap, now = gap - 0.06, now + STEP


def test_no_seek_before_the_content_is_open_or_while_one_is_pending() -> None:
    monitor = StallMonitor()
    for flags in ({"opened": False}, {"seek_pending": True}):
        far_off = view(-5.0, moving=False, oldest=9.0, **flags)
        assert not [d for _, d in run(monitor, 0.0, 2.0, far_off) if d.seek], flags


def test_reset_forgets_the_timers_for_a_new_content() -> None:
    monitor = StallMonitor()
    assert run(monitor, 0.0, 0.2, view(-0.01)) == []
    monitor.reset()
    assert monitor.update(0.3, view(-0.01), stalled=False) == NOTHING  # would have been a stall without the reset


@pytest.mark.parametrize(("buffer", "covered"), [
    (view(0.4, target=5.0), True),  # inside the buffer
    (view(-0.4, target=5.0), True),  # just past it: decoding catches up
    (view(-0.6, target=5.0), False),  # far past it
    (view(3.0, target=1.0, oldest=1.2), False),  # before it
    (view(3.0, target=1.0, oldest=1.0005), True),  # a hair before: tolerated
    (view(3.0, target=1.0, oldest=1.033), True),  # the frame a TV picked for its next flips: no seek for that
    (view(-3.0, target=5.0, eof=True), True),  # decoded to the end
    (view(-9.0, target=5.0, opened=False), True),  # the decoder seeks to the timeline when it opens
    (view(-9.0, target=5.0, seek_pending=True), True),
    (view(-math.inf, target=5.0, oldest=math.inf), False),  # nothing buffered
])  # fmt: skip
def test_covers_says_when_a_timeline_change_needs_a_seek(buffer: BufferView, covered: bool) -> None:
    assert StallMonitor().covers(buffer) is covered


def test_durations_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        StallMonitor(stall_after=-1.0)
