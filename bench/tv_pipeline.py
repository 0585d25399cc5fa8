"""The TV's whole receive pipeline: CPU of one `tvapp tv` receiving 5 VP8 640x480@30 streams with their audio,
composing 1920x1080 at 30 fps and mixing the audio out (SDL dummy screen, SDL disk audio).

A real `tvapp serve` (CPU 0) holds a room with 5 real `tvapp bot` processes (640x480@30 pattern + a tone
each). The TV process runs with `tv.fps = 30` and `--trace` (its frame-loop pacing and the frames it put on
screen); its CPU time (all threads: frame loop, network, aiortc's decoders, SDL audio) is read from /proc over
the measured window, as a share of one core.
Baseline, same run: a headless `tvapp bot --subscribe` in the same room, which receives and decodes the same
streams and does nothing else (no compositing, no audio out): the difference is what showing and playing cost.
The two run one after the other, never together. Also reported: frames shown per second per stream (a stream
can't be shown faster than it arrives, so this says whether the bots kept 30 fps), frame-loop fps and its
longest frame interval (does network or decode work ever stall a frame?), draw time p95.
Goal: the TV <= 50% of one core.

Run: python -m bench.tv_pipeline [--quick] [--seconds S]. Prints one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import emit, parser, process_cpu_seconds, running_server
from tvapp.testing.tv import BotProcess, tv_env

SERVER_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}
STREAMS = 5
GOAL_CORE_SHARE = 0.5


def measure(proc: subprocess.Popen[bytes], warmup: float, seconds: float) -> float:
    """Return `proc`'s CPU seconds per wall second over `seconds`, after `warmup`."""
    time.sleep(warmup)
    cpu0, wall0 = process_cpu_seconds(proc.pid), time.perf_counter()
    time.sleep(seconds)
    if proc.poll() is not None:
        raise RuntimeError(f"the measured process exited with {proc.returncode}")
    return (process_cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - wall0)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, help="measured seconds per process (default 20, quick 4)")
    p.add_argument("--profile", metavar="FILE", help="also record the TV with py-spy (collapsed stacks) into FILE")
    args = p.parse_args()
    seconds = args.seconds or (4.0 if args.quick else 20.0)
    warmup = 4.0 if args.quick else 6.0
    with running_server(SERVER_ENV) as srv, tempfile.TemporaryDirectory(prefix="tvapp-bench-pipe-") as tmp:
        work = Path(tmp)
        srv.http.post("/v1/rooms", json={"name": "pipe", "max_participants": STREAMS + 1}).raise_for_status()
        bots = [BotProcess(work, f"bot-{i}", ["--server", srv.url, "--token", srv.token("pipe", f"bot-{i}")["access_token"],
                                               "--video", "pattern:640x480@30", "--audio", f"tone:{300 + 110 * i}"])
                for i in range(STREAMS)]
        try:
            for b in bots:
                b.wait_published(2)
            baseline_proc = subprocess.Popen(
                [sys.executable, "-m", "tvapp", "bot", "--server", srv.url, "--token",
                 srv.token("pipe", "decoder")["access_token"], "--video", "none", "--audio", "none", "--subscribe"],
                env=tv_env(work), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                baseline = measure(baseline_proc, warmup, seconds)
            finally:
                baseline_proc.terminate()
                baseline_proc.wait(10)
            trace = work / "trace.jsonl"
            tv_proc = subprocess.Popen(
                [sys.executable, "-m", "tvapp", "tv", "--server", srv.url, "--token",
                 srv.token("pipe", "tv")["access_token"], "--size", "1920x1080", "--trace", str(trace)],
                env=tv_env(work, {"TVAPP_TV_FPS": "30"}), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                start = time.time() + warmup
                spy = None
                if args.profile:
                    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(tv_proc.pid), "-d", str(int(warmup + seconds)),
                                            "-r", "50", "--threads", "--nonblocking", "-f", "raw", "-o", args.profile],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                tv = measure(tv_proc, warmup, seconds)
                end = time.time()
                if spy is not None:
                    spy.wait(30)
            finally:
                tv_proc.terminate()
                tv_proc.wait(20)
        finally:
            for b in bots:
                b.stop()
        events = [json.loads(line) for line in trace.read_text().splitlines()]
    window = [e for e in events if start <= e["t"] <= end]
    flips = [e for e in window if e["event"] == "flip"]
    frames = [e for e in window if e["event"] == "frames"]
    per_stream = {}
    for e in flips:
        per_stream[e["identity"]] = per_stream.get(e["identity"], 0) + 1
    shown_fps = sorted(round(n / (end - start), 1) for n in per_stream.values())
    emit("tv_pipeline", {
        "streams": STREAMS, "video": "640x480@30 VP8", "screen": "1920x1080@30", "seconds": seconds,
        "tv_core_share": round(tv, 3), "baseline_decode_only_core_share": round(baseline, 3),
        "showing_and_playing_core_share": round(tv - baseline, 3),
        "shown_fps_per_stream": shown_fps,
        "loop_fps": round(sum(e["fps"] for e in frames) / len(frames), 1) if frames else None,
        "longest_frame_interval_ms": max((e["longest_interval_ms"] for e in frames), default=None),
        "draw_p95_ms": max((e["draw_p95_ms"] for e in frames), default=None),
        "goal_core_share": GOAL_CORE_SHARE,
    })


if __name__ == "__main__":
    main()
