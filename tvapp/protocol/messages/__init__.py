"""Signaling messages (protocol version 1): frozen dataclasses shared by the server and the SDK, and their codec.

Every message on the wire is a JSON object with ``"type"`` and ``"v": 1``; field names are snake_case. Unknown extra
fields are ignored so that newer peers can add fields; a missing required field, a wrong JSON type or an
out-of-range value is a :class:`ProtocolError` whose message names the field and never repeats the value. Names and
titles people read (participant and track names, content titles) follow tvapp.core.text's rule; a name that breaks
it is refused with ``invalid_name``.

The vocabulary lives in four modules, and everything is imported from here (``from tvapp.protocol.messages import
Joined``):

- ``limits``: the size caps (``MAX_*``), the choices (``TrackKind``...) and each field's rule, written once as an
  annotation (``sid: Id``) with the rules of tvapp.protocol.fields;
- ``values``: the records both directions carry (``TrackInfo``, ``ParticipantInfo``, ``IceServer``...);
- ``client``: client -> server messages (``Join``, ``Publish``...; ``Offer``, ``Answer``, ``Candidate`` go both ways);
- ``server``: server -> client messages (``Joined``, ``TrackPublished``, ``PlaybackStateMsg``...).

This module holds what joins them: the ``ClientMessage`` / ``ServerMessage`` unions, the type registries and the
codec (tvapp.protocol.fields' ``Envelope`` for version 1).
"""

import dataclasses
from collections.abc import Mapping
from typing import Final, Self, TypeAlias

from tvapp.protocol import fields as f
from tvapp.protocol.fields import BAD_MESSAGE as BAD_MESSAGE
from tvapp.protocol.fields import UNSUPPORTED_VERSION as UNSUPPORTED_VERSION
from tvapp.protocol.fields import Envelope
from tvapp.protocol.fields import ProtocolError as ProtocolError
from tvapp.protocol.fields import UnknownMessageType as UnknownMessageType
from tvapp.protocol.messages.client import (
    Join, Offer, Answer, Candidate, Publish, Unpublish, Subscribe, Unsubscribe, Mute, Leave, Ping, SendData, Playback,
    Buffering, MediaRestart, TrackSettings,
)
from tvapp.protocol.messages.limits import (
    PROTOCOL_VERSION, MAX_MESSAGE_BYTES, MAX_TOKEN_BYTES, MAX_SDP_BYTES, MAX_CANDIDATE_BYTES, MAX_ID_CHARS,
    MAX_TEXT_CHARS, MAX_PARTICIPANTS_LIMIT, MAX_MLINE_INDEX, MAX_DATA_BYTES, MAX_DATA_RECIPIENTS,
    MAX_RESUME_TOKEN_CHARS, MAX_MEDIA_GENERATION, MAX_VIDEO_PIXELS, MAX_FRAMERATE, MAX_BITRATE_BPS, MESSAGE_TOO_BIG,
    DATA_TOO_BIG, TrackKind, TrackSource, TransceiverDirection, TRACK_KINDS, TRANSCEIVER_DIRECTIONS, TRACK_SOURCES,
    TrackPriority, TRACK_PRIORITIES, RenditionLayer, RENDITION_LAYERS,
)
from tvapp.protocol.messages.server import (
    Joined, ParticipantJoined, ParticipantLeft, ParticipantReconnecting, ParticipantReconnected, TrackPublished,
    TrackUnpublished, TrackMuted, TrackUnmuted, UnmuteRequest, Removed, RoomCompleted, Error, Pong, ActiveSpeakers,
    NetworkQuality, TrackSwitchedOff, TrackSwitchedOn, PublishConstraints, Data, PlaybackStateMsg,
)
from tvapp.protocol.messages.values import (
    RenditionInfo, TrackInfo, ParticipantInfo, RoomInfo, GrantsInfo, IceServer, TransceiverInfo, SpeakerInfo,
    LinkQuality, NetworkQualityInfo,
)

