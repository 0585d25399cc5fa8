"""tvapp.core.simulcast: main / low / off per track, alone and driven through the congestion rule (fake clock)."""

from __future__ import annotations

import itertools

import pytest

from tvapp.core.congestion import DownlinkController, LinkSample
from tvapp.core.simulcast import (
    LOW,
    LOW_BPS,
    MAIN,
    OFF,
    SimulcastTrack,
    allocate,
    layers,
    low_unit,
    steps,
    units,
)

TICK = 250.0
AUDIO = 125_000.0  # what the SFU sent the weak member of bench/quality.py: three publishers' audio
MAIN_BPS = 500_000.0
PRIORITY = {"a": 0, "b": 1, "c": 2}


def rendered(has_low: bool = True) -> list[SimulcastTrack]:
    return [SimulcastTrack(sid, p, MAIN_BPS, has_low=has_low) for sid, p in PRIORITY.items()]


def test_the_benchmark_s_weak_member_gets_every_publisher_s_low_rendition_next_to_its_audio() -> None:
    # bench/README (issue 18, simulcast decision): 125 + 3 x 105 = 440 kb/s under 90 % of 600 kb/s.
    assert allocate(600_000.0, AUDIO, rendered()) == {"a": LOW, "b": LOW, "c": LOW}
    # Without renditions the same link gets audio only, as today.
    assert allocate(600_000.0, AUDIO, rendered(has_low=False)) == {"a": OFF, "b": OFF, "c": OFF}


def test_steps_down_least_important_first_and_to_low_before_any_track_is_switched_off() -> None:
    tracks = rendered()
    assert allocate(10_000_000.0, AUDIO, tracks) == {"a": MAIN, "b": MAIN, "c": MAIN}
    # 0.9 x 1.4 Mb/s - 125 kb/s = 1135 kb/s: one main must go (a, the least important), 1105 kb/s fits.
    assert allocate(1_400_000.0, AUDIO, tracks) == {"a": LOW, "b": MAIN, "c": MAIN}
    # 0.9 x 1 Mb/s - 125 = 775: a and b low (710; a low only is 1105), c keeps its main.
    assert allocate(1_000_000.0, AUDIO, tracks) == {"a": LOW, "b": LOW, "c": MAIN}
    # 0.9 x 400 kb/s - 125 = 235: all low is 315, so the least important low is switched off: 210 fits.
    assert allocate(400_000.0, AUDIO, tracks) == {"a": OFF, "b": LOW, "c": LOW}
    assert allocate(150_000.0, AUDIO, tracks) == {"a": OFF, "b": OFF, "c": OFF}  # audio alone is left


def test_a_track_without_rendition_is_switched_off_only_after_every_rendition_stepped_down() -> None:
    tracks = [SimulcastTrack("a", 0, MAIN_BPS), SimulcastTrack("b", 1, MAIN_BPS, has_low=True),
              SimulcastTrack("c", 2, MAIN_BPS, has_low=True)]
    assert steps(tracks) == [("b", LOW), ("c", LOW), ("a", OFF), ("b", OFF), ("c", OFF)]
    # 0.9 x 1.2 Mb/s - 125 = 955: b low (1105) is not enough, c low too (710) is: a keeps its only (main) layer.
    assert allocate(1_200_000.0, AUDIO, tracks) == {"a": MAIN, "b": LOW, "c": LOW}
    assert allocate(500_000.0, AUDIO, tracks) == {"a": OFF, "b": LOW, "c": LOW}


def test_units_add_up_to_what_is_sent_and_layers_read_them_back() -> None:
    main = SimulcastTrack("a", 1, 500_000.0, has_low=True)
    low = SimulcastTrack("b", 0, 0.0, low_bps=98_000.0, has_low=True)
    plain = SimulcastTrack("c", 2, 400_000.0)
    out = {u.sid: u for u in units([main, low, plain])}
    assert out["a"].bitrate_bps + out[low_unit("a")].bitrate_bps == 500_000.0
    assert out["b"].bitrate_bps == 0.0 and out[low_unit("b")].bitrate_bps == 98_000.0
    assert out["c"].bitrate_bps == 400_000.0
    # Every main step ranks below every low (or only) step: the controller sheds all of them first.
    assert max(out[s].priority for s in ("a", "b")) < min(out[s].priority for s in (low_unit("a"), "c"))
    assert out[low_unit("a")].priority > out[low_unit("b")].priority  # same order as the tracks among the lows
    # A main track that just started flowing below the low reserve still shows it flows (a probe's first bytes).
    assert units([SimulcastTrack("a", 0, 30_000.0, has_low=True)])[0].bitrate_bps > 0
    assert layers({"b"}, [main, low, plain]) == {"a": MAIN, "b": LOW, "c": MAIN}
    assert layers({"b", low_unit("b"), "c"}, [main, low, plain]) == {"a": MAIN, "b": OFF, "c": OFF}


