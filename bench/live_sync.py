"""Live events together: how far apart two screens behind different CDN edges show a live stream.

Setup (real parts): a test live origin (tvapp.testing.live_origin: ffmpeg's hls muxer, 320x180 at 15 fps, 1 s
segments, program date-time, frames stamped with the wall clock they were painted at), two CDN edges in front of it
(one serving the playlist 4 s late), a real `tvapp serve`, and two SDK content players (tvapp.client.player), each
fetching through its own edge (`content_proxy`). The screens are sampled at the same instants (60 a second) and the
stamps in the pixels each one would show then are read back.

Figures:
- room: |difference between the two screens' stamps| (ms of the event) with both following the room's live
  timeline (the core's `[watch] live_delay`, 6 s): goal p95 <= 20 ms (a frame at 15 fps is 67 ms, so frame
  quantisation dominates whenever two screens' samples straddle a frame change).
- baseline: the same two screens each at its own live edge, three target durations behind the newest segment its
  edge lists (what hls.js and most players do), started at the same moment: seconds apart.
- behind_live: how far behind the true live edge (the origin's wall clock) the room plays, vs the smallest distance
  each screen could hold on its own (its edge's newest segment end, behind the true edge, + one segment).

No netem here (bench/watch_sync.py measures the network profile's effect on the shared timeline; live playback adds
segment fetches over plain HTTP, which a slow link turns into stalls that grow the room's delay).

Run: python -m bench.live_sync [--quick]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import emit, parser, running_server
from tvapp.client.hls import read_playlist
from tvapp.client.player import ContentPlayer, attach
from tvapp.core.playback import PlaybackState
from tvapp.testing.clip import read_clip_stamp
from tvapp.testing.live_origin import Edge, LiveOrigin
from tvapp.testing.rest import room_name

GOALS = {"room_offset_p95_ms": 20}


def stats_ms(values: list[float]) -> dict[str, float]:
    data = np.abs(np.asarray(values, dtype=np.float64))
    if not len(data):
        return {"samples": 0}
    return {"p50_ms": round(float(np.percentile(data, 50)), 1), "p95_ms": round(float(np.percentile(data, 95)), 1),
            "p99_ms": round(float(np.percentile(data, 99)), 1), "max_ms": round(float(data.max()), 1),
            "samples": int(len(data))}


async def sample(players: list[ContentPlayer], clock: Any, seconds: float) -> list[float]:
    """Return the stamp difference (ms) between the two players' pictures at the same instants."""
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = clock()
        shown = [player.video_frame(now) for player in players] if now is not None else []
        stamps = [read_clip_stamp(s[0].to_ndarray(format="rgb24")) if s is not None else None  # type: ignore[arg-type]
                  for s in shown]
        if len(stamps) == 2 and all(stamps):
            out.append(float(stamps[0][1] - stamps[1][1]))  # type: ignore[index]
        await asyncio.sleep(1 / 60)
    return out


async def measure(server_url: str, token: str, near: Edge, far: Edge, seconds: float) -> dict[str, Any]:
    from tvapp.client import Room

    host = await Room.connect(server_url, token, host_addresses=["127.0.0.1"])
    players = [ContentPlayer(server_now=host.clock.now, audio=False, content_proxy=edge.proxy)
               for edge in (near, far)]
    detach = [attach(host, player) for player in players]
    figures: dict[str, Any] = {}
    try:
        await host.clock.wait_synced(5.0)
        await host.load(near.url)
        while not all(p.status().buffered_ahead > 0.3 for p in players):
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)
        figures["room_offset"] = stats_ms(await sample(players, host.clock.now, seconds))
        state = host.playback
        now = host.clock.now()
        assert state is not None and now is not None
        figures["room_delay_s"] = state.delay
        figures["room_behind_true_edge_s"] = round(time.time() - state.position_at(now), 2)
        own = {}
        for name, edge in (("near", near), ("far", far)):
            _, playlist = read_playlist(edge.url)
            own[name] = round(time.time() - playlist.live_edge + playlist.target_duration, 2)
        figures["smallest_own_behind_s"] = own
    finally:
        for undo in detach:
            undo()
        for player in players:
            player.close()
        await host.disconnect()

    # Baseline: each screen at its own live edge (3 target durations behind its newest segment), no shared room.
    alone = []
    start = time.time()
    for edge in (near, far):
        _, playlist = read_playlist(edge.url)
        position = playlist.live_edge - 3 * playlist.target_duration
        player = ContentPlayer(server_now=time.time, audio=False, content_proxy=edge.proxy)
        player.follow(PlaybackState(content=edge.url, playing=True, position=position, at=start, seq=1, live=True,
                                    live_edge=playlist.live_edge, delay=3 * playlist.target_duration))
        alone.append(player)
    try:
        while not all(p.status().buffered_ahead > 0.3 for p in alone):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        figures["baseline_own_edge_offset"] = stats_ms(await sample(alone, time.time, seconds))
    finally:
        for player in alone:
            player.close()
    return figures


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    seconds = 5.0 if args.quick else 20.0
    with tempfile.TemporaryDirectory(prefix="tvapp-live-") as folder, LiveOrigin(Path(folder)) as origin:
        near, far = Edge(origin), Edge(origin, delay=4.0)
        try:
            with running_server() as server:
                while origin.snapshot(time.time() - 7.0) is None:
                    time.sleep(0.1)
                name = room_name("live-bench", 8)
                token = server.token(name, "host", host=True)["access_token"]
                figures = asyncio.run(measure(server.url, token, near, far, seconds))
        finally:
            near.close()
            far.close()
    emit("live_sync", {"stream": "320x180@15 H.264, 1 s segments", "edges_apart_s": 4.0, "measured_s": seconds,
                       **figures, "goals": GOALS})


if __name__ == "__main__":
    main()
