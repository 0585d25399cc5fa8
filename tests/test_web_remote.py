"""The TV's Remote page (tvapp/tv/remote/web) in real Chromium against the real TV endpoints served by uvicorn.

A small recording Controller stands in for the TV: it keeps a State, records every command and pushes the new
state after each one; its show_pairing hands the test the code and the QR url the TV would show.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page

from tvapp.protocol.remote_messages import (
    Command,
    ParticipantState,
    Playback,
    PlaybackInfo,
    RemoveParticipant,
    SetCamera,
    SetLayout,
    SetVolume,
    State,
)
from tvapp.testing.browser import Browser, wait_for_js, wait_until
from tvapp.tv.remote.devices import DeviceStore
from tvapp.tv.remote.controller import CommandRefused, PairingView
from tvapp.tv.remote.endpoints import RemoteEndpoints

pytestmark = pytest.mark.usefixtures("close_pages")

TV_NAME = "Living room"


class RecordingController:
    """The TV side of the endpoints: records commands and pairing views, applies a few commands to its state."""

    def __init__(self) -> None:
        self.state = State(tv_name=TV_NAME, status="in_room", room="movie-night", invite_code="ABCD-EFGH",
                           participants=(ParticipantState(sid="PA_1", identity="ann", name="Ann"),
                                         ParticipantState(sid="PA_2", identity="bob", name="Bob")),
                           active_speaker="PA_1", volume=0.5, layout="grid")
        self.commands: list[Command] = []
        self.views: list[PairingView | None] = []
        self.endpoints: RemoteEndpoints | None = None
        self._lock = threading.Lock()

    def tv_state(self) -> State:
        """Return the state as of now."""
        return self.state

    async def execute(self, command: Command) -> None:
        """Record the command; refuse removals (this TV is a guest); apply layout and volume."""
        with self._lock:
            self.commands.append(command)
        if isinstance(command, RemoveParticipant):
            raise CommandRefused("not_host", "only the host can remove participants")
        if isinstance(command, SetLayout):
            self.state = dataclasses.replace(self.state, layout=command.layout)
        elif isinstance(command, SetVolume):
            self.state = dataclasses.replace(self.state, volume=command.volume)
        elif isinstance(command, Playback):
            self.state = dataclasses.replace(self.state, playback=self.played(command))
        elif isinstance(command, SetCamera):
            self.state = dataclasses.replace(self.state, camera="on" if command.enabled else "off")
        assert self.endpoints is not None
        self.endpoints.push_state()

    def played(self, command: Playback) -> PlaybackInfo | None:
        """Return the now-playing object after a playback command (a ten-minute film; refuse without content)."""
        now = self.state.playback
        if command.action == "load":
            assert command.content is not None
            return PlaybackInfo(content=command.content, title=command.title, playing=True, duration=600.0)
        if now is None:
            raise CommandRefused("no_content", "nothing is loaded")
        if command.action == "stop":
            return None
        if command.action == "seek":
            assert command.position is not None
            return dataclasses.replace(now, position=command.position)
        return dataclasses.replace(now, playing=command.action == "play")

    def set_playback(self, playback: PlaybackInfo | None) -> None:
        """Change what plays from the TV's side (as another remote or the room would) and push it."""
        self.state = dataclasses.replace(self.state, playback=playback)
        assert self.endpoints is not None
        self.endpoints.push_state()  # safe from any thread

    def show_pairing(self, view: PairingView | None) -> None:
        """Record what the TV would show."""
        with self._lock:
            self.views.append(view)

    def current_view(self) -> PairingView:
        """Return the pairing view on screen now (fails when none)."""
        with self._lock:
            view = self.views[-1] if self.views else None
        assert view is not None, f"no pairing shown: {self.views}"
        return view

    def recorded(self) -> list[Command]:
        """Return the commands received so far."""
        with self._lock:
            return list(self.commands)


