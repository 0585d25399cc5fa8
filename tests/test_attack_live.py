"""A hostile room host against live content loading, with a real core on 127.0.0.1 and hostile far ends on real
sockets: a playlist server dripping bytes, redirects to ftp:// and in a loop, a service that is not HTTP (its banner
must not come back in the error), many loads at once, content naming FFmpeg protocols (gopher://, tcp://, pipe:...)
or a device/FIFO on the screen's disk.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from security_helpers import assert_error
from tvapp.client.decoder import MediaError, default_open
from tvapp.server.playback import READ_DEADLINE
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess


class FarEnd:
    """A TCP server on 127.0.0.1 answering every connection with `answer(conn)` (in its own thread)."""

    def __init__(self, answer: Callable[[socket.socket, FarEnd], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.accepted = 0
        self.closing = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(20)
                conn.recv(4096)  # the request
                self.answer(conn, self)
            except OSError:
                pass

    def close(self) -> None:
        self.closing.set()
        self.sock.close()


@pytest.fixture
def far_ends() -> Iterator[list[FarEnd]]:
    made: list[FarEnd] = []
    yield made
    for end in made:
        end.close()


def open_room(server: ServerProcess) -> str:
    room = room_name("atk-live", 12)
    assert server.http.post("/v1/rooms", json={"name": room}).status_code == 201
    return room


def load(server: ServerProcess, room: str, content: str, timeout: float = 20.0) -> httpx.Response:
    return server.http.post(f"/v1/rooms/{room}/playback", json={"action": "load", "content": content},
                            timeout=timeout)


def drip(conn: socket.socket, end: FarEnd) -> None:
    """Answer a status line, then one header byte every 0.2 s for ever (a slowloris far end)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not end.closing.is_set():
        conn.sendall(b"X")
        time.sleep(0.2)


def test_a_dripping_playlist_server_is_cut_off_and_a_room_reads_one_playlist_at_a_time(
        server: ServerProcess, far_ends: list[FarEnd]) -> None:
    slow = FarEnd(drip)
    far_ends.append(slow)
    room = open_room(server)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        first = pool.submit(load, server, room, slow.url("/live.m3u8"))
        deadline = time.monotonic() + 5
        while slow.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.accepted == 1
        second = load(server, room, slow.url("/other.m3u8"), timeout=3.0)  # while the first is being read
        assert_error(second, 429, "too_many_requests")
        answer = first.result()
        took = time.monotonic() - started
    error = assert_error(answer, 400, "invalid_value")
    assert f"not read within {READ_DEADLINE:g} s" in error["message"], error
    assert took < READ_DEADLINE + 2.0, took
    assert slow.accepted == 1  # the refused second load never fetched anything


def test_redirects_only_lead_to_http_and_a_loop_ends(server: ServerProcess, far_ends: list[FarEnd]) -> None:
    ftp = FarEnd(lambda conn, end: conn.sendall(b"220 welcome\r\n"))
    far_ends.append(ftp)

    def to_ftp(conn: socket.socket, end: FarEnd) -> None:
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1:{ftp.port}/x.m3u8\r\n"
                     "Content-Length: 0\r\n\r\n".encode())

    def loop(conn: socket.socket, end: FarEnd) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /again.m3u8\r\nContent-Length: 0\r\n\r\n")

    redirecting, looping = FarEnd(to_ftp), FarEnd(loop)
    far_ends.extend([redirecting, looping])
    room = open_room(server)
    error = assert_error(load(server, room, redirecting.url("/live.m3u8")), 400, "invalid_value")
    assert "not http(s)" in error["message"], error
    assert ftp.accepted == 0  # the core never spoke FTP to whoever the far end named
    assert_error(load(server, room, looping.url("/live.m3u8")), 400, "invalid_value")
    assert looping.accepted <= 6


