"""Remote control (protocol version 1): the messages between a paired phone and the TV, and both ends' state machines.

A phone (``tvapp remote`` or the web Remote page) opens the websocket ``/v1/remote`` on the TV and sends its
device credential in the first message, never in the URL. Then it sends commands, each with an optional ``id``
of its own; the TV answers every command with ``ok`` or ``error`` carrying the same ``id`` (``list_devices`` gets a
``devices`` message just before its ``ok``, ``status`` a ``state``), and pushes its whole ``state`` to every
authenticated remote whenever it changes. Commands set values, never toggle them, so resending one is harmless.

Every message is a JSON object with ``"type"`` and ``"v": 1``; unknown extra fields are ignored. What a phone
gets wrong is answered with an ``error`` whose code says what kind of mistake it was:

    too_big                 the text is over MAX_MESSAGE_BYTES (16 KiB) of UTF-8
    bad_message             not JSON, not an object, a missing field, a field of the wrong JSON type
    unsupported_version     "v" is not PROTOCOL_VERSION
    unknown_command         a "type" the TV does not take from a phone
    invalid_value           a value of the right type outside its range or set (volume 2, layout "mosaic", an invite
                            that cannot be a code, an identity with a space in it, a seek without a position)
    not_authenticated       a command before the TV accepted the credential
    already_authenticated   an auth after the first one
    auth_failed             the TV refused the credential: the connection closes
    auth_timeout            no accepted auth in the time the TV allows: the connection closes

TV side rules (``SERVER_RULES`` below is the table the code runs; a pair missing from it is a caller bug):

    AWAITING_AUTH   --auth-->               AUTHENTICATING   AuthRequested: the owner checks the credential
    AWAITING_AUTH   --command-->            AWAITING_AUTH    error not_authenticated, stays open
    AUTHENTICATING  --auth-->               AUTHENTICATING   error already_authenticated, stays open
    AUTHENTICATING  --command-->            AUTHENTICATING   error not_authenticated, stays open
    AUTHENTICATING  --authenticated()-->    AUTHENTICATED    the authed text is returned to send
    AUTHENTICATING  --auth_failed()-->      CLOSED           the auth_failed error is returned to send, then close
    AWAITING_AUTH/AUTHENTICATING --auth_timed_out()--> CLOSED  the auth_timeout error is returned to send, then close
    AUTHENTICATED   --command-->            AUTHENTICATED    CommandReceived: the owner acts, then ok() or error()
    AUTHENTICATED   --auth-->               AUTHENTICATED    error already_authenticated, stays open
    any open        --bad message-->        same state       ProtocolViolation with its code, stays open
    any open        --close()-->            CLOSED           the given error is returned to send, then close
    CLOSED          --anything received-->  CLOSED           ignored

A refused or timed-out auth closes with 1008 (policy violation); close() with the code the owner gives (1001 unless
told). Time never enters here: the adapter owns the clock and calls ``auth_timed_out()`` when its deadline passes.
"""

import dataclasses
import enum
import json
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Final, Literal, Self, TypeAlias, get_args

from tvapp.core.claims import IDENTITY_RE, ROOM_NAME_RE
from tvapp.core.codes import normalize_invite_code
from tvapp.core.playback import MAX_CONTENT_CHARS, MAX_POSITION, MAX_TITLE_CHARS
from tvapp.protocol.messages import BAD_MESSAGE as BAD_MESSAGE
from tvapp.protocol.messages import UNSUPPORTED_VERSION as UNSUPPORTED_VERSION
from tvapp.protocol.messages import (
    ProtocolError,
    _Array,
    _Bool,
    _Record,
    _Rule,
    _Text,
)
from tvapp.protocol.messages import decode as decode_json
from tvapp.protocol.signaling import CloseCode as CloseCode
from tvapp.protocol.signaling import ConnectionStateError as ConnectionStateError

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 16_384
MAX_COMMAND_ID_CHARS: Final = 64
MAX_CREDENTIAL_CHARS: Final = 512
MAX_ID_CHARS: Final = 128
MAX_NAME_CHARS: Final = 128
MAX_TEXT_CHARS: Final = 1_024