# fmt: off
__all__ = [
    "BAD_MESSAGE", "UNSUPPORTED_VERSION", "ProtocolError", "UnknownMessageType", "PROTOCOL_VERSION",
    "MAX_MESSAGE_BYTES", "MAX_TOKEN_BYTES", "MAX_SDP_BYTES", "MAX_CANDIDATE_BYTES", "MAX_ID_CHARS", "MAX_TEXT_CHARS",
    "MAX_PARTICIPANTS_LIMIT", "MAX_MLINE_INDEX", "MAX_DATA_BYTES", "MAX_DATA_RECIPIENTS", "MAX_RESUME_TOKEN_CHARS",
    "MAX_MEDIA_GENERATION", "MAX_VIDEO_PIXELS", "MAX_FRAMERATE", "MAX_BITRATE_BPS", "MESSAGE_TOO_BIG", "DATA_TOO_BIG",
    "TrackKind", "TrackSource", "TransceiverDirection", "TRACK_KINDS", "TRANSCEIVER_DIRECTIONS", "TRACK_SOURCES",
    "TrackPriority", "TRACK_PRIORITIES", "RenditionLayer", "RENDITION_LAYERS", "RenditionInfo", "TrackInfo",
    "ParticipantInfo", "RoomInfo", "GrantsInfo", "IceServer", "TransceiverInfo", "SpeakerInfo", "LinkQuality",
    "NetworkQualityInfo", "Join", "Offer", "Answer", "Candidate", "Publish", "Unpublish", "Subscribe", "Unsubscribe",
    "Mute", "Leave", "Ping", "SendData", "Playback", "Buffering", "MediaRestart", "TrackSettings", "Joined",
    "ParticipantJoined", "ParticipantLeft", "ParticipantReconnecting", "ParticipantReconnected", "TrackPublished",
    "TrackUnpublished", "TrackMuted", "TrackUnmuted", "UnmuteRequest", "Removed", "RoomCompleted", "Error", "Pong",
    "ActiveSpeakers", "NetworkQuality", "TrackSwitchedOff", "TrackSwitchedOn", "PublishConstraints", "Data",
    "PlaybackStateMsg", "ClientMessage", "ServerMessage", "CLIENT_MESSAGE_TYPES", "SERVER_MESSAGE_TYPES", "ENVELOPE",
    "decode", "parse_client_message", "parse_server_message", "encode", "Encoded",
]
# fmt: on


ClientMessage: TypeAlias = (
    Join | Offer | Answer | Candidate | Publish | Unpublish | Subscribe | Unsubscribe | Mute | Leave | Ping | SendData
    | Playback | Buffering | MediaRestart | TrackSettings
)
ServerMessage: TypeAlias = (
    Joined
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantReconnecting
    | ParticipantReconnected
    | TrackPublished
    | TrackUnpublished
    | TrackMuted
    | TrackUnmuted
    | UnmuteRequest
    | Removed
    | RoomCompleted
    | Error
    | Pong
    | ActiveSpeakers
    | NetworkQuality
    | TrackSwitchedOff
    | TrackSwitchedOn
    | PublishConstraints
    | Data
    | PlaybackStateMsg
    | Offer
    | Answer
    | Candidate
)

_CLIENT_CLASSES: tuple[type[ClientMessage], ...] = (
    Join, Offer, Answer, Candidate, Publish, Unpublish, Subscribe, Unsubscribe, Mute, Leave, Ping, SendData,
    Playback, Buffering, MediaRestart, TrackSettings,
)  # fmt: skip
_SERVER_CLASSES: tuple[type[ServerMessage], ...] = (
    Joined, ParticipantJoined, ParticipantLeft, ParticipantReconnecting, ParticipantReconnected, TrackPublished,
    TrackUnpublished, TrackMuted, TrackUnmuted, UnmuteRequest, Removed, RoomCompleted, Error, Pong, ActiveSpeakers,
    NetworkQuality, TrackSwitchedOff, TrackSwitchedOn, PublishConstraints, Data, PlaybackStateMsg, Offer, Answer,
    Candidate,
)  # fmt: skip
CLIENT_MESSAGE_TYPES: Final[Mapping[str, type[ClientMessage]]] = f.registry(*_CLIENT_CLASSES)
SERVER_MESSAGE_TYPES: Final[Mapping[str, type[ServerMessage]]] = f.registry(*_SERVER_CLASSES)


# --- codec -----------------------------------------------------------------------------------------------------

ENVELOPE: Final = Envelope(version=PROTOCOL_VERSION, too_big=MESSAGE_TOO_BIG)


def decode(text: str, max_bytes: int | None = MAX_MESSAGE_BYTES) -> object:
    """Return the JSON value in one received text; raise ProtocolError if too big or not JSON."""
    return ENVELOPE.load(text, max_bytes)


def parse_client_message(obj: object) -> ClientMessage:
    """Return the client message in a decoded JSON value; raise ProtocolError naming the bad field."""
    return ENVELOPE.parse_object(obj, CLIENT_MESSAGE_TYPES)


def parse_server_message(obj: object) -> ServerMessage:
    """Return the server message in a decoded JSON value; raise ProtocolError naming the bad field."""
    return ENVELOPE.parse_object(obj, SERVER_MESSAGE_TYPES)


def encode(msg: ClientMessage | ServerMessage) -> str:
    """Return the compact JSON text of a message, with "type" and "v" added."""
    return ENVELOPE.encode(msg)


@dataclasses.dataclass(frozen=True, slots=True)
class Encoded:
    """A server message encoded once, for sending the same text on many connections (room broadcasts)."""

    msg: ServerMessage
    text: str

    @classmethod
    def of(cls, msg: ServerMessage) -> Self:
        """Encode `msg` once."""
        return cls(msg, encode(msg))