class Tv:
    """The real endpoints app served by uvicorn on 127.0.0.1 (ephemeral port) in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.controller = RecordingController()
        self.devices = DeviceStore(data_dir / "tv.sqlite3")
        self.instance_id = f"test-{data_dir.name}"
        self.endpoints = RemoteEndpoints(controller=self.controller, devices=self.devices, tv_name=TV_NAME,
                                         instance_id=self.instance_id, base_url=self.url)
        self.controller.endpoints = self.endpoints
        config = uvicorn.Config(self.endpoints.app, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self.sock])

    def start(self) -> Tv:
        """Serve until stop()."""
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), 10, 0.02, "uvicorn to start")
        assert self.server.started, "uvicorn stopped before it started"
        return self

    def request_pairing(self) -> PairingView:
        """Ask to pair as another phone would (POST /v1/pairings) and return what the TV shows."""
        response = httpx.post(self.url + "/v1/pairings", json={"name": "Scanner"})
        assert response.status_code == 201, response.text
        return self.controller.current_view()

    def stop(self) -> None:
        """Close every remote websocket, then stop uvicorn."""
        if self.loop is not None and self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.endpoints.close(), self.loop).result(5)
        self.server.should_exit = True
        self.thread.join(10)
        self.devices.close()
        self.sock.close()


@pytest.fixture
def tv(tmp_path: Path) -> Iterator[Tv]:
    served = Tv(tmp_path).start()
    yield served
    served.stop()


# --- page helpers --------------------------------------------------------------------------------------------


def remote_state(page: Page) -> str:
    return str(page.evaluate("() => window.tvappRemote ? window.tvappRemote.state : null"))


def wait_ready(page: Page, timeout: float = 15.0) -> None:
    wait_for_js(page, "() => window.tvappRemote && window.tvappRemote.state", lambda s: s == "ready", timeout,
                "the Remote page to be connected and authenticated")


def shown(page: Page, selector: str) -> dict[str, Any]:
    """Return a message box's code and text ({} when hidden)."""
    box: dict[str, Any] = page.evaluate(
        """(sel) => { const e = document.querySelector(sel);
            return e.hidden ? {} : {code: e.dataset.code, text: e.textContent}; }""", selector)
    return box


def stored_credentials(page: Page) -> dict[str, Any]:
    entries: dict[str, Any] = page.evaluate(
        """() => Object.fromEntries(Object.keys(localStorage).filter((k) => k.startsWith('tvapp.remote.'))
            .map((k) => [k, JSON.parse(localStorage.getItem(k))]))""")
    return entries


def pressed(page: Page, selector: str) -> str | None:
    return page.get_attribute(selector, "aria-pressed")


def assert_clean(browser: Browser, page: Page, refused: tuple[int, ...] = ()) -> None:
    """Assert the page logged no errors beyond Chromium's own line for each expected HTTP refusal status."""
    expected = tuple(f"the server responded with a status of {status}" for status in refused)
    errors = [e for e in browser.errors[page] if not any(text in e for text in expected)]
    assert errors == [], errors


# --- tests ---------------------------------------------------------------------------------------------------


