"""What a Room tells its user: one frozen dataclass per event, each with a stable snake_case ``NAME``.

Get them with ``room.on(TrackSubscribed, callback)`` (or ``room.on("track_subscribed", ...)``) or
``async for event in room.events()``. Events carry the live SDK objects (participants, publications,
tracks) so a handler can act on them; those objects keep changing after the event, the event does not.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar, TypeAlias

if TYPE_CHECKING:
    from tvapp.core.playback import PlaybackState
    from tvapp.protocol import messages as m
    from tvapp.client.participants import (
        LocalParticipant,
        LocalTrackPublication,
        RemoteParticipant,
        RemoteTrack,
        RemoteTrackPublication,
    )

    Participant: TypeAlias = "RemoteParticipant | LocalParticipant"
    Publication: TypeAlias = "RemoteTrackPublication | LocalTrackPublication"


@dataclasses.dataclass(frozen=True)
class RoomEvent:
    """Base of every room event."""

    NAME: ClassVar[str] = "event"


@dataclasses.dataclass(frozen=True)
class Connected(RoomEvent):
    """The room is joined: ``participant`` is this client, ``room.participants`` lists the others already there."""

    NAME: ClassVar[str] = "connected"
    room_name: str
    room_sid: str
    participant: LocalParticipant


@dataclasses.dataclass(frozen=True)
class Disconnected(RoomEvent):
    """The room is left for good.

    ``reason``: client_initiated, removed, room_completed, replaced, token_revoked, reconnect_failed.
    """

    NAME: ClassVar[str] = "disconnected"
    reason: str


@dataclasses.dataclass(frozen=True)
class Reconnecting(RoomEvent):
    """This client's connection is being repaired; the room keeps its place for the server's grace window.

    ``reason``: "signal" (the websocket dropped: the room resumes the same participant with its resume token, media
    keeps flowing if it can; Twilio's 53001) or "media" (no packets for ~2 s, or ICE/DTLS failed: the room negotiates a
    fresh peer connection in the same session; Twilio's 53405).
    """

    NAME: ClassVar[str] = "reconnecting"
    reason: str = "signal"


@dataclasses.dataclass(frozen=True)
class Reconnected(RoomEvent):
    """The connection that `reason` names ("signal" or "media") is back.

    ``resumed``: the same participant (same sid, same track sids) carried on; False after a full rejoin (the server
    had let it go: a new participant sid, local tracks republished under new sids).
    """

    NAME: ClassVar[str] = "reconnected"
    reason: str = "signal"
    resumed: bool = True


@dataclasses.dataclass(frozen=True)
class ParticipantReconnecting(RoomEvent):
    """Another participant's connection dropped (``cause``: "signal" or "media"); it keeps its place for now."""

    NAME: ClassVar[str] = "participant_reconnecting"
    participant: RemoteParticipant
    cause: str = ""


@dataclasses.dataclass(frozen=True)
class ParticipantReconnected(RoomEvent):
    """A reconnecting participant is back, with the same sid and tracks."""

    NAME: ClassVar[str] = "participant_reconnected"
    participant: RemoteParticipant


@dataclasses.dataclass(frozen=True)
class ParticipantJoined(RoomEvent):
    """Another participant joined."""

    NAME: ClassVar[str] = "participant_joined"
    participant: RemoteParticipant


@dataclasses.dataclass(frozen=True)
class ParticipantLeft(RoomEvent):
    """Another participant left (``reason`` as the server gave it: left, disconnected, removed, replaced...)."""

    NAME: ClassVar[str] = "participant_left"
    participant: RemoteParticipant
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class TrackPublished(RoomEvent):
    """Another participant published a track (subscription, if any, follows as TrackSubscribed)."""

    NAME: ClassVar[str] = "track_published"
    track: RemoteTrackPublication
    participant: RemoteParticipant


@dataclasses.dataclass(frozen=True)
class TrackUnpublished(RoomEvent):
    """Another participant withdrew a track."""

    NAME: ClassVar[str] = "track_unpublished"
    track: RemoteTrackPublication
    participant: RemoteParticipant


@dataclasses.dataclass(frozen=True)
class TrackSubscribed(RoomEvent):
    """Media of a remote track is arriving: ``await event.track.recv()`` returns decoded av frames."""

    NAME: ClassVar[str] = "track_subscribed"
    track: RemoteTrack
    participant: RemoteParticipant
    publication: RemoteTrackPublication


@dataclasses.dataclass(frozen=True)
class TrackUnsubscribed(RoomEvent):
    """A subscription ended (unsubscribed, unpublished, the publisher left or the connection was renewed)."""

    NAME: ClassVar[str] = "track_unsubscribed"
    track: RemoteTrack
    participant: RemoteParticipant
    publication: RemoteTrackPublication


@dataclasses.dataclass(frozen=True)
class TrackMuted(RoomEvent):
    """A track was muted, by its publisher or by the server (``by_server``); ``participant`` may be this client."""

    NAME: ClassVar[str] = "track_muted"
    track: Publication
    participant: Participant
    by_server: bool = False


@dataclasses.dataclass(frozen=True)
class TrackUnmuted(RoomEvent):
    """A track was unmuted; ``participant`` may be this client."""

    NAME: ClassVar[str] = "track_unmuted"
    track: Publication
    participant: Participant
    by_server: bool = False


@dataclasses.dataclass(frozen=True)
class UnmuteRequested(RoomEvent):
    """The server asks this client to unmute one of its tracks (a room-session unmute action).

    Nothing happens unless the app agrees: call ``await event.accept()`` to unmute; ignoring the event declines
    (the server never switches a microphone on).
    """

    NAME: ClassVar[str] = "unmute_requested"
    track: LocalTrackPublication

    async def accept(self) -> None:
        """Unmute the track: lift the server's mute and send the frames again."""
        self.track.set_server_muted(False)
        await self.track.unmute()


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One speaking participant in an ActiveSpeakersChanged event; ``level`` is 0..1."""

    participant_sid: str
    identity: str
    level: float
    participant: Participant | None


@dataclasses.dataclass(frozen=True)
class ActiveSpeakersChanged(RoomEvent):
    """Who speaks now, loudest first, and the dominant speaker (None before anyone spoke)."""

    NAME: ClassVar[str] = "active_speakers_changed"
    speakers: tuple[Speaker, ...]
    dominant: Participant | None


@dataclasses.dataclass(frozen=True)
class NetworkQualityChanged(RoomEvent):
    """A participant's network quality level changed (this client's own too): 5 excellent .. 1 bad, 0 broken.

    ``uplink`` and ``downlink`` are the SFU's measures of each direction (level, loss, jitter_ms, rtt_ms)."""

    NAME: ClassVar[str] = "network_quality_changed"
    participant: Participant
    level: int | None
    previous: int | None
    uplink: m.LinkQuality | None
    downlink: m.LinkQuality | None


