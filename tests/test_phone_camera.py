"""A paired phone is the TV's camera and microphone, end to end with real parts.

A real `tvapp tv` (built-in core, https endpoints with its self-signed certificate) and real Chromium as the phone
(its fake camera, and a speech-like WAV as its microphone), pinned to the TV's certificate by its public key
(`--ignore-certificate-errors-spki-list`). The phone pairs on the Remote page by typing the code off the TV's
screen, presses "Use this phone as the TV's camera", and an SDK participant in the room decodes the TV's camera
track (the phone's video, forwarded by the TV without re-encoding) and hears the WAV in the TV's microphone track.
A second phone takes over (the first is told it was replaced); stop unpublishes the TV's phone tracks.
Bad input over the TV's /v1/remote: no offer before auth, oversized and garbage SDP refused with clear codes, and the
TV keeps running.
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import websockets
from cryptography import x509
from playwright.sync_api import Page
from test_tv_camera import Participant, camera_clip
from test_tv_remote import Loop, core_url, ok, pair

from tvapp.client import events as ev
from tvapp.client.remote_link import RemoteLink
from tvapp.protocol import remote_messages as rp
from tvapp.testing.browser import Browser, wait_for_js
from tvapp.testing.tv import TvProcess
from tvapp.web.tls import CERT_FILE, spki_sha256

RATE = 48000
PERIOD = RATE // 2  # the speech-like signal repeats every half second


def speech_wav(path: Path, seconds: int = 4) -> np.ndarray:
    """Write a 48 kHz mono WAV of voice-band bursts (4 syllables a second); return one period of it."""
    t = np.arange(RATE * seconds) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 0.5
    signal = ((np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 660 * t)) * envelope * 9000).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(signal.tobytes())
    return signal[:PERIOD].astype(np.float64)


def best_correlation(received: np.ndarray, period: np.ndarray) -> float:
    """Return the highest normalized correlation of the last two seconds received with the (periodic) WAV, over
    every lag: the segment folded onto one period, then a circular cross-correlation by FFT."""
    segment = received[-4 * PERIOD:]
    segment = segment - segment.mean()
    template = period - period.mean()
    folded = segment.reshape(4, PERIOD).sum(axis=0)
    correlation = np.fft.irfft(np.fft.rfft(folded).conj() * np.fft.rfft(template), PERIOD)
    return float(correlation.max() / (np.linalg.norm(segment) * np.linalg.norm(np.tile(template, 4)) + 1e-9))


class Watcher(Participant):
    """The SDK participant: also keeps the TV's audio samples and the TV's publications by name."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[np.ndarray] = []
        self.video_size: tuple[int, int] | None = None
        self.published: list[str] = []
        self.unpublished: list[str] = []

    def on_event(self, event: ev.RoomEvent) -> None:
        super().on_event(event)
        if isinstance(event, ev.TrackPublished) and event.participant.identity.startswith("tv-"):
            self.published.append(event.track.name)
        elif isinstance(event, ev.TrackUnpublished) and event.participant.identity.startswith("tv-"):
            self.unpublished.append(event.track.name)

    async def read(self, track: Any) -> None:
        while True:
            frame = await track.recv()
            if track.kind == "video":
                self.video_frames += 1
                self.video_size = (frame.width, frame.height)
                if self.video_frames % 5 == 0:
                    rgb = frame.to_ndarray(format="rgb24")
                    self.last_rgb = (float(np.std(rgb)),)  # how much the picture varies: not blank
            else:
                self.audio_frames += 1
                array = frame.to_ndarray().reshape(-1)
                channels = len(frame.layout.channels)
                self.samples.append(array[::channels].astype(np.float64) if not frame.format.is_planar
                                    else frame.to_ndarray()[0].astype(np.float64))

    def audio(self) -> np.ndarray:
        return np.concatenate(self.samples) if self.samples else np.zeros(0)


def tv_spki(data: Path) -> str:
    return spki_sha256(x509.load_pem_x509_certificate((data / "tv-tls" / CERT_FILE).read_bytes()))


def start_tv(tmp_path: Path, tls: bool = True, camera: Path | None = None) -> TvProcess:
    return TvProcess(tmp_path / "tv", ["--host", "127.0.0.1", "--port", "0", "--name", "Den TV", "--data",
                                       str(tmp_path / "data"), "--no-audio"], size="1280x720",
                     env={"TVAPP_TV_TLS": "true" if tls else "false",
                          **({"TVAPP_TV_CAMERA": str(camera)} if camera is not None else {})})


def pair_page(page: Page, tv: TvProcess, name: str) -> None:
    """Pair the Remote page like a person: ask, read the code off the TV's screen, type it."""
    page.goto(tv.remote_url() + "/remote", wait_until="load")
    wait_for_js(page, "() => window.tvappRemote && window.tvappRemote.state", lambda s: s == "pairing",
                what="the pairing screen")
    page.fill("#pair-name", name)
    page.click("#pair-request")
    page.wait_for_selector("#pair-code", state="visible")
    _, sidecar = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code on screen")
    page.fill("#pair-code", sidecar["pairing"]["code"].replace(" ", ""))
    page.click("#pair-confirm")
    wait_for_js(page, "() => window.tvappRemote.state", lambda s: s == "ready", 15, "the page to be connected")


