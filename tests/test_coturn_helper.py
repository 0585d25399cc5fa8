"""tvapp.testing.coturn itself: the secret stays off the command line, it runs inside a network namespace
through its command prefix, it waits for its listeners, counts allocations, and stops cleanly."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tvapp.testing.coturn import Coturn, CoturnError

SECRET = "coturn-helper-secret-Pp41"
ALLOCATE = """
import asyncio, sys
from aioice import turn
async def main():
    t, _ = await turn.create_turn_endpoint(asyncio.DatagramProtocol, server_addr=("127.0.0.1", int(sys.argv[1])),
                                           username=sys.argv[2], password=sys.argv[3], transport=sys.argv[4])
    print(t.get_extra_info("sockname")[0]); t.close()
asyncio.run(main())
"""


def test_the_secret_is_in_a_private_file_not_on_the_command_line() -> None:
    with Coturn(secret=SECRET) as coturn:
        assert coturn.process is not None
        cmdline = Path(f"/proc/{coturn.process.pid}/cmdline").read_bytes()
        assert SECRET.encode() not in cmdline
        assert stat.S_IMODE(coturn.config_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(coturn.directory.stat().st_mode) == 0o700
        assert "allow-loopback-peers" not in coturn.config_lines()  # refused unless asked for
        assert "no-multicast-peers" in coturn.config_lines()
        directory, process = coturn.directory, coturn.process
    assert process.poll() is not None and not directory.exists()


def test_a_listener_that_never_opens_fails_start_within_its_timeout() -> None:
    coturn = Coturn(secret=SECRET, listening_ips=["192.0.2.254"], port=34999)  # not an address here
    with pytest.raises((CoturnError, AssertionError), match="coturn|turnserver"):
        coturn.start(timeout=3)
    assert coturn.process is None and not coturn.directory.exists()


def test_it_runs_inside_a_network_namespace_through_its_prefix() -> None:
    ns = f"tvcoturn{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        prefix = ["ip", "netns", "exec", ns]
        with Coturn(secret=SECRET, prefix=prefix, port=3478, relay_ip="127.0.0.1") as coturn:
            for transport in ("udp", "tcp"):
                user, password = coturn.credentials("inside")
                done = subprocess.run([*prefix, sys.executable, "-c", ALLOCATE, "3478", user, password, transport],
                                      capture_output=True, text=True, timeout=30, env={**os.environ}, check=False)
                assert done.returncode == 0 and done.stdout.strip() == "127.0.0.1", done.stderr
            assert coturn.allocations(":inside") == 2
            expired = coturn.credentials("late", ttl=-60)
            done = subprocess.run([*prefix, sys.executable, "-c", ALLOCATE, "3478", *expired, "udp"],
                                  capture_output=True, text=True, timeout=30, check=False)
            assert done.returncode != 0 and "401" in done.stderr
            assert [code for user, code in coturn.refusals() if user.endswith(":late")] == [401]
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
