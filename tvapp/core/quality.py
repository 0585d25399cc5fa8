"""The connection-quality badge on a tile: a level 0..3 from a participant's receive statistics.

The TV's session polls each inbound stream's stats (cumulative packets received and lost, jitter, frames
decoded) about once a second and feeds them to that stream's `QualityMeter`; the level it returns goes
into the tile (tvapp.tv.scene.TileView.quality).

Levels (`quality_level`), for the packets of one interval:

    3 excellent  loss < 2 %  and jitter < 30 ms
    2 good       loss < 5 %  and jitter < 60 ms
    1 poor       loss < 15 %
    0 lost       loss >= 15 %, or no packets at all for `stall_ms` (3 s), or video decoding 0 frames/s

With a frame rate and the rate the sender aims for, video that plays below 80 % of it is at most good (2)
and below 50 % at most poor (1): a stream can lose no packets and still freeze when the sender is starved.
"""

from __future__ import annotations

from dataclasses import dataclass

EXCELLENT, GOOD, POOR, LOST = 3, 2, 1, 0

EXCELLENT_LOSS, EXCELLENT_JITTER_MS = 0.02, 30.0
GOOD_LOSS, GOOD_JITTER_MS = 0.05, 60.0
POOR_LOSS = 0.15
GOOD_FPS_SHARE, POOR_FPS_SHARE = 0.8, 0.5
STALL_MS = 3000.0


def quality_level(loss_fraction: float, jitter_ms: float, frames_per_second: float | None = None,
                  expected_fps: float | None = None) -> int:
    """Return the quality level (3 excellent .. 0 lost) for one interval's loss, jitter and frame rate."""
    if not jitter_ms >= 0.0:
        raise ValueError(f"jitter cannot be negative, got {jitter_ms}")
    if not loss_fraction == loss_fraction:
        raise ValueError("the loss fraction is not a number")
    loss = min(1.0, max(0.0, loss_fraction))   # duplicated packets can make RTP's loss count negative
    if loss < EXCELLENT_LOSS and jitter_ms < EXCELLENT_JITTER_MS:
        level = EXCELLENT
    elif loss < GOOD_LOSS and jitter_ms < GOOD_JITTER_MS:
        level = GOOD
    elif loss < POOR_LOSS:
        level = POOR
    else:
        level = LOST
    if frames_per_second is not None:
        if frames_per_second <= 0.0:
            return LOST
        if expected_fps is not None and expected_fps > 0.0:
            share = frames_per_second / expected_fps
            if share < POOR_FPS_SHARE:
                level = min(level, POOR)
            elif share < GOOD_FPS_SHARE:
                level = min(level, GOOD)
    return level


@dataclass(slots=True)
class _Sample:
    received: int
    lost: int
    frames: int | None
    now_ms: float


class QualityMeter:
    """Turns one stream's cumulative receive counters into a quality level per update."""

    def __init__(self, expected_fps: float | None = None, stall_ms: float = STALL_MS) -> None:
        self.expected_fps = expected_fps
        self.stall_ms = stall_ms
        self._previous: _Sample | None = None
        self._last_packet_ms = 0.0
        self._level: int | None = None

    @property
    def level(self) -> int | None:
        """Return the last level reported (None before the first interval)."""
        return self._level

    def update(self, packets_received: int, packets_lost: int, jitter_ms: float, now_ms: float,
               frames_decoded: int | None = None) -> int | None:
        """Feed cumulative counters at `now_ms`; return the level for the interval since the last update."""
        sample = _Sample(packets_received, packets_lost, frames_decoded, now_ms)
        previous = self._previous
        self._previous = sample
        if previous is None or self._counters_went_back(previous, sample):
            self._last_packet_ms = now_ms
            self._level = None
            return None
        received = sample.received - previous.received
        if received == 0:
            if now_ms - self._last_packet_ms >= self.stall_ms:
                self._level = LOST
            return self._level
        self._last_packet_ms = now_ms
        lost = max(0, sample.lost - previous.lost)
        fps = None
        elapsed_s = (now_ms - previous.now_ms) / 1000.0
        if sample.frames is not None and previous.frames is not None and elapsed_s > 0.0:
            fps = (sample.frames - previous.frames) / elapsed_s
        self._level = quality_level(lost / (received + lost), max(0.0, jitter_ms), fps, self.expected_fps)
        return self._level

    @staticmethod
    def _counters_went_back(previous: _Sample, sample: _Sample) -> bool:
        """Return whether the stream restarted: a cumulative counter is smaller than before."""
        if sample.received < previous.received:
            return True
        if sample.frames is None or previous.frames is None:
            return (sample.frames is None) != (previous.frames is None)
        return sample.frames < previous.frames
