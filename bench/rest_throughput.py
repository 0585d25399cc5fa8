"""REST throughput on one server core: reads/s (GET a room) and durable writes/s (create a room).

The server runs pinned to CPU 0, this load generator to CPU 1. The load is a small HTTP/1.1
keep-alive client on asyncio protocols: N connections, each sending its next request as soon as
the previous response (framed by Content-Length) is complete. Its own CPU use is reported, to
show it is not what limits the figure.

Baseline, in the same run: GET /healthz, the framework's floor for one request. Reads and healthz
are measured in alternating one-second slices (same connections count, fresh connections per
slice), so machine noise hits both alike; the figure is reads_per_s / healthz_per_s. Writes are
measured with 16 connections (the store's group commit batches them) and with 1 (one fsync'd
transaction per request).

Run: python -m bench.rest_throughput [--quick]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from bench.common import CpuMeter, emit, parser, pin_load, run, running_server

GOAL_READS_PER_S = 1000
GOAL_WRITES_PER_S = 200

MakeRequest = Callable[[], bytes]


class LoadError(RuntimeError):
    """The server answered something other than what the benchmark asked for."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parses responses, then sends the next request right away."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send_next(self) -> None:
        """Send the next request, or close once the load is over."""
        assert self.transport is not None
        if self.load.running:
            self.transport.write(self.load.make_request())
        else:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            length = _content_length(head)
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            status = int(head[9:12])
            if status != self.load.expect:
                body = bytes(self.buffer[end + 4:total])
                self.load.fail(LoadError(f"expected {self.load.expect}, got {status}: {body[:200]!r}"))
                return
            del self.buffer[:total]
            self.load.completed += 1
            self.send_next()


def _content_length(head: str) -> int:
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value)
    raise LoadError(f"response without Content-Length: {head[:200]!r}")


class Load:
    """Requests of one kind on N connections for a warm-up, then a measured window."""

    def __init__(self, make_request: MakeRequest, expect: int) -> None:
        self.make_request = make_request
        self.expect = expect
        self.running = True
        self.completed = 0
        self.error: Exception | None = None
        self._failed = asyncio.Event()

    def fail(self, exc: Exception) -> None:
        """Stop everything: the figure would be meaningless."""
        self.error = exc
        self.running = False
        self._failed.set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._failed.wait(), seconds)
        except TimeoutError:
            return
        assert self.error is not None
        raise self.error

    async def measure(self, host: str, port: int, connections: int, warmup: float, duration: float,
                      meter: CpuMeter) -> int:
        """Run the load; return how many responses completed inside the measured window."""
        loop = asyncio.get_running_loop()
        conns = [(await loop.create_connection(lambda: _Connection(self), host, port))[1]
                 for _ in range(connections)]
        try:
            for conn in conns:
                conn.send_next()
            await self._sleep(warmup)
            start = self.completed
            meter.start()
            await self._sleep(duration)
            meter.stop()
            done = self.completed - start
            self.running = False  # each connection closes once its response in flight is in
            await asyncio.wait_for(asyncio.gather(*(c.closed for c in conns)), 10)
            return done
        finally:
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()


