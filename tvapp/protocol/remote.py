"""Remote control (protocol version 1): the TV's end and the phone's end of one ``/v1/remote`` websocket, sans-I/O.

The messages and their error codes are in tvapp.protocol.remote_messages. Both ends have the shape of
tvapp.protocol.connection: ``receive_text(text, now)`` (or ``receive_bytes``), then ``events_received()`` and
``data_to_send()``; the owner's decisions are methods that queue texts; once ``close_code`` is set the adapter sends
the queued texts and closes the socket with ``close_code`` and ``close_reason``.

TV side rules (``SERVER_RULES`` below is the table the code runs; a pair missing from it is a caller bug):

    AWAITING_AUTH   --auth-->               AUTHENTICATING   AuthRequested: the owner checks the credential
    AWAITING_AUTH   --command-->            AWAITING_AUTH    error not_authenticated, stays open
    AUTHENTICATING  --auth-->               AUTHENTICATING   error already_authenticated, stays open
    AUTHENTICATING  --command-->            AUTHENTICATING   error not_authenticated, stays open
    AUTHENTICATING  --accept_auth()-->      AUTHENTICATED    authed queued
    AUTHENTICATING  --reject_auth()-->      CLOSED           error auth_failed queued, close 1008
    AWAITING_AUTH/AUTHENTICATING --auth timeout--> CLOSED    error auth_timeout queued, close 1008
    AUTHENTICATED   --command-->            AUTHENTICATED    CommandReceived: the owner acts, then ok() or error()
    AUTHENTICATED   --auth-->               AUTHENTICATED    error already_authenticated, stays open
    any open        --bad message or binary--> same state    error with its code queued, stays open
    any open        --close()-->            CLOSED           the owner's error queued, close with the owner's code
    CLOSED          --anything received-->  CLOSED           ignored

The TV answers every mistake of a phone itself and never raises for received input. The auth deadline is
``auth_timeout`` seconds after ``now`` at construction: the adapter calls ``check_timeouts(now)`` at
``next_deadline()``.

Phone side rules (``CLIENT_RULES``): the auth is queued at construction.

    AUTHENTICATING --authed-->              AUTHENTICATED    an event; the commands held until now are queued
    AUTHENTICATING --error-->               CLOSED           an event, then every pending command ends with it; close 1000
    AUTHENTICATING --other message-->       AUTHENTICATING   RemoteProtocolError raised, nothing changes
    AUTHENTICATED  --state, devices, ok, error--> AUTHENTICATED  events: an ok or error with a pending command's id ends
                                                             it as a CommandResult (a devices or phone_camera_answer
                                                             message with that id is kept for the result); the rest
                                                             are handed out as they are
    AUTHENTICATED  --authed again-->        AUTHENTICATED    RemoteProtocolError raised, nothing changes
    any open       --binary frame-->        same state       RemoteProtocolError raised, nothing changes
    any open       --send(command)-->       same state       queued (held until authed), with a fresh id if it has none
    any open       --close()-->             CLOSED           every pending command ends with connection_closed; close 1000
    CLOSED         --anything received-->   CLOSED           ignored

A message of an unknown type is ignored by the phone (a newer TV).

The phone-camera signaling (phone_camera_offer/mute/stop, phone_camera_answer/stopped) travels under these same
rules: an offer is a command like any other (so only an authenticated, paired phone can make one), its SDP at most
MAX_SDP_BYTES inside a message of at most MAX_MESSAGE_BYTES; the TV's phone_camera_answer and phone_camera_stopped
are handed out to the phone's owner as events.
"""

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Final, TypeAlias

from tvapp.protocol.connection import CloseCode as CloseCode
from tvapp.protocol.connection import Connection, Rule, check_close
from tvapp.protocol.connection import ConnectionStateError as ConnectionStateError
from tvapp.protocol.remote_messages import (
    ALREADY_AUTHENTICATED,
    AUTH_FAILED,
    AUTH_TIMEOUT,
    BAD_MESSAGE,
    CONNECTION_CLOSED,
    NOT_AUTHENTICATED,
    Auth,
    Authed,
    Command,
    DeviceInfo,
    Devices,
    Error,
    Ok,
    PhoneCameraAnswer,
    PhoneCameraStopped,
    RemoteProtocolError,
    State,
    TvMessage,
    UnknownRemoteMessage,
    encode,
    parse_phone_message,
    parse_tv_message,
)