def test_what_a_service_that_is_not_http_says_never_comes_back(server: ServerProcess,
                                                               far_ends: list[FarEnd]) -> None:
    banner = FarEnd(lambda conn, end: conn.sendall(b"SSH-2.0-OpenSSH_internal-SECRETBANNER\r\n"))
    short = FarEnd(lambda conn, end: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n#EXTM3U\n"))
    long_value = FarEnd(lambda conn, end: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: 200030\r\n\r\n#EXTM3U\n#EXTINF:" + b"9" * 200_000 + b"x\nseg.ts\n"))
    far_ends.extend([banner, short, long_value])
    room = open_room(server)
    for end in (banner, short):
        error = assert_error(load(server, room, end.url("/live.m3u8")), 400, "invalid_value")
        assert "SECRETBANNER" not in error["message"] and "#EXTM3U" not in error["message"], error
    error = assert_error(load(server, room, long_value.url("/live.m3u8")), 400, "invalid_value")
    assert len(error["message"]) < 300, len(error["message"])


@pytest.mark.parametrize("content", ["gopher://127.0.0.1:{port}/_SET%20x%201", "tcp://127.0.0.1:{port}",
                                     "file:///etc/passwd", "pipe:0", "concat:/etc/passwd|/etc/hostname",
                                     "udp://127.0.0.1:{port}", "data:text/plain,hi", "unix:///run/x.sock",
                                     "subfile,,start,0,end,0,,:/etc/passwd", "FILE:/etc/passwd"])
def test_content_naming_other_ffmpeg_protocols_is_refused_by_the_core_and_never_opened_by_a_screen(
        server: ServerProcess, far_ends: list[FarEnd], content: str) -> None:
    target = FarEnd(lambda conn, end: None)
    far_ends.append(target)
    content = content.format(port=target.port)
    room = open_room(server)
    error = assert_error(load(server, room, content), 400, "invalid_value")
    assert "scheme" in error["message"], error
    with pytest.raises(MediaError):  # a screen told by another core does not open it either
        default_open(content)
    assert target.accepted == 0


def test_files_and_media_urls_still_load(server: ServerProcess) -> None:
    room = open_room(server)
    for content in ("/srv/films/a film.mp4", "films/clip.mp4", "https://cdn.example/film.mp4",
                    "rtsp://camera.local/stream"):
        answer = load(server, room, content)
        assert answer.status_code == 200, answer.text
        assert answer.json()["content"] == content


def test_a_screen_opens_only_regular_files_never_a_device_or_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.mp4"
    os.mkfifo(fifo)
    outcome: list[Any] = []

    def try_open(path: str) -> None:
        try:
            default_open(path)
            outcome.append("opened")
        except MediaError as exc:
            outcome.append(exc)

    for path in (str(fifo), "/dev/zero", str(tmp_path)):
        outcome.clear()
        worker = threading.Thread(target=try_open, args=(path,), daemon=True)
        worker.start()
        worker.join(5.0)
        if worker.is_alive():  # a FIFO nobody writes to would hold the decoder for ever: let it go
            with open(fifo, "wb"):
                pass
            worker.join(5.0)
            pytest.fail(f"opening {path} blocked")
        assert len(outcome) == 1 and isinstance(outcome[0], MediaError), (path, outcome)


def test_a_core_that_allows_no_private_address_never_connects_to_one(make_server: Callable[..., ServerProcess],
                                                                      far_ends: list[FarEnd]) -> None:
    internal = FarEnd(lambda conn, end: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n#EXTM3U\n"))
    far_ends.append(internal)
    srv = make_server(TVAPP_WATCH_ALLOW_PRIVATE="false")
    room = open_room(srv)
    named = socket.gethostname()  # a name that resolves to a loopback address: checked after the lookup
    for host in ("127.0.0.1", "localhost", named, "[::ffff:127.0.0.1]", "0.0.0.0"):
        error = assert_error(load(srv, room, f"http://{host}:{internal.port}/live.m3u8"), 400, "invalid_value")
        assert "private" in error["message"], (host, error)
    assert internal.accepted == 0
    from tvapp.web.hls import HlsFetchError, fetch
    fetch(internal.url("/live.m3u8"), deadline=3.0)  # by default (a home's LAN encoder) it is fetched
    assert internal.accepted == 1
    with pytest.raises(HlsFetchError, match="private"):
        fetch(internal.url("/live.m3u8"), deadline=3.0, allow_private=False)
    assert internal.accepted == 1


def live_playlist(conn: socket.socket, end: FarEnd) -> None:
    """Answer a live playlist (no ENDLIST): 15 segments of 2 s up to now, with program date-times (a 30 s window)."""
    import datetime
    now = time.time()
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:100"]
    for index in range(15):
        moment = datetime.datetime.fromtimestamp(now - 30 + 2 * index, datetime.timezone.utc)
        lines += [f"#EXT-X-PROGRAM-DATE-TIME:{moment.isoformat()}", "#EXTINF:2.0,", f"seg{index}.ts"]
    body = ("\n".join(lines) + "\n").encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def test_a_guest_reporting_a_hold_past_the_window_never_moves_the_room_out_of_it(
        server: ServerProcess, far_ends: list[FarEnd]) -> None:
    import asyncio
    import json

    from security_helpers import ws_url
    from websockets.asyncio.client import connect

    origin = FarEnd(live_playlist)
    far_ends.append(origin)
    room = open_room(server)
    loaded = load(server, room, origin.url("/live.m3u8"))
    assert loaded.status_code == 200 and loaded.json()["live"] is True, loaded.text
    assert loaded.json()["window"] <= 32.0, loaded.json()
    token = server.token(room, "guest")["access_token"]  # not a host: any screen reports its hold

    async def report() -> None:
        async with connect(ws_url(server.url)) as ws:
            await ws.send(json.dumps({"type": "join", "v": 1, "token": token}))
            assert json.loads(await ws.recv())["type"] == "joined"
            await ws.send(json.dumps({"type": "buffering", "v": 1, "stalled": False, "hold": 3600.0}))
            await ws.send(json.dumps({"type": "ping", "v": 1, "id": "after"}))
            async with asyncio.timeout(5):
                while json.loads(await ws.recv())["type"] != "pong":
                    pass

    asyncio.run(report())
    state = server.http.get(f"/v1/rooms/{room}/playback").json()
    assert state["delay"] <= state["window"], state
    assert state["position"] >= state["live_edge"] - state["window"] - 1.0, state
