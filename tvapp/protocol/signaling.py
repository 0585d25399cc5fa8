"""Per-connection signaling state machines, sans-I/O: the server end of a websocket and the SDK end.

Both have the shape of tvapp.protocol.connection: the adapter feeds every received frame in (``receive_text`` /
``receive_bytes``), dispatches ``events_received()``, sends every text from ``data_to_send()``, and once
``close_code`` is set closes the socket with that code and ``close_reason`` after sending the data. Time is always an
argument: the server's adapter calls ``check_timeouts(now)`` at ``next_deadline()``.

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

Client rules (``CLIENT_RULES``): the Join is queued at construction.

    AWAITING_JOIN --joined--> JOINED                         an event
    AWAITING_JOIN --error--> CLOSED                          an event (the join was refused), close 1000
    AWAITING_JOIN --other message or binary--> AWAITING_JOIN ProtocolError raised, nothing changes
    JOINED  --message or error--> JOINED                     an event
    JOINED  --removed--> CLOSED                              an event, close 1000
    JOINED  --joined again or binary--> JOINED               ProtocolError raised, nothing changes
    JOINED  --send(message)--> JOINED                        the message is queued (never a Join)
    JOINED  --send(Leave)--> CLOSED                          the Leave is queued, close 1000
    CLOSED  --anything received--> CLOSED                    ignored

A message of an unknown type is ignored by the client (a newer server); a malformed one raises ProtocolError.
"""

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
from tvapp.protocol.connection import MAX_CLOSE_REASON_BYTES as MAX_CLOSE_REASON_BYTES
from tvapp.protocol.connection import CloseCode as CloseCode
from tvapp.protocol.connection import Connection, Rule, check_close
from tvapp.protocol.connection import ConnectionStateError as ConnectionStateError

JOIN_TIMEOUT: Final = "join_timeout"


class ConnectionState(enum.Enum):
    """Where a signaling connection is in its life."""

    AWAITING_JOIN = "awaiting_join"
    JOINING = "joining"
    JOINED = "joined"
    CLOSED = "closed"


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

