"""Network quality at the SFU: each participant's uplink and downlink measured once a second, levels to the room.

Uplink (what the SFU receives from a participant): its publications' receivers count the packets received and
lost (RTP sequence gaps, before retransmission) and the interarrival jitter. Downlink (what the SFU sends it):
the RTCP receiver reports the participant sends about each subscription (aiortc's remote-inbound-rtp stats:
cumulative loss, jitter, and the round trip from the report's LSR/DLSR). The round trip measured on the
downlink serves both directions (it is one path). A direction counts only while it carries media: unmuted
publications for the uplink, subscriptions the SFU is sending packets on for the downlink.

Those cumulative counters go to the participant's tvapp.core.quality.QualityMeter, the one rule for the level
(0..5). `RoomQuality.measure` sets `LiveParticipant.network_quality` (REST participant info, `joined`) and
broadcasts `network_quality` with every participant's level and measures when a level changed, and at least
every 5 s otherwise (tvapp.core.quality.announce_due).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tvapp.core.quality import Counters, DirectionReport, QualityMeter, announce_due
from tvapp.protocol.messages import LinkQuality, NetworkQuality, NetworkQualityInfo
from tvapp.rtc import internals
from tvapp.server.live import LiveRoom

if TYPE_CHECKING:
    from tvapp.server.media_session import MediaSession

log = logging.getLogger(__name__)

INTERVAL_MS = 1000.0
CLOCK_RATES = {"audio": 48000, "video": 90000}


def uplink_counters(session: MediaSession) -> Counters | None:
    """Return what the SFU has received from the participant's unmuted publications (None: it sends nothing); one
    paused by publish_constraints (tvapp.server.adaptive: nobody shows it) is not expected to send."""
    received = lost = 0
    jitter_s = 0.0
    any_stream = False
    for publication in list(session.publications.values()):
        if publication.muted or publication.constraints.paused:
            continue
        counts = internals.receive_counts(publication.receiver)
        if counts is None:
            continue
        any_stream = True
        received += counts[0]
        lost += counts[1]
        jitter_s = max(jitter_s, counts[2])
    return Counters(received=received, lost=lost, jitter_ms=jitter_s * 1000.0) if any_stream else None


async def downlink_counters(session: MediaSession, sent_before: dict[int, int]) -> Counters | None:
    """Return what the participant's receiver reports say of the SFU's sends to it (None: nothing is being sent).

    `sent_before` maps each sender (by id) to its packet count at the last call; it is updated here."""
    received = lost = 0
    jitter_ms = 0.0
    rtts: list[float] = []
    sending = False
    for subscription in list(session.subscriptions.values()):
        sender = subscription.transceiver.sender
        try:
            stats: Any = await sender.getStats()
        except Exception as exc:  # a sender not negotiated yet, or closing: nothing to read this time
            log.debug("media: no stats from a sender of %s: %r", session.participant.identity, exc)
            continue
        outbound = remote = None
        for entry in stats.values():
            if entry.type == "outbound-rtp":
                outbound = entry
            elif entry.type == "remote-inbound-rtp":
                remote = entry
        packets_sent = int(getattr(outbound, "packetsSent", 0) or 0)
        if packets_sent > sent_before.get(id(sender), 0):
            sending = True
        sent_before[id(sender)] = packets_sent
        if remote is None:
            continue
        received += max(0, int(remote.packetsReceived or 0))
        lost += max(0, int(remote.packetsLost or 0))
        jitter_ms = max(jitter_ms, 1000.0 * float(remote.jitter or 0) / CLOCK_RATES.get(subscription.kind, 90000))
        if remote.roundTripTime is not None:
            # aiortc's estimate (wall clock minus LSR and DLSR, smoothed) dips below 0 on a ~0 ms loopback path.
            rtts.append(max(0.0, float(remote.roundTripTime) * 1000.0))
    if not sending:
        return None
    return Counters(received=received, lost=lost, jitter_ms=jitter_ms, rtt_ms=min(rtts) if rtts else None)


def _link(report: DirectionReport | None) -> LinkQuality | None:
    if report is None:
        return None
    m = report.measures
    if m is None:
        return LinkQuality(level=report.level)
    return LinkQuality(level=report.level, loss=round(m.loss, 4), jitter_ms=round(m.jitter_ms, 1),
                       rtt_ms=None if m.rtt_ms is None else round(m.rtt_ms, 1))


class RoomQuality:
    """The network quality of one room's participants: their meters, and what was last told to the room."""

    def __init__(self, live: LiveRoom) -> None:
        self.live = live
        self.meters: dict[str, QualityMeter] = {}
        self.sent_packets: dict[str, dict[int, int]] = {}
        self.told: dict[str, int | None] = {}
        self.told_at_ms: float | None = None

    async def measure(self, sessions: list[MediaSession], now_ms: float) -> None:
        """Measure every session, update the participants' levels and tell the room when due."""
        infos = []
        present = set()
        for session in sessions:
            participant = session.participant
            if session.closed or participant.hidden:
                continue
            sid = participant.sid
            present.add(sid)
            meter = self.meters.setdefault(sid, QualityMeter())
            try:
                down = await downlink_counters(session, self.sent_packets.setdefault(sid, {}))
                up = uplink_counters(session)
                if up is not None and down is not None and down.rtt_ms is not None:
                    up = Counters(received=up.received, lost=up.lost, jitter_ms=up.jitter_ms, rtt_ms=down.rtt_ms)
                level = meter.update(up, down, now_ms)
            except Exception:  # one participant's odd stats never stop the others' levels
                log.exception("media: measuring %s failed", participant.identity)
                continue
            if participant.network_quality != level:
                participant.network_quality = level
                participant.changed()
            infos.append(NetworkQualityInfo(participant_sid=sid, level=level, uplink=_link(meter.uplink.report),
                                            downlink=_link(meter.downlink.report)))
        for gone in set(self.meters) - present:
            self.meters.pop(gone, None)
            self.sent_packets.pop(gone, None)
            self.told.pop(gone, None)
        levels = {info.participant_sid: info.level for info in infos}
        if announce_due(levels, self.told, self.told_at_ms, now_ms):
            self.told = dict(levels)
            self.told_at_ms = now_ms
            self.live.broadcast(NetworkQuality(levels=tuple(infos)))
