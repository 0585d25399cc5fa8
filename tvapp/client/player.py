"""Play the room's shared content on the room's timeline: decode with av in a thread, hand out what is due when.

A `ContentPlayer` follows the room's `PlaybackState` (`follow`) and answers two questions from the screen's own
threads, without ever blocking them: which video frame to show at a server instant (`video_frame`), and which
samples of content audio to play from a server instant on (`audio_pull`). Behind it:

- one decoder thread per loaded content opens it with av (`open_media`, so tests can slow the I/O down), seeks to
  where the timeline is (late join, seek), decodes video (optionally downscaled to `video_size`) and audio
  (resampled to packed float32 at `audio_rate` / `audio_channels`) and keeps about `AHEAD` seconds buffered past
  the timeline position, sleeping while the buffer is full;
- one monitor thread per player watches the buffer against the timeline: a screen whose timeline has moved past
  everything decoded for more than `STALL_AFTER` seconds has stalled (``on_buffering(True, position, duration)``)
  until `READY_AHEAD` seconds are buffered again (``on_buffering(False, ...)``); a buffer far off the timeline
  (the timeline jumped, or decoding cannot catch up) makes the decoder seek.

Video: the frame shown at a target is the newest frame with pts <= target, so frames repeat or drop as the display
and content rates differ. Audio keeps its own continuous read position and steers it onto the timeline with a
`SyncController`: inaudible rate nudges (<= 0.5 %) for small errors, a jump for large ones.

Media errors (cannot open, cannot read) are kept in `status().media_error` and logged once; they never raise into
the caller's render or audio thread. `attach(room, player)` wires a player to a `tvapp.client.room.Room`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import numpy.typing as npt
from av.container import InputContainer

from tvapp.core.playback import PlaybackState, SyncController

if TYPE_CHECKING:
    from tvapp.client.room import Room

log = logging.getLogger(__name__)

AHEAD = 1.0
"""Seconds of content the decoder keeps buffered past the timeline position."""
READY_AHEAD = 0.5
"""A stalled screen is ready again once this much is buffered past the timeline position."""
STALL_AFTER = 0.25
"""Seconds the timeline may run past everything decoded before the screen reports a stall."""
FAR = 0.5
"""A buffer this far off the timeline (seconds) is abandoned for a seek."""
KEEP_BEHIND = 0.3
"""Seconds of decoded content kept behind the timeline position (callers asking for a slightly older instant)."""
FRAME_TOLERANCE = 0.001
MAX_VIDEO_FRAMES = 90
MAX_VIDEO_BYTES = 128 * 1024 * 1024
MONITOR_INTERVAL = 0.02
HTTP_TIMEOUT = 10.0
AUDIO_SYNC = {"deadband": 0.005, "gain": 0.5, "max_rate_change": 0.005, "seek_threshold": 0.12}

BufferingCallback = Callable[[bool, float, "float | None"], None]
Samples = npt.NDArray[np.float32]


class MediaError(Exception):
    """Content cannot be opened or decoded; the message names the content and says why."""


@dataclasses.dataclass(frozen=True)
class PlayerStatus:
    """What a player is doing, for traces and tests.

    `position` is the content position last presented (the pts of the last video frame handed out, or the audio
    read position when there is no video), `target` the timeline position at that instant and `error` their
    difference (positive: ahead); all None before anything was presented. `buffered_ahead` is how many seconds are
    decoded past the timeline position now (negative: the timeline is past them; inf once the content is decoded
    to its end; -inf while nothing is decoded). `audio_rate` is the current audio rate
    nudge (1.0: none). `seeks` counts the decoder's seeks (a late join's first seek included).
    """

    content: str
    position: float | None
    target: float | None
    error: float | None
    stalled: bool
    buffered_ahead: float
    frames_shown: int
    frames_dropped: int
    seeks: int
    audio_rate: float
    duration: float | None
    media_error: str | None
    frames_repeated: int = 0


MEDIA_PREFIX = "/media/"
"""Content named "/media/NAME" is the file NAME in the core's media folder, which the core serves at that path."""


def resolve_content(content: str, server_url: str) -> str:
    """Return what to open for `content` in a room on `server_url`: "/media/..." becomes the core's URL for it."""
    if content.startswith(MEDIA_PREFIX):
        return server_url.rstrip("/") + content
    return content


