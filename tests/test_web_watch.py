"""The phone web client watches along (tvapp/server/web/watch.js) in real Chromium against a real core server.

The core serves a test clip from its media folder at /media/ (Range requests, so the browser can seek); the room's
timeline is driven over REST with the API key (`POST /v1/rooms/{room}/playback`), or from the page's own controls.
What the page shows is read from its frame log (requestVideoFrameCallback: which media time was on screen at which
wall-clock instant); the page and the server share this machine's clock, so the log compares directly with the
server's timeline (`PlaybackState.position_at`).
"""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import uvicorn
from playwright.sync_api import Page, Route
from web_helpers import new_room

from tvapp.core.playback import PlaybackState
from tvapp.protocol.messages import PlaybackStateMsg
from tvapp.testing.browser import Browser, wait_for_js, wait_for_state, wait_until
from tvapp.testing.server import ServerProcess

pytestmark = pytest.mark.usefixtures("close_pages")

CLIP_SECONDS = 30
CLIP_FPS = 30
SYNC_TOLERANCE_S = 0.05
SERVER_ENV = {"TVAPP_INVITES_REDEEM_FAILURES": "1000"}


def make_clip(path: Path, seconds: int = CLIP_SECONDS, fps: int = CLIP_FPS) -> Path:
    """Write a small H.264/AAC .mp4 (faststart, a keyframe every second, a 440 Hz tone) and return its path.

    Audio and video are muxed in time order, so the first bytes of the file hold the first seconds of both.
    """
    rate, block = 48000, 1024
    t = np.arange(seconds * rate) / rate
    tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=fps, options={"g": str(fps), "bf": "0", "preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="stereo")
        sample = 0
        for i in range(seconds * fps):
            image = np.zeros((180, 320, 3), np.uint8)
            image[:, :, i // fps % 3] = 160
            image[:, (i % fps) * 320 // fps:][:, :10] = 255  # a bar that sweeps across once a second
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            out.mux(video.encode(frame))
            while sample + block <= min(len(tone), (i + 1) * rate // fps):
                chunk = np.ascontiguousarray(np.stack([tone[sample:sample + block]] * 2))
                samples = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                samples.sample_rate, samples.pts = rate, sample
                out.mux(audio.encode(samples))
                sample += block
        out.mux(video.encode())
        out.mux(audio.encode())
    return path


@pytest.fixture(scope="module")
def watch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A core whose media folder holds clip.mp4."""
    with ServerProcess(tmp_path_factory.mktemp("watch-server"), env=SERVER_ENV) as srv:
        media = srv.data_dir / "media"
        media.mkdir(exist_ok=True)
        make_clip(media / "clip.mp4")
        yield srv


class GatedMedia:
    """Serve one file over HTTP (Range requests) on 127.0.0.1, but hold every byte past `limit` until `open()`."""

    def __init__(self, path: Path, limit: int) -> None:
        self.data = path.read_bytes()
        self.limit = limit
        self.gate = threading.Event()
        self.requests: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/{path.name}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off",
                                                    interface="asgi3"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        size = len(self.data)
        first, last, status = 0, size - 1, 200
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("range", ""))
        if wanted:
            first, status = int(wanted[1]), 206
            last = min(int(wanted[2]), size - 1) if wanted[2] else size - 1
        self.requests.append(headers.get("range", "all"))
        reply = [(b"content-type", b"video/mp4"), (b"accept-ranges", b"bytes"),
                 (b"content-length", str(last - first + 1).encode())]
        if status == 206:
            reply.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": reply})
        offset = first
        while offset <= last:
            while offset >= self.limit and not self.gate.is_set():
                await asyncio.sleep(0.02)
            end = min(last + 1, offset + 16384)
            if offset < self.limit < end:
                end = self.limit
            await send({"type": "http.response.body", "body": self.data[offset:end], "more_body": end <= last})
            offset = end

    def open(self) -> None:
        """Let the rest of the file through."""
        self.gate.set()

    def __enter__(self) -> GatedMedia:
        self.thread.start()
        wait_until(lambda: self.server.started, 10, 0.02, "the media server to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.server.should_exit = True
        self.thread.join(10)


# --- helpers -------------------------------------------------------------------------------------------------


def join_page(browser: Browser, server: ServerProcess, code: str, name: str = "Ann") -> Page:
    page = browser.open(server.url, code=code, name=name, autojoin="1")
    wait_for_state(page, "joined")
    return page


def command(server: ServerProcess, room: str, action: str, **fields: Any) -> PlaybackState:
    """Drive the room's timeline over REST; return the new state."""
    response = server.http.post(f"/v1/rooms/{room}/playback", json={"action": action, **fields})
    assert response.status_code == 200, response.text
    return timeline(response.json())


def timeline(obj: dict[str, Any]) -> PlaybackState:
    return PlaybackStateMsg.from_json(obj).state()


def room_state(server: ServerProcess, room: str) -> PlaybackState:
    response = server.http.get(f"/v1/rooms/{room}/playback")
    assert response.status_code == 200, response.text
    return timeline(response.json())


def page_seq(page: Page) -> int:
    state = page.evaluate("() => window.tvappWatch.state()")
    return int(state["seq"]) if state else -1


def wait_for_page_state(page: Page, state: PlaybackState) -> None:
    wait_for_js(page, "() => window.tvappWatch.state()", lambda s: s is not None and s["seq"] >= state.seq,
                what=f"playback_state seq {state.seq} on the page")


def status(page: Page) -> dict[str, Any]:
    return page.evaluate("() => window.tvappWatch.status()")  # type: ignore[no-any-return]


def frame_errors(page: Page, state: PlaybackState, since: float) -> list[float]:
    """Return, for every frame shown from wall time `since` (s) on, its media time minus the room's timeline then.

    A frame is on screen for 1/fps from its own time on, so its middle is compared (a perfectly synced screen shows
    frames whose pts lie from 1/fps before the timeline up to it).
    """
    frames = page.evaluate("() => window.tvappWatch.frames.slice()")
    half = 0.5 / CLIP_FPS
    return [f["mediaTime"] + half - state.position_at(f["displayWall"] / 1000) for f in frames
            if f["displayWall"] / 1000 >= since]


def assert_in_sync(page: Page, state: PlaybackState, settle: float = 8.0, window: float = 2.0) -> list[float]:
    """Wait up to `settle` s for the page to be on the timeline, then check every frame shown for `window` s.

    A start or seek that lands 50 ms or more off is brought back by playbackRate (at most 5%, proportional to the
    error), which takes a few seconds on a busy machine; `settle` leaves room for that and costs nothing when the page
    is on time at once. A failure prints the page's own steering log (error and rate per 200 ms tick).
    """
    page.bring_to_front()  # headless Chromium presents the frames of the front page only
    deadline = time.time() + settle
    while True:
        start = time.time()
        time.sleep(window)
        errors = frame_errors(page, state, start)
        assert len(errors) >= window * CLIP_FPS * 0.3, f"only {len(errors)} frames shown in {window} s"
        # A frame or two may reach the screen late when this machine is busy: 19 in 20 must be on time.
        p95 = statistics.quantiles([abs(e) for e in errors], n=20)[-1]
        if p95 < SYNC_TOLERANCE_S:
            return errors
        if time.time() > deadline:
            ticks = [{k: round(v, 4) for k, v in tick.items()}
                     for tick in page.evaluate("() => window.tvappWatch.log()")[-25:]]
            summary = {"median": statistics.median(errors), "p95": p95, "worst": max(map(abs, errors)),
                       "status": status(page), "ticks": ticks}
            raise AssertionError(f"not in sync after {settle} s: {json.dumps(summary)}")


def assert_clean(browser: Browser, page: Page) -> None:
    assert browser.errors[page] == [], browser.errors[page]


# --- tests ---------------------------------------------------------------------------------------------------


def test_the_page_estimates_the_server_clock(browser: Browser, watch_server: ServerProcess) -> None:
    _, code = new_room(watch_server, "watch")
    page = join_page(browser, watch_server, code)
    wait_for_js(page, "() => window.tvappWatch.exchanges()", lambda n: n >= 8, timeout=5,
                what="the burst of 8 clock exchanges")
    offset = page.evaluate("() => window.tvappWatch.offset()")
    delay = page.evaluate("() => window.tvappWatch.delay()")
    # Page and server read the same machine's wall clock: the true offset is 0 (give or take the page's timeOrigin).
    assert abs(offset) < 0.005 and 0 <= delay < 0.05, (offset, delay)
    before = time.time()
    server_now = page.evaluate("() => window.tvappWatch.serverNow()")
    assert before - 0.01 < server_now < time.time() + 0.01
    # Steady: about one exchange a second after the burst.
    count = page.evaluate("() => window.tvappWatch.exchanges()")
    time.sleep(2.5)
    assert 1 <= page.evaluate("() => window.tvappWatch.exchanges()") - count <= 4
    assert_clean(browser, page)


def test_the_video_follows_load_play_pause_seek_and_stop(browser: Browser, watch_server: ServerProcess) -> None:
    room, code = new_room(watch_server, "watch")
    page = join_page(browser, watch_server, code)
    assert not page.is_visible("#watch"), "nothing loaded, not a host: no watch area"

    state = command(watch_server, room, "load", content="/media/clip.mp4", title="Test clip", position=2.0)
    wait_for_page_state(page, state)
    assert page.is_visible("#watch-video") and page.text_content("#watch-title") == "Test clip"
    assert not page.is_visible("#watch-controls") and not page.is_visible("#watch-load"), "a guest has no controls"
    assert_in_sync(page, state)
    assert status(page)["muted"] is False, "sound on: this browser allows autoplay"
    # The page told the room how long the clip is.
    wait_until(lambda: room_state(watch_server, room).duration is not None, 5, 0.1, "the duration report")
    assert abs((room_state(watch_server, room).duration or 0) - CLIP_SECONDS) < 0.1

    paused = command(watch_server, room, "pause")
    wait_for_page_state(page, paused)
    wait_for_js(page, "() => window.tvappWatch.status()", lambda s: s["paused"] and s["rate"] == 1, 3,
                "the video to pause")
    time.sleep(0.5)
    assert abs(status(page)["currentTime"] - paused.position) < 0.05
    assert "Paused" in page.text_content("#watch-status")

    moved = command(watch_server, room, "seek", position=20.0)
    wait_for_page_state(page, moved)
    wait_for_js(page, "() => window.tvappWatch.status()",
                lambda s: s["paused"] and abs(s["currentTime"] - 20.0) < 0.05, 3, "the paused video at 20 s")

    resumed = command(watch_server, room, "play")
    wait_for_page_state(page, resumed)
    assert_in_sync(page, resumed)

    back = command(watch_server, room, "seek", position=6.5)
    wait_for_page_state(page, back)
    assert_in_sync(page, back)

    stopped = command(watch_server, room, "stop")
    wait_for_page_state(page, stopped)
    wait_until(lambda: not page.is_visible("#watch"), 3, 0.05, "the watch area to go")
    assert status(page)["src"] is None
    assert_clean(browser, page)


def test_a_late_joiner_starts_at_the_rooms_position(browser: Browser, watch_server: ServerProcess) -> None:
    room, code = new_room(watch_server, "watch")
    first = join_page(browser, watch_server, code, "Ann")
    state = command(watch_server, room, "load", content="/media/clip.mp4", position=10.0)
    time.sleep(2.0)
    late = join_page(browser, watch_server, code, "Bob")
    wait_for_page_state(late, state)
    assert_in_sync(late, state)
    assert_in_sync(first, state, settle=2.0)
    assert_clean(browser, late)


def test_content_only_the_tv_can_open_says_so(browser: Browser, watch_server: ServerProcess) -> None:
    room, code = new_room(watch_server, "watch")
    page = join_page(browser, watch_server, code)
    state = command(watch_server, room, "load", content="/srv/films/film.mkv", title="Film")
    wait_for_page_state(page, state)
    assert page.is_visible("#watch-tv") and page.text_content("#watch-tv") == "Playing on the TV"
    assert not page.is_visible("#watch-video") and status(page)["src"] is None
    # A URL the browser cannot decode falls back to the same note, and never holds the room.
    broken = command(watch_server, room, "load", content=watch_server.url + "/media/missing.mp4")
    wait_for_page_state(page, broken)
    wait_for_js(page, "() => window.tvappWatch.status().unplayable", lambda u: u == "error", 5, "the media error")
    assert "cannot play this video" in page.text_content("#watch-tv")
    time.sleep(0.5)
    assert page.evaluate("() => window.tvappWatch.reports()") == []
    assert room_state(watch_server, room).waiting_for == ()
    assert [e for e in browser.errors[page] if "404" not in e] == []


def test_everyone_may_control_when_the_room_says_so(browser: Browser, watch_server: ServerProcess) -> None:
    room, code = new_room(watch_server, "watch")
    page = join_page(browser, watch_server, code)
    command(watch_server, room, "configure", control="everyone")
    wait_for_js(page, "() => !document.getElementById('watch-load').hidden", what="the load field for everyone")

    page.fill("#watch-url", "/media/clip.mp4")
    page.click("#watch-load-submit")
    wait_until(lambda: room_state(watch_server, room).content == "/media/clip.mp4", 5, 0.05, "the page's load")
    loaded = room_state(watch_server, room)
    assert loaded.playing and loaded.position == 0.0
    wait_for_page_state(page, loaded)
    page.wait_for_selector("#watch-controls", state="visible")
    assert_in_sync(page, loaded)

    page.click("#watch-toggle")
    wait_until(lambda: not room_state(watch_server, room).playing, 5, 0.05, "the page's pause")
    paused = room_state(watch_server, room)
    page.click("#watch-forward")
    wait_until(lambda: room_state(watch_server, room).seq > paused.seq, 5, 0.05, "the page's +10 s")
    assert abs(room_state(watch_server, room).position - (paused.position + 10)) < 0.01
    page.click("#watch-toggle")
    wait_until(lambda: room_state(watch_server, room).playing, 5, 0.05, "the page's play")
    assert_in_sync(page, room_state(watch_server, room))

    # Back to host-only: the guest's controls go, and a command it still sends is refused in words.
    command(watch_server, room, "configure", control="host")
    wait_until(lambda: not page.is_visible("#watch-controls"), 3, 0.05, "the controls to go")
    page.evaluate("() => document.getElementById('watch-stop').click()")
    wait_for_js(page, "() => document.getElementById('error').dataset.code", lambda c: c == "not_allowed",
                what="the not_allowed refusal")
    assert room_state(watch_server, room).content == "/media/clip.mp4"


def test_a_host_gets_the_controls(browser: Browser, watch_server: ServerProcess) -> None:
    room, code = new_room(watch_server, "watch")

    # Invites make guests; a host's token comes from the customer's auth server. Stand in for it here by handing
    # the page a real host token from POST /v1/tokens when it redeems its code.
    def host_token(route: Route) -> None:
        identity = json.loads(route.request.post_data or "{}")["identity"]
        tokens = watch_server.token(room, identity, name="Host", host=True)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(tokens))

    page = browser.new_page()
    page.route("**/v1/invites/*/redeem", host_token)
    page.goto(f"{watch_server.url}/?code={code}&name=Host&autojoin=1", wait_until="load")
    wait_for_state(page, "joined")
    assert status(page)["host"] is True
    page.wait_for_selector("#watch-load", state="visible")
    assert not page.is_visible("#watch-controls"), "nothing to control yet"
    page.fill("#watch-url", "/media/clip.mp4")
    page.click("#watch-load-submit")
    page.wait_for_selector("#watch-controls", state="visible")
    wait_until(lambda: room_state(watch_server, room).playing, 5, 0.05, "the host's load")
    page.click("#watch-toggle")
    wait_until(lambda: not room_state(watch_server, room).playing, 5, 0.05, "the host's pause")
    assert_clean(browser, page)


def test_a_stalled_phone_holds_the_room_until_it_is_ready(browser: Browser, watch_server: ServerProcess) -> None:
    clip = watch_server.data_dir / "media" / "clip.mp4"
    # The bytes of about the first 12 s come at once; the rest waits until the test opens the gate.
    with GatedMedia(clip, limit=clip.stat().st_size * 12 // CLIP_SECONDS) as media:
        room, code = new_room(watch_server, "watch")
        page = join_page(browser, watch_server, code)
        me = page.evaluate("() => window.tvapp.identity")
        state = command(watch_server, room, "load", content=media.url, title="Slow", position=9.0)
        wait_for_page_state(page, state)

        wait_until(lambda: room_state(watch_server, room).waiting_for == (me,), 15, 0.05,
                   "the room to wait for the stalled page")
        stalled = [r for r in page.evaluate("() => window.tvappWatch.reports()") if r.get("stalled")]
        assert len(stalled) == 1 and 10.0 < stalled[0]["position"] < 12.5, stalled
        held = room_state(watch_server, room)
        wait_for_page_state(page, held)
        assert page.text_content("#watch-status") == "Waiting for you…"
        time.sleep(1.0)
        assert room_state(watch_server, room).waiting_for == (me,), "still waiting while the bytes are held"

        media.open()
        wait_until(lambda: room_state(watch_server, room).waiting_for == (), 10, 0.05, "the room to go on")
        resumed = room_state(watch_server, room)
        assert resumed.playing and abs(resumed.position - held.position) < 0.01
        reports = page.evaluate("() => window.tvappWatch.reports()")
        assert [r["stalled"] for r in reports if "duration" not in r] == [True, False]
        wait_for_page_state(page, resumed)
        assert_in_sync(page, resumed)
        assert_clean(browser, page)



# Headless Chromium lets every page autoplay with sound whatever --autoplay-policy says (and counts the page as
# activated from the start); a phone's browser does not. This stands in for the phone's rule: play() with sound is
# refused until the user has touched the page.
PHONE_AUTOPLAY_RULE = """
(() => {
  let touched = false;
  for (const type of ["pointerdown", "keydown"]) {
    window.addEventListener(type, (event) => { if (event.isTrusted) touched = true; }, true);
  }
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    if (!this.muted && !touched) {
      return Promise.reject(new DOMException("play() needs a user gesture", "NotAllowedError"));
    }
    return play.call(this);
  };
})();
"""


def test_refused_autoplay_plays_muted_in_sync_and_a_tap_turns_the_sound_on(
        browser: Browser, watch_server: ServerProcess) -> None:
    room, code = new_room(watch_server, "watch")
    page = browser.new_page()
    page.add_init_script(PHONE_AUTOPLAY_RULE)
    page.goto(f"{watch_server.url}/?code={code}&name=Ann&autojoin=1", wait_until="load")  # nobody touches it
    wait_for_state(page, "joined")
    state = command(watch_server, room, "load", content="/media/clip.mp4")
    wait_for_page_state(page, state)
    page.wait_for_selector("#watch-sound", state="visible")
    assert status(page)["muted"] is True
    assert_in_sync(page, state)

    page.click("#watch-sound")
    wait_until(lambda: not status(page)["muted"] and not status(page)["paused"], 5, 0.05, "the sound to come on")
    assert not page.is_visible("#watch-sound")
    assert_in_sync(page, state)
    assert_clean(browser, page)
