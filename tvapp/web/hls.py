"""Fetch live HLS playlists and segments over HTTP (blocking; call from a thread), for the core and the screens.

`read_playlist(url)` fetches and parses a playlist (tvapp.core.live), following a master playlist to the variant
every screen plays; `fetch(url)` returns a segment's bytes. Both go through `proxy` when given (`[watch]
content_proxy`: a CDN edge or a corporate proxy) and raise `HlsFetchError` (with the HTTP status when there is one)
instead of urllib's or http.client's many exceptions. Sizes are bounded: a playlist by
tvapp.core.live.MAX_PLAYLIST_BYTES, a segment by `MAX_SEGMENT_BYTES`. Each socket operation waits at most `timeout`;
given a `deadline` (seconds), the whole fetch (connect, redirects, headers, body) ends by then even when the far end
drips bytes (its sockets are shut down). Only http(s) is spoken: redirects elsewhere (ftp://, file://) are refused,
and at most `MAX_REDIRECTS` are followed. The core reads a playlist when a host loads it (tvapp.server.playback); the screens decode
segments with tvapp.client.hls.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tvapp.core.live import MAX_PLAYLIST_BYTES, LiveError, Playlist, parse_playlist
from tvapp.web.fetch import Deadline, opener

TIMEOUT = 5.0
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5


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


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise HlsFetchError(f"{shown(req.full_url)}: redirected to a URL that is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, *, proxy: str = "", limit: int = MAX_SEGMENT_BYTES, timeout: float = TIMEOUT,
          deadline: float | None = None, allow_private: bool = True) -> bytes:
    """Return the body at `url` (at most `limit` bytes, all of it within `deadline` seconds when given; from a global
    address only unless `allow_private` or a `proxy` is given); raise HlsFetchError."""
    if not url.startswith(("http://", "https://")):
        raise HlsFetchError(f"not an http(s) URL: {shown(url)}")
    clock = Deadline(deadline, allow_private=allow_private or bool(proxy))
    try:
        with opener(clock, proxy=proxy, redirects=_Redirects()).open(url, timeout=timeout if deadline is None else min(timeout, deadline)) as response:
            body: bytes = response.read(limit + 1)
    except HlsFetchError:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        raise HlsFetchError(f"{shown(url)}: HTTP {exc.code}", exc.code) from None
    except http.client.HTTPException:  # its text is what the far end sent (a banner): never shown
        if clock.expired:
            raise HlsFetchError(f"{shown(url)}: not read within {deadline:g} s") from None
        raise HlsFetchError(f"{shown(url)}: not a valid HTTP answer") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        if clock.expired:
            raise HlsFetchError(f"{shown(url)}: not read within {deadline:g} s") from None
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, http.client.HTTPException):
            reason = "not a valid HTTP answer"
        raise HlsFetchError(f"{shown(url)}: {reason}") from None
    finally:
        clock.cancel()
    if clock.expired:
        raise HlsFetchError(f"{shown(url)}: not read within {deadline:g} s")
    if len(body) > limit:
        raise HlsFetchError(f"{shown(url)}: larger than {limit} bytes")
    return body


def read_playlist(url: str, *, proxy: str = "", timeout: float = TIMEOUT, deadline: float | None = None,
                  allow_private: bool = True) -> tuple[str, Playlist]:
    """Return (media playlist URL, its playlist): `url` itself, or the variant its master playlist names (both read
    within `deadline` seconds when given).

    Raise HlsFetchError when it cannot be fetched, tvapp.core.live.LiveError when it is not HLS.
    """
    end = None if deadline is None else time.monotonic() + deadline
    for _ in range(2):
        left = None if end is None else max(0.05, end - time.monotonic())
        body = fetch(url, proxy=proxy, limit=MAX_PLAYLIST_BYTES, timeout=timeout, deadline=left,
                     allow_private=allow_private)
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


__all__ = ["MAX_REDIRECTS", "MAX_SEGMENT_BYTES", "TIMEOUT", "HlsFetchError", "fetch", "media_url", "read_playlist", "shown"]