class RemoteState(enum.Enum):
    """Where a remote-control connection is in its life."""

    AWAITING_AUTH = "awaiting_auth"
    AUTHENTICATING = "authenticating"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


class Input(enum.Enum):
    """What can happen to the TV's end of a connection."""

    AUTH = "auth"
    COMMAND = "command"
    BAD_MESSAGE = "bad_message"
    ACCEPT_AUTH = "accept_auth"
    REJECT_AUTH = "reject_auth"
    AUTH_TIMEOUT = "auth_timeout"
    CLOSE = "close"


class ClientInput(enum.Enum):
    """What can happen to the phone's end of a connection."""

    AUTHED = "authed"
    ERROR = "error"
    MESSAGE = "message"
    BINARY = "binary"
    SEND = "send"
    CLOSE = "close"


GIVEN_ERROR: Final = Error(code="given", message="the error that comes with the input")
"""Placeholder in the table for an error that comes with the input (a parse error, the owner's reason)."""
GIVEN_CLOSE: Final = (int(CloseCode.NORMAL), "given")
"""Placeholder in the table for the close code and reason the owner gives to close()."""

_WAITING = RemoteState.AWAITING_AUTH
_CHECKING = RemoteState.AUTHENTICATING
_AUTHED = RemoteState.AUTHENTICATED
_CLOSED = RemoteState.CLOSED
_AUTH_FIRST = Error(code=NOT_AUTHENTICATED, message="send auth with the device credential first")
_WAIT_FOR_AUTHED = Error(code=NOT_AUTHENTICATED, message="auth in progress: wait for authed")
_AUTH_SENT = Error(code=ALREADY_AUTHENTICATED, message="auth was already sent on this connection")
_ALREADY = Error(code=ALREADY_AUTHENTICATED, message="this connection is already authenticated")
_REFUSED = Error(code=AUTH_FAILED, message="the TV does not accept this device credential: pair again")
_TOO_SLOW = Error(code=AUTH_TIMEOUT, message="no accepted auth in time")
_POLICY = CloseCode.POLICY_VIOLATION

SERVER_RULES: Final[dict[tuple[RemoteState, Input], Rule[RemoteState]]] = {
    (_WAITING, Input.AUTH): Rule(_CHECKING, deliver=True),
    (_WAITING, Input.COMMAND): Rule(_WAITING, error=_AUTH_FIRST),
    (_WAITING, Input.BAD_MESSAGE): Rule(_WAITING, error=GIVEN_ERROR),
    (_WAITING, Input.AUTH_TIMEOUT): Rule(_CLOSED, error=_TOO_SLOW, close=(_POLICY, AUTH_TIMEOUT)),
    (_WAITING, Input.CLOSE): Rule(_CLOSED, error=GIVEN_ERROR, close=GIVEN_CLOSE),
    (_CHECKING, Input.AUTH): Rule(_CHECKING, error=_AUTH_SENT),
    (_CHECKING, Input.COMMAND): Rule(_CHECKING, error=_WAIT_FOR_AUTHED),
    (_CHECKING, Input.BAD_MESSAGE): Rule(_CHECKING, error=GIVEN_ERROR),
    (_CHECKING, Input.ACCEPT_AUTH): Rule(_AUTHED),
    (_CHECKING, Input.REJECT_AUTH): Rule(_CLOSED, error=_REFUSED, close=(_POLICY, AUTH_FAILED)),
    (_CHECKING, Input.AUTH_TIMEOUT): Rule(_CLOSED, error=_TOO_SLOW, close=(_POLICY, AUTH_TIMEOUT)),
    (_CHECKING, Input.CLOSE): Rule(_CLOSED, error=GIVEN_ERROR, close=GIVEN_CLOSE),
    (_AUTHED, Input.AUTH): Rule(_AUTHED, error=_ALREADY),
    (_AUTHED, Input.COMMAND): Rule(_AUTHED, deliver=True),
    (_AUTHED, Input.BAD_MESSAGE): Rule(_AUTHED, error=GIVEN_ERROR),
    (_AUTHED, Input.CLOSE): Rule(_CLOSED, error=GIVEN_ERROR, close=GIVEN_CLOSE),
}

