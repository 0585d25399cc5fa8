"""Watch together on the TV: the CPU cost of playing 1080p30 H.264 content beside a 6-tile call sidebar.

One real `tvapp tv` (SDL dummy screen at 1920x1080, 60 fps, sound to SDL's disk driver) joins a room with six real
`tvapp bot` guests (320x240 solid-colour video and a tone each), in the watch layout. The TV's CPU time (all its
threads, from /proc) is measured over the same wall time twice:
- baseline, same run: the six tiles and their audio alone, nothing loaded;
- content: the same, plus a 1080p30 H.264 + AAC clip (a file on this box) decoded, scaled into the content area
  and mixed into the audio.
Figures: both, as a share of one core, and their difference (what content playback costs), with the content
frames shown and dropped per second. The bots' own CPU is not counted (on a real TV they are other people's
phones); on this 2-core machine they compete with the TV, so the figure is pessimistic.

Run: python -m bench.watch_cpu [--quick]. Prints one JSON line.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from bench.common import emit, parser, process_cpu_seconds
from tvapp.testing.clip import make_clip
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess

COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan")


def busy(pid: int, seconds: float) -> float:
    """Return `pid`'s CPU time over `seconds` of wall time, as a share of one core."""
    cpu, wall = process_cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return round((process_cpu_seconds(pid) - cpu) / (time.perf_counter() - wall), 3)


def content_rate(trace: Path, since: float) -> dict[str, float]:
    """Return the content frames shown per second (distinct pts) in the TV's trace after `since`."""
    rows = [json.loads(line) for line in trace.read_text().splitlines() if '"event": "content"' in line]
    rows = [r for r in rows if r["t"] >= since and r["pts"] is not None]
    if len(rows) < 2:
        return {"frames_per_s": 0.0, "flips_per_s": 0.0}
    span = rows[-1]["t"] - rows[0]["t"]
    distinct = len({round(r["pts"], 4) for r in rows})
    return {"frames_per_s": round(distinct / span, 1), "flips_per_s": round(len(rows) / span, 1)}


def main() -> None:
    args = parser(__doc__.split("\n\n")[0]).parse_args()
    seconds = 4.0 if args.quick else 15.0
    with tempfile.TemporaryDirectory(prefix="bench-watch-cpu-") as tmp:
        workdir = Path(tmp)
        # Set-up, not a figure: the quick run plays the clip ~10 s, and a 1080p minute takes ~25 s to encode here.
        clip = make_clip(workdir / "clips", seconds=20 if args.quick else 60, fps=30, size=(1920, 1080),
                         codec="h264")
        env = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}
        with ServerProcess(workdir / "server", env=env) as server:
            server.http.post("/v1/rooms", json={"name": "cpu", "max_participants": 8})
            bots = [BotProcess(workdir, colour, ["--server", server.url, "--token",
                                                 server.token("cpu", colour)["access_token"], "--color", colour,
                                                 "--video", "pattern:320x240@15", "--audio", f"tone:{330 + 110 * i}"])
                    for i, colour in enumerate(COLOURS)]
            trace = workdir / "tv" / "trace.jsonl"
            token = server.token("cpu", "tv", name="TV")["access_token"]
            tv = TvProcess(workdir / "tv", ["--server", server.url, "--token", token, "--layout", "watch",
                                            "--trace", str(trace)], size="1920x1080")
            try:
                for bot in bots:
                    bot.wait_published(2)
                tv.wait_for(lambda s: len([t for t in s["tiles"] if t["video_rect"]]) == 6, timeout=90,
                            what="six video tiles")
                time.sleep(2.0)
                tiles_only = busy(tv.proc.pid, seconds)
                response = server.http.post("/v1/rooms/cpu/playback", json={"action": "load", "content": str(clip)})
                assert response.status_code == 200, response.text
                tv.wait_for(lambda s: bool(s.get("content") and s["content"]["video_rect"]), timeout=30,
                            what="the content")
                time.sleep(2.0)
                measured_from = time.time()
                with_content = busy(tv.proc.pid, seconds)
                rate = content_rate(trace, measured_from)
            finally:
                tv.stop()
                for bot in bots:
                    bot.stop()
    emit("watch_cpu", {
        "content": "1920x1080 30 fps H.264 + AAC 48 kHz", "tiles": len(COLOURS), "seconds": seconds,
        "tv_cpu_with_content": with_content, "tv_cpu_baseline_tiles_only": tiles_only,
        "content_cost": round(with_content - tiles_only, 3), "content_shown": rate,
    })


if __name__ == "__main__":
    main()
