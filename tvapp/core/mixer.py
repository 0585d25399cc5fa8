"""Mixing the call's audio for the TV's speakers: per-source jitter queues, gains, master volume, a soft limiter.

The audio output adapter (tvapp.tv.audio) pushes each participant's decoded audio with
`AudioMixer.push(source, samples)` as it arrives and pulls fixed-size blocks with `AudioMixer.pull(frames)`
from the sound card's callback, both behind its own lock. Samples are shaped (frames, channels); int16
samples are read as value / 32768, float samples are in [-1, 1].

Each source has a queue of numpy chunks, so pull() copies whole slices and never loops per sample:

- Prefill. A source plays only once it has `prefill_ms` queued. When it runs dry in the middle of a pull,
  the rest of its share is silence and it waits for `prefill_ms` again (an underrun), so a late network
  burst plays as one piece instead of a stutter of tiny fragments.
- Latency cap. A queue never holds more than `max_queue_ms`: when a push would exceed it, the oldest
  samples are dropped (counted in `stats.dropped_frames`) down to halfway between `prefill_ms` and the cap,
  so a source that got ahead of the sound card catches up instead of lagging more and more behind the
  video. Dropping to halfway rather than to the cap itself matters when the sender's clock runs faster than
  the sound card's (1% apart under SDL's disk driver): the queue then hits the cap every couple of seconds
  and skips once, instead of skipping a little on every push, which sounds like a buzz.
- Mixing. Sources are summed with their gains (0..4), scaled by the master volume (0..1) and passed
  through `soft_limit`: quiet audio is untouched, loud peaks bend smoothly toward full scale and never
  clip hard or wrap around in int16.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

INT16_SCALE = 32768.0
INT16_PEAK = 32766               # one below int16's maximum: a full-scale output is still visibly unclipped
_CEILING = np.float32(np.nextafter(np.float32(1.0), np.float32(0.0)))
MAX_GAIN = 4.0


def soft_limit(samples: NDArray[np.float32], threshold: float = 0.7) -> NDArray[np.float32]:
    """Return samples unchanged up to `threshold` in magnitude, bent smoothly (tanh knee) toward 1 above it."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"the limiter threshold must be in [0, 1), got {threshold}")
    x = np.asarray(samples, dtype=np.float32)
    t = np.float32(threshold)
    room = np.float32(1.0) - t
    magnitude = np.abs(x)
    over = magnitude > t
    if not over.any():
        return x.copy()
    bent = t + room * np.tanh((magnitude - t) / room)
    out = np.where(over, np.copysign(np.minimum(bent, _CEILING), x), x)
    return out.astype(np.float32, copy=False)


def _to_int16(mixed: NDArray[np.float32], master: float, threshold: float) -> NDArray[np.int16]:
    """Scale by master, limit, and convert to int16 without ever reaching the rails."""
    scaled = np.nan_to_num(mixed * np.float32(master), nan=0.0, posinf=1e6, neginf=-1e6).astype(np.float32)
    limited = soft_limit(scaled, threshold)
    ints = np.rint(limited * np.float32(INT16_SCALE))
    out: NDArray[np.int16] = np.clip(ints, -INT16_PEAK, INT16_PEAK).astype(np.int16)
    return out


def mix(blocks: Sequence[NDArray[np.float32]], gains: Sequence[float], master: float,
        threshold: float = 0.7) -> NDArray[np.int16]:
    """Return the sum of equally shaped (frames, channels) blocks times their gains and master, limited, as int16."""
    if not blocks:
        raise ValueError("mix needs at least one block (the frame count comes from the blocks)")
    if len(blocks) != len(gains):
        raise ValueError(f"got {len(blocks)} blocks but {len(gains)} gains")
    shape = blocks[0].shape
    if len(shape) != 2:
        raise ValueError(f"blocks must be shaped (frames, channels), got {shape}")
    acc = np.zeros(shape, dtype=np.float32)
    for block, gain in zip(blocks, gains):
        if block.shape != shape:
            raise ValueError(f"all blocks must have the same shape: {block.shape} != {shape}")
        acc += block * np.float32(gain)
    return _to_int16(acc, master, threshold)


