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

The vocabulary lives in four modules, and everything is imported from here (``from tvapp.protocol import
remote_messages as rp``): ``limits`` (caps, error codes, choices, each field's rule), ``values`` (the records in
``state`` and ``devices``), ``phone`` (``auth`` and the commands) and ``tv`` (the TV's answers and pushes). This
module joins them: the message unions, the type registries and the codec.
"""

from collections.abc import Mapping
from typing import Final, TypeAlias

from tvapp.protocol import fields as f
from tvapp.protocol.fields import BAD_MESSAGE as BAD_MESSAGE
from tvapp.protocol.fields import INVALID_VALUE as INVALID_VALUE
from tvapp.protocol.fields import UNSUPPORTED_VERSION as UNSUPPORTED_VERSION
from tvapp.protocol.remote_messages.limits import (
    PROTOCOL_VERSION, MAX_MESSAGE_BYTES, MAX_COMMAND_ID_CHARS, MAX_CREDENTIAL_CHARS, MAX_ID_CHARS, MAX_NAME_CHARS,
    MAX_TEXT_CHARS, MAX_SDP_BYTES, TOO_BIG, UNKNOWN_COMMAND, NOT_AUTHENTICATED, ALREADY_AUTHENTICATED, AUTH_FAILED,
    AUTH_TIMEOUT, CONNECTION_CLOSED, TvStatus, PlaybackActionName, LAYOUTS, TV_STATUSES, PLAYBACK_ACTIONS,
    DeviceStateName, DEVICE_STATES, CONTENT_RE, RemoteProtocolError, UnknownRemoteMessage, COMMAND_ID_RULE, CommandId,
    Credential, Id, OptionalId, Name, OptionalName, Text, Flag, Volume, Layout, Status, DeviceState, Identity,
    RoomName, InviteCode, Timestamp, OptionalTimestamp, PlaybackAction, Position, OptionalPosition, Content,
    OptionalContent, Title, MAX_FINGERPRINT_CHARS, MAX_KNOWN_SERVERS, OptionalLink, OptionalServerUrl, OptionalCode,
    OptionalFingerprint, ServerUrl, ServerFingerprint, sdp_problem, Sdp, StopReason, STOP_REASONS,
)
from tvapp.protocol.remote_messages.phone import (
    Auth, StatusCommand, CreateRoom, JoinRoom, JoinServer, LeaveRoom, SetVolume, SetLayout, ShowInvite,
    RemoveParticipant, MuteParticipant, SetMic, SetCamera, Playback, ListDevices, ForgetDevice, PhoneCameraOffer,
    PhoneCameraMute, PhoneCameraStop,
)
from tvapp.protocol.remote_messages.tv import (
    Authed, Ok, Error, Devices, State, PhoneCameraAnswer, PhoneCameraStopped,
)
from tvapp.protocol.remote_messages.values import (
    DeviceInfo, ParticipantState, PlaybackInfo, KnownServer, ErrorInfo,
)

# fmt: off
__all__ = [
    "BAD_MESSAGE", "INVALID_VALUE", "UNSUPPORTED_VERSION", "PROTOCOL_VERSION", "MAX_MESSAGE_BYTES",
    "MAX_COMMAND_ID_CHARS", "MAX_CREDENTIAL_CHARS", "MAX_ID_CHARS", "MAX_NAME_CHARS", "MAX_TEXT_CHARS",
    "MAX_SDP_BYTES", "TOO_BIG", "UNKNOWN_COMMAND", "NOT_AUTHENTICATED", "ALREADY_AUTHENTICATED", "AUTH_FAILED",
    "AUTH_TIMEOUT", "CONNECTION_CLOSED", "TvStatus", "PlaybackActionName", "LAYOUTS", "TV_STATUSES",
    "PLAYBACK_ACTIONS", "DeviceStateName", "DEVICE_STATES", "CONTENT_RE", "RemoteProtocolError",
    "UnknownRemoteMessage", "COMMAND_ID_RULE", "CommandId", "Credential", "Id", "OptionalId", "Name", "OptionalName",
    "Text", "Flag", "Volume", "Layout", "Status", "DeviceState", "Identity", "RoomName", "InviteCode", "Timestamp",
    "OptionalTimestamp", "PlaybackAction", "Position", "OptionalPosition", "Content", "OptionalContent", "Title",
    "MAX_FINGERPRINT_CHARS", "MAX_KNOWN_SERVERS", "OptionalLink", "OptionalServerUrl", "OptionalCode",
    "OptionalFingerprint", "ServerUrl", "ServerFingerprint", "sdp_problem", "Sdp", "StopReason", "STOP_REASONS",
    "DeviceInfo", "ParticipantState", "PlaybackInfo", "KnownServer", "ErrorInfo", "Auth", "StatusCommand",
    "CreateRoom", "JoinRoom", "JoinServer", "LeaveRoom", "SetVolume", "SetLayout", "ShowInvite", "RemoveParticipant",
    "MuteParticipant", "SetMic", "SetCamera", "Playback", "ListDevices", "ForgetDevice", "PhoneCameraOffer",
    "PhoneCameraMute", "PhoneCameraStop", "Authed", "Ok", "Error", "Devices", "State", "PhoneCameraAnswer",
    "PhoneCameraStopped", "Command", "PhoneMessage", "TvMessage", "COMMAND_TYPES", "PHONE_MESSAGE_TYPES",
    "TV_MESSAGE_TYPES", "ENVELOPE", "parse_phone_message", "parse_tv_message", "encode",
]
# fmt: on


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
