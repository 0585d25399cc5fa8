"""Remote-control messages (protocol version 1) between a paired phone and the TV, and their codec.

A phone (``tvapp remote`` or the web Remote page) opens the websocket ``/v1/remote`` on the TV and sends its
device credential in the first message (``auth``), never in the URL. Then it sends commands, each with an optional
``id`` of its own; the TV answers every command with ``ok`` or ``error`` carrying the same ``id`` (``list_devices``
gets a ``devices`` message just before its ``ok``, ``status`` a ``state``), and pushes its whole ``state`` to every
authenticated remote whenever it changes. Commands set values, never toggle them, so resending one is harmless.
The connections' rules are in tvapp.protocol.remote.

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

``join_server`` (join a room on another core by invite link, or server + code) checks the link strictly in
tvapp.core.links (http/https only, no credentials, length limits, a real code, a sha256 fingerprint on https only);
what the TV then meets is answered with the JoinProblem's code: server_unreachable, tls_failed, fingerprint_mismatch,
or the core's own (invite_not_found, invite_expired, invite_used_up, too_many_attempts, room_full, ...).

The phone as the TV's camera (tvapp.tv.remote.phonecam): ``phone_camera_offer`` carries the phone's WebRTC offer
(``sdp``: at most MAX_SDP_BYTES of UTF-8, starting "v=0", lines of printable text; else invalid_value); the TV
answers with a ``phone_camera_answer`` (same ``id``, its SDP) just before its ``ok``, or an error: not_in_room,
bad_sdp (the SDP did not parse or offers no VP8 video), phone_camera_failed. ``phone_camera_mute`` mutes the
phone's microphone in the room; ``phone_camera_stop`` ends it. When a phone stops being the camera for any other
reason the TV tells it with ``phone_camera_stopped`` (reason: replaced, left_room, connection_lost, stopped).

The field rules and the envelope are tvapp.protocol.fields'; the layouts are tvapp.core.layout's modes.
"""

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Annotated, ClassVar, Final, Literal, TypeAlias, get_args

from tvapp.core.claims import IDENTITY_RE, ROOM_NAME_RE
from tvapp.core.codes import normalize_invite_code
from tvapp.core.layout import Mode
from tvapp.core.links import (
    MAX_LINK_CHARS,
    MAX_URL_CHARS,
    InviteLink,
    LinkError,
    join_target,
    parse_code,
    parse_fingerprint,
    parse_link,
    parse_server,
)
from tvapp.core.playback import MAX_CONTENT_CHARS, MAX_POSITION, MAX_TITLE_CHARS
from tvapp.protocol import fields as f
from tvapp.protocol.fields import BAD_MESSAGE as BAD_MESSAGE
from tvapp.protocol.fields import INVALID_VALUE as INVALID_VALUE
from tvapp.protocol.fields import UNSUPPORTED_VERSION as UNSUPPORTED_VERSION
from tvapp.protocol.fields import ProtocolError, UnknownMessageType

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 16_384
MAX_COMMAND_ID_CHARS: Final = 64
MAX_CREDENTIAL_CHARS: Final = 512
MAX_ID_CHARS: Final = 128
MAX_NAME_CHARS: Final = 128
MAX_TEXT_CHARS: Final = 1_024
MAX_SDP_BYTES: Final = 12_000  # a phone's offer (audio + video, host candidates) is 3-9 KB; JSON-escaped it fits
                               # one MAX_MESSAGE_BYTES message

TOO_BIG: Final = "too_big"
UNKNOWN_COMMAND: Final = "unknown_command"
NOT_AUTHENTICATED: Final = "not_authenticated"
ALREADY_AUTHENTICATED: Final = "already_authenticated"
AUTH_FAILED: Final = "auth_failed"
AUTH_TIMEOUT: Final = "auth_timeout"
CONNECTION_CLOSED: Final = "connection_closed"

