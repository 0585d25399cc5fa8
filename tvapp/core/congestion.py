"""Per-subscriber congestion handling: which of one subscriber's video tracks the SFU stops sending it, and when.

The SFU cannot make one subscriber's copy of a stream smaller (no transcoding), so when a subscriber's downlink
cannot carry everything it is sent, the SFU switches off that subscriber's least important video tracks; audio is
never switched off. (Where a publisher sends a low rendition of a track, tvapp.core.simulcast feeds this rule two
units for it, so the track steps down to the rendition before anything is switched off; its main step is
`gated`: probed only when the estimate has room for it.) `DownlinkController` is the rule for one subscriber. It
is fed, every `tick` (the SFU uses 250 ms), a `LinkSample` of what the SFU sees of that downlink:

- loss: the fraction of the packets sent that the subscriber's RTCP receiver reports counted as lost in the
  interval (None: no report arrived), with jitter and round trip;
- the SFU's own send rate to it, in all and per video track;
- the subscriber's REMB, where its browser sends one;
- `nack_loss`: the fraction of the video packets sent in the interval that the subscriber NACKed. A receiver
  NACKs a gap at once, where aiortc's receiver reports come every 0.5-1.5 s, so this is what ends a failed probe
  within one tick. The interval's loss is the worse of the two.

Estimate. The downlink's capacity `estimate_bps` follows the loss-based rule of Google congestion control:
above `bad_loss` it drops to the rate that got through (send rate x (1 - loss)); below `good_loss` it grows by
`growth_per_s` a second (and never below what just got through); a REMB caps it, down to what got through. REMB alone never switches a
track off: aiortc's receive-side estimator (the Python SDK, the TV) reports far below what a clean loopback link
carries, so only loss does.

Decision. The link is *congested* after `bad_ticks` samples in a row with loss above `bad_loss` (one is enough
above `severe_loss`). A measure that lost fewer than `min_lost_packets` packets in the interval (`LinkSample.
lost_packets`, `nacked_packets`) is scattered loss: lossy, never bad (at rendition rates one NACK is 6-9 % of a tick);
a late report of an overload already acted on (`_stale`) is never congestion, even above `severe_loss`. Then the lowest
priority tracks are switched off until what is left fits 90 % of the estimate (at least one track), and nothing
more is switched off for `hold_ms` (the receiver reports must first see the effect). Priority: a pinned track,
then the active speaker's, then the others, the order the SFU gives (`VideoTrack.priority`, higher first).

Recovery (careful probing). After the link has been clean (no sample above `good_loss`) for `recover_after_ms`
and the probe back-off has passed, the most important switched-off track is switched back on (the SFU asks its
publisher for a keyframe). The probe is judged from the first sample that shows its bytes (a loaded publisher may
send the keyframe late; silence proves nothing, and a probe passed on silence once let a second track on with it);
a track that sends nothing for `probe_wait_ms` is kept unjudged. If loss above `good_loss` returns within
`probe_ms` after that sample the probe failed (the link's queue hides an overload at first, and NACKs come a tick
after the bytes: the first loss seen is the least there will be; the SFU hands the probed track's NACKs to
`probe_nacked` as they come, so a failing probe is undone ~0.2 s after its switch-on, between ticks, where a
tick-by-tick judgement often needed two ticks): the track is switched off again and, if the
loss was above `severe_loss` (the link carried far less than the probe needed), the back-off doubles (from
`backoff_ms` up to `max_backoff_ms`), else it stays at `backoff_ms` (by default the cap is the floor: 2 s; a
failed probe costs one or two ticks of overload now that NACKs report it); otherwise the probe succeeded, the
back-off is reset and the next track may follow. The back-off cap bounds how long recovery takes after a link
comes back (worst case, the restore just after a failed probe: `max_backoff_ms`, then a tick or two and
`probe_ms` per track but the last, <= 4 s for three tracks at 250 ms ticks; a NACK-clean half second of the probed
track after its first bytes, its keyframe first, is the evidence); its floor, how often a weak link is probed (each
failed probe costs one or two ticks of overload, the keyframe's burst first: 0.1-0.9 % audio loss measured on a
600 kb/s link).

Receiver reports of a resumed track (`report_delta`): its first report after a switch-on also counts the packets
the link dropped when it was last switched off (the receiver sees that sequence gap only with the first packet
after the pause). That old loss failed the probe of a link that had come back (a traced netem run: +2.5 s to
recovery); it is not counted.

Pure: time (milliseconds) and measures are arguments; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

REASON_CONGESTION = "congestion"


@dataclass(frozen=True, slots=True)
class CongestionConfig:
    """The rule's thresholds and times (defaults tuned on a 600 kb/s netem link; see bench/quality.py)."""

    bad_loss: float = 0.05
    severe_loss: float = 0.15
    good_loss: float = 0.02
    bad_ticks: int = 2
    hold_ms: float = 1000.0
    recover_after_ms: float = 1000.0
    probe_ms: float = 500.0
    backoff_ms: float = 2000.0
    max_backoff_ms: float = 2000.0
    growth_per_s: float = 0.08
    fit_share: float = 0.9
    report_lag_ms: float = 1750.0  # how late a receiver report may tell of loss (aiortc: every 0.5-1.5 s, + a tick)
    probe_wait_ms: float = 2000.0  # a probed track that sends nothing this long (no keyframe yet) is kept, unjudged
    probe_nack_min: int = 3  # NACKed packets of the probed track that fail it between ticks (above good_loss too)
    # Fewer packets lost in an interval (per measure: `LinkSample.lost_packets`, `nacked_packets`) are scattered
    # loss, not congestion: lossy (no growth, no probe), never bad. At rendition rates a tick carries 11-16 video
    # packets, so one NACK read 6-9 % and two such ticks put a room of renditions below the link.
    min_lost_packets: int = 3