def camera_on(page: Page) -> None:
    page.click("#phonecam-start")
    wait_for_js(page, "() => window.tvappPhoneCamera", lambda c: c["state"] == "on" and
                c["connectionState"] == "connected", 30, "the phone to be the TV's camera")


def local(sidecar: dict[str, Any]) -> dict[str, Any]:
    return sidecar.get("local") or {}


def test_a_paired_phone_is_the_tvs_camera_and_mic_and_a_second_phone_takes_over(tmp_path: Path) -> None:
    period = speech_wav(tmp_path / "speech.wav")
    tv = start_tv(tmp_path)
    watcher = Watcher()
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60,
                                 what="the TV's room")
        assert local(sidecar).get("camera") == "none"
        watcher.run(watcher.join(core_url(tv), sidecar["invite_code"]))
        assert tv.remote_url().startswith("https://")
        with Browser(extra_args=[f"--ignore-certificate-errors-spki-list={tv_spki(tmp_path / 'data')}",
                                 f"--use-file-for-fake-audio-capture={tmp_path / 'speech.wav'}"]) as browser:
            first = browser.new_page()
            pair_page(first, tv, "Ann's phone")
            assert first.evaluate("() => window.isSecureContext")
            camera_on(first)
            # The phone plays nothing: it receives no media at all, and its preview is muted.
            assert first.evaluate("() => document.getElementById('phonecam-preview').muted")
            assert first.evaluate("() => window.tvappPhoneCamera.receiving") == 0

            watcher.wait(lambda: watcher.video_frames >= 30 and watcher.video_size is not None,
                         "the phone's camera as the TV's camera track", timeout=40)
            assert "tv-phone-camera" in watcher.published and "tv-phone-mic" in watcher.published
            assert watcher.video_size == (640, 480) and watcher.last_rgb is not None and watcher.last_rgb[0] > 5
            watcher.wait(lambda: watcher.audio().size >= 3 * RATE, "three seconds of the TV's microphone")
            heard = watcher.audio()[-2 * RATE:] / 9000  # in units of the WAV's peak (its own RMS is 0.45)
            assert np.sqrt(np.mean(heard ** 2)) > 0.2, "the phone's speech is loud in the TV's microphone track"
            assert best_correlation(watcher.audio(), period) > 0.8
            tv.wait_for(lambda s: local(s).get("camera") == "on" and local(s).get("mic") == "on"
                        and local(s).get("indicator_rect") is not None, timeout=10,
                        what="the privacy indicator showing the phone's camera and mic on")

            # Mute on the phone mutes the TV's microphone in the room.
            first.click("#phonecam-mute")
            watcher.wait(lambda: ("audio", True) in watcher.muted, "the TV's microphone muted from the phone")

            # A second phone takes over: the first is told, the room gets the second phone's tracks.
            second = browser.new_page()
            second.add_init_script("try { localStorage.clear(); } catch (e) {}")  # a phone of its own
            pair_page(second, tv, "Bob's phone")
            seen = watcher.video_frames
            camera_on(second)
            wait_for_js(first, "() => window.tvappPhoneCamera", lambda c: c["stopped"] == "replaced"
                        and c["state"] == "off", 15, "the first phone told it was replaced")
            assert "Another phone" in first.text_content("#phonecam-status")
            watcher.wait(lambda: watcher.unpublished.count("tv-phone-camera") >= 1
                         and watcher.published.count("tv-phone-camera") >= 2, "the handover in the room")
            watcher.wait(lambda: watcher.video_frames >= seen + 30, "the second phone's camera")

            # Stop: the TV's phone tracks are unpublished, the privacy indicator goes back to no camera.
            second.click("#phonecam-stop")
            watcher.wait(lambda: watcher.unpublished.count("tv-phone-camera") >= 2
                         and watcher.unpublished.count("tv-phone-mic") >= 2, "the TV's camera off after stop")
            tv.wait_for(lambda s: local(s).get("camera") == "none", timeout=10, what="the camera off on screen")
            for page in (first, second):
                assert browser.errors[page] == [], browser.errors[page]

            # The page closed (no stop pressed): the TV's camera goes off all the same.
            camera_on(first)
            watcher.wait(lambda: watcher.published.count("tv-phone-camera") >= 3, "the first phone back")
            first.close()
            watcher.wait(lambda: watcher.unpublished.count("tv-phone-camera") >= 3, "the TV's camera off once the "
                         "phone's page closed")
            tv.wait_for(lambda s: local(s).get("camera") == "none", timeout=10, what="the camera off on screen")
    finally:
        watcher.close()
        assert tv.stop() == 0, tv.output