TvStatus: TypeAlias = Literal["idle", "joining", "in_room", "error"]
PlaybackActionName: TypeAlias = Literal["play", "pause", "seek", "load", "stop", "live"]
LAYOUTS: Final[tuple[str, ...]] = tuple(mode.value for mode in Mode)
TV_STATUSES: Final[tuple[str, ...]] = get_args(TvStatus)
PLAYBACK_ACTIONS: Final[tuple[str, ...]] = get_args(PlaybackActionName)
DeviceStateName: TypeAlias = Literal["on", "off", "none"]
DEVICE_STATES: Final[tuple[str, ...]] = get_args(DeviceStateName)
# A media URL ("https://...", "rtsp://...") or an absolute path; no control characters anywhere.
CONTENT_RE: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*://|/)[^\x00-\x1f\x7f]*")


class RemoteProtocolError(ProtocolError):
    """A remote-control message that breaks the protocol; ``id`` is the command's id when it could be read."""


class UnknownRemoteMessage(RemoteProtocolError, UnknownMessageType):
    """A well-formed message of a type this side does not take (a newer peer may send these)."""


COMMAND_ID_RULE: Final = f.Text(MAX_COMMAND_ID_CHARS, nonempty=True, nullable=True)
CommandId = Annotated[str | None, COMMAND_ID_RULE]
Credential = Annotated[str, f.Text(MAX_CREDENTIAL_CHARS, nonempty=True)]
Id = Annotated[str, f.Text(MAX_ID_CHARS, nonempty=True, too_long_code=INVALID_VALUE)]
OptionalId = Annotated[str | None, f.Text(MAX_ID_CHARS, nullable=True, too_long_code=INVALID_VALUE)]
Name = Annotated[str, f.Text(MAX_NAME_CHARS)]
OptionalName = Annotated[str | None, f.Text(MAX_NAME_CHARS, nullable=True)]
Text = Annotated[str, f.Text(MAX_TEXT_CHARS)]
Flag = Annotated[bool, f.Bool()]
Volume = Annotated[float, f.Range(0.0, 1.0)]
Layout = Annotated[str, f.OneOf(LAYOUTS)]
Status = Annotated[TvStatus, f.OneOf(TV_STATUSES)]
DeviceState = Annotated[DeviceStateName, f.OneOf(DEVICE_STATES)]
Identity = Annotated[str, f.Matching(IDENTITY_RE.fullmatch, "a participant identity")]
RoomName = Annotated[str | None, f.Matching(ROOM_NAME_RE.fullmatch, "a room name", nullable=True)]
InviteCode = Annotated[str, f.Matching(normalize_invite_code, "an invite code")]
_SINCE_1970 = "must be a time in seconds since 1970"
Timestamp = Annotated[float, f.Range(0.0, problem=_SINCE_1970)]
OptionalTimestamp = Annotated[float | None, f.Range(0.0, nullable=True, problem=_SINCE_1970)]
PlaybackAction = Annotated[PlaybackActionName, f.OneOf(PLAYBACK_ACTIONS)]
_IN_CONTENT = f"must be between 0 and {MAX_POSITION:g} seconds"
Position = Annotated[float, f.Range(0.0, MAX_POSITION, problem=_IN_CONTENT)]
OptionalPosition = Annotated[float | None, f.Range(0.0, MAX_POSITION, nullable=True, problem=_IN_CONTENT)]
Content = Annotated[str, f.Text(MAX_CONTENT_CHARS, too_long_code=INVALID_VALUE)]
OptionalContent = Annotated[str | None, f.Text(MAX_CONTENT_CHARS, nullable=True, too_long_code=INVALID_VALUE)]
Title = Annotated[str, f.Text(MAX_TITLE_CHARS, too_long_code=INVALID_VALUE)]
MAX_FINGERPRINT_CHARS: Final = 128
MAX_KNOWN_SERVERS: Final = 20
OptionalLink = Annotated[str | None, f.Text(MAX_LINK_CHARS, nullable=True, too_long_code=INVALID_VALUE)]
OptionalServerUrl = Annotated[str | None, f.Text(MAX_URL_CHARS, nullable=True, too_long_code=INVALID_VALUE)]
OptionalCode = Annotated[str | None, f.Text(MAX_NAME_CHARS, nullable=True, too_long_code=INVALID_VALUE)]
OptionalFingerprint = Annotated[str | None, f.Text(MAX_FINGERPRINT_CHARS, nullable=True, too_long_code=INVALID_VALUE)]
ServerUrl = Annotated[str, f.Matching(lambda text: _parses(parse_server, text), "a server URL")]
ServerFingerprint = Annotated[str | None, f.Matching(lambda text: _parses(parse_fingerprint, text),
                                                     "a sha256 fingerprint", nullable=True)]


