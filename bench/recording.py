"""Recording cost: the core's CPU with a full room of 6 recorded vs the same room not recorded, in the same run.

The load is bench.sfu_room's (six participants each publishing 640x480@30 VP8 + Opus and subscribed to the other
five, replayed from pre-encoded media by load processes on CPU 1; the server, a real `tvapp serve`, on CPU 0).
One server, one room, one load: the measured time is cut into short windows that alternate between the room not
recorded and recorded (`POST /v1/rooms/room/recording` start/stop; a settling pause after each switch is not
measured), so the two figures share the same machine noise (the box is shared, and separate phases on separate
servers differed by more than the effect measured). While recorded, every one of the 12 published tracks is
written to its file as received. The figure is the difference of the server's CPU (all threads, over wall
time, as a fraction of one core). Goal: <= +10% of a core (no transcoding). Also reported: what was written
(recordings, bytes, all completed after the last stop) and the frame loss over the whole run.

Run: python -m bench.recording [--quick] [--rounds N] [--window S] [--processes P]. Prints one JSON line.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    LOAD_CPU,
    CpuMeter,
    can_pin,
    emit,
    parser,
    pin_load,
    running_server,
)
from bench.media_load import (
    LoadProcess,
    encode_media,
    loss_percent,
    save_media,
    summarize,
)
from bench.sfu_room import PARTICIPANTS, SERVER_ENV, STREAMS, split
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until

GOAL_EXTRA_CPU = 0.10


def switch(srv: ServerProcess, on: bool) -> None:
    """Start or stop recording the room."""
    srv.http.post("/v1/rooms/room/recording", json={"action": "start" if on else "stop"}).raise_for_status()


def alternate(media_path: str, processes: int, warmup: float, rounds: int, window: float,
              settle: float) -> dict[str, Any]:
    """Measure `rounds` pairs of windows (not recorded, recorded) on one server with one room and one load."""
    with running_server(SERVER_ENV) as srv:
        assert srv.proc is not None
        srv.http.post("/v1/rooms", json={"name": "room", "max_participants": PARTICIPANTS}).raise_for_status()
        tokens = [srv.token("room", f"p{i}")["access_token"] for i in range(PARTICIPANTS)]
        loads = [LoadProcess(["--media", media_path, "--url", srv.url, "--streams", str(STREAMS),
                              *[a for t in group for a in ("--token", t)]], LOAD_CPU if can_pin() else None)
                 for group in split(tokens, processes)]
        try:
            for load in loads:
                load.ready()
            time.sleep(warmup)
            before = [load.mark() for load in loads]
            meters = {False: CpuMeter(srv.proc.pid), True: CpuMeter(srv.proc.pid)}
            pairs = []
            for _ in range(rounds):
                for recorded in (False, True):
                    switch(srv, recorded)
                    time.sleep(settle)
                    meter = CpuMeter(srv.proc.pid)
                    for each in (meter, meters[recorded]):
                        each.start()
                    time.sleep(window)
                    for each in (meter, meters[recorded]):
                        each.stop()
                    pairs.append(meter.server_busy)
            switch(srv, False)
            after = [load.mark() for load in loads]
            rows = wait_until(lambda: (r := srv.http.get("/v1/recordings", params={"limit": 1000}).json())
                              and all(x["status"] != "processing" for x in r) and r, 30, "recordings finished")
            received = summarize(before, after)["received"]
            return {
                "not_recorded_cpu_busy": meters[False].server_busy, "recorded_cpu_busy": meters[True].server_busy,
                "windows_cpu_busy": pairs, "frame_loss_pct": loss_percent(received),
                "recordings": {"count": len(rows), "completed": sum(r["status"] == "completed" for r in rows),
                               "bytes": sum(r["size"] for r in rows),
                               "seconds": round(sum(r["duration"] for r in rows), 1)},
            }
        finally:
            for load in loads:
                load.quit()


def main() -> None:
    """Run both phases and print the JSON line."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, help="pairs of windows (default 8, quick 2)")
    p.add_argument("--window", type=float, help="seconds per measured window (default 3, quick 2)")
    p.add_argument("--processes", type=int, default=3, help="load processes on CPU 1 (default 3)")
    args = p.parse_args()
    rounds = args.rounds or (2 if args.quick else 8)
    args.window = args.window or (2.0 if args.quick else 3.0)
    media_seconds, warmup, settle = (2.0, 0.5, 1.0) if args.quick else (8.0, 2.0, 1.0)
    pin_load()
    media = encode_media(media_seconds)
    with tempfile.TemporaryDirectory(prefix="tvapp-rec-") as tmp:
        path = str(Path(tmp) / "media.pickle")
        save_media(media, path)
        run = alternate(path, args.processes, warmup, rounds, args.window, settle)
    extra = round(run["recorded_cpu_busy"] - run["not_recorded_cpu_busy"], 3)
    emit("recording", {
        "participants": PARTICIPANTS, "tracks_recorded": 2 * PARTICIPANTS, "load_processes": args.processes,
        "rounds": rounds, "window_s": args.window, "settle_s": settle, "warmup_s": warmup,
        "media": {"video": "640x480@30 VP8", "audio": "Opus 48 kHz stereo 20 ms", "bps": media.bitrates()},
        **run,
        "extra_cpu_of_a_core": extra, "goal_extra_cpu": GOAL_EXTRA_CPU, "goal_met": extra <= GOAL_EXTRA_CPU,
        "load_cpu": LOAD_CPU if can_pin() else None,
    })


if __name__ == "__main__":
    main()
