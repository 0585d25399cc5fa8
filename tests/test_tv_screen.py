"""A screen shared from the phone page (real Chromium, fake display capture) on a real TV: a tile of its own.

A real core on 127.0.0.1, a real `tvapp tv` (pygame on SDL dummy, 1280x720, speaker layout, its flip trace) and the
phone page built on tvapp.js in Chromium with `--auto-select-desktop-capture-source`, so #share takes the (fake)
screen without a picker. The TV's screenshot sidecar must show the sharer's camera tile and, beside it, a tile with
source "screen" labelled "NAME's screen", which is the speaker view's big tile (tvapp.core.layout.stage_tile); the
flip trace must show the screen's frames presented in that tile (keyed `<sid>/screen`); the SFU must ask the page
for its screen at that tile's size and its camera at the small tile's (adaptive stream, read over REST); a paired remote
control's status lists the sharer once (the people, not the screens' tiles); when the share stops, the
screen tile goes and the camera tile is the big one again. (That the page's screen track reaches a Python SDK
subscriber is tests/test_web_sdk.py::test_a_screen_share_from_a_page_reaches_a_python_subscriber.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from web_helpers import new_room, participants

from tvapp.client.remote_link import RemoteLink, confirm_pairing, request_pairing
from tvapp.protocol import remote_messages as rp
from tvapp.testing.browser import (
    Browser,
    page_url,
    wait_for_js,
    wait_for_state,
    wait_until,
)
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import TvProcess

pytestmark = pytest.mark.timeout(90)

# getDisplayMedia takes the whole (fake) screen without a picker; fake camera and microphone as in every web test.
FLAGS = ["--auto-select-desktop-capture-source=Entire screen", "--enable-usermedia-screen-capturing"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser(extra_args=FLAGS) as b:
        yield b


def flips(trace: Path) -> list[dict[str, Any]]:
    """Return the flip trace's complete events (the last line may be half written)."""
    if not trace.exists():
        return []
    return [json.loads(line) for line in trace.read_text().splitlines()[:-1] if line]


def area(tile: dict[str, Any]) -> int:
    return int(tile["rect"][2] * tile["rect"][3])


def test_a_screen_shared_from_the_page_is_its_own_tile_and_the_speaker_views_big_tile_on_a_real_tv(
        media_server: ServerProcess, browser: Browser, tmp_path: Path) -> None:
    room, code = new_room(media_server, "tv-screen")
    trace = tmp_path / "trace.jsonl"
    tv = TvProcess(tmp_path, ["--server", media_server.url, "--invite", code, "--name", "Den TV", "--data",
                              str(tmp_path / "data"), "--no-audio", "--layout", "speaker", "--trace", str(trace)],
                   size="1280x720")
    try:
        sharer = browser.new_page()
        sharer.goto(page_url(media_server.url, code=code, name="Sharer", autojoin="1"))
        wait_for_state(sharer, "joined")
        _, shot = tv.wait_for(lambda s: any(t.get("name") == "Sharer" for t in s["tiles"]), timeout=30,
                              what="the sharer's camera tile")
        assert len(shot["tiles"]) == 1  # the camera's tile only

        sharer.click("#share")
        wait_for_js(sharer, "() => window.tvapp.localTracks", lambda ts: any(
            t["source"] == "screen" and t["sid"] for t in ts), timeout=20, what="the screen published")
        _, shot = tv.wait_for(lambda s: len(s["tiles"]) == 2 and s["mode"] == "speaker", timeout=20,
                              what="the camera tile and the screen tile")
        camera, screen = shot["tiles"]
        assert (camera["source"], camera["name"]) == ("camera", "Sharer"), camera
        assert (screen["source"], screen["name"]) == ("screen", "Sharer's screen"), screen
        assert screen["sid"] == f"{camera['sid']}/screen" and screen["identity"] == camera["identity"]
        assert area(screen) > 4 * area(camera), shot["tiles"]  # the speaker view's big tile, the camera below

        def screen_flips() -> list[dict[str, Any]]:
            return [e for e in flips(trace) if e.get("event") == "flip" and e.get("sid") == screen["sid"]]

        wait_until(lambda: len(screen_flips()) >= 10, 20, 0.1, "ten of the screen's frames presented on the TV")
        assert all(e["source"] == "screen" and e["identity"] == camera["identity"] and e["width"]
                   for e in screen_flips())
        assert any(e.get("event") == "flip" and e.get("sid") == camera["sid"] and e.get("source") == "camera"
                   for e in flips(trace))  # the camera still shows in its own tile

        def constraints() -> dict[str, Any]:  # what the SFU asks the page to send, by source (REST)
            tracks = [t for p in participants(media_server, room) if p["identity"] == camera["identity"]
                      for t in p["tracks"] if t["kind"] == "video"]
            return {t["source"]: t["constraints"] or {} for t in tracks}

        def fits(c: dict[str, Any], tile: dict[str, Any]) -> bool:
            return bool(c.get("max_width")) and c["max_width"] <= tile["rect"][2] and c["max_height"] <= tile["rect"][3]

        # Adaptive stream: the TV reports the screen tile's size for the screen track (the big tile: more than the
        # camera's), and the camera's own small tile for the camera.
        wait_until(lambda: fits(constraints().get("screen", {}), screen) and constraints()["screen"]["max_width"] >
                   camera["rect"][2] and fits(constraints().get("camera", {}), camera), 10, 0.1,
                   lambda: f"the screen sent at most at its tile's size {screen['rect']}, the camera at its "
                           f"{camera['rect']}: {constraints()}")

        # The remote control's status lists the people, not their screens' tiles.
        async def remote_status() -> list[str]:
            url = tv.remote_url()
            started = await request_pairing(url, "Test phone")
            _, paired = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code")
            answer = await confirm_pairing(url, started.pairing_id, code=paired["pairing"]["code"].replace(" ", ""),
                                           name="Test phone")
            async with await RemoteLink.connect(url, answer.credential) as link:
                result = await link.command(rp.StatusCommand())
                assert result.ok and link.state is not None, result
                return [p.identity for p in link.state.participants]

        with ThreadPoolExecutor(1) as pool:  # its own loop: Playwright's sync API owns this thread's
            assert pool.submit(asyncio.run, remote_status()).result(60) == [camera["identity"]]

        sharer.click("#share")  # stop: the screen tile goes, the camera tile is the big one again
        _, shot = tv.wait_for(lambda s: [t.get("source") for t in s["tiles"]] == ["camera"], timeout=20,
                              what="the screen tile to go")
        assert shot["tiles"][0]["sid"] == camera["sid"] and area(shot["tiles"][0]) > area(camera)
        assert browser.errors[sharer] == []
    finally:
        assert tv.stop() == 0, tv.output