@dataclass(frozen=True, slots=True)
class VideoTrack:
    """One video track the SFU would send the subscriber: its sid, rank (higher: more important) and rate."""

    sid: str
    priority: int
    bitrate_bps: float  # the SFU's send rate for it over the last interval (0 while switched off)
    # Probed only when `fit_share` of the estimate has room for its rate before it was switched off (a simulcast
    # main step, tvapp.core.simulcast: the subscriber has a picture meanwhile, and a blind probe's keyframe burst on
    # a link already carrying the renditions costs audio); otherwise probed blindly after the back-off.
    gated: bool = False
    # What switching it back on would cost now, where the SFU knows it better than the rate it had when it was
    # switched off (a main step: the main track's rate to other subscribers; its rate at the switch-off is often
    # the start-up catch-up, 1.7-2 Mb/s for a 500 kb/s track). None: not known, the rate at the switch-off counts.
    resume_bps: float | None = None


@dataclass(frozen=True, slots=True)
class LinkSample:
    """What the SFU saw of one subscriber's downlink over the last interval."""

    loss: float | None  # fraction of packets lost per the receiver reports; None: no report in the interval
    send_bps: float  # everything the SFU sent the subscriber (audio included)
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    remb_bps: float | None = None
    nack_loss: float | None = None  # distinct video packets NACKed / video packets sent; None: no video sent
    lost_packets: int | None = None  # the packets behind `loss` (the reports' lost count); None: not known
    nacked_packets: int | None = None  # the packets behind `nack_loss`; None: not known


@dataclass(frozen=True, slots=True)
class Switch:
    """A decision: switch track `sid` off (with `reason`) or back on for this subscriber."""

    sid: str
    on: bool
    reason: str = REASON_CONGESTION


@dataclass(slots=True)
class _Off:
    bitrate_bps: float
    since_ms: float


