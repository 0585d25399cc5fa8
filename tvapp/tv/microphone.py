"""The TV's microphone: an SDL capture device read as an aiortc audio track, with a filter hook per 10 ms.

SDL's audio thread hands over 10 ms of s16 mono at 48 kHz at a time (`BLOCK_SAMPLES`); each block goes through
`capture_filter` (identity by default; the echo canceller plugs in here, tvapp.tv.echo.EchoCanceller.process_capture:
a callable taking one block, an int16 array of BLOCK_SAMPLES samples, and the wall time its first sample was
captured, and returning the block to send) and is queued for the asyncio side, which sends 20 ms frames (two
blocks) to the Opus encoder. `stop()` closes the SDL device: nothing is captured until a new track opens it.

When a block was captured (`capture_time`): SDL calls back once its device handed over a full buffer, so the
buffer's last sample was captured about `CAPTURE_LATENCY_S` before the callback runs (what sat in the device:
SDL's ALSA and PulseAudio backends read one period of `BLOCK_SAMPLES` once it is full) and the buffer's first
sample one buffer earlier still. An estimate: the canceller only needs the reference to lead the echo (a capture
stamped too early by more than its margin plus the room's acoustic path would make the echo come before its
reference), and its delay estimator finds the rest. So the estimate errs short (one period, not two).

Under test SDL's disk driver captures from a file (SDL_AUDIODRIVER=disk, SDL_DISKAUDIOFILEIN=raw s16 mono 48 kHz),
paced like a real device (one block per 10 ms), and plays silence once the file ends.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from numpy.typing import NDArray

from tvapp.client.sources import SourceError
from tvapp.tv.audio import AudioError, capture_devices, close_device, open_device

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
BLOCK_SAMPLES = 480          # 10 ms: what SDL hands over at a time, and what the filter sees
FRAME_BLOCKS = 2             # 20 ms frames to the encoder
MAX_QUEUED_BLOCKS = 50       # half a second: beyond it the oldest audio goes (nobody is reading)
CAPTURE_LATENCY_S = BLOCK_SAMPLES / SAMPLE_RATE  # a sample's wait in the device before SDL reads it (see above)

CaptureFilter = Callable[[NDArray[np.int16], float], NDArray[np.int16]]


def identity(block: NDArray[np.int16], captured_at: float) -> NDArray[np.int16]:
    """Return the block unchanged (the filter when there is no echo canceller)."""
    return block


def capture_time(called_at: float, buffer_samples: int, start: int, *, latency_s: float = CAPTURE_LATENCY_S,
                 rate: int = SAMPLE_RATE) -> float:
    """Return when sample `start` of a buffer of `buffer_samples` that SDL handed over at `called_at` was captured."""
    return called_at - latency_s - (buffer_samples - start) / rate


def list_microphones() -> list[str]:
    """Return SDL's capture device names (empty when SDL audio cannot start)."""
    try:
        return capture_devices()
    except AudioError:
        return []


class MicrophoneTrack(MediaStreamTrack):
    """One SDL capture device as a live audio track of 20 ms s16 mono frames; `stop()` closes the device."""

    kind = "audio"

    def __init__(self, device: str | None, capture_filter: Callable[[], CaptureFilter] = lambda: identity) -> None:
        """Open `device` (None: SDL's default) and start capturing; SourceError when it cannot."""
        super().__init__()
        self._filter = capture_filter
        self._asyncio_loop = asyncio.get_running_loop()
        self._blocks_lock = threading.Lock()  # not `_lock`: that is pyee's (MediaStreamTrack emits under it)
        self._blocks: collections.deque[NDArray[np.int16]] = collections.deque(maxlen=MAX_QUEUED_BLOCKS)
        self._ready = asyncio.Event()
        self._pts = 0
        self._filter_failed = False
        self.frames_read = 0     # 10 ms blocks SDL captured
        self.description = f"microphone {device!r}" if device else "the default microphone"
        try:
            self._device: Any = open_device(device, capture=True, rate=SAMPLE_RATE, channels=1,
                                            chunk=BLOCK_SAMPLES, callback=self._captured)
        except AudioError as exc:
            raise SourceError(f"cannot open {self.description}: {exc}") from exc
        except Exception as exc:  # pygame.error with SDL's reason
            raise SourceError(f"cannot open {self.description}: {exc}") from exc
        self._device.pause(0)

    def _captured(self, device: object, buffer: memoryview) -> None:
        """Take one block from SDL (its audio thread), filter it, queue it for recv."""
        called_at = time.time()
        samples = np.frombuffer(bytes(buffer), dtype=np.int16)
        self.frames_read += 1
        for start in range(0, len(samples) - BLOCK_SAMPLES + 1, BLOCK_SAMPLES):
            block = samples[start:start + BLOCK_SAMPLES]
            try:
                block = self._filter()(block, capture_time(called_at, len(samples), start))
            except Exception:
                if not self._filter_failed:
                    self._filter_failed = True
                    log.exception("tv microphone: the capture filter failed; sending the microphone unfiltered")
            with self._blocks_lock:
                self._blocks.append(block)
        if not self._asyncio_loop.is_closed():
            try:
                self._asyncio_loop.call_soon_threadsafe(self._ready.set)
            except RuntimeError:  # the loop closed meanwhile
                pass

    async def recv(self) -> av.AudioFrame:
        """Return the next 20 ms of captured audio (MediaStreamError once stopped)."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            with self._blocks_lock:
                if len(self._blocks) >= FRAME_BLOCKS:
                    blocks = [self._blocks.popleft() for _ in range(FRAME_BLOCKS)]
                    break
                self._ready.clear()
            await self._ready.wait()
        samples = np.concatenate(blocks).astype(np.int16, copy=False)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += samples.size
        return frame

    def stop(self) -> None:
        """End the track and close the device (nothing is captured after this)."""
        device, self._device = self._device, None
        if device is not None:
            # Never device.pause(1) here: pygame calls SDL holding the GIL, and SDL waits for the device's lock,
            # which its audio thread holds while our callback waits for the GIL (a deadlock that froze the TV on
            # SIGTERM under load). close_device pauses and joins SDL's thread with the GIL let go.
            close_device(device)
        if self.readyState == "live":
            super().stop()
        self._ready.set()
