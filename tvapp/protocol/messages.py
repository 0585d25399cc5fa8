"""Signaling messages (protocol version 1): frozen dataclasses shared by the server and the SDK, and their JSON codec.

Every message on the wire is a JSON object with ``"type"`` and ``"v": 1``; field names are snake_case. Unknown extra
fields are ignored so that newer peers can add fields; a missing required field, a wrong JSON type or an
out-of-range value is a :class:`ProtocolError` whose message names the field and never repeats the value.

Each field's rule is written once, in its annotation (``sid: Id``), and used three ways: to read JSON, to write
JSON, and to check a message built in Python, so that what one side sends the other side accepts.
"""

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, Callable, ClassVar, Final, Literal, Self, TypeAlias, get_args

from tvapp.core.playback import ACTIONS, CONTROLS, MAX_CONTENT_CHARS, MAX_TITLE_CHARS, ON_STALL, PlaybackState
from tvapp.core.playback import Action as PlaybackAction
from tvapp.core.playback import Control as PlaybackControl
from tvapp.core.playback import OnStall as PlaybackOnStall

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 65_536
MAX_TOKEN_BYTES: Final = 8_192
MAX_SDP_BYTES: Final = 32_768
MAX_CANDIDATE_BYTES: Final = 2_048
MAX_ID_CHARS: Final = 128
MAX_TEXT_CHARS: Final = 1_024
MAX_PARTICIPANTS_LIMIT: Final = 1_000
MAX_MLINE_INDEX: Final = 65_535
MAX_DATA_BYTES: Final = 16_384
MAX_DATA_RECIPIENTS: Final = 100

BAD_MESSAGE: Final = "bad_message"
UNSUPPORTED_VERSION: Final = "unsupported_version"
MESSAGE_TOO_BIG: Final = "message_too_big"
DATA_TOO_BIG: Final = "data_too_big"

TrackKind: TypeAlias = Literal["audio", "video"]
TrackSource: TypeAlias = Literal["camera", "microphone", "screen", "screen_audio", "content", "unknown"]
TransceiverDirection: TypeAlias = Literal["publish", "subscribe"]
TRACK_KINDS: Final[tuple[str, ...]] = get_args(TrackKind)
TRANSCEIVER_DIRECTIONS: Final[tuple[str, ...]] = get_args(TransceiverDirection)
TRACK_SOURCES: Final[tuple[str, ...]] = get_args(TrackSource)