@dataclass(slots=True)
class DownlinkController:
    """The congestion rule for one subscriber: feed it `update` every tick, apply the switches it returns."""

    config: CongestionConfig = field(default_factory=CongestionConfig)
    estimate_bps: float | None = None
    off: dict[str, _Off] = field(default_factory=dict)  # switched-off track sid -> its last rate
    bad_in_a_row: int = 0
    last_bad_ms: float | None = None
    last_off_ms: float | None = None
    last_ms: float | None = None
    probe: str | None = None  # the track switched back on and being judged
    probe_since_ms: float = 0.0  # when the probed track was switched on, then when it first sent (its keyframe)
    probe_flowing: bool = False  # the probed track has sent since it was switched on: the probe is being judged
    backoff_ms: float = 0.0
    next_probe_ms: float = 0.0
    probe_rate_bps: float = 0.0  # the probed track's rate before it was switched off
    rank: dict[str, tuple[int, str]] = field(default_factory=dict)  # sid -> (priority, sid), from the last update
    gated: set[str] = field(default_factory=set)  # sids probed only when the estimate has room (from the last update)
    resume: dict[str, float] = field(default_factory=dict)  # sid -> its `resume_bps` where known (the last update)
    send_bps: float = 0.0  # the last sample's send rate
    room_bps: float | None = None  # the estimate without the REMB cap (what gated probes are judged by)

    def switched_off(self) -> set[str]:
        """Return the sids of the tracks switched off now."""
        return set(self.off)

    def forget(self, sid: str) -> None:
        """Drop a track that is no longer sent to the subscriber (unsubscribed or unpublished)."""
        self.off.pop(sid, None)
        if self.probe == sid:
            self.probe = None

    def update(self, now_ms: float, sample: LinkSample, tracks: list[VideoTrack]) -> list[Switch]:
        """Take one interval's sample and the subscriber's video tracks; return the switches to apply now."""
        _check(sample)
        cfg = self.config
        dt_s = 0.0 if self.last_ms is None else max(0.0, (now_ms - self.last_ms) / 1000.0)
        self.last_ms = now_ms
        self.rank = {t.sid: (t.priority, t.sid) for t in tracks}
        self.gated = {t.sid for t in tracks if t.gated}
        self.resume = {t.sid: t.resume_bps for t in tracks if t.resume_bps is not None}
        self.send_bps = sample.send_bps
        known = set(self.rank)
        for sid in [sid for sid in self.off if sid not in known]:
            self.forget(sid)
        for t in tracks:
            if t.sid in self.off and t.bitrate_bps > 0 and t.sid != self.probe:
                self.off[t.sid].bitrate_bps = max(self.off[t.sid].bitrate_bps, t.bitrate_bps)
        loss = _loss(sample, cfg)
        # The late report of an overload already acted on (lossy, not necessarily above bad_loss: it may average the
        # overload with the clean time after it) must not delay the next probe. Nor is it congestion, even above
        # severe_loss: a step down from main to low leaves the main's queued packets to be dropped on the same stream,
        # and its next report read 50 of 50 lost (a severe tick: every rendition switched off).
        stale = loss is not None and loss > cfg.good_loss and self._stale(now_ms, sample)
        self._estimate(sample, loss, dt_s)  # lowered all the same: the rooms for main steps are judged by it
        if stale:
            loss = min(loss or 0.0, cfg.bad_loss)
        bad = loss is not None and loss > cfg.bad_loss
        if stale:
            bad = False
        elif bad:
            self.bad_in_a_row += 1
            self.last_bad_ms = now_ms
        if not bad and loss is not None:
            self.bad_in_a_row = 0
            if loss > cfg.good_loss and not stale:
                self.last_bad_ms = now_ms  # not congested, but not clean either: no probing yet
        on = sorted((t for t in tracks if t.sid not in self.off), key=lambda t: (t.priority, t.sid))
        if self.probe is not None:
            if not self.probe_flowing and any(t.sid == self.probe and t.bitrate_bps > 0 for t in tracks):
                # It resumes at its next keyframe, which a loaded publisher may send late: until its bytes flow
                # the link has not been tested, and a probe passed on silence let the next track on with it.
                # Counted from this sample, not from the interval's start: the NACKs of what the queue dropped come
                # a tick after the bytes, and a late tick (a loaded SFU: 0.57 s) must not pass the probe at once.
                self.probe_flowing = True
                self.probe_since_ms = now_ms
            # Judged at good_loss, not bad_loss: the link's queue hides the overload at first (a probe's first tick
            # is often NACK-free), so the first loss seen is the least there will be (4.5 % one tick, 61 % the next,
            # on a 600 kb/s netem link); a link lossy at good_loss is not probed at all anyway.
            if bad or (self.probe_flowing and loss is not None and loss > cfg.good_loss):
                return self._probe_failed(now_ms, loss or 0.0)
            waited = now_ms - self.probe_since_ms
            if waited >= cfg.probe_ms if self.probe_flowing else waited >= cfg.probe_wait_ms:
                self.probe = None
                self.backoff_ms = 0.0
                self.next_probe_ms = now_ms
            else:
                return []
        if self._congested(loss, on):
            return self._shed(now_ms, sample, on)
        return self._recover(now_ms)

    def probe_nacked(self, now_ms: float, nacked: int, sent: int) -> list[Switch]:
        """Take the probed track's NACKs as they come, between ticks: fail the probe at once when they show loss.

        `nacked`: its distinct packets NACKed since it was switched on (not counting the gap left by its last
        switch-off); `sent`: its packets sent since then. A probe's first tick is often NACK-free (the link's queue
        absorbs the keyframe), so a tick-by-tick judgement kept an overloading probe on a second tick.
        """
        cfg = self.config
        if self.probe is None or sent <= 0 or nacked < cfg.probe_nack_min or nacked / sent <= cfg.good_loss:
            return []
        return self._probe_failed(now_ms, min(1.0, nacked / sent))

    # inside ------------------------------------------------------------------------------------------------------

    def _estimate(self, sample: LinkSample, loss: float | None, dt_s: float) -> None:
        cfg = self.config
        through = sample.send_bps * (1.0 - (loss or 0.0))
        if loss is not None and loss > cfg.bad_loss or self.estimate_bps is None:
            self.estimate_bps = through
        elif loss is None or loss < cfg.good_loss:
            self.estimate_bps = max(through, self.estimate_bps * (1.0 + cfg.growth_per_s) ** dt_s)
        if sample.remb_bps is not None:  # never below what just got through (aiortc's REMB can be far too low)
            self.estimate_bps = min(self.estimate_bps, max(sample.remb_bps, through))
        # The same loss-based rule without the REMB cap, for gated probes: aiortc's REMB stays within 1.5x of what
        # arrives, so capped the estimate would never make room for a main step once the renditions fill the link.
        if loss is not None and loss > cfg.bad_loss or self.room_bps is None:
            self.room_bps = through
        elif loss is None or loss < cfg.good_loss:
            self.room_bps = max(through, self.room_bps * (1.0 + cfg.growth_per_s) ** dt_s)

    def _stale(self, now_ms: float, sample: LinkSample) -> bool:
        """Tell whether a lossy receiver report only tells of the overload the last switch-off ended: it came
        within `report_lag_ms` of it, nothing was switched on since, and the NACKs (at once, where reports lag 0.5-1.5 s)
        show no loss now (scattered NACKs, fewer than `min_lost_packets`, are none)."""
        cfg = self.config
        nacks = _loss(LinkSample(loss=None, send_bps=0.0, nack_loss=sample.nack_loss,
                                 nacked_packets=sample.nacked_packets), cfg)
        return (self.last_off_ms is not None and now_ms - self.last_off_ms < cfg.report_lag_ms and self.probe is None
                and (nacks or 0.0) <= cfg.bad_loss)

    def _congested(self, loss: float | None, on: list[VideoTrack]) -> bool:
        cfg = self.config
        if not on:
            return False
        return loss is not None and (loss > cfg.severe_loss or self.bad_in_a_row >= cfg.bad_ticks)

    def _shed(self, now_ms: float, sample: LinkSample, on: list[VideoTrack]) -> list[Switch]:
        cfg = self.config
        if self.last_off_ms is not None and now_ms - self.last_off_ms < cfg.hold_ms:
            return []
        video = sum(t.bitrate_bps for t in on)
        audio = max(0.0, sample.send_bps - video)
        budget = cfg.fit_share * (self.estimate_bps or 0.0) - audio
        switches: list[Switch] = []
        for t in on:  # least important first
            if switches and video <= budget:
                break
            self.off[t.sid] = _Off(bitrate_bps=t.bitrate_bps, since_ms=now_ms)
            video -= t.bitrate_bps
            switches.append(Switch(t.sid, on=False))
        self.last_off_ms = now_ms
        self.bad_in_a_row = 0
        self.next_probe_ms = max(self.next_probe_ms, now_ms + (self.backoff_ms or cfg.backoff_ms))
        return switches

    def _probe_failed(self, now_ms: float, loss: float) -> list[Switch]:
        cfg = self.config
        sid = self.probe
        assert sid is not None
        self.probe = None
        self.off[sid] = _Off(bitrate_bps=self.probe_rate_bps, since_ms=now_ms)
        if loss > cfg.severe_loss:  # the link carried far less than the probe needed: wait longer next time
            self.backoff_ms = min(cfg.max_backoff_ms, max(cfg.backoff_ms, 2.0 * self.backoff_ms))
        else:  # it nearly carried it (a burst, a stray loss): try again as soon as the first time
            self.backoff_ms = cfg.backoff_ms
        self.next_probe_ms = now_ms + self.backoff_ms
        self.last_off_ms = now_ms
        self.bad_in_a_row = 0
        return [Switch(sid, on=False)]

    def _recover(self, now_ms: float) -> list[Switch]:
        cfg = self.config
        if not self.off or now_ms < self.next_probe_ms:
            return []
        if self.last_bad_ms is not None and now_ms - self.last_bad_ms < cfg.recover_after_ms:
            return []
        best = max(self.off, key=lambda sid: self.rank.get(sid, (0, sid)))
        room = cfg.fit_share * (self.room_bps or 0.0) - self.send_bps
        need = self.resume.get(best, self.off[best].bitrate_bps)
        if best in self.gated and room < need:
            return []  # no room for it yet: the estimate grows while the link is clean
        self.off.pop(best)
        self.probe_rate_bps = need
        self.probe = best
        self.probe_since_ms = now_ms
        self.probe_flowing = False
        return [Switch(best, on=True)]


