"""tvapp.js and adaptive stream in real Chromium against a real core: a page's camera obeys publish_constraints
(RTCRtpSender.setParameters: outbound-rtp frameWidth shows the scaled size; paused: the encoding goes inactive),
and a RemoteTrack attached to a <video> tells the server its size and visibility (ResizeObserver), which a Python
SDK publisher's constraints show. The page is the SDK alone (/sdk/tvapp.js imported on the core's origin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page
from test_adaptive_tv import LoopThread

from tvapp.client import Room, TrackSubscribed
from tvapp.client.sources import TestPatternTrack
from tvapp.testing.browser import Browser, get_stats, wait_for_js, wait_until
from tvapp.testing.rest import new_room
from tvapp.testing.server import ServerProcess

pytestmark = pytest.mark.usefixtures("close_pages")
LOOPBACK = ["127.0.0.1"]
PC = "window.t.room.pc"

JOIN = """async ([url, token, publish]) => {
  const { Room } = await import(url + "/sdk/tvapp.js");
  const room = await Room.connect(url, token);
  window.t = { room, video: null };
  room.on("track_subscribed", ({ track }) => {
    if (track.kind !== "video") return;
    const v = document.createElement("video");
    v.style.cssText = "width: 320px; height: 180px; display: block";
    document.body.appendChild(v);
    track.attach(v);
    window.t.video = v;
  });
  if (publish) await room.localParticipant.setCameraEnabled(true);
}"""


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def open_sdk_page(browser: Browser, srv: ServerProcess, room: str, identity: str, publish: bool) -> Page:
    page = browser.new_page(viewport=(800, 600))
    page.goto(srv.url + "/sdk/package.json")  # any document of the core's origin: the SDK imports from it
    page.evaluate(JOIN, [srv.url, srv.token(room, identity)["access_token"], publish])
    return page


def sender_encoding(page: Page) -> Any:
    return page.evaluate("""() => { const pub = window.t.room.localParticipant.tracks.get("camera");
        const t = window.t.room.pc.getTransceivers().find((x) => x.mid === pub.mid);
        return t ? t.sender.getParameters().encodings[0] : null; }""")


def test_a_chromium_publisher_scales_and_pauses_its_camera_as_the_server_asks(
        browser: Browser, media_server: ServerProcess, loop: LoopThread) -> None:
    room = new_room(media_server, "adaptweb")
    page = open_sdk_page(browser, media_server, room, "web", publish=True)
    wait_until(lambda: get_stats(page, PC)["outbound"]["video"]["frameWidth"] == 640, 20, 0.2,
               "the page sending its 640x480 camera")

    async def viewer() -> tuple[Room, str]:
        pair = media_server.token(room, "viewer")
        joined = await Room.connect(media_server.url, pair["access_token"], host_addresses=LOOPBACK)
        event = await joined.wait_for(TrackSubscribed, lambda e: e.track.kind == "video", timeout=20)
        await joined.set_track_settings(event.track.sid, width=160, height=90)
        return joined, event.track.sid

    watcher, sid = loop.run(viewer())
    try:
        stats = wait_until(lambda: (s := get_stats(page, PC)["outbound"]["video"])["frameWidth"] <= 160 and s,
                           20, 0.2, "outbound-rtp frameWidth at most 160")
        assert 0 < stats["frameWidth"] <= 160 and 0 < stats["frameHeight"] <= 90, stats
        assert sender_encoding(page)["scaleResolutionDownBy"] == 6  # 640x480 into 160x90: the step that fits

        loop.run(watcher.set_track_settings(sid, width=160, height=90, visible=False))
        wait_until(lambda: sender_encoding(page)["active"] is False, 10, 0.2, "the camera's encoding inactive")
        loop.run(watcher.set_track_settings(sid, width=640, height=480, visible=True))
        wait_until(lambda: (e := sender_encoding(page))["active"] is True and e["scaleResolutionDownBy"] == 1,
                   10, 0.2, "the camera active again at full size")
        wait_until(lambda: get_stats(page, PC)["outbound"]["video"]["frameWidth"] == 640, 20, 0.2,
                   "outbound-rtp back at 640 wide")
    finally:
        loop.run(watcher.disconnect())


def test_an_attached_remote_video_tells_the_server_its_size_and_when_it_is_hidden(
        browser: Browser, media_server: ServerProcess, loop: LoopThread) -> None:
    room = new_room(media_server, "adaptweb")

    async def publisher() -> tuple[Room, Any]:
        pair = media_server.token(room, "camera")
        joined = await Room.connect(media_server.url, pair["access_token"], host_addresses=LOOPBACK,
                                    auto_subscribe=False)
        camera = await joined.local_participant.publish_track(TestPatternTrack(1280, 720, 15), source="camera")
        return joined, camera

    sender, camera = loop.run(publisher())
    try:
        page = open_sdk_page(browser, media_server, room, "web", publish=False)
        wait_for_js(page, "() => window.t && !!window.t.video", what="the page attaching the camera")

        def box() -> tuple[int | None, int | None, bool]:
            return camera.constraints.max_width, camera.constraints.max_height, camera.constraints.paused

        wait_until(lambda: box() == (320, 180, False), 15, 0.1, lambda: f"the publisher's box 320x180 ({box()})")
        wait_for_js(page, "() => window.t.video.videoWidth", lambda w: 0 < w <= 320, what="the page decoding 320")

        page.evaluate("() => { window.t.video.style.display = 'none'; }")
        wait_until(lambda: camera.constraints.paused, 15, 0.1, "the publisher paused (its only viewer hid it)")
        page.evaluate("() => { window.t.video.style.cssText = 'width: 640px; height: 360px; display: block'; }")
        wait_until(lambda: box() == (640, 360, False), 15, 0.1, lambda: f"the publisher's box 640x360 ({box()})")
        wait_for_js(page, "() => window.t.video.videoWidth", lambda w: w == 640, what="the page decoding 640")

        # A drag-resize storm (a new size every animation frame) sends at most one track_settings per 100 ms.
        page.evaluate("""async () => {
          const room = window.t.room, send = room._send.bind(room);
          window.t.sent = [];
          room._send = (type, fields) => {
            if (type === "track_settings") window.t.sent.push([performance.now(), fields.sid, fields.width, fields.height]);
            return send(type, fields);
          };
          for (let i = 1; i <= 40; i++) {
            window.t.video.style.width = (640 - 8 * i) + "px";
            await new Promise((r) => requestAnimationFrame(r));
          }
        }""")
        sent = wait_for_js(page, "() => window.t.sent", lambda s: s and s[-1][2] == 320,
                           what="the burst's last size (320) sent at its end")
        # The rule itself, not a count over a window a loaded machine stretches: sends of one track are >= 100 ms
        # apart (1 ms for the two clocks' rounding), and the burst of 40 sizes did not send 40.
        gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:]) if a[1] == b[1]]
        assert gaps and min(gaps) >= 99, sent
        assert len(sent) < 20, sent

        # Detached from every element: not shown any more, so its only viewer no longer wants it.
        page.evaluate("() => { for (const p of window.t.room.participants.values()) "
                      "for (const pub of p.tracks.values()) if (pub.track) pub.track.detach(); }")
        wait_until(lambda: camera.constraints.paused, 15, 0.1, "the publisher paused after the detach")
    finally:
        loop.run(sender.disconnect())
