"""TV latency: join -> first remote frame on screen, glass-to-glass to the display flip, and lip-sync.

A real `tvapp serve` (CPU 0) holds a room with BOTS real `tvapp bot` processes, each publishing a stamped
640x480@30 pattern (tvapp.client.stamp: the frame's wall-clock capture time is in its pixels) and a tone that
it plays only in its turn on the wall clock (`--talk i/N@T`: the tone starts within one 20 ms frame of a
known instant). The TV is the real `tvapp tv` (SDL dummy screen at 1920x1080, SDL disk audio) started
ROUNDS times with `--trace`, which writes:
- when joining started, and for each presented video frame the flip time and the frame's stamp,
- every 50 ms how many samples had been handed to the sound card.

Figures, all on one clock:
- join_to_first_frame: join started -> first flip showing any remote frame (one sample per TV start);
- glass_to_glass: flip time - capture time for every presented frame after the first 2 s;
- lip_sync: per tone onset, (when it was played - when it was captured) - that bot's glass-to-glass median
  around then; positive = audio behind the picture. "Played" is the moment SDL took the sample, plus one
  device buffer (10 ms). The window a viewer accepts: audio <= 45 ms early, <= 125 ms late.
Baseline, same run: a headless SDK subscriber (tvapp.client.Room) joining the same room: join -> first decoded
frame, and capture -> decoded frame (no display): `tv_added_*` is what the TV adds on top.
- audio_added_latency: what the TV's mixer queue and output buffer add (AudioOutput.added_latency_ms, sampled
  every 10 displayed frames).
Goals: join_to_first_frame p95 <= 1000 ms, glass_to_glass p95 <= 120 ms, lip-sync inside the window, audio
added latency <= 60 ms.

Run: python -m bench.tv_latency [--quick] [--rounds R]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from bench.common import emit, latency_ms, parser, percentile, run, running_server
from tvapp.client import Room
from tvapp.client import events as ev
from tvapp.client.stamp import read_stamp
from tvapp.testing.tv import BotProcess, tv_env

SERVER_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}
TONES = (440.0, 660.0, 990.0)
TURN_SECONDS = 2.0
DEVICE_BUFFER_S = 0.010
GATE_MIDPOINT_S = 0.010   # the first tone frame starts within one 20 ms frame after the turn's instant
GOALS = {"join_p95_ms": 1000, "g2g_p95_ms": 120, "lip_sync_early_ms": -45, "lip_sync_late_ms": 125}


def tv_round(url: str, token: str, workdir: Path, seconds: float) -> dict[str, Any]:
    """Run the TV once; return its trace and audio file parsed."""
    workdir.mkdir(parents=True)
    trace = workdir / "trace.jsonl"
    with open(workdir / "tv.log", "w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "tvapp", "tv", "--server", url, "--token", token, "--size", "1920x1080",
             "--trace", str(trace), "--duration", str(seconds)],
            env=tv_env(workdir), stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"the TV failed: {(workdir / 'tv.log').read_text()}")
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    raw = np.fromfile(workdir / "audio.raw", dtype="<i2")
    return {"events": events, "audio": raw[: len(raw) // 2 * 2].reshape(-1, 2).mean(axis=1) / 32768.0}


def tone_onsets(mono: np.ndarray, hz: float, rate: int = 48000) -> list[int]:
    """Return the sample indexes where the `hz` tone switches on (energy in its band crosses half its on-level)."""
    hop, size = 120, 480
    frames = np.lib.stride_tricks.sliding_window_view(mono, size)[::hop]
    t = np.arange(size) / rate
    probe = np.hanning(size) * np.exp(-2j * np.pi * hz * t)
    level = np.abs(frames @ probe)
    on = level.max() if len(level) else 0.0
    if on <= 1e-4:
        return []
    active = level > on / 2
    starts = np.flatnonzero(active[1:] & ~active[:-1]) + 1
    # keep onsets that follow >= 0.5 s of silence (turns, not codec wobble); the window's centre is the instant
    quiet = int(0.5 * rate / hop)
    return [int(s * hop + size // 2) for s in starts if s >= quiet and not active[s - quiet:s].any()]


def analyse(round_: dict[str, Any], identities: list[str]) -> dict[str, Any]:
    """Return this round's join time, glass-to-glass samples and lip-sync offsets."""
    events = round_["events"]
    join = next(e["t"] for e in events if e["event"] == "join")
    flips = [e for e in events if e["event"] == "flip" and e["capture_ms"] is not None]
    first = min(e["t"] for e in flips)
    steady = [e for e in flips if e["t"] >= first + 2.0]
    g2g = [e["t"] - e["capture_ms"] / 1000 for e in steady]
    audio_marks = [(e["frames"], e["t"]) for e in events if e["event"] == "audio"]
    offsets: list[float] = []
    if len(audio_marks) >= 2:
        frames, times = (np.array(column, dtype=float) for column in zip(*audio_marks))
        for slot, (identity, hz) in enumerate(zip(identities, TONES)):
            mine = [(e["t"], e["t"] - e["capture_ms"] / 1000) for e in steady if e["identity"] == identity]
            for onset in tone_onsets(round_["audio"], hz):
                if not frames[0] <= onset <= frames[-1]:
                    continue
                played = float(np.interp(onset, frames, times)) + DEVICE_BUFFER_S
                cycle = TURN_SECONDS * len(identities)
                instant = (played - slot * TURN_SECONDS) // cycle * cycle + slot * TURN_SECONDS
                audio_latency = played - (instant + GATE_MIDPOINT_S)
                near = [lat for t, lat in mine if abs(t - played) < 1.0]
                if near and 0 < audio_latency < 1.0:
                    offsets.append(audio_latency - statistics.median(near))
    added = [v for e in events if e["event"] == "frames" and e["t"] >= first + 2.0
             for v in e.get("audio_added_latency_ms", [])]
    return {"join": first - join, "g2g": g2g, "lip_sync": offsets, "audio_added": added}


