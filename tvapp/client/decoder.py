"""Decode one content for the content player: a thread that keeps about `AHEAD` seconds buffered past the timeline.

A live HLS stream (``live_proxy`` set) is read by tvapp.client.hls.decode_live instead: positions are then
instants of the event. `ContentDecoder` opens the content with `open_media` (`default_open`: a file path or a URL, with reconnects and
timeouts for HTTP), seeks to where the timeline is when it starts late or is asked to (`request_seek`), and
decodes video (optionally downscaled) and audio (resampled to packed float32, kept in an `AudioBuffer` indexed by
sample number), sleeping while the buffer is full. Everything it decoded sits behind its `lock`; the player's
threads read it from there. `view(target, moving)` summarises the buffer for tvapp.core.stall.StallMonitor.

Media errors (cannot open, cannot read) end the decoder, never the caller: they are kept in `error` and logged.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from av.container import InputContainer

from tvapp.client.trust import ca_file
from tvapp.core.stall import BufferView
from tvapp.core.timeline import content_refusal

log = logging.getLogger("tvapp.client.player")

AHEAD = 1.0
"""Seconds of content the decoder keeps buffered past the timeline position."""
KEEP_BEHIND = 0.3
"""Seconds of decoded content kept behind the timeline position (callers asking for a slightly older instant)."""
FRAME_TOLERANCE = 0.001
MAX_VIDEO_FRAMES = 90
MAX_VIDEO_BYTES = 128 * 1024 * 1024
WAIT_INTERVAL = 0.02
"""Seconds a decoder with a full buffer sleeps before looking again (it is woken early by a seek or a close)."""
HTTP_TIMEOUT = 10.0

Samples = npt.NDArray[np.float32]


class MediaError(Exception):
    """Content cannot be opened or decoded; the message names the content and says why."""


def default_open(content: str) -> InputContainer:
    """Open `content` (a file path or a URL) for decoding; raise MediaError naming it if that fails."""
    options: dict[str, str] = {}
    timeout: float | tuple[float, float] | None = None
    if content.startswith(("http://", "https://")):
        options = {"reconnect": "1", "reconnect_streamed": "1", "reconnect_on_network_error": "1",
                   "reconnect_delay_max": "4", "rw_timeout": str(int(HTTP_TIMEOUT * 1_000_000))}
        timeout = (HTTP_TIMEOUT, HTTP_TIMEOUT)
        pinned = ca_file(content)
        if pinned is not None:  # the TV's own core: verify its certificate (FFmpeg verifies nothing by default)
            options.update(tls_verify="1", ca_file=pinned)
    elif content_refusal(content) is not None:  # FFmpeg's tcp://, gopher://, pipe:, concat: ...: never opened
        raise MediaError(f"cannot open {content[:80]}: {content_refusal(content)}")
    elif "://" not in content and not os.path.isfile(content):  # no device, FIFO or socket named by a host
        raise MediaError(f"cannot open {content}: no such file")
    try:
        return av.open(content, mode="r", options=options, timeout=timeout)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot open {content}: {exc}") from exc


class AudioBuffer:
    """Decoded content audio as contiguous chunks of samples, indexed by sample number on the content timeline."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.chunks: deque[tuple[int, Samples]] = deque()

    @property
    def start(self) -> int:
        """Return the index of the first buffered sample."""
        return self.chunks[0][0] if self.chunks else 0

    @property
    def end(self) -> int:
        """Return the index just past the last buffered sample."""
        return self.chunks[-1][0] + len(self.chunks[-1][1]) if self.chunks else 0

    def push(self, index: int, samples: Samples) -> None:
        """Append `samples` that start at sample `index` (a gap or overlap of one chunk restarts the buffer)."""
        if self.chunks and index != self.end:
            self.chunks.clear()
        self.chunks.append((index, samples))

    def prune(self, before: int) -> None:
        """Drop the chunks that end before sample `before`."""
        while self.chunks and self.chunks[0][0] + len(self.chunks[0][1]) < before:
            self.chunks.popleft()

    def clear(self) -> None:
        """Drop everything."""
        self.chunks.clear()

    def read(self, position: float, count: int, step: float) -> Samples | None:
        """Return `count` samples from sample `position` on, `step` samples apart (interpolated; zeros past the
        end), or None if `position` is not buffered."""
        if not self.chunks or not self.start <= position < self.end:
            return None
        positions = position + step * np.arange(count)
        low = int(math.floor(position))
        high = min(self.end, int(math.floor(positions[-1])) + 2)
        span = self._span(low, high)
        x = positions - low
        grid = np.arange(len(span))
        out = np.empty((count, self.channels), dtype=np.float32)
        for channel in range(self.channels):
            out[:, channel] = np.interp(x, grid, span[:, channel], right=0.0)
        return out

    def _span(self, low: int, high: int) -> Samples:
        parts = []
        for index, samples in self.chunks:
            if index + len(samples) <= low:
                continue
            if index >= high:
                break
            parts.append(samples[max(0, low - index):high - index])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """What a player wants decoded: video (downscaled to `video_size` if set) and audio at `audio_rate` Hz with
    `audio_channels` channels of packed float32."""

    audio_rate: int = 48000
    audio_channels: int = 2
    video: bool = True
    audio: bool = True
    video_size: tuple[int, int] | None = None


