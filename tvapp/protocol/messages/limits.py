"""Signaling v1's limits and field rules: every size cap, choice and annotated field type the messages use.

Each field's rule is written once, here, as an annotation built from tvapp.protocol.fields (``Id``, ``Sdp``,
``HumanName``...); the records (values.py) and messages (client.py, server.py) only name these types.
"""

from typing import Annotated, Final, Literal, TypeAlias, get_args

from tvapp.core.playback import ACTIONS, CONTROLS, MAX_CONTENT_CHARS, MAX_TITLE_CHARS, ON_STALL
from tvapp.core.playback import Action as PlaybackAction
from tvapp.core.playback import Control as PlaybackControl
from tvapp.core.playback import OnStall as PlaybackOnStall
from tvapp.core.text import MAX_NAME_CHARS
from tvapp.protocol import fields as f

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
