"""Signaling messages (protocol version 1): frozen dataclasses shared by the server and the SDK, and their codec.

Every message on the wire is a JSON object with ``"type"`` and ``"v": 1``; field names are snake_case. Unknown extra
fields are ignored so that newer peers can add fields; a missing required field, a wrong JSON type or an
out-of-range value is a :class:`ProtocolError` whose message names the field and never repeats the value. Names and
titles people read (participant and track names, content titles) follow tvapp.core.text's rule; a name that breaks
it is refused with ``invalid_name``.

Each field's rule is written once, in its annotation (``sid: Id``), with the rules of tvapp.protocol.fields, and the
envelope is that module's ``Envelope``. This module is the whole vocabulary of signaling v1, both directions, which
is why it stays one piece (~500 lines): the two directions share their value types and the offer, answer and
candidate messages, and a reader wants the messages of one protocol version side by side.
"""

import dataclasses
from collections.abc import Mapping
from typing import Annotated, ClassVar, Final, Literal, Self, TypeAlias, get_args

from tvapp.core.playback import ACTIONS, CONTROLS, MAX_CONTENT_CHARS, MAX_TITLE_CHARS, ON_STALL, PlaybackState
from tvapp.core.playback import Action as PlaybackAction
from tvapp.core.playback import Control as PlaybackControl
from tvapp.core.playback import OnStall as PlaybackOnStall
from tvapp.core.text import MAX_NAME_CHARS
from tvapp.protocol import fields as f
from tvapp.protocol.fields import BAD_MESSAGE as BAD_MESSAGE
from tvapp.protocol.fields import UNSUPPORTED_VERSION as UNSUPPORTED_VERSION
from tvapp.protocol.fields import Envelope
from tvapp.protocol.fields import ProtocolError as ProtocolError
from tvapp.protocol.fields import UnknownMessageType as UnknownMessageType

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
MAX_RESUME_TOKEN_CHARS: Final = 128
MAX_MEDIA_GENERATION: Final = 2**31
MAX_VIDEO_PIXELS: Final = 16_384  # the largest width or height track_settings / publish_constraints carry
MAX_FRAMERATE: Final = 240
MAX_BITRATE_BPS: Final = 1_000_000_000

MESSAGE_TOO_BIG: Final = "message_too_big"
DATA_TOO_BIG: Final = "data_too_big"

TrackKind: TypeAlias = Literal["audio", "video"]
TrackSource: TypeAlias = Literal["camera", "microphone", "screen", "screen_audio", "content", "unknown"]
TransceiverDirection: TypeAlias = Literal["publish", "subscribe"]
TRACK_KINDS: Final[tuple[str, ...]] = get_args(TrackKind)
TRANSCEIVER_DIRECTIONS: Final[tuple[str, ...]] = get_args(TransceiverDirection)
TRACK_SOURCES: Final[tuple[str, ...]] = get_args(TrackSource)
TrackPriority: TypeAlias = Literal["low", "standard", "high"]
TRACK_PRIORITIES: Final[tuple[str, ...]] = get_args(TrackPriority)
# Simulcast by two tracks (tvapp.core.simulcast): the layer of a rendition a publisher sends next to a video track.
RenditionLayer: TypeAlias = Literal["low"]
RENDITION_LAYERS: Final[tuple[str, ...]] = get_args(RenditionLayer)


