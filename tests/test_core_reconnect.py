"""tvapp.core.reconnect: the reconnecting state per participant, its grace window and what to announce, on a fake
clock (time is an argument), plus the dead-path detector and the media-restart rate rule."""

from __future__ import annotations

import pytest

from tvapp.core.reconnect import (
    MEDIA_SILENCE_S,
    TRANSITIONS,
    Announce,
    Cause,
    LinkEvent,
    LinkState,
    PacketWatch,
    Presence,
    address_lost,
    check_grace,
    may_restart_media,
)


def test_a_signal_drop_announces_reconnecting_once_and_the_resume_announces_reconnected() -> None:
    p = Presence(grace=20.0)
    assert p.lost(Cause.SIGNAL, 100.0) is Announce.RECONNECTING
    assert p.state is LinkState.RECONNECTING and p.deadline == 120.0
    assert p.lost(Cause.SIGNAL, 101.0) is Announce.NOTHING
    assert p.tick(119.9) is Announce.NOTHING
    assert p.back(Cause.SIGNAL, 110.0) is Announce.RECONNECTED
    assert p.state is LinkState.CONNECTED and p.deadline is None
    assert p.tick(1000.0) is Announce.NOTHING


def test_past_the_window_the_participant_leaves_exactly_once() -> None:
    p = Presence(grace=20.0)
    p.lost(Cause.SIGNAL, 100.0)
    assert p.tick(119.999) is Announce.NOTHING
    assert p.tick(120.0) is Announce.LEFT
    assert p.state is LinkState.GONE
    assert p.tick(130.0) is Announce.NOTHING
    assert p.back(Cause.SIGNAL, 131.0) is Announce.NOTHING  # too late: a resume after the window changes nothing
    assert p.lost(Cause.MEDIA, 132.0) is Announce.NOTHING


def test_two_causes_keep_one_window_and_only_the_last_back_announces() -> None:
    p = Presence(grace=20.0)
    assert p.lost(Cause.MEDIA, 100.0) is Announce.RECONNECTING
    assert p.lost(Cause.SIGNAL, 105.0) is Announce.NOTHING
    assert p.deadline == 120.0  # the window does not restart
    assert p.back(Cause.SIGNAL, 106.0) is Announce.NOTHING
    assert p.state is LinkState.RECONNECTING
    assert p.back(Cause.MEDIA, 107.0) is Announce.RECONNECTED


def test_media_silence_alone_with_live_signaling_never_times_out_but_a_silent_one_does() -> None:
    alive = Presence(grace=20.0)
    alive.lost(Cause.MEDIA, 100.0)
    alive.signal_activity(110.0)
    assert alive.tick(125.0) is Announce.NOTHING and alive.state is LinkState.RECONNECTING
    silent = Presence(grace=20.0)
    silent.signal_activity(99.0)
    silent.lost(Cause.MEDIA, 100.0)
    assert silent.tick(120.0) is Announce.LEFT
    both = Presence(grace=20.0)
    both.lost(Cause.MEDIA, 100.0)
    both.lost(Cause.SIGNAL, 101.0)
    both.signal_activity(100.5)
    assert both.tick(120.0) is Announce.LEFT


def test_back_while_connected_is_nothing_and_the_table_has_no_way_out_of_gone() -> None:
    p = Presence(grace=5.0)
    assert p.back(Cause.MEDIA, 1.0) is Announce.NOTHING
    assert p.tick(100.0) is Announce.NOTHING
    assert not any(state is LinkState.GONE for state, _ in TRANSITIONS)
    assert TRANSITIONS[(LinkState.RECONNECTING, LinkEvent.EXPIRED)] == (LinkState.GONE, Announce.LEFT)


@pytest.mark.parametrize("value", [0.5, 601, -1, True, "20"])
def test_the_grace_window_has_limits(value: object) -> None:
    with pytest.raises(ValueError, match="reconnect_grace"):
        check_grace(value)  # type: ignore[arg-type]


def test_the_grace_window_limits_are_inclusive() -> None:
    assert check_grace(1) == 1.0 and check_grace(600) == 600.0 and check_grace(20) == 20.0


def test_a_packet_counter_that_stops_is_a_dead_path_and_one_that_moves_again_is_back() -> None:
    watch = PacketWatch(silence=1.5)
    assert watch.observe(0, 0.0, expecting=True) is None  # nothing ever arrived: not judged
    assert watch.observe(0, 10.0, expecting=True) is None
    assert watch.observe(5, 11.0, expecting=True) is None
    assert watch.observe(5, 12.4, expecting=True) is None
    assert watch.observe(5, 12.5, expecting=True) is True
    assert watch.observe(5, 13.0, expecting=True) is None  # said once
    assert watch.observe(6, 14.0, expecting=True) is False
    assert watch.observe(7, 14.1, expecting=True) is None


def test_a_quiet_path_that_expects_nothing_is_not_dead() -> None:
    watch = PacketWatch(silence=1.5)
    watch.observe(3, 0.0, expecting=False)
    assert watch.observe(3, 100.0, expecting=False) is None


def test_media_restarts_are_rate_limited() -> None:
    assert may_restart_media(None, 5.0)
    assert not may_restart_media(5.0, 5.99)
    assert may_restart_media(5.0, 6.0)


def test_a_jitter_spike_shorter_than_the_threshold_is_never_a_dead_path() -> None:
    # packets every 20 ms, read four times a second; then nothing for 1 s (a jitter spike far beyond any jitter
    # buffer's, or a Wi-Fi retry storm) and a burst: the path was late, not dead. (Read every 0.25 s, a stall can
    # look up to one read longer than it was: 1 s of nothing is 1.25 s at worst, still under the 1.5 s threshold.)
    watch = PacketWatch()
    count, now, verdicts = 0, 0.0, []
    for step in range(200):
        now = step * 0.25
        stalled = 10.0 <= now < 10.0 + 1.0
        if not stalled:
            count += 12
        verdicts.append(watch.observe(count, now, expecting=True))
    assert set(verdicts) == {None} and not watch.dead
    # the same stall held to the threshold is a dead path (the rule above is not blind)
    watch = PacketWatch()
    assert watch.observe(5, 0.0, expecting=True) is None
    assert watch.observe(5, MEDIA_SILENCE_S - 0.01, expecting=True) is None
    assert watch.observe(5, MEDIA_SILENCE_S, expecting=True) is True


def test_an_address_change_is_the_loss_of_an_address_a_link_is_bound_to_never_a_timer() -> None:
    host = {"192.168.1.2", "10.0.0.5"}
    asked: list[str] = []

    def still_local(address: str) -> bool:
        asked.append(address)
        return address in host

    assert address_lost(["192.168.1.2", "10.0.0.5"], still_local) is None
    assert address_lost([None, "0.0.0.0", "::"], still_local) is None  # unknown or unbound: nothing to judge
    assert asked == ["192.168.1.2", "10.0.0.5"]
    host.discard("192.168.1.2")  # the LAN gave the client another address
    host.add("192.168.1.77")
    assert address_lost([None, "10.0.0.5", "192.168.1.2"], still_local) == "192.168.1.2"
    assert address_lost(["192.168.1.77", "10.0.0.5"], still_local) is None  # the new links are on the new one