async def baseline(url: str, token: str, seconds: float) -> tuple[float, list[float]]:
    """Join with a headless SDK subscriber: (join -> first decoded frame, capture -> decoded latencies)."""
    started = time.time()
    room = await Room.connect(url, token, host_addresses=["127.0.0.1"])
    latencies: list[float] = []
    first: list[float] = []
    try:
        tracks: asyncio.Queue[Any] = asyncio.Queue()
        room.on(ev.TrackSubscribed, lambda e: tracks.put_nowait(e.track) if e.track.kind == "video" else None)
        for participant in room.participants.values():
            for pub in participant.tracks.values():
                if pub.track is not None and pub.kind == "video":
                    tracks.put_nowait(pub.track)

        async def read(track: Any) -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    frame = await track.recv()
                    now = time.time()
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    stamp = read_stamp(frame.to_ndarray(format="gray"))
                    if stamp is None:
                        continue
                    if not first:
                        first.append(now - started)
                    elif now - started > 2.0:
                        latencies.append(now - stamp[1] / 1000)

        readers = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                track = await asyncio.wait_for(tracks.get(), max(0.01, deadline - time.monotonic()))
                readers.append(asyncio.create_task(read(track)))
        for task in readers:
            task.cancel()
    finally:
        await room.disconnect()
    return (first[0] if first else float("nan")), latencies


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, help="TV starts (default 10, quick 2)")
    args = p.parse_args()
    rounds = args.rounds or (2 if args.quick else 10)
    seconds = 6.0 if args.quick else 9.0
    identities = [f"bot-{i}" for i in range(len(TONES))]
    joins: list[float] = []
    g2g: list[float] = []
    lip: list[float] = []
    audio_added: list[float] = []
    base_joins: list[float] = []
    base_g2g: list[float] = []
    with running_server(SERVER_ENV) as srv, tempfile.TemporaryDirectory(prefix="tvapp-bench-tv-") as tmp:
        srv.http.post("/v1/rooms", json={"name": "tvlat"}).raise_for_status()
        bots = [BotProcess(Path(tmp), identity, [
            "--server", srv.url, "--token", srv.token("tvlat", identity)["access_token"],
            "--video", "pattern:640x480@30", "--audio", f"tone:{hz:g}",
            "--talk", f"{i}/{len(TONES)}@{TURN_SECONDS:g}"]) for i, (identity, hz) in enumerate(zip(identities, TONES))]
        try:
            for b in bots:
                b.wait_published(2)
            time.sleep(2.0)
            for r in range(rounds):
                token = srv.token("tvlat", f"tv-{r}")["access_token"]
                result = analyse(tv_round(srv.url, token, Path(tmp) / f"round-{r}", seconds), identities)
                joins.append(result["join"])
                g2g.extend(result["g2g"])
                lip.extend(result["lip_sync"])
                audio_added.extend(result["audio_added"])
                token = srv.token("tvlat", f"sdk-{r}")["access_token"]
                first, latencies = run(baseline(srv.url, token, 4.0 if args.quick else 5.0))
                base_joins.append(first)
                base_g2g.extend(latencies)
        finally:
            for b in bots:
                b.stop()
    figures: dict[str, Any] = {
        "rounds": rounds, "bots": len(TONES), "video": "640x480@30", "screen": "1920x1080",
        "join_to_first_frame": latency_ms(joins) | {"samples": len(joins)},
        "glass_to_glass": latency_ms(g2g) | {"samples": len(g2g)},
        "baseline_sdk_join_to_first_frame": latency_ms(base_joins),
        "baseline_sdk_capture_to_decoded": latency_ms(base_g2g) | {"samples": len(base_g2g)},
        "tv_added_g2g_p50_ms": round((percentile(g2g, 50) - percentile(base_g2g, 50)) * 1000, 1),
        "tv_added_g2g_p95_ms": round((percentile(g2g, 95) - percentile(base_g2g, 95)) * 1000, 1),
        "goals": GOALS,
    }
    if audio_added:
        figures["audio_added_latency_ms"] = {"p50": percentile(audio_added, 50), "p95": percentile(audio_added, 95),
                                             "max": max(audio_added), "samples": len(audio_added), "goal": 60}
    if lip:
        figures["lip_sync_ms"] = {"p5": round(percentile(lip, 5) * 1000, 1), "p50": round(percentile(lip, 50) * 1000, 1),
                                  "p95": round(percentile(lip, 95) * 1000, 1), "min": round(min(lip) * 1000, 1),
                                  "max": round(max(lip) * 1000, 1), "samples": len(lip)}
    else:
        figures["lip_sync_ms"] = {"samples": 0}
    emit("tv_latency", figures)


if __name__ == "__main__":
    main()