def report_delta(before: tuple[int, int], now: tuple[int, int], *, resumed: bool) -> tuple[int, int]:
    """Return (lost, expected) between two receiver reports' cumulative (received, lost) counts of one track.

    `resumed`: the track was switched back on since `before`. Its receiver then sees, with the first packet after
    the pause, the gap left by the packets the link dropped just before it was switched off (tail drop at the
    switch-off, or at the end of a failed probe): old loss, already acted on, and not this probe's. Only the
    packets received count then (the NACKs and the other tracks' reports tell of any new loss).
    """
    received = max(0, now[0] - before[0])
    lost = 0 if resumed else max(0, now[1] - before[1])
    return lost, lost + received


def _loss(sample: LinkSample, cfg: CongestionConfig) -> float | None:
    """Return the interval's loss: the worse of the receiver reports' and the NACKs' (None: neither known).

    A measure's scattered loss (fewer than `min_lost_packets` packets) counts as lossy but never as bad: at most
    `bad_loss`.
    """
    known = [v if n is None or n >= cfg.min_lost_packets else min(v, cfg.bad_loss)
             for v, n in ((sample.loss, sample.lost_packets), (sample.nack_loss, sample.nacked_packets)) if v is not None]
    return max(known) if known else None


def _check(sample: LinkSample) -> None:
    values = [sample.send_bps, sample.loss, sample.rtt_ms, sample.jitter_ms, sample.remb_bps, sample.nack_loss,
              sample.lost_packets, sample.nacked_packets]
    if any(v is not None and (math.isnan(v) or v < 0) for v in values):
        raise ValueError(f"a measure is negative or not a number: {sample}")
    for v in (sample.loss, sample.nack_loss):
        if v is not None and v > 1.0:
            raise ValueError(f"loss is a fraction (got {v})")
