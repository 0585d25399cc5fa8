"""Live events together: how far apart screens behind CDN edges 4 s apart show a live stream, at display level.

Setup (real parts): a test live origin (tvapp.testing.live_origin: ffmpeg's hls muxer, 640x360 at 60 fps, 1 s
segments, program date-time, each frame stamped in its pixels with the wall clock it was painted at: the event's
true clock) and two CDN edges in front of it (the far one serves the playlist 4 s late), a real `tvapp serve`, and
three screens, each its own process, all inside a network namespace behind tvapp.testing.netem with the profile of
bench/watch_sync.py (50 ms ± 20 ms each way, 1% loss): two `tvapp tv` (SDL dummy, 640x360 at 60 fps, `--trace`),
one behind each edge (`content_proxy`), and a `tvapp bot --watch` SDK player behind the far edge (publishing
nothing: a camera tile would cost the TVs CPU that has nothing to do with the live stream).

Two phases in the same run, the same processes' kinds, the same link:
- room: the three screens in one room that loads the stream (the core's `[watch] live_delay`, 6 s);
- baseline: each screen at its own live edge, what any player does today: the near TV in one room that loads
  the near edge's playlist, the far ones in another that loads the far edge's, both loaded at the same instant
  (the same rule for both: `live_delay` behind the newest segment its own edge lists).

Why 60 fps: the display offset between two screens can only be a whole number of frames. At 30 fps that is 0 or
33.3 ms, so a p95 <= 20 ms goal cannot be answered by it (two screens 3 ms apart show different frames for 3 ms of
every 33: p95 lands on 33.3); at 60 fps a one-frame difference is 16.7 ms, under the goal, and two frames (33.3 ms)
over it. `display_rate` shows whether the TVs really flip at 60 fps and change picture at each flip, and how often a TV
got no CPU for 3+ flips (`flip_gaps_over_50ms`: on this shared machine, the cause of every large offset seen).

Figures, over every pair of screens and every 1/120 s of the steady part (from 8 s after the first frames on):
- display_offset: the difference between the event instants of the frames two screens are showing at the same
  instant (each screen's last flip before it; pts on the event clock). This is what a viewer compares, so it is
  quantised by frames (16.7 ms at 60 fps). The pictures back it: `stamp_check` reads the stamp from each TV's
  screenshot and checks that it maps to the pts the TV says it shows in the same way on both TVs (their spread, ms).
- display_over_goal_pct: the share of those samples over the goal's 20 ms (the goal is met while it is under 5 %;
  finer than the p95, which can only be a whole number of frames).
- presentation_offset: per frame both screens showed, the difference between the instants each first put it on
  screen (its first flip showing that pts): the same comparison seen from the other side, not quantised by the
  content's frame rate, only by each screen's flips (16.7 ms at 60 Hz).
- steady_offset and frame_error (room only): exactly bench/watch_sync.py's figures for files, with its functions
  (tvapp.testing.watch): the offset between two screens' timeline errors (target - truth) at every flip, and what
  the viewer saw, pts shown - truth (includes up to a frame of quantisation by construction). Both need one room's
  truth, so the baseline (two rooms) has them not.
- timeline_offset: the difference between the instants the screens aim at (`target`, no frame quantisation; the
  figure bench/watch_sync.py's steady_offset gives for files).
- behind_true_edge: how far behind the true live edge (the wall clock, through the stamp-to-pts mapping) each
  screen shows the event, and `smallest_hold_s`: the least any screen behind each edge could hold, measured from
  inside the namespace: for each new segment, when its bytes were in hand through that edge minus the segment's
  true start (an HLS screen cannot show an instant before it has the whole segment holding it).

Seeks inside the measured window are left out, as bench/watch_sync.py leaves its seek out of its steady window:
when the room's delay grows (a screen's hold needs more, tvapp.core.live.HoldMeter), every screen goes back
together, a deliberate jump of the room's timeline; RESYNC seconds from the jump on (watch_sync's seek resync goal)
are not "steady". They are found in the core's states (polled over REST every 0.1 s): a state whose delay grew and
that puts the room at its new live point, away from where the one before it was going; its `at` is when every screen
jumps. The figures say how many and how long (`seeks_in_window`, `excluded_s`); `display_offset_with_seeks` is the
display offset over the whole window. Waits for a stalled screen and catch ups after them (the room playing at
CATCH_UP_RATE) are not seeks: they stay in every figure. (The screens' traces cannot tell a seek: under CPU
starvation a row's instant and its target are taken apart, which looks like a jump.) `delay_changes` lists the
room's delay as it changed (seconds since the load, delay, rate); `waits` the states that waited for a stalled
screen (seconds since the load, who).

CPU starvation on purpose (`--load N`): N busy-looping processes (`burn`) run from before the screens start to the
end, so a change against starvation can be compared in the same conditions (the output says `load_processes`).
`--room-only` skips the baseline phase (half the time; its figures are then absent). Stalls on purpose
(`--stall-at T,...`): at each T seconds after the load the far edge answers 404 for every segment for
`--outage` seconds (1.5), so the far screens skip a segment and stall: a second one while the room catches up the
first shows how the room settles after a wait it kept (tvapp.core.live.KeptWaits). `--steady S` sets the measured
window (20 s).

Run: python -m bench.live_sync [--quick] [--live-delay S] [--load N] [--room-only]. Prints one JSON line.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.common import emit, parser
from bench.watch_sync import PROFILE
from tvapp.client.hls import fetch, read_playlist
from tvapp.core.live import LiveError
from tvapp.testing.clip import read_clip_stamp
from tvapp.testing.live_origin import Edge, LiveOrigin
from tvapp.testing.netem import NetemLink, netem_available, unique_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess
from tvapp.testing.watch import Flips, offsets, read_flips
from tvapp.web.hls import HlsFetchError

FPS = 60  # stream and TVs: see the docstring, "Why 60 fps"
SIZE = (640, 360)
SETTLE = 8.0
GRID = 1 / 120
RESYNC = 1.0  # seconds after a seek that are not steady (bench/watch_sync.py's seek_resync goal)
GOALS = {"display_offset_p95_ms": 20}
SCREENS = (("tv-near", "near"), ("tv-far", "far"), ("sdk-far", "far"))


def stats_ms(values: Any) -> dict[str, float]:
    """Return p50/p95/p99/max of |values| (seconds) in ms."""
    data = np.abs(np.asarray(values, dtype=np.float64))
    data = data[np.isfinite(data)]
    if not len(data):
        return {"samples": 0}
    return {"p50_ms": round(float(np.percentile(data, 50)) * 1000, 1),
            "p95_ms": round(float(np.percentile(data, 95)) * 1000, 1),
            "p99_ms": round(float(np.percentile(data, 99)) * 1000, 1),
            "max_ms": round(float(data.max()) * 1000, 1), "samples": len(data)}


def over_goal_pct(values: npt.NDArray[np.float64]) -> float | None:
    """Return the share (%) of the offsets over the goal: finer than a p95 that can only be a whole frame."""
    finite = np.abs(values[np.isfinite(values)])
    return round(float(np.mean(finite > GOALS["display_offset_p95_ms"] / 1000)) * 100, 2) if len(finite) else None


def shown_at(flips: Flips, grid: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the pts each instant of `grid` shows: the one of the screen's last flip before it (NaN: none)."""
    index = np.searchsorted(flips.t, grid, side="right") - 1
    out = np.full(len(grid), np.nan)
    ok = index >= 0
    out[ok] = flips.pts[index[ok]]
    return out


