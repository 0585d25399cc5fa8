"""Per-connection signaling state machines, sans-I/O: one for the server end of a websocket, one for the SDK end.

The adapter feeds every received frame in (``receive_text`` / ``receive_bytes``), dispatches
``events_received()``, sends every text from ``data_to_send()``, and once ``close_code`` is set closes the
socket with that code and ``close_reason`` after sending the data. Time is always an argument: the adapter
calls ``check_timeouts(now)`` at ``next_deadline()``.

Server rules (``SERVER_RULES`` below is the table the code runs; a pair missing from it is refused):

    AWAITING_JOIN --join--> JOINING                          the Join is an event; the owner decides on it
    AWAITING_JOIN --other or bad message--> CLOSED           error queued, close 1008
    JOINING --accept_join(Joined)--> JOINED                  the Joined is queued
    JOINING --reject_join(code, msg)--> CLOSED               error queued, close 1008
    JOINING --any message--> JOINING                         error "bad_message": wait for the join decision
    JOINED  --message--> JOINED                              an event
    JOINED  --bad message / join again--> JOINED             error "bad_message", the connection stays open
    JOINED  --leave--> CLOSED                                an event, close 1000
    any open --binary frame--> CLOSED                        error queued, close 1003
    any open --text over MAX_MESSAGE_BYTES--> CLOSED         error "message_too_big", close 1009
    AWAITING_JOIN/JOINING --join timeout--> CLOSED           error "join_timeout", close 1008
    JOINED --silent for idle_timeout--> CLOSED               close 1001 "idle timeout", no error (the peer is gone)
    CLOSED --anything received--> CLOSED                     ignored

Any received text counts as activity for the idle timeout, a ping as much as a bad message.
"""

import dataclasses
import enum
import math
from typing import Final

from tvapp.protocol.messages import (
    BAD_MESSAGE,
    MESSAGE_TOO_BIG,
    ClientMessage,
    Encoded,
    Error,
    Join,
    Joined,
    Leave,
    Ping,
    Pong,
    ProtocolError,
    Removed,
    ServerMessage,
    UnknownMessageType,
    decode,
    encode,
    parse_client_message,
    parse_server_message,
)

JOIN_TIMEOUT: Final = "join_timeout"
MAX_CLOSE_REASON_BYTES: Final = 123


class ConnectionState(enum.Enum):
    """Where a signaling connection is in its life."""

    AWAITING_JOIN = "awaiting_join"
    JOINING = "joining"
    JOINED = "joined"
    CLOSED = "closed"


