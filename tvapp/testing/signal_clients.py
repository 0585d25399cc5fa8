"""Signaling clients against a real ``tvapp serve`` for tests: join with a fresh token, collect what arrives.

``await connect(srv, room, identity, host=True)`` mints an access token with those grants and returns the SDK's
SignalClient once ``joined`` came; ``await messages_within(client, 0.5)`` returns every message that arrives in a
window (for "nothing else came" checks).
"""

from __future__ import annotations

import time
from typing import Any

from tvapp.client.signaling import SignalClient
from tvapp.protocol.messages import ServerMessage
from tvapp.testing.server import ServerProcess


async def connect(srv: ServerProcess, room: str, identity: str, *, heartbeat: bool = True,
                  resume_token: str | None = None, **grants: Any) -> SignalClient:
    """Join `room` as `identity` with a fresh access token carrying `grants`; return the client once joined."""
    token = srv.token(room, identity, **grants)["access_token"]
    return await SignalClient.connect(srv.url, token, heartbeat=heartbeat, resume_token=resume_token)


async def messages_within(client: SignalClient, wait: float = 0.3) -> list[ServerMessage]:
    """Return every message that arrives within `wait` seconds."""
    seen: list[ServerMessage] = []
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            seen.append(await client.next(left))
        except TimeoutError:
            break
    return seen