def test_qr_url_pairs_without_typing_and_a_command_reaches_the_tv(browser: Browser, tv: Tv) -> None:
    view = tv.request_pairing()
    assert "#pair=" in view.url and view.url.startswith(tv.url + "/remote")
    page = browser.new_page()
    page.goto(view.url, wait_until="load")
    wait_ready(page)

    assert page.evaluate("() => location.hash") == "", "the pairing secret stays in the address bar"
    secret = view.url.split("#pair=", 1)[1].split(".", 1)[1].split("&", 1)[0]
    assert secret not in page.evaluate("() => location.href + JSON.stringify(history.state)")
    devices = tv.devices.list()
    assert len(devices) == 1
    stored = stored_credentials(page)
    key = f"tvapp.remote.{tv.devices.tv_id()}"  # the lasting id: a restarted TV still knows this phone
    assert list(stored) == [key]
    entry = stored[key]
    assert entry["device_id"] == devices[0].device_id
    assert tv.devices.check(entry["credential"], time.time()) == devices[0].device_id
    assert "credential" not in json.dumps(page.evaluate("() => window.tvappRemote"))
    assert tv.controller.views[-1] is None, "the code and QR left the TV screen once paired"

    # The state pushed after authed is on the page: status line, room, invite code, participants, layout.
    wait_for_js(page, "() => document.getElementById('status').textContent",
                lambda text: TV_NAME in text and "movie-night" in text and "ABCD-EFGH" in text, what="status line")
    assert page.get_attribute("#status", "aria-live") == "polite"
    assert page.locator("#participants li").count() == 2
    assert pressed(page, "#layout-grid") == "true" and pressed(page, "#layout-speaker") == "false"
    assert page.input_value("#volume") == "50"

    page.click("#layout-speaker")
    wait_until(lambda: any(isinstance(c, SetLayout) and c.layout == "speaker" for c in tv.controller.recorded()),
               10, 0.05, "set_layout speaker to reach the controller")
    command = next(c for c in tv.controller.recorded() if isinstance(c, SetLayout))
    assert command.id, "every command carries an id"
    wait_for_js(page, "() => document.getElementById('layout-speaker').getAttribute('aria-pressed')",
                lambda value: value == "true", what="the pushed state to press the speaker layout")
    assert pressed(page, "#layout-grid") == "false"
    assert shown(page, "#layout-msg") == {}

    # A refused command's error shows next to its control; the connection stays.
    page.click("#participants li[data-identity='bob'] button.remove")
    wait_for_js(page, "() => !document.getElementById('people-msg').hidden", what="the refusal message")
    assert shown(page, "#people-msg") == {"code": "not_host", "text": "Only the room's host can do that."}
    assert remote_state(page) == "ready"
    assert_clean(browser, page)


def test_pairing_by_typing_the_code(browser: Browser, tv: Tv) -> None:
    page = browser.new_page()
    page.goto(tv.url + "/remote", wait_until="load")
    wait_for_js(page, "() => window.tvappRemote && window.tvappRemote.state", lambda s: s == "pairing",
                what="the pairing screen")
    assert page.input_value("#pair-name") == "Phone"
    assert page.get_attribute("#pair-code", "inputmode") == "numeric"
    assert page.get_attribute("#pair-code", "autocomplete") == "one-time-code"
    page.fill("#pair-name", "Ann's phone")
    page.click("#pair-request")
    page.wait_for_selector("#pair-code", state="visible")
    view = tv.controller.current_view()
    assert view.requester_name == "Ann's phone"
    page.fill("#pair-code", view.code)
    page.click("#pair-confirm")
    wait_ready(page)

    devices = tv.devices.list()
    assert [d.name for d in devices] == ["Ann's phone"]
    wait_for_js(page, "() => document.querySelector('#devices li .who') && "
                "document.querySelector('#devices li .who').textContent",
                lambda text: text == "Ann's phone (this phone)", what="the paired phones list")
    # A reload reconnects with the stored credential, without pairing again.
    page.reload(wait_until="load")
    wait_ready(page)
    assert len(tv.devices.list()) == 1

    # Forgetting this phone from its own list drops the credential and shows pairing again.
    page.click("#devices li button.forget")
    wait_for_js(page, "() => window.tvappRemote.state", lambda s: s == "pairing", what="pairing after forget")
    assert stored_credentials(page) == {}
    assert tv.devices.list() == []
    assert_clean(browser, page)