class Link:
    """A bottleneck of `capacity` b/s fed by what each track's layer sends: above it, everything loses alike.

    `remb`: the subscriber sends a REMB as aiortc's estimator does at best, 1.5x what arrives + 10 kb/s."""

    def __init__(self, capacity: float, has_low: bool = True, remb: bool = False) -> None:
        self.capacity = capacity
        self.has_low = has_low
        self.remb = remb
        self.audio_sent = self.audio_lost = 0.0

    def sample(self, layer: dict[str, str]) -> tuple[LinkSample, list[SimulcastTrack]]:
        tracks = [SimulcastTrack(sid, p, MAIN_BPS if layer[sid] == MAIN else 0.0,
                                 LOW_BPS if layer[sid] == LOW else 0.0, has_low=self.has_low)
                  for sid, p in PRIORITY.items()]
        send = AUDIO + sum(t.main_bps + t.low_bps for t in tracks)
        loss = max(0.0, 1.0 - self.capacity / send)
        self.audio_sent += AUDIO
        self.audio_lost += AUDIO * loss
        remb = 1.5 * send * (1.0 - loss) + 10_000.0 if self.remb else None
        return LinkSample(loss=loss, send_bps=send, rtt_ms=40.0, jitter_ms=5.0, remb_bps=remb), tracks


def drive(ctl: DownlinkController, link: Link, layer: dict[str, str], start: float, seconds: float,
          history: list[tuple[float, dict[str, str]]]) -> float:
    """Feed the controller through the simulcast units for `seconds` of fake time, recording each new layering."""
    now = start
    while now < start + seconds * 1000:
        now += TICK
        sample, tracks = link.sample(layer)
        ctl.update(now, sample, units(tracks))
        new = layers(ctl.switched_off(), tracks)
        if new != layer:
            layer.update(new)
            history.append((now, dict(new)))
    return now


def test_layers_come_least_important_first_whatever_order_the_tracks_came_in() -> None:
    # The SFU announces a tick's switch-offs in this order: the speaker's last, as the rule shed them (in
    # subscription order a real room once announced the speaker's video before a silent publisher's).
    speaker = SimulcastTrack("TR_a", 2, MAIN_BPS)
    silent = SimulcastTrack("TR_z", 1, MAIN_BPS)
    quiet = SimulcastTrack("TR_m", 1, MAIN_BPS, has_low=True)
    for order in itertools.permutations([speaker, silent, quiet]):
        out = layers({"TR_a", "TR_z", "TR_m", low_unit("TR_m")}, order)
        assert list(out) == ["TR_m", "TR_z", "TR_a"] and set(out.values()) == {OFF}


def test_the_congestion_rule_through_the_units_moves_a_600_kbps_subscriber_to_the_low_renditions() -> None:
    ctl, link, history = DownlinkController(), Link(600_000.0), []
    layer = {sid: MAIN for sid in PRIORITY}
    now = drive(ctl, link, layer, 0.0, 1.0, history)
    # At the first congested tick every track steps main -> low (440 kb/s fits 90 % of 600), none is switched off.
    assert history[0][1] == {"a": LOW, "b": LOW, "c": LOW}, history
    drive(ctl, link, layer, now, 30.0, history)
    # A steady weak link: never a track off; the mains are probed one at a time, the most important (c) first,
    # each probe fails (835 kb/s) and is undone, and the next one waits the back-off.
    assert all(OFF not in h.values() for _, h in history), history
    probes = [t for t, h in history if MAIN in h.values()]
    assert probes and all(list(h.values()).count(MAIN) <= 1 for _, h in history), history
    assert {sid for _, h in history for sid, v in h.items() if v == MAIN} == {"c"}, history
    assert min(b - a for a, b in itertools.pairwise(probes)) >= ctl.config.backoff_ms, probes
    # A main step is probed only when the estimate has room for it (it grows 8 %/s while the link is clean, from
    # what got through): every ~6 s here, not at every 2 s back-off (a blind main probe bursts a keyframe).
    assert len(probes) <= 30 / 4, probes


