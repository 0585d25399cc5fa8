"""Render one composition: decode a room session's recordings with PyAV, lay the tiles out, mix the audio, encode.

`render(job, on_progress)` is the whole thing, run in a worker process (``python -m tvapp.compose``) or by
`tvapp compose --data`. Video: each participant's recording is decoded in order (threaded decoder); at every
output frame time the newest decoded frame of each tile is scaled into its letterboxed rectangle
(tvapp.core.compositions.picture_rect, i.e. tvapp.core.layout.fit) - only when it changed, so a frame that is
never shown is decoded but never scaled - and pasted into one reused RGB canvas; before a track's offset, after
its end, and where the recording has a gap longer than MAX_HOLD (a camera turned off), the tile is black.
Audio: every picked audio track is decoded to 48 kHz mono float, each decoded frame placed at its recording
offset plus its own timestamp (so gaps stay silent), summed and clipped.
Output: H.264 + AAC in MP4 or VP8 + Opus in WebM, written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from tvapp.core.compositions import (
    SPEAKER_WINDOW,
    Request,
    Track,
    picture_rect,
    select,
    span,
    speaker_at,
    speaker_timeline,
    tile_rects,
)
from tvapp.core.layout import Rect

RATE = 48_000
MAX_HOLD = 1.0  # seconds a tile keeps showing a recording's last frame; a longer gap in the recording is black
Progress = Callable[[float, float], None]


class RenderError(Exception):
    """The composition cannot be rendered (no usable recording, a file that does not decode)."""


@dataclass
class Job:
    """What to render: the request, the session's recordings (files under `root`) and the output path."""

    request: Request
    tracks: list[Track]
    root: Path
    output: Path
    threads: int = 1


class VideoSource:
    """One video recording, decoded in order; `picture(t)` is its frame at session time t, scaled for its tile."""

    def __init__(self, path: Path, track: Track, threads: int) -> None:
        self.track = track
        self.container = av.open(str(path))
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        self.frames: Iterator[av.VideoFrame] = self.container.decode(stream)
        self.base: float | None = None
        self.current: av.VideoFrame | None = None
        self.upcoming: av.VideoFrame | None = self._next()
        self.cache: tuple[int, Rect, np.ndarray] | None = None

    def _next(self) -> av.VideoFrame | None:
        try:
            frame = next(self.frames)
        except (StopIteration, av.error.FFmpegError):
            return None
        t = frame.time or 0.0
        if self.base is None:
            self.base = t
        return frame

    def _time(self, frame: av.VideoFrame) -> float:
        return self.track.offset + (frame.time or 0.0) - (self.base or 0.0)

    def picture(self, t: float, rect: Rect) -> np.ndarray | None:
        """Return the RGB picture (rect-sized) showing at session time t, or None (before the start, after the end)."""
        if t < self.track.offset or t > self.track.offset + self.track.duration + 0.2:
            return None
        while self.upcoming is not None and self._time(self.upcoming) <= t + 1e-6:
            self.current, self.upcoming = self.upcoming, self._next()
        if self.current is None or rect.w == 0 or rect.h == 0 or t - self._time(self.current) > MAX_HOLD:
            return None
        key = id(self.current)
        if self.cache is None or self.cache[0] != key or self.cache[1] != rect:
            image = self.current.reformat(width=rect.w, height=rect.h, format="rgb24").to_ndarray()
            self.cache = (key, rect, image)
        return self.cache[2]

    def close(self) -> None:
        """Close the file."""
        self.container.close()


@dataclass
class AudioSource:
    """One audio recording decoded to 48 kHz mono float chunks placed at their session sample index."""

    path: Path
    track: Track
    chunks: list[tuple[int, np.ndarray]] = field(default_factory=list)
    done: bool = False

    def __post_init__(self) -> None:
        self.container = av.open(str(self.path))
        stream = self.container.streams.audio[0]
        self.frames: Iterator[av.AudioFrame] = self.container.decode(stream)
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        self.base: float | None = None
        self.cursor = round(self.track.offset * RATE)  # where the next chunk goes when a frame has no time

    def _pull(self) -> bool:
        try:
            frame = next(self.frames)
        except (StopIteration, av.error.FFmpegError):
            self.done = True
            return False
        if frame.time is not None:
            if self.base is None:
                self.base = frame.time
            self.cursor = round((self.track.offset + frame.time - self.base) * RATE)
        for out in self.resampler.resample(frame):
            samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            self.chunks.append((self.cursor, samples))
            self.cursor += len(samples)
        return True

    def add_into(self, mix: np.ndarray, start: int) -> None:
        """Add this track's samples from session sample `start` into `mix` (len(mix) samples)."""
        end = start + len(mix)
        while not self.done and (not self.chunks or self.chunks[-1][0] + len(self.chunks[-1][1]) < end):
            self._pull()
        keep: list[tuple[int, np.ndarray]] = []
        for at, samples in self.chunks:
            stop = at + len(samples)
            if stop <= start:
                continue
            keep.append((at, samples))
            lo, hi = max(at, start), min(stop, end)
            if lo < hi:
                mix[lo - start:hi - start] += samples[lo - at:hi - at]
        self.chunks = keep

    def close(self) -> None:
        """Close the file."""
        self.container.close()