@dataclass(frozen=True, slots=True)
class MixerStats:
    """Running counts: frames pulled, sources that ran dry mid-play, and frames dropped by the latency cap."""

    pulled_frames: int = 0
    underruns: int = 0
    dropped_frames: int = 0


@dataclass(slots=True)
class _Queue:
    """One source's pending audio: chunks, how far into the first one we are, and whether it is playing."""

    chunks: deque[NDArray[np.float32]] = field(default_factory=deque)
    offset: int = 0
    frames: int = 0
    playing: bool = False

    def append(self, chunk: NDArray[np.float32]) -> None:
        self.chunks.append(chunk)
        self.frames += len(chunk)

    def drop(self, count: int) -> None:
        """Discard the oldest `count` frames."""
        self.frames -= count
        while count:
            head = self.chunks[0]
            left = len(head) - self.offset
            if count < left:
                self.offset += count
                return
            count -= left
            self.chunks.popleft()
            self.offset = 0

    def take_into(self, out: NDArray[np.float32], gain: np.float32) -> int:
        """Add up to len(out) of the oldest frames times gain into out; return how many were taken."""
        wanted = min(len(out), self.frames)
        done = 0
        while done < wanted:
            head = self.chunks[0]
            n = min(wanted - done, len(head) - self.offset)
            out[done:done + n] += head[self.offset:self.offset + n] * gain
            done += n
            self.offset += n
            if self.offset == len(head):
                self.chunks.popleft()
                self.offset = 0
        self.frames -= wanted
        return wanted


