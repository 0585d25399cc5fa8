"""The one shape of every connection object in tvapp.protocol: what the adapters call, and what the ends share.

Both ends of every protocol (signaling: ServerConnection and ClientConnection; remote control:
RemoteServerConnection on the TV and RemoteClientConnection on the phone) are sans-I/O objects with this API:

    receive_text(text, now)      feed in each received text frame (``receive_bytes(data, now)`` a binary one)
    events_received()            then take what the owner must act on, in order, and act
    data_to_send()               then send these texts, in order
    close_code / close_reason    once close_code is set: after sending the data, close the socket with them
    state / closed               where the connection is in its transition table

The owner answers an event with decision methods (``accept_join``/``reject_join``, ``accept_auth``/``reject_auth``,
``ok``/``error``, ``send``, ``close``), which queue texts for ``data_to_send()``; nothing here does I/O or reads a
clock, and time arrives as ``now``. An end with deadlines says when with ``next_deadline()`` and is given
``check_timeouts(now)`` then.

Each end keeps its transitions in a table of ``Rule``s keyed by (state, input), as h11 tabulates client and server
alike. A server end answers a peer that breaks the protocol itself (an error text queued, the socket closed when its
table says so) and never raises for received input. A client end raises ProtocolError when the server breaks the
protocol, and changes nothing, so its owner may skip that message and read on. A decision the table has no row for
in the current state raises ConnectionStateError: that is a bug in the owner, not in the peer.
"""

import dataclasses
import enum
from collections.abc import Mapping
from typing import Final, Generic, TypeVar

from tvapp.protocol.fields import Message

MAX_CLOSE_REASON_BYTES: Final = 123


class CloseCode(enum.IntEnum):
    """Websocket close codes the protocols use (RFC 6455, section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009


class ConnectionStateError(RuntimeError):
    """The owner of a connection asked for something its state does not allow (a bug in the caller)."""


S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E")
K = TypeVar("K", bound=enum.Enum)


@dataclasses.dataclass(frozen=True)
class Rule(Generic[S]):
    """What one input does in one state.

    ``next_state`` is where the connection goes; ``deliver`` hands the received message to the owner as an event;
    ``error`` is the error message queued to the peer (a server end's answer to a violation); ``violation`` makes a
    client end raise ProtocolError with that problem and stay where it is; ``close`` is the (code, reason) the
    socket closes with after the queued texts.
    """

    next_state: S
    deliver: bool = False
    error: Message | None = None
    violation: str | None = None
    close: tuple[int, str] | None = None


def check_close(code: int, reason: str) -> None:
    """Raise ValueError unless (code, reason) can go in a websocket close frame the owner chose."""
    if not 1000 <= code <= 4999:
        raise ValueError("a close code is between 1000 and 4999")
    if len(reason.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
        raise ValueError(f"a close reason is at most {MAX_CLOSE_REASON_BYTES} bytes")


class Connection(Generic[S, E]):
    """The part every connection end shares: its state, its events, its outgoing texts and its close."""

    def __init__(self, state: S, closed_state: S) -> None:
        self._state = state
        self._closed_state = closed_state
        self._events: list[E] = []
        self._outgoing: list[str] = []
        self.close_code: int | None = None
        self.close_reason: str = ""

    @property
    def state(self) -> S:
        """Return the connection's state."""
        return self._state

    @property
    def closed(self) -> bool:
        """Return whether the connection is over (once close_code is set, the adapter closes the socket)."""
        return self._state is self._closed_state

    def receive_text(self, text: str, now: float) -> None:
        """Take one received text frame; then read events_received() and data_to_send()."""
        raise NotImplementedError

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Take one received binary frame; then read events_received() and data_to_send()."""
        raise NotImplementedError

    def events_received(self) -> list[E]:
        """Return and forget what the owner must act on since the last call, in order."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[str]:
        """Return and forget the texts to send, in order; after them, close if close_code is set."""
        data, self._outgoing = self._outgoing, []
        return data

    def _rule(self, table: Mapping[tuple[S, K], Rule[S]], kind: K) -> Rule[S]:
        rule = table.get((self._state, kind))
        if rule is None:
            raise ConnectionStateError(f"{kind.value} is not allowed in state {self._state.name}")
        return rule

    def _finish(self, code: int, reason: str) -> None:
        self._state = self._closed_state
        self.close_code = code
        self.close_reason = reason
