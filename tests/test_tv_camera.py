"""The TV's camera and microphone in a room, end to end: a real `tvapp tv` (built-in core, SDL dummy screen, SDL disk
audio) publishes a camera (a video file read through the same av capture class as a V4L2 device) and a microphone
(SDL's disk driver capturing from a raw file); a real SDK participant in the room decodes the TV's camera and sees
the TV as the active speaker; a paired phone switches both off and on over /v1/remote, and while off the TV reads
nothing from the device (its frame counters, in the screenshot sidecar, stand still while the other device's run).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from test_tv_remote import Loop, core_url, ok, pair

from tvapp.client import events as ev
from tvapp.client.remote_link import RemoteLink
from tvapp.protocol import remote_messages as rp
from tvapp.testing.tv import TvProcess
from tvapp.testing.tv_guest import TvGuest
from tvapp.testing.waiting import wait_until

ORANGE = (250, 120, 20)
SWITCHES = 150     # the TV's mic off and on again: before the fix the TV froze within a few dozen
RATE = 48000


def camera_clip(path: Path, seconds: int = 60) -> Path:
    """A solid orange 320x240 15 fps video: what the TV's camera sees."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c=0x{ORANGE[0]:02x}{ORANGE[1]:02x}{ORANGE[2]:02x}:size=320x240:rate=15", "-t", str(seconds),
                    "-c:v", "mpeg4", "-q:v", "3", str(path)], check=True, timeout=60)
    return path


def speech_like(path: Path, seconds: int = 60) -> Path:
    """Raw s16 mono 48 kHz: a voice-band tone in syllable-like bursts (4 per second), loud as someone talking."""
    t = np.arange(RATE * seconds) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 0.5
    signal = (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 660 * t)) * envelope * 9000
    signal.astype(np.int16).tofile(path)
    return path