TOO_BIG: Final = "too_big"
UNKNOWN_COMMAND: Final = "unknown_command"
INVALID_VALUE: Final = "invalid_value"
NOT_AUTHENTICATED: Final = "not_authenticated"
ALREADY_AUTHENTICATED: Final = "already_authenticated"
AUTH_FAILED: Final = "auth_failed"
AUTH_TIMEOUT: Final = "auth_timeout"
CONNECTION_CLOSED: Final = "connection_closed"

LayoutName: TypeAlias = Literal["grid", "speaker", "watch", "watch_full"]
TvStatus: TypeAlias = Literal["idle", "joining", "in_room", "error"]
PlaybackActionName: TypeAlias = Literal["play", "pause", "seek", "load", "stop"]
LAYOUTS: Final[tuple[str, ...]] = get_args(LayoutName)
TV_STATUSES: Final[tuple[str, ...]] = get_args(TvStatus)
PLAYBACK_ACTIONS: Final[tuple[str, ...]] = get_args(PlaybackActionName)
# A media URL ("https://...", "rtsp://...") or an absolute path; no control characters anywhere.
CONTENT_RE: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*://|/)[^\x00-\x1f\x7f]*")


class RemoteProtocolError(ProtocolError):
    """A remote-control message that breaks the protocol; ``id`` is the command's id when it could be read."""

    def __init__(self, code: str, message: str, id: str | None = None) -> None:
        super().__init__(code, message)
        self.id = id


class UnknownRemoteMessage(RemoteProtocolError):
    """A well-formed message of a type this side does not take (a newer peer may send these)."""


# --- field rules beyond messages.py's: a wrong JSON type is bad_message, a wrong value is invalid_value ----------


def _invalid(path: str, problem: str) -> ProtocolError:
    return ProtocolError(INVALID_VALUE, f"{path}: {problem}")


def _bad(path: str, problem: str) -> ProtocolError:
    return ProtocolError(BAD_MESSAGE, f"{path}: {problem}")


@dataclasses.dataclass(frozen=True)
class _Range(_Rule):
    """A finite number from `low` to `high`; `problem` is what an out-of-range value is told."""

    low: float
    high: float = math.inf
    nullable: bool = False
    problem: str = ""

    def decode(self, value: object, path: str) -> object:
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(path, "expected a number" + (" or null" if self.nullable else ""))
        problem = self.problem or f"must be between {self.low:g} and {self.high:g}"
        try:
            number = float(value)
        except OverflowError:
            raise _invalid(path, problem) from None
        if not (math.isfinite(number) and self.low <= number <= self.high):
            raise _invalid(path, problem)
        return number


@dataclasses.dataclass(frozen=True)
class _OneOf(_Rule):
    values: tuple[str, ...]

    def decode(self, value: object, path: str) -> object:
        if not isinstance(value, str):
            raise _bad(path, "expected a string")
        if value not in self.values:
            raise _invalid(path, "must be one of " + ", ".join(self.values))
        return value


@dataclasses.dataclass(frozen=True)
class _Matching(_Rule):
    pattern: re.Pattern[str]
    what: str
    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise _bad(path, "expected a string" + (" or null" if self.nullable else ""))
        if self.pattern.fullmatch(value) is None:
            raise _invalid(path, f"is not {self.what}")
        return value


@dataclasses.dataclass(frozen=True)
class _InviteCode(_Rule):
    def decode(self, value: object, path: str) -> object:
        if not isinstance(value, str):
            raise _bad(path, "expected a string")
        if normalize_invite_code(value) is None:
            raise _invalid(path, "is not an invite code")
        return value


@dataclasses.dataclass(frozen=True)
class _OptionalObject(_Rule):
    cls: "type[_Record]"

    def decode(self, value: object, path: str) -> object:
        if value is None:
            return None
        return self.cls.decode_at(value, path)

    def check(self, value: object, path: str) -> None:
        if value is not None and not isinstance(value, self.cls):
            raise _bad(path, f"expected a {self.cls.__name__} or None")

    def encode(self, value: Any) -> object:
        return None if value is None else value.to_json()