class ContentDecoder:
    """One content's decoder thread and what it decoded. Fields below `lock` are shared; hold it to touch them.

    `open_media` opens the content; `timeline()` returns the timeline position now (the decoder keeps `AHEAD`
    seconds past it and seeks to it); `on_opened(decoder, duration)` is called once the content is open. Never
    call the player's side while holding `lock`: the player takes its own lock, then this one.
    """

    def __init__(self, content: str, settings: DecodeSettings, *, open_media: Callable[[str], InputContainer],
                 timeline: Callable[[], float],
                 on_opened: Callable[[ContentDecoder, float | None], None], live_proxy: str | None = None) -> None:
        self.content = content
        self.live_proxy = live_proxy
        """Not None: a live HLS stream, decoded segment by segment on the event clock (tvapp.client.hls), fetched
        through this proxy ("" = direct)."""
        self.settings = settings
        self.open_media = open_media
        self.timeline = timeline
        self.on_opened = on_opened
        self.lock = threading.Condition()
        self.video: deque[tuple[float, av.VideoFrame]] = deque()
        self.video_end = -math.inf
        self.audio = AudioBuffer(settings.audio_channels)
        self.audio_end = -math.inf
        self.has_video: bool | None = None
        self.has_audio: bool | None = None
        self.opened = False
        self.eof = False
        self.error: str | None = None
        self.duration: float | None = None
        self.seek_wanted = False
        self.epoch = 0
        self.seeks = 0
        self.closing = False
        self.max_frames = MAX_VIDEO_FRAMES
        self.live_edge: Callable[[], float | None] = lambda: None
        """Live: the room's live edge instant now (None while unknown), for the screen's hold (tvapp.client.hls)."""
        self.hold: float | None = None
        """Live: a hold measured and not yet told to the room (the player's monitor takes it)."""
        self.thread = threading.Thread(target=self._run, name="content decoder", daemon=True)

    # -- called from other threads --------------------------------------------------------------------------------

    def request_seek(self) -> None:
        """Drop what is buffered and make the decoder seek to where the timeline is when it gets to it."""
        with self.lock:
            self.seek_wanted = True
            self.epoch += 1
            self._clear()
            self.lock.notify_all()

    def close(self) -> None:
        """Ask the thread to stop; it closes the container itself (it may be blocked in a read now)."""
        with self.lock:
            self.closing = True
            self.lock.notify_all()

    def ahead(self, target: float) -> float:
        """Return how many seconds are decoded past `target` on every stream played (lock held)."""
        if self.error is not None or self.eof:
            return math.inf
        if not self.opened:
            return -math.inf
        ends = []
        if self.has_video:
            ends.append(self.video_end)
        if self.has_audio:
            ends.append(self.audio_end)
        return min(ends) - target if ends else math.inf

    def oldest(self) -> float:
        """Return the content position of the oldest buffered frame or sample (inf when empty; lock held)."""
        starts = []
        if self.has_video and self.video:
            starts.append(self.video[0][0])
        if self.has_audio and self.audio.chunks:
            starts.append(self.audio.start / self.settings.audio_rate)
        return min(starts) if starts else math.inf

    def view(self, target: float, moving: bool) -> BufferView:
        """Return what is buffered against timeline position `target`, for the stall monitor (takes the lock)."""
        with self.lock:
            return BufferView(target=target, moving=moving, ahead=self.ahead(target), oldest=self.oldest(),
                              opened=self.opened, failed=self.error is not None, seek_pending=self.seek_wanted,
                              eof=self.eof)

    # -- the thread -----------------------------------------------------------------------------------------------

    def _clear(self) -> None:
        self.video.clear()
        self.video_end = -math.inf
        self.audio.clear()
        self.audio_end = -math.inf
        self.eof = False

    def _fail(self, message: str) -> None:
        log.warning("content player: %s", message)
        with self.lock:
            self.error = message
            self.lock.notify_all()

    def _run(self) -> None:
        if self.live_proxy is not None:
            from tvapp.client.hls import decode_live, shown
            try:
                decode_live(self, self.live_proxy)
            except Exception as exc:  # a broken stream ends this content, not the screen
                self._fail(f"cannot play the live stream {shown(self.content)}: {exc}")
            return
        try:
            container = self.open_media(self.content)
        except MediaError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:  # an opener may fail in any way; the screen must keep running
            self._fail(f"cannot open {self.content}: {exc}")
            return
        try:
            self._decode(container)
        except Exception as exc:  # av raises many kinds; a broken stream ends this content, not the screen
            self._fail(f"cannot decode {self.content}: {exc}")
        finally:
            try:
                container.close()
            except Exception:  # closing a half-broken container must not hide why it broke
                log.debug("content player: closing %s failed", self.content, exc_info=True)

    def _decode(self, container: InputContainer) -> None:
        settings = self.settings
        video = container.streams.video[0] if settings.video and container.streams.video else None
        audio = container.streams.audio[0] if settings.audio and container.streams.audio else None
        if video is not None:
            video.thread_type = "AUTO"
            width, height = settings.video_size or (video.codec_context.width, video.codec_context.height)
            self.max_frames = max(8, min(MAX_VIDEO_FRAMES, MAX_VIDEO_BYTES * 2 // max(1, 3 * width * height)))
        streams = [s for s in (video, audio) if s is not None]
        start = max(0.0, (container.start_time or 0) / av.time_base)
        frame_time = 1 / float(video.average_rate) if video is not None and video.average_rate else 1 / 30
        duration = container.duration / av.time_base if container.duration else None
        # Never ask the player anything while holding self.lock: the player takes its lock, then this one.
        late = self.timeline() > 0.1
        with self.lock:
            self.has_video, self.has_audio = video is not None, audio is not None
            self.duration = duration
            self.opened = True
            self.seek_wanted = self.seek_wanted or late
            self.lock.notify_all()
        self.on_opened(self, duration)
        if not streams:
            with self.lock:
                self.eof = True
            return
        packets = container.demux(*streams)
        resampler = self._resampler()
        next_sample: int | None = None
        epoch = self.epoch
        while True:
            target = self.timeline()
            with self.lock:
                if self.closing:
                    return
                if not self.seek_wanted and self._full(target):
                    self.lock.wait(WAIT_INTERVAL)
                    continue
                seek, epoch = self.seek_wanted, self.epoch
                self.seek_wanted = False
            if seek:
                self._seek(container, streams, start, self.timeline())
                packets = container.demux(*streams)
                resampler, next_sample = self._resampler(), None
            try:
                packet = next(packets)
            except StopIteration:
                self._end(epoch)
                continue
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                continue
            target = self.timeline()
            for frame in frames:
                if isinstance(frame, av.VideoFrame):
                    self._add_video(frame, start, frame_time, target, epoch)
                elif isinstance(frame, av.AudioFrame):
                    next_sample = self._add_audio(resampler, frame, start, next_sample, target, epoch)

    def _resampler(self) -> av.AudioResampler:
        channels = self.settings.audio_channels
        layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
        return av.AudioResampler(format="flt", layout=layout, rate=self.settings.audio_rate)

    def _full(self, target: float) -> bool:
        if self.eof:
            return True
        if len(self.video) >= self.max_frames:
            return True
        return self.ahead(target) >= AHEAD or self.audio_end - target >= 4 * AHEAD

    def _end(self, epoch: int) -> None:
        with self.lock:
            if epoch == self.epoch:
                self.eof = True
            self.lock.notify_all()

    def _seek(self, container: InputContainer, streams: list[Any], start: float, target: float) -> None:
        try:
            container.seek(max(0, int((target + start) * av.time_base)), backward=True)
        except av.FFmpegError as exc:  # a live stream cannot seek: carry on from where it is
            log.info("content player: cannot seek %s: %s", self.content, exc)
        for stream in streams:
            stream.codec_context.flush_buffers()
        with self.lock:
            self.seeks += 1

    def _add_video(self, frame: av.VideoFrame, start: float, frame_time: float, target: float, epoch: int) -> None:
        pts = frame.time - start if frame.time is not None else max(0.0, self.video_end)
        if pts + frame_time < target - KEEP_BEHIND:  # catching up after a seek: only note the progress
            with self.lock:
                if epoch == self.epoch:
                    self.video_end = max(self.video_end, pts + frame_time)
            return
        size = self.settings.video_size
        if size is not None and (frame.width, frame.height) != size:
            frame = frame.reformat(width=size[0], height=size[1])
        with self.lock:
            if epoch != self.epoch:
                return
            self.video.append((pts, frame))
            self.video_end = max(self.video_end, pts + frame_time)
            while len(self.video) >= 2 and self.video[1][0] <= target - KEEP_BEHIND:
                self.video.popleft()

    def _add_audio(self, resampler: av.AudioResampler, frame: av.AudioFrame, start: float, next_sample: int | None,
                   target: float, epoch: int) -> int | None:
        rate = self.settings.audio_rate
        if frame.time is not None:
            expected = round((frame.time - start) * rate)
            if next_sample is None or abs(expected - next_sample) > rate // 20:
                next_sample = expected
        elif next_sample is None:
            next_sample = 0
        for out in resampler.resample(frame):
            samples = out.to_ndarray().reshape(-1, self.settings.audio_channels).astype(np.float32, copy=False)
            with self.lock:
                if epoch != self.epoch:
                    return next_sample
                self.audio.push(next_sample, samples)
                self.audio.prune(int((target - KEEP_BEHIND) * rate))
                self.audio_end = (next_sample + len(samples)) / rate
            next_sample += len(samples)
        return next_sample
