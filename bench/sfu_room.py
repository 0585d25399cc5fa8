"""A full SFU room: six participants, each publishing 640x480@30 VP8 + Opus and subscribed to the other five.

The load runs in separate processes on CPU 1 (`--processes`, default 3, two participants each; see
bench.media_load): each participant replays pre-encoded media through PacketTracks and counts what it
receives from the receiver tap, so nothing is encoded or decoded during the run. The server (CPU 0) is a real
`tvapp serve` with the participants joined through signaling.

Measured over the same window after every participant receives all ten streams and a warm-up: the server's
CPU time (all threads) over wall time, as a fraction of one core; frames expected (from RTP timestamps) vs
counted at the subscribers, as frame loss %; packets the subscribers received (what the SFU forwarded) per
second and per second of server CPU. Goals: <= 35% of a core per room, >= 20,000 packets/s per core, loss < 1%.

Baseline, in the same run with the same load processes and the same pins: `bench.relay_baseline --udp`, a
minimal asyncio UDP relay that forwards each datagram to the other five participants, with the same media as
datagrams of the sizes aiortc's packetizer makes plus RTP/SRTP overhead. No SRTP, RTCP, ICE, congestion
control or frame logic: the floor of moving these packets through Python. Figure: `cpu_ratio_sfu_to_udp_relay`.

Run: python -m bench.sfu_room [--quick] [--seconds S] [--processes P]. Prints one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import LOAD_CPU, SERVER_CPU, CpuMeter, can_pin, emit, parser, pin_load, running_server
from bench.media_load import LoadProcess, encode_media, loss_percent, save_media, summarize

PARTICIPANTS = 6
STREAMS = 2 * (PARTICIPANTS - 1)
GOAL_CPU_BUSY = 0.35
GOAL_PACKETS_PER_CORE_S = 20_000
GOAL_LOSS_PCT = 1.0
SERVER_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}


def split(items: list[str], parts: int) -> list[list[str]]:
    """Deal `items` into `parts` nearly equal groups."""
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def measure(loads: list[LoadProcess], pid: int, warmup: float, seconds: float) -> dict[str, Any]:
    """Wait for every load process to be ready, then measure one window."""
    for load in loads:
        load.ready()
    time.sleep(warmup)
    meter = CpuMeter(pid)
    before = [load.mark() for load in loads]
    meter.start()
    time.sleep(seconds)
    meter.stop()
    after = [load.mark() for load in loads]
    counted = summarize(before, after)
    received = counted["received"]
    packets = received["video"]["packets"] + received["audio"]["packets"]
    frames = sum(r["frames"] for r in received.values())
    expected = sum(r["expected"] for r in received.values())
    return {
        "cpu_busy": meter.server_busy,
        "forwarded_packets_per_s": round(packets / meter.wall),
        "packets_per_core_s": round(packets / meter.server) if meter.server else None,
        "forwarded_kbps": round(sum(r["bytes"] for r in received.values()) * 8 / meter.wall / 1000),
        "frame_loss_pct": loss_percent(received) | {
            "all": round(100 * (1 - frames / expected), 3) if expected else 100.0},
        "frames_sent": counted["sent_frames"],
        "received": received,
        "load_cpu_busy": round(counted["load_cpu_s"] / meter.wall, 3),
        "load_late_restarts": counted["late_restarts"],
        "publisher_keyframe_restarts": counted["keyframe_restarts"],
    }


def sfu_phase(media_path: str, processes: int, warmup: float, seconds: float) -> dict[str, Any]:
    """Measure the tvapp SFU with a full room."""
    with running_server(SERVER_ENV) as srv:
        assert srv.proc is not None
        srv.http.post("/v1/rooms", json={"name": "room", "max_participants": PARTICIPANTS}).raise_for_status()
        tokens = [srv.token("room", f"p{i}")["access_token"] for i in range(PARTICIPANTS)]
        loads = [LoadProcess(["--media", media_path, "--url", srv.url, "--streams", str(STREAMS),
                              *[a for t in group for a in ("--token", t)]], LOAD_CPU if can_pin() else None)
                 for group in split(tokens, processes)]
        try:
            return measure(loads, srv.proc.pid, warmup, seconds)
        finally:
            for load in loads:
                load.quit()


def udp_phase(media_path: str, processes: int, warmup: float, seconds: float) -> dict[str, Any]:
    """Measure the minimal UDP relay with the same media and load processes."""
    cmd = [sys.executable, "-m", "bench.relay_baseline", "--udp"]
    if can_pin():
        cmd = ["taskset", "-c", str(SERVER_CPU), *cmd]
    relay = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert relay.stdout is not None and relay.stdin is not None
    port = json.loads(relay.stdout.readline())["port"]
    indexes = [str(i) for i in range(PARTICIPANTS)]
    loads = [LoadProcess(["--media", media_path, "--udp", f"127.0.0.1:{port}", "--streams", str(STREAMS),
                          *[a for i in group for a in ("--udp-index", i)]], LOAD_CPU if can_pin() else None)
             for group in split(indexes, processes)]
    try:
        return measure(loads, relay.pid, warmup, seconds)
    finally:
        for load in loads:
            load.quit()
        relay.stdin.close()
        relay.wait(10)


def main() -> None:
    """Run the full-room benchmark and print its JSON line."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, help="measured seconds per phase (default 20, quick 3)")
    p.add_argument("--processes", type=int, default=3, help="load processes on CPU 1 (default 3)")
    args = p.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    media_seconds, warmup = (2.0, 0.5) if args.quick else (8.0, 2.0)
    pin_load()
    media = encode_media(media_seconds)
    with tempfile.TemporaryDirectory(prefix="tvapp-room-") as tmp:
        path = str(Path(tmp) / "media.pickle")
        save_media(media, path)
        sfu = sfu_phase(path, args.processes, warmup, seconds)
        udp = udp_phase(path, args.processes, warmup, seconds)
    loss = sfu["frame_loss_pct"]["all"]
    emit("sfu_room", {
        "participants": PARTICIPANTS, "load_processes": args.processes, "measured_s": seconds, "warmup_s": warmup,
        "media": {"video": "640x480@30 VP8", "audio": "Opus 48 kHz stereo 20 ms", "looped_s": media_seconds,
                  "bps": media.bitrates()},
        "sfu": sfu,
        "baseline": "minimal asyncio UDP relay, same packets and sizes, no SRTP/RTCP/ICE (bench.relay_baseline --udp)",
        "udp_relay": udp,
        "cpu_ratio_sfu_to_udp_relay": round(sfu["cpu_busy"] / udp["cpu_busy"], 2) if udp["cpu_busy"] else None,
        "goal_cpu_busy": GOAL_CPU_BUSY, "goal_packets_per_core_s": GOAL_PACKETS_PER_CORE_S,
        "goal_loss_pct": GOAL_LOSS_PCT,
        "goal_met": bool(sfu["cpu_busy"] <= GOAL_CPU_BUSY and loss < GOAL_LOSS_PCT
                         and (sfu["packets_per_core_s"] or 0) >= GOAL_PACKETS_PER_CORE_S),
        "load_cpu": LOAD_CPU if can_pin() else None,
    })


if __name__ == "__main__":
    main()
