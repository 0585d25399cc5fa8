"""What is live in a room right now: the connected participants, the open rooms, and what the room manager talks to.

`LiveRoom` and `LiveParticipant` are the in-memory side of a room session (the store keeps the
rest). The room manager (tvapp.server.rooms) changes them; the signaling endpoint, the SFU, the
watch-together timeline and the REST API read them. The manager reaches a participant's socket only
through `Peer`, and the SFU only through `MediaHooks`; `RoomError` is every refusal they share.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Protocol

from tvapp.core.claims import Grants, TokenClaims
from tvapp.core.errors import CodedError
from tvapp.core.owners import Owner
from tvapp.core.playback import PlaybackRoom
from tvapp.core.reconnect import RECONNECT_GRACE_DEFAULT, LinkState, Presence
from tvapp.core.room import EmptyClock, RoomStatus, Roster
from tvapp.protocol.messages import (
    Encoded,
    Error,
    ParticipantInfo,
    RenditionInfo,
    RoomInfo,
    ServerMessage,
    TrackInfo,
)
from tvapp.server.store import RoomRow


class Peer(Protocol):
    """What the manager needs of a participant's signaling connection."""

    def send(self, msg: ServerMessage | Encoded) -> None: ...

    def close(self, code: int, reason: str, error: Error | None = None) -> None: ...


class MediaHooks(Protocol):
    """What the SFU is told about room changes (tvapp.server.media.Sfu implements it)."""

    def participant_left(self, live: LiveRoom, participant: LiveParticipant) -> None: ...

    def track_published(self, live: LiveRoom, participant: LiveParticipant, track: TrackInfo, cid: str) -> None: ...

    def track_unpublished(self, live: LiveRoom, participant: LiveParticipant, track_sid: str) -> None: ...

    def track_muted(self, live: LiveRoom, participant: LiveParticipant, track: TrackInfo) -> None: ...

    def subscription_changed(self, live: LiveRoom, participant: LiveParticipant, track_sid: str,
                             subscribed: bool) -> None: ...


class NoMedia:
    """MediaHooks for a server without an SFU (signaling only): every hook does nothing."""

    def participant_left(self, live: LiveRoom, participant: LiveParticipant) -> None:
        """Do nothing: there is no media to close."""

    def track_published(self, live: LiveRoom, participant: LiveParticipant, track: TrackInfo, cid: str) -> None:
        """Do nothing: no m-line to reserve."""

    def track_unpublished(self, live: LiveRoom, participant: LiveParticipant, track_sid: str) -> None:
        """Do nothing: no forwarding to stop."""

    def track_muted(self, live: LiveRoom, participant: LiveParticipant, track: TrackInfo) -> None:
        """Do nothing: no forwarding to pause."""

    def subscription_changed(self, live: LiveRoom, participant: LiveParticipant, track_sid: str,
                             subscribed: bool) -> None:
        """Do nothing: no subscription to change."""


class RoomError(CodedError):
    """A refused room operation; `code` is the client-visible error code."""


