"""Composition speed: seconds of 640x360 grid output per second of wall clock, a 6-person session, one core.

The session's recordings are synthesized with PyAV in the recordings' layout (per participant one VP8 320x240@15
`.webm` of a solid colour with a moving box and one Opus `.mka` of a tone, each starting at its own offset), as
the recorder writes them; then tvapp.compose.render renders a grid composition (H.264 + AAC in MP4, 15 fps) in
this process with one encoder/decoder thread (pinned to one CPU when it can be), timed by the wall clock and this
process's CPU time. Goal: >= 2x real time. Also reported: the output's size, and the CPU seconds per output second.

Run: python -m bench.composition [--quick] [--seconds S] [--people N] [--format mp4|webm] [--source WxH@FPS]. Prints one JSON line.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from bench.common import emit, parser
from tvapp.compose.render import Job, render
from tvapp.core.compositions import Request, Track

GOAL_SPEED = 2.0
COLORS = ((224, 48, 48), (48, 192, 64), (48, 80, 224), (224, 208, 48), (208, 64, 208), (48, 200, 216))


def synth_video(path: Path, rgb: tuple[int, int, int], seconds: float, size: tuple[int, int] = (320, 240),
                fps: int = 15, gap: tuple[float, float] | None = None) -> None:
    """Write a VP8 WebM of a solid colour with a moving white box (no frames from gap[0] to gap[1] seconds)."""
    w, h = size
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=fps, options={"deadline": "realtime", "cpu-used": "8"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = 300_000
        image = np.empty((h, w, 3), np.uint8)
        for n in range(round(seconds * fps)):
            if gap is not None and gap[0] <= n / fps < gap[1]:
                continue
            image[:] = rgb
            x = (n * 4) % (w - 32)
            image[h // 2 - 16:h // 2 + 16, x:x + 32] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def synth_audio(path: Path, hz: float, seconds: float, rate: int = 48_000,
                gap: tuple[float, float] | None = None) -> None:
    """Write an Opus Matroska audio file of a sine tone (no packets from gap[0] to gap[1] seconds)."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libopus", rate=rate, layout="mono")
        step = rate // 50
        for n in range(round(seconds * 50)):
            if gap is not None and gap[0] <= n / 50 < gap[1]:
                continue
            t = (np.arange(step) + n * step) / rate
            pcm = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, n * step
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def synth_session(root: Path, people: int, seconds: float, stagger: float = 0.5,
                  size: tuple[int, int] = (320, 240), fps: int = 15) -> list[Track]:
    """Write `people` participants' recordings under `root`; return their tracks."""
    tracks: list[Track] = []
    for i in range(people):
        offset = i * stagger
        length = seconds - offset
        synth_video(root / f"RE_v{i}.webm", COLORS[i % len(COLORS)], length, size, fps)
        synth_audio(root / f"RE_a{i}.mka", 300 + 100 * i, length)
        tracks += [Track(f"RE_v{i}", f"p{i}", f"TR_v{i}", "video", offset, length, f"RE_v{i}.webm"),
                   Track(f"RE_a{i}", f"p{i}", f"TR_a{i}", "audio", offset, length, f"RE_a{i}.mka")]
    return tracks


def main() -> None:
    """Synthesize a session, render its grid composition once, print the figures."""
    p = parser(__doc__ or "")
    p.add_argument("--seconds", type=float, default=20.0, help="session length (default 20)")
    p.add_argument("--people", type=int, default=6)
    p.add_argument("--format", choices=("mp4", "webm"), default="mp4")
    p.add_argument("--source", default="320x240@15", help="each recording's video WxH@FPS (default 320x240@15)")
    args = p.parse_args()
    seconds = 6.0 if args.quick else args.seconds
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory(prefix="bench-compose-") as tmp:
        root = Path(tmp)
        dims, _, rate = args.source.partition("@")
        width, height = (int(v) for v in dims.split("x"))
        tracks = synth_session(root, args.people, seconds, size=(width, height), fps=int(rate or 15))
        req = Request(session="RM_bench", layout="grid", width=640, height=360, format=args.format, fps=15)
        out = root / f"out.{args.format}"
        cpu0, wall0 = time.process_time(), time.perf_counter()
        duration = render(Job(req, tracks, root, out, threads=1))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        emit("composition", {"people": args.people, "source": args.source, "format": args.format, "resolution": "640x360", "fps": 15,
                             "output_seconds": round(duration, 2), "wall_seconds": round(wall, 2),
                             "cpu_seconds": round(cpu, 2), "speed_x_realtime": round(duration / wall, 2),
                             "speed_x_per_cpu": round(duration / cpu, 2) if cpu else None,
                             "goal_x_realtime": GOAL_SPEED, "met": duration / wall >= GOAL_SPEED,
                             "output_bytes": out.stat().st_size})


if __name__ == "__main__":
    main()