class ProtocolError(ValueError):
    """A message that breaks the protocol; ``code`` is what the peer is told, ``message`` says which field."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class UnknownMessageType(ProtocolError):
    """A well-formed message of a type this side does not know (a newer peer may send these)."""


def _bad(path: str, problem: str) -> ProtocolError:
    return ProtocolError(BAD_MESSAGE, f"{path}: {problem}")


# --- field rules -----------------------------------------------------------------------------------------------


class _Rule:
    """How one field is read from JSON, checked in Python and written to JSON."""

    def decode(self, value: object, path: str) -> object:
        """Return the Python value for a JSON value, or raise ProtocolError."""
        raise NotImplementedError

    def check(self, value: object, path: str) -> None:
        """Raise ProtocolError unless a Python value obeys the rule."""
        self.decode(value, path)

    def encode(self, value: Any) -> object:
        """Return the JSON value for a Python value."""
        return value


@dataclasses.dataclass(frozen=True)
class _Text(_Rule):
    max_len: int
    in_bytes: bool = False
    nonempty: bool = False
    nullable: bool = False
    too_long_code: str = BAD_MESSAGE

    def decode(self, value: object, path: str) -> object:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise _bad(path, "expected a string" + (" or null" if self.nullable else ""))
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad(path, "is not valid Unicode (a lone surrogate)") from None
        size = len(encoded) if self.in_bytes else len(value)
        if size > self.max_len:
            unit = "bytes" if self.in_bytes else "characters"
            raise ProtocolError(self.too_long_code, f"{path}: longer than {self.max_len} {unit}")
        if self.nonempty and not value:
            raise _bad(path, "must not be empty")
        return value


@dataclasses.dataclass(frozen=True)
class _Choice(_Rule):
    values: tuple[str, ...]

    def decode(self, value: object, path: str) -> object:
        if not isinstance(value, str) or value not in self.values:
            raise _bad(path, "must be one of " + ", ".join(self.values))
        return value


@dataclasses.dataclass(frozen=True)
class _Bool(_Rule):
    def decode(self, value: object, path: str) -> object:
        if not isinstance(value, bool):
            raise _bad(path, "expected true or false")
        return value


@dataclasses.dataclass(frozen=True)
class _Number(_Rule):
    positive: bool = False
    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(path, "expected a number" + (" or null" if self.nullable else ""))
        try:
            number = float(value)
        except OverflowError:
            raise _bad(path, "out of range") from None
        if not math.isfinite(number):
            raise _bad(path, "must be finite")
        if self.positive and number <= 0:
            raise _bad(path, "must be greater than 0")
        return number


@dataclasses.dataclass(frozen=True)
class _Integer(_Rule):
    low: int
    high: int
    nullable: bool = False

    def decode(self, value: object, path: str) -> object:
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(path, "expected an integer" + (" or null" if self.nullable else ""))
        if not self.low <= value <= self.high:
            raise _bad(path, f"must be between {self.low} and {self.high}")
        return value


@dataclasses.dataclass(frozen=True)
class _Object(_Rule):
    cls: "type[_Record]"

    def decode(self, value: object, path: str) -> object:
        return self.cls.decode_at(value, path)

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, self.cls):
            raise _bad(path, f"expected a {self.cls.__name__}")

    def encode(self, value: Any) -> object:
        return value.to_json()


@dataclasses.dataclass(frozen=True)
class _Array(_Rule):
    cls: "type[_Record]"

    def decode(self, value: object, path: str) -> object:
        if not isinstance(value, list):
            raise _bad(path, "expected an array")
        return tuple(self.cls.decode_at(item, f"{path}[{i}]") for i, item in enumerate(value))

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, tuple):
            raise _bad(path, "expected a tuple")
        for i, item in enumerate(value):
            if not isinstance(item, self.cls):
                raise _bad(f"{path}[{i}]", f"expected a {self.cls.__name__}")

    def encode(self, value: Any) -> object:
        return [item.to_json() for item in value]


@dataclasses.dataclass(frozen=True)
class _TextArray(_Rule):
    item: _Text
    max_items: int

    def decode(self, value: object, path: str) -> object:
        if not isinstance(value, list):
            raise _bad(path, "expected an array")
        self._check_items(value, path)
        return tuple(value)

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, tuple):
            raise _bad(path, "expected a tuple")
        self._check_items(value, path)

    def _check_items(self, items: "list[object] | tuple[object, ...]", path: str) -> None:
        if len(items) > self.max_items:
            raise _bad(path, f"more than {self.max_items} items")
        for i, item in enumerate(items):
            self.item.decode(item, f"{path}[{i}]")

    def encode(self, value: Any) -> object:
        return list(value)


Token = Annotated[str, _Text(MAX_TOKEN_BYTES, in_bytes=True, nonempty=True)]
Sdp = Annotated[str, _Text(MAX_SDP_BYTES, in_bytes=True, nonempty=True)]
CandidateLine = Annotated[str, _Text(MAX_CANDIDATE_BYTES, in_bytes=True)]
Id = Annotated[str, _Text(MAX_ID_CHARS, nonempty=True)]
OptionalId = Annotated[str | None, _Text(MAX_ID_CHARS, nullable=True)]
Name = Annotated[str, _Text(MAX_ID_CHARS)]
Text = Annotated[str, _Text(MAX_TEXT_CHARS)]
Kind = Annotated[TrackKind, _Choice(TRACK_KINDS)]
Source = Annotated[TrackSource, _Choice(TRACK_SOURCES)]
Flag = Annotated[bool, _Bool()]
Time = Annotated[float, _Number()]
OptionalTime = Annotated[float | None, _Number(nullable=True)]
Interval = Annotated[float, _Number(positive=True)]
ParticipantLimit = Annotated[int, _Integer(1, MAX_PARTICIPANTS_LIMIT)]
MLineIndex = Annotated[int | None, _Integer(0, MAX_MLINE_INDEX, nullable=True)]
Direction = Annotated[TransceiverDirection, _Choice(TRANSCEIVER_DIRECTIONS)]
Level = Annotated[float, _Number()]
DataPayload = Annotated[str, _Text(MAX_DATA_BYTES, in_bytes=True, too_long_code=DATA_TOO_BIG)]
Identities = Annotated[tuple[str, ...], _TextArray(_Text(MAX_ID_CHARS, nonempty=True), MAX_DATA_RECIPIENTS)]
Secret = Annotated[str, _Text(MAX_TEXT_CHARS)]
ActionName = Annotated[PlaybackAction, _Choice(ACTIONS)]
OptionalContent = Annotated[str | None, _Text(MAX_CONTENT_CHARS, nullable=True)]
Content = Annotated[str, _Text(MAX_CONTENT_CHARS)]
Title = Annotated[str, _Text(MAX_TITLE_CHARS)]
ControlName = Annotated[PlaybackControl, _Choice(CONTROLS)]
OnStallName = Annotated[PlaybackOnStall, _Choice(ON_STALL)]
OptionalChoice = Annotated[str | None, _Text(MAX_ID_CHARS, nullable=True)]
Seq = Annotated[int, _Integer(0, 2**53)]


_FIELDS: dict[type, tuple[tuple[str, _Rule, bool], ...]] = {}


def _fields_of(cls: type) -> tuple[tuple[str, _Rule, bool], ...]:
    """Return (name, rule, required) for each field of a record class."""
    cached = _FIELDS.get(cls)
    if cached is not None:
        return cached
    found = []
    for field in dataclasses.fields(cls):
        rules = [meta for meta in get_args(field.type)[1:] if isinstance(meta, _Rule)]
        if len(rules) != 1:
            raise TypeError(f"{cls.__name__}.{field.name} needs exactly one rule in its annotation")
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        found.append((field.name, rules[0], required))
    _FIELDS[cls] = tuple(found)
    return _FIELDS[cls]


class _Record:
    """Base of every value type and message: JSON reading and writing driven by the field annotations."""

    def __post_init__(self) -> None:
        for name, rule, _ in _fields_of(type(self)):
            rule.check(getattr(self, name), f"{type(self).__name__}.{name}")

    def to_json(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict (messages get "type" and "v" from encode())."""
        return {name: rule.encode(getattr(self, name)) for name, rule, _ in _fields_of(type(self))}

    @classmethod
    def from_json(cls, obj: object) -> Self:
        """Build from a decoded JSON object, ignoring unknown fields; raise ProtocolError naming a bad field."""
        return cls.decode_at(obj, getattr(cls, "TYPE", cls.__name__))

    @classmethod
    def decode_at(cls, obj: object, path: str) -> Self:
        """Build from a decoded JSON object found at ``path`` (used in error messages)."""
        if not isinstance(obj, dict):
            raise _bad(path, "expected a JSON object")
        values: dict[str, object] = {}
        for name, rule, required in _fields_of(cls):
            if name in obj:
                values[name] = rule.decode(obj[name], f"{path}.{name}")
            elif required:
                raise _bad(f"{path}.{name}", "required")
        build: Callable[..., Self] = cls
        return build(**values)


