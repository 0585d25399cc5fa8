"""Per-subscriber congestion handling at the SFU: measure each subscriber's downlink, switch its video tracks off/on.

Every `INTERVAL_MS` (250 ms) `RoomCongestion.tick` reads, for every subscription of every session, the sender's
packet and byte counts and the latest RTCP receiver report (tvapp.rtc.internals.sender_counts: the same reports
tvapp.server.quality turns into network quality levels, read without building stats reports), any REMB the
subscriber sent and the video packets it NACKed (each counted once: a receiver NACKs a gap at once, where its
receiver reports come every 0.5-1.5 s on aiortc, so a probe that overloads the link is undone as its NACKs
come, `DownlinkController.probe_nacked`, not at the next tick); it turns the deltas into one `LinkSample` per
subscriber and the SFU's send rate per video track, and feeds that subscriber's
tvapp.core.congestion.DownlinkController (the rule). Switches are applied here:

- off: the subscription stops taking frames (`Subscription.switched_off`) and its queued frames are dropped; the
  subscriber alone hears `track_switched_off {sid, reason: "congestion"}`;
- on: it resumes at the next keyframe, asked of the publisher at once; the subscriber hears `track_switched_on`;
  its first NACK and its first receiver report after that are not counted as loss where they name the packets
  dropped when it was last switched off (`tvapp.core.congestion.report_delta`); likewise a subscription stepping down
  from main to low: its NACKs until the move is done and the first after it, and its next receiver report.
A NACK comes a tick after a burst's packets: the NACK loss is counted against the larger of two ticks' video packets.

Simulcast by two tracks (tvapp.core.simulcast): where a publisher also sends a low rendition of a video track, that
track is two units for the rule (its main step, its low step), and the rule's switches become layers: a
subscriber's track steps from main down to the rendition (the subscription moves to it at one of its keyframes,
`Subscription.switch_source`; no event: the tile stays, its picture gets smaller) before any track is switched off;
`track_switched_off` only when even the rendition does not fit; back up, the rendition first (`track_switched_on`),
then the main track. tvapp.server.adaptive unpauses a rendition at its publisher only while some subscription
carries it or moves to it.

Priority of a subscriber's video tracks: a pinned track (`pin`), then the active speaker's, then the others.
Audio is never switched off. With `[media] congestion_control = false` nothing is measured or switched (the
behaviour before: every subscriber gets every track, and stalls when its link cannot carry them).

The REMB cap sent to publishers (tvapp.server.media) is a fixed `max_video_bitrate`, never a minimum over the
subscribers, so a weak subscriber never caps the others; whoever computes a per-publisher bitrate from the
subscribers' links must leave out the subscribers `congested()` names (their weakness is handled here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tvapp.core.congestion import (
    REASON_CONGESTION,
    DownlinkController,
    LinkSample,
    Switch,
    report_delta,
)
from tvapp.core.simulcast import (
    LOW,
    MAIN,
    OFF,
    Layer,
    SimulcastTrack,
    layers,
    low_unit,
    units,
)
from tvapp.protocol.messages import TrackSwitchedOff, TrackSwitchedOn
from tvapp.rtc import internals
from tvapp.server.forwarding import now_ms

if TYPE_CHECKING:
    from tvapp.server.forwarding import Publication, Subscription
    from tvapp.server.media_session import MediaSession

log = logging.getLogger(__name__)

INTERVAL_MS = 250.0
NACK_MEMORY = 1024  # NACKed sequence numbers remembered per subscription (seqs wrap at 65536)
PINNED, SPEAKER, OTHER = 2, 1, 0
MAIN_RATE_SMOOTHING = 0.25  # per tick: a main track's rate (what its main step would cost) follows over ~1 s


@dataclass(slots=True)
class _Counts:
    packets: int
    octets: int
    received: int
    lost: int


@dataclass(slots=True)
class _Subscriber:
    controller: DownlinkController = field(default_factory=DownlinkController)
    counts: dict[int, _Counts] = field(default_factory=dict)  # id(subscription) -> counts at the last tick
    remb_bps: int | None = None  # the lowest REMB since the last tick
    hooked: set[int] = field(default_factory=set)  # id(subscription) whose sender reports REMB and NACKs to us
    nacked: dict[int, dict[int, None]] = field(default_factory=dict)  # id(subscription) -> recent NACKed seqs
    new_nacks: int = 0  # distinct video packets NACKed since the last tick
    resumed: set[int] = field(default_factory=set)  # id(subscription) switched back on, before its first NACK
    report_resumed: set[int] = field(default_factory=set)  # the same, before its first new receiver report
    probe_nacks: int = 0  # the probed track's distinct packets NACKed since its switch-on
    probe_packets: int = 0  # its sender's packet count at the switch-on
    tracks: list[SimulcastTrack] = field(default_factory=list)  # its video tracks as last measured
    video_packets: int = 0  # video packets sent it in the last tick
    stepping_down: set[int] = field(default_factory=set)  # id(subscription) moving main -> low (NACKs old)


class RoomCongestion:
    """The congestion handling of one room's subscribers."""

    def __init__(self) -> None:
        self.subscribers: dict[str, _Subscriber] = {}  # participant sid -> state
        self.pinned: dict[str, set[str]] = {}  # participant sid -> track sids it pinned
        self.renditions: dict[str, Publication] = {}  # main track sid -> its low rendition (as of the last tick)
        # main track sid -> its send rate to the subscribers it flows to, smoothed over ~1 s (`MAIN_RATE_SMOOTHING`)
        self.main_rates: dict[str, float] = {}
        self._rates_now: dict[str, list[float]] = {}  # the same, measured this tick
        self.last_ms: float | None = None

    def pin(self, participant_sid: str, track_sids: set[str]) -> None:
        """Give these of a subscriber's video tracks the highest priority (switched off last)."""
        self.pinned[participant_sid] = set(track_sids)

    def congested(self) -> set[str]:
        """Return the sids of the subscribers with video switched off by congestion now."""
        return {sid for sid, s in self.subscribers.items() if s.controller.off}

    def link_estimates(self) -> dict[str, int]:
        """Return the subscribers' downlink estimates (bps) that met loss (a loss-free one is only a lower bound)."""
        return {sid: int(s.controller.estimate_bps) for sid, s in self.subscribers.items()
                if s.controller.estimate_bps is not None and s.controller.last_bad_ms is not None}

    def tick(self, sessions: list[MediaSession], dominant_sid: str | None, now_ms: float) -> None:
        """Measure every subscriber's downlink since the last tick and apply the rule's switches."""
        dt_s = 0.0 if self.last_ms is None else (now_ms - self.last_ms) / 1000.0
        self.last_ms = now_ms
        self.renditions = {p.rendition_of: p for session in sessions if not session.closed
                           for p in session.publications.values() if p.rendition_of is not None and p.ready}
        present = set()
        for session in sessions:
            if session.closed:
                continue
            sid = session.participant.sid
            present.add(sid)
            state = self.subscribers.setdefault(sid, _Subscriber())
            try:
                self._tick_one(session, state, dominant_sid, dt_s, now_ms)
            except Exception:  # one subscriber's odd counters never stop the others' handling
                log.exception("media: congestion handling of %s failed", session.participant.identity)
        for track_sid, rates in self._rates_now.items():
            mean = sum(rates) / len(rates)
            last = self.main_rates.get(track_sid)
            self.main_rates[track_sid] = mean if last is None else last + MAIN_RATE_SMOOTHING * (mean - last)
        for track_sid in set(self.main_rates) - set(self.renditions):
            self.main_rates.pop(track_sid, None)
        self._rates_now = {}
        for gone in set(self.subscribers) - present:
            self.subscribers.pop(gone, None)
            self.pinned.pop(gone, None)

    def _tick_one(self, session: MediaSession, state: _Subscriber, dominant_sid: str | None, dt_s: float,
                  now_ms: float) -> None:
        sent_bytes = video_packets = 0
        lost = expected = 0
        reported = False
        tracks: list[SimulcastTrack] = []
        pinned = self.pinned.get(session.participant.sid, set())
        live: dict[int, _Counts] = {}
        for track_sid, subscription in list(session.subscriptions.items()):
            self._hook_remb(session, track_sid, subscription, state)
            counts = internals.sender_counts(subscription.transceiver.sender)
            if counts is None:
                continue
            now = _Counts(*counts)
            before = state.counts.get(id(subscription))
            live[id(subscription)] = now
            delta_bytes = 0 if before is None else max(0, now.octets - before.octets)
            sent_bytes += delta_bytes
            if before is not None and now.received >= 0 and before.received >= 0 and (
                    now.received, now.lost) != (before.received, before.lost):
                resumed = id(subscription) in state.report_resumed
                state.report_resumed.discard(id(subscription))
                d_lost, d_expected = report_delta((before.received, before.lost), (now.received, now.lost),
                                                  resumed=resumed)
                lost += d_lost
                expected += d_expected
                reported = True
            if subscription.kind == "video" and before is not None:
                video_packets += max(0, now.packets - before.packets)
            if subscription.kind == "video" and subscription.publication is not None:
                source = subscription.publication.participant_sid
                priority = PINNED if track_sid in pinned else SPEAKER if source == dominant_sid else OTHER
                rate = 8.0 * delta_bytes / dt_s if dt_s > 0 else 0.0
                low = self._rendition(subscription) is not None
                on_low = subscription.source is not None and subscription.source is not subscription.publication
                if low and not on_low and not subscription.switched_off and rate > 0:
                    self._rates_now.setdefault(track_sid, []).append(rate)
                tracks.append(SimulcastTrack(track_sid, priority, 0.0 if on_low else rate, rate if on_low else 0.0,
                                             has_low=low, main_rate_bps=self.main_rates.get(track_sid)))
        state.counts = live
        state.report_resumed &= set(live)
        state.stepping_down &= set(live)
        for gone in set(state.nacked) - set(live):
            state.nacked.pop(gone, None)
        new_nacks, state.new_nacks = state.new_nacks, 0
        if dt_s <= 0:
            return
        loss = min(1.0, lost / expected) if reported and expected > 0 else (0.0 if reported else None)
        # A NACK comes a round trip and a reorder wait after its packet, often in the next tick: counted against the
        # larger of the two ticks' packets (a stalled SFU's catch-up burst lost 8 of its 26 packets, NACKed in the next
        # tick of 12: 67 %, a severe tick that switched three renditions off, where 31 % was lost).
        nack_packets = max(video_packets, state.video_packets)
        state.video_packets = video_packets
        nack_loss = min(1.0, new_nacks / nack_packets) if nack_packets > 0 else None
        sample = LinkSample(loss=loss, send_bps=8.0 * sent_bytes / dt_s, remb_bps=state.remb_bps, nack_loss=nack_loss,
                            lost_packets=lost if reported else None, nacked_packets=new_nacks)
        state.remb_bps = None
        if state.controller.off or state.controller.probe:
            log.debug("media: downlink of %s: loss %s, nacked %s, %.0f kb/s sent, estimate %.0f kb/s, off %s, probe %s",
                      session.participant.identity, None if loss is None else round(loss, 3),
                      None if nack_loss is None else round(nack_loss, 3), sample.send_bps / 1000,
                      (state.controller.estimate_bps or 0) / 1000, sorted(state.controller.off), state.controller.probe)
        state.tracks = tracks
        self._apply(session, state.controller.update(now_ms, sample, units(tracks)), state)

    def _hook_remb(self, session: MediaSession, track_sid: str, subscription: Subscription,
                   state: _Subscriber) -> None:
        if subscription.kind != "video" or id(subscription) in state.hooked:
            return
        state.hooked.add(id(subscription))

        def remb(bps: int) -> None:
            state.remb_bps = bps if state.remb_bps is None else min(state.remb_bps, bps)

        internals.on_remb(subscription.transceiver.sender, remb)
        seen = state.nacked.setdefault(id(subscription), {})

        key = id(subscription)

        def nack(seqs: list[int]) -> None:  # aiortc NACKs every still-missing packet at each new gap: count each once
            # The first NACK after a switch-on also names the packets lost at the end of the last failed probe (the
            # receiver sees that gap only now): those are old news, not this probe's loss.
            # So do its NACKs while it steps down from main to low and the first after (the main's packets the link
            # dropped: the overload the step down acts on; traced, 29 of them against 31 rendition packets, a severe
            # tick that switched two renditions off on top).
            if key in state.stepping_down and subscription.target is None:
                state.stepping_down.discard(key)
                state.resumed.add(key)
            old = key in state.resumed or key in state.stepping_down
            state.resumed.discard(key)
            fresh = 0
            for seq in seqs:
                if seq not in seen:
                    seen[seq] = None
                    fresh += 0 if old else 1
            state.new_nacks += fresh
            while len(seen) > NACK_MEMORY:
                del seen[next(iter(seen))]
            # A failing probe (of the track or of its rendition) is undone now, not at the next tick.
            if fresh and state.controller.probe in (track_sid, low_unit(track_sid)):
                try:
                    state.probe_nacks += fresh
                    counts = internals.sender_counts(subscription.transceiver.sender)
                    sent = 0 if counts is None else counts[0] - state.probe_packets
                    self._apply(session, state.controller.probe_nacked(now_ms(), state.probe_nacks, sent), state)
                except Exception:
                    log.exception("media: congestion handling of %s failed", session.participant.identity)

        internals.on_nack(subscription.transceiver.sender, nack)

    def _rendition(self, subscription: Subscription) -> Publication | None:
        """Return the low rendition this subscription can carry in its track's place (same codec), or None."""
        main = subscription.publication
        rendition = None if main is None else self.renditions.get(main.track_sid)
        return rendition if rendition is not None and rendition.codec == subscription.codec else None

    def _apply(self, session: MediaSession, switches: list[Switch], state: _Subscriber) -> None:
        """Apply each track's layer as the rule's units now say (events only for off and on), whatever `switches`
        it just returned: a rendition that went away leaves its track's main step off, so that track is off now."""
        wanted = layers(state.controller.switched_off(), state.tracks)
        reason = next((sw.reason for sw in switches if not sw.on), None) or REASON_CONGESTION
        for track_sid, layer in wanted.items():
            subscription = session.subscriptions.get(track_sid)
            if subscription is None or subscription.publication is None:
                continue
            now: Layer = OFF if subscription.switched_off else LOW if subscription.low else MAIN
            if layer == now:
                continue
            rendition = self._rendition(subscription)
            if layer == LOW and rendition is None:  # gone between two ticks: the next tick has it without one
                continue
            source = subscription.publication if layer == MAIN or rendition is None else rendition
            who = session.participant.identity
            if layer == OFF:
                subscription.switch(on=False)
                log.info("media: track %s switched off for %s (%s)", track_sid, who, reason)
                session.participant.peer.send(TrackSwitchedOff(sid=track_sid, reason=reason))
                continue
            subscription.switch_source(source)
            if now == OFF:
                subscription.switch(on=True)
                state.resumed.add(id(subscription))
                state.report_resumed.add(id(subscription))
                log.info("media: track %s switched back on for %s (%s)", track_sid, who, layer)
                session.participant.peer.send(TrackSwitchedOn(sid=track_sid))
            else:
                log.info("media: track %s of %s moves to its %s layer", track_sid, who, layer)
                if layer == LOW:  # its old source's loss was acted on: not counted (NACKs, the next report)
                    state.stepping_down.add(id(subscription))
                    state.report_resumed.add(id(subscription))
            if any(sw.on for sw in switches):  # a probe starts: its NACKs are counted from here
                counts = internals.sender_counts(subscription.transceiver.sender)
                state.probe_nacks, state.probe_packets = 0, 0 if counts is None else counts[0]