def media_opener(server_url: str) -> Callable[[str], InputContainer]:
    """Return an `open_media` for ContentPlayer that opens the core's "/media/..." content from `server_url`."""

    def open_media(content: str) -> InputContainer:
        return default_open(resolve_content(content, server_url))

    return open_media


def default_open(content: str) -> InputContainer:
    """Open `content` (a file path or a URL) for decoding; raise MediaError naming it if that fails."""
    options: dict[str, str] = {}
    timeout: float | tuple[float, float] | None = None
    if content.startswith(("http://", "https://")):
        options = {"reconnect": "1", "reconnect_streamed": "1", "reconnect_on_network_error": "1",
                   "reconnect_delay_max": "4", "rw_timeout": str(int(HTTP_TIMEOUT * 1_000_000))}
        timeout = (HTTP_TIMEOUT, HTTP_TIMEOUT)
    elif "://" not in content and not os.path.exists(content):
        raise MediaError(f"cannot open {content}: no such file")
    try:
        return av.open(content, mode="r", options=options, timeout=timeout)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot open {content}: {exc}") from exc


class _AudioBuffer:
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


class _Decoder:
    """One content's decoder thread and what it decoded. Fields below `lock` are shared; hold it to touch them."""

    def __init__(self, content: str, player: ContentPlayer) -> None:
        self.content = content
        self.player = player
        self.lock = threading.Condition()
        self.video: deque[tuple[float, av.VideoFrame]] = deque()
        self.video_end = -math.inf
        self.audio = _AudioBuffer(player.audio_channels)
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
            starts.append(self.audio.start / self.player.audio_rate)
        return min(starts) if starts else math.inf

    def covers(self, target: float) -> bool:
        """Return whether `target` lies in (or just past) what is buffered, so no seek is needed (lock held)."""
        if not self.opened or self.seek_wanted:
            return True  # the decoder seeks to the live timeline position once it gets there
        if self.oldest() > target + FRAME_TOLERANCE:
            return False
        return self.eof or self.ahead(target) > -FAR

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
        try:
            container = self.player.open_media(self.content)
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
        player = self.player
        video = container.streams.video[0] if player.video and container.streams.video else None
        audio = container.streams.audio[0] if player.audio and container.streams.audio else None
        if video is not None:
            video.thread_type = "AUTO"
            width, height = player.video_size or (video.codec_context.width, video.codec_context.height)
            self.max_frames = max(8, min(MAX_VIDEO_FRAMES, MAX_VIDEO_BYTES * 2 // max(1, 3 * width * height)))
        streams = [s for s in (video, audio) if s is not None]
        start = max(0.0, (container.start_time or 0) / av.time_base)
        frame_time = 1 / float(video.average_rate) if video is not None and video.average_rate else 1 / 30
        duration = container.duration / av.time_base if container.duration else None
        # Never ask the player anything while holding self.lock: the player takes its lock, then this one.
        late = player._timeline_target() > 0.1
        with self.lock:
            self.has_video, self.has_audio = video is not None, audio is not None
            self.duration = duration
            self.opened = True
            self.seek_wanted = self.seek_wanted or late
            self.lock.notify_all()
        player._report(False, player._timeline_target(), duration, self)
        if not streams:
            with self.lock:
                self.eof = True
            return
        packets = container.demux(*streams)
        resampler = self._resampler()
        next_sample: int | None = None
        epoch = self.epoch
        while True:
            target = player._timeline_target()
            with self.lock:
                if self.closing:
                    return
                if not self.seek_wanted and self._full(target):
                    self.lock.wait(MONITOR_INTERVAL)
                    continue
                seek, epoch = self.seek_wanted, self.epoch
                self.seek_wanted = False
            if seek:
                self._seek(container, streams, start, player._timeline_target())
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
            target = player._timeline_target()
            for frame in frames:
                if isinstance(frame, av.VideoFrame):
                    self._add_video(frame, start, frame_time, target, epoch)
                elif isinstance(frame, av.AudioFrame):
                    next_sample = self._add_audio(resampler, frame, start, next_sample, target, epoch)

    def _resampler(self) -> av.AudioResampler:
        layout = {1: "mono", 2: "stereo"}.get(self.player.audio_channels, f"{self.player.audio_channels}c")
        return av.AudioResampler(format="flt", layout=layout, rate=self.player.audio_rate)

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
        size = self.player.video_size
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
        rate = self.player.audio_rate
        if frame.time is not None:
            expected = round((frame.time - start) * rate)
            if next_sample is None or abs(expected - next_sample) > rate // 20:
                next_sample = expected
        elif next_sample is None:
            next_sample = 0
        for out in resampler.resample(frame):
            samples = out.to_ndarray().reshape(-1, self.player.audio_channels).astype(np.float32, copy=False)
            with self.lock:
                if epoch != self.epoch:
                    return next_sample
                self.audio.push(next_sample, samples)
                self.audio.prune(int((target - KEEP_BEHIND) * rate))
                self.audio_end = (next_sample + len(samples)) / rate
            next_sample += len(samples)
        return next_sample


class ContentPlayer:
    """Decode the room's content and hand out the frame and the sound due at any server instant (thread-safe).

    `server_now` returns the server clock now (room.clock.now), None while unknown. `on_buffering(stalled,
    position, duration)` is called from the player's threads when this screen stalls or is ready again (and once
    after opening each content, with stalled False and the duration). `open_media` opens a content string as an
    av input container. `video_size` downscales frames in the decoder thread (None: native size).
    """

    def __init__(self, *, server_now: Callable[[], float | None], on_buffering: BufferingCallback | None = None,
                 open_media: Callable[[str], InputContainer] = default_open, audio_rate: int = 48000,
                 audio_channels: int = 2, video: bool = True, audio: bool = True,
                 video_size: tuple[int, int] | None = None) -> None:
        if audio_rate <= 0 or audio_channels <= 0:
            raise ValueError("audio_rate and audio_channels must be positive")
        self.server_now = server_now
        self.on_buffering = on_buffering
        self.open_media = open_media
        self.audio_rate = audio_rate
        self.audio_channels = audio_channels
        self.video = video
        self.audio = audio
        self.video_size = video_size
        self._lock = threading.Lock()
        self._state: PlaybackState | None = None
        self._decoder: _Decoder | None = None
        self._closed = False
        self._wake = threading.Event()
        self._monitor: threading.Thread | None = None
        self._stalled = False
        # The last presentation (render and audio threads) and counters; under _lock.
        self._shown: tuple[av.VideoFrame, float] | None = None
        self._shown_epoch: tuple[int, int] = (-1, -1)
        self._presented: tuple[float, float] | None = None
        self._frames_shown = 0
        self._frames_dropped = 0
        self._frames_repeated = 0
        self._audio_rate_now = 1.0
        # The audio read position: only the audio thread touches these.
        self._sync = SyncController(**AUDIO_SYNC)
        self._read_pos: float | None = None
        self._read_epoch: tuple[int, int] = (-1, -1)

    # -- the room's state ---------------------------------------------------------------------------------------------

    def follow(self, state: PlaybackState | None) -> None:
        """Take the room's new playback state (a load, seek, pause, stop...); call from any thread."""
        old_decoder: _Decoder | None = None
        with self._lock:
            if self._closed:
                return
            previous, self._state = self._state, state
            decoder = self._decoder
            if state is None or not state.content:
                old_decoder, self._decoder = decoder, None
                self._shown, self._presented = None, None
            elif decoder is None or decoder.content != state.content:
                old_decoder = decoder
                self._decoder = _Decoder(state.content, self)
                self._shown, self._presented = None, None
                self._decoder.thread.start()
            elif previous is None or previous.seq != state.seq or previous.content != state.content:
                target = self._target(state)
                with decoder.lock:
                    covered = decoder.covers(target)
                if not covered:
                    decoder.request_seek()
            if self._monitor is None:
                self._monitor = threading.Thread(target=self._watch, name="content monitor", daemon=True)
                self._monitor.start()
        if old_decoder is not None:
            old_decoder.close()
        self._wake.set()

    def close(self) -> None:
        """Stop decoding and the player's threads; the player shows and plays nothing afterwards."""
        with self._lock:
            self._closed = True
            decoder, self._decoder, self._state = self._decoder, None, None
            monitor = self._monitor
        self._wake.set()
        if decoder is not None:
            decoder.close()
            decoder.thread.join(timeout=2.0)
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join(timeout=2.0)

    # -- what the screen asks -----------------------------------------------------------------------------------------

    def video_frame(self, server_time: float) -> tuple[av.VideoFrame, float] | None:
        """Return (frame, pts) to show at server instant `server_time`, or None when there is nothing to show.

        The frame is the newest decoded one with pts <= the timeline position then (frames repeat or drop as
        needed); before the decoder has it, the last frame shown is held. Never blocks for long.
        """
        with self._lock:
            state, decoder = self._state, self._decoder
        if state is None or decoder is None or not self.video:
            return None
        target = state.position_at(server_time)
        dropped = 0
        with decoder.lock:
            frames = decoder.video
            chosen = -1
            for index, (pts, _) in enumerate(frames):
                if pts > target + FRAME_TOLERANCE:
                    break
                chosen = index
            if chosen < 0:
                picked = None
            else:
                epoch = (id(decoder), decoder.epoch)
                picked = frames[chosen]
                last_pts = self._shown[1] if self._shown is not None and epoch == self._shown_epoch else None
                if last_pts is not None:
                    dropped = sum(1 for pts, _ in list(frames)[:chosen] if pts > last_pts + FRAME_TOLERANCE)
                for _ in range(chosen):
                    frames.popleft()
        with self._lock:
            if self._decoder is not decoder:
                return None
            if picked is None:
                return self._shown
            pts, frame = picked
            if self._shown is not None and self._shown[0] is frame:
                self._frames_repeated += 1
            else:
                self._frames_shown += 1
                self._frames_dropped += dropped
            self._shown, self._shown_epoch = (frame, pts), epoch
            self._presented = (pts, target)
            return frame, pts

    def audio_pull(self, frames: int, server_time: float) -> Samples | None:
        """Return float32 (frames, channels) of content audio to be heard from server instant `server_time` on.

        Silence while paused, before the timeline starts, while stalled or past the end; None when nothing is
        loaded or the content has no audio. Call from one audio thread; never blocks for long.
        """
        with self._lock:
            state, decoder = self._state, self._decoder
        if state is None or decoder is None or not self.audio or decoder.has_audio is False or decoder.error:
            return None
        out = np.zeros((frames, self.audio_channels), dtype=np.float32)
        rate = self.audio_rate
        with decoder.lock:
            epoch = (id(decoder), decoder.epoch)
        if not decoder.opened or not state.moving:
            self._read_pos = None  # the next sound starts exactly where the timeline is then
            self._sync.reset()
            self._note_audio(1.0, None)
            return out
        lead = 0
        speed = 1.0
        if server_time < state.at:
            lead = int(round((state.at - server_time) * rate))
            if lead >= frames:
                self._read_pos = None
                self._note_audio(1.0, None)
                return out
            self._read_pos, self._read_epoch = state.position, epoch
            self._sync.reset()
            target = state.position
        else:
            target = state.position_at(server_time)
            if self._read_pos is None or epoch != self._read_epoch:
                self._read_pos, self._read_epoch = target, epoch
                self._sync.reset()
            correction = self._sync.update(self._read_pos - target, target)
            if correction.seek_to is not None:
                self._read_pos = target
            speed = correction.rate
        count = frames - lead
        step = speed * state.rate
        with decoder.lock:
            chunk = decoder.audio.read(self._read_pos * rate, count, step)
        if chunk is None:
            self._read_pos = None
            self._sync.reset()
            self._note_audio(1.0, None)
            return out
        out[lead:] = chunk
        self._note_audio(speed, (self._read_pos, target))
        self._read_pos += count * step / rate
        return out

    def status(self) -> PlayerStatus:
        """Return a snapshot of what the player is doing."""
        with self._lock:
            state, decoder = self._state, self._decoder
            presented = self._presented
            shown, dropped, repeated = self._frames_shown, self._frames_dropped, self._frames_repeated
            audio_rate, stalled = self._audio_rate_now, self._stalled
        ahead, seeks, duration, error = 0.0, 0, None, None
        if decoder is not None and state is not None:
            target = self._target(state)
            with decoder.lock:
                ahead = decoder.ahead(target)
                seeks, duration, error = decoder.seeks, decoder.duration, decoder.error
        return PlayerStatus(
            content=state.content if state is not None else "",
            position=presented[0] if presented else None, target=presented[1] if presented else None,
            error=presented[0] - presented[1] if presented else None, stalled=stalled,
            buffered_ahead=ahead, frames_shown=shown,
            frames_dropped=dropped, seeks=seeks, audio_rate=audio_rate, duration=duration, media_error=error,
            frames_repeated=repeated)

    # -- inside ---------------------------------------------------------------------------------------------------------

    def _note_audio(self, speed: float, presented: tuple[float, float] | None) -> None:
        with self._lock:
            self._audio_rate_now = speed
            decoder = self._decoder
            if presented is not None and (not self.video or (decoder is not None and decoder.has_video is False)):
                self._presented = presented

    def _target(self, state: PlaybackState) -> float:
        now = self.server_now()
        return state.position_at(now) if now is not None else state.position

    def _timeline_target(self) -> float:
        with self._lock:
            state = self._state
        return self._target(state) if state is not None and state.content else 0.0

    def _report(self, stalled: bool, position: float, duration: float | None, decoder: _Decoder) -> None:
        with self._lock:
            if self._decoder is not decoder or self._closed:
                return
            self._stalled = stalled
        callback = self.on_buffering
        if callback is None:
            return
        try:
            callback(stalled, position, duration)
        except Exception:  # the listener's failure must not stop playback
            log.exception("content player: on_buffering failed")

    def _watch(self) -> None:
        """Watch the buffer against the timeline: report stalls and readiness, seek when far off (monitor thread)."""
        decoder_seen: _Decoder | None = None
        missing_since: float | None = None
        behind: tuple[float, float] | None = None
        last_seek = -math.inf
        while True:
            self._wake.wait(MONITOR_INTERVAL)
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
                state, decoder, stalled = self._state, self._decoder, self._stalled
            if decoder is not decoder_seen:
                decoder_seen, missing_since, behind = decoder, None, None
            if decoder is None or state is None:
                continue
            now = self.server_now()
            target = state.position_at(now) if now is not None else state.position
            clock = time.monotonic()
            with decoder.lock:
                ahead, oldest = decoder.ahead(target), decoder.oldest()
                opened, failed, pending = decoder.opened, decoder.error is not None, decoder.seek_wanted
                duration = decoder.duration
            moving = state.moving and now is not None and now >= state.at
            if failed:
                if stalled:
                    self._report(False, target, duration, decoder)
                continue
            if moving and ahead < 0:
                missing_since = clock if missing_since is None else missing_since
                if not stalled and clock - missing_since > STALL_AFTER:
                    self._report(True, target, duration, decoder)
            else:
                missing_since = None
                if stalled and ahead >= READY_AHEAD:
                    self._report(False, target, duration, decoder)
            if not opened or pending:
                behind = None
                continue
            if oldest > target + FAR and math.isfinite(oldest):
                decoder.request_seek()
                last_seek, behind = clock, None
            elif -ahead > FAR:
                if behind is None or -ahead < behind[1] - 0.05:
                    behind = (clock, -ahead)
                elif clock - behind[0] > FAR and clock - last_seek > 1.0:
                    decoder.request_seek()
                    last_seek, behind = clock, None
            else:
                behind = None


def attach(room: Room, player: ContentPlayer) -> Callable[[], None]:
    """Make `player` follow `room`'s content and report its stalls to the room; return a function that undoes it.

    Call on the room's event loop: buffering reports hop back onto that loop from the player's threads.
    """
    import asyncio
    from concurrent.futures import Future

    from tvapp.client import events as ev

    loop = asyncio.get_running_loop()
    previous = player.on_buffering

    def sent(future: Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.info("content player: buffering report not sent: %s", future.exception())

    def report(stalled: bool, position: float, duration: float | None) -> None:
        if previous is not None:
            previous(stalled, position, duration)
        if loop.is_closed():
            return
        coroutine = room.report_buffering(stalled, position, duration)
        try:
            asyncio.run_coroutine_threadsafe(coroutine, loop).add_done_callback(sent)
        except RuntimeError:  # the loop is closing: the room is going away anyway
            coroutine.close()

    player.on_buffering = report
    remove = room.on(ev.PlaybackChanged, lambda event: player.follow(event.state))
    player.follow(room.playback)

    def detach() -> None:
        remove()
        if player.on_buffering is report:
            player.on_buffering = previous

    return detach
