"""The HTTP edge's per-connection limits (tvapp.web.http), on real sockets against both real servers.

Each test runs against a real core (`tvapp serve`) and a real TV's endpoints for phones (`tvapp tv`), both started
with 1 s deadlines through the [server] config keys; waits are on the socket (readable, closed), never sleeps.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import TvProcess

BUDGET = 16_384  # the default [server] max_header_bytes
DEADLINES = {"TVAPP_SERVER_HEADER_TIMEOUT": "1", "TVAPP_SERVER_BODY_TIMEOUT": "1"}


@dataclass(frozen=True)
class Edge:
    """One server under test: where it listens, a cheap GET and a POST route that reads a JSON body."""

    host: str
    port: int
    probe: str
    post: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port))
        sock.settimeout(15)
        return sock

    def head(self, path: str, extra: str = "") -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}".encode()


def _edge(url: str, probe: str, post: str) -> Edge:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    return Edge(host, int(port), probe, post)


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with ServerProcess(tmp_path_factory.mktemp("edge-core"), env=DEADLINES) as srv:
        yield _edge(srv.url, "/healthz", "/v1/tokens")


@pytest.fixture(scope="module")
def tv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    work = tmp_path_factory.mktemp("edge-tv")
    with TvProcess(work, ["--host", "127.0.0.1", "--port", "0", "--data", str(work / "data"), "--no-audio"],
                   size="640x360", env=DEADLINES) as process:
        yield _edge(process.remote_url(), "/v1/tv", "/v1/pairings")


@pytest.fixture(params=["core", "tv"])
def edge(request: pytest.FixtureRequest) -> Edge:
    edge: Edge = request.getfixturevalue(request.param)
    return edge


def read_until_closed(sock: socket.socket) -> bytes:
    """Return everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def read_response(sock: socket.socket) -> bytes:
    """Return one response with a Content-Length, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def refusal(answer: bytes) -> tuple[int, str]:
    """Return (status, error code) of a JSON error answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]["code"]


def test_a_head_within_the_budget_is_served(edge: Edge) -> None:
    with edge.connect() as sock:
        filler = "a" * (BUDGET - 200)
        sock.sendall(edge.head(edge.probe, f"X-Filler: {filler}\r\nConnection: close\r\n\r\n"))
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("bad", [b"X-Bad: a\x7fb\r\n", b"No colon here\r\n"], ids=["control-char", "no-colon"])
def test_a_malformed_head_gets_a_json_error(edge: Edge, bad: bytes) -> None:
    with edge.connect() as sock:
        sock.sendall(edge.head(edge.probe, "") + bad + b"\r\n")
        answer = read_until_closed(sock)
    assert refusal(answer) == (400, "invalid_request")
    assert b"application/json" in answer.partition(b"\r\n\r\n")[0].lower()


def test_a_header_streamed_forever_is_cut_at_the_budget(edge: Edge) -> None:
    with edge.connect() as sock:
        sock.sendall(edge.head(edge.probe, "X-Flood: "))
        sent = len(edge.head(edge.probe, "X-Flood: "))
        while not select.select([sock], [], [], 0.05)[0]:  # one more kilobyte until the server answers
            sock.sendall(b"a" * 1024)
            sent += 1024
            assert sent < 20 * BUDGET, "the server kept reading a header far past its budget"
        answer = read_until_closed(sock)
    assert refusal(answer) == (431, "headers_too_large")
    assert BUDGET < sent <= BUDGET + 1024 + 200


def test_the_server_stays_fast_while_headers_are_flooded(edge: Edge) -> None:
    stop = threading.Event()
    cuts = [0]

    def flood() -> None:
        while not stop.is_set():
            try:
                with edge.connect() as sock:
                    sock.sendall(edge.head(edge.probe, "X-Flood: "))
                    chunk = b"a" * 65536
                    while not stop.is_set():
                        sock.sendall(chunk)
            except OSError:
                cuts[0] += 1  # the server closed it: reconnect and flood again

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    slowest = 0.0
    try:
        with httpx.Client(base_url=edge.url, timeout=10) as client:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                started = time.monotonic()
                assert client.get(edge.probe).status_code == 200
                slowest = max(slowest, time.monotonic() - started)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert cuts[0] >= 3, "the flooding connections were never cut"
    assert slowest < 1.0, f"a request took {slowest:.2f} s during the flood"


@pytest.mark.parametrize("partial", [b"GET /heal", b"GET /v1/tv HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half"],
                         ids=["request-line", "header"])
def test_a_head_stopped_half_way_is_closed_at_the_deadline(edge: Edge, partial: bytes) -> None:
    with edge.connect() as sock:
        started = time.monotonic()
        sock.sendall(partial)
        answer = read_until_closed(sock)
        took = time.monotonic() - started
    assert refusal(answer) == (408, "request_timeout")
    assert 0.8 < took < 4


def test_a_header_trickled_a_byte_at_a_time_is_closed_at_the_deadline(edge: Edge) -> None:
    trickle = edge.head(edge.probe, "X-Slow: " + "a" * 1000)
    with edge.connect() as sock:
        started = time.monotonic()
        for byte in trickle:
            if select.select([sock], [], [], 0.1)[0]:  # the server answered (or closed) between two bytes
                break
            sock.sendall(bytes([byte]))
        else:
            pytest.fail("the whole trickled head was accepted")
        answer = read_until_closed(sock)
        took = time.monotonic() - started
    assert refusal(answer) == (408, "request_timeout")
    assert 0.8 < took < 4


def test_a_body_stopped_half_way_is_closed_at_the_deadline(edge: Edge) -> None:
    head = (f"POST {edge.post} HTTP/1.1\r\nHost: {edge.host}:{edge.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n").encode()
    with edge.connect() as sock:
        sock.sendall(head + b'{"room": "')
        started = time.monotonic()
        answer = read_until_closed(sock)
        took = time.monotonic() - started
    assert refusal(answer) == (408, "request_timeout")
    assert 0.8 < took < 4


def test_the_connection_serves_requests_after_a_complete_body(edge: Edge) -> None:
    """A body that arrives in time is answered by the app, and the keep-alive connection serves the next one."""
    with edge.connect() as sock:
        body = b'{"room": 1}'
        sock.sendall((f"POST {edge.post} HTTP/1.1\r\nHost: {edge.host}:{edge.port}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        first = read_response(sock)
        assert first.split()[1] in (b"201", b"400", b"401") and b"request_timeout" not in first
        sock.sendall(edge.head(edge.probe, "Connection: close\r\n\r\n"))
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200")


def test_the_header_budget_follows_the_config(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_SERVER_MAX_HEADER_BYTES="4096")
    edge = _edge(srv.url, "/healthz", "/v1/tokens")
    for filler, status in ((3500, 200), (4500, 431)):
        with edge.connect() as sock:
            sock.sendall(edge.head(edge.probe, f"X-Filler: {'a' * filler}\r\nConnection: close\r\n\r\n"))
            assert read_until_closed(sock).startswith(f"HTTP/1.1 {status}".encode()), filler