def test_wrong_code_shows_a_message_and_backoff_in_words(browser: Browser, tv: Tv) -> None:
    page = browser.new_page()
    page.goto(tv.url + "/remote", wait_until="load")
    page.wait_for_selector("#pair-request", state="visible")
    page.click("#pair-request")
    page.wait_for_selector("#pair-code", state="visible")
    code = tv.controller.current_view().code
    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
    page.fill("#pair-code", wrong)
    page.click("#pair-confirm")
    wait_for_js(page, "() => !document.getElementById('pair-message').hidden", what="the wrong code message")
    assert shown(page, "#pair-message") == {
        "code": "wrong_code", "text": "Wrong code. Check the code on the TV and try again."}

    # Straight away again: the TV asks to wait, and the page says so in words.
    page.click("#pair-confirm", force=True)
    wait_for_js(page, "() => document.getElementById('pair-message').dataset.code",
                lambda c: c == "too_soon", what="the backoff message")
    assert "Wait 1 second" in shown(page, "#pair-message")["text"]
    assert tv.devices.list() == []

    time.sleep(1.2)
    page.fill("#pair-code", tv.controller.current_view().code)
    wait_until(lambda: page.is_enabled("#pair-confirm"), 5, 0.05, "the confirm button to come back")
    page.click("#pair-confirm")
    wait_ready(page)
    assert len(tv.devices.list()) == 1
    assert_clean(browser, page, refused=(400, 429))


