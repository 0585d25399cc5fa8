"""The JavaScript SDK's features in real Chromium against a real core, on pages built only on /sdk/tvapp.js (the
example page, served from another origin): data between pages, mute events, a device switch that keeps the
publication's sid, token refresh, and room.playback steering a <video> onto the room's timeline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import test_web_sdk as sdk
import test_web_watch as watch
from web_helpers import PC, new_room, open_example, server_env

from tvapp.testing.browser import Browser, stats_grow, wait_for_js, wait_until
from tvapp.testing.server import ServerProcess

pytestmark = pytest.mark.usefixtures("close_pages")


@pytest.fixture(scope="module")
def feature_server(tmp_path_factory: pytest.TempPathFactory, example_site: str) -> Iterator[ServerProcess]:
    """A core whose media folder holds clip.mp4, letting the example site's pages in."""
    with ServerProcess(tmp_path_factory.mktemp("sdk-features"), env=server_env(example_site)) as srv:
        media = srv.data_dir / "media"
        media.mkdir(exist_ok=True)
        watch.make_clip(media / "clip.mp4")
        yield srv


RECORD = """() => { window.seen = []; const room = window.example.room;
  for (const name of ['data', 'track_muted', 'track_unmuted', 'playback_changed', 'token_refreshed', 'error'])
    room.on(name, (e) => window.seen.push({ name, payload: e.payload, topic: e.topic, code: e.code,
      track: e.track && e.track.sid, from: e.participant && e.participant.identity })); }"""


def seen(tab: object, name: str) -> list[dict[str, object]]:
    return [e for e in tab.evaluate("() => window.seen") if e["name"] == name]  # type: ignore[attr-defined]


def test_data_mute_and_a_device_switch_that_keeps_the_sid(feature_server: ServerProcess, browser: Browser,
                                                          example_site: str) -> None:
    room, _ = new_room(feature_server, "sdk-features")
    one = open_example(browser, example_site, feature_server.url, feature_server.token(room, "one")["access_token"])
    two = open_example(browser, example_site, feature_server.url, feature_server.token(room, "two")["access_token"])
    two.evaluate(RECORD)
    one.evaluate("() => window.example.room.localParticipant.publishData('hello', { topic: 'chat' })")
    wait_until(lambda: seen(two, "data"), 10, message="the data message on page two")
    assert seen(two, "data") == [{"name": "data", "payload": "hello", "topic": "chat", "code": None, "track": None,
                                  "from": "one"}]
    mic = one.evaluate("() => window.example.room.localParticipant.tracks.get('microphone').sid")
    one.evaluate("() => window.example.room.localParticipant.setMicrophoneEnabled(false)")
    wait_until(lambda: [e["track"] for e in seen(two, "track_muted")] == [mic], 10, message="track_muted on page two")
    one.evaluate("() => window.example.room.localParticipant.setMicrophoneEnabled(true)")
    wait_until(lambda: [e["track"] for e in seen(two, "track_unmuted")] == [mic], 10, message="track_unmuted")
    # Switch the camera to the (fake) device by its id: a new MediaStreamTrack, the same publication sid.
    before = one.evaluate("""async () => { const p = window.example.room.localParticipant.tracks.get('camera');
        window.oldTrack = p.track; return p.sid; }""")
    after = one.evaluate("""async () => {
        const cams = (await navigator.mediaDevices.enumerateDevices()).filter(d => d.kind === 'videoinput');
        const p = await window.example.room.localParticipant.switchDevice('camera', cams[cams.length - 1].deviceId);
        const sender = window.example.room.pc.getSenders().find(s => s.track === p.track);
        return { sid: p.sid, replaced: p.track !== window.oldTrack, sending: Boolean(sender),
                 oldEnded: window.oldTrack.readyState === 'ended' }; }""")
    assert after == {"sid": before, "replaced": True, "sending": True, "oldEnded": True}
    stats_grow(one, {"video": ("outbound", "video", "framesEncoded")}, pc_expression=PC)
    wait_until(lambda: sdk.tile_shows(two, "one"), 10, message="page one's video still on page two")


def test_the_access_token_is_refreshed_before_it_expires(feature_server: ServerProcess, browser: Browser) -> None:
    # On the core's own origin: the REST refresh is a same-origin request (the core answers no CORS preflight).
    room, _ = new_room(feature_server, "sdk-refresh")
    pair = feature_server.token(room, "short", ttl=10)
    tab = browser.new_page()
    tab.goto(f"{feature_server.url}/")
    tab.evaluate("""async ([url, token, refresh]) => {
        const { Room } = await import(new URL('/sdk/tvapp.js', url).href);
        window.room = new Room(url, token, { refreshToken: refresh });
        window.refreshed = [];
        window.room.on('token_refreshed', (e) => window.refreshed.push(e.expiresAt));
        await window.room.connect(); }""", [feature_server.url, pair["access_token"], pair["refresh_token"]])
    wait_for_js(tab, "() => window.refreshed.length", lambda n: n >= 1, timeout=15, what="a token refresh")
    fresh = tab.evaluate("() => [window.room.accessToken, window.room.refreshToken, window.room.state]")
    assert fresh[0] != pair["access_token"] and fresh[1] != pair["refresh_token"] and fresh[2] == "connected"


def test_room_playback_commands_and_a_synced_video(feature_server: ServerProcess, browser: Browser,
                                                   example_site: str) -> None:
    room, _ = new_room(feature_server, "sdk-watch")
    host = open_example(browser, example_site, feature_server.url,
                            feature_server.token(room, "host", host=True)["access_token"])
    viewer = open_example(browser, example_site, feature_server.url,
                              feature_server.token(room, "viewer")["access_token"])
    viewer.evaluate(RECORD)
    viewer.evaluate("""() => { const v = document.createElement('video'); v.muted = true; v.id = 'synced';
        document.body.append(v); window.synced = window.example.room.playback.attach(v); }""")
    host.evaluate("() => window.example.room.playback.load('/media/clip.mp4', { title: 'Clip', position: 2 })")
    wait_until(lambda: seen(viewer, "playback_changed"), 10, message="playback_changed on the viewer")
    # The synced video runs on the room's timeline: its position stays within 100 ms of the room's.
    errors = wait_for_js(viewer, """() => { const v = document.getElementById('synced');
        const at = window.example.room.playback.position();
        return v.paused || at === null ? null : Math.abs(v.currentTime - at); }""",
                         lambda e: e is not None and e < 0.1, timeout=20, what="the synced video on the timeline")
    assert errors < 0.1
    host.evaluate("() => window.example.room.playback.pause()")
    wait_for_js(viewer, "() => document.getElementById('synced').paused", timeout=10, what="the video paused")
    # A viewer without the host grant may not steer the room.
    viewer.evaluate("() => window.example.room.playback.play()")
    wait_until(lambda: [e["code"] for e in seen(viewer, "error")] == ["not_allowed"], 10, message="not_allowed")
    host.evaluate("() => window.example.room.playback.seek(5)")
    wait_for_js(viewer, "() => Math.abs(document.getElementById('synced').currentTime - 5)", lambda e: e < 0.05,
                timeout=10, what="the paused video seeked to 5 s")
