"""An in-memory signaling pair: a ClientConnection and a ServerConnection wired back to back, for tests."""

from typing import Any

from tvapp.protocol.messages import Join, Joined, ServerMessage
from tvapp.protocol.signaling import ClientConnection, ServerConnection
from tvapp.testing.connection_pair import ConnectionPair


class SignalingPair(ConnectionPair[ClientConnection, ServerConnection]):
    """Move texts between a client and a server connection as a websocket would, until both are quiet.

    ``pump(now)`` returns (server events, client events); once the server has a close code the socket is closed and
    later client texts are dropped, as on a real socket (see tvapp.testing.connection_pair).
    """

    def __init__(
        self, token: str, now: float = 0.0, *, join_timeout: float = 10.0, idle_timeout: float = 30.0
    ) -> None:
        super().__init__(ClientConnection(token),
                         ServerConnection(now, join_timeout=join_timeout, idle_timeout=idle_timeout))

    def join(self, joined: Joined, now: float = 0.0) -> list[ServerMessage]:
        """Run the join handshake, accepting with ``joined``; return the client's events."""
        server_events, _ = self.pump(now)
        if len(server_events) != 1 or not isinstance(server_events[0], Join):
            raise AssertionError(f"expected one Join at the server, got {server_events!r}")
        self.server.accept_join(joined)
        client_events: list[Any] = self.pump(now)[1]
        return client_events
