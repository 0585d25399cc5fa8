"""A live HLS origin for tests: ffmpeg's hls muxer writes a stamped picture in real time; CDN edges serve it late.

`LiveOrigin` paints frames in Python at real time (each one stamped, tvapp.client.stamp, with its frame index and
the wall-clock ms it was painted: the event's clock), pipes them to ffmpeg (rawvideo in, H.264 out, one keyframe per
segment) whose hls muxer writes ``stream.m3u8`` and ``seg<N>.ts`` into a folder with ``program_date_time`` (unless
``pdt=False``) and ``delete_segments``: segments appear and expire as on a real live origin. Python paces the frames
(the role of ``-re`` for a file input). A thread keeps timed snapshots of the playlist.

`Edge` is one simulated CDN edge: a local HTTP server (also usable as an HTTP proxy: it serves the path of an
absolute request URL, so a screen with ``[watch] content_proxy`` set to an edge fetches the same URL through it)
that answers the playlist as it was `delay` seconds ago and segments from the folder while they exist (404 after).
`fail(pattern)` makes it answer 404 for matching segments until `heal()`.

Keep it small on a shared machine: 320x180 at 15 fps costs a few % of one core.
"""

from __future__ import annotations

import bisect
import fnmatch
import http.server
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import numpy as np

from tvapp.client.stamp import stamp

PLAYLIST = "stream.m3u8"
_COLORS = ((200, 40, 40), (40, 160, 60), (40, 70, 200), (200, 180, 40), (170, 50, 170), (40, 170, 180))


class LiveOrigin:
    """ffmpeg writing a stamped live stream into `folder` in real time (start with `with` or `start()`)."""

    def __init__(self, folder: Path, *, fps: int = 15, size: tuple[int, int] = (320, 180), segment: float = 1.0,
                 list_size: int = 30, pdt: bool = True, keep_snapshots: float = 120.0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fps, self.size, self.segment, self.list_size, self.pdt = fps, size, segment, list_size, pdt
        self.keep_snapshots = keep_snapshots
        self.frames = 0
        self._snapshots: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []

    @property
    def playlist(self) -> Path:
        """Return the path of the origin's playlist."""
        return self.folder / PLAYLIST

    def start(self) -> LiveOrigin:
        """Start ffmpeg, the painter and the snapshot threads."""
        width, height = self.size
        gop = max(1, round(self.fps * self.segment))
        flags = "program_date_time+delete_segments" if self.pdt else "delete_segments"
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                   "-s", f"{width}x{height}", "-r", str(self.fps), "-i", "-", "-an",
                   "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                   "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-threads", "1",
                   "-f", "hls", "-hls_time", f"{self.segment:g}", "-hls_list_size", str(self.list_size),
                   "-hls_delete_threshold", "10", "-hls_flags", flags,
                   "-hls_segment_filename", str(self.folder / "seg%d.ts"), str(self.playlist)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE)
        for target, name in ((self._paint, "live origin painter"), (self._snap, "live origin snapshots")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop painting and ffmpeg."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        process = self._process
        if process is not None:
            if process.stdin is not None:
                try:
                    process.stdin.close()
                except OSError:
                    pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def __enter__(self) -> LiveOrigin:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def snapshot(self, at: float) -> bytes | None:
        """Return the playlist as it was at wall-clock time `at` (None before the first one)."""
        with self._lock:
            index = bisect.bisect_right(self._snapshots, at, key=lambda item: item[0])
            return self._snapshots[index - 1][1] if index else None

    def _paint(self) -> None:
        width, height = self.size
        process = self._process
        assert process is not None and process.stdin is not None
        start = time.time()
        index = 0
        while not self._stop.is_set():
            due = start + index / self.fps
            wait = due - time.time()
            if wait > 0:
                self._stop.wait(wait)
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[:] = _COLORS[int(due) % len(_COLORS)]
            bar = int((due % 1.0) * width)
            image[height // 2:, max(0, bar - 8):bar + 8] = 255
            stamp(image, index, int(round(time.time() * 1000)))
            try:
                process.stdin.write(image.tobytes())
                process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                return
            index += 1
            self.frames = index

    def _snap(self) -> None:
        last = b""
        while not self._stop.wait(0.05):
            try:
                text = self.playlist.read_bytes()
            except OSError:
                continue
            if text == last or b"#EXTINF" not in text:
                continue
            last = text
            now = time.time()
            with self._lock:
                self._snapshots.append((now, text))
                while self._snapshots and self._snapshots[0][0] < now - self.keep_snapshots:
                    self._snapshots.pop(0)


class Edge:
    """One simulated CDN edge in front of `origin`: the playlist `delay` seconds late, segments while they exist."""

    def __init__(self, origin: LiveOrigin, delay: float = 0.0, host: str = "127.0.0.1") -> None:
        """Serve on `host` (a netem link's host_ip for screens inside its namespace) at a free port."""
        self.origin, self.delay, self.host = origin, delay, host
        self.requests: list[str] = []
        self.failures: list[str] = []
        self.extra: dict[str, bytes] = {}
        """More files this edge serves by name (e.g. a playlist that is not HLS, a complete copy)."""
        self._failing: str | None = None
        edge = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                edge._answer(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="live edge", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Return the playlist's URL on this edge."""
        return f"http://{self.host}:{self.port}/live/{PLAYLIST}"

    @property
    def proxy(self) -> str:
        """Return this edge as an HTTP proxy address (`[watch] content_proxy`)."""
        return f"http://{self.host}:{self.port}"

    def fail(self, pattern: str) -> None:
        """Answer 404 for segments whose name matches the glob `pattern` (e.g. "seg1[2-3].ts") until `heal()`."""
        self._failing = pattern

    def heal(self) -> None:
        """Serve every segment again."""
        self._failing = None

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        name = urlsplit(handler.path).path.rsplit("/", 1)[-1]
        self.requests.append(name)
        body: bytes | None = None
        kind = "application/vnd.apple.mpegurl"
        if name in self.extra:
            body = self.extra[name]
        elif name == PLAYLIST:
            body = self.origin.snapshot(time.time() - self.delay)
        elif name.endswith(".ts") and "/" not in name and not name.startswith("."):
            failing = self._failing
            if failing is not None and fnmatch.fnmatch(name, failing):
                self.failures.append(name)
            else:
                try:
                    body = (self.origin.folder / name).read_bytes()
                except OSError:
                    body = None
            kind = "video/mp2t"
        if body is None:
            handler.send_error(404)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Access-Control-Allow-Origin", "*")  # as a CDN serving HLS to browsers (hls.js)
        handler.end_headers()
        handler.wfile.write(body)
