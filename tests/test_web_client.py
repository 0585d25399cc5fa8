"""The phone web client at / in real Chromium against a real server: load, invite codes, join, controls, leave.

Media (seeing and hearing others) needs the SFU and lives in tests/test_web_media.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page
from web_helpers import SignalPeer, new_room, participants

from tvapp.testing.browser import Browser, app_state, wait_for_js, wait_for_state, wait_until
from tvapp.testing.server import ServerProcess

# Pings every second against a 4 s idle timeout: a page that does not ping is dropped within the test.
SERVER_ENV = {"TVAPP_SIGNAL_PING_INTERVAL": "1", "TVAPP_SIGNAL_IDLE_TIMEOUT": "4",
              "TVAPP_INVITES_REDEEM_FAILURES": "1000"}


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("web-server"), env=SERVER_ENV) as srv:
        yield srv


pytestmark = pytest.mark.usefixtures("close_pages")


def error_shown(page: Page) -> dict[str, Any]:
    """Return the visible error box's code and text ({} when hidden)."""
    shown: dict[str, Any] = page.evaluate("""() => { const e = document.getElementById('error');
        return e.hidden ? {} : {code: e.dataset.code, text: e.textContent}; }""")
    return shown


def enter_code(page: Page, code: str, name: str) -> None:
    page.fill("#code", code)
    page.fill("#name", name)
    page.click("#continue")


def join_through_ui(page: Page, code: str, name: str) -> dict[str, Any]:
    """Go from the start screen to joined; return the debug state."""
    enter_code(page, code, name)
    wait_for_state(page, "preview")
    wait_for_js(page, "() => document.getElementById('preview').videoWidth", what="the camera preview")
    page.click("#join")
    wait_for_state(page, "joined")
    wait_for_js(page, "() => window.tvapp.localTracks",
                lambda tracks: len(tracks) == 2 and all(t["sid"] for t in tracks), what="both local tracks published")
    return app_state(page)


def visible(page: Page, selector: str) -> bool:
    return page.is_visible(selector)


# --- serving the page ---------------------------------------------------------------------------------------


