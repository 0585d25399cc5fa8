"""Play the room's shared content on the room's timeline: decode with av in a thread, hand out what is due when.

A `ContentPlayer` follows the room's `PlaybackState` (`follow`) and answers two questions from the screen's own
threads, without ever blocking them: which video frame to show at a server instant (`video_frame`), and which
samples of content audio to play from a server instant on (`audio_pull`). Behind it:

- one decoder thread per loaded content (tvapp.client.decoder.ContentDecoder) opens it with av (`open_media`, so
  tests can slow the I/O down), seeks to where the timeline is (late join, seek), decodes video (optionally
  downscaled to `video_size`) and audio (resampled to packed float32 at `audio_rate` / `audio_channels`) and keeps
  about a second buffered past the timeline position, sleeping while the buffer is full;
- one monitor thread per player feeds a view of the buffer against the timeline to a
  tvapp.core.stall.StallMonitor every `MONITOR_INTERVAL` seconds and acts on its decisions: a screen whose timeline
  has moved past everything decoded for a while has stalled (``on_buffering(True, position, duration)``) until
  enough is buffered again (``on_buffering(False, ...)``); a buffer far off the timeline (the timeline jumped, or
  decoding cannot catch up) makes the decoder seek. The rules, and their tests on a fake clock, are in the core.

Video: the frame shown at a target is the newest frame with pts <= target, so frames repeat or drop as the display
and content rates differ. Audio keeps its own continuous read position and steers it onto the timeline with a
`SyncController`: inaudible rate nudges (<= 0.5 %) for small errors, a jump for large ones.

Media errors (cannot open, cannot read) are kept in `status().media_error` and logged once; they never raise into
the caller's render or audio thread. `attach(room, player)` wires a player to a `tvapp.client.room.Room`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import av
import numpy as np
from av.container import InputContainer

from tvapp.client.decoder import FRAME_TOLERANCE, ContentDecoder, DecodeSettings, MediaError, Samples, default_open
from tvapp.core.playback import PlaybackState, SyncController
from tvapp.core.stall import Report, StallMonitor

if TYPE_CHECKING:
    from tvapp.client.room import Room

log = logging.getLogger(__name__)

__all__ = ["ContentPlayer", "MediaError", "PlayerStatus", "attach", "default_open", "media_opener", "resolve_content"]

MONITOR_INTERVAL = 0.02
"""Seconds between two looks of the monitor thread at the buffer."""
AUDIO_SYNC = {"deadband": 0.005, "gain": 0.5, "max_rate_change": 0.005, "seek_threshold": 0.12}

BufferingCallback = Callable[[bool, float, "float | None"], None]
HoldCallback = Callable[[bool, float], None]


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


class ContentPlayer:
    """Decode the room's content and hand out the frame and the sound due at any server instant (thread-safe).

    `server_now` returns the server clock now (room.clock.now), None while unknown. `on_buffering(stalled,
    position, duration)` is called from the player's threads when this screen stalls or is ready again (and once
    after opening each content, with stalled False and the duration). `open_media` opens a content string as an
    av input container. `video_size` downscales frames in the decoder thread (None: native size). A live stream (``state.live``) is
    decoded by tvapp.client.hls on the event clock (positions are instants), fetched through `content_proxy`.
    """

    def __init__(self, *, server_now: Callable[[], float | None], on_buffering: BufferingCallback | None = None,
                 open_media: Callable[[str], InputContainer] = default_open, audio_rate: int = 48000,
                 audio_channels: int = 2, video: bool = True, audio: bool = True,
                 video_size: tuple[int, int] | None = None, content_proxy: str = "") -> None:
        if audio_rate <= 0 or audio_channels <= 0:
            raise ValueError("audio_rate and audio_channels must be positive")
        self.server_now = server_now
        self.on_buffering = on_buffering
        self.on_hold: HoldCallback | None = None
        """Live: called (stalled, hold) from the monitor thread when the screen's hold (tvapp.core.live.HoldMeter) is
        new or grew: how far behind the room's live edge this screen can hold."""
        self.open_media = open_media
        self.audio_rate = audio_rate
        self.audio_channels = audio_channels
        self.video = video
        self.audio = audio
        self.video_size = video_size
        self.content_proxy = content_proxy
        self._settings = DecodeSettings(audio_rate=audio_rate, audio_channels=audio_channels, video=video,
                                        audio=audio, video_size=video_size)
        self._policy = StallMonitor()
        self._lock = threading.Lock()
        self._state: PlaybackState | None = None
        self._decoder: ContentDecoder | None = None
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
        old_decoder: ContentDecoder | None = None
        with self._lock:
            if self._closed:
                return
            previous, self._state = self._state, state
            decoder = self._decoder
            if state is None or not state.content:
                old_decoder, self._decoder = decoder, None
                self._shown, self._presented = None, None
            elif decoder is None or decoder.content != state.content or \
                    (decoder.live_proxy is not None) != state.live:
                old_decoder = decoder
                self._decoder = ContentDecoder(state.content, self._settings, open_media=self.open_media,
                                               timeline=self._timeline_target, on_opened=self._opened,
                                               live_proxy=self.content_proxy if state.live else None)
                self._decoder.live_edge = self._live_edge_now
                self._shown, self._presented = None, None
                self._decoder.thread.start()
            elif previous is None or previous.seq != state.seq or previous.content != state.content:
                if not self._policy.covers(decoder.view(self._target(state), state.moving)):
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
                for _ in range(chosen - 1):  # the frame before the one shown stays: a pause (or a wait for a
                    frames.popleft()             # stalled screen) just behind it steps back to the room's frame
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

    def _live_edge_now(self) -> float | None:
        """Return the room's live edge instant now (None: not live, or the server clock is unknown)."""
        with self._lock:
            state = self._state
        now = self.server_now()
        return state.live_edge_at(now) if state is not None and now is not None else None

    def _opened(self, decoder: ContentDecoder, duration: float | None) -> None:
        """Tell the listener a content is open (not stalled) and its duration (decoder thread)."""
        self._report(False, self._timeline_target(), duration, decoder)

    def _report(self, stalled: bool, position: float, duration: float | None, decoder: ContentDecoder) -> None:
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
        """Feed the stall monitor a view of the buffer and act on its decisions (monitor thread)."""
        policy = self._policy
        decoder_seen: ContentDecoder | None = None
        while True:
            self._wake.wait(MONITOR_INTERVAL)
            self._wake.clear()
            with self._lock:
                if self._closed:
                    return
                state, decoder, stalled = self._state, self._decoder, self._stalled
            if decoder is not decoder_seen:
                decoder_seen = decoder
                policy.reset()
            if decoder is None or state is None:
                continue
            now = self.server_now()
            target = state.position_at(now) if now is not None else state.position
            view = decoder.view(target, moving=state.moving and now is not None and now >= state.at)
            decision = policy.update(time.monotonic(), view, stalled=stalled)
            if decision.report is not None:
                with decoder.lock:
                    duration = decoder.duration
                self._report(decision.report is Report.STALLED, target, duration, decoder)
            if decision.seek:
                decoder.request_seek()
            with decoder.lock:
                hold, decoder.hold = decoder.hold, None
            callback = self.on_hold
            if hold is not None and callback is not None:  # from this thread, so it follows the stall reports
                try:
                    callback(decision.report is Report.STALLED if decision.report is not None else stalled, hold)
                except Exception:
                    log.exception("content player: on_hold failed")


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

    def report_hold(stalled: bool, hold: float) -> None:
        if loop.is_closed():
            return
        coroutine = room.report_buffering(stalled, hold=hold)
        try:
            asyncio.run_coroutine_threadsafe(coroutine, loop).add_done_callback(sent)
        except RuntimeError:
            coroutine.close()

    player.on_buffering = report
    player.on_hold = report_hold
    remove = room.on(ev.PlaybackChanged, lambda event: player.follow(event.state))
    player.follow(room.playback)

    def detach() -> None:
        remove()
        if player.on_buffering is report:
            player.on_buffering = previous
        if player.on_hold is report_hold:
            player.on_hold = None

    return detach
