"""Fetch live HLS playlists and segments over HTTP (blocking; call from a thread), for the core and the screens.

`read_playlist(url)` fetches and parses a playlist (tvapp.core.live), following a master playlist to the variant
every screen plays; `fetch(url)` returns a segment's bytes. Both go through `proxy` when given (`[watch]
content_proxy`: a CDN edge or a corporate proxy) and raise `HlsFetchError` (with the HTTP status when there is one)
instead of urllib's many exceptions. Sizes are bounded: a playlist by tvapp.core.live.MAX_PLAYLIST_BYTES, a segment
by `MAX_SEGMENT_BYTES`.

`decode_live(decoder, proxy)` is a content decoder's loop for a live stream (see its docstring).
"""

from __future__ import annotations

import io
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING

import av

from tvapp.core.live import MAX_PLAYLIST_BYTES, LiveError, MasterPlaylist, Playlist, parse_playlist

if TYPE_CHECKING:
    from tvapp.client.decoder import ContentDecoder

log = logging.getLogger("tvapp.client.player")

TIMEOUT = 5.0
MAX_SEGMENT_BYTES = 64 * 1024 * 1024


class HlsFetchError(Exception):
    """A playlist or segment could not be fetched; `status` is the HTTP status when the server answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def shown(url: str) -> str:
    """Return `url` as errors and logs may show it: no credentials, no query or fragment (tokens live there)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _opener(proxy: str) -> urllib.request.OpenerDirector:
    proxies = {"http": proxy, "https": proxy} if proxy else {}
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies))


def fetch(url: str, *, proxy: str = "", limit: int = MAX_SEGMENT_BYTES, timeout: float = TIMEOUT) -> bytes:
    """Return the body at `url` (at most `limit` bytes); raise HlsFetchError."""
    if not url.startswith(("http://", "https://")):
        raise HlsFetchError(f"not an http(s) URL: {shown(url)}")
    try:
        with _opener(proxy).open(url, timeout=timeout) as response:
            body: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise HlsFetchError(f"{shown(url)}: HTTP {exc.code}", exc.code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HlsFetchError(f"{shown(url)}: {reason}") from None
    if len(body) > limit:
        raise HlsFetchError(f"{shown(url)}: larger than {limit} bytes")
    return body


def read_playlist(url: str, *, proxy: str = "", timeout: float = TIMEOUT) -> tuple[str, Playlist]:
    """Return (media playlist URL, its playlist): `url` itself, or the variant its master playlist names.

    Raise HlsFetchError when it cannot be fetched, tvapp.core.live.LiveError when it is not HLS.
    """
    for _ in range(2):
        body = fetch(url, proxy=proxy, limit=MAX_PLAYLIST_BYTES, timeout=timeout)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise LiveError("not_hls", "not an HLS playlist (not UTF-8 text)") from None
        playlist = parse_playlist(text, url)
        if isinstance(playlist, Playlist):
            return url, playlist
        url = playlist.pick()
    raise LiveError("not_hls", "a master playlist that names another master playlist")


def media_url(url: str, proxy: str = "") -> str:
    """Return the media playlist `url` leads to (itself unless it is a master playlist); raise like read_playlist."""
    return read_playlist(url, proxy=proxy)[0]


__all__ = ["HlsFetchError", "MasterPlaylist", "decode_live", "fetch", "media_url", "read_playlist", "shown"]


# -- the screens' live decoding ----------------------------------------------------------------------------------------

REFRESH_MIN = 0.2
"""Shortest wait (seconds) between two reads of a live playlist."""
SEGMENT_TRIES = 3
"""A segment that fails this many times in a row (a 404, a timeout) is skipped: the screen stalls, then goes on."""


def decode_live(decoder: ContentDecoder, proxy: str = "") -> None:
    """Keep `decoder` filled from the live stream at its URL: segments on the event clock (decoder thread).

    Each segment is fetched and decoded by itself; a frame's position is its segment's start instant (program
    date-time) plus its time since the segment's start, so every screen maps the same picture to the same instant
    whatever its edge or its window. The segment holding the timeline position is fetched first (a start, a seek),
    then the ones after it, as the playlist lists them.
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
    resampler = decoder._resampler()  # noqa: SLF001 (the decoder's own helpers, shared)
    next_sample: int | None = None
    while True:
        target = decoder.timeline()
        with decoder.lock:
            if decoder.closing:
                return
            if decoder.opened and not decoder.seek_wanted and decoder._full(target):  # noqa: SLF001
                decoder.lock.wait(0.02)
                continue
            if decoder.seek_wanted:
                decoder.seek_wanted = False
                decoder.seeks += 1
                last, next_sample = None, None
            epoch = decoder.epoch
        now = time.monotonic()
        if playlist is None or (now - read_at >= max(REFRESH_MIN, playlist.target_duration / 2)
                                and (last is None or playlist.after(last) is None or failures)):
            try:
                _, fresh = read_playlist(url, proxy=proxy)
                playlist, read_at = fresh, now
            except (HlsFetchError, LiveError) as exc:
                log.info("live: cannot read the playlist: %s", exc)
                _pause(decoder, 0.5)
                continue
        segment = playlist.locate(target) if last is None else playlist.after(last)
        if segment is None:
            _pause(decoder, REFRESH_MIN / 2)
            continue
        try:
            data = fetch(segment.url, proxy=proxy)
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


def _first_playlist(decoder: ContentDecoder, proxy: str) -> str | None:
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


def _pause(decoder: ContentDecoder, seconds: float) -> None:
    with decoder.lock:
        if not decoder.closing and not decoder.seek_wanted:
            decoder.lock.wait(seconds)


def _decode_segment(decoder: ContentDecoder, data: bytes, start: float, epoch: int, resampler: av.AudioResampler,
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
                    decoder._add_video(frame, offset, frame_time, target, epoch)  # noqa: SLF001
                elif isinstance(frame, av.AudioFrame):
                    next_sample = decoder._add_audio(resampler, frame, offset, next_sample, target,  # noqa: SLF001
                                                     epoch)
    except av.FFmpegError as exc:
        log.info("live: a segment does not decode: %s", exc)
    finally:
        container.close()
    return next_sample
