"""Signaling v1's shared value types: the records (track, participant, room, grants, ICE server...) messages carry.

Both directions use them; a record is a frozen dataclass parsed and encoded by tvapp.protocol.fields.
"""

import dataclasses
from typing import Annotated

from tvapp.protocol import fields as f
from tvapp.protocol.messages.limits import (
    Direction,
    Flag,
    HumanName,
    Id,
    Kind,
    LayerName,
    Level,
    Name,
    OptionalId,
    OptionalLayer,
    OptionalNumber,
    ParticipantLimit,
    QualityLevel,
    Secret,
    Source,
    Text,
    Time,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RenditionInfo(f.Record):
    """A second encode of a video track its publisher sends (simulcast by two tracks): its sid and layer."""

    sid: Id
    layer: LayerName


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackInfo(f.Record):
    """A published track as every participant sees it.

    ``renditions``: the lower-resolution encodes of this video track its publisher also sends; the SFU sends a
    subscriber one of them in its place, on the same m-line, when its link cannot carry this one. A rendition is
    never a track of its own in a roster: only its publisher hears of it, in the ``track_published`` answering
    its ``publish``, where ``rendition_of`` (the main track's sid) and ``layer`` are set.
    """

    sid: Id
    kind: Kind
    source: Source
    name: HumanName = ""
    muted: Flag = False
    renditions: Annotated[tuple[RenditionInfo, ...], f.Array(RenditionInfo)] = ()
    rendition_of: OptionalId = None
    layer: OptionalLayer = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantInfo(f.Record):
    """A participant in a room and the tracks it publishes."""

    sid: Id
    identity: Id
    name: HumanName = ""
    joined_at: Time
    tracks: Annotated[tuple[TrackInfo, ...], f.Array(TrackInfo)] = ()
    reconnecting: Flag = False
    network_quality: QualityLevel = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoomInfo(f.Record):
    """The room a connection joined."""

    sid: Id
    name: Id
    status: Id
    max_participants: ParticipantLimit


@dataclasses.dataclass(frozen=True, kw_only=True)
class GrantsInfo(f.Record):
    """What the participant's token allows in the room."""

    room: Id
    join: Flag
    publish: Flag
    subscribe: Flag
    publish_data: Flag
    host: Flag
    hidden: Flag



@dataclasses.dataclass(frozen=True, kw_only=True)
class IceServer(f.Record):
    """A STUN or TURN server the client's peer connection may use (from the server's media config).

    For `[media] turn_urls` the username and credential are this participant's own TURN REST credentials
    ("{expiry}:{participant sid}" and its HMAC), made fresh for every join.
    """

    urls: Text
    username: Name = ""
    credential: Secret = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransceiverInfo(f.Record):
    """What one m-line of a server offer carries: the client's publication or one of its subscriptions."""

    mid: Id
    direction: Direction
    track_sid: Id
    participant_sid: Id
    kind: Kind
    cid: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpeakerInfo(f.Record):
    """One speaking participant, with its audio level from 0 (silence) to 1 (loudest)."""

    participant_sid: Id
    identity: Id
    level: Level



@dataclasses.dataclass(frozen=True, kw_only=True)
class LinkQuality(f.Record):
    """One direction of a participant's link as the SFU measures it: its level, loss fraction, jitter, round trip."""

    level: QualityLevel = None
    loss: OptionalNumber = None
    jitter_ms: OptionalNumber = None
    rtt_ms: OptionalNumber = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetworkQualityInfo(f.Record):
    """A participant's network quality level (the worse of its two directions) and each direction's measures."""

    participant_sid: Id
    level: QualityLevel = None
    uplink: Annotated[LinkQuality | None, f.Object(LinkQuality, nullable=True)] = None
    downlink: Annotated[LinkQuality | None, f.Object(LinkQuality, nullable=True)] = None
