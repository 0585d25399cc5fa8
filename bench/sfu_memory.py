"""SFU memory: server RSS per participant, with everyone publishing and subscribed to everyone, for N = 2, 4, 6.

For each N, a fresh `tvapp serve` (CPU 0): one warm-up room of two participants joins and leaves (so
one-time costs, lazy imports and first allocations are not charged to a participant), the room empties, then the
server's RSS (VmRSS from /proc) is read with no one in the room. N participants then join one room, each
publishing 640x480@30 VP8 + Opus (pre-encoded replay from bench.media_load, load processes on CPU 1) and
receiving every other participant's two streams; after every stream flows and `--hold` seconds, RSS is read
again. Per participant = (RSS with N - RSS with none) / N.

Baseline, in the same run: the same procedure with signaling-only participants (joined, no media published or
answered), so `media_ratio_to_signaling` says what media adds on top of a participant's session.

Run: python -m bench.sfu_memory [--quick] [--hold S]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.common import LOAD_CPU, can_pin, emit, parser, pin_load, run, running_server
from bench.media_load import LoadProcess, encode_media, save_media
from tvapp.client.signaling import SignalClient
from tvapp.testing.server import ServerProcess

SERVER_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}


def rss_kib(pid: int) -> int:
    """Return a process's resident set size in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def settled_rss(pid: int) -> int:
    """Return the median of a few RSS readings 100 ms apart."""
    readings = []
    for _ in range(5):
        readings.append(rss_kib(pid))
        time.sleep(0.1)
    return sorted(readings)[len(readings) // 2]


def wait_empty(srv: ServerProcess, room: str) -> None:
    """Wait until the server has recorded everyone leaving `room`."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if srv.http.get(f"/v1/rooms/{room}").json()["participant_count"] == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"room {room} never emptied")


def media_participants(media_path: str) -> Callable[[ServerProcess, list[str], float], int]:
    """Return a runner that joins media participants (two per load process), holds, and returns the RSS."""

    def join(srv: ServerProcess, tokens: list[str], hold: float) -> int:
        assert srv.proc is not None
        streams = 2 * (len(tokens) - 1)
        loads = [LoadProcess(["--media", media_path, "--url", srv.url, "--streams", str(streams),
                              *[a for t in tokens[i:i + 2] for a in ("--token", t)]], LOAD_CPU if can_pin() else None)
                 for i in range(0, len(tokens), 2)]
        try:
            for load in loads:
                load.ready()
            time.sleep(hold)
            return settled_rss(srv.proc.pid)
        finally:
            for load in loads:
                load.quit()

    return join


def signaling_participants(srv: ServerProcess, tokens: list[str], hold: float) -> int:
    """Join signaling-only participants, hold, and return the server's RSS."""
    assert srv.proc is not None
    pid = srv.proc.pid

    async def go() -> int:
        clients = list(await asyncio.gather(*(SignalClient.connect(srv.url, t) for t in tokens)))
        try:
            await asyncio.sleep(hold)
            return await asyncio.to_thread(settled_rss, pid)
        finally:
            await asyncio.gather(*(c.close() for c in clients))

    return run(go())


def per_participant(count: int, hold: float, join: Callable[[ServerProcess, list[str], float], int]) -> dict[str, Any]:
    """Measure (RSS with `count` participants - RSS with none) / count on a fresh server."""
    with running_server(SERVER_ENV) as srv:
        assert srv.proc is not None
        for room in ("warmup", "room"):
            srv.http.post("/v1/rooms", json={"name": room, "max_participants": 6}).raise_for_status()
        join(srv, [srv.token("warmup", f"w{i}")["access_token"] for i in range(2)], 0.5)
        wait_empty(srv, "warmup")
        time.sleep(0.5)
        empty = settled_rss(srv.proc.pid)
        full = join(srv, [srv.token("room", f"p{i}")["access_token"] for i in range(count)], hold)
    return {"rss_empty_kib": empty, "rss_full_kib": full, "per_participant_kib": round((full - empty) / count)}


def main() -> None:
    """Run the memory benchmark and print its JSON line."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--hold", type=float, help="seconds with everyone in before reading RSS (default 5, quick 1)")
    args = p.parse_args()
    hold = args.hold or (1.0 if args.quick else 5.0)
    counts = (2,) if args.quick else (2, 4, 6)
    load_cpu = pin_load()
    with TemporaryDirectory(prefix="tvapp-memory-") as tmp:
        path = str(Path(tmp) / "media.bin")
        save_media(encode_media(2.0), path)
        media = {str(n): per_participant(n, hold, media_participants(path)) for n in counts}
    signaling = {str(n): per_participant(n, hold, signaling_participants) for n in counts}
    ratios = {n: round(media[n]["per_participant_kib"] / signaling[n]["per_participant_kib"], 2)
              if signaling[n]["per_participant_kib"] > 0 else None for n in media}
    emit("sfu_memory", {
        "participants": list(counts), "hold_s": hold,
        "measured": "(server RSS with N in one room - RSS with none, after a warm-up room) / N",
        "media": media,
        "baseline": "the same with signaling-only participants (joined, no media)",
        "signaling": signaling,
        "media_ratio_to_signaling": ratios,
        "load_cpu": load_cpu,
    })


if __name__ == "__main__":
    main()
