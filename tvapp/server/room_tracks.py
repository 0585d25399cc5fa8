"""Tracks in the room manager: publishing (renditions too), unpublishing, muting and subscribing.

A mixin of tvapp.server.rooms.RoomManager: each action checks the participant's grants and limits, records the change
on its LiveParticipant, tells the room over signaling, and hands the media side (MediaHooks) and webhooks their part.
"""

from __future__ import annotations

from dataclasses import replace as _replace
from typing import TYPE_CHECKING, Any

from tvapp.core.codes import new_id
from tvapp.protocol.messages import (
    RenditionLayer,
    TrackInfo,
    TrackKind,
    TrackMuted,
    TrackPublished,
    TrackSource,
    TrackUnmuted,
    TrackUnpublished,
)
from tvapp.server.live import LiveParticipant, LiveRoom, MediaHooks, RoomError
from tvapp.server.store import RoomRow

MAX_TRACKS_PER_PARTICIPANT = 16


class RoomTracks:
    """The track half of RoomManager (tvapp.server.rooms), which provides the attributes declared here."""

    media: MediaHooks

    if TYPE_CHECKING:
        def emit(self, event: str, row: RoomRow, participant: LiveParticipant | dict[str, Any] | None = None,
                 **parts: Any) -> None: ...

        def room_of(self, participant: LiveParticipant) -> LiveRoom | None: ...

    def publish(self, participant: LiveParticipant, cid: str, kind: TrackKind, source: TrackSource, name: str,
                muted: bool, rendition_of: str | None = None, layer: RenditionLayer | None = None) -> TrackInfo:
        """Record a track a participant publishes and announce it (a rendition: to its publisher alone)."""
        live = self._require_room(participant)
        if not participant.grants.publish or participant.hidden:
            raise RoomError("not_allowed", "your token does not allow publishing")
        if len(participant.tracks) + len(participant.renditions) >= MAX_TRACKS_PER_PARTICIPANT:
            raise RoomError("too_many_tracks", f"at most {MAX_TRACKS_PER_PARTICIPANT} tracks per participant")
        if rendition_of is not None:
            return self._publish_rendition(participant, cid, kind, name, rendition_of, layer or "low")
        track = TrackInfo(sid=new_id("TR"), kind=kind, source=source, name=name, muted=muted)
        participant.set_track(track)
        participant.peer.send(TrackPublished(participant_sid=participant.sid, track=track, cid=cid))
        live.broadcast(TrackPublished(participant_sid=participant.sid, track=track, cid=None), exclude=participant)
        self.media.track_published(live, participant, track, cid)
        self.emit("track_published", live.row, participant, track=track.to_json())
        return track

    def _publish_rendition(self, participant: LiveParticipant, cid: str, kind: TrackKind, name: str,
                           main_sid: str, layer: RenditionLayer) -> TrackInfo:
        """Record a rendition of one of the participant's video tracks: only its publisher hears of it (the room
        sees it in the main track's `renditions`, in rosters and REST); the SFU sends it in the main one's place."""
        live = self._require_room(participant)
        main = participant.tracks.get(main_sid)
        if main is None:
            raise RoomError("track_not_found", "rendition_of names none of your tracks")
        if main.kind != "video" or kind != "video":
            raise RoomError("not_video", "only a video track has renditions, and they are video")
        if any(r.layer == layer for r in main.renditions):
            raise RoomError("rendition_exists", f"that track already has a {layer!r} rendition")
        rendition = TrackInfo(sid=new_id("TR"), kind="video", source=main.source, name=name,
                              rendition_of=main_sid, layer=layer)
        participant.add_rendition(rendition)
        participant.peer.send(TrackPublished(participant_sid=participant.sid, track=rendition, cid=cid))
        self.media.track_published(live, participant, rendition, cid)
        return rendition

    def unpublish(self, participant: LiveParticipant, track_sid: str) -> None:
        """Withdraw one of a participant's tracks (with its renditions) or renditions, and announce a track's end."""
        live = self._require_room(participant)
        if participant.drop_rendition(track_sid) is not None:
            self.media.track_unpublished(live, participant, track_sid)
            return
        track = participant.tracks.get(track_sid)
        for rendition in track.renditions if track is not None else ():
            participant.drop_rendition(rendition.sid)
            self.media.track_unpublished(live, participant, rendition.sid)
        track = participant.drop_track(track_sid)
        if track is None:
            raise RoomError("track_not_found", "you have no track with that sid")
        self.emit("track_unpublished", live.row, participant, track=track.to_json())
        live.broadcast(TrackUnpublished(participant_sid=participant.sid, track_sid=track_sid))
        self.media.track_unpublished(live, participant, track_sid)

    def set_muted(self, live: LiveRoom, participant: LiveParticipant, track_sid: str, muted: bool,
                  *, by_server: bool) -> TrackInfo:
        """Mute or unmute a published track and tell everyone, the publisher included."""
        track = participant.tracks.get(track_sid)
        if track is None:
            raise RoomError("track_not_found", f"{participant.identity!r} has no track {track_sid!r}")
        if track.muted != muted:
            track = _replace(track, muted=muted)
            participant.set_track(track)
        self.media.track_muted(live, participant, track)
        cls = TrackMuted if muted else TrackUnmuted
        live.broadcast(cls(participant_sid=participant.sid, track_sid=track_sid, by_server=by_server))
        return track

    def set_subscribed(self, participant: LiveParticipant, track_sid: str, subscribed: bool) -> None:
        """Record a participant's choice to receive a track or not (the SFU acts on it)."""
        live = self._require_room(participant)
        if subscribed and not participant.grants.subscribe:
            raise RoomError("not_allowed", "your token does not allow subscribing")
        if not any(track_sid in p.tracks for p in live.participants.values() if p is not participant):
            raise RoomError("track_not_found", "no other participant publishes that track")
        if subscribed:
            participant.unsubscribed.discard(track_sid)
        else:
            participant.unsubscribed.add(track_sid)
        self.media.subscription_changed(live, participant, track_sid, subscribed)

    def _require_room(self, participant: LiveParticipant) -> LiveRoom:
        live = self.room_of(participant)
        if live is None:
            raise RoomError("not_joined", "you are not in a room")
        return live
