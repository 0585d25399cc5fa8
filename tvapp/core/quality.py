"""Network quality: a level per participant from 0 to 5 on Twilio's scale, from its uplink and downlink measures.

The SFU (tvapp.server.quality) measures each participant once a second in both directions and feeds the
cumulative counters to that participant's `QualityMeter`; the level goes to everyone in the room
(`network_quality`), into REST participant info, the SDKs and the tiles (TV badge, web bars).

    5 excellent   4 good   3 fair   2 poor   1 bad   0 broken (nothing heard for `stall_ms`, 3 s)

One direction's level (`level_for`) is the E-model (ITU-T G.107, simplified as in Cole & Rosenbluth) turned
into a mean opinion score and mapped to 1..5; LiveKit's connection-quality scorer does the same:

    one-way delay  d  = RTT / 2 + 2 * jitter + 20 ms   (half the round trip, a jitter buffer, packetization)
    delay impair.  Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)
    loss impair.   Ie = 95 * P / (P + 16)               (P: packet loss in %, 16: a codec with concealment)
    R = 93.2 - Id - Ie;   MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R), clamped to 1..4.5
    level: MOS >= 4.2 -> 5, >= 3.8 -> 4, >= 3.3 -> 3, >= 2.5 -> 2, else 1

So 0 % loss at 50 ms each way is 5, 2 % loss is 4, 10 % loss is 2, and 300 ms each way (0 % loss) is 3.
When the sender wanted a bitrate, the share it achieved caps the level: below 90 % at most 4, below 70 % at
most 3, below 50 % at most 2, below 30 % at most 1 (a clean link that carries too little is not excellent).

A participant's level is the lower of its uplink's (what the SFU receives from it) and its downlink's (the
SFU's sends, as its RTCP receiver reports describe them). Each direction's loss is counted over a sliding
window (`window_ms`, 5 s) of cumulative counters, so one lost packet in a quiet second is not a verdict.
Pure: time and measures are arguments.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

BROKEN, BAD, POOR, FAIR, GOOD, EXCELLENT = 0, 1, 2, 3, 4, 5
MOS_LEVELS = ((4.2, EXCELLENT), (3.8, GOOD), (3.3, FAIR), (2.5, POOR))
SHARE_CAPS = ((0.3, BAD), (0.5, POOR), (0.7, FAIR), (0.9, GOOD))
LOSS_BPL = 16.0
CODEC_DELAY_MS = 20.0
STALL_MS = 3000.0
WINDOW_MS = 5000.0
RESEND_MS = 5000.0


@dataclass(frozen=True, slots=True)
class LinkMeasures:
    """One direction's measures over an interval: loss fraction, jitter and round trip; bitrates if known."""

    loss: float
    jitter_ms: float = 0.0
    rtt_ms: float | None = None
    achieved_bps: float | None = None
    wanted_bps: float | None = None


def r_factor(loss: float, jitter_ms: float, rtt_ms: float | None) -> float:
    """Return the E-model's transmission rating R (0..93.2) for a loss fraction, jitter and round trip."""
    if math.isnan(loss) or math.isnan(jitter_ms) or (rtt_ms is not None and math.isnan(rtt_ms)):
        raise ValueError("a measure is not a number")
    if jitter_ms < 0 or (rtt_ms is not None and rtt_ms < 0):
        raise ValueError(f"jitter and round trip cannot be negative (got {jitter_ms}, {rtt_ms})")
    percent = 100.0 * min(1.0, max(0.0, loss))   # duplicated packets can make RTP's loss count negative
    delay = (rtt_ms or 0.0) / 2 + 2 * jitter_ms + CODEC_DELAY_MS
    impairment_delay = 0.024 * delay + (0.11 * (delay - 177.3) if delay > 177.3 else 0.0)
    impairment_loss = 95.0 * percent / (percent + LOSS_BPL)
    return max(0.0, 93.2 - impairment_delay - impairment_loss)


def mos(r: float) -> float:
    """Return the mean opinion score (1..4.5) for an E-model rating R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, min(4.5, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)))


def level_for(measures: LinkMeasures) -> int:
    """Return one direction's level 1..5 from its measures (0 is only for silence, see QualityMeter)."""
    score = mos(r_factor(measures.loss, measures.jitter_ms, measures.rtt_ms))
    level = next((lvl for threshold, lvl in MOS_LEVELS if score >= threshold), BAD)
    if measures.wanted_bps is not None and measures.wanted_bps > 0 and measures.achieved_bps is not None:
        share = measures.achieved_bps / measures.wanted_bps
        cap = next((lvl for threshold, lvl in SHARE_CAPS if share < threshold), EXCELLENT)
        level = min(level, cap)
    return level


