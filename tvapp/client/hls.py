"""The screens' live HLS decoding: `decode_live(decoder, proxy)` is a content decoder's loop for a live stream.

Playlists and segments are fetched by tvapp.web.hls (shared with the core, which reads a playlist at load).
"""

from __future__ import annotations

import io
import logging
import math
import time
from typing import Any

import av

from tvapp.core.live import HoldMeter, LiveError, MasterPlaylist, Playlist
from tvapp.web.hls import (
    HlsFetchError,
    fetch,
    media_url,
    read_playlist,
    shown,
)

log = logging.getLogger("tvapp.client.player")

__all__ = ["HlsFetchError", "MasterPlaylist", "decode_live", "fetch", "media_url", "read_playlist", "shown"]


# -- the screens' live decoding ----------------------------------------------------------------------------------------

REFRESH_MIN = 0.2
"""Shortest wait (seconds) between two reads of a live playlist."""
SEGMENT_TRIES = 3
"""A segment that fails this many times in a row (a 404, a timeout) is skipped: the screen stalls, then goes on."""


def decode_live(decoder: Any, proxy: str = "") -> None:
    """Keep `decoder` filled from the live stream at its URL: segments on the event clock (decoder thread).

    Each segment is fetched and decoded by itself; a frame's position is its segment's start instant (program
    date-time) plus its time since the segment's start, so every screen maps the same picture to the same instant
    whatever its edge or its window. The segment holding the timeline position is fetched first (a start, a seek),
    then the ones after it, as the playlist lists them. While the decoded buffer is full, the next segment's bytes
    are fetched ahead (one segment, compressed: a few hundred kB, not seconds of decoded frames), so a slow link's
    playlist refresh and segment fetch are not paid when the buffer runs low.

    The playlist is read every half target duration even while the buffer is full, so that a `HoldMeter` sees
    when each new segment is listed: its hold (how far behind the room's live edge this screen has each segment in
    hand) goes to ``decoder.hold`` for the player to tell the room.
    """
    settings = decoder.settings
    url = _first_playlist(decoder, proxy)
    if url is None:
        return
    playlist: Playlist | None = None
    read_at = -math.inf
    last: int | None = None  # the media sequence number of the last segment decoded
    failures = 0
    epoch = decoder.epoch
    resampler = decoder._resampler()
    next_sample: int | None = None
    ahead: tuple[int, bytes] | None = None  # the next segment's bytes, fetched while the buffer was full
    meter: HoldMeter | None = None
    while True:
        target = decoder.timeline()
        refresh_due = playlist is not None and time.monotonic() - read_at >= _refresh(playlist)
        with decoder.lock:
            if decoder.closing:
                return
            full = decoder.opened and not decoder.seek_wanted and decoder._full(target)
            idle = full and (ahead is not None or last is None or playlist is None)
            if idle and not refresh_due:
                decoder.lock.wait(0.02)
                continue
            if decoder.seek_wanted:
                decoder.seek_wanted = False
                decoder.seeks += 1
                last, next_sample, ahead = None, None, None
            epoch = decoder.epoch
        now = time.monotonic()
        if idle:  # nothing to fetch: only the playlist read that keeps the hold measured
            fresh, meter = _reread(url, proxy, decoder, meter)
            playlist, read_at = fresh or playlist, now
            continue
        if full:  # the buffer is full: fetch the next segment's bytes now, decode them when they are needed
            assert playlist is not None and last is not None
            if playlist.after(last) is None and now - read_at >= _refresh(playlist):
                fresh, meter = _reread(url, proxy, decoder, meter)
                playlist, read_at = fresh or playlist, now
            following = playlist.after(last)
            if following is not None:
                try:
                    began = time.monotonic()
                    ahead = following.sequence, fetch(following.url, proxy=proxy)
                    if meter is not None:
                        meter.fetched(time.monotonic() - began)
                except HlsFetchError as exc:
                    log.info("live: segment %d (ahead): %s", following.sequence, exc)
            if ahead is None:  # not listed yet, or failed: the buffer holds a second, no hurry
                _pause(decoder, 0.25)
            continue
        if playlist is None or (now - read_at >= _refresh(playlist)
                                and (last is None or playlist.after(last) is None or failures)):
            try:
                _, fresh = read_playlist(url, proxy=proxy)
                playlist, read_at = fresh, now
                meter = _note(decoder, meter, playlist)
            except (HlsFetchError, LiveError) as exc:
                log.info("live: cannot read the playlist: %s", exc)
                _pause(decoder, 0.5)
                continue
        segment = playlist.locate(target) if last is None else playlist.after(last)
        if segment is None:
            _pause(decoder, REFRESH_MIN / 2)
            continue
        try:
            if ahead is not None and ahead[0] == segment.sequence:
                data = ahead[1]
            else:
                began = time.monotonic()
                data = fetch(segment.url, proxy=proxy)
                if meter is not None:
                    meter.fetched(time.monotonic() - began)
            ahead = None
        except HlsFetchError as exc:
            failures += 1
            log.info("live: segment %d: %s (try %d)", segment.sequence, exc, failures)
            if failures >= SEGMENT_TRIES:
                last, failures = segment.sequence, 0  # skip it: the screen stalls over the gap, then goes on
            _pause(decoder, 0.25)
            continue
        failures = 0
        last = segment.sequence
        next_sample = _decode_segment(decoder, data, segment.start, epoch, resampler, next_sample, settings.audio)


