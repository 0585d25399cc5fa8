"""Soak: a room churning for 30 minutes with a TV watching. Do the core and the TV leak memory, fds or threads?

One real core (`tvapp serve`, CPU 0) and one real TV (`tvapp tv`, SDL dummy screen 960x540, its sound written by
SDL's disk driver into a pipe this process drains) in one room with an anchor (SDK Room, host: 320x240@15 test
pattern + tone, the whole run) who also drives the room's content: a 20 s H.264/AAC clip served from the core's /media/, loaded,
paused, sought, played and stopped in a ~35 s cycle. Three churners (SDK Rooms, each through its own cuttable
TCP proxy, so a "drop" is a real reset without a websocket close) loop: join, check they receive the anchor's
video and audio, publish video and/or audio, mute/unmute or send data, unpublish, sometimes drop the connection
and come back (the SDK reconnects and republishes by itself), then leave. Every token expires after 10 minutes
and is refreshed, as in a real room.

Phases (fractions of --minutes): warm-up churn (15%), idle (8%: the TV and anchor alone, no content: the
baseline, the sampler's noise), churn (69%), idle again (8%). Every --interval seconds the core's and the TV's
RSS, open fds (/proc/PID/fd) and threads (/proc/PID/task) are sampled.

Figures, for the core and the TV: RSS growth per hour during churn (linear fit over the churn samples, as a
share of the RSS where the fit starts) and from the idle window before the churn to the one after (medians),
beside the same fit over the idle baseline (what the sampler's noise looks like as a growth rate); fds and
threads at start (idle before) and end (idle after). Errors: `error` events and unexpected disconnects at
the SDK, churn steps that failed (a refused publish, a reconnect that did not come back), media checks that
failed (a churner not receiving the anchor within 20 s, the TV not showing the anchor's video or the content),
and problems (tracebacks, ERROR lines) in the core's and the TV's logs. Not errors, counted apart: a refusal the SDK
handles itself (HANDLED_REFUSALS: "handled_refusals") and a call made again once because a link drop lost its
answer ("calls_again_after_a_link_drop"). Goal (issue 13): RSS growth < 5 %/h
after warm-up, fds and threads flat, zero errors. asyncio tasks are not visible from outside a process: the
threads are.

Run: python -m bench.soak [--minutes 30] [--interval S] [--samples FILE] [--quick]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import SERVER_CPU, can_pin, emit, parser, pin_load, run
from tvapp.client import events as ev
from tvapp.client.requests import RequestError
from tvapp.client.room import Room
from tvapp.client.sources import TestPatternTrack, ToneTrack
from tvapp.testing import procstat
from tvapp.testing.clip import make_clip
from tvapp.testing.logscan import LogWindow, problems, signature
from tvapp.testing.server import ServerProcess
from tvapp.testing.tcpproxy import CuttableProxy
from tvapp.testing.tv import TvProcess

ROOM = "soak"
CHURNERS = 3
MEDIA_TIMEOUT = 20.0
GOAL_RSS_PCT_PER_H = 5.0
# What SDL's disk audio driver prints on stderr when it starts: expected here, no problem.
SDL_DISK_AUDIO_BANNER = (r"^CRITICAL: You are using the SDL disk i/o audio driver", r"^CRITICAL:\s+Writing to file")
# Refusals the SDK handles itself (the web app shows none of them either: app.js SILENT_ERRORS): a fresh peer connection
# asked for within a second of the last one is asked again after that second. The anchor's SDK restarts its media
# when nothing reached it for 1.5 s, which a loaded machine's server can take; counted as "handled_refusals".
HANDLED_REFUSALS = frozenset({"media_restart_too_soon"})
PHASES = (("warmup", 0.15, True), ("idle_before", 0.08, False), ("churn", 0.69, True), ("idle_after", 0.08, False))


@dataclass
class Errors:
    """Everything that went wrong, by kind, with the first few texts of each for the report."""

    counts: Counter[str] = field(default_factory=Counter)
    signatures: Counter[str] = field(default_factory=Counter)  # "kind: what" -> how many
    examples: list[str] = field(default_factory=list)
    full: list[str] = field(default_factory=list)  # every error in full (tracebacks included), for --problems

    def add(self, kind: str, text: str, full: str | None = None) -> None:
        self.counts[kind] += 1
        self.signatures[f"{kind}: {text[:160]}"] += 1
        if len(self.examples) < 12:
            self.examples.append(f"{kind}: {text[:300]}")
        self.full.append(f"--- {kind}: {text}\n{full or ''}")


@dataclass
class Sample:
    phase: str
    at: float
    core: procstat.ProcessSample
    tv: procstat.ProcessSample


class Soak:
    """The run: processes, rooms, counters; `churning` says whether churners and content run now."""

    def __init__(self, core: ServerProcess, tv: TvProcess, content_url: str, seed: int = 1) -> None:
        self.core = core
        self.tv = tv
        self.content_url = content_url
        self.rng = random.Random(seed)
        self.errors = Errors()
        self.counts = Counter[str]()
        self.samples: list[Sample] = []
        self.phase = "startup"
        self.churning = asyncio.Event()
        self.stopping = False
        self.stopped = asyncio.Event()  # set with `stopping`: wakes the TV watcher out of its wait at once
        self.anchor: Room | None = None
        self.anchor_tracks: dict[str, str] = {}  # track sid -> kind
        self.core_log = LogWindow(core)
        self.content_since: float | None = None  # when the content last started playing
        self.content_loaded = False

    # -- participants ---------------------------------------------------------------------------------------------

    async def connect(self, identity: str, url: str, *, host: bool = False) -> Room:
        """Join the soak room as `identity` through `url`, with a refresh token; count its error events."""
        pair = await asyncio.to_thread(self.core.token, ROOM, identity, join=True, publish=True, subscribe=True,
                                       publish_data=True, host=host, name=identity, timeout=MEDIA_TIMEOUT)
        room = await Room.connect(url, pair["access_token"], refresh_token=pair["refresh_token"],
                                  host_addresses=["127.0.0.1"])
        room.on(ev.Error, lambda e: self.sdk_error(identity, e))

        def disconnected(e: ev.Disconnected) -> None:
            if e.reason != "client_initiated":
                self.errors.add("unexpected_disconnect", f"{identity}: {e.reason}")

        room.on(ev.Disconnected, disconnected)
        self.counts["joins"] += 1
        return room

    def sdk_error(self, identity: str, e: ev.Error) -> None:
        """Count an SDK error event; a refusal the SDK handles itself (HANDLED_REFUSALS) is counted apart."""
        if e.code in HANDLED_REFUSALS:
            self.counts["handled_refusals"] += 1
        else:
            self.errors.add("sdk_error_event", f"{identity}: {e.code} {e.message}")

    async def call(self, make: Callable[[], Awaitable[None]]) -> None:
        """Make an SDK call; again once if the link dropped under it (its answer lost: RequestError "disconnected")."""
        try:
            await make()
        except RequestError as exc:
            if exc.code != "disconnected":
                raise
            self.counts["calls_again_after_a_link_drop"] += 1
            await make()  # (the SDK waits through its resume)

    async def start_anchor(self) -> None:
        self.anchor = await self.connect("anchor", self.core.url, host=True)
        for track in (TestPatternTrack(320, 240, 15), ToneTrack(440.0)):
            pub = await self.anchor.local_participant.publish_track(track)
            assert pub.sid is not None
            self.anchor_tracks[pub.sid] = track.kind

    async def receives_anchor(self, room: Room, who: str) -> None:
        """Wait until `room` decodes 5 frames of the anchor's video and 10 of its audio (a media error if not)."""
        deadline = time.monotonic() + MEDIA_TIMEOUT
        start: dict[str, int] = {}
        while time.monotonic() < deadline:
            tracks = {kind: pub.track for p in room.participants.values() for pub in p.tracks.values()
                      if (kind := self.anchor_tracks.get(pub.sid)) and pub.track is not None}
            for kind, track in tracks.items():
                start.setdefault(kind, track.frames_received)
            if len(tracks) == 2 and tracks["video"].frames_received >= start["video"] + 5 \
                    and tracks["audio"].frames_received >= start["audio"] + 10:
                return
            await asyncio.sleep(0.1)
        self.errors.add("media_check_failed", f"{who} did not receive the anchor's video and audio "
                                              f"within {MEDIA_TIMEOUT} s")

    # -- churn --------------------------------------------------------------------------------------------------------

    async def churner(self, slot: int) -> None:
        """Join, publish, fiddle, sometimes drop and come back, leave; again, while churning."""
        proxy = CuttableProxy(int(self.core.url.rsplit(":", 1)[1]))
        url = await proxy.start()
        identity = f"churner-{slot}"
        cycle = 0
        try:
            while not self.stopping:
                await self.churning.wait()
                if self.stopping:
                    break
                cycle += 1
                try:
                    await self.churn_cycle(identity, url, proxy, drop=cycle % 3 == 1, cycle=cycle)
                except Exception as exc:  # one failed step is an error to report, not the end of the soak
                    self.errors.add("churn_step_failed", f"{identity} cycle {cycle}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        finally:
            await proxy.close()

    async def churn_cycle(self, identity: str, url: str, proxy: CuttableProxy, *, drop: bool, cycle: int) -> None:
        room = await self.connect(identity, url)
        sources: list[Any] = []
        try:
            await self.receives_anchor(room, identity)
            me = room.local_participant
            kinds = self.rng.choice([("video", "audio"), ("video",), ("audio",)])
            pubs = []
            for kind in kinds:
                track = TestPatternTrack(160, 120, 10) if kind == "video" else ToneTrack(300.0 + (50 * cycle) % 400)
                sources.append(track)
                pubs.append(await me.publish_track(track))
                self.counts["publishes"] += 1
            await asyncio.sleep(self.rng.uniform(2.0, 6.0))
            if self.rng.random() < 0.5:
                await self.call(pubs[0].mute)
                await asyncio.sleep(0.5)
                await self.call(pubs[0].unmute)
                self.counts["mutes"] += 1
            else:
                await me.send_data(f"hello from {identity} #{cycle}", topic="soak")
                self.counts["data_messages"] += 1
            if drop:
                reconnected = asyncio.ensure_future(room.wait_for(ev.Reconnected, timeout=30.0))
                await asyncio.sleep(0)
                proxy.cut()
                self.counts["drops"] += 1
                try:
                    await reconnected
                    self.counts["reconnects"] += 1
                except TimeoutError:
                    self.errors.add("reconnect_failed", f"{identity} did not reconnect within 30 s of a drop")
                    return
                await self.receives_anchor(room, identity + " (after reconnecting)")
            await asyncio.sleep(self.rng.uniform(1.0, 4.0))
            await self.call(lambda: me.unpublish_track(pubs[-1]))
            self.counts["unpublishes"] += 1
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        finally:
            await room.disconnect()
            for source in sources:
                source.stop()
            self.counts["leaves"] += 1

    async def director(self) -> None:
        """The anchor drives the content: load, pause, seek, play, stop (cancelled when the churn ends)."""
        steps = [("load", 12.0), ("pause", 4.0), ("seek", 2.0), ("play", 10.0), ("stop", 6.0)]
        for action, hold in itertools.cycle(steps):
            await self.command(action)
            await asyncio.sleep(hold)

    async def command(self, action: str) -> None:
        anchor = self.anchor
        assert anchor is not None
        position = self.rng.uniform(0.0, 15.0)
        try:
            if action == "load":
                await self.call(lambda: anchor.load(self.content_url, title="Soak clip"))
            elif action == "seek":
                await self.call(lambda: anchor.seek(position))
            else:
                await self.call(getattr(anchor, action))
        except Exception as exc:
            self.errors.add("playback_command_failed", f"{action}: {type(exc).__name__}: {exc}")
            return
        self.counts["playback_commands"] += 1
        self.content_since = time.monotonic() if action in ("load", "play") else None
        self.content_loaded = action != "stop" and (self.content_loaded or action == "load")

    # -- the TV -------------------------------------------------------------------------------------------------------

    async def tv_sidecar(self, timeout: float = 20.0) -> dict[str, Any] | None:
        """Ask the TV for a screenshot (SIGUSR1) and return its sidecar (None, and an error, if none comes)."""
        path = self.tv.shots / "latest.json"
        try:
            before = json.loads(path.read_text())["seq"]
        except (OSError, ValueError, KeyError):
            before = 0
        self.tv.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                sidecar = json.loads(path.read_text())
                if sidecar["seq"] > before:
                    return sidecar  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)
        self.errors.add("tv_check_failed", f"no screenshot within {timeout} s")
        return None

    async def watch_tv(self, every: float = 20.0) -> None:
        """Check what the TV shows now and then: the room, the anchor's video, the content when it plays."""
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), every)
            if self.stopping:
                return  # run_phases checks the TV once more itself at the end
            await self.check_tv()

    async def check_tv(self) -> None:
        deadline = time.monotonic() + MEDIA_TIMEOUT
        problem = "no screenshot"
        while time.monotonic() < deadline:
            sidecar = await self.tv_sidecar()
            if sidecar is None:
                return
            playing_for = time.monotonic() - self.content_since if self.content_since is not None else 0.0
            anchor_video = [t for t in sidecar["tiles"] if t.get("identity") == "anchor" and t.get("video_rect")]
            content = sidecar.get("content")
            if sidecar["screen"] != "RoomScreen":
                problem = f"the TV shows {sidecar['screen']}: {sidecar.get('error')}"
            elif content is not None and content.get("media_error"):
                problem = f"the TV's content player reports {content['media_error']}"
            elif not anchor_video and not (content and content.get("video_rect")):
                problem = "the TV shows neither the anchor's video nor the content"
            elif playing_for > 5.0 and (content is None or not content.get("video_rect")):
                problem = f"the content has played for {playing_for:.0f} s but the TV shows none"
            else:
                self.counts["tv_checks"] += 1
                return
            await asyncio.sleep(1.0)
        self.errors.add("tv_check_failed", problem)

    # -- sampling -----------------------------------------------------------------------------------------------------

    async def sampler(self, interval: float) -> None:
        assert self.core.proc is not None
        while not self.stopping:
            try:
                self.samples.append(Sample(self.phase, time.monotonic(), procstat.sample(self.core.proc.pid),
                                           procstat.sample(self.tv.proc.pid)))
            except ProcessLookupError as exc:
                self.errors.add("process_died", f"pid {exc.args[0]} is gone")
                return
            self.scan_core_log()
            await asyncio.sleep(interval)

    def scan_core_log(self) -> None:
        for found in self.core_log.problems():
            self.errors.add("core_log_problem", signature(found), found)
        self.core_log.mark()


