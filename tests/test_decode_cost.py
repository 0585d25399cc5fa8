"""tvapp.client.decodecost: aiortc's own receiver decoder thread (decoder_worker) decodes real VP8 frames, and the
metered decoder counts their CPU time, pictures and pixels, per thread and in the process's totals."""

from __future__ import annotations

import asyncio
import fractions
import queue
import threading

import av
import numpy as np
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import decoder_worker

from tvapp.client import decodecost

WIDTH, HEIGHT, COUNT = 320, 240, 6


def vp8_frames() -> list[bytes]:
    """Return COUNT real VP8 frames of a noisy moving gradient (every block coded)."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.bit_rate = 1_000_000
    rng = np.random.default_rng(3)
    out: list[bytes] = []
    for index in range(COUNT):
        x = (np.arange(WIDTH)[None, :, None] + index * 8) % 256
        image = np.clip(x + rng.integers(0, 40, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        out.extend(bytes(packet) for packet in encoder.encode(frame))
    out.extend(bytes(packet) for packet in encoder.encode(None))
    return out


async def decode_in_worker(packets: list[bytes]) -> tuple[threading.Thread, int]:
    """Run aiortc's decoder_worker on `packets` in its own thread; return the thread and the frames it output."""
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    out: asyncio.Queue[object] = asyncio.Queue()
    inbox: queue.Queue[object] = queue.Queue()
    thread = threading.Thread(target=decoder_worker, args=(asyncio.get_running_loop(), inbox, out, threading.Event()),
                              name="video-decoder")
    thread.start()
    for index, data in enumerate(packets):
        inbox.put((codec, JitterFrame(data=data, timestamp=index * 3000)))
    inbox.put(None)
    decoded = 0
    while await asyncio.wait_for(out.get(), 20) is not None:
        decoded += 1
    await asyncio.get_running_loop().run_in_executor(None, thread.join, 10)
    return thread, decoded


def test_decoder_thread_cost_grows_with_real_vp8_decoding() -> None:
    packets = vp8_frames()
    assert len(packets) == COUNT
    decodecost.install()
    decodecost.install()  # idempotent: one wrapper, not two
    before = decodecost.totals().get("video", {"cpu_ms": 0.0, "pictures": 0, "pixels": 0})
    thread, decoded = asyncio.run(decode_in_worker(packets))
    assert decoded == COUNT
    cost = decodecost.cost_of(thread)
    assert cost is not None and cost.kind == "video"
    assert cost.pictures == COUNT and cost.frames == COUNT
    assert cost.pixels == COUNT * WIDTH * HEIGHT
    assert cost.cpu_ms > 0 and cost.wall_ms >= cost.cpu_ms * 0.5
    after = decodecost.totals()["video"]
    assert after["pictures"] - before["pictures"] == COUNT
    assert after["pixels"] - before["pixels"] == COUNT * WIDTH * HEIGHT
    assert after["cpu_ms"] > before["cpu_ms"]
    # A second batch in another thread: its own record; the totals keep growing.
    thread2, decoded2 = asyncio.run(decode_in_worker(packets[:3]))
    assert decoded2 == 3
    second = decodecost.cost_of(thread2)
    assert second is not None and second is not cost and second.pictures == 3
    assert decodecost.totals()["video"]["pictures"] - after["pictures"] == 3
    assert decodecost.cost_of(threading.current_thread()) is None
