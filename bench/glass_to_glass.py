"""Glass-to-glass latency through the SFU: capture -> encode -> SFU -> decode, read from the frame's own pixels.

An SDK publisher (tvapp.client.Room) publishes a TestPatternTrack at 640x480@30, which stamps each frame with
its wall-clock capture time in ms; the SDK encodes it (VP8, 800 kbps) and the SFU forwards it. An SDK
subscriber in the same process decodes what arrives; each decoded frame's stamp is read
(tvapp.client.stamp.read_stamp) as soon as `recv()` returns it, and latency = now - capture time (one clock).
Both clients run in this process on CPU 1, the server (`tvapp serve`) on CPU 0.

Baseline, in the same run and process: the same source and encoder (TestPatternTrack -> EncodedVideoTrack with
the SDK's VideoEncoder settings) sent peer-to-peer to a plain aiortc peer connection that decodes it, no SFU.
Rounds alternate SFU and peer-to-peer. Figures: p50/p95/max of each, `sfu_added_p50_ms` / `sfu_added_p95_ms`
(the difference), frames read per second and frames whose stamp could not be read. Goal: SFU p95 <= 100 ms.

Run: python -m bench.glass_to_glass [--quick] [--seconds S] [--rounds R]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from bench.common import emit, latency_ms, parser, percentile, pin_load, run, running_server
from tvapp.client import events as ev
from tvapp.client.encoder import EncodedVideoTrack, VideoEncoder
from tvapp.client import Room
from tvapp.client.sources import TestPatternTrack
from tvapp.client.stamp import read_stamp, stamp_height
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection

WIDTH, HEIGHT, FPS = 640, 480, 30
GOAL_P95_MS = 100.0
VIDEO_BITRATE = 800_000  # what the SDK's publications start at
SERVER_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}


class Reader:
    """Read decoded frames from a track and record each stamp's age when it comes out of `recv()`."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.frames = 0
        self.unreadable = 0
        self.recording = False

    async def run(self, track: MediaStreamTrack) -> None:
        """Read until the track ends (or the task is cancelled)."""
        rows = stamp_height(WIDTH)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now_ms = time.time() * 1000
                if not self.recording or not isinstance(frame, av.VideoFrame):
                    continue
                self.frames += 1
                luma = np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)[:rows]
                found = read_stamp(luma) if frame.width == WIDTH else None
                if found is None:
                    self.unreadable += 1
                else:
                    self.latencies.append((now_ms - found[1]) / 1000)


async def record(reader: Reader, warmup: float, seconds: float) -> float:
    """Skip `warmup` seconds of frames, then record for `seconds`; return the wall time recorded."""
    await asyncio.sleep(warmup)
    reader.recording = True
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    reader.recording = False
    return time.perf_counter() - start


async def sfu_round(url: str, tokens: tuple[str, str], reader: Reader, warmup: float, seconds: float) -> float:
    """Publish through the SFU with the SDK and read at an SDK subscriber; return the seconds recorded."""
    subscriber = await Room.connect(url, tokens[1], host_addresses=["127.0.0.1"])
    publisher: Room | None = None
    try:
        arrived = asyncio.create_task(subscriber.wait_for(
            ev.TrackSubscribed, lambda e: e.track.kind == "video", timeout=30))
        publisher = await Room.connect(url, tokens[0], host_addresses=["127.0.0.1"])
        await publisher.local_participant.publish_track(TestPatternTrack(WIDTH, HEIGHT, FPS), source="camera")
        event = await arrived
        task = asyncio.create_task(reader.run(event.track))
        try:
            return await record(reader, warmup, seconds)
        finally:
            task.cancel()
    finally:
        for room in (publisher, subscriber):
            if room is not None:
                await room.disconnect()


