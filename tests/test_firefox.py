"""The phone web client in Debian's firefox-esr (headless, fake camera and microphone), driven over WebDriver BiDi.

Firefox's fake camera is a 640x480 picture of changing colour and its fake microphone a 1 kHz tone; the SDK bot
sends a 320x240 test pattern and a 440 Hz tone. What the page decodes is read from its own elements (tvapp.testing.page_media):
frames presented by the tile's <video> and the level the participant's <audio> element plays.
What Firefox sends is read from what the SDK decodes. The watch-along video (watch.js) is checked with
test_web_watch's clip and sync measure. One Firefox serves the module (it takes seconds to start); each test
closes its pages.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import pytest
from test_web_watch import assert_in_sync, command, status, wait_for_page_state, watch_server  # noqa: F401 (fixture)
from web_helpers import Bot, bot_decodes, new_room

from tvapp.testing.browser import (PHONE_VIEWPORT, Browser, app_state, stats_grow, wait_for_js,
                                   wait_for_state, wait_until)
from tvapp.testing.firefox import Firefox, FirefoxPage
from tvapp.testing.page_media import wait_for_audible, wait_for_video
from tvapp.testing.server import ServerProcess

DECODES_AUDIO_AND_VIDEO = {"video": ("inbound", "video", "framesDecoded"),
                           "audio": ("inbound", "audio", "totalSamplesReceived")}

pytestmark = pytest.mark.usefixtures("close_firefox_pages")


def join_in_firefox(firefox: Firefox, server: ServerProcess, code: str, name: str) -> FirefoxPage:
    page = firefox.open(server.url, code=code, name=name, autojoin="1")
    wait_for_state(page, "joined", 20)
    return page


def png_size(png: bytes) -> tuple[int, int]:
    """Return (width, height) of a PNG image from its IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:8]
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def tile_video(identity: str) -> str:
    return f'#grid .tile[data-identity="{identity}"] video'


def audio_of(participant_sid: str) -> str:
    return f'#audio-sink audio[data-participant="{participant_sid}"]'


def test_firefox_publishes_camera_and_microphone_to_an_sdk_subscriber(
        media_server: ServerProcess, firefox: Firefox, bots: Callable[..., Bot]) -> None:
    room, code = new_room(media_server, "firefox")
    page = join_in_firefox(firefox, media_server, code, "Fox")
    wait_until(lambda: {t["source"] for t in app_state(page)["localTracks"] if t["mid"]} == {"camera", "microphone"},
               15, message="the camera and microphone negotiated")
    state = app_state(page)
    listener = bots(media_server, room, "listener", publish=False)
    bot_decodes(listener, state["identity"])
    assert firefox.errors[page] == [] and app_state(page)["errors"] == []


def test_firefox_receives_a_bots_video_and_audio(media_server: ServerProcess, firefox: Firefox,
                                                 bots: Callable[..., Bot]) -> None:
    room, code = new_room(media_server, "firefox")
    bot = bots(media_server, room, "bot-1")
    page = join_in_firefox(firefox, media_server, code, "Viewer")
    wait_for_video(page, tile_video("bot-1"), 320)
    wait_for_audible(page, audio_of(bot.room.local_participant.sid))
    stats_grow(page, DECODES_AUDIO_AND_VIDEO)
    # The call fits the phone's 390 px: no sideways scrolling, the controls on screen and big enough to tap.
    assert png_size(page.screenshot()) == PHONE_VIEWPORT
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE_VIEWPORT[0]
    for button in ("#mic", "#cam", "#leave"):
        box = page.evaluate(f"() => document.querySelector('{button}').getBoundingClientRect().toJSON()")
        assert box["bottom"] <= PHONE_VIEWPORT[1] and box["right"] <= PHONE_VIEWPORT[0] and box["height"] >= 44, box
    assert firefox.errors[page] == [] and app_state(page)["errors"] == []


