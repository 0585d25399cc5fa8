"""The phone web client plays a live HLS stream in sync (hls.js in Chromium), with real parts.

A real ffmpeg live origin (tvapp.testing.live_origin: each frame stamped with its index, program date-time in the
playlist) behind a local CDN edge, a real core, a host SDK client (tvapp.client.Room, in a thread of its own) that
loads the live URL, and Debian's Chromium on the phone page. The room's position is an instant of the event; the
page maps it to the <video>'s media time through hls.js's fragment program date-times (sdk/livemap.js). Checked:
- the frames the page presents (requestVideoFrameCallback) are on the room's moment within the bounds the file tests
  use (tests/test_web_watch.py: p95 of |error| under 50 ms over 2 s);
- the pixels agree: the frame index stamped in the picture the page draws (canvas) is the frame of the event
  instant the page says it shows, by the origin's own playlist (segment N starts with frame 15 N at its PDT);
- pause, then resume 3 s later (time-shift): the paused video holds the room's moment, then plays in sync again;
  the page's "Live" button then takes the room back to its live point, and the page plays in sync there;
- a stream without program date-time: the room times it by media sequence x target duration, the page's hls.js
  maps fragments the same way (sdk/livemap.js), plays in sync and says "timed by segment numbers".
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page
from web_helpers import new_room

from tvapp.client import Room
from tvapp.core.live import Playlist, parse_playlist
from tvapp.core.playback import PlaybackState
from tvapp.testing.browser import Browser, wait_for_js, wait_for_state, wait_until
from tvapp.testing.clip import read_clip_stamp
from tvapp.testing.live_origin import Edge, LiveOrigin
from tvapp.testing.server import ServerProcess

pytestmark = pytest.mark.usefixtures("close_pages")

FPS = 15
FRAME = 1 / FPS
SYNC_TOLERANCE_S = 0.05  # tests/test_web_watch.py's bound for files


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveOrigin]:
    with LiveOrigin(tmp_path_factory.mktemp("live"), fps=FPS) as made:
        yield made


@pytest.fixture(scope="module", autouse=True)
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveOrigin]:
    """A stream without PROGRAM-DATE-TIME, started with the module (autouse): by the time its test runs it already
    has the seconds of stream that test waits for (that wait was ~6 s of idle suite time)."""
    with LiveOrigin(tmp_path_factory.mktemp("plain"), fps=FPS, pdt=False) as made:
        yield made


@pytest.fixture(scope="module")
def edge(origin: LiveOrigin) -> Iterator[Edge]:
    made = Edge(origin)
    yield made
    made.close()


class Host:
    """A host SDK client running in its own event loop thread (the page side of the test is synchronous)."""

    def __init__(self, server: ServerProcess, room: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="host loop", daemon=True)
        self.thread.start()
        token = server.token(room, "host", host=True)["access_token"]
        self.room: Room = self.run(Room.connect(server.url, token, host_addresses=["127.0.0.1"]))

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 15.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def state(self) -> PlaybackState | None:
        return self.room.playback

    def close(self) -> None:
        try:
            self.run(self.room.disconnect())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def frame_errors(page: Page, state: PlaybackState, since: float) -> list[float]:
    """Return, for every frame shown from wall time `since` on, its event instant (middle) minus the room's then."""
    frames = page.evaluate("() => window.tvappWatch.frames.slice()")
    return [f["position"] + FRAME / 2 - state.position_at(f["displayWall"] / 1000) for f in frames
            if f["displayWall"] / 1000 >= since and f["position"] is not None]


def assert_in_sync(page: Page, state: PlaybackState, settle: float = 15.0, window: float = 2.0) -> None:
    """As tests/test_web_watch.py: within `settle` s, 2 s of presented frames with p95 |error| under 50 ms."""
    page.bring_to_front()
    deadline = time.time() + settle
    while True:
        start = time.time()
        time.sleep(window)
        errors = frame_errors(page, state, start)
        if len(errors) >= window * FPS * 0.5:
            p95 = statistics.quantiles([abs(e) for e in errors], n=20)[-1]
            if p95 < SYNC_TOLERANCE_S:
                return
        else:
            p95 = None
        if time.time() > deadline:
            ticks = page.evaluate("() => window.tvappWatch.log()")[-15:]
            summary = {"frames": len(errors), "p95": p95, "median": statistics.median(errors) if errors else None,
                       "status": page.evaluate("() => window.tvappWatch.status()"), "ticks": ticks}
            raise AssertionError(f"not in sync after {settle} s: {json.dumps(summary, default=str)}")


GRAB = """async () => {
  const video = document.getElementById("watch-video");
  const meta = await new Promise((resolve) => video.requestVideoFrameCallback((now, m) => resolve(m)));
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(video, 0, 0);
  const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let text = "";
  for (let i = 0; i < rgba.length; i += 4) text += String.fromCharCode(rgba[i], rgba[i + 1], rgba[i + 2]);
  const frames = window.tvappWatch.frames;
  const mine = frames.findLast((f) => f.mediaTime === meta.mediaTime);
  return { width: canvas.width, height: canvas.height, rgb: btoa(text), mediaTime: meta.mediaTime,
           position: mine ? mine.position : null };
}"""