@dataclass
class Requests:
    """Raw request bytes for one server."""

    host: str
    port: int
    auth: str

    def get(self, path: str, auth: bool = True) -> bytes:
        """Return a GET request for `path`."""
        authorization = f"Authorization: {self.auth}\r\n" if auth else ""
        return (f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{authorization}"
                "Accept: application/json\r\n\r\n").encode()

    def post_json(self, path: str, body: dict[str, Any]) -> bytes:
        """Return a POST request with a JSON body."""
        data = json.dumps(body, separators=(",", ":")).encode()
        return (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: {self.auth}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


@dataclass
class Figure:
    """Responses counted over measured seconds, with both processes' CPU use."""

    count: int = 0
    seconds: float = 0.0
    meter: CpuMeter | None = None

    def rate(self) -> float:
        """Return responses per second."""
        return self.count / self.seconds

    def summary(self) -> dict[str, float]:
        """Return the rate and CPU use as JSON-ready numbers."""
        assert self.meter is not None
        return {"per_s": round(self.rate(), 1), "load_cpu_busy": self.meter.own_busy,
                "server_cpu_busy": self.meter.server_busy,
                "server_cpu_us_per_request": round(self.meter.server / max(self.count, 1) * 1e6, 1)}


async def measure(url: str, key: tuple[str, str], server_pid: int, *, connections: int, slices: int,
                  slice_seconds: float, warmup: float, write_warmup: float, write_seconds: float) -> dict[str, Any]:
    """Measure healthz and reads in alternating slices, then writes with many connections and with one."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    token = base64.b64encode(f"{key[0]}:{key[1]}".encode()).decode()
    req = Requests(host, port, f"Basic {token}")
    async with httpx.AsyncClient(base_url=url, auth=key) as http:
        (await http.post("/v1/rooms", json={"name": "bench-read"})).raise_for_status()

    healthz_req, read_req = req.get("/healthz", auth=False), req.get("/v1/rooms/bench-read")
    healthz, reads = Figure(meter=CpuMeter(server_pid)), Figure(meter=CpuMeter(server_pid))
    for _ in range(slices):
        for figure, request in ((healthz, healthz_req), (reads, read_req)):
            assert figure.meter is not None
            figure.count += await Load(itertools.repeat(request).__next__, 200).measure(
                host, port, connections, warmup, slice_seconds, figure.meter)
            figure.seconds += slice_seconds

    names = itertools.count()
    writes: dict[int, Figure] = {}
    for conns in (connections, 1):
        def create(n: int = conns) -> bytes:
            return req.post_json("/v1/rooms", {"name": f"w{n}-{next(names)}"})

        figure = writes[conns] = Figure(meter=CpuMeter(server_pid), seconds=write_seconds)
        assert figure.meter is not None
        figure.count = await Load(create, 201).measure(host, port, conns, write_warmup, write_seconds,
                                                        figure.meter)

    many, one = writes[connections], writes[1]
    return {
        "connections": connections,
        "healthz": healthz.summary(),
        "reads": reads.summary(),
        "ratio_reads_to_healthz": round(reads.rate() / healthz.rate(), 3),
        f"writes_{connections}_connections": many.summary(),
        "writes_1_connection": one.summary(),
        "ratio_writes_many_to_one": round(many.rate() / one.rate(), 2),
        "read": "GET /v1/rooms/{name} with Basic auth",
        "write": "POST /v1/rooms, a new room each, synchronous=FULL",
        "measured_s": {"reads_and_healthz_each": round(slices * slice_seconds, 2), "writes_each": write_seconds},
        "goal_reads_per_s": GOAL_READS_PER_S,
        "goal_writes_per_s": GOAL_WRITES_PER_S,
        "goal_met": reads.rate() >= GOAL_READS_PER_S and many.rate() >= GOAL_WRITES_PER_S,
    }


def main() -> None:
    """Run the REST throughput benchmark and print its JSON line."""
    args = parser(__doc__.splitlines()[0]).parse_args()
    sizes: dict[str, Any] = (
        {"connections": 4, "slices": 1, "slice_seconds": 0.5, "warmup": 0.1, "write_warmup": 0.1,
         "write_seconds": 0.5} if args.quick
        else {"connections": 16, "slices": 5, "slice_seconds": 1.0, "warmup": 0.2, "write_warmup": 1.0,
              "write_seconds": 5.0})
    load_cpu = pin_load()
    with running_server() as srv:
        assert srv.proc is not None
        figures = run(measure(srv.url, srv.key, srv.proc.pid, **sizes))
    emit("rest_throughput", figures | {"load_cpu": load_cpu})


if __name__ == "__main__":
    main()