def test_a_chromium_page_and_a_firefox_page_see_and_hear_each_other(
        media_server: ServerProcess, firefox: Firefox, browser: Browser) -> None:
    _, code = new_room(media_server, "firefox")
    fox = join_in_firefox(firefox, media_server, code, "Fox")
    chrome = browser.open(media_server.url, code=code, name="Chrome", autojoin="1")
    try:
        wait_for_state(chrome, "joined")
        fox_state, chrome_state = app_state(fox), app_state(chrome)
        wait_for_video(fox, tile_video(chrome_state["identity"]))
        wait_for_video(chrome, tile_video(fox_state["identity"]))
        wait_for_audible(fox, audio_of(chrome_state["self"]["sid"]))
        wait_for_audible(chrome, audio_of(fox_state["self"]["sid"]))
        assert firefox.errors[fox] == [] and browser.errors[chrome] == []
    finally:
        browser.errors.pop(chrome, None)
        chrome.close()


def test_firefox_plays_the_watch_along_video_in_sync_and_follows_a_pause(
        firefox: Firefox, watch_server: ServerProcess) -> None:
    room, code = new_room(watch_server, "firefox-watch")
    page = join_in_firefox(firefox, watch_server, code, "Fox")
    # test_web_watch's helpers are typed for Playwright's Page; they use only methods FirefoxPage has too.
    shared: Any = page
    state = command(watch_server, room, "load", content="/media/clip.mp4", title="Test clip", position=2.0)
    wait_for_page_state(shared, state)
    assert_in_sync(shared, state)  # H.264/AAC; the frames it checks are logged by requestVideoFrameCallback
    assert status(shared)["muted"] is False, "sound on: autoplay is allowed"
    paused = command(watch_server, room, "pause")
    wait_for_page_state(shared, paused)
    wait_for_js(page, "() => window.tvappWatch.status()",
                lambda s: s["paused"] and abs(s["currentTime"] - paused.position) < 0.05, 5, "the video to pause")
    assert firefox.errors[page] == []


class ProxyTrap:
    """A TCP listener standing in for the profile's dead proxy: records the first line of each request it gets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._record, args=(conn,), daemon=True).start()

    def _record(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                self.requests.append(conn.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace"))
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def test_firefox_records_console_errors_keeps_off_the_network_and_quits_without_leaving_processes(
        media_server: ServerProcess) -> None:
    trap = ProxyTrap()
    ff = Firefox(prefs={"network.proxy.http_port": trap.port, "network.proxy.ssl_port": trap.port}).start()
    home = ff.log_path.parent
    group = ff.process.pid if ff.process else 0
    try:
        page = ff.open(media_server.url)
        page.evaluate("() => { console.error('seen by the test'); setTimeout(() => { throw new Error('late'); }); }")
        wait_until(lambda: len(ff.errors[page]) == 2, 10, message=lambda: f"two errors recorded: {ff.errors}")
        assert ff.errors[page][0] == "console: seen by the test"
        assert ff.errors[page][1].startswith("exception: Error: late")
        assert png_size(page.screenshot()) == PHONE_VIEWPORT
        # Anything but loopback goes to the proxy (here the trap; by default a dead port), never out directly.
        # (From a blank tab: the client page's CSP would stop these fetches before the network.)
        ff.new_page().evaluate("""() => { fetch("http://tvapp-outside.example/probe").catch(() => {});
                                 fetch("https://tvapp-outside.example/probe").catch(() => {}); }""")
        wait_until(lambda: {"GET http://tvapp-outside.example/probe HTTP/1.1",
                            "CONNECT tvapp-outside.example:443 HTTP/1.1"} <= set(trap.requests), 10,
                   message=lambda: f"both requests at the proxy: {trap.requests}")
        assert not any(str(media_server.port) in line for line in trap.requests), "loopback goes direct"
    finally:
        ff.close()
        trap.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
    assert not home.exists()