class AudioMixer:
    """Per-source queues mixed into fixed-size int16 blocks; see the module docstring for the rules."""

    def __init__(self, sample_rate: int = 48000, channels: int = 2, *, prefill_ms: float = 20.0,
                 max_queue_ms: float = 60.0, threshold: float = 0.7) -> None:
        if sample_rate <= 0 or channels <= 0:
            raise ValueError(f"bad audio format: {sample_rate} Hz, {channels} channels")
        if not 0.0 <= prefill_ms <= max_queue_ms:
            raise ValueError(f"need 0 <= prefill_ms ({prefill_ms}) <= max_queue_ms ({max_queue_ms})")
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"the limiter threshold must be in [0, 1), got {threshold}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.threshold = threshold
        self._prefill = round(prefill_ms * sample_rate / 1000.0)
        self._max_queue = max(1, round(max_queue_ms * sample_rate / 1000.0))
        self._after_drop = (self._prefill + self._max_queue) // 2
        self._queues: dict[str, _Queue] = {}
        self._gains: dict[str, float] = {}
        self._master = 1.0
        self._pulled = 0
        self._underruns = 0
        self._dropped = 0

    @property
    def master(self) -> float:
        """Return the master volume, 0..1."""
        return self._master

    @master.setter
    def master(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"the master volume must be in [0, 1], got {value}")
        self._master = float(value)

    @property
    def stats(self) -> MixerStats:
        """Return the running counts."""
        return MixerStats(self._pulled, self._underruns, self._dropped)

    def push(self, source: str, samples: NDArray[np.int16] | NDArray[np.float32]) -> None:
        """Queue (frames, channels) samples from `source`, dropping the oldest beyond max_queue_ms."""
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(f"samples must be shaped (frames, {self.channels}), got {samples.shape}")
        chunk: NDArray[np.float32]
        if samples.dtype == np.int16:
            chunk = samples.astype(np.float32) / np.float32(INT16_SCALE)
        elif samples.dtype == np.float32:
            chunk = samples.astype(np.float32)
        else:
            raise ValueError(f"samples must be int16 or float32, got {samples.dtype}")
        queue = self._queues.setdefault(source, _Queue())
        if len(chunk) == 0:
            return
        queue.append(chunk)
        if queue.frames > self._max_queue:
            excess = queue.frames - self._after_drop
            queue.drop(excess)
            self._dropped += excess

    def pull(self, frames: int, extra: NDArray[np.float32] | None = None, extra_gain: float = 1.0
             ) -> NDArray[np.int16]:
        """Return exactly `frames` x channels int16 samples of every playing source mixed (silence if none).

        `extra` is a (frames, channels) float32 block from a pulled source (the shared content's audio) mixed in
        at `extra_gain` before the limiter, like the queued sources.
        """
        if frames < 0:
            raise ValueError(f"cannot pull a negative number of frames: {frames}")
        self._pulled += frames
        acc: NDArray[np.float32] | None = None
        if extra is not None:
            if extra.shape != (frames, self.channels):
                raise ValueError(f"the extra block must be shaped ({frames}, {self.channels}), got {extra.shape}")
            acc = extra.astype(np.float32, copy=True)
            if extra_gain != 1.0:
                acc *= np.float32(extra_gain)
        for name, queue in self._queues.items():
            if not queue.playing:
                if queue.frames == 0 or queue.frames < self._prefill:
                    continue
                queue.playing = True
            if acc is None:
                acc = np.zeros((frames, self.channels), dtype=np.float32)
            taken = queue.take_into(acc, np.float32(self._gains.get(name, 1.0)))
            if taken < frames:
                queue.playing = False
                self._underruns += 1
        if acc is None:
            return np.zeros((frames, self.channels), dtype=np.int16)
        return _to_int16(acc, self._master, self.threshold)

    def set_gain(self, source: str, gain: float) -> None:
        """Set `source`'s gain (0..4); a source not seen yet keeps it for when it arrives."""
        if not 0.0 <= gain <= MAX_GAIN:
            raise ValueError(f"a source's gain must be in [0, {MAX_GAIN}], got {gain}")
        self._gains[source] = float(gain)

    def remove(self, source: str) -> None:
        """Forget `source`: its queued audio and its gain (unknown sources are ignored)."""
        self._queues.pop(source, None)
        self._gains.pop(source, None)

    def queued_ms(self, source: str) -> float:
        """Return how much audio `source` has queued, in milliseconds (0 for an unknown source)."""
        queue = self._queues.get(source)
        return 0.0 if queue is None else queue.frames * 1000.0 / self.sample_rate

    def sources(self) -> tuple[str, ...]:
        """Return the sources that have pushed audio, in the order they first did."""
        return tuple(self._queues)


class Ducker:
    """The shared content's gain while people talk: lowered by `duck_db` while anyone speaks, back after.

    ``gain(speaking, elapsed_ms)`` moves the gain exponentially toward its target — with time constant `attack_ms`
    going down, `release_ms` coming back up — by the `elapsed_ms` since the previous call, so the call rate does
    not matter and speech comes through without the film dropping out in a step. ``duck_db = 0`` disables it.
    """

    def __init__(self, duck_db: float = -12.0, attack_ms: float = 150.0, release_ms: float = 600.0) -> None:
        if not -60.0 <= duck_db <= 0.0:
            raise ValueError(f"duck_db must be between -60 and 0 dB, got {duck_db}")
        if not (0 < attack_ms < math.inf and 0 < release_ms < math.inf):
            raise ValueError(f"attack_ms and release_ms must be positive and finite, got {attack_ms} and {release_ms}")
        self.ducked = 10.0 ** (duck_db / 20.0)
        self.attack_ms = attack_ms
        self.release_ms = release_ms
        self._gain = 1.0

    def gain(self, speaking: bool, elapsed_ms: float) -> float:
        """Return the content gain now, `elapsed_ms` after the previous call (a negative or NaN span counts as 0)."""
        target = self.ducked if speaking else 1.0
        tau = self.attack_ms if target < self._gain else self.release_ms
        step = 1.0 - math.exp(-max(0.0, elapsed_ms) / tau)
        self._gain += (target - self._gain) * step
        return self._gain
