"""Signaling v1's client -> server messages (offer, answer and candidate go both ways: the server sends them too).

Each is a frozen dataclass whose ``TYPE`` is its wire name; the registry and codec are in __init__.py.
"""

import dataclasses
from typing import Annotated, ClassVar

from tvapp.protocol import fields as f
from tvapp.protocol.messages.limits import (
    ActionName,
    CandidateLine,
    DataPayload,
    Flag,
    Generation,
    HumanName,
    Id,
    Identities,
    Kind,
    MLineIndex,
    Name,
    OptionalChoice,
    OptionalContent,
    OptionalId,
    OptionalLayer,
    OptionalTime,
    Pixels,
    PriorityName,
    ResumeToken,
    Sdp,
    Source,
    Title,
    Token,
)
from tvapp.protocol.messages.values import TransceiverInfo


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
