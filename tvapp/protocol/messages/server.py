"""Signaling v1's server -> client messages (the server also sends offer, answer and candidate: see client.py).

Each is a frozen dataclass whose ``TYPE`` is its wire name; the registry and codec are in __init__.py.
"""

import dataclasses
from typing import Annotated, ClassVar

from tvapp.core.playback import PlaybackState
from tvapp.protocol import fields as f
from tvapp.protocol.messages.limits import (
    Content,
    ControlName,
    DataPayload,
    Flag,
    Id,
    Identities,
    Interval,
    Name,
    OnStallName,
    OptionalBitrate,
    OptionalFramerate,
    OptionalId,
    OptionalPixels,
    OptionalTime,
    ResumeToken,
    Seq,
    Text,
    Time,
    Title,
)
from tvapp.protocol.messages.values import (
    GrantsInfo,
    IceServer,
    NetworkQualityInfo,
    ParticipantInfo,
    RoomInfo,
    SpeakerInfo,
    TrackInfo,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Joined(f.Message):
    """Tell the client it is in the room, who else is there and how often to ping."""

    TYPE: ClassVar[str] = "joined"
    room: Annotated[RoomInfo, f.Object(RoomInfo)]
    participant: Annotated[ParticipantInfo, f.Object(ParticipantInfo)]
    grants: Annotated[GrantsInfo, f.Object(GrantsInfo)]
    participants: Annotated[tuple[ParticipantInfo, ...], f.Array(ParticipantInfo)] = ()
    server_time: Time
    ping_interval: Interval
    idle_timeout: Interval
    ice_servers: Annotated[tuple[IceServer, ...], f.Array(IceServer)] = ()
    # Send it in a later join (with an access token of the same identity) to take this participant over after a drop.
    resume_token: ResumeToken = dataclasses.field(default=None, repr=False)
    resumed: Flag = False  # this join took over a participant that was reconnecting: same sid, tracks, subscriptions


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantJoined(f.Message):
    """Tell that a participant joined."""

    TYPE: ClassVar[str] = "participant_joined"
    participant: Annotated[ParticipantInfo, f.Object(ParticipantInfo)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantLeft(f.Message):
    """Tell that a participant left, and why."""

    TYPE: ClassVar[str] = "participant_left"
    participant_sid: Id
    identity: Id
    reason: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantReconnecting(f.Message):
    """Tell that a participant's signaling or media dropped: it keeps its place for the grace window."""

    TYPE: ClassVar[str] = "participant_reconnecting"
    participant_sid: Id
    identity: Id
    cause: Name = ""  # "signal" (its websocket dropped) or "media" (its media path went dead)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParticipantReconnected(f.Message):
    """Tell that a reconnecting participant is back (same sid, same tracks)."""

    TYPE: ClassVar[str] = "participant_reconnected"
    participant_sid: Id
    identity: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackPublished(f.Message):
    """Tell that a track was published; ``cid`` is set only in the copy sent to the publisher."""

    TYPE: ClassVar[str] = "track_published"
    participant_sid: Id
    track: Annotated[TrackInfo, f.Object(TrackInfo)]
    cid: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackUnpublished(f.Message):
    """Tell that a track is gone."""

    TYPE: ClassVar[str] = "track_unpublished"
    participant_sid: Id
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackMuted(f.Message):
    """Tell that a track was muted, by its publisher or by the server."""

    TYPE: ClassVar[str] = "track_muted"
    participant_sid: Id
    track_sid: Id
    by_server: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackUnmuted(f.Message):
    """Tell that a track was unmuted."""

    TYPE: ClassVar[str] = "track_unmuted"
    participant_sid: Id
    track_sid: Id
    by_server: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class UnmuteRequest(f.Message):
    """Ask the client to unmute one of its tracks (POST .../actions/unmute); it may decline: the server never
    switches a microphone on. To accept, the client sends ``mute`` with ``muted: false``."""

    TYPE: ClassVar[str] = "unmute_request"
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Removed(f.Message):
    """Tell the client it was removed from the room; the server closes the connection next."""

    TYPE: ClassVar[str] = "removed"
    reason: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoomCompleted(f.Message):
    """Tell that the room was completed."""

    TYPE: ClassVar[str] = "room_completed"
    room_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Error(f.Message):
    """Report an error; ``code`` is stable and machine-readable, ``message`` is for people."""

    TYPE: ClassVar[str] = "error"
    code: Id
    message: Text = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pong(f.Message):
    """Answer a ping: ``t0`` and ``id`` as the ping carried them, ``t1`` the server's clock at receipt, ``t2`` when
    sent."""

    TYPE: ClassVar[str] = "pong"
    t0: OptionalTime = None
    t1: Time
    t2: Time
    id: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ActiveSpeakers(f.Message):
    """Who is speaking now, loudest first, and the dominant speaker (sent on change)."""

    TYPE: ClassVar[str] = "active_speakers"
    speakers: Annotated[tuple[SpeakerInfo, ...], f.Array(SpeakerInfo)] = ()
    dominant_sid: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetworkQuality(f.Message):
    """Network quality levels of the room's participants (sent when one changes, and every few seconds)."""

    TYPE: ClassVar[str] = "network_quality"
    levels: Annotated[tuple[NetworkQualityInfo, ...], f.Array(NetworkQualityInfo)] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackSwitchedOff(f.Message):
    """Tell one subscriber that the SFU stopped sending it video track `sid`; reason "congestion": its downlink
    cannot carry everything (tvapp.core.congestion). The track stays subscribed; `track_switched_on` follows."""

    TYPE: ClassVar[str] = "track_switched_off"
    sid: Id
    reason: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackSwitchedOn(f.Message):
    """Tell one subscriber that the SFU sends it video track `sid` again (from a keyframe)."""

    TYPE: ClassVar[str] = "track_switched_on"
    sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class PublishConstraints(f.Message):
    """Tell a publisher what its video track ``sid`` needs to be, from what its subscribers show (dynacast).

    Scale the picture to fit ``max_width`` x ``max_height`` (keeping its shape; null: no limit), send at most
    ``max_framerate`` frames and ``max_bitrate`` bits per second (null: no limit); ``paused``: nobody shows it,
    send nothing until constraints without ``paused`` come. Sent when they change (tvapp.core.adaptive's gate)."""

    TYPE: ClassVar[str] = "publish_constraints"
    sid: Id
    max_width: OptionalPixels = None
    max_height: OptionalPixels = None
    max_framerate: OptionalFramerate = None
    max_bitrate: OptionalBitrate = None
    paused: Flag = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Data(f.Message):
    """A data message from another participant."""

    TYPE: ClassVar[str] = "data"
    from_sid: Id
    from_identity: Id
    topic: Name = ""
    payload: DataPayload


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlaybackStateMsg(f.Message):
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
    live: Flag = False
    live_edge: OptionalTime = None
    delay: Time = 0.0
    window: Time = 0.0
    program_date_time: Flag = True
    server_time: Time

    @classmethod
    def of(cls, state: PlaybackState, server_time: float) -> "PlaybackStateMsg":
        """Return the message for `state`, sent at server time `server_time`."""
        fields = {field.name: getattr(state, field.name) for field in dataclasses.fields(PlaybackState)}
        return cls(**fields, server_time=server_time)

    def state(self) -> PlaybackState:
        """Return the timeline this message carries."""
        return PlaybackState(**{field.name: getattr(self, field.name) for field in dataclasses.fields(PlaybackState)})
