"""Watch together end to end: real TVs (SDL dummy) and an SDK player in one room play a stamped clip in sync.

Each screen traces every flip (tvapp.testing.watch): the timeline position it aimed at, the frame it showed and the
true timeline position (one machine: the server's clock is this one). The host drives the room over REST.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tvapp.client import events as ev
from tvapp.client.player import ContentPlayer, attach
from tvapp.client.room import Room
from tvapp.testing.clip import make_clip, read_clip_stamp
from tvapp.testing.rest import create_room
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess, TvProcess
from tvapp.testing.waiting import wait_until
from tvapp.testing.watch import Flips, offsets, percentile_ms, read_flips, settle_time

FPS = 30
FRAME = 1 / FPS


@pytest.fixture(scope="module")
def clip(clip_cache: Path) -> Path:
    return make_clip(clip_cache, seconds=30, fps=FPS, size=(640, 360), codec="h264")


def command(server: ServerProcess, room: str, **body: Any) -> dict[str, Any]:
    response = server.http.post(f"/v1/rooms/{room}/playback", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def start_tv(server: ServerProcess, room: str, workdir: Path, identity: str, *extra: str,
             env: dict[str, str] | None = None) -> TvProcess:
    token = server.token(room, identity, name=identity)["access_token"]
    return TvProcess(workdir, ["--server", server.url, "--token", token, "--trace", str(workdir / "trace.jsonl"),
                               "--no-audio", *extra], size="960x540", env={"TVAPP_TV_FPS": "30", **(env or {})})


def wait_content(tv: TvProcess, timeout: float = 30.0) -> dict[str, Any]:
    _, sidecar = tv.wait_for(lambda s: bool(s.get("content") and s["content"]["video_rect"]), timeout=timeout,
                             what="the content playing")
    return sidecar


def in_sync(screens: dict[str, Flips], start: float, end: float) -> dict[str, Any]:
    """Check that in [start, end] every screen aims at the true timeline and shows its frame, and they agree."""
    report: dict[str, Any] = {}
    for name, flips in screens.items():
        window = flips.between(start, end)
        assert len(window) > 20, (name, len(window))
        report[name] = {"timeline_p95_ms": percentile_ms(window.timeline_error, 95),
                        "frame_errors_ms": [round(float(np.nanmin(window.frame_error)) * 1000, 1),
                                            round(float(np.nanmax(window.frame_error)) * 1000, 1)]}
        # Loose bounds: this is behaviour on a busy 2-core machine; bench/watch_sync.py measures the figures.
        assert report[name]["timeline_p95_ms"] < 40, report
        shown = window.frame_error[np.isfinite(window.frame_error)]
        assert len(shown) > 0.9 * len(window), (name, "frames missing")
        # The frame on screen is the one due: at most ~1 frame behind the truth (a late frame now and then).
        assert np.mean((shown > -2 * FRAME - 0.005) & (shown < 0.005)) > 0.95, report
    names = list(screens)
    for a in names:
        for b in names:
            if a < b:
                between = offsets(screens[a].between(start, end), screens[b].between(start, end))
                report[f"{a}-{b}_p95_ms"] = percentile_ms(between, 95)
                assert report[f"{a}-{b}_p95_ms"] < 45, report
    return report


def test_two_tvs_and_an_sdk_player_play_the_clip_in_sync_through_seek_pause_and_resume(
        server: ServerProcess, clip: Path, tmp_path: Path) -> None:
    room = create_room(server, "watch-sync")["name"]
    tvs = [start_tv(server, room, tmp_path / name, name) for name in ("tv-a", "tv-b")]
    bot_token = server.token(room, "sdk-player")["access_token"]
    bot_trace = tmp_path / "bot.jsonl"
    bot = BotProcess(tmp_path, "sdk", ["--server", server.url, "--token", bot_token, "--watch", str(bot_trace)])
    try:
        for tv in tvs:
            tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=30, what="the room")
        wait_until(lambda: "sdk-player" in {p["identity"] for p in server.http.get(f"/v1/rooms/{room}/participants")
                                            .json()}, 30, "the bot to join")  # the bot joins too (no screen)
        loaded = time.time()
        command(server, room, action="load", content=str(clip), title="Stamped clip")
        sidecar = wait_content(tvs[0])
        assert sidecar["mode"] == "watch"  # content turned the grid into the watch layout
        time.sleep(5.0)

        # The picture really is the frame the trace says: the stamp in the pixels matches the player's position.
        pixels, sidecar = tvs[0].screenshot()
        x, y, w, h = sidecar["content"]["video_rect"]
        stamp = read_clip_stamp(pixels[y:y + h, x:x + w])
        assert stamp is not None, sidecar
        assert abs(stamp[1] / 1000 - sidecar["content"]["pts"]) <= FRAME + 0.001, (stamp, sidecar["content"])

        def screens() -> dict[str, Flips]:
            return {"tv-a": read_flips(tmp_path / "tv-a" / "trace.jsonl"),
                    "tv-b": read_flips(tmp_path / "tv-b" / "trace.jsonl"), "sdk": read_flips(bot_trace)}

        now = time.time()
        in_sync(screens(), loaded + 3.0, now)

        # Seek while playing: every screen is back on the timeline within a second.
        sought = time.time()
        command(server, room, action="seek", position=20.0)
        time.sleep(3.0)
        settled = settle_time(list(screens().values()), sought + 0.4, tolerance=2 * FRAME + 0.005)
        assert settled is not None and settled < 1.0, settled  # measured from when the seek takes effect
        in_sync(screens(), sought + 1.5, time.time())

        # Pause: every screen holds the same frame.
        command(server, room, action="pause")
        time.sleep(1.5)
        paused = time.time()
        time.sleep(1.0)
        for name, flips in screens().items():
            held = flips.between(paused, time.time())
            assert len(held) > 10 and np.nanmax(held.pts) - np.nanmin(held.pts) <= FRAME, name
        held_at = {name: float(np.nanmedian(f.between(paused, time.time()).pts)) for name, f in screens().items()}
        assert max(held_at.values()) - min(held_at.values()) <= FRAME + 0.001, held_at

        # Resume: together again from the same place.
        resumed = time.time()
        command(server, room, action="play")
        time.sleep(2.5)
        in_sync(screens(), resumed + 1.0, time.time())
    finally:
        statuses = [tv.stop() for tv in tvs]
        bot.stop()
    assert statuses == [0, 0], [tv.output for tv in tvs]


class SlowFile:
    """A media file whose reads block for `hold` seconds once they pass `at` bytes (a stalling network share)."""

    def __init__(self, path: Path, at: int, hold: float) -> None:
        self._file = open(path, "rb")
        self.at, self.hold = at, hold
        self.blocked = threading.Event()

    def read(self, size: int = -1) -> bytes:
        if not self.blocked.is_set() and self._file.tell() + max(size, 0) >= self.at:
            self.blocked.set()
            time.sleep(self.hold)
        return self._file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def test_a_stalled_screen_pauses_the_room_and_a_late_joiner_starts_at_the_rooms_position(
        server: ServerProcess, clip: Path, tmp_path: Path) -> None:
    room = create_room(server, "watch-stall")["name"]
    tv = start_tv(server, room, tmp_path / "tv", "tv")
    late: TvProcess | None = None
    size = clip.stat().st_size
    slow = SlowFile(clip, at=size // 3, hold=5.0)  # about 10 s into the 30 s clip
    seen: list[tuple[float, Any]] = []

    async def slow_screen() -> None:
        token = server.token(room, "slowpoke")["access_token"]
        sdk = await Room.connect(server.url, token)
        sdk.on(ev.PlaybackChanged, lambda e: seen.append((time.time(), e.state)))
        player = ContentPlayer(server_now=sdk.clock.now, audio=False,
                               open_media=lambda content: av.open(slow, mode="r"))
        detach = attach(sdk, player)
        stop = time.monotonic() + 22
        while time.monotonic() < stop:  # a screen: asks for the frame due, 30 times a second
            now = sdk.clock.now()
            if now is not None:
                player.video_frame(now)
            await asyncio.sleep(1 / 30)
        detach()
        player.close()
        await sdk.disconnect()

    try:
        tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=30, what="the room")
        runner = threading.Thread(target=lambda: asyncio.run(slow_screen()), daemon=True)
        runner.start()
        time.sleep(2.0)
        command(server, room, action="load", content=str(clip))
        assert slow.blocked.wait(20), "the slow screen never reached the stalling part of the file"
        # Its buffer (about a second) runs dry, it reports the stall, and the room waits for it.
        deadline = time.monotonic() + 3.0
        while (state := server.http.get(f"/v1/rooms/{room}/playback").json())["waiting_for"] != ["slowpoke"]:
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        time.sleep(1.0)
        held = read_flips(tmp_path / "tv" / "trace.jsonl").between(time.time() - 0.8, time.time())
        assert np.nanmax(held.pts) - np.nanmin(held.pts) <= FRAME, "the TV went on while the room waited"
        # A late joiner arrives mid-film and starts where the room is, not at the start.
        late = start_tv(server, room, tmp_path / "late", "late")
        runner.join(30)
        assert not runner.is_alive()
        resumed = [s for t, s in seen if not s.waiting_for and s.playing and s.position > 5]
        assert resumed, seen  # the room went on once the slow screen had buffered again
        wait_content(late)
        time.sleep(2.0)
        screens = {"tv": read_flips(tmp_path / "tv" / "trace.jsonl"),
                   "late": read_flips(tmp_path / "late" / "trace.jsonl")}
        first_late = screens["late"].t[np.isfinite(screens["late"].pts)][0]
        assert screens["late"].pts[np.isfinite(screens["late"].pts)][0] > 5.0  # not from 0
        in_sync(screens, first_late + 1.0, time.time())
    finally:
        status = tv.stop()
        if late is not None:
            late.stop()
    assert status == 0, tv.output
