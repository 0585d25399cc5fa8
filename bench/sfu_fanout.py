"""SFU fan-out: one publisher to five subscribers (640x480@30 VP8 + Opus), SFU CPU vs a decode/re-encode relay.

The load (this process, pinned to CPU 1) is six lightweight participants from bench.media_load: the
publisher replays pre-encoded media through PacketTracks (nothing encoded during the run) and the five
subscribers count the frames they receive from the receiver tap (nothing decoded). Phase 1: a real
`tvapp serve` on CPU 0 with TVAPP_SFU_TRACE set, the participants joined through signaling. Phase 2,
the baseline, in the same run with the same load and the same CPU pin: `bench.relay_baseline`, plain aiortc
with MediaRelay (decodes the publisher once; each subscriber's sender re-encodes VP8 and Opus).

Measured over the same window in each phase, after every subscriber receives video and audio and a
warm-up: the process's CPU time (all threads, from /proc) over wall time, the frames and packets the
subscribers counted, and frames expected (from RTP timestamps). Figures: `cpu_ratio_relay_to_sfu`
(goal >= 10) and, because a saturated relay delivers fewer frames, `cpu_per_frame_ratio_relay_to_sfu`;
forwarding latency p50/p95 from the SFU's trace (frame complete at the SFU -> its last RTP packet sent, per
subscriber, every frame of the run; goal p95 <= 3 ms).

Run: python -m bench.sfu_fanout [--quick] [--seconds S] [--subscribers N]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    SERVER_CPU,
    CpuMeter,
    can_pin,
    emit,
    parser,
    percentile,
    pin_load,
    run,
    running_server,
)
from bench.media_load import (
    EncodedMedia,
    LoadPeer,
    Replay,
    SfuParticipant,
    Slot,
    encode_media,
    local_mark,
    loss_percent,
    summarize,
    wait_receiving,
)
from tvapp.rtc import internals

GOAL_CPU_RATIO = 10.0
GOAL_FORWARDING_P95_MS = 3.0
SERVER_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}


async def measure(peers: list[LoadPeer], pid: int, warmup: float, seconds: float) -> dict[str, Any]:
    """Wait out the warm-up, then count what the subscribers receive and the process's CPU over `seconds`."""
    await asyncio.sleep(warmup)
    meter = CpuMeter(pid)
    before = local_mark(peers)
    meter.start()
    await asyncio.sleep(seconds)
    meter.stop()
    after = local_mark(peers)
    counted = summarize([before], [after])
    received = counted["received"]
    frames = received["video"]["frames"] + received["audio"]["frames"]
    return {
        "cpu_busy": meter.server_busy,
        "load_cpu_busy": meter.own_busy,
        "cpu_ms_per_forwarded_frame": round(meter.server * 1000 / frames, 4) if frames else None,
        "subscriber_video_fps": round(received["video"]["frames"] / meter.wall / (len(peers) - 1), 2),
        "subscriber_kbps": round(sum(r["bytes"] for r in received.values()) * 8 / meter.wall / 1000
                                 / (len(peers) - 1), 1),
        "frame_loss_pct": loss_percent(received),
        "frames_sent": counted["sent_frames"],
        "received": received,
        "publisher_keyframe_restarts": counted["keyframe_restarts"],
        "load_late_restarts": counted["late_restarts"],
        "_cpu_s": meter.server, "_frames": frames,
    }


async def sfu_phase(media: EncodedMedia, subscribers: int, warmup: float, seconds: float,
                    trace: Path) -> dict[str, Any]:
    """Measure the tvapp SFU with one publisher and `subscribers` subscribers."""
    with running_server({**SERVER_ENV, "TVAPP_SFU_TRACE": str(trace)}) as srv:
        assert srv.proc is not None
        srv.http.post("/v1/rooms", json={"name": "fanout", "max_participants": subscribers + 1}).raise_for_status()
        tokens = [srv.token("fanout", f"sub{i}")["access_token"] for i in range(subscribers)]
        publisher_token = srv.token("fanout", "pub")["access_token"]
        internals.set_host_addresses(["127.0.0.1"])
        subs = list(await asyncio.gather(*(SfuParticipant.join(srv.url, t, None) for t in tokens)))
        pub = await SfuParticipant.join(srv.url, publisher_token, media)
        everyone = [pub, *subs]
        try:
            await wait_receiving([s.peer for s in subs], 2, 30)
            result = await measure([pub.peer, *(s.peer for s in subs)], srv.proc.pid, warmup, seconds)
            result["errors"] = [e for p in everyone for e in p.errors]
        finally:
            await asyncio.gather(*(p.close() for p in everyone), return_exceptions=True)
    samples = json.loads(trace.read_text())["forwarding_ms"]
    result["forwarding"] = {"samples": len(samples), "p50_ms": round(percentile(samples, 50), 3),
                            "p95_ms": round(percentile(samples, 95), 3), "max_ms": round(max(samples), 3)}
    return result