def aimed_at(flips: Flips, grid: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the timeline instant the screen aimed at, interpolated at `grid` (NaN outside its rows)."""
    out = np.interp(grid, flips.t, flips.target)
    out[(grid < flips.t[0]) | (grid > flips.t[-1])] = np.nan
    return out


def first_shown(flips: Flips) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return each pts the screen showed (in 0.1 ms units) and the instant of its first flip showing it."""
    ok = np.isfinite(flips.pts)
    keys = np.round(flips.pts[ok] * 10000).astype(np.int64)
    keys, first = np.unique(keys, return_index=True)
    return keys, flips.t[ok][first]


def presentation_offsets(a: Flips, b: Flips) -> npt.NDArray[np.float64]:
    """Return, per frame both screens showed, the difference of the instants each first showed it."""
    keys_a, t_a = first_shown(a)
    keys_b, t_b = first_shown(b)
    _, index_a, index_b = np.intersect1d(keys_a, keys_b, return_indices=True)
    return t_a[index_a] - t_b[index_b]


def display_rate(path: Path, flips: Flips) -> dict[str, Any]:
    """Return how often a TV flipped (its own "frames" rows) and how often its picture changed, in the window."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if '"frames"' in line]
    window = [row for row in rows if flips.t[0] <= row["t"] <= flips.t[-1]] if len(flips) else []
    fps = sorted(row["fps"] for row in window)
    shown = flips.pts[np.isfinite(flips.pts)]
    changes = int((np.diff(shown) != 0).sum()) if len(shown) > 1 else 0
    span = float(flips.t[-1] - flips.t[0]) if len(flips) > 1 else 0.0
    intervals = np.diff(flips.t)
    return {"flip_fps_p50": round(fps[len(fps) // 2], 1) if fps else None,
            "flip_fps_min": round(fps[0], 1) if fps else None,
            "picture_changes_per_s": round(changes / span, 1) if span else None,
            "flip_interval_p95_ms": round(float(np.percentile(intervals, 95)) * 1000, 1) if len(intervals) else None,
            "flip_gaps_over_50ms": int((intervals > 0.05).sum())}  # the process got no CPU for 3+ flips


def position_at(state: dict[str, Any], now: float) -> float:
    """Return a REST playback state's position at server time `now` (tvapp.core.playback.PlaybackState's rule)."""
    position = float(state["position"])
    if state["playing"] and not state["waiting_for"] and now > state["at"]:
        position += float(state.get("rate", 1.0)) * (now - float(state["at"]))
    return position


def grow_seeks(states: list[dict[str, Any]]) -> list[float]:
    """Return the `at` of each state that moved the room back to a grown delay's live point (every screen seeks)."""
    out = []
    for before, after in itertools.pairwise(states):
        if after["delay"] > before["delay"] + 1e-3 and after.get("live_edge") is not None \
                and abs(after["live_edge"] - after["position"] - after["delay"]) < 0.01 \
                and abs(position_at(before, after["at"]) - after["position"]) > 0.02:
            out.append(float(after["at"]))
    return out