_EARLY = "received before authed"
_BINARY_FRAME = "binary messages are not used"
_DONE = (int(CloseCode.NORMAL), "done")

CLIENT_RULES: Final[dict[tuple[RemoteState, ClientInput], Rule[RemoteState]]] = {
    (_CHECKING, ClientInput.AUTHED): Rule(_AUTHED, deliver=True),
    (_CHECKING, ClientInput.ERROR): Rule(_CLOSED, deliver=True, close=(CloseCode.NORMAL, "auth refused")),
    (_CHECKING, ClientInput.MESSAGE): Rule(_CHECKING, violation=_EARLY),
    (_CHECKING, ClientInput.BINARY): Rule(_CHECKING, violation=_BINARY_FRAME),
    (_CHECKING, ClientInput.SEND): Rule(_CHECKING),
    (_CHECKING, ClientInput.CLOSE): Rule(_CLOSED, close=_DONE),
    (_AUTHED, ClientInput.AUTHED): Rule(_AUTHED, violation="received twice"),
    (_AUTHED, ClientInput.ERROR): Rule(_AUTHED, deliver=True),
    (_AUTHED, ClientInput.MESSAGE): Rule(_AUTHED, deliver=True),
    (_AUTHED, ClientInput.BINARY): Rule(_AUTHED, violation=_BINARY_FRAME),
    (_AUTHED, ClientInput.SEND): Rule(_AUTHED),
    (_AUTHED, ClientInput.CLOSE): Rule(_CLOSED, close=_DONE),
}


# --- the TV's end of one connection ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AuthRequested:
    """The phone presented a credential: check it, then call accept_auth() or reject_auth()."""

    credential: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class CommandReceived:
    """An authenticated phone sent a command: carry it out, then call ok(command) or error(command, ...)."""

    command: Command


RemoteEvent: TypeAlias = AuthRequested | CommandReceived