def test_the_phone_takes_precedence_over_the_tvs_own_camera_which_comes_back_after(tmp_path: Path) -> None:
    speech_wav(tmp_path / "speech.wav")
    tv = start_tv(tmp_path, camera=camera_clip(tmp_path / "camera.mp4"))
    watcher = Watcher()
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"]
                                 and local(s).get("camera") == "on", timeout=60, what="the room with the TV's camera")
        watcher.run(watcher.join(core_url(tv), sidecar["invite_code"]))
        watcher.wait(lambda: watcher.video_frames >= 10, "the TV's own camera")
        with Browser(extra_args=[f"--ignore-certificate-errors-spki-list={tv_spki(tmp_path / 'data')}",
                                 f"--use-file-for-fake-audio-capture={tmp_path / 'speech.wav'}"]) as browser:
            page = browser.new_page()
            pair_page(page, tv, "Ann's phone")
            camera_on(page)
            # The TV's own camera is muted in the room and closed: its frame counter stands still.
            watcher.wait(lambda: ("video", True) in watcher.muted and "tv-phone-camera" in watcher.published,
                         "the TV's camera muted and the phone's published")
            _, held = tv.wait_for(lambda s: local(s).get("camera") == "on" and local(s).get("self_view_rect") is None,
                                  timeout=10, what="the phone as the camera on screen (no self-view)")
            seen = watcher.video_frames
            watcher.wait(lambda: watcher.video_frames >= seen + 30, "the phone's video")
            _, later = tv.screenshot()
            assert local(later)["camera_frames_read"] == local(held)["camera_frames_read"]

            # Stop: the phone's tracks go, the TV's own camera opens again and is unmuted.
            page.click("#phonecam-stop")
            watcher.wait(lambda: "tv-phone-camera" in watcher.unpublished and ("video", False) in watcher.muted,
                         "the TV's own camera back in the room")
            tv.wait_for(lambda s: local(s)["camera_frames_read"] > local(held)["camera_frames_read"] + 15
                        and local(s).get("self_view_rect") is not None, timeout=15, what="the TV's camera read again")
            assert browser.errors[page] == [], browser.errors[page]
    finally:
        watcher.close()
        assert tv.stop() == 0, tv.output


async def _raw(url: str, credential: str | None, texts: list[str]) -> list[dict[str, Any]]:
    """Send `texts` on a /v1/remote websocket (after auth with `credential` when given); return the answers."""
    answers: list[dict[str, Any]] = []
    async with websockets.connect(url.replace("http", "ws", 1) + "/v1/remote", max_size=1 << 20) as ws:
        if credential is not None:
            await ws.send(json.dumps({"type": "auth", "v": 1, "credential": credential}))
            while json.loads(await ws.recv())["type"] != "authed":
                pass
        for text in texts:
            await ws.send(text)
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
                if msg["type"] in ("ok", "error"):
                    answers.append(msg)
                    break
    return answers


def offer(sdp: str, id: str = "o1") -> str:
    return json.dumps({"type": "phone_camera_offer", "v": 1, "id": id, "sdp": sdp})


def test_an_offer_needs_a_paired_phone_and_bad_sdp_is_refused_while_the_tv_runs_on(tmp_path: Path) -> None:
    tv = start_tv(tmp_path, tls=False)
    loop = Loop()
    try:
        tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60, what="the TV's room")
        url = tv.remote_url()
        good_start = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        # Not paired (no auth): the offer is not taken.
        [answer] = loop.run(_raw(url, None, [offer(good_start)]))
        assert answer["code"] == "not_authenticated" and answer["id"] == "o1"
        credential = pair(tv, loop).credential
        too_long = good_start + "a=x-pad:" + "a" * (rp.MAX_SDP_BYTES - len(good_start)) + "\r\n"
        assert len(offer(too_long).encode()) < rp.MAX_MESSAGE_BYTES
        answers = loop.run(_raw(url, credential, [
            offer(too_long, "long"),                                     # over MAX_SDP_BYTES
            offer("x" * (rp.MAX_MESSAGE_BYTES + 10), "huge"),            # over the message limit
            offer("hello", "text"),                                      # not SDP at all
            offer(good_start + "a=\x01bad\r\n", "ctrl"),                 # control characters
            offer(good_start + "m=video 9 UDP/TLS/RTP/SAVPF\r\n", "garbage"),  # SDP aiortc cannot use
            offer(good_start, "novideo"),                                # no media at all
            json.dumps({"type": "phone_camera_mute", "v": 1, "id": "mute", "muted": True}),
            json.dumps({"type": "phone_camera_stop", "v": 1, "id": "stop"}),
        ]))
        codes = {a.get("id"): a.get("code", "ok") for a in answers}
        assert codes == {"long": "invalid_value", None: "too_big", "text": "invalid_value", "ctrl": "invalid_value",
                         "garbage": "bad_sdp", "novideo": "bad_sdp", "mute": "not_phone_camera", "stop": "ok"}, answers
        assert all("IN IP4" not in a.get("message", "") and "aaaa" not in a.get("message", "") for a in answers), \
            "errors never repeat the SDP"
        # The TV runs on: a remote command still works, the screen is still the room.
        link = loop.run(RemoteLink.connect(url, credential))
        ok(loop.run(link.command(rp.StatusCommand())))
        assert link.state is not None and link.state.status == "in_room" and link.state.camera == "none"
        loop.run(link.close())
        tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=10, what="the room still on screen")
    finally:
        loop.close()
        assert tv.stop() == 0, tv.output
