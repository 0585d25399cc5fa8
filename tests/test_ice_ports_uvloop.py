"""ICE host sockets in [media] udp_port_range on the core's own event loop (uvloop): a taken port is skipped.

The core runs on uvloop (tvapp/server/run.py), whose create_datagram_endpoint reports a taken port as a bare
OSError("could not bind to local_addr ...") without an errno (the bind's EADDRINUSE is its cause). The range walk
took that for a real failure: when its random first port was one another peer connection already held, aioice gave
up on the host address and the participant got "udp_port_range is full" with 19 of 20 ports free (what made
tests/test_web_media_repair.py fail now and then). Real aiortc peer connections on 127.0.0.1, a real uvloop loop and
a real socket holding the first port the walk tries.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop
from test_ice_ports import free_range, loopback_range, offer_ports

from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection

__all__ = ["loopback_range"]  # (a fixture this module uses)


def test_on_uvloop_a_taken_first_port_is_skipped_not_taken_for_a_full_range(
        loopback_range: None, monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = free_range(2)
    internals.set_port_range((low, high))
    monkeypatch.setattr(internals.random, "randrange", lambda count: 0)  # the walk starts at `low` ...
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", low))  # ... which another socket holds

    async def scenario() -> list[int]:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        pc = new_peer_connection()
        try:
            return await asyncio.wait_for(offer_ports(pc), 10)
        finally:
            await pc.close()

    try:
        ports = uvloop.run(scenario())
    finally:
        holder.close()
    assert ports == [high], ports  # the next port of the range, not PortRangeExhausted