class Participant(TvGuest):
    """An SDK participant in the TV's room on its own asyncio thread, noting what it gets from the TV."""

    def __init__(self) -> None:
        super().__init__("participant", identity="sofa-watcher", name="Watcher")
        self.tv_sid: str | None = None
        self.video_frames = 0
        self.last_rgb: tuple[float, ...] | None = None
        self.audio_frames = 0
        self.speakers: list[tuple[tuple[str, ...], str | None]] = []  # (who speaks, who has the floor) per event
        self.muted: list[tuple[str, bool]] = []

    def on_event(self, event: ev.RoomEvent) -> None:
        super().on_event(event)
        if isinstance(event, ev.ActiveSpeakersChanged):
            self.speakers.append((tuple(s.identity for s in event.speakers),
                                  event.dominant.identity if event.dominant is not None else None))
        elif isinstance(event, (ev.TrackMuted, ev.TrackUnmuted)):
            self.muted.append((event.track.kind, isinstance(event, ev.TrackMuted)))

    async def read(self, track: Any) -> None:
        while True:
            frame = await track.recv()
            if track.kind == "video":
                self.video_frames += 1
                if self.video_frames % 5 == 0:
                    rgb = frame.to_ndarray(format="rgb24")
                    self.last_rgb = tuple(rgb[rgb.shape[0] // 4:-rgb.shape[0] // 4].reshape(-1, 3).mean(axis=0))
            else:
                self.audio_frames += 1


def local(sidecar: dict[str, Any]) -> dict[str, Any]:
    return sidecar.get("local") or {}


def test_the_tv_is_seen_and_heard_and_off_means_nothing_is_captured(tmp_path: Path) -> None:
    clip = camera_clip(tmp_path / "camera.mp4")
    mic = speech_like(tmp_path / "mic.raw")
    tv = TvProcess(tmp_path / "tv", ["--host", "127.0.0.1", "--port", "0", "--name", "Den TV", "--data",
                                     str(tmp_path / "data")], size="1280x720",
                   env={"TVAPP_TV_CAMERA": str(clip), "TVAPP_TV_MICROPHONE": "auto",
                        "SDL_DISKAUDIOFILEIN": str(mic)})
    watcher = Participant()
    loop = Loop()
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"]
                                 and local(s).get("camera") == "on" and local(s).get("mic") == "on"
                                 and local(s).get("self_view_rect") is not None,
                                 timeout=60, what="the room with the TV's camera (its self-view) and mic on")
        assert local(sidecar)["indicator_rect"] is not None
        watcher.run(watcher.join(core_url(tv), sidecar["invite_code"]))

        # Item 4: the TV's tile elsewhere shows its camera.
        watcher.wait(lambda: watcher.video_frames >= 20 and watcher.last_rgb is not None, "the TV's camera")
        assert np.allclose(watcher.last_rgb, ORANGE, atol=25), watcher.last_rgb
        assert watcher.audio_frames > 0
        link = loop.run(RemoteLink.connect(tv.remote_url(), pair(tv, loop).credential))
        ok(loop.run(link.command(rp.StatusCommand())))
        assert link.state is not None and (link.state.camera, link.state.mic) == ("on", "on")

        # Mic off from the remote: the capture closes (its counter stands still while the camera's runs), the TV
        # falls silent; on again, the file's speech (SDL reopens it from the start) makes the TV the active speaker.
        ok(loop.run(link.command(rp.SetMic(enabled=False))))
        assert link.state is not None and link.state.mic == "off"
        _, mute = tv.wait_for(lambda s: local(s).get("mic") == "off", timeout=10, what="the mic off on screen")
        watcher.wait(lambda: ("audio", True) in watcher.muted, "the TV's microphone muted")
        _, later = tv.wait_for(lambda s: local(s)["camera_frames_read"] >= local(mute)["camera_frames_read"] + 30,
                               timeout=20, what="two seconds of camera capture")
        assert local(later)["mic_frames_read"] == local(mute)["mic_frames_read"]
        watcher.wait(lambda: any(not any(i.startswith("tv-") for i in who) for who, _ in watcher.speakers),
                     "the silent TV leave the speakers")
        heard = len(watcher.speakers)
        ok(loop.run(link.command(rp.SetMic(enabled=True))))
        tv.wait_for(lambda s: local(s)["mic_frames_read"] > local(mute)["mic_frames_read"] + 20, timeout=15,
                    what="the microphone read again")
        watcher.wait(lambda: any(any(i.startswith("tv-") for i in who) and (dominant or "").startswith("tv-")
                                 for who, dominant in watcher.speakers[heard:]), "the TV as the active speaker")

        # Camera off: the device closes; its counter stands still while the microphone's runs.
        ok(loop.run(link.command(rp.SetCamera(enabled=False))))
        assert link.state is not None and link.state.camera == "off"
        watcher.wait(lambda: ("video", True) in watcher.muted, "the TV's camera muted")
        _, off = tv.wait_for(lambda s: local(s).get("camera") == "off", timeout=10, what="the camera off on screen")
        assert local(off)["self_view_rect"] is None
        _, later = tv.wait_for(lambda s: local(s)["mic_frames_read"] >= local(off)["mic_frames_read"] + 100,
                               timeout=20, what="a second of microphone capture")
        assert local(later)["camera_frames_read"] == local(off)["camera_frames_read"]
        seen = watcher.video_frames
        ok(loop.run(link.command(rp.SetCamera(enabled=True))))
        tv.wait_for(lambda s: local(s)["camera_frames_read"] > local(off)["camera_frames_read"] + 15, timeout=15,
                    what="the camera read again")
        watcher.wait(lambda: watcher.video_frames > seen + 10, "the TV's camera again")
        loop.run(link.close())
    finally:
        watcher.close()
        loop.close()
        tv.stop()


def test_a_camera_that_is_not_there_leaves_the_tv_running(tmp_path: Path) -> None:
    tv = TvProcess(tmp_path / "tv", ["--host", "127.0.0.1", "--port", "0", "--name", "Den TV", "--data",
                                     str(tmp_path / "data"), "--no-audio"], size="1280x720",
                   env={"TVAPP_TV_CAMERA": "/dev/video97"})
    loop = Loop()
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60,
                                 what="the room although the camera is missing")
        assert local(sidecar)["camera"] == "off" and local(sidecar)["indicator_rect"] is not None
        assert "no camera at /dev/video97" in local(sidecar)["problems"]["camera"]
        assert "camera stays off: no camera at /dev/video97" in tv.output
        link = loop.run(RemoteLink.connect(tv.remote_url(), pair(tv, loop).credential))
        result = loop.run(link.command(rp.SetCamera(enabled=True)))
        assert result.error is not None and result.error.code == "device_failed"
        assert "no camera at /dev/video97" in result.error.message
        result = loop.run(link.command(rp.SetMic(enabled=True)))
        assert result.error is not None and result.error.code == "not_available"
        ok(loop.run(link.command(rp.StatusCommand())))
        loop.run(link.close())
        tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=10, what="the TV still in its room")
    finally:
        loop.close()
        tv.stop()