Token = Annotated[str, f.Text(MAX_TOKEN_BYTES, in_bytes=True, nonempty=True)]
Sdp = Annotated[str, f.Text(MAX_SDP_BYTES, in_bytes=True, nonempty=True)]
CandidateLine = Annotated[str, f.Text(MAX_CANDIDATE_BYTES, in_bytes=True)]
Id = Annotated[str, f.Text(MAX_ID_CHARS, nonempty=True)]
OptionalId = Annotated[str | None, f.Text(MAX_ID_CHARS, nullable=True)]
Name = Annotated[str, f.Text(MAX_ID_CHARS)]
# A name people read: tvapp.core.text's rule, refused with invalid_name.
HumanName = Annotated[str, f.Text(MAX_NAME_CHARS, human=True, too_long_code=f.INVALID_NAME)]
Text = Annotated[str, f.Text(MAX_TEXT_CHARS)]
Kind = Annotated[TrackKind, f.Choice(TRACK_KINDS)]
Source = Annotated[TrackSource, f.Choice(TRACK_SOURCES)]
Flag = Annotated[bool, f.Bool()]
Time = Annotated[float, f.Number()]
OptionalTime = Annotated[float | None, f.Number(nullable=True)]
Interval = Annotated[float, f.Number(positive=True)]
ParticipantLimit = Annotated[int, f.Integer(1, MAX_PARTICIPANTS_LIMIT)]
MLineIndex = Annotated[int | None, f.Integer(0, MAX_MLINE_INDEX, nullable=True)]
Direction = Annotated[TransceiverDirection, f.Choice(TRANSCEIVER_DIRECTIONS)]
Level = Annotated[float, f.Number()]
# A network quality level on Twilio's scale (tvapp.core.quality): 5 excellent .. 1 bad, 0 broken; null unknown.
QualityLevel = Annotated[int | None, f.Integer(0, 5, nullable=True)]
OptionalNumber = Annotated[float | None, f.Number(nullable=True)]
DataPayload = Annotated[str, f.Text(MAX_DATA_BYTES, in_bytes=True, too_long_code=DATA_TOO_BIG)]
Identities = Annotated[tuple[str, ...], f.TextArray(f.Text(MAX_ID_CHARS, nonempty=True), MAX_DATA_RECIPIENTS)]
Secret = Annotated[str, f.Text(MAX_TEXT_CHARS)]
ActionName = Annotated[PlaybackAction, f.Choice(ACTIONS)]
OptionalContent = Annotated[str | None, f.Text(MAX_CONTENT_CHARS, nullable=True)]
Content = Annotated[str, f.Text(MAX_CONTENT_CHARS)]
Title = Annotated[str, f.Text(MAX_TITLE_CHARS, human=True, too_long_code=f.INVALID_NAME)]
ControlName = Annotated[PlaybackControl, f.Choice(CONTROLS)]
OnStallName = Annotated[PlaybackOnStall, f.Choice(ON_STALL)]
OptionalChoice = Annotated[str | None, f.Text(MAX_ID_CHARS, nullable=True)]
Seq = Annotated[int, f.Integer(0, 2**53)]
# The opaque secret `joined` gives for taking the participant over from a new connection (tvapp.core.reconnect).
ResumeToken = Annotated[str | None, f.Text(MAX_RESUME_TOKEN_CHARS, nullable=True)]
Generation = Annotated[int, f.Integer(0, MAX_MEDIA_GENERATION)]
# Adaptive stream (tvapp.core.adaptive): a rendered size in pixels, a subscriber's priority, a publisher's limits.
Pixels = Annotated[int, f.Integer(0, MAX_VIDEO_PIXELS)]
OptionalPixels = Annotated[int | None, f.Integer(1, MAX_VIDEO_PIXELS, nullable=True)]
OptionalFramerate = Annotated[int | None, f.Integer(1, MAX_FRAMERATE, nullable=True)]
OptionalBitrate = Annotated[int | None, f.Integer(1, MAX_BITRATE_BPS, nullable=True)]
PriorityName = Annotated[TrackPriority, f.Choice(TRACK_PRIORITIES)]
LayerName = Annotated[RenditionLayer, f.Choice(RENDITION_LAYERS)]
OptionalLayer = Annotated[RenditionLayer | None, f.Choice(RENDITION_LAYERS, nullable=True)]


# --- shared value types ----------------------------------------------------------------------------------------


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


# --- client -> server (offer, answer and candidate go both ways) ----------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Join(f.Message):
    """Ask to join the room named in the token; the first message on every connection."""

    TYPE: ClassVar[str] = "join"
    token: Token = dataclasses.field(repr=False)
    auto_subscribe: Flag = True
    # With the resume token of a participant this identity has in the room: take it over (same sid, same tracks).
    resume_token: ResumeToken = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Offer(f.Message):
    """Carry an SDP offer; from the server it lists what each m-line carries (``transceivers``)."""

    TYPE: ClassVar[str] = "offer"
    sdp: Sdp
    transceivers: Annotated[tuple[TransceiverInfo, ...], f.Array(TransceiverInfo)] = ()
    generation: Generation = 0  # the media_restart this offer's peer connection answers (0: the first one)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Answer(f.Message):
    """Carry an SDP answer."""

    TYPE: ClassVar[str] = "answer"
    sdp: Sdp