def _refresh(playlist: Playlist) -> float:
    """Return the seconds between two reads of `playlist`."""
    return max(REFRESH_MIN, playlist.target_duration / 2)


def _reread(url: str, proxy: str, decoder: Any, meter: HoldMeter | None) -> tuple[Playlist | None, HoldMeter | None]:
    """Read the playlist again and note it in the hold meter; None (and a log line) if it cannot be read."""
    try:
        _, fresh = read_playlist(url, proxy=proxy)
    except (HlsFetchError, LiveError) as exc:
        log.info("live: cannot read the playlist: %s", exc)
        return None, meter
    return fresh, _note(decoder, meter, fresh)


def _note(decoder: Any, meter: HoldMeter | None, playlist: Playlist) -> HoldMeter | None:
    """Feed a fresh playlist's newest segment to the screen's hold meter (made at the first read); hand a hold
    worth telling to the player (``decoder.hold``). Return the meter."""
    edge = decoder.live_edge()
    if not playlist.segments or edge is None:
        return meter
    if meter is None:
        meter = HoldMeter(playlist.target_duration)
    newest = playlist.segments[-1]
    meter.listed(time.monotonic(), newest.sequence, newest.start, edge)
    hold = meter.report()
    if hold is not None:
        with decoder.lock:
            decoder.hold = hold
    return meter


def _first_playlist(decoder: Any, proxy: str) -> str | None:
    """Return the media playlist URL, trying again while it cannot be fetched (None once closing); a playlist that
    is not HLS raises LiveError (the content fails)."""
    while True:
        with decoder.lock:
            if decoder.closing:
                return None
        try:
            return media_url(decoder.content, proxy)
        except HlsFetchError as exc:
            log.info("live: cannot read the playlist: %s", exc)
            _pause(decoder, 0.5)


def _pause(decoder: Any, seconds: float) -> None:
    with decoder.lock:
        if not decoder.closing and not decoder.seek_wanted:
            decoder.lock.wait(seconds)


def _decode_segment(decoder: Any, data: bytes, start: float, epoch: int, resampler: av.AudioResampler,
                    next_sample: int | None, want_audio: bool) -> int | None:
    """Decode one segment into the decoder's buffers at instants from `start` on; return the next audio sample."""
    try:
        container = av.open(io.BytesIO(data), mode="r", format="mpegts")
    except av.FFmpegError as exc:
        log.info("live: a segment does not open: %s", exc)
        return next_sample
    try:
        video = container.streams.video[0] if decoder.settings.video and container.streams.video else None
        audio = container.streams.audio[0] if want_audio and container.streams.audio else None
        first = (container.start_time or 0) / av.time_base
        frame_time = 1 / float(video.average_rate) if video is not None and video.average_rate else 1 / 30
        with decoder.lock:
            if not decoder.opened:
                decoder.has_video, decoder.has_audio = video is not None, audio is not None
                decoder.opened = True
                decoder.lock.notify_all()
                opened = True
            else:
                opened = False
        if opened:
            decoder.on_opened(decoder, None)
        streams = [s for s in (video, audio) if s is not None]
        offset = first - start  # frame.time - offset = the frame's instant on the event clock
        for packet in container.demux(*streams):
            with decoder.lock:
                if decoder.closing or decoder.epoch != epoch:
                    return None
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                continue
            target = decoder.timeline()
            for frame in frames:
                if isinstance(frame, av.VideoFrame):
                    decoder._add_video(frame, offset, frame_time, target, epoch)
                elif isinstance(frame, av.AudioFrame):
                    next_sample = decoder._add_audio(resampler, frame, offset, next_sample, target,
                                                     epoch)
    except av.FFmpegError as exc:
        log.info("live: a segment does not decode: %s", exc)
    finally:
        container.close()
    return next_sample
