"""The JavaScript SDK in real Chromium against a real core: pages built only on /sdk/tvapp.js (examples/web/, served
from another origin as a developer's page would be) see and hear each other and an SDK bot, and come back after the
core's websocket is cut (resumed: same participant, same peer connection) and after the core restarts (a full
rejoin once the restarted core refuses the resume)."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from web_helpers import PC, Bot, frames_grow, new_room, open_example, refresh_and_join, server_env

from tvapp.client import Room as PyRoom
from tvapp.client import TrackSubscribed
from tvapp.testing.browser import (
    Browser,
    get_stats,
    stats_grow,
    wait_for_js,
    wait_until,
)
from tvapp.testing.server import ServerProcess
from tvapp.testing.tcpproxy import CuttableProxy

pytestmark = pytest.mark.usefixtures("close_pages")


def events(tab: Page) -> list[dict[str, Any]]:
    return tab.evaluate("() => window.example.events")  # type: ignore[no-any-return]


def tile_shows(tab: Page, identity: str) -> bool:
    return bool(tab.evaluate(f"""() => {{ const t = document.querySelector('.tile[data-identity="{identity}"]');
        return Boolean(t && t.querySelector('video').videoWidth > 0
                       && t.querySelector('audio') && t.querySelector('audio').srcObject.getAudioTracks().length); }}"""))


def audio_flows(tab: Page) -> None:
    stats_grow(tab, {"audio": ("inbound", "audio", "totalSamplesReceived")}, pc_expression=PC)


def test_two_example_pages_see_and_hear_each_other_and_a_bot(
        sdk_server: ServerProcess, browser: Browser, example_site: str, bots: Callable[..., Bot]) -> None:
    room, _ = new_room(sdk_server, "sdk")
    bot = bots(sdk_server, room, "bot-1")
    one = open_example(browser, example_site, sdk_server.url, sdk_server.token(room, "page-one")["access_token"])
    two = open_example(browser, example_site, sdk_server.url, sdk_server.token(room, "page-two")["access_token"])
    for tab, others in ((one, ("page-two", "bot-1")), (two, ("page-one", "bot-1"))):
        for identity in others:
            wait_until(functools.partial(tile_shows, tab, identity), 20, message=f"{identity}'s video and audio on a tile")
        audio_flows(tab)
    stats = get_stats(one, PC)
    assert stats["inbound"]["video"]["framesDecoded"] > 0
    # The bot decodes both pages' camera and microphone.
    frames_grow(bot, "page-one")
    frames_grow(bot, "page-two")
    assert browser.errors[one] == [] and browser.errors[two] == []


def test_a_page_on_a_listed_origin_refreshes_its_token_and_joins(
        sdk_server: ServerProcess, browser: Browser, example_site: str) -> None:
    room, _ = new_room(sdk_server, "sdk-cors")
    tab, result = refresh_and_join(browser, example_site, sdk_server, room, "listed")
    assert result == {"rotated": True, "state": "connected", "identity": "listed"}, result
    assert browser.errors[tab] == []


def test_a_page_on_an_unlisted_origin_can_neither_refresh_nor_join(
        sdk_server: ServerProcess, browser: Browser, unlisted_site: str) -> None:
    room, _ = new_room(sdk_server, "sdk-cors")
    tab, result = refresh_and_join(browser, unlisted_site, sdk_server, room, "stranger")
    # The preflight's 403 fails the fetch (a CORS error: no detail reaches the page); the websocket gets 403.
    assert result == {"refresh": "TypeError: Failed to fetch", "join": "closed", "state": "disconnected"}, result
    assert any("CORS" in e for e in browser.errors.pop(tab)), "Chromium reports the CORS refusal"
    assert sdk_server.token(room, "check")  # the core itself is fine


class ProxyThread:
    """A CuttableProxy on its own event loop thread."""

    def __init__(self, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = CuttableProxy(port)
        self.url = asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)

    def cut(self) -> int:
        return asyncio.run_coroutine_threadsafe(self._cut(), self.loop).result(10)

    async def _cut(self) -> int:
        return self.proxy.cut()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_page_resumes_after_the_cores_websocket_is_cut(
        sdk_server: ServerProcess, browser: Browser, example_site: str, bots: Callable[..., Bot]) -> None:
    room, _ = new_room(sdk_server, "sdk-cut")
    bot = bots(sdk_server, room, "bot-1")
    proxy = ProxyThread(int(sdk_server.url.rsplit(":", 1)[1]))
    try:
        tab = open_example(browser, example_site, proxy.url, sdk_server.token(room, "page-cut")["access_token"])
        wait_until(lambda: tile_shows(tab, "bot-1"), 20, message="the bot's tile")
        sid = tab.evaluate("() => window.example.room.localParticipant.sid")
        tab.evaluate(f"() => {{ window.firstPc = {PC}; }}")
        assert proxy.cut() >= 1
        wait_for_js(tab, "() => window.example.events.filter(e => e.name === 'reconnected')",
                    lambda done: len(done) == 1, timeout=20, what="the page to reconnect")
        names = [e["name"] for e in events(tab)]
        assert names.index("reconnecting") < names.index("reconnected")
        reconnected = next(e for e in events(tab) if e["name"] == "reconnected")
        assert reconnected["resumed"] is True and reconnected["reason"] == "signal"
        assert tab.evaluate("() => window.example.room.localParticipant.sid") == sid
        assert tab.evaluate(f"() => window.firstPc === {PC}"), "the resume kept the peer connection"
        assert "disconnected" not in names
        # Media carries on both ways, and the bot never saw the page leave.
        audio_flows(tab)
        frames_grow(bot, "page-cut")
        assert sid in {p.sid for p in bot.room.participants.values()}
    finally:
        proxy.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_page_rejoins_after_the_core_restarts(tmp_path: Path, browser: Browser, example_site: str) -> None:
    port = _free_port()
    first = ServerProcess(tmp_path, env=server_env(example_site), port=port).start()
    second: ServerProcess | None = None
    try:
        room, _ = new_room(first, "sdk-restart")
        token = first.token(room, "page-restart")["access_token"]
        tab = open_example(browser, example_site, first.url, token)
        sid = tab.evaluate("() => window.example.room.localParticipant.sid")
        first.stop()
        wait_for_js(tab, "() => window.example.room.state", lambda s: s == "reconnecting", what="reconnecting")
        second = ServerProcess(tmp_path, env=server_env(example_site), port=port).start()
        wait_for_js(tab, "() => window.example.events.filter(e => e.name === 'reconnected')",
                    lambda done: len(done) == 1, timeout=40, what="the page to rejoin the restarted core")
        reconnected = next(e for e in events(tab) if e["name"] == "reconnected")
        assert reconnected["resumed"] is False  # the restarted core did not know the participant: a full rejoin
        assert tab.evaluate("() => window.example.room.localParticipant.sid") != sid
        # Its tracks are published again under new sids, and the core lists it in the room.
        wait_for_js(tab, "() => Array.from(window.example.room.localParticipant.tracks.values()).map(t => t.sid)",
                    lambda sids: len(sids) == 2 and all(sids), what="tracks republished")
        listed = second.http.get(f"/v1/rooms/{room}/participants").json()
        assert [p["identity"] for p in listed] == ["page-restart"]
        wait_for_js(tab, f"() => {PC}.connectionState", lambda s: s == "connected", timeout=20,
                    what="a new peer connection")
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_a_media_restart_gives_a_fresh_peer_connection_with_the_same_track_sids(
        sdk_server: ServerProcess, browser: Browser, example_site: str, bots: Callable[..., Bot]) -> None:
    room, _ = new_room(sdk_server, "sdk-media")
    bot = bots(sdk_server, room, "bot-1")
    tab = open_example(browser, example_site, sdk_server.url, sdk_server.token(room, "page-media")["access_token"])
    wait_until(lambda: tile_shows(tab, "bot-1"), 20, message="the bot's tile")
    sids = tab.evaluate("() => Array.from(window.example.room.localParticipant.tracks.values()).map(t => t.sid)")
    tab.evaluate(f"() => {{ window.firstPc = {PC}; window.example.room.restartMedia(); }}")
    wait_for_js(tab, "() => window.example.events.filter(e => e.name === 'reconnected')",
                lambda done: [(e["reason"], e["resumed"]) for e in done] == [("media", True)], timeout=20,
                what="the media to come back")
    assert tab.evaluate(f"() => window.firstPc !== {PC} && window.firstPc.connectionState === 'closed'")
    assert tab.evaluate("() => window.example.room.generation") == 1
    assert tab.evaluate("() => Array.from(window.example.room.localParticipant.tracks.values()).map(t => t.sid)") == sids
    wait_for_js(tab, f"() => {PC}.connectionState", lambda s: s == "connected", timeout=20, what="the new pc")
    stats_grow(tab, {"video": ("inbound", "video", "framesDecoded")}, pc_expression=PC)
    wait_until(lambda: tile_shows(tab, "bot-1"), 20, message="the bot's tile on the new peer connection")
    frames_grow(bot, "page-media")


def test_a_screen_share_from_a_page_reaches_a_python_subscriber(
        sdk_server: ServerProcess, browser: Browser, example_site: str, bots: Callable[..., Bot]) -> None:
    room, _ = new_room(sdk_server, "sdk-screen")
    bot = bots(sdk_server, room, "bot-1", publish=False)
    screens: dict[str, Any] = {"frames": 0, "width": 0}

    async def count(track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:  # noqa: BLE001 - the track ended (MediaStreamError) or the room closed
                return
            screens["frames"] += 1
            screens["width"] = frame.width

    def on_track(event: TrackSubscribed) -> None:
        # A task per screen track: the room's handlers run one after the other, so none may loop forever.
        if event.publication.source == "screen":
            asyncio.ensure_future(count(event.track))

    async def watcher() -> PyRoom:
        watching = await PyRoom.connect(sdk_server.url, sdk_server.token(room, "watcher")["access_token"],
                                        host_addresses=["127.0.0.1"])
        watching.on(TrackSubscribed, on_track)
        return watching

    python_room = bot.call(watcher())
    tab = open_example(browser, example_site, sdk_server.url, sdk_server.token(room, "sharer")["access_token"])
    tab.click("#share")  # getDisplayMedia needs a user gesture
    wait_for_js(tab, "() => (window.example.room.localParticipant.tracks.get('screen') || {}).sid", timeout=15,
                what="the screen track published")
    wait_until(lambda: screens["frames"] >= 10, 20, message=lambda: f"the Python SDK to decode the screen ({screens})")
    assert screens["width"] > 0
    sharer = next(p for p in python_room.participants.values() if p.identity == "sharer")
    assert sorted(t.source for t in sharer.tracks.values()) == ["camera", "microphone", "screen"]
    # Stopping the share unpublishes the track (the camera stays).
    tab.click("#share")
    wait_until(lambda: sorted(t.source for t in sharer.tracks.values()) == ["camera", "microphone"], 10,
               message="the screen track unpublished")
    bot.call(python_room.disconnect())
