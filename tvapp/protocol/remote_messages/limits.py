"""Remote protocol v1's limits, error codes and field rules: every cap, code, choice and annotated field type.

Each field's rule is written once, here, as an annotation built from tvapp.protocol.fields (``Id``, ``Identity``,
``ServerUrl``, ``Sdp``...) on tvapp.core's rules (claims, links, playback); values.py, phone.py and tv.py only
name these types. The error codes a phone can be answered with are listed in the package's docstring.
"""

import re
from collections.abc import Callable
from typing import Annotated, Final, Literal, TypeAlias, get_args

from tvapp.core.claims import IDENTITY_RE, ROOM_NAME_RE
from tvapp.core.codes import normalize_invite_code
from tvapp.core.layout import Mode
from tvapp.core.links import (
    MAX_LINK_CHARS,
    MAX_URL_CHARS,
    LinkError,
    parse_fingerprint,
    parse_server,
)
from tvapp.core.playback import MAX_CONTENT_CHARS, MAX_POSITION, MAX_TITLE_CHARS
from tvapp.protocol import fields as f
from tvapp.protocol.fields import INVALID_VALUE, ProtocolError, UnknownMessageType

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
