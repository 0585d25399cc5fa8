"""An in-memory connection pair for any protocol in tvapp.protocol: a client end and a server end back to back.

Every end has the same shape (tvapp.protocol.connection), so one pair moves texts for signaling and remote control
alike, as h11's ConnectionPair does for HTTP: what one end queues the other receives, until both are quiet.
"""

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from tvapp.protocol.connection import Connection

C = TypeVar("C", bound=Connection[Any, Any])
S = TypeVar("S", bound=Connection[Any, Any])


class ConnectionPair(Generic[C, S]):
    """Move texts between ``client`` and ``server`` as a websocket would.

    ``serve`` is the server's owner: it gets each server event as it happens and answers through the server's
    decision methods, whose texts the next round delivers. Without it the server events are returned by pump().
    Once an end has a close code its socket is closed: texts sent to it later are dropped, as on a real socket.
    """

    def __init__(self, client: C, server: S, serve: Callable[[Any], None] | None = None) -> None:
        self.client = client
        self.server = server
        self.serve = serve
        self.to_server: list[str] = []
        self.to_client: list[str] = []

    def pump(self, now: float) -> tuple[list[Any], list[Any]]:
        """Deliver everything queued both ways at ``now``; return (unserved server events, client events)."""
        server_events: list[Any] = []
        client_events: list[Any] = []
        while True:
            outgoing = self.client.data_to_send()
            incoming = self.server.data_to_send()
            if not outgoing and not incoming:
                return server_events, client_events
            for text in outgoing:
                self.to_server.append(text)
                if self.server.close_code is None:
                    self.server.receive_text(text, now)
                for event in self.server.events_received():
                    if self.serve is None:
                        server_events.append(event)
                    else:
                        self.serve(event)
            for text in incoming:
                self.to_client.append(text)
                if self.client.close_code is None:
                    self.client.receive_text(text, now)
                client_events += self.client.events_received()