def sdp_problem(text: str) -> str | None:
    """Return what makes `text` unfit to be a session description (never quoting it), or None."""
    if not text.startswith(("v=0\r\n", "v=0\n")):
        return "must be a session description starting with v=0"
    for line in text.replace("\r\n", "\n").split("\n"):
        if line and not line.isprintable():
            return "must be lines of printable text"
    return None


Sdp = Annotated[str, f.Text(MAX_SDP_BYTES, in_bytes=True, nonempty=True, too_long_code=INVALID_VALUE)]
StopReason: TypeAlias = Literal["replaced", "left_room", "connection_lost", "stopped"]
STOP_REASONS: Final[tuple[str, ...]] = get_args(StopReason)


def _parses(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except LinkError:
        return False
    return True


# --- shared value types ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceInfo(f.Record):
    """A paired phone, as the remotes list it; times are seconds since 1970."""

    device_id: Id
    name: Name = ""
    paired_at: Timestamp
    last_seen: OptionalTimestamp = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantState(f.Record):
    """One participant of the TV's room, as the remote shows it."""

    sid: Id
    identity: Id
    name: Name = ""
    speaking: Flag = False
    mic_muted: Flag = False
    camera_off: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlaybackInfo(f.Record):
    """The shared content of the TV's room, as the remote shows it.

    ``position`` is seconds into the content when the state was made; while ``playing`` and not ``waiting`` (for a
    stalled screen) it moves on at normal speed from there. ``content`` is "" when nothing is loaded.

    A live stream (``live``): ``position`` is how many seconds the picture is behind the live edge (it stays put
    while playing and grows while paused), ``delay`` the room's live delay (where "live" brings it back to).
    """

    content: Content = ""
    title: Title = ""
    playing: Flag = False
    position: Position = 0.0
    duration: OptionalPosition = None
    waiting: Flag = False
    live: Flag = False
    delay: OptionalPosition = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class KnownServer(f.Record):
    """A core the TV joined a room on before: its base URL, name, pinned fingerprint (https) and when last used."""

    url: ServerUrl
    name: Name = ""
    fingerprint: ServerFingerprint = None
    last_used: Timestamp


@dataclasses.dataclass(frozen=True, kw_only=True)
class ErrorInfo(f.Record):
    """What the TV's error screen says."""

    title: Text
    message: Text = ""


# --- phone -> TV -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Auth(f.Message):
    """Present the phone's device credential; the first message on every connection, and only once."""

    TYPE: ClassVar[str] = "auth"
    credential: Credential = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Command(f.Message):
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
class JoinServer(_Command):
    """Join a room on another core: by invite ``link`` ("https://core.example/?code=ABCD-EFGH#fp=sha256:..."), or by
    ``server`` (a URL or host:port) and ``invite``; ``fingerprint`` pins a self-signed https core's certificate.
    Exactly one of link or server + invite. ``target()`` is where to go, checked by tvapp.core.links."""

    TYPE: ClassVar[str] = "join_server"
    link: OptionalLink = None
    server: OptionalServerUrl = None
    invite: OptionalCode = None
    fingerprint: OptionalFingerprint = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.target()

    def target(self) -> InviteLink:
        """Return the core, code and pinned fingerprint to join with; raise invalid_value naming what is wrong."""
        if (self.link is None) == (self.server is None):
            raise f.invalid("join_server", "give either link, or server and invite")
        if self.link is not None and self.invite is not None:
            raise f.invalid("join_server.invite", "not taken with link (the link carries the code)")
        try:
            fingerprint = parse_fingerprint(self.fingerprint) if self.fingerprint is not None else None
        except LinkError as exc:
            raise f.invalid("join_server.fingerprint", str(exc)) from None
        if self.link is not None:
            try:
                found = parse_link(self.link)
            except LinkError as exc:
                raise f.invalid("join_server.link", str(exc)) from None
            if fingerprint is not None and found.fingerprint not in (None, fingerprint):
                raise f.invalid("join_server.fingerprint", "differs from the link's #fp")
            server, code, fingerprint = found.server, found.code, fingerprint or found.fingerprint
        else:
            assert self.server is not None
            if self.invite is None:
                raise f.invalid("join_server.invite", "required with server")
            try:
                server = parse_server(self.server)
            except LinkError as exc:
                raise f.invalid("join_server.server", str(exc)) from None
            try:
                code = parse_code(self.invite)
            except LinkError as exc:
                raise f.invalid("join_server.invite", str(exc)) from None
        try:
            return join_target(server, code, fingerprint)
        except LinkError as exc:
            raise f.invalid("join_server.fingerprint", str(exc)) from None


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
    """Turn the TV's own microphone on or off (off closes the capture device); refused with not_available when
    the TV has none, device_failed when it does not open."""

    TYPE: ClassVar[str] = "set_mic"
    enabled: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class SetCamera(_Command):
    """Turn the TV's own camera on or off (off closes the device), refused like set_mic."""

    TYPE: ClassVar[str] = "set_camera"
    enabled: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class Playback(_Command):
    """Drive the room's shared content: load (``content``, from ``position`` or 0, optional ``title``), play, pause,
    seek (to ``position``; live: seconds behind the live edge), live (back to the room's live point) or stop. The TV refuses with not_host when the room lets only its host do that."""

    TYPE: ClassVar[str] = "playback"
    action: PlaybackAction
    position: OptionalPosition = None
    content: OptionalContent = None
    title: Title = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.action == "load":
            if not self.content:
                raise f.invalid("playback.content", "required for load")
            if CONTENT_RE.fullmatch(self.content) is None:
                raise f.invalid("playback.content", "is not a media URL or an absolute path")
            return
        if self.action == "seek" and self.position is None:
            raise f.invalid("playback.position", "required for seek")
        if self.action != "seek" and self.position is not None:
            raise f.invalid("playback.position", f"not taken by {self.action}")
        if self.content is not None or self.title:
            raise f.invalid("playback.content" if self.content is not None else "playback.title",
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraOffer(_Command):
    """Offer this phone's camera and microphone to the TV (a WebRTC offer, all candidates in it); the TV answers
    with phone_camera_answer, then ok. A phone that is the camera already is replaced by this one."""

    TYPE: ClassVar[str] = "phone_camera_offer"
    sdp: Sdp = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        problem = sdp_problem(self.sdp)
        if problem is not None:
            raise f.invalid("phone_camera_offer.sdp", problem)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraMute(_Command):
    """Mute or unmute this phone's microphone as the TV's (refused with not_phone_camera when it is not the camera)."""

    TYPE: ClassVar[str] = "phone_camera_mute"
    muted: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraStop(_Command):
    """Stop being the TV's camera (ok even when this phone was not)."""

    TYPE: ClassVar[str] = "phone_camera_stop"


# --- TV -> phone -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Authed(f.Message):
    """Tell the phone its credential is accepted, which paired device it is, and the TV's name."""

    TYPE: ClassVar[str] = "authed"
    device_id: Id
    tv_name: Name


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ok(f.Message):
    """Tell the phone the command with this id is done."""

    TYPE: ClassVar[str] = "ok"
    id: CommandId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Error(f.Message):
    """Report a refused command (``id`` set when known) or a broken message; ``code`` is stable, ``message`` human."""

    TYPE: ClassVar[str] = "error"
    id: CommandId = None
    code: Id
    message: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Devices(f.Message):
    """List the paired phones; ``id`` is the list_devices command's."""

    TYPE: ClassVar[str] = "devices"
    id: CommandId = None
    devices: Annotated[tuple[DeviceInfo, ...], f.Array(DeviceInfo)] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class State(f.Message):
    """The TV's whole state, pushed to every remote on each change; ``active_speaker`` is a participant sid.

    ``room_server`` is the base URL of the core the room lives on when that is not the TV's own (None: on this
    TV's core, or no room); ``servers`` are the other cores the TV remembers, most recently used first."""

    TYPE: ClassVar[str] = "state"
    tv_name: Name
    status: Status
    room: OptionalName = None
    invite_code: OptionalName = None
    invite_visible: Flag = False
    participants: Annotated[tuple[ParticipantState, ...], f.Array(ParticipantState)] = ()
    active_speaker: OptionalId = None
    volume: Volume
    layout: Layout
    pairing_open: Flag = False
    error: Annotated[ErrorInfo | None, f.Object(ErrorInfo, nullable=True)] = None
    playback: Annotated[PlaybackInfo | None, f.Object(PlaybackInfo, nullable=True)] = None
    room_server: OptionalServerUrl = None
    servers: Annotated[tuple[KnownServer, ...], f.Array(KnownServer)] = ()
    camera: DeviceState = "none"   # the TV's own camera: "on", "off", or "none" (it has none)
    mic: DeviceState = "none"      # the TV's own microphone, likewise


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraAnswer(f.Message):
    """The TV's WebRTC answer to a phone_camera_offer with this id (sent just before its ok)."""

    TYPE: ClassVar[str] = "phone_camera_answer"
    id: CommandId = None
    sdp: Sdp = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhoneCameraStopped(f.Message):
    """This phone is no longer the TV's camera, and why (another phone took over, the TV left its room, ...)."""

    TYPE: ClassVar[str] = "phone_camera_stopped"
    reason: Annotated[StopReason, f.OneOf(STOP_REASONS)]
    message: Text = ""


Command: TypeAlias = (
    StatusCommand | CreateRoom | JoinRoom | JoinServer | LeaveRoom | SetVolume | SetLayout | ShowInvite
    | RemoveParticipant | MuteParticipant | SetMic | SetCamera | Playback | ListDevices | ForgetDevice
    | PhoneCameraOffer | PhoneCameraMute | PhoneCameraStop
)  # fmt: skip
PhoneMessage: TypeAlias = Auth | Command
TvMessage: TypeAlias = Authed | Ok | Error | Devices | State | PhoneCameraAnswer | PhoneCameraStopped

_COMMAND_CLASSES: tuple[type[Command], ...] = (
    StatusCommand, CreateRoom, JoinRoom, JoinServer, LeaveRoom, SetVolume, SetLayout, ShowInvite, RemoveParticipant,
    MuteParticipant, SetMic, SetCamera, Playback, ListDevices, ForgetDevice, PhoneCameraOffer, PhoneCameraMute,
    PhoneCameraStop,
)  # fmt: skip
_TV_CLASSES: tuple[type[TvMessage], ...] = (Authed, Ok, Error, Devices, State, PhoneCameraAnswer, PhoneCameraStopped)
COMMAND_TYPES: Final[Mapping[str, type[Command]]] = f.registry(*_COMMAND_CLASSES)
PHONE_MESSAGE_TYPES: Final[Mapping[str, type[PhoneMessage]]] = {Auth.TYPE: Auth, **COMMAND_TYPES}
TV_MESSAGE_TYPES: Final[Mapping[str, type[TvMessage]]] = f.registry(*_TV_CLASSES)


# --- codec -----------------------------------------------------------------------------------------------------

ENVELOPE: Final = f.Envelope(version=PROTOCOL_VERSION, too_big=TOO_BIG, error=RemoteProtocolError,
                             unknown=UnknownRemoteMessage, reply_id=COMMAND_ID_RULE)


def parse_phone_message(text: str) -> PhoneMessage:
    """Return the phone message in one received text; raise RemoteProtocolError with the code to answer."""
    return ENVELOPE.parse(text, PHONE_MESSAGE_TYPES, max_bytes=MAX_MESSAGE_BYTES, unknown_code=UNKNOWN_COMMAND)


def parse_tv_message(text: str) -> TvMessage:
    """Return the TV message in one received text; raise RemoteProtocolError (UnknownRemoteMessage for new types)."""
    return ENVELOPE.parse(text, TV_MESSAGE_TYPES, max_bytes=None)


def encode(msg: PhoneMessage | TvMessage) -> str:
    """Return the compact JSON text of a message, with "type" and "v" added."""
    return ENVELOPE.encode(msg)
