"""TV decode cost in a 6-tile grid: adaptive stream (tile-sized streams) vs full-size streams, same run.

A real `tvapp serve` (CPU 0) holds a room with 6 real `tvapp bot` publishers, each a 1280x720@5 test pattern
(VP8, no audio; 5 fps so that six full-size encoders keep their rate on this 2-core machine in the baseline). A real `tvapp tv` (SDL dummy screen 1920x1080 at 30 fps, no sound) joins and shows them in its
3x2 grid. Run twice, one TV after the other, never together, on the same bots:

- adaptive: `[tv] adaptive_stream = true` (the default): the TV sends each tile's size (track_settings), the SFU
  tells the publishers (publish_constraints) and they encode tile-sized pictures;
- full_size (baseline): `[tv] adaptive_stream = false`: the TV says nothing, every stream stays 1280x720.

Measured per run over the same window, after the six tiles are showing video and a warm-up: the TV process's CPU
time per wall second (all threads: decoders, frame loop, network; /proc), the video pixels it put on screen per
second and pictures per second per tile (from its `--trace` flip records: each new picture shown, with its
decoded width and height), the median decoded size, and the bots' CPU (their encoders) for context.
A third TV, same settings, shows a grid of as many participants that publish nothing: its CPU is the TV's cost
without video (frame loop, compositing, network), so `video_cpu_ms_per_s` (a run's TV CPU minus that) is what
receiving, decoding and drawing the videos cost. Goal (issue 18): that >= 2x less with adaptive stream
(`goal_met` also needs both runs to have shown the same picture rate: the bots' encoders kept up).

The bots' pattern is mostly still (a moving box on colour bars): its VP8 frames code few blocks, so decoding one
costs little at any size. `decoder_only` therefore also times the TV's decoder alone (PyAV VP8, one thread, in
this process) on camera-like content (a noisy moving gradient, every block coded) encoded at 1280x720 and at the
adaptive run's median tile size: what a real camera's picture costs to decode, full size vs tile size.

Run: python -m bench.tv_decode [--quick] [--seconds S] [--fps F]. Prints one JSON line. --quick: 2 bots at 1280x720@10, short
windows (the smoke test's shape check, not the figure).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit, parser, process_cpu_seconds, running_server
from tvapp.testing.tv import BotProcess, tv_env

SERVER_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}
GOAL_RATIO = 2.0
SCREEN = "1920x1080"


def flips(trace: Path) -> list[dict[str, Any]]:
    """Return the TV's flip records with a picture size written so far."""
    if not trace.exists():
        return []
    out = []
    for line in trace.read_text().splitlines()[:-1]:  # the last line may be half written
        event = json.loads(line)
        if event.get("event") == "flip" and event.get("width"):
            out.append(event)
    return out