SERVER_RULES: Final[dict[tuple[ConnectionState, Input], Rule[ConnectionState]]] = {
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


class ClientInput(enum.Enum):
    """What can happen to a client connection."""

    JOINED = "joined"
    ERROR = "error"
    REMOVED = "removed"
    MESSAGE = "message"
    BINARY = "binary"
    SEND = "send"
    SEND_LEAVE = "send_leave"


_EARLY = "received before joined"
_BINARY_FRAME = "binary messages are not used"

CLIENT_RULES: Final[dict[tuple[ConnectionState, ClientInput], Rule[ConnectionState]]] = {
    (_AWAITING, ClientInput.JOINED): Rule(_JOINED, deliver=True),
    (_AWAITING, ClientInput.ERROR): Rule(_CLOSED, deliver=True, close=(CloseCode.NORMAL, "join refused")),
    (_AWAITING, ClientInput.REMOVED): Rule(_AWAITING, violation=_EARLY),
    (_AWAITING, ClientInput.MESSAGE): Rule(_AWAITING, violation=_EARLY),
    (_AWAITING, ClientInput.BINARY): Rule(_AWAITING, violation=_BINARY_FRAME),
    (_JOINED, ClientInput.JOINED): Rule(_JOINED, violation="received twice"),
    (_JOINED, ClientInput.ERROR): Rule(_JOINED, deliver=True),
    (_JOINED, ClientInput.REMOVED): Rule(_CLOSED, deliver=True, close=(CloseCode.NORMAL, "removed")),
    (_JOINED, ClientInput.MESSAGE): Rule(_JOINED, deliver=True),
    (_JOINED, ClientInput.BINARY): Rule(_JOINED, violation=_BINARY_FRAME),
    (_JOINED, ClientInput.SEND): Rule(_JOINED),
    (_JOINED, ClientInput.SEND_LEAVE): Rule(_CLOSED, close=_LEFT),
}

_PING_MEMORY = 16


class ServerConnection(Connection[ConnectionState, ClientMessage]):
    """The server end of one signaling websocket."""

    def __init__(self, now: float, *, join_timeout: float = 10.0, idle_timeout: float = 30.0) -> None:
        if not join_timeout > 0 or not idle_timeout > 0:
            raise ValueError("join_timeout and idle_timeout must be greater than 0")
        super().__init__(ConnectionState.AWAITING_JOIN, ConnectionState.CLOSED)
        self.join_timeout: Final = join_timeout
        self.idle_timeout: Final = idle_timeout
        self.idle_dropped: bool = False
        self._opened_at = now
        self._last_received = now
        self._pings: list[tuple[Ping, float]] = []

    def receive_text(self, text: str, now: float) -> None:
        """Take one received text frame; then read events_received() and data_to_send()."""
        if self.closed:
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
        if self.closed:
            return
        self._last_received = now
        self._apply(Input.BINARY)

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
        if self.closed:
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
        check_close(code, reason)
        if self.closed:
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

    def _apply(self, kind: Input, *, event: ClientMessage | None = None, error: Error | None = None) -> None:
        rule = self._rule(SERVER_RULES, kind)
        if rule.deliver and event is not None:
            self._events.append(event)
        if rule.error is GIVEN_ERROR and error is not None:
            self._outgoing.append(encode(error))
        elif isinstance(rule.error, Error) and rule.error is not GIVEN_ERROR:
            self._outgoing.append(encode(rule.error))
        self._state = rule.next_state
        if rule.close is not None:
            self._finish(*rule.close)

    def _finish(self, code: int, reason: str) -> None:
        super()._finish(code, reason)
        self._pings = []


class ClientConnection(Connection[ConnectionState, ServerMessage]):
    """The SDK end of one signaling websocket (its rules are CLIENT_RULES, described at the top).

    Sending is allowed only when JOINED; closing the socket once ``close_code`` is set is the adapter's business.
    """

    def __init__(self, token: str, *, auto_subscribe: bool = True, resume_token: str | None = None) -> None:
        super().__init__(ConnectionState.AWAITING_JOIN, ConnectionState.CLOSED)
        self._outgoing.append(encode(Join(token=token, auto_subscribe=auto_subscribe, resume_token=resume_token)))
        self.last_received: float | None = None

    def receive_text(self, text: str, now: float) -> None:
        """Take one received text frame; raise ProtocolError if the server broke the protocol."""
        if self.closed:
            return
        self.last_received = now
        try:
            msg = parse_server_message(decode(text, max_bytes=None))
        except UnknownMessageType:
            return
        kind = (ClientInput.JOINED if isinstance(msg, Joined) else ClientInput.ERROR if isinstance(msg, Error)
                else ClientInput.REMOVED if isinstance(msg, Removed) else ClientInput.MESSAGE)  # fmt: skip
        self._apply(kind, msg.TYPE, msg)

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Take one received binary frame, which this protocol does not use: raise ProtocolError."""
        if self.closed:
            return
        self.last_received = now
        self._apply(ClientInput.BINARY, "message")

    def send(self, msg: ClientMessage) -> None:
        """Queue a message to the server; only once joined. Sending Leave closes the connection."""
        if isinstance(msg, Join) and self._state is ConnectionState.JOINED:
            raise ConnectionStateError("already joined")
        self._apply(ClientInput.SEND_LEAVE if isinstance(msg, Leave) else ClientInput.SEND, msg.TYPE)
        self._outgoing.append(encode(msg))

    def _apply(self, kind: ClientInput, what: str, received: ServerMessage | None = None) -> None:
        rule = self._rule(CLIENT_RULES, kind)
        if rule.violation is not None:
            raise ProtocolError(BAD_MESSAGE, f"{what}: {rule.violation}")
        if rule.deliver and received is not None:
            self._events.append(received)
        self._state = rule.next_state
        if rule.close is not None:
            self._finish(*rule.close)
