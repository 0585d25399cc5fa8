"""Fetch live HLS playlists and segments over HTTP (blocking; call from a thread), for the core and the screens.

`read_playlist(url)` fetches and parses a playlist (tvapp.core.live), following a master playlist to the variant
every screen plays; `fetch(url)` returns a segment's bytes. Both go through `proxy` when given (`[watch]
content_proxy`: a CDN edge or a corporate proxy) and raise `HlsFetchError` (with the HTTP status when there is one)
instead of urllib's many exceptions. Sizes are bounded: a playlist by tvapp.core.live.MAX_PLAYLIST_BYTES, a segment
by `MAX_SEGMENT_BYTES`. The core reads a playlist when a host loads it (tvapp.server.playback); the screens decode
segments with tvapp.client.hls.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from tvapp.core.live import MAX_PLAYLIST_BYTES, LiveError, Playlist, parse_playlist

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


__all__ = ["MAX_SEGMENT_BYTES", "TIMEOUT", "HlsFetchError", "fetch", "media_url", "read_playlist", "shown"]
