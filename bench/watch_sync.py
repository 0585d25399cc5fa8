"""Watch together: how close the screens of a room stay to each other, how fast they recover, how well clocks sync.

Setup (real parts): a `tvapp serve`, two real `tvapp tv` (SDL dummy, 960x540 at 30 fps, `--trace`) in a network
namespace behind tvapp.testing.netem with the issue's profile (delay 50 ms ± 20 ms each way, 1% loss; this
kernel has no sch_netem, so netem's userspace forwarder applies it), one of them with a clock 3.7 s fast drifting
100 ppm (TVAPP_CLOCK_FAULT), and a `tvapp bot --watch` SDK player on the server's side as a third screen. The host
loads a stamped 640x360 30 fps H.264 clip (a file on this box) over REST, seeks, pauses and resumes.

Figures (tvapp.testing.watch explains the trace rows; one machine, so the true timeline is known exactly):
- steady_offset: |offset between two screens' timeline positions| over every pair and every flip from 8 s after
  the load on (goal p95 <= 20 ms, p99 <= 40 ms). Baseline, same run: the same three screens on loopback with
  honest clocks (what the display loop alone costs).
- frame_error: what the viewer saw, |pts shown - true position|; includes up to one frame interval (33 ms) of
  frame quantisation by construction.
- seek_resync / resume_resync: from when a seek (resume) takes effect (command + the room's 0.4 s lead) until every
  screen shows frames within two frame intervals of the truth for 0.5 s (goal <= 1 s); also from the command.
- clock_error: |estimated - true server clock| of a Room behind the same link with the same clock fault, after its
  first 10 s (goal <= 2 ms). Baseline, same run: plain NTP from the latest exchange alone (no filtering).

Run: python -m bench.watch_sync [--quick]. Prints one JSON line. --quick (the test suite's smoke run) runs the clock
probe alongside the netem session instead of after it (set-up only: same link, its own server; ~15 s shorter).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import emit, parser
from tvapp.testing.clip import make_clip
from tvapp.testing.netem import NetemLink, netem_available, unique_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess
from tvapp.testing.watch import Flips, offsets, read_flips, settle_time

PROFILE = {"delay_ms": 50.0, "jitter_ms": 20.0, "loss": 0.01}
CLOCK_FAULT = "+3.7s,100ppm"
LEAD = 0.4
FRAME = 1 / 30
GOALS = {"steady_offset_p95_ms": 20, "steady_offset_p99_ms": 40, "seek_resync_s": 1.0, "clock_error_p95_ms": 2.0}


def stats_ms(values: Any) -> dict[str, float]:
    data = np.abs(np.asarray(values, dtype=np.float64))
    data = data[np.isfinite(data)]
    if not len(data):
        return {"samples": 0}
    return {"p50_ms": round(float(np.percentile(data, 50)) * 1000, 2),
            "p95_ms": round(float(np.percentile(data, 95)) * 1000, 2),
            "p99_ms": round(float(np.percentile(data, 99)) * 1000, 2),
            "max_ms": round(float(data.max()) * 1000, 2), "samples": int(len(data))}


def session(workdir: Path, clip: Path, link: NetemLink | None, steady: float) -> dict[str, Any]:
    """Run the three screens through load, steady play, seek, pause and resume; return the figures."""
    host = link.host_ip if link is not None else "127.0.0.1"
    with ServerProcess(workdir / "server", host=host) as server:
        server.http.post("/v1/rooms", json={"name": "bench"})
        tvs = {}
        for name, fault in (("skewed", CLOCK_FAULT if link else ""), ("honest", "")):
            env = {"TVAPP_TV_FPS": "30", "TVAPP_CLOCK_FAULT": fault}
            if link is not None:
                env["TVAPP_MEDIA_HOST_ADDRESSES"] = link.ns_ip
            token = server.token("bench", name)["access_token"]
            tvs[name] = TvProcess(workdir / name, ["--server", server.url, "--token", token, "--no-audio",
                                                   "--trace", str(workdir / name / "trace.jsonl")],
                                  size="960x540", env=env, prefix=link.exec_prefix if link else ())
        bot = BotProcess(workdir, "sdk", ["--server", server.url, "--token",
                                          server.token("bench", "sdk")["access_token"],
                                          "--watch", str(workdir / "sdk.jsonl")])

        def command(**body: Any) -> float:
            sent = time.time()
            response = server.http.post("/v1/rooms/bench/playback", json=body)
            assert response.status_code == 200, response.text
            return sent

        try:
            for tv in tvs.values():
                tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=60, what="the room")
            loaded = command(action="load", content=str(clip))
            time.sleep(8.0 + steady)
            sought = command(action="seek", position=25.0)
            time.sleep(3.0)
            command(action="pause")
            time.sleep(1.5)
            resumed = command(action="play")
            time.sleep(3.0)
        finally:
            for tv in tvs.values():
                tv.stop()
            bot.stop()
    screens: dict[str, Flips] = {name: read_flips(workdir / name / "trace.jsonl") for name in tvs}
    screens["sdk"] = read_flips(workdir / "sdk.jsonl")
    start, end = loaded + 8.0, loaded + 8.0 + steady
    steady_rows = {name: flips.between(start, end) for name, flips in screens.items()}
    pairs = [offsets(steady_rows[a], steady_rows[b]) for a in steady_rows for b in steady_rows if a < b]
    seek_settle = settle_time(list(screens.values()), sought + LEAD, tolerance=2 * FRAME + 0.005)
    resume_settle = settle_time(list(screens.values()), resumed + LEAD, tolerance=2 * FRAME + 0.005)
    return {
        "steady_offset": stats_ms(np.concatenate(pairs) if pairs else []),
        "timeline_error": {name: stats_ms(rows.timeline_error) for name, rows in steady_rows.items()},
        "frame_error": stats_ms(np.concatenate([rows.frame_error for rows in steady_rows.values()])),
        "seek_resync_s": round(seek_settle, 3) if seek_settle is not None else None,
        "seek_resync_from_command_s": round(seek_settle + LEAD, 3) if seek_settle is not None else None,
        "resume_resync_s": round(resume_settle, 3) if resume_settle is not None else None,
    }


async def clock_probe(server_url: str, token: str, seconds: float,
                      connected: threading.Event | None = None) -> dict[str, Any]:
    """Join as a Room with the clock fault; compare the estimate and plain one-exchange NTP with the truth."""
    from tvapp.client.room import Room

    os.environ["TVAPP_CLOCK_FAULT"] = CLOCK_FAULT
    try:
        room = await Room.connect(server_url, token)
    finally:
        os.environ.pop("TVAPP_CLOCK_FAULT", None)
        if connected is not None:
            connected.set()  # the process-wide fault is gone: processes started from now on inherit none
    started = time.time()
    estimate_errors: list[float] = []
    naive_errors: list[float] = []
    original = room.clock.add_exchange  # the benchmark looks at each exchange as it arrives

    def add_exchange(t0: float, t1: float, t2: float, arrived: float) -> None:
        original(t0, t1, t2, arrived)
        real = time.time()
        if real - started < 10.0:
            return
        naive = arrived + ((t1 - t0) + (t2 - arrived)) / 2
        naive_errors.append(naive - real)
        now = room.clock.now()
        if now is not None:
            estimate_errors.append(now - time.time())

    room.clock.add_exchange = add_exchange  # type: ignore[method-assign]
    await asyncio.sleep(seconds)
    estimate = room.clock.estimate
    await room.disconnect()
    return {"clock_error": stats_ms(estimate_errors), "clock_baseline_single_exchange": stats_ms(naive_errors),
            "clock_skew_ppm": round(estimate.skew * 1e6, 1) if estimate else None}


def main() -> None:
    args = parser(__doc__.split("\n\n")[0]).parse_args()
    problem = netem_available()
    if problem is not None:
        raise SystemExit(f"bench.watch_sync needs network namespaces and TUN devices: {problem}")
    steady = 4.0 if args.quick else 20.0
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        workdir = Path(tmp)
        clip = make_clip(workdir / "clips", seconds=40, fps=30, size=(640, 360), codec="h264")
        baseline = session(workdir / "loopback", clip, None, steady)
        with NetemLink(unique_name("b6"), seed=6, **PROFILE) as link:
            if not args.quick:
                faulty = session(workdir / "netem", clip, link, steady)
            with ServerProcess(workdir / "clock-server", host=link.host_ip) as server:
                server.http.post("/v1/rooms", json={"name": "clock"})
                token = server.token("clock", "probe")["access_token"]
                connected = threading.Event()
                with ThreadPoolExecutor(1) as pool:
                    probe = pool.submit(link.run_in_namespace, asyncio.run,
                                        clock_probe(server.url, token, 12.0 if args.quick else 40.0, connected))
                    if args.quick:  # alongside the session, once the probe's clock fault is out of os.environ
                        connected.wait(60)
                        faulty = session(workdir / "netem", clip, link, steady)
                    clock = probe.result()
            dropped = link.stats.dropped
    emit("watch_sync", {
        "profile": {**PROFILE, "clock_fault": CLOCK_FAULT, "packets_dropped": dropped},
        **faulty, **clock,
        "baseline_loopback": {key: baseline[key] for key in ("steady_offset", "frame_error", "seek_resync_s",
                                                             "resume_resync_s")},
        "goals": GOALS,
    })


if __name__ == "__main__":
    main()