_COMMAND_ID_RULE: Final = _Text(MAX_COMMAND_ID_CHARS, nonempty=True, nullable=True)
CommandId = Annotated[str | None, _COMMAND_ID_RULE]
Credential = Annotated[str, _Text(MAX_CREDENTIAL_CHARS, nonempty=True)]
Id = Annotated[str, _Text(MAX_ID_CHARS, nonempty=True, too_long_code=INVALID_VALUE)]
OptionalId = Annotated[str | None, _Text(MAX_ID_CHARS, nullable=True, too_long_code=INVALID_VALUE)]
Name = Annotated[str, _Text(MAX_NAME_CHARS)]
OptionalName = Annotated[str | None, _Text(MAX_NAME_CHARS, nullable=True)]
Text = Annotated[str, _Text(MAX_TEXT_CHARS)]
Flag = Annotated[bool, _Bool()]
Volume = Annotated[float, _Range(0.0, 1.0)]
Layout = Annotated[LayoutName, _OneOf(LAYOUTS)]
Status = Annotated[TvStatus, _OneOf(TV_STATUSES)]
Identity = Annotated[str, _Matching(IDENTITY_RE, "a participant identity")]
RoomName = Annotated[str | None, _Matching(ROOM_NAME_RE, "a room name", nullable=True)]
InviteCode = Annotated[str, _InviteCode()]
_SINCE_1970 = "must be a time in seconds since 1970"
Timestamp = Annotated[float, _Range(0.0, problem=_SINCE_1970)]
OptionalTimestamp = Annotated[float | None, _Range(0.0, nullable=True, problem=_SINCE_1970)]
PlaybackAction = Annotated[PlaybackActionName, _OneOf(PLAYBACK_ACTIONS)]
_IN_CONTENT = f"must be between 0 and {MAX_POSITION:g} seconds"
Position = Annotated[float, _Range(0.0, MAX_POSITION, problem=_IN_CONTENT)]
OptionalPosition = Annotated[float | None, _Range(0.0, MAX_POSITION, nullable=True, problem=_IN_CONTENT)]
Content = Annotated[str, _Text(MAX_CONTENT_CHARS, too_long_code=INVALID_VALUE)]
OptionalContent = Annotated[str | None, _Text(MAX_CONTENT_CHARS, nullable=True, too_long_code=INVALID_VALUE)]
Title = Annotated[str, _Text(MAX_TITLE_CHARS, too_long_code=INVALID_VALUE)]


# --- shared value types ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceInfo(_Record):
    """A paired phone, as the remotes list it; times are seconds since 1970."""

    device_id: Id
    name: Name = ""
    paired_at: Timestamp
    last_seen: OptionalTimestamp = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantState(_Record):
    """One participant of the TV's room, as the remote shows it."""

    sid: Id
    identity: Id
    name: Name = ""
    speaking: Flag = False
    mic_muted: Flag = False
    camera_off: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlaybackInfo(_Record):
    """The shared content of the TV's room, as the remote shows it.

    ``position`` is seconds into the content when the state was made; while ``playing`` and not ``waiting`` (for a
    stalled screen) it moves on at normal speed from there. ``content`` is "" when nothing is loaded.
    """

    content: Content = ""
    title: Title = ""
    playing: Flag = False
    position: Position = 0.0
    duration: OptionalPosition = None
    waiting: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class ErrorInfo(_Record):
    """What the TV's error screen says."""

    title: Text
    message: Text = ""


class _Message(_Record):
    TYPE: ClassVar[str]


# --- phone -> TV -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Auth(_Message):
    """Present the phone's device credential; the first message on every connection, and only once."""

    TYPE: ClassVar[str] = "auth"
    credential: Credential = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Command(_Message):
    """A phone's command: the TV answers it with ok or error carrying the same optional client `id`."""

    id: CommandId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatusCommand(_Command):
    """Ask for the TV's state now (sent as a state message, then ok)."""

    TYPE: ClassVar[str] = "status"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CreateRoom(_Command):
    """Create a room with the TV as its host (a generated name when none is given) and show its invite code."""

    TYPE: ClassVar[str] = "create_room"
    name: RoomName = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class JoinRoom(_Command):
    """Join the room an invite code leads to."""

    TYPE: ClassVar[str] = "join"
    invite: InviteCode


