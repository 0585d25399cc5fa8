"""A fake phone for the TV's remote-control websocket (/v1/remote): raw protocol JSON over a real connection.

Every message the phone receives is checked with the protocol's own parser, so a test that talks through it also
proves the TV speaks the protocol. The connection is entered into the TV fixture's ``sockets`` exit stack, so it is
closed when the test's TV stops.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tvapp.protocol.remote_messages import parse_tv_message


class RemoteTv(Protocol):
    """What a phone needs of a test's TV: its websocket URL and the exit stack that owns test sockets."""

    ws_url: str
    sockets: contextlib.ExitStack


class Phone:
    """A remote-control websocket speaking raw protocol JSON; every received message is checked with the parser."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    def connect(cls, tv: RemoteTv, credential: str | None = None) -> Phone:
        """Open a websocket to `tv`; with a credential, authenticate and read the first state."""
        phone = cls(tv.sockets.enter_context(connect(tv.ws_url, open_timeout=5)))
        if credential is not None:
            phone.send({"type": "auth", "credential": credential})
            assert phone.recv()["type"] == "authed"
            assert phone.recv()["type"] == "state"
        return phone

    def send(self, message: dict[str, Any]) -> None:
        """Send `message` with the protocol version added."""
        self.ws.send(json.dumps({"v": 1, **message}))

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """Return the next message (checked with the protocol's parser) as a dict."""
        text = self.ws.recv(timeout)
        assert isinstance(text, str)
        parse_tv_message(text)
        message: dict[str, Any] = json.loads(text)
        return message

    def closed_with(self, timeout: float = 5.0) -> tuple[list[dict[str, Any]], int | None]:
        """Read until the TV closes; return what came before and the close code."""
        seen = []
        try:
            while True:
                seen.append(self.recv(timeout))
        except ConnectionClosed as closed:
            return seen, closed.rcvd.code if closed.rcvd else None

    def close(self) -> None:
        """Close the websocket."""
        self.ws.close()