class RemoteServerConnection(Connection[RemoteState, RemoteEvent]):
    """The TV's end of one remote-control websocket (its rules are SERVER_RULES, described at the top)."""

    def __init__(self, now: float, *, auth_timeout: float = 10.0) -> None:
        if not auth_timeout > 0:
            raise ValueError("auth_timeout must be greater than 0")
        super().__init__(RemoteState.AWAITING_AUTH, RemoteState.CLOSED)
        self.auth_timeout: Final = auth_timeout
        self.device_id: str | None = None
        self._opened_at = now

    def receive_text(self, text: str, now: float) -> None:
        """Take one received text frame; then read events_received() and data_to_send(). Never raises for input."""
        if self.closed:
            return
        try:
            msg = parse_phone_message(text)
        except RemoteProtocolError as exc:
            self._apply(Input.BAD_MESSAGE, error=Error(id=exc.id, code=exc.code, message=exc.message))
            return
        if isinstance(msg, Auth):
            self._apply(Input.AUTH, event=AuthRequested(msg.credential))
        else:
            self._apply(Input.COMMAND, event=CommandReceived(msg), command_id=msg.id)

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Take one received binary frame, which this protocol does not use (answered with bad_message)."""
        if self.closed:
            return
        self._apply(Input.BAD_MESSAGE, error=Error(code=BAD_MESSAGE, message="binary messages are not used"))

    def accept_auth(self, device_id: str, tv_name: str) -> None:
        """Accept the credential (state AUTHENTICATING only) and queue the authed message."""
        authed = Authed(device_id=device_id, tv_name=tv_name)
        self._apply(Input.ACCEPT_AUTH)
        self.device_id = device_id
        self._outgoing.append(encode(authed))

    def reject_auth(self) -> None:
        """Refuse the credential (state AUTHENTICATING only): queue auth_failed and close with 1008."""
        self._apply(Input.REJECT_AUTH)

    def ok(self, command: Command) -> None:
        """Queue the ok answering ``command`` (authenticated only)."""
        self.send(Ok(id=command.id))

    def error(self, command: Command, code: str, message: str) -> None:
        """Queue the error refusing ``command`` (authenticated only)."""
        self.send(Error(id=command.id, code=code, message=message))

    def send(self, msg: TvMessage) -> None:
        """Queue a message to an authenticated phone (state pushes, devices); never Authed (use accept_auth)."""
        if self._state is not RemoteState.AUTHENTICATED:
            raise ConnectionStateError(f"cannot send in state {self._state.name}")
        if isinstance(msg, Authed):
            raise ConnectionStateError("send authed with accept_auth()")
        self._outgoing.append(encode(msg))

    def close(self, code: int, reason: str, error: Error | None = None) -> None:
        """Close on the TV's own decision (device forgotten, shutting down), sending ``error`` first if given."""
        check_close(code, reason)
        if self.closed:
            return
        self._apply(Input.CLOSE, error=error, close=(code, reason))

    def check_timeouts(self, now: float) -> None:
        """Close the connection if it is not authenticated ``auth_timeout`` seconds after it opened."""
        if self._state in (RemoteState.AWAITING_AUTH, RemoteState.AUTHENTICATING) and now >= self.next_deadline():
            self._apply(Input.AUTH_TIMEOUT)

    def next_deadline(self) -> float:
        """Return when check_timeouts() next needs calling (infinity once authenticated or closed)."""
        if self._state in (RemoteState.AWAITING_AUTH, RemoteState.AUTHENTICATING):
            return self._opened_at + self.auth_timeout
        return math.inf

    def _apply(self, kind: Input, *, event: RemoteEvent | None = None, error: Error | None = None,
               command_id: str | None = None, close: tuple[int, str] | None = None) -> None:
        rule = self._rule(SERVER_RULES, kind)
        self._state = rule.next_state
        if rule.deliver and event is not None:
            self._events.append(event)
        answer = error if rule.error is GIVEN_ERROR else rule.error
        if isinstance(answer, Error):
            if command_id is not None and answer.id is None:
                answer = dataclasses.replace(answer, id=command_id)
            self._outgoing.append(encode(answer))
        if rule.close is not None:
            self._finish(*(close if rule.close is GIVEN_CLOSE and close is not None else rule.close))


# --- the phone's end of one connection ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """The TV's answer to one command sent on this connection: done when ``error`` is None."""

    command: Command
    error: Error | None = None
    devices: tuple[DeviceInfo, ...] | None = None
    sdp: str | None = dataclasses.field(default=None, repr=False)  # a phone_camera_offer's answer

    @property
    def ok(self) -> bool:
        """Return whether the TV carried the command out."""
        return self.error is None


ClientEvent: TypeAlias = CommandResult | Authed | State | Error | Devices | Ok | PhoneCameraAnswer | PhoneCameraStopped