@dataclass(eq=False)
class LiveParticipant:
    """A participant connected to a live room."""

    sid: str
    identity: str
    name: str
    joined_at: float
    claims: TokenClaims
    peer: Peer
    tracks: dict[str, TrackInfo] = field(default_factory=dict)
    renditions: dict[str, TrackInfo] = field(default_factory=dict)  # rendition sid -> it (`rendition_of` set)
    unsubscribed: set[str] = field(default_factory=set)
    presence: Presence = field(default_factory=lambda: Presence(grace=RECONNECT_GRACE_DEFAULT))
    resume_token: str = field(default="", repr=False)  # the secret `joined` carried; a resume must present it
    network_quality: int | None = None  # 0..5 (tvapp.core.quality), set by the SFU's tvapp.server.quality
    _info: ParticipantInfo | None = field(default=None, repr=False)

    @property
    def hidden(self) -> bool:
        """Tell whether it joined unlisted (a recorder, a monitor): not shown, not counted."""
        return self.claims.grants.hidden

    @property
    def owner(self) -> Owner:
        """Return who owns its identity in the room session (tvapp.core.owners): its token's key or guest family."""
        return Owner.of(self.claims.room_sid, self.claims.family, self.claims.grants.hidden)

    @property
    def reconnecting(self) -> bool:
        """Tell whether its signaling or media is down and its grace window running (tvapp.core.reconnect)."""
        return self.presence.state is LinkState.RECONNECTING

    @property
    def grants(self) -> Grants:
        """Return what its token allows in this room."""
        return self.claims.grants

    def info(self) -> ParticipantInfo:
        """Return this participant as the protocol describes it (built once per change of its tracks)."""
        if self._info is None:
            self._info = ParticipantInfo(sid=self.sid, identity=self.identity, name=self.name,
                                         joined_at=self.joined_at, tracks=tuple(self.tracks.values()),
                                         reconnecting=self.reconnecting, network_quality=self.network_quality)
        return self._info

    def changed(self) -> None:
        """Forget the cached description (its reconnecting state or network quality changed)."""
        self._info = None

    def set_track(self, track: TrackInfo) -> None:
        """Add or update one of its tracks."""
        self.tracks[track.sid] = track
        self._info = None

    def drop_track(self, track_sid: str) -> TrackInfo | None:
        """Remove one of its tracks; return it, or None when it had no such track (its renditions stay: drop them)."""
        self._info = None
        return self.tracks.pop(track_sid, None)

    def published(self, sid: str) -> TrackInfo | None:
        """Return one of its tracks or renditions by sid (None: neither)."""
        return self.tracks.get(sid) or self.renditions.get(sid)

    def add_rendition(self, rendition: TrackInfo) -> None:
        """Add a rendition of one of its tracks; the main track's `renditions` names it (KeyError: no such track)."""
        assert rendition.rendition_of is not None and rendition.layer is not None
        main = self.tracks[rendition.rendition_of]
        self.renditions[rendition.sid] = rendition
        self.set_track(replace(main, renditions=(*main.renditions, RenditionInfo(sid=rendition.sid,
                                                                                 layer=rendition.layer))))

    def drop_rendition(self, sid: str) -> TrackInfo | None:
        """Remove one of its renditions (and its name from its main track); return it, or None."""
        rendition = self.renditions.pop(sid, None)
        main = None if rendition is None or rendition.rendition_of is None else self.tracks.get(rendition.rendition_of)
        if main is not None:
            self.set_track(replace(main, renditions=tuple(r for r in main.renditions if r.sid != sid)))
        return rendition


@dataclass(eq=False)
class LiveRoom:
    """A room that is open or in progress."""

    row: RoomRow
    empty: EmptyClock
    roster: Roster = field(default_factory=Roster)
    participants: dict[str, LiveParticipant] = field(default_factory=dict)
    ready: asyncio.Future[None] | None = None
    playback: PlaybackRoom | None = None  # the shared content timeline (tvapp.server.playback), once touched
    owners: dict[str, Owner] = field(default_factory=dict)  # identity -> who owns it this session (core.owners)

    @property
    def status(self) -> RoomStatus:
        """Return where the room is in its life (tvapp.core.room)."""
        return RoomStatus(self.row.status)

    def visible(self) -> list[LiveParticipant]:
        """Return the visible participants in join order."""
        return [self.participants[p.identity] for p in self.roster.visible()]

    def broadcast(self, msg: ServerMessage, *, exclude: LiveParticipant | None = None) -> None:
        """Send `msg` (encoded once) to everyone connected except `exclude`."""
        encoded = Encoded.of(msg)
        for participant in list(self.participants.values()):
            if participant is not exclude:
                participant.peer.send(encoded)

    def info(self) -> RoomInfo:
        """Return the room as the protocol describes it."""
        return RoomInfo(sid=self.row.sid, name=self.row.name, status=self.row.status,
                        max_participants=self.row.max_participants)
