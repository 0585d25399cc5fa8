"""Media files as sources: `FileTracks(path)` plays a file's audio and video as two paced, looping tracks.

A `_FilePlayer` demuxes and decodes on demand from worker threads; both tracks share its clock so audio and video
stay together across loops.
"""

from __future__ import annotations

import asyncio
import fractions
import os
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame

from tvapp.client.sources.common import (
    FILE_AUDIO_RATE,
    VIDEO_CLOCK_RATE,
    Pacer,
    SourceError,
    wait_until,
)

_BUFFERED_FRAMES_MAX = 500


class _FilePlayer:
    """Demux and decode one media file on demand (from worker threads), looping, for its two tracks.

    Both tracks share one clock so audio and video stay together: a frame's `seconds` is its place on
    the playback timeline, which keeps growing across loops.
    """

    def __init__(self, path: str, loop: bool) -> None:
        self.path = path
        self.loop = loop
        self.container = open_container(path)
        audio = [s for s in self.container.streams if s.type == "audio"]
        video = [s for s in self.container.streams if s.type == "video"]
        self.audio_stream = audio[0] if audio else None
        self.video_stream = video[0] if video else None
        self.streams = [s for s in (self.audio_stream, self.video_stream) if s is not None]
        if not self.streams:
            self.container.close()
            raise SourceError(f"media file {path} has neither audio nor video")
        self.pacer = Pacer()
        self._lock = threading.Lock()
        self._buffers: dict[str, deque[tuple[Frame, float]]] = {"audio": deque(), "video": deque()}
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=FILE_AUDIO_RATE, frame_size=960)
        self._packets = self.container.demux(self.streams)
        self._origin: float | None = None
        self._loop_offset = 0.0
        self._pass_end = 0.0
        self._pass_frames = 0
        self._audio_clock: float | None = None
        self._open_tracks = len(self.streams)
        self._closed = False

    def next_frame(self, kind: str) -> tuple[Frame, float] | None:
        """Return the next (frame, seconds) of `kind`, or None at the end (blocks: call from a worker)."""
        with self._lock:
            buffer = self._buffers[kind]
            while not buffer:
                if self._closed or not self._decode_more():
                    return None
            return buffer.popleft()

    def release(self) -> None:
        """Note that one track stopped; close the file once both did."""
        with self._lock:
            self._open_tracks -= 1
            if self._open_tracks <= 0 and not self._closed:
                self._closed = True
                self.container.close()

    def _decode_more(self) -> bool:
        try:
            packet = next(self._packets)
        except StopIteration:
            return self._restart()
        except av.FFmpegError as exc:
            raise SourceError(f"cannot read media file {self.path}: {exc}") from exc
        try:
            frames = packet.decode()
        except av.FFmpegError:
            return True
        for frame in frames:
            if isinstance(frame, av.VideoFrame):
                self._add_video(frame)
            elif isinstance(frame, av.AudioFrame):
                for chunk in self._resampler.resample(frame):
                    self._add_audio(chunk, frame.time)
        return True

    def _restart(self) -> bool:
        if not self.loop or self._pass_frames == 0:
            return False
        self._loop_offset = self._pass_end
        self._pass_frames = 0
        self._audio_clock = None
        for stream in self.streams:
            stream.codec_context.flush_buffers()
        self.container.seek(0)
        self._packets = self.container.demux(self.streams)
        return True

    def _timeline(self, media_seconds: float | None) -> float:
        if media_seconds is None:
            return self._pass_end
        if self._origin is None:
            self._origin = media_seconds
        return self._loop_offset + max(0.0, media_seconds - self._origin)

    def _add_video(self, frame: av.VideoFrame) -> None:
        seconds = self._timeline(frame.time)
        rate = self.video_stream.average_rate if self.video_stream is not None else None
        duration = 1 / float(rate) if rate else 1 / 30
        self._push("video", frame, seconds, seconds + duration)

    def _add_audio(self, frame: av.AudioFrame, source_seconds: float | None) -> None:
        if self._audio_clock is None:
            self._audio_clock = self._timeline(source_seconds)
        seconds = self._audio_clock
        self._audio_clock += frame.samples / FILE_AUDIO_RATE
        self._push("audio", frame, seconds, self._audio_clock)

    def _push(self, kind: str, frame: Frame, seconds: float, end: float) -> None:
        self._pass_frames += 1
        self._pass_end = max(self._pass_end, end)
        buffer = self._buffers[kind]
        buffer.append((frame, seconds))
        if len(buffer) > _BUFFERED_FRAMES_MAX:
            buffer.popleft()


class _FileTrack(MediaStreamTrack):
    """One stream of a _FilePlayer, paced on the player's shared clock."""

    def __init__(self, player: _FilePlayer, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._player = player
        self._last_pts = -1

    async def recv(self) -> Frame:
        """Return the next frame of the file once it is due (MediaStreamError at the end)."""
        if self.readyState != "live":
            raise MediaStreamError
        item = await asyncio.get_running_loop().run_in_executor(None, self._player.next_frame, self.kind)
        if item is None or self.readyState != "live":
            self.stop()
            raise MediaStreamError
        frame, seconds = item
        await wait_until(self._player.pacer, seconds)
        rate = VIDEO_CLOCK_RATE if self.kind == "video" else FILE_AUDIO_RATE
        pts = max(round(seconds * rate), self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, rate)
        return frame

    def stop(self) -> None:
        """End this track; the file closes once its other track ended too."""
        if self.readyState == "live":
            super().stop()
            self._player.release()


class FileTracks:
    """Play a media file as (audio, video) tracks, looping, paced; unpack with `audio, video = FileTracks(p)`."""

    def __init__(self, path: str, loop: bool = True) -> None:
        player = _FilePlayer(path, loop)
        self.audio: MediaStreamTrack | None = _FileTrack(player, "audio") if player.audio_stream else None
        self.video: MediaStreamTrack | None = _FileTrack(player, "video") if player.video_stream else None

    def __iter__(self) -> Iterator[MediaStreamTrack | None]:
        """Yield the audio track then the video track (None where the file has no such stream)."""
        yield self.audio
        yield self.video

    def stop(self) -> None:
        """End both tracks and close the file."""
        for track in (self.audio, self.video):
            if track is not None:
                track.stop()


def open_container(path: str) -> Any:
    """Open the media file at `path` for decoding (SourceError naming it if that fails)."""
    if not os.path.isfile(path):
        raise SourceError(f"no media file at {path}")
    try:
        return av.open(path)
    except av.FFmpegError as exc:
        raise SourceError(f"cannot open media file {path}: {exc}") from exc
