"""What the receive side's decoders cost: CPU time, pictures and pixels, per receiver and per kind, cumulative.

aiortc decodes each receiver's frames in that receiver's own thread (aiortc.rtcrtpreceiver.decoder_worker).
`install()` (idempotent, once per process) has tvapp.rtc.internals.wrap_receiver_decoders wrap each decoder in a
`MeteredDecoder`, which times every `decode` call: the decoder thread's CPU time (`time.thread_time`; libvpx/FFmpeg decode in the calling thread) and its wall time, and counts the pictures and pixels it returned.
Each decoder adds to its own `DecodeCost` (found by its thread: `cost_of(thread)`) and to the process's totals per
kind (`totals()`, never reset: a reader diffs two readings). A few clock reads per frame; only numbers, no content.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from typing import Any

import av

_lock = threading.Lock()
_installed = False
_by_thread: weakref.WeakKeyDictionary[threading.Thread, DecodeCost] = weakref.WeakKeyDictionary()
_totals: dict[str, DecodeCost] = {}


@dataclasses.dataclass
class DecodeCost:
    """Cumulative cost of decoding: `cpu_ms` (decoder thread CPU), `wall_ms`, `pictures` and `pixels` (video)."""

    kind: str
    cpu_ms: float = 0.0
    wall_ms: float = 0.0
    frames: int = 0
    pictures: int = 0
    pixels: int = 0

    def add(self, cpu_ms: float, wall_ms: float, frames: list[Any]) -> None:
        """Count one decode call that took `cpu_ms`/`wall_ms` and returned `frames`."""
        self.cpu_ms += cpu_ms
        self.wall_ms += wall_ms
        self.frames += len(frames)
        for frame in frames:
            if isinstance(frame, av.VideoFrame):
                self.pictures += 1
                self.pixels += frame.width * frame.height

    def as_json(self) -> dict[str, Any]:
        """Return the counters as a JSON object (ms rounded to 0.01)."""
        return {"cpu_ms": round(self.cpu_ms, 2), "wall_ms": round(self.wall_ms, 2), "frames": self.frames,
                "pictures": self.pictures, "pixels": self.pixels}


class MeteredDecoder:
    """An aiortc decoder whose `decode` calls are counted in `cost` and in the process's totals."""

    def __init__(self, inner: Any, kind: str) -> None:
        self.inner = inner
        self.cost = DecodeCost(kind)

    def decode(self, encoded_frame: Any) -> list[Any]:
        """Decode like the wrapped decoder; count the time it took and what it returned."""
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        frames: list[Any] = self.inner.decode(encoded_frame)
        cpu_ms, wall_ms = 1000 * (time.thread_time() - cpu0), 1000 * (time.perf_counter() - wall0)
        self.cost.add(cpu_ms, wall_ms, frames)
        with _lock:
            _totals.setdefault(self.cost.kind, DecodeCost(self.cost.kind)).add(cpu_ms, wall_ms, frames)
        return frames


def install() -> None:
    """Meter every decoder aiortc's receivers make from now on in this process (idempotent)."""
    global _installed
    from tvapp.rtc import internals  # the one place that touches aiortc's internals

    with _lock:
        if _installed:
            return
        _installed = True

    def metered_decoder(decoder: Any, codec: Any) -> MeteredDecoder:
        metered = MeteredDecoder(decoder, codec.mimeType.split("/")[0])
        with _lock:
            _by_thread[threading.current_thread()] = metered.cost
        return metered

    internals.wrap_receiver_decoders(metered_decoder)


def cost_of(thread: threading.Thread | None) -> DecodeCost | None:
    """Return the cost of the decoder made in `thread` (a receiver's decoder thread), None if none was metered."""
    if thread is None:
        return None
    with _lock:
        return _by_thread.get(thread)


def receiver_cost(receiver: Any) -> DecodeCost | None:
    """Return the decode cost of an aiortc RTCRtpReceiver (its decoder thread's), None if not metered (yet)."""
    from tvapp.rtc import internals

    thread = internals.decoder_thread(receiver)
    return cost_of(thread if isinstance(thread, threading.Thread) else None)


def totals() -> dict[str, dict[str, Any]]:
    """Return the process's cumulative decode cost per kind ("video", "audio") as JSON objects."""
    with _lock:
        return {kind: cost.as_json() for kind, cost in _totals.items()}
