"""The JavaScript SDK (/sdk/tvapp.js) in Debian's firefox-esr (headless, fake camera and microphone, WebDriver BiDi).

The page is examples/web/, built only on the SDK and served from its own origin (a developer's site, listed in the
core's `[server] cors_origins`), as tests/test_web_sdk.py opens it in Chromium. A Firefox SDK page joins, publishes
its camera and microphone (an SDK bot decodes both, at a camera's size and the fake microphone's level) and shows
and plays a bot's video and audio (frames the tile's <video> presents, the level its <audio> plays, read from the
page with tvapp.testing.page_media); a Chromium SDK page and a Firefox SDK page see and hear each other; a Firefox
page on the listed origin refreshes its token (a CORS-preflighted POST) and joins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from web_helpers import PC, Bot, bot_decodes, new_room, open_example, refresh_and_join

from tvapp.testing.browser import Browser, stats_grow, wait_for_js
from tvapp.testing.firefox import Firefox
from tvapp.testing.page_media import wait_for_audible, wait_for_video
from tvapp.testing.server import ServerProcess

DECODES_AUDIO_AND_VIDEO = {"video": ("inbound", "video", "framesDecoded"),
                           "audio": ("inbound", "audio", "totalSamplesReceived")}
# Mark each attached <audio> with its transceiver's mid: page_media reads the level of the inbound stream it names.
_MARK_AUDIO_MIDS = """() => {
  let marked = 0;
  for (const p of window.example.room.participants.values())
    for (const pub of p.tracks.values())
      if (pub.track && pub.kind === "audio")
        for (const el of pub.track.elements) { el.dataset.mid = pub.track.mid; marked += 1; }
  return marked;
}"""


_SWITCH_CAMERA = """async () => {
  const local = window.example.room.localParticipant;
  const before = local.tracks.get("camera").sid;
  const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  const publication = await local.switchDevice("camera", cameras[cameras.length - 1].deviceId);
  return {before, after: publication.sid, live: publication.track.readyState === "live", cameras: cameras.length};
}"""


pytestmark = pytest.mark.usefixtures("close_firefox_pages")


def tile(identity: str, kind: str) -> str:
    return f'.tile[data-identity="{identity}"] {kind}'


def sees_and_hears(page: Any, identity: str, width: int | None = None) -> None:
    """Wait until `page` shows `identity`'s video (presenting frames) and plays its audio above the audible level."""
    wait_for_video(page, tile(identity, "video"), width)
    wait_for_js(page, _MARK_AUDIO_MIDS, lambda marked: marked >= 1, 20, f"{identity}'s audio attached")
    wait_for_audible(page, tile(identity, "audio"), PC)


def test_firefox_sdk_page_publishes_camera_and_mic_and_receives_a_bots_video_and_audio(
        sdk_server: ServerProcess, firefox: Firefox, example_site: str, bots: Callable[..., Bot]) -> None:
    room, _ = new_room(sdk_server, "sdk-firefox")
    bot = bots(sdk_server, room, "bot-1")
    page = open_example(firefox, example_site, sdk_server.url, sdk_server.token(room, "fox")["access_token"])
    sees_and_hears(page, "bot-1", 320)  # the bot's 320x240 test pattern and its 440 Hz tone
    stats_grow(page, DECODES_AUDIO_AND_VIDEO, pc_expression=PC)
    bot_decodes(bot, "fox")  # Firefox's fake camera at a camera's size and its 1 kHz tone, audible
    # A device switch (getUserMedia again, replaceTrack) keeps the publication's sid and the media flowing.
    switched = page.evaluate(_SWITCH_CAMERA)
    assert switched["before"] and switched["after"] == switched["before"] and switched["live"], switched
    bot_decodes(bot, "fox")
    assert firefox.errors[page] == []
    assert not [e for e in page.evaluate("() => window.example.events") if e["name"] == "error"]


def test_a_chromium_sdk_page_and_a_firefox_sdk_page_see_and_hear_each_other(
        sdk_server: ServerProcess, firefox: Firefox, browser: Browser, example_site: str) -> None:
    room, _ = new_room(sdk_server, "sdk-firefox")
    fox = open_example(firefox, example_site, sdk_server.url, sdk_server.token(room, "fox")["access_token"])
    chrome = open_example(browser, example_site, sdk_server.url, sdk_server.token(room, "chrome")["access_token"])
    try:
        sees_and_hears(fox, "chrome")
        sees_and_hears(chrome, "fox")
        assert firefox.errors[fox] == [] and browser.errors[chrome] == []
    finally:
        browser.errors.pop(chrome, None)
        chrome.close()


def test_a_firefox_page_on_a_listed_origin_refreshes_its_token_and_joins(
        sdk_server: ServerProcess, firefox: Firefox, example_site: str) -> None:
    room, _ = new_room(sdk_server, "sdk-firefox")
    page, result = refresh_and_join(firefox, example_site, sdk_server, room, "fox-cors")
    assert result == {"rotated": True, "state": "connected", "identity": "fox-cors"}, result
    assert firefox.errors[page] == []
