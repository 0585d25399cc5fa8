"""The TV's camera and microphone capture: the same av path as V4L2 fed by a file, SDL disk capture, off = closed.

The camera source is a video file made by ffmpeg and opened by `open_camera`, which reads it through the very
class (`_DeviceTrack` via `capture_track`) a V4L2 device is read by; a V4L2 device that is missing or is not a
camera gives a clear SourceError. The microphone is SDL's disk driver capturing from a raw file, in a child
process (SDL picks its driver once per process).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tvapp.client.sources import SourceError, open_camera
from tvapp.client.sources.devices import _DeviceTrack
from tvapp.tv.capture import LocalMedia, SwitchedSource, choose_camera, choose_microphone

CHILD = Path(__file__).with_name("tv_mic_child.py")
STOP_CHILD = Path(__file__).with_name("tv_mic_stop_child.py")
STALL_CHILD = Path(__file__).with_name("tv_camera_stall_child.py")


def make_clip(path: Path, seconds: float = 20.0, fps: int = 15) -> Path:
    """Write a small H.264-less test video (mpeg4, 160x120) with ffmpeg."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=160x120:rate={fps}", "-t", str(seconds), "-c:v", "mpeg4", "-q:v", "5",
                    str(path)], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("camera") / "camera.mp4")


def test_a_file_camera_is_read_by_the_v4l2_capture_class_at_its_own_rate(clip: Path) -> None:
    async def run() -> tuple[list[av.VideoFrame], float, object]:
        track = open_camera(str(clip))
        started = time.monotonic()
        frames = [await track.recv() for _ in range(16)]
        took = time.monotonic() - started
        track.stop()
        return frames, took, track

    frames, took, track = asyncio.run(run())
    assert type(track) is _DeviceTrack             # the class camera_track() returns for /dev/videoN
    assert (frames[0].width, frames[0].height) == (160, 160 * 3 // 4)
    assert took >= 15 / 15 * 0.9                  # 16 frames at 15 fps span a second: held to the file's rate
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:]))


def test_a_missing_or_non_video_v4l2_device_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="no camera at /dev/video97"):
        open_camera("/dev/video97")
    with pytest.raises(SourceError, match="/dev/null"):
        open_camera("/dev/null")                   # exists, but is no V4L2 camera


def test_camera_off_closes_the_device_and_reads_nothing(clip: Path) -> None:
    async def run() -> dict[str, object]:
        camera = SwitchedSource("video", lambda: open_camera(str(clip)))
        camera.switch_on()
        device = camera._device
        for _ in range(5):
            await camera.recv()
        camera.switch_off()
        at_off = camera.frames_read
        waiting = asyncio.ensure_future(camera.recv())
        done, _ = await asyncio.wait([waiting], timeout=0.5)
        while_off = camera.frames_read
        camera.switch_on()
        frame = await asyncio.wait_for(waiting, 5)
        after = camera.frames_read
        camera.stop()
        return {"device_state": device.readyState, "at_off": at_off, "while_off": while_off, "done": bool(done),
                "after": after, "pts": frame.pts}

    result = asyncio.run(run())
    assert result["device_state"] == "ended"       # the capture was closed, not just not sent
    assert result["at_off"] >= 5
    assert result["while_off"] == result["at_off"] and not result["done"]
    assert result["after"] > result["at_off"]      # on again: a new capture reads


def test_a_stalled_camera_neither_blocks_its_stop_nor_the_exit(tmp_path: Path) -> None:
    """A camera stuck in a read (a stalled USB camera; here an MJPEG pipe whose writer went quiet): stop() returns
    at once (it took the read's lock, and aiortc's own stop took it again through the clashing `_lock` name), and
    the process exits although the read never returns (it ran on the default executor, whose threads the
    interpreter joins at exit)."""
    try:
        result = subprocess.run([sys.executable, str(STALL_CHILD), str(tmp_path / "camera.fifo")], capture_output=True,
                                text=True, timeout=40, check=False, env={**os.environ, "PYTHONPATH": os.getcwd()})
    except subprocess.TimeoutExpired:
        pytest.fail("stopping a stalled camera, or exiting after it, waited for its stuck read")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["frames"] >= 29 and report["stop_s"] < 0.5


def test_choosing_devices() -> None:
    assert choose_camera("none") == (None, 'camera disabled ([tv] camera = "none")')
    assert choose_camera("/dev/video3") == ("/dev/video3", "")
    device, why = choose_camera("auto")
    if not os.path.exists("/dev/video0"):
        assert device is None and "no camera found" in why
    assert choose_microphone("none")[0] is None