# --- shared value types ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackInfo(_Record):
    """A published track as every participant sees it."""

    sid: Id
    kind: Kind
    source: Source
    name: Name = ""
    muted: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantInfo(_Record):
    """A participant in a room and the tracks it publishes."""

    sid: Id
    identity: Id
    name: Name = ""
    joined_at: Time
    tracks: Annotated[tuple[TrackInfo, ...], _Array(TrackInfo)] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoomInfo(_Record):
    """The room a connection joined."""

    sid: Id
    name: Id
    status: Id
    max_participants: ParticipantLimit


@dataclasses.dataclass(frozen=True, kw_only=True)
class GrantsInfo(_Record):
    """What the participant's token allows in the room."""

    room: Id
    join: Flag
    publish: Flag
    subscribe: Flag
    publish_data: Flag
    host: Flag
    hidden: Flag



@dataclasses.dataclass(frozen=True, kw_only=True)
class IceServer(_Record):
    """A STUN or TURN server the client's peer connection may use (from the server's media config)."""

    urls: Text
    username: Name = ""
    credential: Secret = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransceiverInfo(_Record):
    """What one m-line of a server offer carries: the client's publication or one of its subscriptions."""

    mid: Id
    direction: Direction
    track_sid: Id
    participant_sid: Id
    kind: Kind
    cid: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpeakerInfo(_Record):
    """One speaking participant, with its audio level from 0 (silence) to 1 (loudest)."""

    participant_sid: Id
    identity: Id
    level: Level