def run_tv(srv: Any, work: Path, name: str, adaptive: bool, bots: list[BotProcess], tiles: int, warmup: float,
           seconds: float, room: str = "decode") -> dict[str, Any]:
    """Run one TV in the room; return its figures over the measured window (tiles=0: wait for no video)."""
    trace = work / f"trace-{name}.jsonl"
    env = tv_env(work, {"TVAPP_TV_FPS": "30", "TVAPP_TV_ADAPTIVE_STREAM": "true" if adaptive else "false"})
    proc = subprocess.Popen([sys.executable, "-m", "tvapp", "tv", "--server", srv.url, "--token",
                             srv.token(room, name)["access_token"], "--size", SCREEN, "--layout", "grid",
                             "--no-audio", "--trace", str(trace)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len({f["identity"] for f in flips(trace)}) < tiles or not _in_room(trace):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the TV ({name}) never showed {tiles} videos")
            time.sleep(0.2)
        time.sleep(warmup)  # a benchmark's warm-up: adaptive stream's constraints reach the encoders
        bots_cpu0 = sum(process_cpu_seconds(b.proc.pid) for b in bots)
        t0, cpu0, wall0 = time.time(), process_cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(seconds)
        if proc.poll() is not None:
            raise RuntimeError(f"the TV ({name}) exited with {proc.returncode}")
        cpu1, wall1, t1 = process_cpu_seconds(proc.pid), time.perf_counter(), time.time()
        bots_cpu1 = sum(process_cpu_seconds(b.proc.pid) for b in bots)
    finally:
        proc.terminate()
        proc.wait(20)
    span = wall1 - wall0
    shown = [f for f in flips(trace) if t0 <= f["t"] <= t1]
    per_tile: dict[str, int] = {}
    for f in shown:
        per_tile[f["identity"]] = per_tile.get(f["identity"], 0) + 1
    pixels = [f["width"] * f["height"] for f in shown]
    sizes = sorted(shown, key=lambda f: f["width"] * f["height"])
    middle = sizes[len(sizes) // 2] if sizes else {"width": 0, "height": 0}
    return {
        "tv_core_share": round((cpu1 - cpu0) / span, 3),
        "tv_cpu_ms_per_s": round(1000 * (cpu1 - cpu0) / span, 1),
        "shown_mpixels_per_s": round(sum(pixels) / span / 1e6, 2),
        "shown_fps_per_tile": round(len(shown) / span / max(1, len(per_tile)), 1),
        "tv_cpu_ms_per_shown_picture": round(1000 * (cpu1 - cpu0) / max(1, len(shown)), 2),
        "tiles_with_video": len(per_tile),
        "median_decoded_size": f"{middle['width']}x{middle['height']}",
        "bots_core_share": round((bots_cpu1 - bots_cpu0) / span, 3),
    }


def decoder_only(work: Path, tile: tuple[int, int], frames: int) -> dict[str, Any]:
    """Return the VP8 decoder's CPU per picture for camera-like content (a noisy moving gradient: every block
    coded, unlike the bots' mostly still pattern) at 1280x720 and at the adaptive run's tile size."""
    import fractions

    import av

    from tvapp.client.encoder import VideoEncoder
    from tvapp.testing.congestion import noise_video

    source = list(av.open(str(noise_video(work / "camera.mp4", width=1280, height=720, fps=15,
                                           seconds=frames / 15))).decode(video=0))
    out: dict[str, Any] = {"content": "noisy moving gradient (camera-like)", "pictures": len(source)}
    for name, (w, h) in (("full_size", (1280, 720)), ("tile", tile)):
        encoder = VideoEncoder("vp8", w, h, 15)
        encoder.set_bitrate(2_500_000 if name == "full_size" else 400_000)
        packets = []
        for i, frame in enumerate(source):
            small = frame.reformat(w, h) if (w, h) != (1280, 720) else frame
            small.pts, small.time_base = i * 6000, fractions.Fraction(1, 90000)
            packets.extend(encoder.encode(small))
        decoder = av.CodecContext.create("vp8", "r")
        cpu0 = time.process_time()
        for packet in packets:
            decoder.decode(packet)
        out[f"{name}_ms_per_picture"] = round(1000 * (time.process_time() - cpu0) / len(source), 2)
    out["tile_size"] = f"{tile[0]}x{tile[1]}"
    out["ratio_full_to_tile"] = round(out["full_size_ms_per_picture"] / max(0.01, out["tile_ms_per_picture"]), 2)
    return out


def _in_room(trace: Path) -> bool:
    if not trace.exists():
        return False
    return any('"RoomScreen"' in line for line in trace.read_text().splitlines()[:-1])


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, help="measured seconds per TV (default 20, quick 2)")
    p.add_argument("--fps", type=float, default=5.0, help="the publishers' frame rate (default 5; not with --quick)")
    args = p.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 20.0)
    warmup = 1.0 if args.quick else 5.0
    count, video = (2, "pattern:1280x720@10") if args.quick else (6, f"pattern:1280x720@{args.fps:g}")
    with running_server(SERVER_ENV) as srv, tempfile.TemporaryDirectory(prefix="tvapp-bench-decode-") as tmp:
        work = Path(tmp)
        srv.http.post("/v1/rooms", json={"name": "decode", "max_participants": count + 2}).raise_for_status()
        bots = [BotProcess(work, f"bot-{i}", ["--server", srv.url, "--token",
                                              srv.token("decode", f"bot-{i}")["access_token"],
                                              "--video", video, "--audio", "none"])
                for i in range(count)]
        try:
            for b in bots:
                b.wait_published(1, timeout=60)
            adaptive = run_tv(srv, work, "tv-adaptive", True, bots, count, warmup, seconds)
            full = run_tv(srv, work, "tv-full", False, bots, count, warmup, seconds)
        finally:
            for b in bots:
                b.stop()
        # The TV's cost without any video: the same grid of participants who publish nothing.
        srv.http.post("/v1/rooms", json={"name": "idle", "max_participants": count + 2}).raise_for_status()
        quiet = [BotProcess(work, f"quiet-{i}", ["--server", srv.url, "--token",
                                                 srv.token("idle", f"quiet-{i}")["access_token"],
                                                 "--video", "none", "--audio", "none"])
                 for i in range(count)]
        try:
            deadline = time.monotonic() + 60
            while len(srv.http.get("/v1/rooms/idle/participants").json()) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError("the video-less participants never joined")
                time.sleep(0.2)
            idle = run_tv(srv, work, "tv-idle", True, quiet, 0, warmup, seconds, room="idle")
        finally:
            for b in quiet:
                b.stop()
    tile = tuple(int(v) for v in adaptive["median_decoded_size"].split("x"))
    with tempfile.TemporaryDirectory(prefix="tvapp-bench-decode-") as tmp:
        alone = decoder_only(Path(tmp), (tile[0], tile[1]), 10 if args.quick else 60)
    ratio = full["tv_core_share"] / max(0.001, adaptive["tv_core_share"])
    decode = {name: round(run["tv_cpu_ms_per_s"] - idle["tv_cpu_ms_per_s"], 1)
              for name, run in (("adaptive", adaptive), ("full_size", full))}
    # The comparison holds only if both TVs were sent the same picture rate (the bots' encoders kept up).
    comparable = abs(full["shown_fps_per_tile"] - adaptive["shown_fps_per_tile"]) <= 0.15 * adaptive["shown_fps_per_tile"]
    emit("tv_decode", {
        "publishers": count, "video": video.split(":", 1)[1] + " VP8", "screen": f"{SCREEN}@30 grid",
        "seconds": seconds, "adaptive": adaptive, "baseline_full_size": full,
        "tv_without_video_cpu_ms_per_s": idle["tv_cpu_ms_per_s"], "video_cpu_ms_per_s": decode,
        "cpu_ratio_full_to_adaptive": round(ratio, 2),
        "video_cpu_ratio_full_to_adaptive": round(decode["full_size"] / max(0.1, decode["adaptive"]), 2),
        "decoder_only": alone,
        "pixel_ratio_full_to_adaptive": round(full["shown_mpixels_per_s"] / max(0.001, adaptive["shown_mpixels_per_s"]),
                                              2),
        "rates_comparable": comparable, "goal_ratio": GOAL_RATIO,
        "goal_met": comparable and decode["full_size"] >= GOAL_RATIO * decode["adaptive"],
    })


if __name__ == "__main__":
    main()