@dataclasses.dataclass(frozen=True, kw_only=True)
class Candidate(f.Message):
    """Carry one trickled ICE candidate; an empty candidate means no more candidates."""

    TYPE: ClassVar[str] = "candidate"
    candidate: CandidateLine
    sdp_mid: OptionalId = None
    sdp_mline_index: MLineIndex = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Publish(f.Message):
    """Announce a track the client is about to send; ``cid`` is the client's own id for it.

    ``rendition_of``: the sid of one of the client's video tracks this one is a second, lower-resolution encode of
    (``layer``, "low" by default; simulcast by two tracks): it is not announced to the room as a track, and the SFU
    sends it to a subscriber in place of the main track while that subscriber's link cannot carry the main one.
    The SFU pauses it (``publish_constraints`` ``paused``) while no subscriber needs it."""

    TYPE: ClassVar[str] = "publish"
    cid: Id
    kind: Kind
    source: Source
    name: HumanName = ""
    muted: Flag = False
    rendition_of: OptionalId = None
    layer: OptionalLayer = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Unpublish(f.Message):
    """Stop publishing a track."""

    TYPE: ClassVar[str] = "unpublish"
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Subscribe(f.Message):
    """Start receiving a track."""

    TYPE: ClassVar[str] = "subscribe"
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Unsubscribe(f.Message):
    """Stop receiving a track."""

    TYPE: ClassVar[str] = "unsubscribe"
    track_sid: Id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Mute(f.Message):
    """Mute or unmute one of the client's own tracks."""

    TYPE: ClassVar[str] = "mute"
    track_sid: Id
    muted: Flag


@dataclasses.dataclass(frozen=True, kw_only=True)
class Leave(f.Message):
    """Leave the room; the server closes the connection after it."""

    TYPE: ClassVar[str] = "leave"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ping(f.Message):
    """Keep the connection alive; ``t0`` is the client's clock when sent, for clock sync; ``id`` (the client's own)
    comes back in the pong, so a client can wait for the answer to one ping (the server answers in order)."""

    TYPE: ClassVar[str] = "ping"
    t0: OptionalTime = None
    id: OptionalId = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SendData(f.Message):
    """Send a data message to the room, or only to the participants with the identities in ``to``."""

    TYPE: ClassVar[str] = "send_data"
    payload: DataPayload
    topic: Name = ""
    to: Identities = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Playback(f.Message):
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
class Buffering(f.Message):
    """Tell the room this screen stalled (``stalled``) or is ready again; ``duration`` once it knows it; ``hold``
    (live) how far behind the room's live edge this screen can hold (tvapp.core.live.HoldMeter)."""

    TYPE: ClassVar[str] = "buffering"
    stalled: Flag
    position: OptionalTime = None
    duration: OptionalTime = None
    hold: OptionalTime = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class MediaRestart(f.Message):
    """Ask for a fresh peer connection in the same session (the media path died); tracks keep their sids.

    `generation` counts the client's restarts (1, 2, ...): the server's offers for the new peer connection carry it,
    so offers still on their way for the old one can be told apart and ignored."""

    TYPE: ClassVar[str] = "media_restart"
    generation: Generation


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackSettings(f.Message):
    """Tell the SFU how this subscriber shows another participant's video track (adaptive stream).

    ``width`` x ``height`` is the size it is rendered at in device pixels (0 x 0: unknown, so the full size);
    an invisible track (``visible: false``) is not forwarded to this subscriber until it is visible again.
    ``priority`` says how much this subscriber cares (``high``: the full frame rate even in a small tile).
    Unknown ``sid``: error ``track_not_found``; an audio track: error ``not_video``."""

    TYPE: ClassVar[str] = "track_settings"
    sid: Id
    width: Pixels
    height: Pixels
    visible: Flag = True
    priority: PriorityName = "standard"


# --- server -> client ------------------------------------------------------------------------------------------


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

