"""A real `tvapp tv` (pygame on SDL dummy, 1280x720) in a 3x2 grid with five Python SDK publishers sending a
1280x720 synthetic camera: the TV tells the server its tile sizes (track_settings), the publishers scale down to
them (publish_constraints), and the sizes the TV decodes are read from its flip trace (each presented frame's
width and height). A switch to the speaker view through the paired remote control brings the big tile's video to
its larger size within a second, measured from the flip that first showed the new layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from tvapp.client import Room
from tvapp.client.remote_link import RemoteLink, confirm_pairing, request_pairing
from tvapp.client.sources import TestPatternTrack
from tvapp.protocol import remote_messages as rp
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import TvProcess
from tvapp.testing.waiting import wait_until

T = TypeVar("T")
LOOPBACK = ["127.0.0.1"]


class LoopThread:
    """An asyncio loop on its own thread, so the SDK rooms keep sending while the test waits on the TV."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop).result(timeout + 5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def flips(trace: Path) -> list[dict[str, Any]]:
    if not trace.exists():
        return []
    lines = trace.read_text().splitlines()
    return [json.loads(line) for line in lines[:-1] if line]  # the last line may be half written


def test_a_tv_grid_receives_each_publisher_at_its_tile_size_and_the_speaker_tile_grows_within_a_second(
        media_server: ServerProcess, tmp_path: Path) -> None:
    room = "adaptive-tv-room"
    assert media_server.http.post("/v1/rooms", json={"name": room}).status_code == 201
    code = media_server.http.post(f"/v1/rooms/{room}/invites", json={}).json()["code"]
    loop = LoopThread()
    publishers: list[Room] = []
    trace = tmp_path / "trace.jsonl"
    tv = TvProcess(tmp_path, ["--server", media_server.url, "--invite", code, "--name", "Den TV", "--data",
                              str(tmp_path / "data"), "--no-audio", "--layout", "grid", "--trace", str(trace)],
                   size="1280x720")
    try:
        async def publish(identity: str) -> Room:
            pair = media_server.token(room, identity)
            # Publishers only (they would otherwise receive each other at full size: they say no track_settings).
            joined = await Room.connect(media_server.url, pair["access_token"], host_addresses=LOOPBACK,
                                        auto_subscribe=False)
            await joined.local_participant.publish_track(TestPatternTrack(1280, 720, 15), source="camera")
            return joined

        for identity in ("ann", "ben", "cat", "dan", "eve"):
            publishers.append(loop.run(publish(identity)))
        _, sidecar = tv.wait_for(lambda s: sum(1 for t in s["tiles"] if t.get("identity")) == 5, timeout=60,
                                 what="five tiles")
        tiles = {t["identity"]: t for t in sidecar["tiles"]}
        assert sidecar["mode"] == "grid" and len({tuple(t["rect"][2:]) for t in tiles.values()}) == 1
        tile_w, tile_h = next(iter(tiles.values()))["rect"][2:]
        assert tile_w < 640 and tile_h < 360  # a 3x2 grid on a 1280x720 screen

        def latest_sizes() -> dict[str, tuple[int, int]]:
            sizes = {}
            for event in flips(trace):
                if event.get("event") == "flip" and event.get("width"):
                    sizes[event["identity"]] = (event["width"], event["height"])
            return sizes

        wait_until(lambda: len(latest_sizes()) == 5 and all(w <= tile_w and h <= tile_h
                                                             for w, h in latest_sizes().values()),
                   timeout=30, interval=0.1, what=f"all five decoded within their {tile_w}x{tile_h} tiles")
        settled = len(flips(trace))
        wait_until(lambda: sum(1 for e in flips(trace)[settled:] if e.get("event") == "flip") >= 50,
                   timeout=30, interval=0.1, what="50 more frames")
        later = [e for e in flips(trace)[settled:] if e.get("event") == "flip" and e.get("width")]
        assert all(e["width"] <= tile_w and e["height"] <= tile_h for e in later), later
        assert all(p.local_participant.publication("camera").constraints.max_width <= tile_w  # type: ignore[union-attr, operator]
                   for p in publishers)

        # The speaker view through the remote control, paired with the code on the TV's screen.
        url = tv.remote_url()
        started = loop.run(request_pairing(url, "Test phone"))
        _, shot = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code")
        answer = loop.run(confirm_pairing(url, started.pairing_id, code=shot["pairing"]["code"].replace(" ", ""),
                                          name="Test phone"))
        link = loop.run(RemoteLink.connect(url, answer.credential))
        switch_at = len(flips(trace))
        result = loop.run(link.command(rp.SetLayout(layout="speaker")))
        assert result.ok, result.error
        _, speaker = tv.wait_for(lambda s: s["mode"] == "speaker" and len(s["tiles"]) == 5, timeout=10,
                                 what="the speaker view")
        big = max(speaker["tiles"], key=lambda t: t["rect"][2] * t["rect"][3])
        big_w, big_h = big["rect"][2:]
        assert big_w > 2 * tile_w

        def grown() -> tuple[float, float] | None:
            events = flips(trace)[switch_at:]
            shown = next((e["t"] for e in events if e.get("event") == "layout" and e.get("mode") == "speaker"), None)
            first = next((e["t"] for e in events if e.get("event") == "flip" and e.get("identity") == big["identity"]
                          and (e.get("width") or 0) > tile_w), None)
            return (shown, first) if shown is not None and first is not None else None

        shown_at, big_at = wait_until(grown, timeout=10, interval=0.05, what="the big tile's video at a larger size")
        assert big_at - shown_at < 1.0, (shown_at, big_at)
        last_big = [e for e in flips(trace)[switch_at:] if e.get("event") == "flip"
                    and e.get("identity") == big["identity"] and e.get("width")][-1]
        assert tile_w < last_big["width"] <= big_w and last_big["height"] <= big_h
        loop.run(link.close())
    finally:
        for publisher in publishers:
            with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                loop.run(publisher.disconnect(), timeout=10)
        loop.close()
        assert tv.stop() == 0, tv.output
