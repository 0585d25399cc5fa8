"""A phone's browser (real Chromium, the web client) and a real TV watch the same clip and stay in sync.

The clip lies in the core's media folder and is loaded as "/media/clip.mp4": the TV opens it from the core's URL,
the browser from the page's origin. The TV traces every flip; the page logs every presented frame
(requestVideoFrameCallback); one machine, one clock, so both compare with the room's true timeline.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from web_helpers import new_room

from tvapp.protocol.messages import PlaybackStateMsg
from tvapp.testing.browser import Browser, wait_for_js, wait_for_state
from tvapp.testing.clip import make_clip
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import TvProcess
from tvapp.testing.watch import percentile_ms, read_flips

FPS = 30


@pytest.fixture
def core(tmp_path: Path, clip_cache: Path) -> ServerProcess:
    with ServerProcess(tmp_path / "core", env={"TVAPP_INVITES_REDEEM_FAILURES": "1000"}) as srv:
        (srv.data_dir / "media").mkdir(exist_ok=True)
        clip = make_clip(clip_cache, seconds=30, fps=FPS, size=(640, 360), codec="h264")
        shutil.copy(clip, srv.data_dir / "media" / "clip.mp4")
        yield srv


def test_chromium_and_a_tv_show_the_same_moment(browser: Browser, core: ServerProcess, tmp_path: Path) -> None:
    room, code = new_room(core, "watch-browser")
    token = core.token(room, "tv", name="TV")["access_token"]
    trace = tmp_path / "tv" / "trace.jsonl"
    tv = TvProcess(tmp_path / "tv", ["--server", core.url, "--token", token, "--no-audio", "--trace", str(trace)],
                   size="960x540", env={"TVAPP_TV_FPS": "30"})
    try:
        page = browser.open(core.url, code=code, name="Ann", autojoin="1")
        wait_for_state(page, "joined")
        tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=30, what="the room")
        response = core.http.post(f"/v1/rooms/{room}/playback",
                                  json={"action": "load", "content": "/media/clip.mp4", "position": 3.0})
        assert response.status_code == 200, response.text
        state = PlaybackStateMsg.from_json(response.json()).state()
        tv.wait_for(lambda s: bool(s.get("content") and s["content"]["video_rect"]), timeout=30,
                    what="the clip on the TV")
        wait_for_js(page, "() => window.tvappWatch.state()", lambda s: s is not None and s["seq"] >= state.seq,
                    what="the state on the page")
        page.bring_to_front()  # headless Chromium presents the frames of the front page only
        time.sleep(5.0)
        start, end = time.time() - 2.5, time.time()
        frames = page.evaluate("() => window.tvappWatch.frames.slice()")
        half = 0.5 / FPS
        # Each screen's offset from the true timeline, frame quantisation taken out (a frame's middle).
        page_errors = np.array([f["mediaTime"] + half - state.position_at(f["displayWall"] / 1000) for f in frames
                                if start <= f["displayWall"] / 1000 <= end])
        flips = read_flips(trace).between(start, end)
        tv_errors = flips.frame_error + half
        assert len(page_errors) > 40 and len(flips) > 40, (len(page_errors), len(flips))
        assert percentile_ms(page_errors, 95) < 50, percentile_ms(page_errors, 95)
        assert percentile_ms(tv_errors, 95) < 50, percentile_ms(tv_errors, 95)
        # The two screens agree: their typical offsets differ by less than a frame.
        gap = abs(float(np.median(page_errors)) - float(np.nanmedian(tv_errors)))
        clock = page.evaluate("() => [window.tvappWatch.offset(), window.tvappWatch.delay(), window.tvappWatch.exchanges()]")
        steering = [e["error"] for e in page.evaluate("() => window.tvappWatch.log()") if start <= e["t"] <= end]
        assert gap < 1 / FPS, dict(page=np.median(page_errors), tv=np.nanmedian(tv_errors), clock=clock,
                                   steering=np.median(steering) if steering else None)
        assert browser.errors[page] == [], browser.errors[page]
    finally:
        status = tv.stop()
    assert status == 0, tv.output