async def p2p_round(reader: Reader, warmup: float, seconds: float) -> float:
    """Send the same source and encoder straight to a decoding aiortc peer; return the seconds recorded."""
    internals.set_host_addresses(["127.0.0.1"])
    sending, receiving = new_peer_connection(), new_peer_connection()
    pattern = TestPatternTrack(WIDTH, HEIGHT, FPS)
    encoder = VideoEncoder("vp8", WIDTH, HEIGHT, FPS, VIDEO_BITRATE)
    transceiver = sending.addTransceiver(EncodedVideoTrack(pattern, encoder), direction="sendonly")
    internals.on_keyframe_request(transceiver.sender, encoder.request_keyframe)
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    receiving.on("track", tracks.put_nowait)
    try:
        await sending.setLocalDescription(await sending.createOffer())
        await receiving.setRemoteDescription(sending.localDescription)
        await receiving.setLocalDescription(await receiving.createAnswer())
        await sending.setRemoteDescription(RTCSessionDescription(sdp=receiving.localDescription.sdp, type="answer"))
        task = asyncio.create_task(reader.run(await asyncio.wait_for(tracks.get(), 10)))
        try:
            return await record(reader, warmup, seconds)
        finally:
            task.cancel()
    finally:
        pattern.stop()
        await sending.close()
        await receiving.close()


def summary(reader: Reader, wall: float) -> dict[str, Any]:
    """Summarize one mode's rounds."""
    return latency_ms(reader.latencies) | {"samples": len(reader.latencies), "frames_per_s": round(reader.frames / wall, 1),
                                           "unreadable_stamps": reader.unreadable}


async def bench(rounds: int, warmup: float, seconds: float) -> dict[str, Any]:
    """Alternate SFU and peer-to-peer rounds and compare them."""
    sfu, p2p = Reader(), Reader()
    sfu_wall = p2p_wall = 0.0
    with running_server(SERVER_ENV) as srv:
        srv.http.post("/v1/rooms", json={"name": "g2g", "max_participants": 2}).raise_for_status()
        for _ in range(rounds):
            tokens = (srv.token("g2g", "publisher")["access_token"], srv.token("g2g", "subscriber")["access_token"])
            sfu_wall += await sfu_round(srv.url, tokens, sfu, warmup, seconds)
            p2p_wall += await p2p_round(p2p, warmup, seconds)
    via_sfu, direct = summary(sfu, sfu_wall), summary(p2p, p2p_wall)
    return {
        "rounds": rounds, "measured_s_per_round": seconds, "warmup_s": warmup,
        "video": f"{WIDTH}x{HEIGHT}@{FPS} VP8 {VIDEO_BITRATE // 1000} kbps (SDK encoder)",
        "measured": "capture stamp (wall ms) -> decoded frame returned by recv() at the subscriber",
        "sfu": via_sfu,
        "baseline": "same source and encoder, peer-to-peer to a decoding aiortc peer (no SFU)",
        "p2p": direct,
        "sfu_added_p50_ms": round(via_sfu["p50_ms"] - direct["p50_ms"], 2),
        "sfu_added_p95_ms": round(via_sfu["p95_ms"] - direct["p95_ms"], 2),
        "ratio_p95_sfu_to_p2p": round(percentile(sfu.latencies, 95) / percentile(p2p.latencies, 95), 2),
        "goal_p95_ms": GOAL_P95_MS,
        "goal_met": via_sfu["p95_ms"] <= GOAL_P95_MS,
    }


def main() -> None:
    """Run the glass-to-glass benchmark and print its JSON line."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, help="recorded seconds per round (default 10, quick 3)")
    p.add_argument("--rounds", type=int, help="rounds of each mode (default 2, quick 1)")
    args = p.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    rounds = args.rounds or (1 if args.quick else 2)
    warmup = 1.0 if args.quick else 2.0
    load_cpu = pin_load()
    emit("glass_to_glass", run(bench(rounds, warmup, seconds)) | {"load_cpu": load_cpu})


if __name__ == "__main__":
    main()
