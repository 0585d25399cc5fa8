"""The phone page's call tools in real Chromium against a real core: the "test your camera and mic" level meter,
camera and microphone choice (the publication keeps its sid), camera flip (front/back by facingMode on a phone,
the next camera otherwise), speaker choice (setSinkId), screen share as a tile of its own, a 360 px wide screen and
the keyboard.

Chromium's fake devices (tvapp.testing.browser: --use-fake-device-for-media-stream, here with device-count=2 for
two cameras; --use-fake-ui-for-media-stream), its fake microphone's beeps and its fake audio outputs; one browser
and one core for the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page
from web_helpers import new_room, participants

from tvapp.testing.browser import Browser, app_state, page_url, stats_grow, wait_for_js, wait_for_state, wait_until
from tvapp.testing.server import ServerProcess

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("close_pages")]

# device-count=3: three fake cameras (the later flag wins over browser.py's plain one). Chromium's fake_device_1
# gives Y16 (depth) frames that its video encoder does not send; fake_device_0 (I420) and _2 (MJPEG) are real cameras
# to it, so the tests switch between those two.
# --auto-select-desktop-capture-source: getDisplayMedia takes the screen without a picker.
FLAGS = ["--use-fake-device-for-media-stream=device-count=3", "--auto-select-desktop-capture-source=Entire screen",
         "--enable-usermedia-screen-capturing"]


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("phone-core"), env={"TVAPP_INVITES_REDEEM_FAILURES": "1000"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(extra_args=FLAGS) as b:
        yield b


def joined(browser: Browser, core: ServerProcess, code: str, name: str, init_script: str = "") -> Page:
    tab = browser.new_page()
    if init_script:
        tab.add_init_script(init_script)
    tab.goto(page_url(core.url, code=code, name=name, autojoin="1"))
    wait_for_state(tab, "joined")
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: len(ts) == 2 and all(t["sid"] for t in ts),
                what="both local tracks published")
    return tab


def local(tab: Page, cid: str) -> dict[str, Any]:
    return next(t for t in app_state(tab)["localTracks"] if t["cid"] == cid)


def test_the_preview_level_meter_moves_with_the_microphone(browser: Browser, core: ServerProcess) -> None:
    _, code = new_room(core, "meter")
    tab = browser.new_page()
    tab.goto(page_url(core.url, code=code, name="Mia"))
    tab.click("#continue")
    wait_for_state(tab, "preview")
    wait_for_js(tab, "() => !document.getElementById('level-row').hidden", what="the level meter")
    seen: list[float] = []

    def moving() -> bool:  # Chromium's fake microphone beeps: the level rises and falls
        seen.append(tab.evaluate("() => document.getElementById('mic-level').value"))
        return max(seen) > 0.05 and min(seen) < max(seen) / 2 and len(set(seen)) >= 3

    wait_until(moving, 15, 0.05, lambda: f"the meter to move with the microphone (values {seen[-20:]})")
    assert tab.evaluate("() => window.tvapp.micLevel") >= 0
    tab.click("#join")  # the meter stops with the preview
    wait_for_state(tab, "joined")
    wait_for_js(tab, "() => window.tvapp.micLevel === 0 && document.getElementById('mic-level').value === 0")
    assert browser.errors[tab] == []


def test_camera_and_microphone_choice_and_flip_keep_the_publications_sids(
        browser: Browser, core: ServerProcess) -> None:
    room, code = new_room(core, "devices")
    tab = joined(browser, core, code, "Dev")
    viewer = joined(browser, core, code, "Viewer")
    stats_grow(viewer, {"video": ("inbound", "video", "framesDecoded")}, timeout=15)
    tab.click("#devices summary")
    cameras = tab.evaluate("() => Array.from(document.querySelectorAll('#camera-select option'), (o) => o.value)")
    labels = tab.evaluate("() => Array.from(document.querySelectorAll('#camera-select option'), (o) => o.text)")
    mics = tab.evaluate("() => Array.from(document.querySelectorAll('#mic-select option'), (o) => o.value)")
    assert labels == ["fake_device_0", "fake_device_1", "fake_device_2"] and len(mics) >= 2, (labels, mics)
    before_cam, before_mic = local(tab, "camera"), local(tab, "microphone")
    assert tab.evaluate("() => document.getElementById('camera-select').value") == before_cam["deviceId"]
    server_sids = {t["sid"] for p in participants(core, room) for t in p["tracks"]}

    assert before_cam["deviceId"] == cameras[0]
    other = cameras[2]
    tab.select_option("#camera-select", other)
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: any(
        t["cid"] == "camera" and t["deviceId"] == other for t in ts), what="the other camera in use")
    mic = next(m for m in mics if m != before_mic["deviceId"])
    tab.select_option("#mic-select", mic)
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: any(
        t["cid"] == "microphone" and t["deviceId"] == mic for t in ts), what="the other microphone in use")
    assert local(tab, "camera")["sid"] == before_cam["sid"] and local(tab, "microphone")["sid"] == before_mic["sid"]
    assert {t["sid"] for p in participants(core, room) for t in p["tracks"]} == server_sids  # no unpublish/publish
    stats_grow(viewer, {"video": ("inbound", "video", "framesDecoded")}, timeout=15)  # the others see the new one
    assert tab.evaluate("() => document.getElementById('self-video').srcObject.getVideoTracks()[0]"
                        ".getSettings().deviceId") == other  # the self view shows the camera in use

    assert tab.is_visible("#flip")  # several cameras: flip goes to the next one (here round to the first), same sid
    tab.click("#flip")
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: any(
        t["cid"] == "camera" and t["deviceId"] == before_cam["deviceId"] for t in ts), what="flipped back")
    assert local(tab, "camera")["sid"] == before_cam["sid"]
    assert browser.errors[tab] == [] and app_state(tab)["errors"] == []


# Every getUserMedia a page makes, recorded in window.asked (with the error's name when it was refused), and the real
# fake_device_0 reporting facingMode "user" as a phone's front camera does: Chromium's fake cameras tell no facing
# mode, so a flip from it asks the real getUserMedia for {exact: "environment"} and must take the fallbacks.
RECORD_AND_FRONT = """(() => {
  const asked = window.asked = [];
  const real = MediaDevices.prototype.getUserMedia;
  MediaDevices.prototype.getUserMedia = function (constraints) {
    const entry = JSON.parse(JSON.stringify(constraints));
    asked.push(entry);
    return real.call(this, constraints).catch((err) => { entry.error = err.name; throw err; });
  };
  const settings = MediaStreamTrack.prototype.getSettings;
  MediaStreamTrack.prototype.getSettings = function () {
    const s = settings.call(this);
    return this.kind === "video" && this.label === "fake_device_0" ? { ...s, facingMode: "user" } : s;
  };
})();"""

# A phone: getUserMedia records what it was asked (window.asked, with the error's name when it refused) and gives,
# for video, a painted canvas's track that reports the facing mode asked for (a string, exact or ideal, or the
# deviceId "<mode>-camera") in getSettings, with that deviceId; the microphone is Chromium's fake one. Like many
# phones, with window.oneCameraAtATime it refuses a camera while another of its tracks runs (NotReadableError), and
# the camera facing window.broken never opens.
PHONE_CAMERAS = """(() => {
  const asked = window.asked = [];
  const live = new Set();
  const real = MediaDevices.prototype.getUserMedia;
  const facing = (v) => {
    const f = v && v.facingMode;
    if (f) return typeof f === "string" ? f : f.exact || f.ideal;
    const id = v && v.deviceId && (v.deviceId.exact || v.deviceId);
    return typeof id === "string" && id.endsWith("-camera") ? id.slice(0, -7) : null;
  };
  MediaDevices.prototype.getUserMedia = async function (constraints) {
    const entry = JSON.parse(JSON.stringify(constraints));
    asked.push(entry);
    const mode = constraints.video ? facing(constraints.video) || "user" : null;
    if (mode && ((window.oneCameraAtATime && live.size) || window.broken === mode)) {
      entry.error = "NotReadableError";
      throw new DOMException("Could not start video source", "NotReadableError");
    }
    const tracks = constraints.audio ? (await real.call(this, { audio: constraints.audio })).getAudioTracks() : [];
    if (mode) {
      const canvas = Object.assign(document.createElement("canvas"), { width: 320, height: 240 });
      const g = canvas.getContext("2d");
      const timer = setInterval(() => {
        g.fillStyle = mode === "user" ? "#3366cc" : "#cc6633";
        g.fillRect(0, 0, 320, 240);
        g.fillStyle = "#ffffff";
        g.fillRect((Date.now() / 10) % 300, 100, 20, 20);
      }, 33);
      const track = canvas.captureStream(30).getVideoTracks()[0];
      const own = track.getSettings.bind(track);
      const stop = track.stop.bind(track);
      track.getSettings = () => ({ ...own(), facingMode: mode, deviceId: mode + "-camera" });
      track.stop = () => { clearInterval(timer); live.delete(track); stop(); };
      live.add(track);
      tracks.push(track);
    }
    return new MediaStream(tracks);
  };
})();"""

ASKED_VIDEO = "() => window.asked.filter((c) => c.video).map((c) => ({...c.video, error: c.error || null}))"
MIRRORED = "() => document.getElementById('self-video').classList.contains('mirror')"


def test_flip_on_a_phone_asks_for_the_other_facing_mode_and_keeps_the_sid(
        browser: Browser, core: ServerProcess) -> None:
    room, code = new_room(core, "facing")
    tab = joined(browser, core, code, "Phone", init_script=PHONE_CAMERAS)
    viewer = joined(browser, core, code, "Viewer")
    stats_grow(viewer, {"video": ("inbound", "video", "framesDecoded")}, timeout=15)
    before = local(tab, "camera")
    assert before["deviceId"] == "user-camera" and tab.evaluate(MIRRORED)  # the front camera: a mirrored self view
    tab.click("#devices summary")
    assert tab.is_visible("#flip")
    server_sids = {t["sid"] for p in participants(core, room) for t in p["tracks"]}
    asked = len(tab.evaluate(ASKED_VIDEO))

    tab.click("#flip")
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: any(
        t["cid"] == "camera" and t["deviceId"] == "environment-camera" for t in ts), what="the back camera in use")
    flips = tab.evaluate(ASKED_VIDEO)[asked:]
    assert [c["facingMode"] for c in flips] == [{"exact": "environment"}], flips  # no deviceId, no second try
    assert local(tab, "camera")["sid"] == before["sid"]
    assert {t["sid"] for p in participants(core, room) for t in p["tracks"]} == server_sids  # no unpublish/publish
    wait_for_js(tab, MIRRORED, lambda m: m is False, what="the back camera's self view not mirrored")
    stats_grow(viewer, {"video": ("inbound", "video", "framesDecoded")}, timeout=15)  # the others see the back one

    tab.click("#flip")  # and back to the front camera, mirrored again
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: any(
        t["cid"] == "camera" and t["deviceId"] == "user-camera" for t in ts), what="the front camera again")
    assert tab.evaluate(ASKED_VIDEO)[-1]["facingMode"] == {"exact": "user"}
    assert local(tab, "camera")["sid"] == before["sid"]
    wait_for_js(tab, MIRRORED, lambda m: m is True, what="the front camera's self view mirrored")
    assert browser.errors[tab] == [] and app_state(tab)["errors"] == []


def test_flip_on_a_phone_that_opens_one_camera_at_a_time_stops_the_current_one_first(
        browser: Browser, core: ServerProcess) -> None:
    """Many phones cannot open the back camera while the front one runs (NotReadableError): the flip stops the
    current track and asks again. When the other camera does not open at all, the flip fails with a message and the
    camera it left is opened again (the publication goes on, same sid)."""
    _, code = new_room(core, "onecam")
    tab = joined(browser, core, code, "Phone", init_script=PHONE_CAMERAS)
    viewer = joined(browser, core, code, "Viewer")
    before = local(tab, "camera")
    tab.evaluate("() => { window.oneCameraAtATime = true; }")
    tab.click("#devices summary")
    asked = len(tab.evaluate(ASKED_VIDEO))
    tab.click("#flip")
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: any(
        t["cid"] == "camera" and t["deviceId"] == "environment-camera" for t in ts), what="the back camera in use")
    flips = [(c["facingMode"], c["error"]) for c in tab.evaluate(ASKED_VIDEO)[asked:]]
    assert flips == [({"exact": "environment"}, "NotReadableError"), ({"exact": "environment"}, None)], flips
    assert local(tab, "camera")["sid"] == before["sid"] and app_state(tab)["errors"] == []
    stats_grow(viewer, {"video": ("inbound", "video", "framesDecoded")}, timeout=15)  # the back camera reaches others

    tab.evaluate("() => { window.broken = 'user'; }")  # the front camera is broken: the flip back fails ...
    tab.click("#flip")
    wait_for_js(tab, "() => window.tvapp.errors", lambda errors: [e["code"] for e in errors] == ["device_failed"],
                what="the flip's failure on the page")
    assert tab.inner_text("#error") == "Could not flip the camera."
    live = """() => { const t = document.getElementById('self-video').srcObject.getVideoTracks()[0];
      return {state: t.readyState, deviceId: t.getSettings().deviceId}; }"""  # ... and the back camera runs again
    wait_for_js(tab, live, lambda t: t == {"state": "live", "deviceId": "environment-camera"}, what="the camera back")
    assert local(tab, "camera")["sid"] == before["sid"] and local(tab, "camera")["deviceId"] == "environment-camera"
    stats_grow(viewer, {"video": ("inbound", "video", "framesDecoded")}, timeout=15)
    assert browser.errors[tab] == []


def test_flip_falls_back_to_the_next_camera_when_the_facing_mode_cannot_be_met(
        browser: Browser, core: ServerProcess) -> None:
    """Chromium's real getUserMedia refuses {exact: "environment"} (OverconstrainedError: its fake cameras face no
    way), {ideal: "environment"} gives the same camera back, so the flip takes the next camera in the list."""
    room, code = new_room(core, "fallback")
    tab = joined(browser, core, code, "Desk", init_script=RECORD_AND_FRONT)
    tab.click("#devices summary")
    cameras = tab.evaluate("() => Array.from(document.querySelectorAll('#camera-select option'), (o) => o.value)")
    before = local(tab, "camera")
    assert before["deviceId"] == cameras[0] and tab.is_visible("#flip")
    asked = len(tab.evaluate(ASKED_VIDEO))

    tab.click("#flip")
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: any(
        t["cid"] == "camera" and t["deviceId"] == cameras[1] for t in ts), what="the next camera in use")
    flips = tab.evaluate(ASKED_VIDEO)[asked:]
    assert [(c.get("facingMode"), c.get("deviceId"), c["error"]) for c in flips] == [
        ({"exact": "environment"}, None, "OverconstrainedError"), ({"ideal": "environment"}, None, None),
        (None, {"exact": cameras[1]}, None)], flips
    assert local(tab, "camera")["sid"] == before["sid"]
    assert tab.evaluate("() => document.getElementById('camera-select').value") == cameras[1]
    assert browser.errors[tab] == [] and app_state(tab)["errors"] == []


def test_speaker_choice_routes_every_remote_voice(browser: Browser, core: ServerProcess) -> None:
    _, code = new_room(core, "speaker")
    listener = joined(browser, core, code, "Lis")
    joined(browser, core, code, "Tal")
    wait_for_js(listener, "() => document.querySelectorAll('#audio-sink audio').length", lambda n: n == 1,
                what="the other's voice")
    listener.click("#devices summary")
    assert listener.is_visible("#speaker-select")  # Chromium can route audio (setSinkId)
    outputs = listener.evaluate("() => Array.from(document.querySelectorAll('#speaker-select option'), (o) => o.value)")
    chosen = next(o for o in outputs if o != "default")
    listener.select_option("#speaker-select", chosen)
    wait_for_js(listener, "() => Array.from(document.querySelectorAll('#audio-sink audio'), (a) => a.sinkId)",
                lambda ids: ids == [chosen], what="the voice on the chosen speaker")
    assert listener.evaluate("() => window.tvapp.sinkId") == chosen
    joined(browser, core, code, "Third")  # a voice that arrives later goes to the same speaker
    wait_for_js(listener, "() => Array.from(document.querySelectorAll('#audio-sink audio'), (a) => a.sinkId)",
                lambda ids: ids == [chosen, chosen], what="the new voice on the chosen speaker")
    assert browser.errors[listener] == []


def test_a_shared_screen_is_its_own_tile_on_the_other_pages(browser: Browser, core: ServerProcess) -> None:
    room, code = new_room(core, "share")
    sharer = joined(browser, core, code, "Sharer")
    viewer = joined(browser, core, code, "Viewer")
    sharer.click("#share")
    wait_for_js(sharer, "() => window.tvapp.localTracks", lambda ts: any(
        t["source"] == "screen" and t["sid"] for t in ts), timeout=20, what="the screen published")
    assert sharer.inner_text("#share") == "Stop sharing"
    tile = '#grid .tile[data-source="screen"]'
    wait_for_js(viewer, f"() => {{ const v = document.querySelector('{tile} video'); return v && v.videoWidth; }}",
                timeout=20, what="the screen's frames on the viewer's screen tile")
    assert viewer.locator("#grid .tile").count() == 2  # the camera tile and the screen tile
    assert viewer.inner_text(f"{tile} .name") == "Sharer's screen"
    assert {t["source"] for t in participants(core, room)[0]["tracks"]} | {
        t["source"] for t in participants(core, room)[1]["tracks"]} >= {"screen", "camera", "microphone"}
    sharer.click("#share")  # stop: the tile goes
    wait_for_js(viewer, f"() => document.querySelectorAll('{tile}').length", lambda n: n == 0,
                what="the screen tile to go")
    assert browser.errors[sharer] == [] and browser.errors[viewer] == []


SERVER_SAYS = "(msg) => window.tvapp.ws.onmessage(new MessageEvent('message', {data: JSON.stringify(msg)}))"


def test_a_video_the_sfu_switched_off_for_this_page_reads_paused_weak_network(
        browser: Browser, core: ServerProcess) -> None:
    """The SFU's track_switched_off (tvapp.server.congestion; a weak downlink, proved with netem in
    tests/test_congestion_netem.py) is handed to the page's real websocket handler as if the core had sent it; the
    tile must say so, and clear on track_switched_on."""
    _, code = new_room(core, "weak")
    other = joined(browser, core, code, "Other")
    viewer = joined(browser, core, code, "Viewer")
    tile = '#grid .tile[data-identity] '
    sid = wait_for_js(viewer, """() => { for (const p of window.tvapp.participants)
        for (const t of p.tracks) if (t.kind === 'video') return t.sid; return null; }""", what="a video")
    state = f"() => {{ const s = document.querySelector('{tile}.state'); return s && getComputedStyle(s).display"
    state += " !== 'none' ? s.textContent : ''; }"
    assert viewer.evaluate(state) == ""
    viewer.evaluate(SERVER_SAYS, {"type": "track_switched_off", "v": 1, "sid": sid, "reason": "congestion"})
    wait_for_js(viewer, state, lambda text: text == "Paused — weak network", what="the paused mark")
    viewer.evaluate(SERVER_SAYS, {"type": "track_switched_on", "v": 1, "sid": sid})
    wait_for_js(viewer, state, lambda text: text == "", what="the paused mark to go")
    assert browser.errors[viewer] == [] and browser.errors[other] == []


NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
FOCUS = """() => { const e = document.activeElement; const s = getComputedStyle(e);
  return {id: e.id || e.tagName, outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2}; }"""


def test_at_360_px_nothing_scrolls_sideways_and_the_keyboard_reaches_everything(
        browser: Browser, core: ServerProcess) -> None:
    _, code = new_room(core, "narrow")
    tab = browser.new_page(viewport=(360, 740))
    tab.goto(page_url(core.url))
    assert tab.evaluate(NO_SIDEWAYS_SCROLL)
    assert tab.evaluate(FOCUS)["id"] == "code"  # the page starts in the code field
    tab.keyboard.type(code)
    tab.keyboard.press("Tab")
    assert tab.evaluate(FOCUS)["id"] == "name"
    tab.keyboard.type("Kim")
    tab.keyboard.press("Enter")  # submits the form
    wait_for_state(tab, "preview")
    assert tab.evaluate(NO_SIDEWAYS_SCROLL)
    wait_for_js(tab, FOCUS, lambda f: f["id"] == "join", what="the focus on Join")
    tab.keyboard.press("Enter")
    wait_for_state(tab, "joined")
    wait_for_js(tab, "() => window.tvapp.localTracks", lambda ts: len(ts) == 2 and all(t["sid"] for t in ts))
    assert tab.evaluate(NO_SIDEWAYS_SCROLL)
    reached: list[dict[str, Any]] = []
    for _ in range(12):  # Tab walks through the call's controls, each with a visible focus ring
        tab.keyboard.press("Tab")
        reached.append(tab.evaluate(FOCUS))
    ids = [r["id"] for r in reached]
    assert {"mic", "cam", "leave"} <= set(ids), ids
    assert all(r["outline"] for r in reached if r["id"] in ("mic", "cam", "leave")), reached
    for control in ("mic", "cam", "leave"):  # every control is on screen
        box = tab.locator(f"#{control}").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["y"] + box["height"] <= 740
    tab.focus("#mic")
    tab.keyboard.press("Space")  # Space mutes ...
    wait_until(lambda: local(tab, "microphone")["muted"], 5, message="Space to mute")
    tab.keyboard.press("Enter")  # ... Enter unmutes
    wait_until(lambda: not local(tab, "microphone")["muted"], 5, message="Enter to unmute")
    tab.focus("#devices summary")
    tab.keyboard.press("Enter")  # the device choice opens from the keyboard, still no sideways scroll
    assert tab.evaluate("() => document.getElementById('devices').open") is True
    assert tab.evaluate(NO_SIDEWAYS_SCROLL)
    assert browser.errors[tab] == []