class RemoteClientConnection(Connection[RemoteState, ClientEvent]):
    """The phone's end of one remote-control websocket (its rules are CLIENT_RULES, described at the top)."""

    def __init__(self, credential: str) -> None:
        super().__init__(RemoteState.AUTHENTICATING, RemoteState.CLOSED)
        self._outgoing.append(encode(Auth(credential=credential)))
        self._held: list[Command] = []
        self._pending: dict[str, Command] = {}
        self._devices: dict[str, tuple[DeviceInfo, ...]] = {}
        self._answers: dict[str, str] = {}
        self._counter = 0
        self.authed: Authed | None = None
        self.latest_state: State | None = None
        self.last_received: float | None = None

    @property
    def pending(self) -> Mapping[str, Command]:
        """Return the commands sent or waiting to be sent and not yet answered, by id."""
        return dict(self._pending)

    def send(self, command: Command) -> Command:
        """Queue a command, giving it a fresh id when it has none; return it as sent (read ``.id`` to match)."""
        if self.closed:
            raise ConnectionStateError("cannot send on a closed connection")
        if command.id is None:
            command = dataclasses.replace(command, id=self._fresh_id())
        assert command.id is not None
        if command.id in self._pending:
            raise ValueError(f"a command with id {command.id!r} is still pending")
        self._rule(CLIENT_RULES, ClientInput.SEND)
        self._pending[command.id] = command
        if self._state is RemoteState.AUTHENTICATED:
            self._outgoing.append(encode(command))
        else:
            self._held.append(command)
        return command

    def receive_text(self, text: str, now: float) -> None:
        """Take one received text frame; raise RemoteProtocolError if the TV broke the protocol (nothing changes)."""
        if self.closed:
            return
        self.last_received = now
        try:
            msg = parse_tv_message(text)
        except UnknownRemoteMessage:
            return
        kind = (ClientInput.AUTHED if isinstance(msg, Authed) else ClientInput.ERROR if isinstance(msg, Error)
                else ClientInput.MESSAGE)  # fmt: skip
        rule = self._rule(CLIENT_RULES, kind)
        if rule.violation is not None:
            raise RemoteProtocolError(BAD_MESSAGE, f"{msg.TYPE}: {rule.violation}")
        before, self._state = self._state, rule.next_state
        if before is RemoteState.AUTHENTICATING:
            self._settle_auth(msg)
        else:
            self._hand_out(msg)
        if rule.close is not None:
            self._finish(*rule.close)

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Take one received binary frame, which this protocol does not use: raise RemoteProtocolError."""
        if self.closed:
            return
        rule = self._rule(CLIENT_RULES, ClientInput.BINARY)
        raise RemoteProtocolError(BAD_MESSAGE, f"message: {rule.violation}")

    def close(self) -> None:
        """Stop (the socket closed, or the owner is done): every unanswered command ends with connection_closed,
        handed out by events_received()."""
        if self.closed:
            return
        rule = self._rule(CLIENT_RULES, ClientInput.CLOSE)
        self._outgoing = []
        self._held = []
        gone = Error(code=CONNECTION_CLOSED, message="the connection closed before the TV answered")
        self._events.extend(self._finish_command(command_id, gone) for command_id in list(self._pending))
        assert rule.close is not None
        self._finish(*rule.close)

    def _settle_auth(self, msg: TvMessage) -> None:
        self._events.append(msg)
        if isinstance(msg, Authed):
            self.authed = msg
            self._outgoing.extend(encode(command) for command in self._held)
        else:
            assert isinstance(msg, Error)
            self._outgoing = []
            self._events.extend(self._finish_command(command_id, msg) for command_id in list(self._pending))
        self._held = []

    def _hand_out(self, msg: TvMessage) -> None:
        if isinstance(msg, State):
            self.latest_state = msg
        elif isinstance(msg, Devices) and msg.id in self._pending:
            self._devices[msg.id] = msg.devices
            return
        elif isinstance(msg, PhoneCameraAnswer) and msg.id in self._pending:
            self._answers[msg.id] = msg.sdp
            return
        elif isinstance(msg, (Ok, Error)) and msg.id is not None and msg.id in self._pending:
            self._events.append(self._finish_command(msg.id, msg if isinstance(msg, Error) else None))
            return
        self._events.append(msg)

    def _finish_command(self, command_id: str, error: Error | None) -> CommandResult:
        command = self._pending.pop(command_id)
        devices = self._devices.pop(command_id, None)
        sdp = self._answers.pop(command_id, None)
        return CommandResult(command, error=error, devices=devices, sdp=sdp)

    def _fresh_id(self) -> str:
        while True:
            self._counter += 1
            candidate = str(self._counter)
            if candidate not in self._pending:
                return candidate
