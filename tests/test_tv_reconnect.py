"""The TV shows a participant whose connection dropped as reconnecting: a real `tvapp tv` in a room on a real
server, and an SDK participant reaching the server through a TCP proxy the test cuts (tvapp.testing.tcpproxy).
While the participant cannot get back its tile is dimmed with "Reconnecting…" in yellow across its middle; when it
resumes the tile is itself again, with the same participant sid."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tvapp.client import Room
from tvapp.client.sources import TestPatternTrack
from tvapp.testing.aio import runner
from tvapp.testing.rest import create_room
from tvapp.testing.server import ServerProcess
from tvapp.testing.tcpproxy import CuttableProxy
from tvapp.testing.tv import TvProcess

run = runner(deadline=120)
YELLOW = np.array([232, 204, 60])


def tile_of(sidecar: dict[str, Any], identity: str) -> dict[str, Any] | None:
    return next((t for t in sidecar["tiles"] if t.get("identity") == identity), None)


def yellow_in_middle(pixels: npt.NDArray[np.uint8], rect: list[int]) -> int:
    """Count the "Reconnecting…" yellow pixels in the middle band of a tile (pixels are (height, width, rgb))."""
    x, y, w, h = rect
    band = pixels[y + h * 2 // 5:y + h * 3 // 5, x:x + w].astype(int)
    return int(np.all(np.abs(band - YELLOW) <= 24, axis=2).sum())


def test_a_dropped_participant_s_tile_reads_reconnecting_until_it_resumes(media_server: ServerProcess,
                                                                          tmp_path: Path) -> None:
    room = create_room(media_server)["name"]
    token = media_server.token(room, "the-tv", name="Living room", host=True)["access_token"]
    tv = TvProcess(tmp_path, ["--server", media_server.url, "--token", token, "--no-audio"], size="1280x720")

    async def scenario() -> None:
        proxy = CuttableProxy(int(media_server.url.rsplit(":", 1)[1]))
        url = await proxy.start()
        ann = await Room.connect(url, media_server.token(room, "ann", name="Ann")["access_token"],
                                 host_addresses=["127.0.0.1"])
        source = TestPatternTrack(320, 240, 15)
        await ann.local_participant.publish_track(source)
        pixels, sidecar = await asyncio.to_thread(
            tv.wait_for, lambda s: (t := tile_of(s, "ann")) is not None and t["video_rect"] is not None, 60,
            "Ann's video tile")
        first = tile_of(sidecar, "ann")
        assert first is not None and first["reconnecting"] is False
        assert yellow_in_middle(pixels, first["rect"]) == 0
        sid = ann.local_participant.sid

        proxy.refusing = True
        proxy.cut()
        pixels, sidecar = await asyncio.to_thread(
            tv.wait_for, lambda s: bool((t := tile_of(s, "ann")) and t["reconnecting"]), 20, "Ann reconnecting")
        pixels, sidecar = await asyncio.to_thread(tv.screenshot)  # a frame drawn after the state changed
        tile = tile_of(sidecar, "ann")
        assert tile is not None and tile["reconnecting"]
        assert yellow_in_middle(pixels, tile["rect"]) > 200, "no Reconnecting… text across the tile"
        assert sidecar["tiles"][0]["sid"] == sid  # the same participant: its place is kept

        proxy.refusing = False
        await ann.wait_for("reconnected", timeout=15)
        pixels, sidecar = await asyncio.to_thread(
            tv.wait_for, lambda s: bool((t := tile_of(s, "ann")) and not t["reconnecting"]), 20, "Ann back")
        pixels, sidecar = await asyncio.to_thread(tv.screenshot)
        tile = tile_of(sidecar, "ann")
        assert tile is not None and tile["sid"] == sid
        assert yellow_in_middle(pixels, tile["rect"]) == 0
        await ann.disconnect()
        source.stop()
        await proxy.close()

    try:
        run(scenario())
    finally:
        assert tv.stop() == 0, tv.output