def steady_mask(grid: npt.NDArray[np.float64], seeks: list[float]) -> npt.NDArray[np.bool_]:
    """Return which instants of `grid` are not within RESYNC seconds after a seek."""
    keep = np.ones(len(grid), dtype=bool)
    for seek in seeks:
        keep &= ~((grid >= seek - GRID) & (grid < seek + RESYNC))
    return keep


def without(flips: Flips, seeks: list[float]) -> Flips:
    """Return the rows outside the RESYNC seconds after each seek."""
    keep = steady_mask(flips.t, seeks)
    return Flips(flips.t[keep], flips.target[keep], flips.truth[keep], flips.pts[keep], flips.seq[keep])


class StatePoll:
    """The room's delay and rate as they change (a thread polling the core's REST state until `stop`)."""

    def __init__(self, server: ServerProcess, room: str) -> None:
        self.server, self.room = server, room
        self.changes: list[tuple[float, float, float]] = []  # (wall clock, delay, rate)
        self.states: list[dict[str, Any]] = []  # every distinct state (by seq)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                state = self.server.http.get(f"/v1/rooms/{self.room}/playback").json()
            except Exception:  # noqa: BLE001, S112 (the core is going away: no state to note)
                continue
            if not self.states or self.states[-1].get("seq") != state.get("seq"):
                self.states.append({**state, "polled": time.time()})
            row = (time.time(), round(float(state.get("delay", 0.0)), 2), round(float(state.get("rate", 1.0)), 3))
            if not self.changes or self.changes[-1][1:] != row[1:]:
                self.changes.append(row)

    def stop(self, since: float) -> list[list[float]]:
        """Stop polling; return the changes as [seconds since `since`, delay, rate]."""
        self._stop.set()
        self._thread.join(timeout=5)
        return [[round(t - since, 2), delay, rate] for t, delay, rate in self.changes]


class EdgeProbe:
    """From inside the namespace: when each new segment is in hand through each edge (a thread until `stop`)."""

    def __init__(self, link: NetemLink, edges: dict[str, Edge]) -> None:
        self.link, self.edges = link, edges
        self.rows: dict[str, list[tuple[float, float]]] = {name: [] for name in edges}  # (in hand, PDT start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=link.run_in_namespace, args=(self._run,), daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen: dict[str, int] = {name: -1 for name in self.edges}
        while not self._stop.wait(0.1):
            for name, edge in self.edges.items():
                try:
                    _, playlist = read_playlist(edge.url, proxy=edge.proxy)
                    newest = playlist.segments[-1] if playlist.segments else None
                    if newest is None or newest.sequence <= seen[name]:
                        continue
                    fetch(newest.url, proxy=edge.proxy)
                except (HlsFetchError, LiveError):
                    continue
                in_hand = time.time()
                if seen[name] >= 0:  # the first one may have been listed long before
                    self.rows[name].append((in_hand, newest.start))
                seen[name] = newest.sequence

    def stop(self) -> None:
        """Stop probing."""
        self._stop.set()
        self._thread.join(timeout=10)

    def smallest_hold(self, start: float, end: float, mapping: float) -> dict[str, float | None]:
        """Return, per edge, max(in hand - true segment start) over segments that arrived in [start, end]."""
        out: dict[str, float | None] = {}
        for name, rows in self.rows.items():
            lags = [hand - (pdt + mapping) for hand, pdt in rows if start <= hand <= end]
            out[name] = round(max(lags), 2) if lags else None
        return out