class _Message(_Record):
    TYPE: ClassVar[str]


# --- client -> server (offer, answer and candidate go both ways) ----------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Join(_Message):
    """Ask to join the room named in the token; the first message on every connection."""

    TYPE: ClassVar[str] = "join"
    token: Token = dataclasses.field(repr=False)
    auto_subscribe: Flag = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class Offer(_Message):
    """Carry an SDP offer; from the server it lists what each m-line carries (``transceivers``)."""

    TYPE: ClassVar[str] = "offer"
    sdp: Sdp
    transceivers: Annotated[tuple[TransceiverInfo, ...], _Array(TransceiverInfo)] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Answer(_Message):
    """Carry an SDP answer."""

    TYPE: ClassVar[str] = "answer"
    sdp: Sdp


@dataclasses.dataclass(frozen=True, kw_only=True)
class Candidate(_Message):
    """Carry one trickled ICE candidate; an empty candidate means no more candidates."""

    TYPE: ClassVar[str] = "candidate"
    candidate: CandidateLine
    sdp_mid: OptionalId = None
    sdp_mline_index: MLineIndex = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Publish(_Message):
    """Announce a track the client is about to send; ``cid`` is the client's own id for it."""

    TYPE: ClassVar[str] = "publish"
    cid: Id
    kind: Kind
    source: Source
    name: Name = ""
    muted: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Unpublish(_Message):
    """Stop publishing a track."""

    TYPE: ClassVar[str] = "unpublish"
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Subscribe(_Message):
    """Start receiving a track."""

    TYPE: ClassVar[str] = "subscribe"
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Unsubscribe(_Message):
    """Stop receiving a track."""

    TYPE: ClassVar[str] = "unsubscribe"
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Mute(_Message):
    """Mute or unmute one of the client's own tracks."""

    TYPE: ClassVar[str] = "mute"
    track_sid: Id
    muted: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class Leave(_Message):
    """Leave the room; the server closes the connection after it."""

    TYPE: ClassVar[str] = "leave"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ping(_Message):
    """Keep the connection alive; ``t0`` is the client's clock when sent, for clock sync; ``id`` (the client's own)
    comes back in the pong, so a client can wait for the answer to one ping (the server answers in order)."""

    TYPE: ClassVar[str] = "ping"
    t0: OptionalTime = None
    id: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SendData(_Message):
    """Send a data message to the room, or only to the participants with the identities in ``to``."""

    TYPE: ClassVar[str] = "send_data"
    payload: DataPayload
    topic: Name = ""
    to: Identities = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Playback(_Message):
    """Change the room's shared content timeline: load, play, pause, seek, stop, or configure who may."""

    TYPE: ClassVar[str] = "playback"
    action: ActionName
    content: OptionalContent = None
    title: Title = ""
    position: OptionalTime = None
    play: Flag = True
    control: OptionalChoice = None
    on_stall: OptionalChoice = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Buffering(_Message):
    """Tell the room this screen stalled (``stalled``) or is ready again; ``duration`` once it knows it."""

    TYPE: ClassVar[str] = "buffering"
    stalled: Flag
    position: OptionalTime = None
    duration: OptionalTime = None


