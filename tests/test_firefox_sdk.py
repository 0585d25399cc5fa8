"""The JavaScript SDK (/sdk/tvapp.js) in Debian's firefox-esr (headless, fake camera and microphone, WebDriver BiDi).

The page is examples/web/, built only on the SDK and served from its own origin (a developer's site, listed in the
core's `[server] cors_origins`), as tests/test_web_sdk.py opens it in Chromium. A Firefox SDK page joins, publishes
its camera and microphone (an SDK bot decodes both, at a camera's size and the fake microphone's level) and shows
and plays a bot's video and audio (frames the tile's <video> presents, the level its <audio> plays, read from the
page with tvapp.testing.page_media); a Chromium SDK page and a Firefox SDK page see and hear each other; a Firefox
page on the listed origin refreshes its token (a CORS-preflighted POST) and joins.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from test_firefox import Bot, bot_decodes
from test_web_sdk import PC, REFRESH_AND_JOIN, example_site, open_example, server_env  # noqa: F401 (a fixture)
from web_helpers import new_room

from tvapp.testing.browser import Browser, stats_grow, wait_for_js
from tvapp.testing.firefox import Firefox, FirefoxPage
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


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory, example_site: str) -> Iterator[ServerProcess]:  # noqa: F811
    with ServerProcess(tmp_path_factory.mktemp("sdk-firefox"), env=server_env(example_site)) as srv:
        yield srv


@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    with Firefox() as ff:
        yield ff


@pytest.fixture
def bots() -> Iterator[list[Bot]]:
    started: list[Bot] = []
    yield started
    for bot in started:
        bot.close()


@pytest.fixture(autouse=True)
def close_firefox_pages(firefox: Firefox) -> Iterator[None]:
    yield
    firefox.close_pages()


def open_example_in_firefox(firefox: Firefox, site: str, core_url: str, token: str) -> FirefoxPage:
    """Open examples/web/ in Firefox joining with `token`; wait until it is connected with camera and mic published."""
    page = firefox.new_page()
    page.goto(f"{site}/#{urlencode({'url': core_url, 'token': token})}")
    assert "token" not in page.url  # the page took the token out of the address bar
    wait_for_js(page, "() => window.example.room && window.example.room.state", lambda s: s == "connected", 20,
                "the example page to connect in Firefox")
    wait_for_js(page, "() => Array.from(window.example.room.localParticipant.tracks.values()).map(t => t.sid)",
                lambda sids: len(sids) == 2 and all(sids), 20, "camera and microphone published from Firefox")
    return page


def tile(identity: str, kind: str) -> str:
    return f'.tile[data-identity="{identity}"] {kind}'


def sees_and_hears(page: Any, identity: str, width: int | None = None) -> None:
    """Wait until `page` shows `identity`'s video (presenting frames) and plays its audio above the audible level."""
    wait_for_video(page, tile(identity, "video"), width)
    wait_for_js(page, _MARK_AUDIO_MIDS, lambda marked: marked >= 1, 20, f"{identity}'s audio attached")
    wait_for_audible(page, tile(identity, "audio"), PC)


def test_firefox_sdk_page_publishes_camera_and_mic_and_receives_a_bots_video_and_audio(
        sdk_server: ServerProcess, firefox: Firefox, example_site: str, bots: list[Bot]) -> None:  # noqa: F811
    room, _ = new_room(sdk_server, "sdk-firefox")
    bots.append(Bot(sdk_server, room, "bot-1"))
    page = open_example_in_firefox(firefox, example_site, sdk_server.url,
                                   sdk_server.token(room, "fox")["access_token"])
    sees_and_hears(page, "bot-1", 320)  # the bot's 320x240 test pattern and its 440 Hz tone
    stats_grow(page, DECODES_AUDIO_AND_VIDEO, pc_expression=PC)
    bot_decodes(bots[0], "fox")  # Firefox's fake camera at a camera's size and its 1 kHz tone, audible
    # A device switch (getUserMedia again, replaceTrack) keeps the publication's sid and the media flowing.
    switched = page.evaluate(_SWITCH_CAMERA)
    assert switched["before"] and switched["after"] == switched["before"] and switched["live"], switched
    bot_decodes(bots[0], "fox")
    assert firefox.errors[page] == []
    assert not [e for e in page.evaluate("() => window.example.events") if e["name"] == "error"]


def test_a_chromium_sdk_page_and_a_firefox_sdk_page_see_and_hear_each_other(
        sdk_server: ServerProcess, firefox: Firefox, browser: Browser, example_site: str) -> None:  # noqa: F811
    room, _ = new_room(sdk_server, "sdk-firefox")
    fox = open_example_in_firefox(firefox, example_site, sdk_server.url, sdk_server.token(room, "fox")["access_token"])
    chrome = open_example(browser, example_site, sdk_server.url, sdk_server.token(room, "chrome")["access_token"])
    try:
        sees_and_hears(fox, "chrome")
        sees_and_hears(chrome, "fox")
        assert firefox.errors[fox] == [] and browser.errors[chrome] == []
    finally:
        browser.errors.pop(chrome, None)
        chrome.close()


def test_a_firefox_page_on_a_listed_origin_refreshes_its_token_and_joins(
        sdk_server: ServerProcess, firefox: Firefox, example_site: str) -> None:  # noqa: F811
    room, _ = new_room(sdk_server, "sdk-firefox")
    pair = sdk_server.token(room, "fox-cors")
    page = firefox.new_page()
    page.goto(example_site + "/")
    result = page.evaluate(REFRESH_AND_JOIN, [sdk_server.url, pair["access_token"], pair["refresh_token"]])
    assert result == {"rotated": True, "state": "connected", "identity": "fox-cors"}, result
    assert firefox.errors[page] == []
