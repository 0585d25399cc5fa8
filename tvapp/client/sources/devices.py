"""Capture devices as sources: a V4L2 camera and an ALSA microphone, read through av (the device paces them).

`capture_track` is the one capture path: a V4L2 device (`camera_track`) and a recorded file standing in for a
camera (`open_camera` given a file, what tests and demos use) are read by the same `_DeviceTrack`. Video is held
back to its own timestamps, so a file plays at its recorded rate while a live device, whose frames arrive on
time, is never delayed. `frames_read` counts what was taken from the device: a closed capture reads nothing.

A capture reads on a daemon thread of its own (`_Reader`), never the event loop's default executor: a device stuck
in a read (a stalled camera) then holds neither the event loop, nor `stop()` (which leaves the close to the read in
progress when there is one), nor the process's exit (the interpreter joins the default executor's threads).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame

from tvapp.client.sources.common import (
    FILE_AUDIO_RATE,
    MAX_LAG_SECONDS,
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    SourceError,
)

T = TypeVar("T")


class _Reader:
    """Runs one capture's blocking reads in order on a daemon thread of its own (started by the first read),
    until `close()`."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Queue `fn` (starting the thread at the first); return the future of its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        if self._thread.ident is None:
            self._thread.start()
        return future

    def close(self) -> None:
        """End the thread once the read in progress (if any) returns."""
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting recv
                future.set_exception(exc)


class _DeviceTrack(MediaStreamTrack):
    """Frames read from a live capture device; the device paces them."""

    def __init__(self, kind: str, container: Any, description: str) -> None:
        super().__init__()
        self.kind = kind
        self._container = container
        self._description = description
        self._stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        self._frames = container.decode(self._stream)
        self._read_lock = threading.Lock()  # not `_lock`: that is pyee's, which MediaStreamTrack.stop() takes to emit
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=FILE_AUDIO_RATE, frame_size=960)
        self._pending: deque[Frame] = deque()
        self._origin: float | None = None
        self._audio_pts = 0
        self._last_pts = -1
        self._pace: tuple[float, float] | None = None  # (monotonic, frame.time) of the frame the schedule starts at
        self.frames_read = 0
        self._stopping = False
        self._closed = False
        self._reader = _Reader(f"capture {description}")

    def _read(self) -> Frame | None:
        try:
            with self._read_lock:
                while not self._pending:
                    if self._stopping:
                        return None
                    try:
                        frame = next(self._frames)
                    except (StopIteration, av.FFmpegError, ValueError):
                        return None
                    self.frames_read += 1
                    if self.kind == "audio":
                        self._pending.extend(self._resampler.resample(frame))
                    else:
                        self._pending.append(frame)
                return self._pending.popleft()
        finally:
            if self._stopping:  # stopped while this read ran: the close was left to it
                with self._read_lock:
                    self._close_locked()

    def _close_locked(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()

    async def recv(self) -> Frame:
        """Return the next captured frame (MediaStreamError when the device stops)."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await asyncio.wrap_future(self._reader.submit(self._read))
        if frame is None:
            self.stop()
            raise MediaStreamError(f"{self._description} stopped")
        if isinstance(frame, av.AudioFrame):
            frame.pts = self._audio_pts
            frame.time_base = fractions.Fraction(1, FILE_AUDIO_RATE)
            self._audio_pts += frame.samples
            return frame
        await self._hold_back(frame.time)
        now = frame.time if frame.time is not None else time.monotonic()
        if self._origin is None:
            self._origin = now
        pts = max(round((now - self._origin) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        return frame

    async def _hold_back(self, media_time: float | None) -> None:
        """Wait until a video frame is due by its timestamp (a live device's frames are due on arrival)."""
        if media_time is None:
            return
        now = time.monotonic()
        if self._pace is None:
            self._pace = (now, media_time)
            return
        due = self._pace[0] + (media_time - self._pace[1])
        if due - now > MAX_LAG_SECONDS or now - due > MAX_LAG_SECONDS:
            self._pace = (now, media_time)  # a jump in the timestamps, or a long stall: start afresh
        elif due > now:
            await asyncio.sleep(due - now)

    def stop(self) -> None:
        """End the track and release the device, now or, while a read runs, as soon as it returns (never waits)."""
        if self.readyState == "live":
            super().stop()
            self._stopping = True
            self._reader.close()
            if self._read_lock.acquire(blocking=False):  # no read in progress (one that is sees _stopping and closes)
                try:
                    self._close_locked()
                finally:
                    self._read_lock.release()


def camera_track(device: str = "/dev/video0", width: int = 640, height: int = 480,
                 fps: float = 30.0) -> MediaStreamTrack:
    """Open the V4L2 camera at `device` as a video track (SourceError naming the device if it cannot)."""
    if not os.path.exists(device):
        raise SourceError(f"no camera at {device}")
    if not has_input_format("v4l2"):
        raise SourceError(f"cannot open camera {device}: this av build has no v4l2 input")
    options = {"video_size": f"{width}x{height}", "framerate": f"{fps:g}"}
    return capture_track(device, f"camera {device}", fmt="v4l2", options=options)


def capture_track(url: str, description: str, *, fmt: str | None = None,
                  options: dict[str, str] | None = None) -> MediaStreamTrack:
    """Open `url` with av (input format `fmt`) as a live video capture (SourceError naming `description`)."""
    try:
        container = av.open(url, format=fmt, options=options or {})
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SourceError(f"cannot open {description}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"{description} gives no video")
    return _DeviceTrack("video", container, description)


def open_camera(spec: str, width: int = 640, height: int = 480, fps: float = 30.0) -> MediaStreamTrack:
    """Open a camera: a V4L2 device path, or a video file read like one (tests, demos); SourceError if it cannot."""
    if os.path.isfile(spec):
        return capture_track(spec, f"camera file {spec}")
    return camera_track(spec, width, height, fps)


def list_cameras() -> list[tuple[str, str]]:
    """Return the V4L2 video nodes as (path, name), in number order (a name from sysfs when it has one)."""
    found = []
    for entry in os.listdir("/dev") if os.path.isdir("/dev") else []:
        number = entry.removeprefix("video")
        if entry.startswith("video") and number.isdigit():
            try:
                with open(f"/sys/class/video4linux/{entry}/name", encoding="utf-8", errors="replace") as f:
                    name = f.read().strip()
            except OSError:
                name = ""
            found.append((int(number), f"/dev/{entry}", name))
    return [(path, name) for _, path, name in sorted(found)]


def microphone_track(device: str = "default") -> MediaStreamTrack:
    """Open the ALSA capture device `device` as an audio track (SourceError naming the device if it cannot)."""
    if not has_input_format("alsa"):
        raise SourceError(f"cannot open microphone {device!r}: this av build has no alsa input")
    try:
        container = av.open(device, format="alsa")
    except av.FFmpegError as exc:
        raise SourceError(f"cannot open microphone {device!r}: {exc}") from exc
    if not container.streams.audio:
        container.close()
        raise SourceError(f"microphone {device!r} gives no audio")
    return _DeviceTrack("audio", container, f"microphone {device!r}")


def has_input_format(name: str) -> bool:
    """Return whether this av build can read input format `name` (v4l2, alsa...)."""
    return any(name in entry.split(",") for entry in av.formats_available)