# --- server -> client ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Joined(_Message):
    """Tell the client it is in the room, who else is there and how often to ping."""

    TYPE: ClassVar[str] = "joined"
    room: Annotated[RoomInfo, _Object(RoomInfo)]
    participant: Annotated[ParticipantInfo, _Object(ParticipantInfo)]
    grants: Annotated[GrantsInfo, _Object(GrantsInfo)]
    participants: Annotated[tuple[ParticipantInfo, ...], _Array(ParticipantInfo)] = ()
    server_time: Time
    ping_interval: Interval
    idle_timeout: Interval
    ice_servers: Annotated[tuple[IceServer, ...], _Array(IceServer)] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantJoined(_Message):
    """Tell that a participant joined."""

    TYPE: ClassVar[str] = "participant_joined"
    participant: Annotated[ParticipantInfo, _Object(ParticipantInfo)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantLeft(_Message):
    """Tell that a participant left, and why."""

    TYPE: ClassVar[str] = "participant_left"
    participant_sid: Id
    identity: Id
    reason: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackPublished(_Message):
    """Tell that a track was published; ``cid`` is set only in the copy sent to the publisher."""

    TYPE: ClassVar[str] = "track_published"
    participant_sid: Id
    track: Annotated[TrackInfo, _Object(TrackInfo)]
    cid: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackUnpublished(_Message):
    """Tell that a track is gone."""

    TYPE: ClassVar[str] = "track_unpublished"
    participant_sid: Id
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackMuted(_Message):
    """Tell that a track was muted, by its publisher or by the server."""

    TYPE: ClassVar[str] = "track_muted"
    participant_sid: Id
    track_sid: Id
    by_server: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackUnmuted(_Message):
    """Tell that a track was unmuted."""

    TYPE: ClassVar[str] = "track_unmuted"
    participant_sid: Id
    track_sid: Id
    by_server: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Removed(_Message):
    """Tell the client it was removed from the room; the server closes the connection next."""

    TYPE: ClassVar[str] = "removed"
    reason: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoomCompleted(_Message):
    """Tell that the room was completed."""

    TYPE: ClassVar[str] = "room_completed"
    room_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Error(_Message):
    """Report an error; ``code`` is stable and machine-readable, ``message`` is for people."""

    TYPE: ClassVar[str] = "error"
    code: Id
    message: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pong(_Message):
    """Answer a ping: ``t0`` and ``id`` as the ping carried them, ``t1`` the server's clock at receipt, ``t2`` when
    sent."""

    TYPE: ClassVar[str] = "pong"
    t0: OptionalTime = None
    t1: Time
    t2: Time
    id: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ActiveSpeakers(_Message):
    """Who is speaking now, loudest first, and the dominant speaker (sent on change)."""

    TYPE: ClassVar[str] = "active_speakers"
    speakers: Annotated[tuple[SpeakerInfo, ...], _Array(SpeakerInfo)] = ()
    dominant_sid: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Data(_Message):
    """A data message from another participant."""

    TYPE: ClassVar[str] = "data"
    from_sid: Id
    from_identity: Id
    topic: Name = ""
    payload: DataPayload


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlaybackStateMsg(_Message):
    """The room's shared content timeline (see tvapp.core.playback.PlaybackState), sent on every change and to
    each joiner; ``server_time`` is the server's clock when it was sent."""

    TYPE: ClassVar[str] = "playback_state"
    content: Content = ""
    title: Title = ""
    playing: Flag = False
    position: Time = 0.0
    rate: Interval = 1.0
    at: Time = 0.0
    seq: Seq = 0
    waiting_for: Identities = ()
    control: ControlName = "host"
    on_stall: OnStallName = "pause"
    duration: OptionalTime = None
    server_time: Time

    @classmethod
    def of(cls, state: PlaybackState, server_time: float) -> "PlaybackStateMsg":
        """Return the message for `state`, sent at server time `server_time`."""
        fields = {field.name: getattr(state, field.name) for field in dataclasses.fields(PlaybackState)}
        return cls(**fields, server_time=server_time)

    def state(self) -> PlaybackState:
        """Return the timeline this message carries."""
        return PlaybackState(**{field.name: getattr(self, field.name) for field in dataclasses.fields(PlaybackState)})


ClientMessage: TypeAlias = (
    Join | Offer | Answer | Candidate | Publish | Unpublish | Subscribe | Unsubscribe | Mute | Leave | Ping | SendData
    | Playback | Buffering
)
ServerMessage: TypeAlias = (
    Joined
    | ParticipantJoined
    | ParticipantLeft
    | TrackPublished
    | TrackUnpublished
    | TrackMuted
    | TrackUnmuted
    | Removed
    | RoomCompleted
    | Error
    | Pong
    | ActiveSpeakers
    | Data
    | PlaybackStateMsg
    | Offer
    | Answer
    | Candidate
)

_CLIENT_CLASSES: tuple[type[ClientMessage], ...] = (
    Join, Offer, Answer, Candidate, Publish, Unpublish, Subscribe, Unsubscribe, Mute, Leave, Ping, SendData,
    Playback, Buffering,
)  # fmt: skip
_SERVER_CLASSES: tuple[type[ServerMessage], ...] = (
    Joined, ParticipantJoined, ParticipantLeft, TrackPublished, TrackUnpublished, TrackMuted, TrackUnmuted,
    Removed, RoomCompleted, Error, Pong, ActiveSpeakers, Data, PlaybackStateMsg, Offer, Answer, Candidate,
)  # fmt: skip
CLIENT_MESSAGE_TYPES: Final[Mapping[str, type[ClientMessage]]] = {cls.TYPE: cls for cls in _CLIENT_CLASSES}
SERVER_MESSAGE_TYPES: Final[Mapping[str, type[ServerMessage]]] = {cls.TYPE: cls for cls in _SERVER_CLASSES}


# --- codec -----------------------------------------------------------------------------------------------------


def _refuse_constant(name: str) -> object:
    raise _bad("message", f"{name} is not allowed in JSON")


def decode(text: str, max_bytes: int | None = MAX_MESSAGE_BYTES) -> object:
    """Return the JSON value in one received text; raise ProtocolError if too big or not JSON."""
    if max_bytes is not None and (
        len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise ProtocolError(MESSAGE_TOO_BIG, f"message: longer than {max_bytes} bytes")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError):
        raise _bad("message", "not valid JSON") from None


def _message_class(obj: object, registry: Mapping[str, type[Any]]) -> type[Any]:
    if not isinstance(obj, dict):
        raise _bad("message", "expected a JSON object")
    version = obj.get("v")
    if version is None:
        raise _bad("message.v", "required")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _bad("message.v", "expected an integer")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(UNSUPPORTED_VERSION, f"message.v: only version {PROTOCOL_VERSION} is supported")
    kind = obj.get("type")
    if kind is None:
        raise _bad("message.type", "required")
    if not isinstance(kind, str):
        raise _bad("message.type", "expected a string")
    cls = registry.get(kind)
    if cls is None:
        shown = f" {kind!r}" if len(kind) <= 32 and kind.isascii() and kind.isidentifier() else ""
        raise UnknownMessageType(BAD_MESSAGE, f"message.type: unknown message type{shown}")
    return cls


def parse_client_message(obj: object) -> ClientMessage:
    """Return the client message in a decoded JSON value; raise ProtocolError naming the bad field."""
    cls: type[ClientMessage] = _message_class(obj, CLIENT_MESSAGE_TYPES)
    return cls.from_json(obj)


def parse_server_message(obj: object) -> ServerMessage:
    """Return the server message in a decoded JSON value; raise ProtocolError naming the bad field."""
    cls: type[ServerMessage] = _message_class(obj, SERVER_MESSAGE_TYPES)
    return cls.from_json(obj)


def encode(msg: ClientMessage | ServerMessage) -> str:
    """Return the compact JSON text of a message, with "type" and "v" added."""
    obj = {"type": msg.TYPE, "v": PROTOCOL_VERSION, **msg.to_json()}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Encoded:
    """A server message encoded once, for sending the same text on many connections (room broadcasts)."""

    msg: ServerMessage
    text: str

    @classmethod
    def of(cls, msg: ServerMessage) -> Self:
        """Encode `msg` once."""
        return cls(msg, encode(msg))