@pytest.mark.parametrize("remb", [False, True])
def test_recovery_brings_the_main_tracks_back_most_important_first(remb: bool) -> None:
    ctl, link, history = DownlinkController(), Link(600_000.0, remb=remb), []
    layer = {sid: MAIN for sid in PRIORITY}
    now = drive(ctl, link, layer, 0.0, 8.0, history)
    assert layer == {"a": LOW, "b": LOW, "c": LOW}
    link.capacity, history = 10_000_000.0, []
    drive(ctl, link, layer, now, 20.0, history)
    assert layer == {"a": MAIN, "b": MAIN, "c": MAIN}, history
    # Each main step waits for the estimate (+8 %/s while clean) to have room for it: ~4, 9 and 14 s here.
    assert history[-1][0] - now <= 16_000, history
    back: list[str] = []
    for _, h in history:
        back += [sid for sid in PRIORITY if h[sid] == MAIN and sid not in back]
    assert back == ["c", "b", "a"], history


def test_renditions_come_back_before_any_main_and_only_what_fits() -> None:
    ctl, link, history = DownlinkController(), Link(200_000.0), []
    layer = {sid: MAIN for sid in PRIORITY}
    now = drive(ctl, link, layer, 0.0, 10.0, history)
    # 125 kb/s of audio + one 105 kb/s rendition > 200 kb/s: every video is switched off, its probes fail.
    assert layer == {"a": OFF, "b": OFF, "c": OFF}, history
    assert all(MAIN not in h.values() for _, h in history), history
    # 250 kb/s: one rendition fits (230 kb/s), two do not (335): the most important publisher's small video plays.
    link.capacity, history = 250_000.0, []
    drive(ctl, link, layer, now, 20.0, history)
    # c's rendition stays on; b's is probed now and then (and fails), a's waits behind it.
    assert all(h["c"] == LOW and h["a"] == OFF for _, h in history), history
    assert [h["b"] for _, h in history].count(LOW) >= 2, history
    assert history[0][1] == {"a": OFF, "b": OFF, "c": LOW}, history  # the first step up is c's rendition
    assert all(MAIN not in h.values() for _, h in history), history  # no main is probed while a rendition is off


def on_renditions(resume: float | None = None) -> tuple[DownlinkController, float, list[SimulcastTrack]]:
    """Step a new controller's three tracks down to their renditions at a 600 kb/s link's first congested tick (its
    start-up: 1.9 Mb/s a track, the catch-up of the first frames), then feed it 3 s of clean ticks at the renditions
    (~440 kb/s); return it, the time and the tracks as they flow then (`resume`: the main tracks' rate elsewhere)."""
    ctl = DownlinkController()
    burst = [SimulcastTrack(sid, p, 1_900_000.0, has_low=True) for sid, p in PRIORITY.items()]
    ctl.update(TICK, LinkSample(loss=None, send_bps=AUDIO + 3 * 1_900_000.0, nack_loss=0.7, nacked_packets=59),
               units(burst))
    tracks = [SimulcastTrack(sid, p, 0.0, low_bps=LOW_BPS, has_low=True, main_rate_bps=resume)
              for sid, p in PRIORITY.items()]
    assert layers(ctl.switched_off(), tracks) == {"a": LOW, "b": LOW, "c": LOW}
    # The report of the mains' tail dropped at the step down (see the next tests): what got through is low now.
    now = 2 * TICK
    ctl.update(now, LinkSample(loss=1.0, send_bps=AUDIO + 3 * LOW_BPS, nack_loss=0.0, lost_packets=50,
                               nacked_packets=0), units(tracks))
    for _ in range(12):
        now += TICK
        ctl.update(now, LinkSample(loss=0.0, send_bps=AUDIO + 3 * LOW_BPS, nack_loss=0.0, lost_packets=0,
                                   nacked_packets=0), units(tracks))
    return ctl, now, tracks


