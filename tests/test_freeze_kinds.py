"""How bench/quality and the congestion tests tell announced switch-offs from stalls (tvapp.testing.congestion)."""

from __future__ import annotations

from typing import Any

import pytest

from tvapp.testing.congestion import RESUME_GRACE_S, freeze_kinds, freezes, window


def off(t: float) -> dict[str, Any]:
    return {"t": t, "event": "track_switched_off", "sid": "v", "reason": "congestion"}


def on(t: float) -> dict[str, Any]:
    return {"t": t, "event": "track_switched_on", "sid": "v"}


def freeze(start: float, end: float) -> dict[str, Any]:
    # The member's own flag says "announced" for any gap the track was off in; the kinds do not read it.
    return {"t": end, "event": "freeze", "sid": "v", "start": start, "end": end, "announced": True}


def test_a_gap_that_outlasts_its_switch_on_by_more_than_the_grace_is_a_stall_after_switch_on() -> None:
    records = [off(10.0), on(20.0), freeze(9.5, 24.0)]
    kinds = freeze_kinds(records, 0.0, 100.0)
    assert kinds["before_switch_off"] == pytest.approx(0.5)
    assert kinds["switched_off"] == pytest.approx(10.0 + RESUME_GRACE_S)
    assert kinds["after_switch_on"] == pytest.approx(4.0 - RESUME_GRACE_S)
    assert kinds["unannounced"] == 0.0
    assert freezes(records, 0.0, 100.0) == pytest.approx((4.5 - RESUME_GRACE_S, 10.0 + RESUME_GRACE_S))


def test_a_resume_within_the_grace_is_all_announced_and_a_gap_without_switches_is_unannounced() -> None:
    records = [off(10.0), on(20.0), freeze(10.0, 20.5), freeze(30.0, 31.0), off(40.0), on(41.0), off(43.0),
               freeze(40.0, 50.0)]
    kinds = freeze_kinds(records, 0.0, 45.0)  # clipped at 45: the last gap is still going on, switched off
    assert kinds["switched_off"] == pytest.approx(10.5 + (41.0 + RESUME_GRACE_S - 40.0) + 2.0)
    assert kinds["after_switch_on"] == pytest.approx(43.0 - 41.0 - RESUME_GRACE_S)  # on again, no frame, off again
    assert kinds["unannounced"] == pytest.approx(1.0)
    assert kinds["before_switch_off"] == 0.0


def test_a_window_s_rates_are_over_the_time_its_stats_records_span() -> None:
    # Stats every 0.5 s of a steady 16 fps, 90 packets/s stream; a 1 s window whose end falls just before a record
    # spans 0.5 s of counts: over end - start it read 8 fps (a real CI failure), over the records' span 16.
    records = [{"t": 10.0 + 0.5 * i, "stats": {"v": {"kind": "video", "packets": 45 * i, "frames": 8 * i, "lost": 0}}}
               for i in range(10)]
    rates = window(records, 11.0, 11.99)  # records at 11.0 and 11.5 bound it
    assert rates["v"]["fps"] == pytest.approx(16.0) and rates["v"]["pps"] == pytest.approx(90.0)
    assert rates["v"]["received"] == 45