def stamp_mapping(tvs: dict[str, TvProcess], rounds: int = 3) -> dict[str, list[float]]:
    """Return per TV (stamp in its screenshot's pixels - pts it says it shows) in seconds, a few times each."""
    mapping: dict[str, list[float]] = {name: [] for name in tvs}
    for _ in range(rounds):
        for name, tv in tvs.items():
            pixels, sidecar = tv.screenshot()
            content = sidecar.get("content") or {}
            rect, pts = content.get("video_rect"), content.get("pts")
            if not rect or pts is None:
                continue
            x, y, w, h = rect
            stamp = read_clip_stamp(pixels[y:y + h, x:x + w])
            if stamp is not None:
                mapping[name].append(stamp[1] / 1000 - pts)
    return mapping


def outages(edge: Edge, since: float, at: list[float], seconds: float, stop: threading.Event) -> None:
    """Make `edge` answer 404 for every segment for `seconds` at each of `at` seconds after `since` (a thread)."""
    for when in at:
        if stop.wait(max(0.0, since + when - time.time())):
            return
        edge.fail("*")
        stop.wait(seconds)
        edge.heal()


def phase(workdir: Path, link: NetemLink, edges: dict[str, Edge], together: bool, steady: float,
          live_delay: float | None = None, stall_at: list[float] | None = None,
          outage: float = 1.5) -> dict[str, Any]:
    """Run the screens in one room (together) or each pair at its own edge's live point; return figures."""
    rooms = {name: "live" if together else f"own-{edge}" for name, edge in SCREENS}
    env_base = {"TVAPP_MEDIA_HOST_ADDRESSES": link.ns_ip}
    core_env = {"TVAPP_WATCH_LIVE_DELAY": str(live_delay)} if live_delay is not None else None
    poll: StatePoll | None = None
    delay_changes: list[list[float]] = []
    polled: list[dict[str, Any]] = []
    stop_outages = threading.Event()
    with ServerProcess(workdir / "server", host=link.host_ip, env=core_env, log_level="info") as server:
        for room in set(rooms.values()):
            server.http.post("/v1/rooms", json={"name": room})
        tvs: dict[str, TvProcess] = {}
        bots: dict[str, BotProcess] = {}
        traces = {name: workdir / name / "trace.jsonl" for name, _ in SCREENS}
        probe: EdgeProbe | None = None
        try:
            for name, edge in SCREENS:
                token = server.token(rooms[name], name, name=name)["access_token"]
                env = {**env_base, "TVAPP_WATCH_CONTENT_PROXY": edges[edge].proxy}
                if name.startswith("tv"):
                    tvs[name] = TvProcess(workdir / name, ["--server", server.url, "--token", token, "--no-audio",
                                                           "--trace", str(traces[name])],
                                          size=f"{SIZE[0]}x{SIZE[1]}", env={**env, "TVAPP_TV_FPS": str(FPS)},
                                          prefix=link.exec_prefix)
                else:
                    traces[name].parent.mkdir(parents=True, exist_ok=True)
                    bots[name] = BotProcess(workdir / name, name, ["--server", server.url, "--token", token,
                                                                   "--video", "none", "--audio", "none",
                                                                   "--watch", str(traces[name])],
                                            env=env, prefix=link.exec_prefix)
            for tv in tvs.values():
                tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=60, what="the room")
            deadline = time.monotonic() + 60
            while not all('"connected"' in bot.log_path.read_text() for bot in bots.values()):  # in before the load
                if time.monotonic() > deadline:
                    raise SystemExit("an SDK player never joined")
                time.sleep(0.1)
            loads = {"live": edges["near"].url} if together else {f"own-{e}": edges[e].url for e in edges}
            loaded = {}
            poll = StatePoll(server, "live" if together else "own-far")
            loaded_at = time.time()
            for room, url in loads.items():  # at the same instant, as far as two requests go
                response = server.http.post(f"/v1/rooms/{room}/playback", json={"action": "load", "content": url})
                assert response.status_code == 200, response.text
                loaded[room] = response.json()
            if stall_at:
                threading.Thread(target=outages, args=(edges["far"], loaded_at, stall_at, outage, stop_outages),
                                 daemon=True).start()
            deadline = time.monotonic() + 60
            while not all(path.exists() and np.isfinite(read_flips(path).pts).any() for path in traces.values()):
                if time.monotonic() > deadline:
                    raise SystemExit(f"a screen never showed the stream: {[str(p) for p in traces.values()]}")
                time.sleep(0.2)
            probe = EdgeProbe(link, edges)
            start = time.time() + SETTLE
            time.sleep(SETTLE)
            mapping = stamp_mapping(tvs)
            time.sleep(max(0.0, start + steady - time.time()))
            end = time.time()
            states = {room: server.http.get(f"/v1/rooms/{room}/playback").json() for room in set(rooms.values())}
        finally:
            stop_outages.set()
            edges["far"].heal()
            if probe is not None:
                probe.stop()
            if poll is not None:
                delay_changes = poll.stop(loaded_at)
                polled = poll.states
            statuses = {name: tv.stop() for name, tv in tvs.items()}
            (workdir / "server.log").write_text("".join(server.output))  # holds told, waits (tvapp.server.playback)
            for bot in bots.values():
                bot.stop()
    screens = {name: read_flips(path).between(start, end) for name, path in traces.items()}
    seeks = [at for at in grow_seeks(polled) if start - RESYNC < at < end]
    grid_all = np.arange(start, end, GRID)
    grid = grid_all[steady_mask(grid_all, seeks)]
    shown_all = {name: shown_at(flips, grid_all) for name, flips in screens.items()}
    shown = {name: shown_at(flips, grid) for name, flips in screens.items()}  # every row: the last flip before
    aimed = {name: aimed_at(flips, grid) for name, flips in screens.items()}
    screens = {name: without(flips, seeks) for name, flips in screens.items()}  # per-row figures: steady rows
    names = sorted(screens)
    pairs = [(a, b) for a in names for b in names if a < b]
    across = [(a, b) for a, b in pairs if a.split("-")[1] != b.split("-")[1]]
    flat = [value for values in mapping.values() for value in values]
    true_of_pts = float(np.median(flat)) if flat else 0.0  # event instant (PDT) -> true wall clock
    behind = {name: round(float(np.nanmedian(grid - (shown[name] + true_of_pts))), 2) for name in names}
    presented = {f"{a}/{b}": presentation_offsets(screens[a], screens[b]) for a, b in pairs}
    watch_sync_figures = {
        "steady_offset": stats_ms(np.concatenate([offsets(screens[a], screens[b]) for a, b in pairs])),
        "frame_error": stats_ms(np.concatenate([screens[name].frame_error for name in names])),
        "frame_error_by_screen": {name: stats_ms(screens[name].frame_error) for name in names},
    } if together else {}
    return {
        "room_delay_s": {room: round(state["delay"], 2) for room, state in states.items()},
        "loaded_delay_s": {room: round(state["delay"], 2) for room, state in loaded.items()},
        "display_offset": stats_ms(np.concatenate([shown[a] - shown[b] for a, b in pairs])),
        "display_offset_with_seeks": stats_ms(np.concatenate([shown_all[a] - shown_all[b] for a, b in pairs])),
        "display_over_goal_pct": over_goal_pct(np.concatenate([shown[a] - shown[b] for a, b in pairs])),
        "seeks_in_window": [round(seek - start, 2) for seek in seeks],
        "excluded_s": round((len(grid_all) - len(grid)) * GRID, 2),
        "delay_changes": delay_changes,
        "waits": [[round(state["polled"] - loaded_at, 2), state["waiting_for"]] for state in polled
                  if state.get("waiting_for")],
        "display_offset_across_edges": stats_ms(np.concatenate([shown[a] - shown[b] for a, b in across])),
        "presentation_offset": stats_ms(np.concatenate(list(presented.values()))),
        "timeline_offset": stats_ms(np.concatenate([aimed[a] - aimed[b] for a, b in pairs])),
        **watch_sync_figures,
        "stamp_check": {"tvs": {name: len(values) for name, values in mapping.items()},
                        "spread_ms": round((max(flat) - min(flat)) * 1000, 1) if flat else None},
        "behind_true_edge_s": behind,
        "smallest_hold_s": probe.smallest_hold(start, end, true_of_pts) if probe is not None else None,
        "pair_display_p95_ms": {f"{a}/{b}": stats_ms(shown[a] - shown[b]).get("p95_ms") for a, b in pairs},
        "pair_presentation_p95_ms": {pair: stats_ms(values).get("p95_ms") for pair, values in presented.items()},
        "display_rate": {name: display_rate(traces[name], screens[name]) for name in names if name.startswith("tv")},
        "frame_lag": {name: stats_ms(shown[name] - aimed[name]) for name in names},
        "room_changes_while_measured": {name: int(len(np.unique(flips.seq[np.isfinite(flips.seq)])) - 1)
                                        for name, flips in screens.items() if name.startswith("tv")},
        "frames_shown": {name: int(np.isfinite(flips.pts).sum()) for name, flips in screens.items()},
        "tv_exit": statuses,
    }