async def quiesce(soak: Soak, timeout: float = 30.0) -> None:
    """Wait until only the anchor and the TV are left in the room."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = (await asyncio.to_thread(soak.core.http.get, f"/v1/rooms/{ROOM}/participants")).json()
        if sorted(p["identity"] for p in listed) == ["anchor", "tv"]:
            return
        await asyncio.sleep(0.2)
    soak.errors.add("churn_step_failed", f"the room did not empty to the anchor and the TV within {timeout} s")


async def run_phases(soak: Soak, minutes: float, interval: float, without: list[str]) -> None:
    await soak.start_anchor()
    await asyncio.to_thread(soak.tv.wait_for, lambda s: any(t.get("identity") == "anchor" and t.get("video_rect")
                                                            for t in s["tiles"]), 60.0, "the anchor's video")
    tasks = [asyncio.ensure_future(soak.sampler(interval)), asyncio.ensure_future(soak.watch_tv())]
    if "churners" not in without:
        tasks += [asyncio.ensure_future(soak.churner(slot)) for slot in range(CHURNERS)]
    director: asyncio.Future[None] | None = None
    try:
        for name, share, churning in PHASES:
            if churning:
                soak.phase = name
                soak.churning.set()
                if "content" not in without:
                    director = asyncio.ensure_future(soak.director())
            else:
                soak.churning.clear()  # churners finish the cycle they are in, then wait
                if director is not None:
                    director.cancel()
                    await asyncio.gather(director, return_exceptions=True)
                if soak.content_loaded:
                    await soak.command("stop")
                await quiesce(soak, 90.0)
                soak.phase = name
            await asyncio.sleep(minutes * 60 * share)
        soak.stopping = True
        soak.stopped.set()
        soak.churning.set()
        await soak.check_tv()
        soak.scan_core_log()
    finally:
        soak.stopping = True
        soak.stopped.set()
        soak.churning.set()
        if director is not None:
            director.cancel()
        done, pending = await asyncio.wait(tasks, timeout=60)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                soak.errors.add("soak_task_failed", repr(task.exception()))
        if soak.anchor is not None:
            await soak.anchor.disconnect()


# --- figures --------------------------------------------------------------------------------------------------------


def growth_pct_per_h(samples: list[Sample], pick: Callable[[Sample], int]) -> float | None:
    """Fit RSS against time over `samples`; return the slope per hour as a share of the fitted start, in %."""
    if len(samples) < 3:
        return None
    t = np.array([s.at for s in samples]) - samples[0].at
    y = np.array([pick(s) for s in samples], dtype=float)
    slope, intercept = np.polyfit(t, y, 1)
    return round(float(slope * 3600 / intercept * 100), 2)


def median(values: list[int]) -> float:
    return float(np.median(values)) if values else float("nan")


def process_figures(samples: list[Sample], which: str) -> dict[str, Any]:
    def of(s: Sample) -> procstat.ProcessSample:
        return getattr(s, which)  # type: ignore[no-any-return]

    by_phase = {name: [s for s in samples if s.phase == name] for name, _, _ in PHASES}
    before, after, churn = by_phase["idle_before"], by_phase["idle_after"], by_phase["churn"]
    rss_before = median([of(s).rss for s in before])
    rss_after = median([of(s).rss for s in after])
    idle_gap_h = (median([int(s.at) for s in after]) - median([int(s.at) for s in before])) / 3600
    return {
        "rss_mb": {"idle_before": round(rss_before / 1e6, 1), "idle_after": round(rss_after / 1e6, 1),
                   "max": round(max(of(s).rss for s in samples) / 1e6, 1)},
        "rss_growth_pct_per_h": {
            "churn_fit": growth_pct_per_h(churn, lambda s: of(s).rss),
            "idle_to_idle": round((rss_after / rss_before - 1) * 100 / idle_gap_h, 2) if idle_gap_h > 0 else None,
            "baseline_idle_fit": growth_pct_per_h(before, lambda s: of(s).rss),
        },
        "fds": {"start": int(median([of(s).fds for s in before])), "end": int(median([of(s).fds for s in after])),
                "max": max(of(s).fds for s in samples)},
        "threads": {"start": int(median([of(s).threads for s in before])),
                    "end": int(median([of(s).threads for s in after])), "max": max(of(s).threads for s in samples)},
    }


# --- main -----------------------------------------------------------------------------------------------------------


def drained_fifo(path: Path) -> Path:
    """Make a named pipe and a daemon thread that reads and drops whatever is written to it: where the TV's sound
    goes (SDL's disk driver writes in real time; a file would grow by 11 MB a minute; /dev/null it refuses)."""
    os.mkfifo(path)

    def drain() -> None:
        with open(path, "rb") as fifo:
            while fifo.read(1 << 16):
                pass

    threading.Thread(target=drain, name="tv sound", daemon=True).start()
    return path


@contextlib.contextmanager
def core_with_clip(workdir: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A core pinned to SERVER_CPU whose /media/ serves a 20 s stamped H.264 clip; yield it and the clip's URL."""
    data = workdir / "core"
    clip = make_clip(data / "media", seconds=20, fps=30, size=(640, 360), codec="h264")
    env = {"TVAPP_SERVER_HOST": "127.0.0.1", "TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}
    with ServerProcess(data, env=env, cpu=SERVER_CPU if can_pin() else None) as core:
        core.http.post("/v1/rooms", json={"name": ROOM}).raise_for_status()
        yield core, f"{core.url}/media/{clip.name}"


def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="length of the run after start-up (default 30)")
    p.add_argument("--interval", type=float, default=None, help="seconds between samples (default: 5, 2 if short)")
    p.add_argument("--samples", type=Path, default=None, help="write every sample to this file as JSON lines")
    p.add_argument("--problems", type=Path, default=None, help="write every error in full (tracebacks) to this file")
    p.add_argument("--without", choices=["content", "churners"], action="append", default=[],
                   help="leave out the content commands or the churners (to find what a growth comes from)")
    args = p.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    interval = args.interval or (2.0 if minutes <= 5 else 5.0)
    load_cpu = pin_load()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, core_with_clip(Path(tmp)) as (core, content_url):
        pair = core.token(ROOM, "tv", name="TV")
        sound = drained_fifo(Path(tmp) / "tv-sound.fifo")
        tv = TvProcess(Path(tmp) / "tv", ["--server", core.url, "--token", pair["access_token"],
                                          "--refresh-token", pair["refresh_token"]], size="960x540",
                       env={"SDL_DISKAUDIOFILE": str(sound)})
        soak = Soak(core, tv, content_url)
        try:
            run(run_phases(soak, minutes, interval, args.without))
            alive = {"core": core.proc is not None and core.proc.poll() is None, "tv": tv.proc.poll() is None}
        finally:
            tv_status = tv.stop()
            tv_output = tv.output
    for found in problems(tv_output.splitlines(keepends=True), ignore=SDL_DISK_AUDIO_BANNER):
        soak.errors.add("tv_log_problem", signature(found), found)
    if args.problems is not None:
        args.problems.write_text("\n".join(soak.errors.full))
    if args.samples is not None:
        with open(args.samples, "w") as fh:
            for s in soak.samples:
                fh.write(json.dumps({"phase": s.phase, "t": round(s.at - started, 2),
                                     "core": s.core.__dict__, "tv": s.tv.__dict__}) + "\n")
    core_figures = process_figures(soak.samples, "core")
    tv_figures = process_figures(soak.samples, "tv")
    churn_growth = [f["rss_growth_pct_per_h"]["churn_fit"] for f in (core_figures, tv_figures)]
    total_errors = sum(soak.errors.counts.values())
    emit("soak", {
        "minutes": minutes, "interval_s": interval, "samples": len(soak.samples),
        "phases_min": {name: round(minutes * share, 2) for name, share, _ in PHASES},
        "churners": 0 if "churners" in args.without else CHURNERS, "content": "content" not in args.without,
        "churn": dict(sorted(soak.counts.items())),
        "core": core_figures, "tv": tv_figures,
        "errors": {"total": total_errors, **dict(sorted(soak.errors.counts.items())),
                   "by_signature": dict(soak.errors.signatures.most_common())},
        "alive": alive, "tv_exit_status": tv_status,
        "goal_rss_growth_pct_per_h": GOAL_RSS_PCT_PER_H,
        "goal_met": total_errors == 0 and all(g is not None and g < GOAL_RSS_PCT_PER_H for g in churn_growth)
                    and all(f["fds"]["end"] <= f["fds"]["start"] + 2 for f in (core_figures, tv_figures)),
        "load_cpu": load_cpu,
    })


if __name__ == "__main__":
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    main()