def audio_levels(root: Path, tracks: list[Track], people: list[str], window: float = SPEAKER_WINDOW
                 ) -> list[list[float]]:
    """Return each participant's RMS per `window` seconds of the session, from their audio recordings."""
    step = round(window * RATE)
    end = max((t.offset + t.duration for t in tracks), default=0.0)
    windows = math.ceil(end / window) + 1
    levels = [[0.0] * windows for _ in people]
    for track in tracks:
        if track.participant not in people:
            continue
        source = AudioSource(root / track.file, track)
        try:
            series = levels[people.index(track.participant)]
            buffer = np.zeros(step, np.float32)
            for k in range(windows):
                buffer.fill(0.0)
                source.add_into(buffer, k * step)
                series[k] = max(series[k], float(np.sqrt(np.mean(buffer * buffer))))
                if source.done and not source.chunks:
                    break
        finally:
            source.close()
    return levels


def _video_stream(out: av.container.OutputContainer, req: Request, threads: int) -> av.VideoStream:
    if req.format == "mp4":
        stream = out.add_stream("libx264", rate=req.fps, options={"preset": "veryfast", "tune": "zerolatency"})
    else:
        stream = out.add_stream("libvpx", rate=req.fps, options={"deadline": "realtime", "cpu-used": "8"})
        stream.bit_rate = 1_000_000
    stream.width, stream.height, stream.pix_fmt = req.width, req.height, "yuv420p"
    stream.codec_context.thread_count = threads
    return stream


def render(job: Job, on_progress: Progress | None = None) -> float:
    """Render `job` into job.output; return the output's duration in seconds; raise RenderError."""
    req = job.request
    people, video, audio = select(job.tracks, req)
    if not video and not audio:
        raise RenderError("the sources pick no recording of this session")
    start, end = span([*video, *audio], req)
    total = end - start
    if total <= 0:
        raise RenderError("the trim leaves nothing to render")
    timeline = [(0.0, 0)]
    if req.layout in ("speaker", "single") and len(people) > 1:
        timeline = speaker_timeline(audio_levels(job.root, audio, people))
    shown = [p for p in people if any(t.participant == p for t in video)] or people
    sources: dict[str, list[VideoSource]] = {p: [] for p in shown}
    mixers: list[AudioSource] = []
    temp = job.output.with_name(job.output.name + ".part")
    try:
        for track in video:
            sources[track.participant].append(VideoSource(job.root / track.file, track, job.threads))
        mixers = [AudioSource(job.root / t.file, t) for t in audio]
        out = av.open(str(temp), "w", format=req.format)
        try:
            vstream = _video_stream(out, req, job.threads)
            astream = out.add_stream("aac" if req.format == "mp4" else "libopus", rate=RATE, layout="mono")
            canvas = np.zeros((req.height, req.width, 3), np.uint8)
            per_frame = RATE // req.fps
            mix = np.zeros(per_frame, np.float32)
            frames = math.ceil(total * req.fps)
            layouts: dict[int, tuple[Rect, ...]] = {}
            for n in range(frames):
                t = start + n / req.fps
                speaker = speaker_at(timeline, t)
                speaker = shown.index(people[speaker]) if people[speaker] in shown else 0
                rects = layouts.get(speaker)
                if rects is None:
                    rects = layouts[speaker] = tile_rects(len(shown), req.width, req.height, req.layout,
                                                          speaker).tiles
                canvas.fill(0)
                for person, tile in zip(shown, rects, strict=True):
                    for source in sources[person]:
                        if tile.w == 0:
                            break
                        src = source.current or source.upcoming
                        if src is None:
                            continue
                        rect = picture_rect(src.width, src.height, tile)
                        image = source.picture(t, rect)
                        if image is not None:
                            canvas[rect.y:rect.bottom, rect.x:rect.right] = image
                            break
                frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
                frame.pts = n
                for packet in vstream.encode(frame):
                    out.mux(packet)
                mix.fill(0.0)
                first = round(t * RATE)
                for mixer in mixers:
                    mixer.add_into(mix, first)
                np.clip(mix, -1.0, 1.0, out=mix)
                chunk = av.AudioFrame.from_ndarray(mix.reshape(1, -1).copy(), format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = RATE, n * per_frame
                for packet in astream.encode(chunk):
                    out.mux(packet)
                if on_progress is not None:
                    on_progress((n + 1) / req.fps, total)
            for stream in (vstream, astream):
                for packet in stream.encode(None):
                    out.mux(packet)
        finally:
            out.close()
        os.replace(temp, job.output)
    except (OSError, av.error.FFmpegError, IndexError) as exc:
        temp.unlink(missing_ok=True)
        raise RenderError(f"could not render: {exc}") from exc
    finally:
        for group in sources.values():
            for source in group:
                source.close()
        for done_mixer in mixers:
            done_mixer.close()
    return total