def pixel_checks(page: Page, origin: LiveOrigin, samples: int = 12) -> list[float]:
    """Return, per drawn frame, the stamped frame's event instant (by the origin's playlist) minus the page's."""
    text = (origin.snapshot(time.time()) or b"").decode()
    playlist = parse_playlist(text, "http://127.0.0.1/live/stream.m3u8")
    assert isinstance(playlist, Playlist) and playlist.segments
    per_segment = round(FPS * origin.segment)
    starts = {segment.sequence: segment.start for segment in playlist.segments}
    out = []
    for _ in range(samples):
        grab = page.evaluate(GRAB)
        rgb = np.frombuffer(base64.b64decode(grab["rgb"]), dtype=np.uint8).reshape(grab["height"], grab["width"], 3)
        found = read_clip_stamp(rgb)
        if found is None or grab["position"] is None:
            continue
        index = found[0]
        segment, within = divmod(index, per_segment)
        if segment in starts:
            out.append(starts[segment] + within / FPS - grab["position"])
    return out


def test_the_phone_plays_the_live_stream_on_the_rooms_moment_through_pause_and_resume(
        browser: Browser, server: ServerProcess, origin: LiveOrigin, edge: Edge) -> None:
    room, code = new_room(server, "weblive")
    wait_until(lambda: origin.snapshot(time.time() - 6.0), 20, 0.1, "6 s of live stream")
    host = Host(server, room)
    try:
        page = browser.open(server.url, code=code, name="Ann", autojoin="1")
        wait_for_state(page, "joined")
        host.run(host.room.clock.wait_synced(5.0))
        host.run(host.room.configure_playback(control="everyone"))  # the page's own controls work
        host.run(host.room.load(edge.url, title="The match"))
        state = wait_until(lambda: (s := host.state()) is not None and s.live and s.moving and s, 10, 0.05,
                           "the live state")
        assert state.program_date_time and state.position > 1.6e9, state
        wait_for_js(page, "() => window.tvappWatch.status()", lambda s: s["live"] and s["engine"] == "hls.js"
                    and s["mapped"] > 0 and not s["paused"], 20, "hls.js playing the live stream")
        assert_in_sync(page, state)

        # The pictures: the stamped frame is the one of the instant the page says it shows (within a frame).
        checks = pixel_checks(page, origin)
        assert len(checks) >= 8, checks
        assert sum(abs(c) <= FRAME + 0.005 for c in checks) >= 0.8 * len(checks), checks

        host.run(host.room.pause())
        paused = wait_until(lambda: (s := host.state()) is not None and not s.playing and s, 5, 0.05, "the pause")
        wait_for_js(page, "() => window.tvappWatch.state()", lambda s: s is not None and s["seq"] >= paused.seq,
                    what="the pause on the page")
        wait_for_js(page, "() => window.tvappWatch.status()", lambda s: s["paused"], 5, "the video to pause")
        held = page.evaluate("() => window.tvappWatch.frames.slice(-1)[0].position")
        assert abs(held - paused.position) < 0.1, (held, paused.position)
        time.sleep(3.0)  # the scenario's pause: the stream runs on meanwhile

        host.run(host.room.play())
        resumed = wait_until(lambda: (s := host.state()) is not None and s.moving and s.seq > paused.seq and s, 5,
                             0.05, "the resume")
        assert resumed.position == pytest.approx(paused.position, abs=0.01), "resumed where it paused: 3 s behind"
        assert_in_sync(page, resumed)
        behind = resumed.behind_at(resumed.at)
        assert behind is not None and behind > resumed.delay + 2.5, (behind, resumed.delay)

        # "Back to live" from the page: the room's live point again (its delay behind the edge), and in sync there.
        wait_for_js(page, "() => document.getElementById('watch-status').textContent",
                    lambda text: text.startswith("LIVE · ") and "segment numbers" not in text, 5, "LIVE on the page")
        page.click("#watch-live")
        back = wait_until(lambda: (s := host.state()) is not None and s.moving and s.seq > resumed.seq and s, 5,
                          0.05, "back to live")
        assert back.behind_at(back.at) == pytest.approx(back.delay, abs=0.01), back
        assert_in_sync(page, back)
        assert browser.errors[page] == [], browser.errors[page]
    finally:
        host.close()


def test_a_stream_without_program_date_time_plays_in_sync_by_segment_numbers_and_the_page_says_so(
        browser: Browser, server: ServerProcess, plain: LiveOrigin) -> None:
    room, code = new_room(server, "webplain")
    edge = Edge(plain)
    host = Host(server, room)
    try:
        wait_until(lambda: plain.snapshot(time.time() - 6.0), 20, 0.1, "6 s of live stream")
        assert b"PROGRAM-DATE-TIME" not in (plain.snapshot(time.time()) or b"")
        page = browser.open(server.url, code=code, name="Ann", autojoin="1")
        wait_for_state(page, "joined")
        host.run(host.room.clock.wait_synced(5.0))
        host.run(host.room.load(edge.url, title="No PDT"))
        state = wait_until(lambda: (s := host.state()) is not None and s.live and s.moving and s, 10, 0.05,
                           "the live state")
        assert not state.program_date_time and state.position < 1e8, state  # media sequence x 1 s, not epoch
        wait_for_js(page, "() => window.tvappWatch.status()", lambda s: s["live"] and s["engine"] == "hls.js"
                    and s["mapped"] > 0 and not s["paused"], 20, "hls.js playing the live stream")
        wait_for_js(page, "() => document.getElementById('watch-status').textContent",
                    lambda text: text.startswith("LIVE · ") and text.endswith("timed by segment numbers"), 5,
                    "the page saying how the stream is timed")
        assert_in_sync(page, state)
        checks = pixel_checks(page, plain, samples=8)
        assert len(checks) >= 5 and sum(abs(c) <= FRAME + 0.005 for c in checks) >= 0.8 * len(checks), checks
        assert browser.errors[page] == [], browser.errors[page]
    finally:
        host.close()
        edge.close()