def test_page_is_served_with_a_strict_content_security_policy(web_server: ServerProcess) -> None:
    response = httpx.get(web_server.url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    host = web_server.url.removeprefix("http://")
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    # http(s): hls.js fetches a live stream's playlist and segments from wherever the room's content is.
    assert directives["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}", "http:", "https:"]
    assert directives["object-src"] == ["'none'"]
    assert "unsafe" not in csp
    html = response.text
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert not re.search(r"\sstyle=", html), "inline style"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "something fetched from elsewhere"
    for asset in re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", html):
        assert httpx.get(web_server.url + asset).status_code == 200, asset


def test_static_files_keep_the_host_guard_and_answer_json_errors(web_server: ServerProcess) -> None:
    js = httpx.get(web_server.url + "/static/app.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    missing = httpx.get(web_server.url + "/static/nothing-here.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    escaped = httpx.get(web_server.url + "/static/%2e%2e/app.py")
    assert escaped.status_code == 404
    assert "create_app" not in escaped.text
    for path in ("/", "/static/app.js"):
        rebound = httpx.get(web_server.url + path, headers={"Host": "attacker.example"})
        assert rebound.status_code == 400
        assert rebound.json()["error"]["code"] == "bad_host"


def test_page_loads_with_no_console_errors_and_enforces_its_csp(web_server: ServerProcess, browser: Browser) -> None:
    tab = browser.open(web_server.url)
    assert tab.title().startswith("tvapp")
    assert visible(tab, "#code") and visible(tab, "#name") and visible(tab, "#continue")
    assert not visible(tab, "#call-screen")
    assert app_state(tab)["state"] == "idle"
    time.sleep(0.5)
    assert browser.errors[tab] == []
    # The CSP is in force: an injected inline script does not run.
    tab.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.injected = true'; document.body.append(s); }""")
    assert tab.evaluate("() => window.injected === undefined")
    wait_until(lambda: any("Content Security Policy" in e for e in browser.errors[tab]), 5,
               message="a CSP violation report")


# --- invite codes -------------------------------------------------------------------------------------------


def test_wrong_invite_codes_show_clear_errors(web_server: ServerProcess, browser: Browser) -> None:
    tab = browser.open(web_server.url)
    redeems: list[str] = []
    tab.on("request", lambda request: redeems.append(request.url) if "/redeem" in request.url else None)

    enter_code(tab, "hello", "Alice")
    assert error_shown(tab)["code"] == "bad_code"
    assert "8 letters" in error_shown(tab)["text"]

    enter_code(tab, "2345-6789", "")
    assert error_shown(tab)["code"] == "no_name"
    assert redeems == [], "malformed input never reaches the server"

    enter_code(tab, "2345-6789", "Alice")
    wait_until(lambda: error_shown(tab).get("code") == "invite_not_found", 10, message="invite_not_found")
    assert "No room has that invite code" in error_shown(tab)["text"]
    assert len(redeems) == 1 and redeems[0].endswith("/v1/invites/23456789/redeem")
    assert app_state(tab)["state"] == "idle"
    assert visible(tab, "#start-screen") and not visible(tab, "#preview-screen")


def test_a_used_up_invite_code_says_so(web_server: ServerProcess, browser: Browser) -> None:
    room, _ = new_room(web_server)
    code = web_server.http.post(f"/v1/rooms/{room}/invites", json={"max_uses": 1}).json()["code"]
    first = browser.open(web_server.url)
    enter_code(first, code, "Alice")
    wait_for_state(first, "preview")
    second = browser.open(web_server.url)
    enter_code(second, code, "Bob")
    wait_until(lambda: error_shown(second).get("code") == "invite_used_up", 10, message="invite_used_up")
    assert "used up" in error_shown(second)["text"]


# --- joining and leaving ------------------------------------------------------------------------------------


def test_right_code_shows_the_preview_joins_and_leave_removes_the_participant(
        web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server)
    tab = browser.open(web_server.url)
    typed = " " + code.lower().replace("-", "") + " "  # case, dashes and spaces do not matter
    state = join_through_ui(tab, typed, "Alice Example")
    assert visible(tab, "#call-screen") and not visible(tab, "#start-screen")
    assert state["room"]["name"] == room

    listed = participants(web_server, room)
    assert [(p["identity"], p["name"]) for p in listed] == [(state["identity"], "Alice Example")]
    published = {(t["kind"], t["source"], t["sid"], t["muted"]) for t in listed[0]["tracks"]}
    local = {(t["kind"], t["source"], t["sid"], t["muted"]) for t in state["localTracks"]}
    assert published == local == {("audio", "microphone", published_sid(listed, "audio"), False),
                                  ("video", "camera", published_sid(listed, "video"), False)}
    assert tab.evaluate("() => document.getElementById('self-video').videoWidth") > 0

    tab.click("#leave")
    wait_for_state(tab, "left")
    wait_until(lambda: participants(web_server, room) == [], 10, message="the participant to be gone")
    assert tab.evaluate("() => window.tvapp.pc.connectionState") == "closed"
    assert tab.evaluate("() => document.getElementById('status').textContent") == "You left the room."
    sessions = web_server.http.get(f"/v1/rooms/{room}/sessions").json()
    assert [s["leave_reason"] for s in sessions] == ["left"]
    assert browser.errors[tab] == []


def published_sid(listed: list[dict[str, Any]], kind: str) -> str:
    return str(next(t["sid"] for t in listed[0]["tracks"] if t["kind"] == kind))


def test_pings_keep_the_page_in_the_room_past_the_idle_timeout(web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server)
    tab = browser.open(web_server.url, code=code, name="Pinger", autojoin="1")
    wait_for_state(tab, "joined")
    time.sleep(float(SERVER_ENV["TVAPP_SIGNAL_IDLE_TIMEOUT"]) * 1.5)
    assert app_state(tab)["state"] == "joined"
    assert [p["name"] for p in participants(web_server, room)] == ["Pinger"]


def test_autojoin_shows_other_participants_with_their_names_and_mute_state(
        web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server)
    with SignalPeer(web_server, room, "early-bird", "Early Bird") as early:
        mic = early.publish("mic", "audio", "microphone")
        tab = browser.open(web_server.url, code=code, name="Carol", autojoin="1")
        wait_for_state(tab, "joined")
        tile = '#grid .tile[data-identity="early-bird"]'
        tab.wait_for_selector(tile, timeout=10_000)
        assert tab.inner_text(f"{tile} .name") == "Early Bird"
        assert not has_class(tab, tile, "mic-off")

        early.send({"type": "mute", "track_sid": mic, "muted": True})
        wait_until(lambda: has_class(tab, tile, "mic-off"), 10, message="the tile to show the muted mic")

        with SignalPeer(web_server, room, "late-comer", "Late Comer"):
            late = '#grid .tile[data-identity="late-comer"]'
            tab.wait_for_selector(late, timeout=10_000)
            assert tab.inner_text(f"{late} .name") == "Late Comer"
            assert tab.inner_text("#call-count") == "3 in the room"
        tab.wait_for_selector(late, state="detached", timeout=10_000)
        assert tab.inner_text("#call-count") == "2 in the room"
    tab.wait_for_selector(tile, state="detached", timeout=10_000)
    assert visible(tab, "#alone")
    assert browser.errors[tab] == []


def has_class(page: Page, selector: str, name: str) -> bool:
    return bool(page.evaluate("([s, c]) => document.querySelector(s).classList.contains(c)", [selector, name]))


def test_mute_and_camera_buttons_mute_the_published_tracks(web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server)
    tab = browser.open(web_server.url, code=code, name="Dana", autojoin="1")
    wait_for_state(tab, "joined")
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: len(ts) == 2 and all(t["sid"] for t in ts))

    def server_muted() -> dict[str, bool]:
        return {t["source"]: t["muted"] for t in participants(web_server, room)[0]["tracks"]}

    def local() -> dict[str, tuple[bool, bool]]:
        return {t["source"]: (t["muted"], t["enabled"]) for t in app_state(tab)["localTracks"]}

    tab.click("#mic")
    wait_until(lambda: server_muted() == {"microphone": True, "camera": False}, 10, message="mic muted on the server")
    assert local() == {"microphone": (True, False), "camera": (False, True)}
    assert tab.get_attribute("#mic", "aria-pressed") == "true"
    assert tab.inner_text("#mic") == "Unmute"

    tab.click("#cam")
    wait_until(lambda: server_muted() == {"microphone": True, "camera": True}, 10, message="camera off on the server")
    assert local() == {"microphone": (True, False), "camera": (True, False)}
    assert has_class(tab, "#self", "video-off")

    tab.click("#mic")
    tab.click("#cam")
    wait_until(lambda: server_muted() == {"microphone": False, "camera": False}, 10, message="both back on")
    assert local() == {"microphone": (False, True), "camera": (False, True)}

    # A mute by the server (REST) silences the page's microphone and shows on its button.
    identity = app_state(tab)["identity"]
    mic_sid = next(t["sid"] for t in app_state(tab)["localTracks"] if t["source"] == "microphone")
    web_server.http.post(f"/v1/rooms/{room}/participants/{identity}/tracks/{mic_sid}/mute",
                         json={"muted": True}).raise_for_status()
    wait_until(lambda: local()["microphone"] == (True, False), 10, message="the page to obey the server's mute")
    assert tab.inner_text("#mic") == "Unmute"
    assert browser.errors[tab] == []


# --- refusals and endings -----------------------------------------------------------------------------------


def test_a_full_room_refuses_the_join_with_a_clear_message(web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server, max_participants=2)
    with SignalPeer(web_server, room, "one"), SignalPeer(web_server, room, "two"):
        tab = browser.open(web_server.url)
        enter_code(tab, code, "Third")
        wait_for_state(tab, "preview")
        tab.click("#join")
        wait_until(lambda: error_shown(tab).get("code") == "room_full", 10, message="room_full")
        assert error_shown(tab)["text"] == "This room is full."
        assert app_state(tab)["state"] == "preview"
        assert visible(tab, "#join") and tab.is_enabled("#join")
        assert sorted(p["identity"] for p in participants(web_server, room)) == ["one", "two"]


def test_removal_by_the_host_ends_the_call_with_a_message(web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server)
    tab = browser.open(web_server.url, code=code, name="Eve", autojoin="1")
    wait_for_state(tab, "joined")
    identity = app_state(tab)["identity"]
    assert web_server.http.delete(f"/v1/rooms/{room}/participants/{identity}").status_code == 204
    wait_for_state(tab, "ended")
    assert error_shown(tab) == {"code": "removed", "text": "You were removed from this room."}
    assert visible(tab, "#start-screen")
    assert tab.evaluate("() => window.tvapp.pc.connectionState") == "closed"


def test_a_completed_room_ends_the_call_with_a_message(web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server)
    tab = browser.open(web_server.url, code=code, name="Frank", autojoin="1")
    wait_for_state(tab, "joined")
    web_server.http.post(f"/v1/rooms/{room}/complete").raise_for_status()
    wait_for_state(tab, "ended")
    assert error_shown(tab) == {"code": "room_completed", "text": "This room has ended."}


# --- layout -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height", "columns"), [(390, 844, 2), (1280, 800, 3)])
def test_the_call_fits_phone_and_desktop_screens(web_server: ServerProcess, browser: Browser,
                                                  width: int, height: int, columns: int) -> None:
    room, code = new_room(web_server)
    peers = [SignalPeer(web_server, room, f"peer-{i}", f"Peer {i}") for i in range(3)]
    try:
        tab = browser.open(web_server.url, viewport=(width, height), code=code, name="Grace", autojoin="1")
        wait_for_state(tab, "joined")
        wait_until(lambda: tab.locator("#grid .tile").count() == 3, 10, message="three tiles")
        assert tab.evaluate("() => document.documentElement.scrollWidth") <= width
        tiles = [tab.locator("#grid .tile").nth(i).bounding_box() for i in range(3)]
        assert all(box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width for box in tiles)
        top = min(box["y"] for box in tiles if box is not None)
        first_row = [box for box in tiles if box is not None and abs(box["y"] - top) < 1]
        assert len(first_row) == columns
        for button in ("#mic", "#cam", "#leave"):
            box = tab.locator(button).bounding_box()
            assert box is not None and box["y"] + box["height"] <= height and box["height"] >= 44, button
    finally:
        for peer in peers:
            peer.close()


def test_a_participant_whose_connection_drops_shows_reconnecting_until_it_resumes(
        web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server)
    with SignalPeer(web_server, room, "wobbly", "Wobbly") as peer:
        tab = browser.open(web_server.url, code=code, name="Carol", autojoin="1")
        wait_for_state(tab, "joined")
        tile = '#grid .tile[data-identity="wobbly"]'
        tab.wait_for_selector(tile, timeout=10_000)
        assert not tab.is_visible(f"{tile} .state")
        resume_token = peer.joined["resume_token"]
        peer.drop()  # the socket dies without a close frame
        wait_until(lambda: has_class(tab, tile, "reconnecting"), 10, message="the tile to say reconnecting")
        assert tab.is_visible(f"{tile} .state") and tab.inner_text(f"{tile} .state") == "Reconnecting…"
        with SignalPeer(web_server, room, "wobbly", "Wobbly", resume_token=resume_token) as back:
            assert back.sid == peer.sid
            wait_until(lambda: not has_class(tab, tile, "reconnecting"), 10, message="the tile to be itself again")
            assert not tab.is_visible(f"{tile} .state")
    assert browser.errors[tab] == []


class ThreadedProxy:
    """tvapp.testing.tcpproxy.CuttableProxy on its own event loop thread, for a synchronous (Playwright) test."""

    def __init__(self, target_port: int) -> None:
        import asyncio
        import threading

        from tvapp.testing.tcpproxy import CuttableProxy

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = CuttableProxy(target_port)
        self.url = asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)

    def cut(self, refusing: bool) -> None:
        """Abort every connection through it now; refuse new ones while `refusing`."""
        def act() -> None:
            self.proxy.refusing = refusing
            if refusing:
                self.proxy.cut()
        self.loop.call_soon_threadsafe(act)

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.proxy.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_the_phone_resumes_after_its_connection_drops_and_the_others_never_see_it_leave(
        web_server: ServerProcess, browser: Browser) -> None:
    room, code = new_room(web_server)
    proxy = ThreadedProxy(int(web_server.url.rsplit(":", 1)[1]))
    try:
        with SignalPeer(web_server, room, "watcher", "Watcher") as watcher:
            tab = browser.open(proxy.url, code=code, name="Carol", autojoin="1")
            wait_for_state(tab, "joined")
            me = app_state(tab)["self"]
            tab.evaluate("() => { window.firstPc = window.tvapp.pc; }")
            assert not tab.is_visible("#call-state")
            proxy.cut(refusing=True)  # the phone's network goes away: no close frame, no way back for now
            wait_for_state(tab, "reconnecting")
            assert tab.is_visible("#call-state") and tab.inner_text("#call-state") == "Reconnecting…"
            seen = watcher.wait_for("participant_reconnecting")
            assert (seen["participant_sid"], seen["cause"]) == (me["sid"], "signal")
            proxy.cut(refusing=False)
            wait_for_state(tab, "joined", timeout=15)
            watcher.wait_for("participant_reconnected", participant_sid=me["sid"])
            state = app_state(tab)
            assert state["self"]["sid"] == me["sid"] and tab.evaluate("() => window.tvapp.resumes") >= 1
            assert tab.evaluate("() => window.firstPc === window.tvapp.pc")  # the same peer connection
            assert not tab.is_visible("#call-state")
            listed = participants(web_server, room)
            assert [p["sid"] for p in listed if p["identity"] != "watcher"] == [me["sid"]]
            left = [m for m in list(watcher.messages.queue) if m.get("type") == "participant_left"]
            assert left == []
            # Chromium itself logs each websocket attempt the refusing proxy reset; the page logs nothing else.
            refused = re.compile(r"console: WebSocket connection to '\S+/v1/signal' failed: .*ERR_CONNECTION_RESET$")
            assert [e for e in browser.errors[tab] if not refused.match(e)] == []
    finally:
        proxy.close()