@dataclasses.dataclass(frozen=True)
class TrackSwitchedOff(RoomEvent):
    """The SFU stopped sending this client a subscribed video track; ``reason`` "congestion": this client's
    downlink cannot carry everything (the track stays subscribed; TrackSwitchedOn follows when it can)."""

    NAME: ClassVar[str] = "track_switched_off"
    track: RemoteTrackPublication
    participant: RemoteParticipant
    reason: str


@dataclasses.dataclass(frozen=True)
class TrackSwitchedOn(RoomEvent):
    """The SFU sends this client a video track it had switched off again (from a keyframe)."""

    NAME: ClassVar[str] = "track_switched_on"
    track: RemoteTrackPublication
    participant: RemoteParticipant


@dataclasses.dataclass(frozen=True)
class DataReceived(RoomEvent):
    """A data message from another participant (``participant`` is None if it already left)."""

    NAME: ClassVar[str] = "data_received"
    payload: str
    topic: str
    participant: RemoteParticipant | None
    identity: str


@dataclasses.dataclass(frozen=True)
class Error(RoomEvent):
    """The server reported an error that no pending call of this client was waiting for."""

    NAME: ClassVar[str] = "error"
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class PlaybackChanged(RoomEvent):
    """The room's shared content timeline changed (or was first learnt after joining): see ``Room.playback``."""

    NAME: ClassVar[str] = "playback_changed"
    state: PlaybackState


EVENT_TYPES: tuple[type[RoomEvent], ...] = (
    Connected, Disconnected, Reconnecting, Reconnected, ParticipantJoined, ParticipantLeft, ParticipantReconnecting,
    ParticipantReconnected, TrackPublished, TrackUnpublished, TrackSubscribed, TrackUnsubscribed, TrackMuted,
    TrackUnmuted, UnmuteRequested, ActiveSpeakersChanged, NetworkQualityChanged, DataReceived, Error, PlaybackChanged,
    TrackSwitchedOff, TrackSwitchedOn,
)  # fmt: skip
EVENTS_BY_NAME: dict[str, type[RoomEvent]] = {cls.NAME: cls for cls in EVENT_TYPES}


def event_type(event: str | type[RoomEvent]) -> type[RoomEvent]:
    """Return the event class for a class or its NAME; raise ValueError for an unknown name."""
    if isinstance(event, str):
        try:
            return EVENTS_BY_NAME[event]
        except KeyError:
            raise ValueError(f"unknown room event {event!r}; known: {', '.join(EVENTS_BY_NAME)}") from None
    if isinstance(event, type) and issubclass(event, RoomEvent):
        return event
    raise TypeError("an event is a RoomEvent subclass or its name")