def test_a_camera_that_cannot_open_leaves_the_tv_without_it() -> None:
    media = LocalMedia("/dev/video97", None)
    assert media.view().camera == "off"            # configured, not in a room yet: nothing open
    camera = SwitchedSource("video", lambda: open_camera("/dev/video97"))
    media.camera = camera
    assert media._open("camera", camera) is False
    assert "no camera at /dev/video97" in media.problems["camera"]
    assert media.view().camera == "off"


def test_the_microphone_captures_through_sdl_disk_and_off_closes_it(tmp_path: Path) -> None:
    rate = 48000
    t = np.arange(rate * 3) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    source = tmp_path / "mic.raw"
    tone.tofile(source)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SDL_")}
    env.update(SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILEIN=str(source), SDL_DISKAUDIOFILE=str(tmp_path / "out.raw"),
               PYTHONPATH=os.getcwd())
    result = subprocess.run([sys.executable, str(CHILD)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["names"]
    assert report["frame_samples"] == 960 and report["filtered_block"] == 480
    # The filter gets each block's capture time: increasing, and at least the block and the device period
    # (20 ms) before the filter runs.
    assert report["stamps_increasing"] and report["stamp_lead_s"] >= 0.0199
    captured = np.array(report["samples"], dtype=np.int16)
    assert np.array_equal(captured, tone[:captured.size] // 2)    # the file, in order, through the filter hook
    assert report["pts"] == [0, 960, 1920]
    assert report["read_while_off"] == report["read_at_off"] and not report["got_while_off"]
    assert report["read_after_on"] > report["read_at_off"] and report["frame_after_on"] == 960


def test_stopping_the_microphone_mid_callback_returns(tmp_path: Path) -> None:
    """The TV hung on SIGTERM under load: stopping the mic paused SDL's device holding the GIL while SDL's audio
    thread, holding the device's lock, waited for the GIL inside our callback. The stop must return promptly."""
    source = tmp_path / "mic.raw"
    (np.arange(48000 * 10) % 200 * 50).astype(np.int16).tofile(source)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SDL_")}
    env.update(SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILEIN=str(source), SDL_DISKAUDIOFILE=str(tmp_path / "out.raw"),
               PYTHONPATH=os.getcwd())
    try:
        result = subprocess.run([sys.executable, str(STOP_CHILD)], env=env, capture_output=True, text=True, check=False,
                                timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("stopping the microphone while SDL's audio thread was in its callback never returned (deadlock)")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["callback_finished_first"]     # the stop really met a callback in progress
    assert report["stop_s"] < 3
    # SDL was found through pygame's own audio module (whatever its bundled SDL's file is called), so the stop
    # went through ctypes, not pygame's close, which holds the GIL (tests/test_tv_exit.py).
    assert Path(report["sdl_library"]).name.startswith("audio.") and "_sdl2" in report["sdl_library"]


def test_the_tv_keys_switch_the_camera_and_microphone(clip: Path) -> None:
    import pygame

    from tvapp.tv.app import _DEVICE_KEYS
    from tvapp.tv.session import TvSession

    assert _DEVICE_KEYS == {pygame.K_c: "camera", pygame.K_m: "mic"}

    async def run() -> list[tuple[bool, bool]]:
        media = LocalMedia(str(clip), "a microphone")
        session = TvSession(friendly_name="Den TV", media=media)
        seen = []
        for key in ("camera", "mic", "camera"):
            session.key_pressed(key)
            await asyncio.gather(*session._device_tasks)
            seen.append((media.camera_wanted, media.mic_wanted))
        return seen

    assert asyncio.run(run()) == [(False, True), (False, False), (True, False)]


def test_list_devices_names_cameras_and_microphones_and_says_when_there_are_none(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SDL_")}
    env.update(SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=str(tmp_path / "out.raw"), PYTHONPATH=os.getcwd(),
               PYGAME_HIDE_SUPPORT_PROMPT="1")
    result = subprocess.run([sys.executable, "-m", "tvapp", "tv", "--list-devices"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Cameras (V4L2, [tv] camera):"
    cameras = lines[1:lines.index("Microphones (SDL capture, [tv] microphone):")]
    if not any(name.startswith("video") for name in os.listdir("/dev")):
        assert cameras == ["  none found (no /dev/video* device): the TV publishes no camera"]
    assert "* System audio capture device" in lines       # SDL's disk driver's one capture device, what auto picks
    env["SDL_AUDIODRIVER"] = "no-such-driver"              # SDL audio cannot start: no microphone to offer
    result = subprocess.run([sys.executable, "-m", "tvapp", "tv", "--list-devices"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert "  none found (SDL lists no capture device): the TV publishes no microphone" in result.stdout.splitlines()
