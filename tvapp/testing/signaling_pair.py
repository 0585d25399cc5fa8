"""An in-memory signaling pair: a ClientConnection and a ServerConnection wired back to back, for tests."""

from tvapp.protocol.messages import ClientMessage, Join, Joined, ServerMessage
from tvapp.protocol.signaling import ClientConnection, ServerConnection


class SignalingPair:
    """Move texts between a client and a server connection as a websocket would, until both are quiet."""

    def __init__(
        self, token: str, now: float = 0.0, *, join_timeout: float = 10.0, idle_timeout: float = 30.0
    ) -> None:
        self.client = ClientConnection(token)
        self.server = ServerConnection(now, join_timeout=join_timeout, idle_timeout=idle_timeout)
        self.to_server: list[str] = []
        self.to_client: list[str] = []

    def pump(self, now: float) -> tuple[list[ClientMessage], list[ServerMessage]]:
        """Deliver everything queued both ways at ``now``; return (server events, client events).

        Once the server has a close code the socket is closed: later client texts are dropped, as on a real socket.
        """
        server_events: list[ClientMessage] = []
        client_events: list[ServerMessage] = []
        while True:
            outgoing = self.client.data_to_send()
            incoming = self.server.data_to_send()
            if not outgoing and not incoming:
                return server_events, client_events
            for text in outgoing:
                self.to_server.append(text)
                if self.server.close_code is None:
                    self.server.receive_text(text, now)
            server_events += self.server.events_received()
            for text in incoming:
                self.to_client.append(text)
                self.client.receive_text(text, now)
            client_events += self.client.events_received()

    def join(self, joined: Joined, now: float = 0.0) -> list[ServerMessage]:
        """Run the join handshake, accepting with ``joined``; return the client's events."""
        server_events, _ = self.pump(now)
        if len(server_events) != 1 or not isinstance(server_events[0], Join):
            raise AssertionError(f"expected one Join at the server, got {server_events!r}")
        self.server.accept_join(joined)
        return self.pump(now)[1]