@dataclasses.dataclass(frozen=True, kw_only=True)
class LeaveRoom(_Command):
    """Leave the room, if the TV is in one."""

    TYPE: ClassVar[str] = "leave"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetVolume(_Command):
    """Set the TV's output volume, from 0 (silent) to 1 (full)."""

    TYPE: ClassVar[str] = "set_volume"
    volume: Volume


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetLayout(_Command):
    """Set how the tiles are arranged."""

    TYPE: ClassVar[str] = "set_layout"
    layout: Layout


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShowInvite(_Command):
    """Show or hide the invite code on the TV screen."""

    TYPE: ClassVar[str] = "show_invite"
    visible: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class RemoveParticipant(_Command):
    """Remove a participant from the room (host only); the invite will not bring them back this session."""

    TYPE: ClassVar[str] = "remove_participant"
    identity: Identity


@dataclasses.dataclass(frozen=True, kw_only=True)
class MuteParticipant(_Command):
    """Mute a participant's audio on the server (host only)."""

    TYPE: ClassVar[str] = "mute_participant"
    identity: Identity


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetMic(_Command):
    """Turn the TV's own microphone on or off."""

    TYPE: ClassVar[str] = "set_mic"
    enabled: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetCamera(_Command):
    """Turn the TV's own camera on or off."""

    TYPE: ClassVar[str] = "set_camera"
    enabled: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class Playback(_Command):
    """Drive the room's shared content: load (``content``, from ``position`` or 0, optional ``title``), play, pause,
    seek (to ``position``) or stop. The TV refuses with not_host when the room lets only its host do that."""

    TYPE: ClassVar[str] = "playback"
    action: PlaybackAction
    position: OptionalPosition = None
    content: OptionalContent = None
    title: Title = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.action == "load":
            if not self.content:
                raise _invalid("playback.content", "required for load")
            if CONTENT_RE.fullmatch(self.content) is None:
                raise _invalid("playback.content", "is not a media URL or an absolute path")
            return
        if self.action == "seek" and self.position is None:
            raise _invalid("playback.position", "required for seek")
        if self.action != "seek" and self.position is not None:
            raise _invalid("playback.position", f"not taken by {self.action}")
        if self.content is not None or self.title:
            raise _invalid("playback.content" if self.content is not None else "playback.title",
                           "only taken by load")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ListDevices(_Command):
    """Ask for the paired phones (sent as a devices message with the same id, then ok)."""

    TYPE: ClassVar[str] = "list_devices"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ForgetDevice(_Command):
    """Revoke a paired phone's credential; its open remote connections are closed."""

    TYPE: ClassVar[str] = "forget_device"
    device_id: Id


# --- TV -> phone -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Authed(_Message):
    """Tell the phone its credential is accepted, which paired device it is, and the TV's name."""

    TYPE: ClassVar[str] = "authed"
    device_id: Id
    tv_name: Name


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ok(_Message):
    """Tell the phone the command with this id is done."""

    TYPE: ClassVar[str] = "ok"
    id: CommandId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Error(_Message):
    """Report a refused command (``id`` set when known) or a broken message; ``code`` is stable, ``message`` human."""

    TYPE: ClassVar[str] = "error"
    id: CommandId = None
    code: Id
    message: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Devices(_Message):
    """List the paired phones; ``id`` is the list_devices command's."""

    TYPE: ClassVar[str] = "devices"
    id: CommandId = None
    devices: Annotated[tuple[DeviceInfo, ...], _Array(DeviceInfo)] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class State(_Message):
    """The TV's whole state, pushed to every remote on each change; ``active_speaker`` is a participant sid."""

    TYPE: ClassVar[str] = "state"
    tv_name: Name
    status: Status
    room: OptionalName = None
    invite_code: OptionalName = None
    invite_visible: Flag = False
    participants: Annotated[tuple[ParticipantState, ...], _Array(ParticipantState)] = ()
    active_speaker: OptionalId = None
    volume: Volume
    layout: Layout
    pairing_open: Flag = False
    error: Annotated[ErrorInfo | None, _OptionalObject(ErrorInfo)] = None
    playback: Annotated[PlaybackInfo | None, _OptionalObject(PlaybackInfo)] = None


Command: TypeAlias = (
    StatusCommand | CreateRoom | JoinRoom | LeaveRoom | SetVolume | SetLayout | ShowInvite | RemoveParticipant
    | MuteParticipant | SetMic | SetCamera | Playback | ListDevices | ForgetDevice
)  # fmt: skip
PhoneMessage: TypeAlias = Auth | Command
TvMessage: TypeAlias = Authed | Ok | Error | Devices | State