def announce_due(levels: dict[str, int | None], told: dict[str, int | None], told_at_ms: float | None,
                 now_ms: float, resend_ms: float = RESEND_MS) -> bool:
    """Return whether the room should hear the levels now: one changed (or is new), or `resend_ms` have passed.

    Nothing is said while no level is known and none was told (a room without media hears no quality messages).
    """
    if not levels:
        return False
    if all(level is None for level in levels.values()) and all(level is None for level in told.values()):
        return False
    if told_at_ms is None or now_ms - told_at_ms >= resend_ms:
        return True
    return any(sid not in told or told[sid] != level for sid, level in levels.items())


def combine(uplink: int | None, downlink: int | None) -> int | None:
    """Return a participant's level from its two directions' (the lower; None when neither is known)."""
    known = [level for level in (uplink, downlink) if level is not None]
    return min(known) if known else None


@dataclass(frozen=True, slots=True)
class Counters:
    """One direction's cumulative counters at one moment, plus its current jitter and round trip.

    `received` and `lost` are cumulative packet counts (for the downlink: as the receiver reports them, so
    they stand still while no report arrives); `bytes` counts what was carried, `wanted_bps` what the sender
    aimed for (both optional)."""

    received: int
    lost: int
    jitter_ms: float = 0.0
    rtt_ms: float | None = None
    bytes: int | None = None
    wanted_bps: float | None = None


@dataclass(frozen=True, slots=True)
class DirectionReport:
    """What a direction's meter concluded: its level and the measures it came from (None when broken)."""

    level: int
    measures: LinkMeasures | None


class DirectionMeter:
    """Turns one direction's cumulative counters into a level, over a sliding window, with stall detection."""

    def __init__(self, window_ms: float = WINDOW_MS, stall_ms: float = STALL_MS) -> None:
        self.window_ms = window_ms
        self.stall_ms = stall_ms
        self._samples: deque[tuple[float, Counters]] = deque()
        self._last_heard_ms = 0.0
        self.report: DirectionReport | None = None

    def update(self, counters: Counters | None, now_ms: float) -> DirectionReport | None:
        """Feed the counters at `now_ms` (None: this direction carries nothing now); return the verdict."""
        if counters is None:
            self._samples.clear()
            self.report = None
            return None
        samples = self._samples
        if samples and counters.received < samples[-1][1].received:
            samples.clear()   # a restarted stream: its counters began again
        if not samples or counters.received > samples[-1][1].received:
            self._last_heard_ms = now_ms
        samples.append((now_ms, counters))
        while len(samples) > 2 and samples[1][0] <= now_ms - self.window_ms:
            samples.popleft()
        first_ms, first = samples[0]
        if len(samples) < 2:
            return self.report
        if now_ms - self._last_heard_ms >= self.stall_ms:
            self.report = DirectionReport(BROKEN, None)
            return self.report
        received = counters.received - first.received
        lost = max(0, counters.lost - first.lost)
        if received <= 0:
            return self.report
        achieved = None
        if counters.bytes is not None and first.bytes is not None and now_ms > first_ms:
            achieved = (counters.bytes - first.bytes) * 8 / ((now_ms - first_ms) / 1000.0)
        measures = LinkMeasures(loss=lost / (received + lost), jitter_ms=max(0.0, counters.jitter_ms),
                                rtt_ms=counters.rtt_ms, achieved_bps=achieved, wanted_bps=counters.wanted_bps)
        self.report = DirectionReport(level_for(measures), measures)
        return self.report


class QualityMeter:
    """One participant's network quality: an uplink and a downlink meter and the level they make."""

    def __init__(self, window_ms: float = WINDOW_MS, stall_ms: float = STALL_MS) -> None:
        self.uplink = DirectionMeter(window_ms, stall_ms)
        self.downlink = DirectionMeter(window_ms, stall_ms)

    @property
    def level(self) -> int | None:
        """Return the participant's level now (None before anything was measured)."""
        up, down = self.uplink.report, self.downlink.report
        return combine(up.level if up else None, down.level if down else None)

    def update(self, uplink: Counters | None, downlink: Counters | None, now_ms: float) -> int | None:
        """Feed both directions' counters at `now_ms`; return the participant's level."""
        self.uplink.update(uplink, now_ms)
        self.downlink.update(downlink, now_ms)
        return self.level
