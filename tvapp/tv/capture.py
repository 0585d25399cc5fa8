"""The TV's own camera and microphone in a room: chosen from [tv] camera / microphone, published as the TV's
participant, switched off and on from the remote or the TV's keys, with a self-view of the camera.

Runs on the TV's asyncio thread (the session calls `attach(room)` after joining and `detach()` on leaving).

Choice (`choose_camera`, `choose_microphone`): "none" disables; "auto" picks the first device there is and, when
there is none, says so once in the log and goes on without it; anything else names a device (a V4L2 path such as
/dev/video0, or a video file read like a camera; an SDL capture device name, exactly or by a unique part).

Off means off: a `SwitchedSource` is the one track the room publishes for each device. Switching it off mutes
the publication (the others see "camera off" / "mic muted") and closes the device: the V4L2 device or the SDL
capture device is released and nothing more is read (`frames_read` stops). Switching on reopens it. A device
that fails to open leaves that side off with the reason in `problems`; the TV keeps running.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame

from tvapp.client.sources import SourceError, has_input_format, list_cameras, open_camera
from tvapp.client.sources.common import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE
from tvapp.tv.microphone import CaptureFilter, MicrophoneTrack, identity, list_microphones
from tvapp.tv.scene import LocalDevices
from tvapp.tv.video import VideoSlot

if TYPE_CHECKING:
    from tvapp.client.participants import LocalTrackPublication
    from tvapp.client.room import Room

log = logging.getLogger(__name__)

DeviceState = Literal["on", "off", "none"]
CAMERA_SIZE = (640, 480, 30.0)


class SwitchedSource(MediaStreamTrack):
    """One live track over a capture device that can be closed (`switch_off`) and reopened (`switch_on`).

    While off, `recv` waits and no device is open. Timestamps run on across switches, so the encoder sees one
    continuous stream. `on_frame` sees every frame that goes out (the self-view).
    """

    def __init__(self, kind: str, opener: Callable[[], MediaStreamTrack]) -> None:
        super().__init__()
        self.kind = kind
        self._opener = opener
        self._device: MediaStreamTrack | None = None
        self._on = asyncio.Event()
        self._read_before = 0            # frames read by devices opened and closed before
        self._origin: float | None = None
        self._last_pts = -1
        self._samples = 0
        self.on_frame: Callable[[Frame], None] | None = None
        self.on_ended: Callable[[str], None] | None = None  # the device stopped by itself (unplugged, file ended)

    @property
    def is_on(self) -> bool:
        """Return whether a device is open."""
        return self._device is not None

    @property
    def frames_read(self) -> int:
        """Return how many frames (mic: 10 ms blocks) were read from the device, over every time it was open."""
        device = self._device
        return self._read_before + (int(getattr(device, "frames_read", 0)) if device is not None else 0)

    def switch_on(self) -> None:
        """Open the device (SourceError when it cannot); frames flow again."""
        if self._device is None:
            self._device = self._opener()
            self._on.set()

    def switch_off(self) -> None:
        """Close the device: nothing is read from it until switch_on."""
        device, self._device = self._device, None
        self._on.clear()
        if device is not None:
            self._read_before += int(getattr(device, "frames_read", 0))
            device.stop()

    async def recv(self) -> Frame:
        """Return the next frame of the open device, waiting while it is off."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            device = self._device
            if device is None:
                await self._on.wait()
                continue
            try:
                frame = await device.recv()
            except MediaStreamError:
                if device is self._device:  # it ended by itself, not by switch_off
                    self.switch_off()
                    if self.on_ended is not None:
                        self.on_ended(getattr(device, "description", None) or "the device stopped")
                continue
            if device is not self._device or not isinstance(frame, (av.VideoFrame, av.AudioFrame)):
                continue  # switched off while this frame was read: it is not sent
            self._stamp(frame)
            if self.on_frame is not None:
                self.on_frame(frame)
            return frame

    def _stamp(self, frame: av.VideoFrame | av.AudioFrame) -> None:
        if isinstance(frame, av.AudioFrame):
            frame.pts = self._samples
            frame.time_base = fractions.Fraction(1, frame.sample_rate)
            self._samples += frame.samples
            return
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
        self._last_pts = max(round((now - self._origin) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        frame.pts = self._last_pts
        frame.time_base = VIDEO_TIME_BASE

    def stop(self) -> None:
        """End the track for good and close the device."""
        self.switch_off()
        if self.readyState == "live":
            super().stop()
        self._on.set()


def choose_camera(spec: str) -> tuple[str | None, str]:
    """Return (the camera to open or None, why not) for a [tv] camera setting."""
    spec = spec.strip()
    if spec == "none":
        return None, "camera disabled ([tv] camera = \"none\")"
    if spec != "auto":
        return spec, ""
    cameras = list_cameras()
    if not cameras:
        return None, "no camera found (no /dev/video* device)"
    if not has_input_format("v4l2"):
        return None, f"found {cameras[0][0]} but this av build cannot read V4L2 devices"
    return cameras[0][0], ""


def choose_microphone(spec: str) -> tuple[str | None, str]:
    """Return (the SDL capture device to open or None, why not) for a [tv] microphone setting."""
    spec = spec.strip()
    if spec == "none":
        return None, "microphone disabled ([tv] microphone = \"none\")"
    names = list_microphones()
    if spec == "auto":
        return (names[0], "") if names else (None, "no microphone found (SDL lists no capture device)")
    if spec in names:
        return spec, ""
    matches = [name for name in names if spec.casefold() in name.casefold()]
    if len(matches) == 1:
        return matches[0], ""
    listing = ", ".join(repr(n) for n in names) or "none"
    return None, f"no single microphone matches {spec!r}; the capture devices are: {listing}"


class LocalMedia:
    """The TV's camera and microphone: which devices, whether on, and their publications in the current room."""

    def __init__(self, camera: str | None, microphone: str | None, *, formats: tuple[str, str] = ("bgra", "BGRA"),
                 camera_on: bool = True, mic_on: bool = True) -> None:
        """Use `camera` (device path or file) and `microphone` (SDL capture device name); None: the TV has none."""
        self.camera_device = camera
        self.mic_device = microphone
        self.camera_wanted = camera_on
        self.mic_wanted = mic_on
        self.capture_filter: CaptureFilter = identity   # (block, captured_at) -> block for each 10 ms before sending
        self.self_view = VideoSlot(formats)
        self.problems: dict[str, str] = {}               # "camera"/"mic" -> why it could not open
        self.camera: SwitchedSource | None = None
        self.mic: SwitchedSource | None = None
        self._publications: dict[str, LocalTrackPublication] = {}
        self._tasks: set[asyncio.Task[None]] = set()      # mutes after a device ended by itself; detach cancels
        self.on_change: Callable[[], None] = lambda: None
        self.held = False   # a paired phone is the camera and mic (tvapp.tv.remote.phonecam): the devices stay off

    @property
    def has_camera(self) -> bool:
        """Return whether the TV has a camera configured."""
        return self.camera_device is not None

    @property
    def has_mic(self) -> bool:
        """Return whether the TV has a microphone configured."""
        return self.mic_device is not None

    def view(self) -> LocalDevices:
        """Return the devices' states for the screen."""
        camera_on = self.camera is not None and self.camera.is_on
        mic_on = self.mic is not None and self.mic.is_on
        if self.held:  # the phone's camera and mic are on (the privacy indicator says so), no self-view
            return LocalDevices(camera="on", mic="on", self_view=None)
        return LocalDevices(camera=_state(self.has_camera, camera_on), mic=_state(self.has_mic, mic_on),
                              self_view=self.self_view if camera_on else None)

    def states(self) -> tuple[DeviceState, DeviceState]:
        """Return (camera, mic) as the remote shows them: what the user chose, or "none" ("on" while a phone is)."""
        if self.held:
            return ("on", "on")
        return (_state(self.has_camera, self.camera_wanted), _state(self.has_mic, self.mic_wanted))

    async def hold(self, held: bool) -> None:
        """Keep the TV's own devices off while a paired phone is its camera and mic (True); back as wanted (False)."""
        self.held = held
        for which, track, wanted in (("camera", self.camera, self.camera_wanted), ("mic", self.mic, self.mic_wanted)):
            if track is None:
                continue
            pub = self._publications.get(which)
            if held or not wanted:
                track.switch_off()
                if pub is not None:
                    await pub.set_muted(True)
            elif self._open(which, track) and pub is not None:
                await pub.set_muted(False)
        self.on_change()

    def stats(self) -> dict[str, object]:
        """Return the devices' states and how many frames each read so far (a switched-off device reads none)."""
        view = self.view()
        return {"camera": view.camera, "mic": view.mic, "problems": dict(self.problems),
                "camera_frames_read": self.camera.frames_read if self.camera is not None else 0,
                "mic_frames_read": self.mic.frames_read if self.mic is not None else 0}

    async def attach(self, room: Room) -> None:
        """Publish the configured devices in `room` as the TV's participant (a device that fails stays off)."""
        if self.camera_device is not None:
            device = self.camera_device
            self.camera = SwitchedSource("video", lambda: open_camera(device, *CAMERA_SIZE))
            self.camera.on_frame = self._self_view
            self.camera.on_ended = lambda why: self._ended("camera", why)
            await self._publish(room, "camera", self.camera, self.camera_wanted)
        if self.mic_device is not None:
            name = self.mic_device
            self.mic = SwitchedSource("audio", lambda: MicrophoneTrack(name, lambda: self.capture_filter))
            self.mic.on_ended = lambda why: self._ended("mic", why)
            await self._publish(room, "mic", self.mic, self.mic_wanted)

    async def _publish(self, room: Room, which: str, track: SwitchedSource, wanted: bool) -> None:
        if wanted and not self.held:
            self._open(which, track)
        try:
            pub = await room.local_participant.publish_track(track, source="camera" if which == "camera" else
                                                             "microphone", name=f"tv-{which}")
        except Exception as exc:  # refused (the token may not publish) or the room went: the TV goes on without it
            log.warning("tv: cannot publish the %s: %s", which, exc)
            self.problems[which] = f"cannot publish: {exc}"
            track.stop()
            return
        self._publications[which] = pub
        if not track.is_on:
            await pub.set_muted(True)

    def _open(self, which: str, track: SwitchedSource) -> bool:
        try:
            track.switch_on()
        except SourceError as exc:
            log.warning("tv: %s stays off: %s", which, exc)
            self.problems[which] = str(exc)
            return False
        self.problems.pop(which, None)
        return True

    def _ended(self, which: str, why: str) -> None:
        log.warning("tv: the %s stopped (%s)", which, why)
        self.problems[which] = f"{why} stopped"
        pub = self._publications.get(which)
        if pub is not None:
            task = asyncio.get_running_loop().create_task(pub.set_muted(True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.on_change()

    def _self_view(self, frame: Frame) -> None:
        if isinstance(frame, av.VideoFrame):
            self.self_view.push(frame)

    async def set_enabled(self, which: Literal["camera", "mic"], enabled: bool) -> None:
        """Switch the camera or the microphone on or off; SourceError when it cannot open (it stays off)."""
        if which == "camera":
            self.camera_wanted = enabled
        else:
            self.mic_wanted = enabled
        track = self.camera if which == "camera" else self.mic
        pub = self._publications.get(which)
        if track is None or self.held:
            return  # not in a room, or a phone is the camera: the choice holds for later
        if enabled:
            track.switch_on()   # SourceError goes to the caller: the device stays off
            self.problems.pop(which, None)
            if pub is not None:
                await pub.set_muted(False)
        else:
            track.switch_off()
            if pub is not None:
                await pub.set_muted(True)

    def detach(self) -> None:
        """Close both devices (the room is gone or being left)."""
        for task in list(self._tasks):
            task.cancel()
        for track in (self.camera, self.mic):
            if track is not None:
                track.stop()
        self.camera = self.mic = None
        self._publications.clear()

    def describe(self) -> str:
        """Return one line saying what the TV captures, for its start-up output."""
        camera = self.camera_device or "none"
        mic = self.mic_device or "none"
        return f"camera {camera}, microphone {mic!r}" if self.mic_device else f"camera {camera}, microphone none"


def _state(present: bool, on: bool) -> DeviceState:
    return "none" if not present else ("on" if on else "off")


def list_devices_text() -> str:
    """Return the cameras and microphones the TV can use, with what "auto" picks marked '*'."""
    lines = ["Cameras (V4L2, [tv] camera):"]
    cameras = list_cameras()
    picked, why = choose_camera("auto")
    for path, name in cameras:
        lines.append(f"{'*' if path == picked else ' '} {path}" + (f"  {name}" if name else ""))
    if not cameras:
        lines.append("  none found (no /dev/video* device): the TV publishes no camera")
    elif picked is None:
        lines.append(f"  # {why}")
    lines.append("Microphones (SDL capture, [tv] microphone):")
    mics = list_microphones()
    for i, name in enumerate(mics):
        lines.append(f"{'*' if i == 0 else ' '} {name}")
    if not mics:
        lines.append("  none found (SDL lists no capture device): the TV publishes no microphone")
    lines.append("# '*': what \"auto\" (the default) picks")
    return "\n".join(lines) + "\n"
