"""A hostile webhook receiver against a real core: one that answers something that is not HTTP, one that drips its
answer a byte at a time. Each attempt ends within [webhooks] timeout and counts, so the retries stay bounded by
max_attempts and the queue empties; the receiver's banner never reaches the logs' retry lines as a traceback.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from test_attack_live import FarEnd, drip
from tvapp.client.signaling import SignalClient
from tvapp.testing.aio import run
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until

TIMEOUT = 0.5
ATTEMPTS = 2
EVENTS = 3  # room_started, participant_joined, participant_left


def queued(data_dir: Path) -> int:
    with sqlite3.connect(f"file:{data_dir / 'tvapp.db'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM webhook_queue").fetchone()[0])


def banner(conn: socket.socket, end: FarEnd) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_internal-SECRETBANNER\r\n")


@pytest.mark.parametrize("answer", [banner, drip], ids=["not-http", "dripping"])
def test_each_attempt_at_a_hostile_receiver_ends_and_counts(make_server: Callable[..., ServerProcess],
                                                            answer: Callable[[socket.socket, FarEnd], None]) -> None:
    receiver = FarEnd(answer)
    try:
        srv = make_server(TVAPP_WEBHOOKS_URLS=receiver.url("/hooks"), TVAPP_WEBHOOKS_MAX_ATTEMPTS=str(ATTEMPTS),
                          TVAPP_WEBHOOKS_BASE_DELAY="0.05", TVAPP_WEBHOOKS_MAX_DELAY="0.1",
                          TVAPP_WEBHOOKS_TIMEOUT=str(TIMEOUT))
        room = room_name("atk-hook", 12)

        async def join() -> None:
            client = await SignalClient.connect(srv.url, srv.token(room, "alice", host=True)["access_token"])
            await client.close()

        started = time.monotonic()
        run(join())
        wait_until(lambda: receiver.accepted >= EVENTS * ATTEMPTS and queued(srv.data_dir) == 0, timeout=8.0,
                   what="every event tried max_attempts times, then given up")
        assert time.monotonic() - started < EVENTS * ATTEMPTS * (TIMEOUT + 0.5) + 2.0
        assert receiver.accepted == EVENTS * ATTEMPTS
        log = "".join(srv.output)
        assert "given up after 2 attempts" in log, log[-2000:]
        assert "SECRETBANNER" not in log
    finally:
        receiver.close()


def test_allow_private_false_is_checked_on_the_resolved_address_not_only_the_name(
        make_server: Callable[..., ServerProcess]) -> None:
    receiver = FarEnd(lambda conn, end: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    try:
        named = f"http://{socket.gethostname()}:{receiver.port}/hooks"  # resolves to loopback; not an IP literal
        srv = make_server(TVAPP_WEBHOOKS_URLS=named, TVAPP_WEBHOOKS_ALLOW_PRIVATE="false",
                          TVAPP_WEBHOOKS_MAX_ATTEMPTS="1", TVAPP_WEBHOOKS_TIMEOUT="2")
        room = room_name("atk-hook", 12)

        async def join() -> None:
            client = await SignalClient.connect(srv.url, srv.token(room, "alice", host=True)["access_token"])
            await client.close()

        run(join())
        wait_until(lambda: queued(srv.data_dir) == 0, timeout=8.0, what="the deliveries given up")
        assert receiver.accepted == 0
    finally:
        receiver.close()
