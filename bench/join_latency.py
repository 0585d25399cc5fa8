"""Join latency: how long from sending `join` on an open signaling socket until `joined`, 50 clients at once.

Each round makes a fresh room (max 50 participants), mints one token per client (REST, before any
clock runs), opens every websocket, then sends all joins at once and times each client from its
`join` going out to its `joined` coming in. The baseline, in the same round on the same sockets
once everyone is in and the broadcasts have drained: every client sends a `ping` at once and times
its `pong`, the server's floor for one message. A few extra "cold" rounds time connect + join per
client (websocket handshake included), all at once.

Run: python -m bench.join_latency [--quick] [--clients N] [--rounds R]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.common import CpuMeter, emit, latency_ms, parser, percentile, pin_load, run, running_server
from tvapp.client.signaling import signal_url
from tvapp.protocol.messages import Error, Join, Joined, Ping, Pong, decode, encode, parse_server_message

GOAL_P95_MS = 50.0


class Round:
    """One room's worth of clients: their tokens now, their sockets and timings as the round runs."""

    def __init__(self, room: str, tokens: list[str]) -> None:
        self.room = room
        self.tokens = tokens
        self.sockets: list[ClientConnection] = []


async def mint_rounds(http: httpx.AsyncClient, prefix: str, rounds: int, clients: int) -> list[Round]:
    """Create one room per round and an access token per client, 16 requests in flight at a time."""
    limit = asyncio.Semaphore(16)

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with limit:
            response = await http.post(path, json=body)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    out = []
    for r in range(rounds):
        room = f"{prefix}-{r}"
        await post("/v1/rooms", {"name": room, "max_participants": max(clients, 2)})
        pairs = await asyncio.gather(*(post("/v1/tokens", {"room": room, "identity": f"c{i}"})
                                       for i in range(clients)))
        out.append(Round(room, [p["access_token"] for p in pairs]))
    return out


async def open_socket(url: str) -> tuple[ClientConnection, float]:
    """Open a signaling websocket; return it and how long the handshake took."""
    start = time.perf_counter()
    ws = await connect(url, open_timeout=30, close_timeout=2)
    return ws, time.perf_counter() - start


async def join(ws: ClientConnection, token: str) -> tuple[Joined, float]:
    """Send `join` and wait for `joined`; return it and the time from send to receipt."""
    start = time.perf_counter()
    await ws.send(encode(Join(token=token)))
    while True:
        obj = decode(str(await ws.recv()), None)
        if isinstance(obj, dict) and obj.get("type") in ("joined", "error"):
            elapsed = time.perf_counter() - start
            msg = parse_server_message(obj)
            if isinstance(msg, Error):
                raise RuntimeError(f"join refused: {msg.code}: {msg.message}")
            assert isinstance(msg, Joined)
            return msg, elapsed


async def drain(ws: ClientConnection, count: int) -> None:
    """Read the `count` broadcasts still due on this socket (participant_joined of later joiners)."""
    for _ in range(count):
        await ws.recv()


async def ping(ws: ClientConnection) -> float:
    """Send `ping` and wait for its `pong`; return the round trip."""
    start = time.perf_counter()
    await ws.send(encode(Ping(t0=time.time())))
    while True:
        obj = decode(str(await ws.recv()), None)
        if isinstance(obj, dict) and obj.get("type") == "pong":
            elapsed = time.perf_counter() - start
            assert isinstance(parse_server_message(obj), Pong)
            return elapsed


async def wait_empty(http: httpx.AsyncClient, room: str) -> None:
    """Wait until the server has recorded every participant of `room` leaving."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (await http.get(f"/v1/rooms/{room}")).json()["participant_count"] == 0:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"room {room} never emptied")


async def measure(url: str, key: tuple[str, str], server_pid: int, clients: int, rounds: int,
                  cold_rounds: int) -> dict[str, Any]:
    """Run the warm rounds (open, then join at once, then ping at once) and the cold rounds."""
    ws_url = signal_url(url)
    meter = CpuMeter(server_pid)
    connects: list[float] = []
    joins: list[float] = []
    pings: list[float] = []
    cold: list[float] = []
    async with httpx.AsyncClient(base_url=url, auth=key, timeout=30) as http:
        warm = await mint_rounds(http, "warm", rounds, clients)
        cold_set = await mint_rounds(http, "cold", cold_rounds, clients)
        for rnd in warm:
            opened = await asyncio.gather(*(open_socket(ws_url) for _ in range(clients)))
            rnd.sockets = [ws for ws, _ in opened]
            connects.extend(t for _, t in opened)
            meter.start()
            results = await asyncio.gather(*(join(ws, tok) for ws, tok in zip(rnd.sockets, rnd.tokens)))
            meter.stop()
            joins.extend(t for _, t in results)
            await asyncio.gather(*(drain(ws, clients - 1 - len(j.participants))
                                   for ws, (j, _) in zip(rnd.sockets, results)))
            pings.extend(await asyncio.gather(*(ping(ws) for ws in rnd.sockets)))
            await asyncio.gather(*(ws.close() for ws in rnd.sockets))
            await wait_empty(http, rnd.room)
        for rnd in cold_set:
            async def connect_and_join(token: str) -> tuple[ClientConnection, float]:
                start = time.perf_counter()
                ws, _ = await open_socket(ws_url)
                await join(ws, token)
                return ws, time.perf_counter() - start

            done = await asyncio.gather(*(connect_and_join(tok) for tok in rnd.tokens))
            cold.extend(t for _, t in done)
            await asyncio.gather(*(ws.close() for ws, _ in done))
            await wait_empty(http, rnd.room)
    join_p95 = percentile(joins, 95)
    ping_p95 = percentile(pings, 95)
    return {
        "clients": clients, "rounds": rounds, "samples": len(joins),
        "measured": "join sent on an open websocket -> joined received",
        "join": latency_ms(joins),
        "baseline_ping": latency_ms(pings),
        "ratio_join_p95_to_ping_p95": round(join_p95 / ping_p95, 2),
        "connect": latency_ms(connects),
        "connect_join_cold": latency_ms(cold) | {"rounds": cold_rounds},
        "client_cpu_busy_during_joins": meter.own_busy,
        "server_cpu_busy_during_joins": meter.server_busy,
        "server_cpu_ms_per_join": round(meter.server / len(joins) * 1000, 3),
        "goal_join_p95_ms": GOAL_P95_MS,
        "goal_met": join_p95 * 1000 <= GOAL_P95_MS,
    }


def main() -> None:
    """Run the join latency benchmark and print its JSON line."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, help="clients joining at once (2 to 50; default 50, quick 5)")
    p.add_argument("--rounds", type=int, help="rounds, a fresh room each (default 10, quick 2)")
    args = p.parse_args()
    clients, rounds, cold_rounds = (5, 2, 1) if args.quick else (50, 10, 3)
    clients, rounds = args.clients or clients, args.rounds or rounds
    if not 2 <= clients <= 50:
        p.error("--clients must be between 2 and 50 (a room holds at most 50)")
    load_cpu = pin_load()
    with running_server() as srv:
        assert srv.proc is not None
        figures = run(measure(srv.url, srv.key, srv.proc.pid, clients, rounds, cold_rounds))
    emit("join_latency", figures | {"load_cpu": load_cpu})


if __name__ == "__main__":
    main()