def test_a_tv_whose_token_may_not_publish_stays_in_its_room_with_the_camera_off(tmp_path: Path,
                                                                                media_server: Any) -> None:
    clip = camera_clip(tmp_path / "camera.mp4", seconds=20)
    media_server.http.post("/v1/rooms", json={"name": "no-publish"}).raise_for_status()
    token = media_server.token("no-publish", "tv-watch-only", publish=False)["access_token"]
    tv = TvProcess(tmp_path / "tv", ["--server", media_server.url, "--token", token, "--no-audio"],
                   size="1280x720", env={"TVAPP_TV_CAMERA": str(clip)})
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and "camera" in local(s).get("problems", {}),
                                 timeout=60, what="the room, the camera refused")
        assert local(sidecar)["camera"] == "off" and "cannot publish" in local(sidecar)["problems"]["camera"]
        assert "cannot publish the camera" in tv.output
        _, later = tv.wait_for(lambda s: s["seq"] > sidecar["seq"], timeout=10, what="another screenshot")
        assert local(later)["camera_frames_read"] == local(sidecar)["camera_frames_read"]   # nothing captured
        assert later["screen"] == "RoomScreen"
    finally:
        tv.stop()


def test_a_tv_publishing_to_nobody_switches_its_mic_and_exits_promptly_on_sigterm(tmp_path: Path,
                                                                                     media_server: Any) -> None:
    """bench/tv_camera's TV hung on SIGTERM under load: closing the microphone paused SDL's capture device holding
    the GIL while SDL's audio thread, holding the device's lock, waited for the GIL in our capture callback (the
    echo canceller lets go of it there). Switching the mic off runs the same close, and froze the whole TV within a
    few dozen switches before the fix. A TV publishing camera (paused by the server: nobody views it) and mic
    switches its mic off and on (each time on until it captured again) SWITCHES times, each answered within
    seconds, then exits within 5 s of SIGTERM."""
    clip = camera_clip(tmp_path / "camera.mp4", seconds=30)
    mic = speech_like(tmp_path / "mic.raw", seconds=30)
    media_server.http.post("/v1/rooms", json={"name": "unwatched"}).raise_for_status()
    token = media_server.token("unwatched", "tv-unwatched")["access_token"]
    tv = TvProcess(tmp_path / "tv", ["--server", media_server.url, "--token", token], size="1280x720",
                   env={"TVAPP_TV_CAMERA": str(clip), "TVAPP_TV_MICROPHONE": "auto", "SDL_DISKAUDIOFILEIN": str(mic)})
    loop = Loop()

    def published_paused() -> bool:
        answer = media_server.http.get("/v1/rooms/unwatched/participants")
        answer.raise_for_status()
        tracks = [t for p in answer.json() if p["identity"] == "tv-unwatched" for t in p["tracks"] if not t["muted"]]
        return sorted(t["kind"] for t in tracks) == ["audio", "video"] and all(
            (t["constraints"] or {}).get("paused") for t in tracks if t["kind"] == "video")

    try:
        wait_until(published_paused, timeout=60, interval=0.1, what="the TV's camera and mic published, video paused")
        _, capturing = tv.wait_for(lambda s: local(s).get("camera_frames_read", 0) > 0
                                   and local(s).get("mic_frames_read", 0) > 0,
                                   timeout=20, what="the TV capturing both devices")
        link = loop.run(RemoteLink.connect(tv.remote_url(), pair(tv, loop).credential))
        read = local(capturing)["mic_frames_read"]
        for i in range(SWITCHES):
            try:
                ok(loop.run(link.command(rp.SetMic(enabled=i % 2 == 1)), timeout=8))
            except TimeoutError:
                raise AssertionError(f"switch {i} of the mic was not answered within 8 s (the TV froze)") from None
            if i % 2 == 1:  # on again: SDL's thread runs our capture callback before the next switch closes it
                _, on = tv.wait_for(lambda s, read=read: local(s)["mic_frames_read"] > read, timeout=10,
                                    what="the microphone captured again")
                read = local(on)["mic_frames_read"]
        loop.run(link.close())
        wait_until(published_paused, timeout=10, interval=0.1, what="the TV's mic on again, its video still paused")
        began = time.monotonic()
        tv.proc.terminate()
        try:
            status = tv.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the TV did not exit within 10 s of SIGTERM:\n{tv.output}") from None
        assert status == 0 and time.monotonic() - began < 5, (status, time.monotonic() - began)
    finally:
        loop.close()
        tv.stop()