def burn(count: int) -> list[subprocess.Popen[bytes]]:
    """Start `count` processes that each keep a core busy (a CPU-starved machine, on purpose)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--load", type=int, default=0, metavar="N",
                         help="N busy-looping processes from the start to the end (CPU starvation on purpose)")
    options.add_argument("--room-only", action="store_true", help="skip the baseline phase")
    options.add_argument("--stall-at", default="", metavar="T,...",
                         help="seconds after the load at which the far edge fails every segment (room phase)")
    options.add_argument("--outage", type=float, default=1.5, metavar="S", help="how long each of those lasts")
    options.add_argument("--steady", type=float, metavar="S", help="the measured window (default 20 s)")
    options.add_argument("--keep", metavar="DIR", help="keep the traces and logs in DIR")
    options.add_argument("--live-delay", type=float, metavar="S",
                         help="the core's [watch] live_delay (default: the config's, 6 s)")
    args = options.parse_args()
    problem = netem_available()
    if problem is not None:
        raise SystemExit(f"bench.live_sync needs network namespaces and TUN devices: {problem}")
    steady = args.steady or (6.0 if args.quick else 20.0)
    burners = burn(args.load)
    try:
        figures = measure(args, steady)
    finally:
        for process in burners:
            process.kill()
            process.wait()
    emit("live_sync", figures)


def measure(args: Any, steady: float) -> dict[str, Any]:
    """Run the room phase (and the baseline's unless --room-only); return the figures."""
    baseline: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, \
            NetemLink(unique_name("lv"), seed=19, delay_ms=PROFILE["delay_ms"],
                      jitter_ms=PROFILE["jitter_ms"], loss=PROFILE["loss"]) as link:
        workdir = Path(args.keep or tmp)
        with LiveOrigin(workdir / "origin", fps=FPS, size=SIZE) as origin:
            edges = {"near": Edge(origin, host=link.host_ip), "far": Edge(origin, delay=4.0, host=link.host_ip)}
            try:
                while origin.snapshot(time.time() - 8.0) is None:  # the far edge lists a few segments by now
                    time.sleep(0.2)
                stall_at = [float(value) for value in args.stall_at.split(",") if value.strip()]
                room = phase(workdir / "room", link, edges, True, steady, args.live_delay, stall_at, args.outage)
                if not args.room_only:
                    baseline = phase(workdir / "baseline", link, edges, False, steady, args.live_delay)
            finally:
                for edge in edges.values():
                    edge.close()
        dropped = link.stats.dropped
    far_hold = (room["smallest_hold_s"] or {}).get("far")
    return {
        "stream": f"{SIZE[0]}x{SIZE[1]}@{FPS} H.264, 1 s segments", "edges_apart_s": 4.0, "steady_s": steady,
        "live_delay_s": args.live_delay,
        "load_processes": args.load,
        "stall_at_s": args.stall_at or None, "outage_s": args.outage if args.stall_at else None,
        "profile": {**PROFILE, "packets_dropped": dropped},
        "screens": [name for name, _ in SCREENS],
        "room": room,
        "baseline_own_edge": baseline,
        "room_behind_true_edge_s": round(float(np.median(list(room["behind_true_edge_s"].values()))), 2),
        "room_excess_over_far_hold_s": (round(float(np.median(list(room["behind_true_edge_s"].values()))) - far_hold,
                                              2) if far_hold is not None else None),
        "goals": GOALS,
        "goal_met": room["display_offset"].get("p95_ms", float("inf")) <= GOALS["display_offset_p95_ms"],
    }


if __name__ == "__main__":
    main()