class RelayProcess:
    """The decode/re-encode relay (bench.relay_baseline) as a subprocess pinned like the server."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls) -> RelayProcess:
        """Start the relay on SERVER_CPU (when pinning is possible)."""
        cmd = [sys.executable, "-m", "bench.relay_baseline"]
        if can_pin():
            cmd = ["taskset", "-c", str(SERVER_CPU), *cmd]
        proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE)
        return cls(proc)

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return the reply."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError(f"the relay ended (exit {await self.proc.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]

    async def connect(self, op: str, peer: LoadPeer) -> None:
        """Have the relay offer a publisher or subscriber connection and answer it with `peer`."""
        offer = await self.ask({"op": op})
        slots = [Slot(mid, role, kind, f"{op}{id(peer)}/{kind}") for mid, role, kind in offer["slots"]]
        await self.ask({"op": "answer", "sdp": await peer.answer(offer["sdp"], slots)})

    async def stop(self) -> None:
        """Stop the relay and wait for it."""
        await self.ask({"op": "stop"})
        await self.proc.wait()


async def relay_phase(media: EncodedMedia, subscribers: int, warmup: float, seconds: float) -> dict[str, Any]:
    """Measure the MediaRelay baseline with the same load."""
    relay = await RelayProcess.start()
    pub = LoadPeer(Replay(media))
    subs = [LoadPeer(None) for _ in range(subscribers)]
    try:
        await relay.connect("publisher", pub)
        async with asyncio.timeout(20):
            while pub.pc.connectionState != "connected":
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the relay's tracks exist once the answer is applied; let media start
        for sub in subs:
            await relay.connect("subscriber", sub)
        await wait_receiving(subs, 2, 30)
        return await measure([pub, *subs], relay.proc.pid, warmup, seconds)
    finally:
        await asyncio.gather(*(p.close() for p in [pub, *subs]), return_exceptions=True)
        await relay.stop()


async def bench(seconds: float, media_seconds: float, subscribers: int, warmup: float) -> dict[str, Any]:
    """Run both phases and compare them."""
    media = await asyncio.to_thread(encode_media, media_seconds)
    with tempfile.TemporaryDirectory(prefix="tvapp-fanout-") as tmp:
        sfu = await sfu_phase(media, subscribers, warmup, seconds, Path(tmp) / "trace.json")
    relay = await relay_phase(media, subscribers, warmup, seconds)
    cpu_ratio = relay["cpu_busy"] / sfu["cpu_busy"] if sfu["cpu_busy"] else None
    per_frame = (relay["_cpu_s"] / relay["_frames"]) / (sfu["_cpu_s"] / sfu["_frames"]) \
        if sfu["_cpu_s"] and sfu["_frames"] and relay["_frames"] else None
    for phase in (sfu, relay):
        del phase["_cpu_s"], phase["_frames"]
    p95 = sfu["forwarding"]["p95_ms"]
    return {
        "subscribers": subscribers, "measured_s": seconds, "warmup_s": warmup,
        "media": {"video": "640x480@30 VP8", "audio": "Opus 48 kHz stereo 20 ms", "looped_s": media_seconds,
                  "bps": media.bitrates()},
        "sfu": sfu,
        "baseline": "aiortc MediaRelay: decode once, re-encode per subscriber (bench.relay_baseline)",
        "relay": relay,
        "cpu_ratio_relay_to_sfu": round(cpu_ratio, 2) if cpu_ratio else None,
        "cpu_per_frame_ratio_relay_to_sfu": round(per_frame, 2) if per_frame else None,
        "goal_cpu_ratio": GOAL_CPU_RATIO, "goal_forwarding_p95_ms": GOAL_FORWARDING_P95_MS,
        "goal_met": bool(cpu_ratio and cpu_ratio >= GOAL_CPU_RATIO and p95 <= GOAL_FORWARDING_P95_MS),
    }


def main() -> None:
    """Run the fan-out benchmark and print its JSON line."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, help="measured seconds per phase (default 20, quick 3)")
    p.add_argument("--subscribers", type=int, default=5, help="subscribers (default 5)")
    args = p.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    media_seconds, warmup = (2.0, 0.5) if args.quick else (8.0, 2.0)
    load_cpu = pin_load()
    figures = run(bench(seconds, media_seconds, args.subscribers, warmup))
    emit("sfu_fanout", figures | {"load_cpu": load_cpu})


if __name__ == "__main__":
    main()