def test_controls_are_big_the_volume_slider_sends_and_a_revoked_phone_pairs_again(browser: Browser, tv: Tv) -> None:
    page = browser.new_page()
    page.goto(tv.request_pairing().url, wait_until="load")
    wait_ready(page)

    # One column of touch targets at least 56 px high on a 390 px wide phone.
    boxes = page.evaluate("""() => Array.from(document.querySelectorAll('#remote-screen button'))
        .filter((b) => !b.hidden && b.offsetParent !== null)
        .map((b) => { const r = b.getBoundingClientRect(); return {id: b.id || b.textContent, h: r.height,
                      right: r.right}; })""")
    assert len(boxes) >= 10
    assert all(box["h"] >= 56 for box in boxes), boxes
    assert all(box["right"] <= 390 for box in boxes), boxes
    unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll('input'))
        .filter((i) => !document.querySelector(`label[for="${i.id}"]`)).map((i) => i.id)""")
    assert unlabelled == []

    page.evaluate("""() => { const v = document.getElementById('volume'); v.value = '80';
        v.dispatchEvent(new Event('input')); v.dispatchEvent(new Event('change')); }""")
    wait_until(lambda: any(isinstance(c, SetVolume) and abs(c.volume - 0.8) < 1e-9
                           for c in tv.controller.recorded()), 10, 0.05, "set_volume 0.8 to reach the controller")
    wait_for_js(page, "() => document.getElementById('volume-value').textContent", lambda t: t == "80%")
    assert shown(page, "#volume-msg") == {}

    # The TV forgets this phone behind its back: the next connection is refused and the page offers pairing.
    device = tv.devices.list()[0].device_id
    assert tv.devices.revoke(device, time.time())
    page.reload(wait_until="load")
    wait_for_js(page, "() => window.tvappRemote.state", lambda s: s == "pairing", what="pairing after revocation")
    assert stored_credentials(page) == {}
    assert shown(page, "#error")["code"] == "auth_failed"
    assert page.is_visible("#pair-request")
    assert_clean(browser, page)


def playbacks(tv: Tv) -> list[Playback]:
    return [c for c in tv.controller.recorded() if isinstance(c, Playback)]


def wait_playback(tv: Tv, count: int) -> Playback:
    """Wait until the controller has `count` playback commands; return the last."""
    wait_until(lambda: len(playbacks(tv)) >= count, 10, 0.05, f"{count} playback commands to reach the TV")
    return playbacks(tv)[-1]


def text_of(page: Page, selector: str) -> str:
    return str(page.evaluate("(sel) => document.querySelector(sel).textContent", selector))


def test_now_playing_card_loads_plays_pauses_and_seeks(browser: Browser, tv: Tv) -> None:
    page = browser.new_page()
    page.goto(tv.request_pairing().url, wait_until="load")
    wait_ready(page)
    assert page.is_visible("#playback-none") and not page.is_visible("#playback-now")

    # A relative path never leaves the page: the TV could not know what it is relative to.
    page.fill("#load-content", "film.mp4")
    page.click("#load-submit")
    assert shown(page, "#load-msg")["code"] == "bad_content" and playbacks(tv) == []

    page.fill("#load-content", " http://nas.local:8080/films/Night of the Living Dead.mp4 ")
    page.fill("#load-title", "Night")
    page.click("#load-submit")
    loaded = wait_playback(tv, 1)
    assert (loaded.action, loaded.content, loaded.title, loaded.position) == (
        "load", "http://nas.local:8080/films/Night of the Living Dead.mp4", "Night", None)
    wait_for_js(page, "() => document.getElementById('playback-state').textContent", lambda t: t == "Playing",
                what="the card to say Playing")
    assert text_of(page, "#playback-what") == "Night" and text_of(page, "#playback-toggle") == "Pause"
    assert page.input_value("#load-content") == "" and page.input_value("#load-title") == ""
    # The clock moves on by itself while the room plays: 0:00 / 10:00, then 0:01 / 10:00.
    wait_for_js(page, "() => document.getElementById('playback-clock').textContent",
                lambda t: t == "0:01 / 10:00", timeout=5, what="the clock to tick")
    assert page.get_attribute("#playback-position", "max") == "600"

    page.click("#playback-toggle")
    assert wait_playback(tv, 2).action == "pause"
    wait_for_js(page, "() => document.getElementById('playback-toggle').textContent", lambda t: t == "Play",
                what="the toggle to offer Play")
    assert text_of(page, "#playback-state") == "Paused"

    # The room moved elsewhere (another remote seeked): +10 s and -10 s count from there.
    tv.controller.set_playback(PlaybackInfo(content="/srv/a.mkv", playing=False, position=125.0, duration=600.0))
    wait_for_js(page, "() => document.getElementById('playback-clock').textContent", lambda t: t == "2:05 / 10:00",
                what="the pushed position")
    assert text_of(page, "#playback-what") == "/srv/a.mkv", "no title: the content names itself"
    page.click("#playback-forward")
    assert (wait_playback(tv, 3).action, playbacks(tv)[-1].position) == ("seek", 135.0)
    wait_for_js(page, "() => document.getElementById('playback-clock').textContent", lambda t: t.startswith("2:15"))
    page.click("#playback-back")
    assert wait_playback(tv, 4).position == 125.0
    tv.controller.set_playback(PlaybackInfo(content="/srv/a.mkv", playing=False, position=4.0, duration=600.0))
    wait_for_js(page, "() => document.getElementById('playback-clock').textContent", lambda t: t.startswith("0:04"))
    page.click("#playback-back")
    assert wait_playback(tv, 5).position == 0.0, "never before the start"

    # Dragging the position bar seeks where it is let go.
    page.evaluate("""() => { const bar = document.getElementById('playback-position'); bar.value = '300';
        bar.dispatchEvent(new Event('input')); bar.dispatchEvent(new Event('change')); }""")
    assert wait_playback(tv, 6).position == 300.0

    tv.controller.set_playback(PlaybackInfo(content="/srv/a.mkv", playing=True, waiting=True, position=300.0))
    wait_for_js(page, "() => document.getElementById('playback-state').textContent",
                lambda t: t.startswith("Waiting for a screen"), what="the waiting state")
    assert not page.is_visible("#playback-bar"), "no bar without a known duration"
    time.sleep(1.2)
    assert text_of(page, "#playback-clock") == "5:00", "the clock holds while the room waits"

    # Full screen for the film: the layout the TV calls watch_full.
    page.click("#layout-watch_full")
    wait_for_js(page, "() => document.getElementById('layout-watch_full').getAttribute('aria-pressed')",
                lambda value: value == "true", what="the full-screen layout to be pressed")
    assert pressed(page, "#layout-watch") == "false"

    page.click("#playback-stop")
    assert wait_playback(tv, 7).action == "stop"
    page.wait_for_selector("#playback-none", state="visible")
    assert shown(page, "#playback-msg") == {}
    assert_clean(browser, page)


def test_a_playback_command_the_tv_refuses_says_why(browser: Browser, tv: Tv) -> None:
    page = browser.new_page()
    page.goto(tv.request_pairing().url, wait_until="load")
    wait_ready(page)
    tv.controller.set_playback(PlaybackInfo(content="/srv/a.mkv", playing=True, position=10.0))
    page.wait_for_selector("#playback-toggle", state="visible")
    tv.controller.state = dataclasses.replace(tv.controller.state, playback=None)  # gone, but the page missed it
    page.click("#playback-toggle")
    wait_for_js(page, "() => !document.getElementById('playback-msg').hidden", what="the refusal")
    assert shown(page, "#playback-msg") == {"code": "no_content", "text": "Nothing is loaded. Load a video first."}
    assert remote_state(page) == "ready"
    assert_clean(browser, page)


def test_the_tv_camera_button_follows_the_tv_and_switches_it(browser: Browser, tv: Tv) -> None:
    tv.controller.state = dataclasses.replace(tv.controller.state, camera="on", mic="none")
    page = browser.new_page()
    page.goto(tv.request_pairing().url, wait_until="load")
    wait_ready(page)
    wait_for_js(page, "() => document.getElementById('camera-toggle').textContent",
                lambda text: text == "TV camera off", what="the camera button offering to switch it off")
    assert pressed(page, "#camera-toggle") == "true"
    assert page.locator("#mic-toggle").is_hidden()              # this TV has no microphone
    page.click("#camera-toggle")
    wait_until(lambda: any(isinstance(c, SetCamera) for c in tv.controller.recorded()), 10, 0.05, "set_camera")
    assert [c.enabled for c in tv.controller.recorded() if isinstance(c, SetCamera)] == [False]
    wait_for_js(page, "() => document.getElementById('camera-toggle').getAttribute('aria-pressed')",
                lambda value: value == "false", what="the pushed state to show the camera off")
    assert page.text_content("#camera-toggle") == "TV camera on"
    tv.controller.state = dataclasses.replace(tv.controller.state, camera="on")  # switched on at the TV (key C)
    assert tv.endpoints is not None
    tv.endpoints.push_state()
    wait_for_js(page, "() => document.getElementById('camera-toggle').getAttribute('aria-pressed')",
                lambda value: value == "true", what="the page to follow a switch made at the TV")
    assert_clean(browser, page)


def test_a_live_stream_shows_live_and_the_delay_and_back_to_live(browser: Browser, tv: Tv) -> None:
    page = browser.new_page()
    page.goto(tv.request_pairing().url, wait_until="load")
    wait_ready(page)
    live = "http://cdn.example/live/match.m3u8"
    tv.controller.set_playback(PlaybackInfo(content=live, title="The match", playing=True, position=6.0,
                                            live=True, delay=6.0))
    wait_for_js(page, "() => document.getElementById('playback-clock').textContent",
                lambda t: t == "LIVE · 6 s delay", what="LIVE and the delay")
    assert page.is_visible("#playback-live") and not page.is_visible("#playback-bar")
    time.sleep(1.2)
    assert text_of(page, "#playback-clock") == "LIVE · 6 s delay", "playing live: the distance holds"
    page.click("#playback-back")  # live: back = 10 s further behind the live edge
    seek = wait_playback(tv, 1)
    assert (seek.action, seek.position) == ("seek", 16.0)
    tv.controller.set_playback(PlaybackInfo(content=live, title="The match", playing=False, position=16.0,
                                            live=True, delay=6.0))
    wait_for_js(page, "() => document.getElementById('playback-clock').textContent",
                lambda t: t.startswith("LIVE · 6 s delay · 0:1"), what="how far behind live")
    page.click("#playback-forward")
    assert wait_playback(tv, 2).position >= 6.0, "never past the room's live point"
    page.click("#playback-live")
    assert wait_playback(tv, 3).action == "live"
    assert_clean(browser, page)
