"""A fake signaling connection for the SDK's request channel (``tvapp.client.requests``): it records what is sent.

A test answers by hand (``channel.receive(...)``) and waits for what the channel sent with ``next_sent`` instead of
sleeping; ``joined.ping_interval`` stands for the server's keep-alive interval from the join answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tvapp.protocol import messages as m


class FakeSignal:
    """Records what the channel sends; `joined.ping_interval` is the server's keep-alive interval."""

    def __init__(self, ping_interval: float = 10.0) -> None:
        self.sent: list[m.ClientMessage] = []
        self.changed = asyncio.Event()
        self.joined = type("Joined", (), {"ping_interval": ping_interval})()

    async def send(self, msg: m.ClientMessage) -> None:
        """Record `msg` as sent."""
        self.sent.append(msg)
        self.changed.set()

    async def next_sent(self, kind: type[Any], after: int = 0) -> Any:
        """Wait for the first message of `kind` sent at index `after` or later."""
        async with asyncio.timeout(5.0):
            while True:
                found = [msg for msg in self.sent[after:] if isinstance(msg, kind)]
                if found:
                    return found[0]
                self.changed.clear()
                await self.changed.wait()