_COMMAND_CLASSES: tuple[type[Command], ...] = (
    StatusCommand, CreateRoom, JoinRoom, LeaveRoom, SetVolume, SetLayout, ShowInvite, RemoveParticipant,
    MuteParticipant, SetMic, SetCamera, Playback, ListDevices, ForgetDevice,
)  # fmt: skip
_TV_CLASSES: tuple[type[TvMessage], ...] = (Authed, Ok, Error, Devices, State)
COMMAND_TYPES: Final[Mapping[str, type[Command]]] = {cls.TYPE: cls for cls in _COMMAND_CLASSES}
PHONE_MESSAGE_TYPES: Final[Mapping[str, type[PhoneMessage]]] = {Auth.TYPE: Auth, **COMMAND_TYPES}
TV_MESSAGE_TYPES: Final[Mapping[str, type[TvMessage]]] = {cls.TYPE: cls for cls in _TV_CLASSES}


# --- codec -----------------------------------------------------------------------------------------------------


def _decode(text: str, max_bytes: int | None) -> object:
    if max_bytes is not None and (
        len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise RemoteProtocolError(TOO_BIG, f"message: longer than {max_bytes} bytes")
    try:
        return decode_json(text, max_bytes=None)
    except ProtocolError as exc:
        raise RemoteProtocolError(exc.code, exc.message) from None


def _readable_id(obj: dict[str, Any]) -> str | None:
    """Return the message's "id" if it is a valid command id, so that an error about the message can carry it."""
    try:
        value = _COMMAND_ID_RULE.decode(obj.get("id"), "message.id")
    except ProtocolError:
        return None
    return value if isinstance(value, str) else None


def _parse(text: str, registry: Mapping[str, type[Any]], max_bytes: int | None, unknown_code: str) -> Any:
    obj = _decode(text, max_bytes)
    if not isinstance(obj, dict):
        raise RemoteProtocolError(BAD_MESSAGE, "message: expected a JSON object")
    cid = _readable_id(obj)
    version = obj.get("v")
    if version is None:
        raise RemoteProtocolError(BAD_MESSAGE, "message.v: required", cid)
    if isinstance(version, bool) or not isinstance(version, int):
        raise RemoteProtocolError(BAD_MESSAGE, "message.v: expected an integer", cid)
    if version != PROTOCOL_VERSION:
        raise RemoteProtocolError(UNSUPPORTED_VERSION, f"message.v: only version {PROTOCOL_VERSION} is supported", cid)
    kind = obj.get("type")
    if kind is None:
        raise RemoteProtocolError(BAD_MESSAGE, "message.type: required", cid)
    if not isinstance(kind, str):
        raise RemoteProtocolError(BAD_MESSAGE, "message.type: expected a string", cid)
    cls = registry.get(kind)
    if cls is None:
        shown = f" {kind!r}" if len(kind) <= 32 and kind.isascii() and kind.isidentifier() else ""
        raise UnknownRemoteMessage(unknown_code, f"message.type: unknown type{shown}", cid)
    try:
        return cls.from_json(obj)
    except ProtocolError as exc:
        raise RemoteProtocolError(exc.code, exc.message, cid) from None


def parse_phone_message(text: str) -> PhoneMessage:
    """Return the phone message in one received text; raise RemoteProtocolError with the code to answer."""
    msg: PhoneMessage = _parse(text, PHONE_MESSAGE_TYPES, MAX_MESSAGE_BYTES, UNKNOWN_COMMAND)
    return msg


def parse_tv_message(text: str) -> TvMessage:
    """Return the TV message in one received text; raise RemoteProtocolError (UnknownRemoteMessage for new types)."""
    msg: TvMessage = _parse(text, TV_MESSAGE_TYPES, None, BAD_MESSAGE)
    return msg


def encode(msg: PhoneMessage | TvMessage) -> str:
    """Return the compact JSON text of a message, with "type" and "v" added."""
    obj = {"type": msg.TYPE, "v": PROTOCOL_VERSION, **msg.to_json()}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --- the TV's end of one connection ------------------------------------------------------------------------------


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


@dataclasses.dataclass(frozen=True)
class Rule:
    """What one input does in one state: the next state, whether the owner hears of it, what error goes back."""

    next_state: RemoteState
    deliver: bool = False
    error: Error | None = None
    close: CloseCode | None = None


GIVEN_ERROR: Final = Error(code="given", message="the error that comes with the input")
"""Placeholder in the table for an error that comes with the input (a parse error, the owner's reason)."""

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
_GIVEN_CLOSE: Final = CloseCode.NORMAL
"""Placeholder in the table for the close code the owner gives to close()."""

SERVER_RULES: Final[dict[tuple[RemoteState, Input], Rule]] = {
    (_WAITING, Input.AUTH): Rule(_CHECKING, deliver=True),
    (_WAITING, Input.COMMAND): Rule(_WAITING, error=_AUTH_FIRST),
    (_WAITING, Input.BAD_MESSAGE): Rule(_WAITING, error=GIVEN_ERROR),
    (_WAITING, Input.AUTH_TIMEOUT): Rule(_CLOSED, error=_TOO_SLOW, close=_POLICY),
    (_WAITING, Input.CLOSE): Rule(_CLOSED, error=GIVEN_ERROR, close=_GIVEN_CLOSE),
    (_CHECKING, Input.AUTH): Rule(_CHECKING, error=_AUTH_SENT),
    (_CHECKING, Input.COMMAND): Rule(_CHECKING, error=_WAIT_FOR_AUTHED),
    (_CHECKING, Input.BAD_MESSAGE): Rule(_CHECKING, error=GIVEN_ERROR),
    (_CHECKING, Input.ACCEPT_AUTH): Rule(_AUTHED),
    (_CHECKING, Input.REJECT_AUTH): Rule(_CLOSED, error=_REFUSED, close=_POLICY),
    (_CHECKING, Input.AUTH_TIMEOUT): Rule(_CLOSED, error=_TOO_SLOW, close=_POLICY),
    (_CHECKING, Input.CLOSE): Rule(_CLOSED, error=GIVEN_ERROR, close=_GIVEN_CLOSE),
    (_AUTHED, Input.AUTH): Rule(_AUTHED, error=_ALREADY),
    (_AUTHED, Input.COMMAND): Rule(_AUTHED, deliver=True),
    (_AUTHED, Input.BAD_MESSAGE): Rule(_AUTHED, error=GIVEN_ERROR),
    (_AUTHED, Input.CLOSE): Rule(_CLOSED, error=GIVEN_ERROR, close=_GIVEN_CLOSE),
}


@dataclasses.dataclass(frozen=True)
class AuthRequested:
    """The phone presented a credential: check it, then call authenticated() or auth_failed()."""

    credential: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class CommandReceived:
    """An authenticated phone sent a command: carry it out, then send ok(command) or error(command, ...)."""

    command: Command


@dataclasses.dataclass(frozen=True)
class ProtocolViolation:
    """The phone broke the protocol: send ``text``; close the socket after it if ``close``."""

    error: Error
    close: bool

    @property
    def text(self) -> str:
        """Return the error's wire text."""
        return encode(self.error)


RemoteEvent: TypeAlias = AuthRequested | CommandReceived | ProtocolViolation


class RemoteServerConnection:
    """The TV's end of one remote-control websocket.

    The adapter passes every received text to receive_text() and acts on the events it returns; every other
    method returns the text to send. Once ``closed`` is true the adapter sends the text it was given last and
    closes the socket with ``close_code``.
    """

    def __init__(self) -> None:
        self._state = RemoteState.AWAITING_AUTH
        self.close_code: int | None = None
        self.device_id: str | None = None

    @property
    def state(self) -> RemoteState:
        """Return the connection's state."""
        return self._state

    @property
    def closed(self) -> bool:
        """Return whether the connection is over (the adapter closes the socket)."""
        return self._state is RemoteState.CLOSED

    def receive_text(self, text: str) -> list[RemoteEvent]:
        """Take one received text frame and return what the owner must act on; never raises for bad input."""
        if self.closed:
            return []
        try:
            msg = parse_phone_message(text)
        except RemoteProtocolError as exc:
            return self._apply(Input.BAD_MESSAGE, error=Error(id=exc.id, code=exc.code, message=exc.message))
        if isinstance(msg, Auth):
            return self._apply(Input.AUTH, event=AuthRequested(msg.credential))
        return self._apply(Input.COMMAND, event=CommandReceived(msg), command_id=msg.id)

    def receive_bytes(self, data: bytes) -> list[RemoteEvent]:
        """Take one received binary frame, which this protocol does not use."""
        if self.closed:
            return []
        return self._apply(Input.BAD_MESSAGE, error=Error(code=BAD_MESSAGE, message="binary messages are not used"))

    def authenticated(self, device_id: str, tv_name: str) -> str:
        """Accept the credential (state AUTHENTICATING only) and return the authed text to send."""
        text = encode(Authed(device_id=device_id, tv_name=tv_name))
        self._apply(Input.ACCEPT_AUTH)
        self.device_id = device_id
        return text

    def auth_failed(self) -> str:
        """Refuse the credential (state AUTHENTICATING only): return the error text to send, then close."""
        return self._error_text(self._apply(Input.REJECT_AUTH))

    def auth_timed_out(self) -> str:
        """End a connection not authenticated in time (before AUTHENTICATED only): return the error text, then close."""
        return self._error_text(self._apply(Input.AUTH_TIMEOUT))

    def close(self, code: str, message: str, close_code: int = CloseCode.GOING_AWAY) -> str:
        """Close on the TV's own decision (device forgotten, shutting down): return the error text to send first."""
        if self.closed:
            return ""
        if not 1000 <= close_code <= 4999:
            raise ValueError("a close code is between 1000 and 4999")
        error = Error(code=code, message=message)
        text = self._error_text(self._apply(Input.CLOSE, error=error))
        self.close_code = close_code
        return text

    def ok(self, command: Command) -> str:
        """Return the ok text answering ``command`` (authenticated only)."""
        return self.send(Ok(id=command.id))

    def error(self, command: Command, code: str, message: str) -> str:
        """Return the error text refusing ``command`` (authenticated only)."""
        return self.send(Error(id=command.id, code=code, message=message))

    def send(self, msg: TvMessage) -> str:
        """Return the text of a message to an authenticated phone (state pushes, devices); never Authed."""
        if self._state is not RemoteState.AUTHENTICATED:
            raise ConnectionStateError(f"cannot send in state {self._state.name}")
        if isinstance(msg, Authed):
            raise ConnectionStateError("send authed with authenticated()")
        return encode(msg)

    def _apply(
        self,
        kind: Input,
        *,
        event: AuthRequested | CommandReceived | None = None,
        error: Error | None = None,
        command_id: str | None = None,
    ) -> list[RemoteEvent]:
        rule = SERVER_RULES.get((self._state, kind))
        if rule is None:
            raise ConnectionStateError(f"{kind.value} is not allowed in state {self._state.name}")
        self._state = rule.next_state
        if rule.close is not None:
            self.close_code = int(rule.close)
        if rule.deliver and event is not None:
            return [event]
        answer = error if rule.error is GIVEN_ERROR else rule.error
        if answer is None:
            return []
        if command_id is not None and answer.id is None:
            answer = dataclasses.replace(answer, id=command_id)
        return [ProtocolViolation(answer, close=rule.close is not None)]

    @staticmethod
    def _error_text(events: list[RemoteEvent]) -> str:
        texts = [event.text for event in events if isinstance(event, ProtocolViolation)]
        return texts[0] if texts else ""


# --- the phone's end of one connection ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """The TV's answer to one command sent on this connection: done when ``error`` is None."""

    command: Command
    error: Error | None = None
    devices: tuple[DeviceInfo, ...] | None = None

    @property
    def ok(self) -> bool:
        """Return whether the TV carried the command out."""
        return self.error is None


ClientEvent: TypeAlias = CommandResult | Authed | State | Error | Devices | Ok


class RemoteClientConnection:
    """The phone's end of one remote-control websocket.

    Rules: the auth is queued at construction. AUTHENTICATING --authed--> AUTHENTICATED; AUTHENTICATING --error-->
    CLOSED (the credential was refused, or the TV gave up), and every command waiting to go out ends with that
    error. Commands sent before authed wait and go out right after it. Once authenticated, each ok or error with a
    pending command's id ends it as a CommandResult (a devices message with its id is kept for the result); state
    pushes, and replies that match no pending command, are handed out as they are. A message of an unknown type
    is ignored (a newer TV); a malformed one raises RemoteProtocolError and changes nothing. CLOSED ignores
    everything received; closing the socket is the adapter's business.
    """

    def __init__(self, credential: str) -> None:
        self._state = RemoteState.AUTHENTICATING
        self._outgoing: list[str] = [encode(Auth(credential=credential))]
        self._held: list[Command] = []
        self._pending: dict[str, Command] = {}
        self._devices: dict[str, tuple[DeviceInfo, ...]] = {}
        self._counter = 0
        self.authed: Authed | None = None
        self.latest_state: State | None = None

    @property
    def state(self) -> RemoteState:
        """Return the connection's state."""
        return self._state

    @property
    def closed(self) -> bool:
        """Return whether the TV ended the connection (or the owner called close())."""
        return self._state is RemoteState.CLOSED

    @property
    def pending(self) -> Mapping[str, Command]:
        """Return the commands sent or waiting to be sent and not yet answered, by id."""
        return dict(self._pending)

    def send(self, command: Command) -> Command:
        """Queue a command, giving it a fresh id when it has none; return it as sent (read ``.id`` to match)."""
        if self._state is RemoteState.CLOSED:
            raise ConnectionStateError("cannot send on a closed connection")
        if command.id is None:
            command = dataclasses.replace(command, id=self._fresh_id())
        assert command.id is not None
        if command.id in self._pending:
            raise ValueError(f"a command with id {command.id!r} is still pending")
        self._pending[command.id] = command
        if self._state is RemoteState.AUTHENTICATED:
            self._outgoing.append(encode(command))
        else:
            self._held.append(command)
        return command

    def receive_text(self, text: str) -> list[ClientEvent]:
        """Take one received text frame; raise RemoteProtocolError if the TV broke the protocol."""
        if self._state is RemoteState.CLOSED:
            return []
        try:
            msg = parse_tv_message(text)
        except UnknownRemoteMessage:
            return []
        if self._state is RemoteState.AUTHENTICATING:
            return self._before_authed(msg)
        if isinstance(msg, Authed):
            raise RemoteProtocolError(BAD_MESSAGE, "authed: received twice")
        if isinstance(msg, State):
            self.latest_state = msg
            return [msg]
        if isinstance(msg, Devices) and msg.id in self._pending:
            self._devices[msg.id] = msg.devices
            return []
        if isinstance(msg, (Ok, Error)) and msg.id is not None and msg.id in self._pending:
            return [self._finish(msg.id, msg if isinstance(msg, Error) else None)]
        return [msg]

    def close(self) -> list[CommandResult]:
        """Stop (the socket closed, or the owner is done): end every unanswered command with connection_closed."""
        self._state = RemoteState.CLOSED
        self._outgoing = []
        self._held = []
        gone = Error(code=CONNECTION_CLOSED, message="the connection closed before the TV answered")
        return [self._finish(command_id, gone) for command_id in list(self._pending)]

    def data_to_send(self) -> list[str]:
        """Return and forget the texts to send, in order."""
        data, self._outgoing = self._outgoing, []
        return data

    def _before_authed(self, msg: TvMessage) -> list[ClientEvent]:
        if isinstance(msg, Authed):
            self._state = RemoteState.AUTHENTICATED
            self.authed = msg
            self._outgoing.extend(encode(command) for command in self._held)
            self._held = []
            return [msg]
        if isinstance(msg, Error):
            self._state = RemoteState.CLOSED
            self._outgoing = []
            ended: list[ClientEvent] = [msg]
            ended.extend(self._finish(command_id, msg) for command_id in list(self._pending))
            self._held = []
            return ended
        raise RemoteProtocolError(BAD_MESSAGE, f"{msg.TYPE}: received before authed")

    def _finish(self, command_id: str, error: Error | None) -> CommandResult:
        command = self._pending.pop(command_id)
        devices = self._devices.pop(command_id, None)
        return CommandResult(command, error=error, devices=devices)

    def _fresh_id(self) -> str:
        while True:
            self._counter += 1
            candidate = str(self._counter)
            if candidate not in self._pending:
                return candidate
