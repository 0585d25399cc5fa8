"""The TV's echo canceller: removes what the TV's own speakers play from its microphone before it is published.

The library is WebRTC's audio processing module (AEC3 echo canceller, noise suppression, high-pass filter, gain
control) from the `livekit` wheel (`livekit.rtc.AudioProcessingModule`): it ships manylinux wheels for x86_64 and
aarch64 (a Pi), and AEC3 with its own delay estimator is what browsers use (25-40 dB of echo return loss
enhancement where Speex's canceller gives less).

How it is fed (tvapp.core.echo says why):
- `far_end(samples, played_at)`: every block the TV hands to its audio device, exactly as handed (the mixed call
  audio and the content audio), with the wall time its first sample is heard. `AudioOutput.add_tap` calls it on
  SDL's audio thread: it only copies the block (mixed to mono) into a ring and notes its timestamp.
- `process_capture(frame, captured_at) -> frame`: one 10 ms microphone frame (48 kHz mono int16, 480 samples) with
  the wall time its first sample was captured. The reference samples the speakers played from that instant on
  (`ReferenceAligner`: the output and capture clocks tied by their timestamps, drift corrected by dropping or
  repeating one reference sample now and then) go to `process_reverse_stream`, then the frame to `process_stream`;
  the cleaned frame is returned. Call it from one thread (the microphone pipeline's filter hook).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from tvapp.core.echo import (
    FRAME,
    RATE,
    EchoSummary,
    Read,
    ReferenceAligner,
    TalkMonitor,
    TalkState,
    level_dbfs,
)

if TYPE_CHECKING:
    from tvapp.tv.audio import AudioOutput
    from tvapp.tv.capture import LocalMedia

log = logging.getLogger(__name__)

RING_SECONDS = 2.0  # reference history kept: the capture may lag the output by up to this (minus its delay)


class EchoError(Exception):
    """The canceller cannot run (its library is missing or refused the settings)."""


def _load_apm(*, noise_suppression: bool, auto_gain_control: bool, high_pass_filter: bool) -> Any:
    try:
        from livekit import rtc
    except ImportError as exc:  # pragma: no cover - the wheel is a dependency
        raise EchoError(f"the echo canceller needs the livekit package: {exc}") from exc
    return rtc, rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=noise_suppression,
                                          high_pass_filter=high_pass_filter, auto_gain_control=auto_gain_control)


class EchoCanceller:
    """WebRTC AEC3 fed with the TV's output as the far end; cleans 10 ms microphone frames (48 kHz mono int16)."""

    def __init__(self, *, noise_suppression: bool = True, auto_gain_control: bool = True,
                 high_pass_filter: bool = True, margin_ms: float = 5.0) -> None:
        self._rtc, self._apm = _load_apm(noise_suppression=noise_suppression, auto_gain_control=auto_gain_control,
                                         high_pass_filter=high_pass_filter)
        self._lock = threading.Lock()
        self._aligner = ReferenceAligner(margin_ms=margin_ms)
        self._ring = np.zeros(int(RING_SECONDS * RATE), dtype=np.int16)
        self._written = 0            # output samples written to the ring so far (the output clock's index)
        self._monitor = TalkMonitor()
        self._state = TalkState.IDLE
        self._hint = 0
        self._late = 0
        self.frames = 0              # microphone frames cleaned so far

    # -- the output side (SDL's audio thread) ---------------------------------------------------------------

    def attach(self, output: AudioOutput) -> Callable[[], None]:
        """Take everything `output` plays from now on as the far end; return the function that stops it."""
        output.add_tap(self.far_end)
        return lambda: output.remove_tap(self.far_end)

    def wire(self, output: AudioOutput, media: LocalMedia) -> Callable[[], None]:
        """Hear everything `output` plays and clean every block of `media`'s microphone; return what undoes both."""
        from tvapp.tv.microphone import identity

        detach = self.attach(output)
        media.capture_filter = self.process_capture
        log.info("tv: the microphone goes through the echo canceller")

        def unwire() -> None:
            detach()
            if media.capture_filter == self.process_capture:
                media.capture_filter = identity
        return unwire

    def far_end(self, samples: NDArray[np.int16], played_at: float) -> None:
        """Take one block the TV handed to its speakers, shaped (frames,) or (frames, channels), heard at `played_at`."""
        if samples.ndim == 1:
            block = np.asarray(samples, dtype=np.int16)
        else:  # what both speakers play, as one microphone hears it
            block = np.round(samples.mean(axis=1)).astype(np.int16)
        size = self._ring.size
        with self._lock:
            first = self._written
            self._aligner.played(first, played_at)
            count = min(block.size, size)
            where = (first + np.arange(block.size - count, block.size)) % size
            self._ring[where] = block[block.size - count:]
            self._written = first + block.size

    # -- the microphone side (one thread) -------------------------------------------------------------------

    def process_capture(self, frame: NDArray[np.int16], captured_at: float) -> NDArray[np.int16]:
        """Return the 10 ms microphone frame captured at `captured_at` with the TV's own sound removed."""
        if frame.shape != (FRAME,):
            raise ValueError(f"a capture frame is {FRAME} mono samples (10 ms at {RATE} Hz), got shape {frame.shape}")
        with self._lock:
            read = self._aligner.captured(captured_at)
            reference = self._reference(read)
        rtc = self._rtc
        far = rtc.AudioFrame(reference.tobytes(), RATE, 1, FRAME)
        self._apm.process_reverse_stream(far)
        self._hint = read.delay_hint_ms if read is not None else 0
        self._apm.set_stream_delay_ms(self._hint)  # AEC3 wants it before every process_stream
        near = rtc.AudioFrame(np.ascontiguousarray(frame, dtype=np.int16).tobytes(), RATE, 1, FRAME)
        self._apm.process_stream(near)
        cleaned = np.frombuffer(near.data, dtype=np.int16).copy()
        self._state = self._monitor.update(_dbfs(reference), _dbfs(cleaned), captured_at)
        self.frames += 1
        return cleaned

    def _reference(self, read: Read | None) -> NDArray[np.int16]:
        """Return FRAME reference samples for `read` from the ring (zeros where not played yet or long gone)."""
        if read is None:
            return np.zeros(FRAME, dtype=np.int16)
        size = self._ring.size
        indices = np.arange(read.start, read.start + read.count)
        valid = (indices >= max(0, self._written - size)) & (indices < self._written)
        if not valid.all():
            self._late += 1
        taken = np.where(valid, self._ring[indices % size], 0).astype(np.int16)
        if read.count == FRAME:
            return taken
        # A few samples more or fewer than a frame: stretch it back to FRAME (linear interpolation over the frame,
        # which is how a drop or an insert of one sample is spread instead of clicking).
        positions = np.linspace(0, read.count - 1, FRAME)
        return np.round(np.interp(positions, np.arange(read.count), taken.astype(np.float64))).astype(np.int16)

    # -- figures --------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, object]:
        """Return `summary()` for the screenshot sidecar and logs (state: idle, far_end, near_end, double_talk)."""
        summary = self.summary()
        return {"state": summary.state.value, "delay_hint_ms": summary.delay_hint_ms,
                "drift_ppm": None if summary.drift_ppm is None else round(summary.drift_ppm, 1),
                "dropped": summary.dropped, "inserted": summary.inserted, "resyncs": summary.resyncs,
                "late_reference_frames": summary.late_reference_frames, "frames": self.frames,
                "reference_samples": summary.reference_samples}

    def summary(self) -> EchoSummary:
        """Return the state for the UI and the logs: who talks, the delay hint, the clock drift, the corrections."""
        with self._lock:
            aligner = self._aligner
            return EchoSummary(state=self._state, delay_hint_ms=self._hint, drift_ppm=aligner.drift_ppm(),
                               dropped=aligner.dropped, inserted=aligner.inserted, resyncs=aligner.resyncs,
                               late_reference_frames=self._late, reference_samples=self._written)


def _dbfs(samples: NDArray[np.int16]) -> float:
    scaled = samples.astype(np.float64) / 32768.0
    return level_dbfs(float(np.mean(scaled * scaled)))
