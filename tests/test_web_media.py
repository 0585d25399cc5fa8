"""Media through the SFU between the phone web client in real Chromium and the Python SDK (and between two pages).

Chromium sends its fake camera (a test pattern) and fake microphone (a beep); the SDK bot sends a stamped
test pattern and a 440 Hz tone. "Decoded" is read from the page's getStats() (framesDecoded, totalSamplesReceived)
and from the frames the SDK's remote tracks return.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page
from web_helpers import Bot, frames_grow, new_room

from tvapp.testing.browser import Browser, app_state, get_stats, stats_grow, wait_for_js, wait_for_state, wait_until
from tvapp.testing.server import ServerProcess

DECODES_AUDIO_AND_VIDEO = {"video": ("inbound", "video", "framesDecoded"),
                           "audio": ("inbound", "audio", "totalSamplesReceived")}
SENDS_AUDIO_AND_VIDEO = {"video": ("outbound", "video", "framesEncoded"),
                         "audio": ("outbound", "audio", "packets")}

pytestmark = pytest.mark.usefixtures("close_pages")


def join_page(browser: Browser, server: ServerProcess, code: str, name: str) -> Page:
    tab = browser.open(server.url, code=code, name=name, autojoin="1")
    wait_for_state(tab, "joined")
    return tab


def subscribed_to(tab: Page, participant_sid: str) -> set[str]:
    return {s["kind"] for s in app_state(tab)["subscriptions"] if s["participant_sid"] == participant_sid}


def test_page_decodes_an_sdk_bots_video_and_audio(media_server: ServerProcess, browser: Browser,
                                                 bots: Callable[..., Bot]) -> None:
    room, code = new_room(media_server, "media")
    bot = bots(media_server, room, "bot-1")
    tab = join_page(browser, media_server, code, "Viewer")
    wait_until(lambda: subscribed_to(tab, bot.room.local_participant.sid) == {"video", "audio"}, 15,
               message="subscriptions to the bot's camera and microphone")
    stats = stats_grow(tab, DECODES_AUDIO_AND_VIDEO)
    assert stats["inbound"]["video"]["frameWidth"] == 320
    tile = '#grid .tile[data-identity="bot-1"]'
    assert wait_for_js(tab, f"() => document.querySelector('{tile} video').videoWidth") == 320
    assert tab.evaluate("() => document.querySelectorAll('#audio-sink audio').length") == 1
    assert tab.evaluate("() => document.querySelector('#audio-sink audio').srcObject.getAudioTracks().length") == 1
    assert browser.errors[tab] == []
    assert app_state(tab)["errors"] == []


def test_sdk_receives_the_pages_camera_and_microphone(media_server: ServerProcess, browser: Browser,
                                                     bots: Callable[..., Bot]) -> None:
    room, code = new_room(media_server, "media")
    tab = join_page(browser, media_server, code, "Sender")
    identity = app_state(tab)["identity"]
    bot = bots(media_server, room, "bot-2", publish=False)
    frames_grow(bot, identity)
    stats_grow(tab, SENDS_AUDIO_AND_VIDEO)
    published = {t["source"]: t["mid"] for t in app_state(tab)["localTracks"]}
    assert set(published) == {"camera", "microphone"} and all(published.values())

    tab.click("#cam")
    camera_sid = next(t["sid"] for t in app_state(tab)["localTracks"] if t["source"] == "camera")
    wait_until(lambda: (identity, camera_sid) in bot.muted, 10, message="the bot to see the camera muted")


def test_two_pages_see_and_hear_each_other(media_server: ServerProcess, browser: Browser) -> None:
    _, code = new_room(media_server, "media")
    first = join_page(browser, media_server, code, "First")
    second = join_page(browser, media_server, code, "Second")
    for tab, other in ((first, second), (second, first)):
        other_sid = app_state(other)["self"]["sid"]
        wait_until(lambda: subscribed_to(tab, other_sid) == {"video", "audio"}, 15,
                   message="each page subscribed to the other")
    for tab in (first, second):
        stats_grow(tab, DECODES_AUDIO_AND_VIDEO)
        stats_grow(tab, SENDS_AUDIO_AND_VIDEO)


def test_the_active_speaker_is_outlined(media_server: ServerProcess, browser: Browser,
                                        bots: Callable[..., Bot]) -> None:
    room, code = new_room(media_server, "media")
    tab = join_page(browser, media_server, code, "Listener")
    tab.click("#mic")  # only the bot's tone speaks
    bot = bots(media_server, room, "talker")
    bot_sid = bot.room.local_participant.sid
    wait_for_js(tab, "() => window.tvapp.dominantSid", lambda sid: sid == bot_sid, 15, "the bot to be dominant")
    tile = '#grid .tile[data-identity="talker"]'
    wait_until(lambda: tab.evaluate(f"() => document.querySelector('{tile}').classList.contains('speaking')"), 5,
               message="the bot's tile outlined")
    assert not tab.evaluate("() => document.getElementById('self').classList.contains('speaking')")


def test_a_participant_leaving_takes_its_tile_and_audio_away(media_server: ServerProcess, browser: Browser,
                                                            bots: Callable[..., Bot]) -> None:
    room, code = new_room(media_server, "media")
    tab = join_page(browser, media_server, code, "Stayer")
    bot = bots(media_server, room, "leaver")
    bot_sid = bot.room.local_participant.sid
    wait_until(lambda: subscribed_to(tab, bot_sid) == {"video", "audio"}, 15, message="subscribed to the bot")
    stats_grow(tab, DECODES_AUDIO_AND_VIDEO)
    answered = app_state(tab)["offersAnswered"]
    bot.call(bot.room.disconnect())
    tab.wait_for_selector('#grid .tile[data-identity="leaver"]', state="detached", timeout=10_000)
    wait_until(lambda: tab.evaluate("() => document.querySelectorAll('#audio-sink audio').length") == 0, 10,
               message="the bot's audio element removed")
    wait_until(lambda: app_state(tab)["offersAnswered"] > answered and subscribed_to(tab, bot_sid) == set(), 10,
               message="a renegotiation without the bot's tracks")
    assert get_stats(tab)["connectionState"] == "connected"


def test_tiles_show_the_network_quality_bars_and_the_sdk_sees_the_pages_level(
        media_server: ServerProcess, browser: Browser, bots: Callable[..., Bot]) -> None:
    room, code = new_room(media_server, "media")
    tab = join_page(browser, media_server, code, "Viewer")
    bot = bots(media_server, room, "measured")
    bars = '#grid .tile[data-identity="measured"] .quality'
    level = wait_for_js(tab, f"() => document.querySelector('{bars}')?.dataset.level", lambda v: bool(v), 15,
                        "the bot's tile to show a network quality level")
    # On loopback the bot's link is at least fair; exactly `level` of the 5 bars are lit and the label says so.
    assert 3 <= int(level) <= 5, level
    lit = tab.evaluate(f"() => document.querySelectorAll('{bars} i.lit').length")
    total = tab.evaluate(f"() => document.querySelectorAll('{bars} i').length")
    label = tab.evaluate(f"() => document.querySelector('{bars}').getAttribute('aria-label')")
    assert (lit, total) == (int(level), 5) and label.startswith(f"Network quality {level} of 5"), (lit, label)
    # The SFU measures Chromium too: the SDK bot learns the page's level.
    page_sid = app_state(tab)["self"]["sid"]
    wait_until(lambda: bot.room.participants.get(page_sid) is not None
               and bot.room.participants[page_sid].network_quality is not None, 15,
               message="the bot to learn the page's network quality")
    assert 1 <= bot.room.participants[page_sid].network_quality <= 5
    assert browser.errors[tab] == []