class CloseCode(enum.IntEnum):
    """Websocket close codes this protocol uses (RFC 6455, section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009


class ConnectionStateError(RuntimeError):
    """The owner of a connection asked for something its state does not allow (a bug in the caller)."""


class Input(enum.Enum):
    """What can happen to a server connection."""

    JOIN = "join"
    MESSAGE = "message"
    LEAVE = "leave"
    BAD_MESSAGE = "bad_message"
    BINARY = "binary"
    TOO_BIG = "too_big"
    ACCEPT_JOIN = "accept_join"
    REJECT_JOIN = "reject_join"
    JOIN_TIMEOUT = "join_timeout"
    IDLE_TIMEOUT = "idle_timeout"


@dataclasses.dataclass(frozen=True)
class Rule:
    """What one input does in one state."""

    next_state: ConnectionState
    deliver: bool = False
    error: Error | None = None
    close: tuple[CloseCode, str] | None = None


GIVEN_ERROR: Final = Error(code="given", message="the error that comes with the input")
"""Placeholder in the table for an error that comes with the input (a parse error, a rejection)."""

_AWAITING = ConnectionState.AWAITING_JOIN
_JOINING = ConnectionState.JOINING
_JOINED = ConnectionState.JOINED
_CLOSED = ConnectionState.CLOSED
_JOIN_FIRST = Error(code=BAD_MESSAGE, message="send a join message first")
_WAIT = Error(code=BAD_MESSAGE, message="join in progress: wait for joined")
_ALREADY = Error(code=BAD_MESSAGE, message="already joined")
_BINARY = Error(code=BAD_MESSAGE, message="binary messages are not supported")
_TIMED_OUT = Error(code=JOIN_TIMEOUT, message="no join in time")
_POLICY = CloseCode.POLICY_VIOLATION
_LEFT = (CloseCode.NORMAL, "left")
_BINARY_CLOSE = (CloseCode.UNSUPPORTED_DATA, "binary not supported")
_TOO_BIG_CLOSE = (CloseCode.MESSAGE_TOO_BIG, "message too big")

SERVER_RULES: Final[dict[tuple[ConnectionState, Input], Rule]] = {
    (_AWAITING, Input.JOIN): Rule(_JOINING, deliver=True),
    (_AWAITING, Input.MESSAGE): Rule(_CLOSED, error=_JOIN_FIRST, close=(_POLICY, "join first")),
    (_AWAITING, Input.LEAVE): Rule(_CLOSED, error=_JOIN_FIRST, close=(_POLICY, "join first")),
    (_AWAITING, Input.BAD_MESSAGE): Rule(_CLOSED, error=GIVEN_ERROR, close=(_POLICY, "bad join")),
    (_AWAITING, Input.BINARY): Rule(_CLOSED, error=_BINARY, close=_BINARY_CLOSE),
    (_AWAITING, Input.TOO_BIG): Rule(_CLOSED, error=GIVEN_ERROR, close=_TOO_BIG_CLOSE),
    (_AWAITING, Input.JOIN_TIMEOUT): Rule(_CLOSED, error=_TIMED_OUT, close=(_POLICY, "join timeout")),
    (_JOINING, Input.JOIN): Rule(_JOINING, error=_WAIT),
    (_JOINING, Input.MESSAGE): Rule(_JOINING, error=_WAIT),
    (_JOINING, Input.LEAVE): Rule(_JOINING, error=_WAIT),
    (_JOINING, Input.BAD_MESSAGE): Rule(_JOINING, error=GIVEN_ERROR),
    (_JOINING, Input.BINARY): Rule(_CLOSED, error=_BINARY, close=_BINARY_CLOSE),
    (_JOINING, Input.TOO_BIG): Rule(_CLOSED, error=GIVEN_ERROR, close=_TOO_BIG_CLOSE),
    (_JOINING, Input.ACCEPT_JOIN): Rule(_JOINED),
    (_JOINING, Input.REJECT_JOIN): Rule(_CLOSED, error=GIVEN_ERROR, close=(_POLICY, "join rejected")),
    (_JOINING, Input.JOIN_TIMEOUT): Rule(_CLOSED, error=_TIMED_OUT, close=(_POLICY, "join timeout")),
    (_JOINED, Input.JOIN): Rule(_JOINED, error=_ALREADY),
    (_JOINED, Input.MESSAGE): Rule(_JOINED, deliver=True),
    (_JOINED, Input.LEAVE): Rule(_CLOSED, deliver=True, close=_LEFT),
    (_JOINED, Input.BAD_MESSAGE): Rule(_JOINED, error=GIVEN_ERROR),
    (_JOINED, Input.BINARY): Rule(_CLOSED, error=_BINARY, close=_BINARY_CLOSE),
    (_JOINED, Input.TOO_BIG): Rule(_CLOSED, error=GIVEN_ERROR, close=_TOO_BIG_CLOSE),
    (_JOINED, Input.IDLE_TIMEOUT): Rule(_CLOSED, close=(CloseCode.GOING_AWAY, "idle timeout")),
}

_PING_MEMORY = 16


class ServerConnection:
    """The server end of one signaling websocket."""

    def __init__(self, now: float, *, join_timeout: float = 10.0, idle_timeout: float = 30.0) -> None:
        if not join_timeout > 0 or not idle_timeout > 0:
            raise ValueError("join_timeout and idle_timeout must be greater than 0")
        self.join_timeout: Final = join_timeout
        self.idle_timeout: Final = idle_timeout
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.idle_dropped: bool = False
        self._state = ConnectionState.AWAITING_JOIN
        self._opened_at = now
        self._last_received = now
        self._events: list[ClientMessage] = []
        self._outgoing: list[str] = []
        self._pings: list[tuple[Ping, float]] = []

    @property
    def state(self) -> ConnectionState:
        """Return the connection's state."""
        return self._state

    def receive_text(self, text: str, now: float) -> None:
        """Take one received text frame; then read events_received() and data_to_send()."""
        if self._state is ConnectionState.CLOSED:
            return
        self._last_received = now
        try:
            msg = parse_client_message(decode(text))
        except ProtocolError as exc:
            error = Error(code=exc.code, message=exc.message)
            self._apply(Input.TOO_BIG if exc.code == MESSAGE_TOO_BIG else Input.BAD_MESSAGE, error=error)
            return
        if isinstance(msg, Ping):
            self._pings = [*self._pings[-_PING_MEMORY + 1 :], (msg, now)]
        kind = Input.JOIN if isinstance(msg, Join) else Input.LEAVE if isinstance(msg, Leave) else Input.MESSAGE
        self._apply(kind, event=msg)

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Take one received binary frame, which this protocol refuses."""
        if self._state is ConnectionState.CLOSED:
            return
        self._last_received = now
        self._apply(Input.BINARY)

    def events_received(self) -> list[ClientMessage]:
        """Return and forget the client messages received since the last call."""
        events, self._events = self._events, []
        return events

    def accept_join(self, joined: Joined) -> None:
        """Admit the client (state JOINING only) and queue the Joined message."""
        self._apply(Input.ACCEPT_JOIN)
        self._outgoing.append(encode(joined))

    def reject_join(self, code: str, message: str) -> None:
        """Refuse the join (state JOINING only): queue an error and close with 1008."""
        self._apply(Input.REJECT_JOIN, error=Error(code=code, message=message))

    def send(self, msg: ServerMessage | Encoded) -> None:
        """Queue a message to the client; only once joined, and never a Joined (use accept_join)."""
        if self._state is not ConnectionState.JOINED:
            raise ConnectionStateError(f"cannot send in state {self._state.name}")
        if isinstance(msg, Encoded):
            if isinstance(msg.msg, Joined):
                raise ConnectionStateError("send Joined with accept_join()")
            self._outgoing.append(msg.text)
            return
        if isinstance(msg, Joined):
            raise ConnectionStateError("send Joined with accept_join()")
        self._outgoing.append(encode(msg))

    def pong(self, ping: Ping, now: float) -> None:
        """Queue the answer to a received ping: t1 is when it arrived, t2 is now; nothing once closed."""
        if self._state is ConnectionState.CLOSED:
            return
        received_at = now
        for i, (seen, at) in enumerate(self._pings):
            if seen is ping:
                received_at = at
                del self._pings[: i + 1]
                break
        self.send(Pong(t0=ping.t0, t1=received_at, t2=now, id=ping.id))

    def close(self, code: int, reason: str, error: Error | None = None) -> None:
        """Close on the server's own decision (removed, replaced, shutting down), sending ``error`` first if given."""
        if not 1000 <= code <= 4999:
            raise ValueError("a close code is between 1000 and 4999")
        if len(reason.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
            raise ValueError(f"a close reason is at most {MAX_CLOSE_REASON_BYTES} bytes")
        if self._state is ConnectionState.CLOSED:
            return
        if error is not None:
            self._outgoing.append(encode(error))
        self._finish(code, reason)

    def check_timeouts(self, now: float) -> None:
        """Close the connection if the join or the idle timeout has passed at ``now``."""
        if self._state in (ConnectionState.AWAITING_JOIN, ConnectionState.JOINING):
            if now >= self._opened_at + self.join_timeout:
                self._apply(Input.JOIN_TIMEOUT)
        elif self._state is ConnectionState.JOINED and now >= self._last_received + self.idle_timeout:
            self._apply(Input.IDLE_TIMEOUT)
            self.idle_dropped = True

    def next_deadline(self) -> float:
        """Return when check_timeouts() next needs calling (infinity once closed)."""
        if self._state in (ConnectionState.AWAITING_JOIN, ConnectionState.JOINING):
            return self._opened_at + self.join_timeout
        if self._state is ConnectionState.JOINED:
            return self._last_received + self.idle_timeout
        return math.inf

    def data_to_send(self) -> list[str]:
        """Return and forget the texts to send, in order; after them, close if close_code is set."""
        data, self._outgoing = self._outgoing, []
        return data

    def _apply(self, kind: Input, *, event: ClientMessage | None = None, error: Error | None = None) -> None:
        rule = SERVER_RULES.get((self._state, kind))
        if rule is None:
            raise ConnectionStateError(f"{kind.value} is not allowed in state {self._state.name}")
        if rule.deliver and event is not None:
            self._events.append(event)
        if rule.error is GIVEN_ERROR and error is not None:
            self._outgoing.append(encode(error))
        elif rule.error is not None and rule.error is not GIVEN_ERROR:
            self._outgoing.append(encode(rule.error))
        self._state = rule.next_state
        if rule.close is not None:
            self._finish(*rule.close)

    def _finish(self, code: int, reason: str) -> None:
        self._state = ConnectionState.CLOSED
        self.close_code = code
        self.close_reason = reason
        self._pings = []


class ClientConnection:
    """The SDK end of one signaling websocket.

    Rules: the Join is queued at construction. AWAITING_JOIN --joined--> JOINED; AWAITING_JOIN --error--> CLOSED
    (the join was refused); any other message before joined is a ProtocolError. JOINED --removed--> CLOSED;
    other messages are events. A message of an unknown type is ignored (a newer server); a malformed one raises
    ProtocolError and changes nothing. Sending is allowed only when JOINED; sending Leave closes.
    CLOSED ignores everything received. Closing the socket is the adapter's business.
    """

    def __init__(self, token: str, *, auto_subscribe: bool = True) -> None:
        self._state = ConnectionState.AWAITING_JOIN
        self._events: list[ServerMessage] = []
        self._outgoing: list[str] = [encode(Join(token=token, auto_subscribe=auto_subscribe))]
        self.last_received: float | None = None

    @property
    def state(self) -> ConnectionState:
        """Return the connection's state."""
        return self._state

    def receive_text(self, text: str, now: float) -> None:
        """Take one received text frame; raise ProtocolError if the server broke the protocol."""
        if self._state is ConnectionState.CLOSED:
            return
        self.last_received = now
        try:
            msg = parse_server_message(decode(text, max_bytes=None))
        except UnknownMessageType:
            return
        if self._state is ConnectionState.AWAITING_JOIN:
            if isinstance(msg, Joined):
                self._state = ConnectionState.JOINED
            elif isinstance(msg, Error):
                self._state = ConnectionState.CLOSED
            else:
                raise ProtocolError(BAD_MESSAGE, f"{msg.TYPE}: received before joined")
        elif isinstance(msg, Joined):
            raise ProtocolError(BAD_MESSAGE, "joined: received twice")
        elif isinstance(msg, Removed):
            self._state = ConnectionState.CLOSED
        self._events.append(msg)

    def events_received(self) -> list[ServerMessage]:
        """Return and forget the server messages received since the last call."""
        events, self._events = self._events, []
        return events

    def send(self, msg: ClientMessage) -> None:
        """Queue a message to the server; only once joined. Sending Leave closes the connection."""
        if self._state is not ConnectionState.JOINED:
            raise ConnectionStateError(f"cannot send in state {self._state.name}")
        if isinstance(msg, Join):
            raise ConnectionStateError("already joined")
        self._outgoing.append(encode(msg))
        if isinstance(msg, Leave):
            self._state = ConnectionState.CLOSED

    def data_to_send(self) -> list[str]:
        """Return and forget the texts to send, in order."""
        data, self._outgoing = self._outgoing, []
        return data