def test_scattered_loss_of_a_few_packets_never_switches_a_rendition_off() -> None:
    # Traced at a loaded SFU (tests/test_simulcast_netem.py): one NACK of 16 video packets (6 %), then 3 of 39
    # reported lost (7.7 %) and 2 NACKs of 11 (18 %): two "bad" ticks in a row switched two renditions off.
    ctl, now, tracks = on_renditions()
    send = AUDIO + 3 * LOW_BPS
    samples = [LinkSample(loss=0.0, send_bps=send, nack_loss=1 / 16, lost_packets=0, nacked_packets=1),
               LinkSample(loss=2 / 39, send_bps=send, nack_loss=2 / 11, lost_packets=2, nacked_packets=2),
               LinkSample(loss=1 / 40, send_bps=send, nack_loss=2 / 12, lost_packets=1, nacked_packets=2)]
    for sample in samples:
        now += TICK
        assert ctl.update(now, sample, units(tracks)) == [], sample
    assert layers(ctl.switched_off(), tracks) == {"a": LOW, "b": LOW, "c": LOW}
    # Loss of as many packets is congestion as before: three in a row of 3+ packets each switch the least
    # important rendition off.
    switches = []
    for _ in range(3):
        now += TICK
        switches += ctl.update(now, LinkSample(loss=0.3, send_bps=send, nack_loss=0.3, lost_packets=12,
                                               nacked_packets=4), units(tracks))
    assert low_unit("a") in {s.sid for s in switches if not s.on}, switches


def test_the_main_tracks_tail_lost_at_the_step_down_is_not_congestion() -> None:
    # Traced: the step down to the renditions leaves the main's queued packets to be dropped on the same stream;
    # the next receiver report read 50 of 50 lost (the NACKs: none), the estimate went to 0, every rendition off.
    ctl = DownlinkController()
    burst = [SimulcastTrack(sid, p, 1_700_000.0, has_low=True) for sid, p in PRIORITY.items()]
    ctl.update(TICK, LinkSample(loss=None, send_bps=5_200_000.0, nack_loss=0.7, nacked_packets=59), units(burst))
    tracks = [SimulcastTrack(sid, p, 0.0, low_bps=LOW_BPS, has_low=True) for sid, p in PRIORITY.items()]
    assert layers(ctl.switched_off(), tracks) == {"a": LOW, "b": LOW, "c": LOW}
    now = TICK
    for _ in range(2):  # clean NACKs at the renditions
        now += TICK
        ctl.update(now, LinkSample(loss=None, send_bps=AUDIO + 3 * LOW_BPS, nack_loss=0.0, nacked_packets=0),
                   units(tracks))
    now += TICK
    stale = LinkSample(loss=1.0, send_bps=AUDIO + 3 * LOW_BPS, nack_loss=0.0, lost_packets=50, nacked_packets=0)
    assert ctl.update(now, stale, units(tracks)) == []
    # Still the old loss with two stray NACKs next to it (traced: 39 of 43 reported lost, 2 of 16 NACKed).
    now += TICK
    stale = LinkSample(loss=39 / 43, send_bps=AUDIO + 3 * LOW_BPS, nack_loss=2 / 16, lost_packets=39, nacked_packets=2)
    assert ctl.update(now, stale, units(tracks)) == []
    assert layers(ctl.switched_off(), tracks) == {"a": LOW, "b": LOW, "c": LOW}


def test_a_main_step_is_probed_by_the_main_track_s_rate_now_not_its_start_up_burst() -> None:
    # Traced: the mains were stepped down at their start-up catch-up (1.7-2 Mb/s each), so a restored link waited
    # for the estimate to have room for 1.8 Mb/s (+8 %/s: ~8 s a step) where a main costs 500 kb/s.
    probes = {}
    for resume in (None, MAIN_BPS):
        ctl, now, tracks = on_renditions(resume)
        start = now
        while not any(s.on and s.sid in PRIORITY for s in ctl.update(
                now, LinkSample(loss=0.0, send_bps=AUDIO + 3 * LOW_BPS, nack_loss=0.0, lost_packets=0,
                                nacked_packets=0), units(tracks))):
            now += TICK
            assert now - start < 60_000
        probes[resume] = now - start
    # From ~440 kb/s after the start-up: room for a 395 kb/s main step within ~10 s; for 1.8 Mb/s not before ~22 s.
    assert probes[MAIN_BPS] <= 11_000 and probes[None] >= 2 * probes[MAIN_BPS], probes
