"""The people in a Room as this client knows them: server messages in, participant state and events out.

`Roster` keeps the remote participants (by sid) and their publications up to date from ``joined`` and from the
participant, track, mute and active-speaker messages, and emits the matching events. It owns no media: when a
participant leaves or withdraws a track that this client receives, it asks the Room to end that subscription
(`end_subscription`), so TrackUnsubscribed always comes before TrackUnpublished.

After a rejoin, ``joined`` lists who is there now: participants that left meanwhile are dropped
(ParticipantLeft "disconnected"), new ones announced, and known ones caught up track by track.
"""

from __future__ import annotations

from collections.abc import Callable

from tvapp.client import events as ev
from tvapp.client.participants import LocalParticipant, RemoteParticipant, RemoteTrack, RemoteTrackPublication
from tvapp.protocol import messages as m

ROSTER_MESSAGES = (m.ParticipantJoined, m.ParticipantLeft, m.TrackPublished, m.TrackUnpublished, m.TrackMuted,
                   m.TrackUnmuted, m.ActiveSpeakers, m.NetworkQuality, m.TrackSwitchedOff, m.TrackSwitchedOn)


class Roster:
    """This client and the remote participants, kept in step with the server's messages."""

    def __init__(self, local: LocalParticipant, emit: Callable[[ev.RoomEvent], None],
                 end_subscription: Callable[[RemoteTrack], None]) -> None:
        self.local = local
        self.participants: dict[str, RemoteParticipant] = {}
        self._emit = emit
        self._end_subscription = end_subscription

    def participant(self, sid: str) -> RemoteParticipant | LocalParticipant | None:
        """Return the participant with this sid (this client included), or None."""
        if sid == self.local.sid:
            return self.local
        return self.participants.get(sid)

    def joined(self, joined: m.Joined, *, announce: bool) -> None:
        """Take a (re)join's view of the room; `announce` the participants found (after a rejoin)."""
        me = self.local
        me.sid, me.identity, me.name = joined.participant.sid, joined.participant.identity, joined.participant.name
        me.grants = joined.grants
        current = {info.sid: info for info in joined.participants}
        for sid in [sid for sid in self.participants if sid not in current]:
            self._drop(sid, "disconnected")
        for sid, info in current.items():
            known = self.participants.get(sid)
            if known is not None:
                self._sync_tracks(known, info)
                if known.reconnecting != info.reconnecting:
                    known.reconnecting = info.reconnecting
                    self._emit(ev.ParticipantReconnecting(known, "") if info.reconnecting
                               else ev.ParticipantReconnected(known))
                continue
            participant = self._add(info)
            if announce:
                self._announce(participant)

    def apply(self, msg: m.ServerMessage) -> bool:
        """Apply a participant, track, mute or speaker message; return False for any other message."""
        if isinstance(msg, m.ParticipantJoined):
            self._announce(self._add(msg.participant))
        elif isinstance(msg, m.ParticipantLeft):
            self._drop(msg.participant_sid, msg.reason)
        elif isinstance(msg, (m.ParticipantReconnecting, m.ParticipantReconnected)):
            self._reconnecting(msg)
        elif isinstance(msg, m.TrackPublished):
            self._published(msg)
        elif isinstance(msg, m.TrackUnpublished):
            owner = self.participants.get(msg.participant_sid)
            remote_pub = owner.tracks.pop(msg.track_sid, None) if owner else None
            if owner is not None and remote_pub is not None:
                if remote_pub.track is not None:
                    self._end_subscription(remote_pub.track)
                self._emit(ev.TrackUnpublished(remote_pub, owner))
        elif isinstance(msg, (m.TrackMuted, m.TrackUnmuted)):
            self._mute(msg)
        elif isinstance(msg, m.ActiveSpeakers):
            speakers = tuple(ev.Speaker(s.participant_sid, s.identity, s.level, self.participant(s.participant_sid))
                             for s in msg.speakers)
            dominant = self.participant(msg.dominant_sid) if msg.dominant_sid else None
            self._emit(ev.ActiveSpeakersChanged(speakers, dominant))
        elif isinstance(msg, m.NetworkQuality):
            self._network_quality(msg)
        elif isinstance(msg, (m.TrackSwitchedOff, m.TrackSwitchedOn)):
            self._switched(msg)
        else:
            return False
        return True

    # -- inside --------------------------------------------------------------------------------------------------

    def _switched(self, msg: m.TrackSwitchedOff | m.TrackSwitchedOn) -> None:
        """Mark a subscribed track switched off (on) by the SFU's congestion handling and emit the event."""
        for participant in self.participants.values():
            remote_pub = participant.tracks.get(msg.sid)
            if remote_pub is None:
                continue
            if isinstance(msg, m.TrackSwitchedOff):
                remote_pub.switched_off = msg.reason
                self._emit(ev.TrackSwitchedOff(remote_pub, participant, msg.reason))
            else:
                remote_pub.switched_off = None
                self._emit(ev.TrackSwitchedOn(remote_pub, participant))
            return

    def _network_quality(self, msg: m.NetworkQuality) -> None:
        """Record each participant's level and measures; emit NetworkQualityChanged for each level that changed."""
        for info in msg.levels:
            participant = self.participant(info.participant_sid)
            if participant is None:
                continue
            previous = participant.network_quality
            participant.network_quality = info.level
            participant.network_quality_info = info
            if previous != info.level:
                self._emit(ev.NetworkQualityChanged(participant, info.level, previous, info.uplink, info.downlink))

    def _add(self, info: m.ParticipantInfo) -> RemoteParticipant:
        participant = RemoteParticipant(info)
        self.participants[info.sid] = participant
        return participant

    def _announce(self, participant: RemoteParticipant) -> None:
        self._emit(ev.ParticipantJoined(participant))
        for pub in participant.tracks.values():
            self._emit(ev.TrackPublished(pub, participant))

    def _sync_tracks(self, participant: RemoteParticipant, info: m.ParticipantInfo) -> None:
        """Catch up with a participant's tracks after a rejoin (what changed while we were away)."""
        now = {track.sid: track for track in info.tracks}
        for sid in [sid for sid in participant.tracks if sid not in now]:
            self._emit(ev.TrackUnpublished(participant.tracks.pop(sid), participant))
        for sid, track in now.items():
            pub = participant.tracks.get(sid)
            if pub is None:
                pub = participant.tracks[sid] = RemoteTrackPublication(track, participant)
                self._emit(ev.TrackPublished(pub, participant))
            elif pub.muted != track.muted:
                pub.muted = track.muted
                self._emit((ev.TrackMuted if track.muted else ev.TrackUnmuted)(pub, participant, False))

    def _drop(self, sid: str, reason: str) -> None:
        participant = self.participants.pop(sid, None)
        if participant is None:
            return
        for pub in list(participant.tracks.values()):
            if pub.track is not None:
                self._end_subscription(pub.track)
            self._emit(ev.TrackUnpublished(pub, participant))
        participant.tracks.clear()
        self._emit(ev.ParticipantLeft(participant, reason))

    def _reconnecting(self, msg: m.ParticipantReconnecting | m.ParticipantReconnected) -> None:
        participant = self.participants.get(msg.participant_sid)
        if participant is None:
            return
        reconnecting = isinstance(msg, m.ParticipantReconnecting)
        if participant.reconnecting == reconnecting:
            return
        participant.reconnecting = reconnecting
        if isinstance(msg, m.ParticipantReconnecting):
            self._emit(ev.ParticipantReconnecting(participant, msg.cause))
        else:
            self._emit(ev.ParticipantReconnected(participant))

    def _published(self, msg: m.TrackPublished) -> None:
        if msg.participant_sid == self.local.sid:
            self.local.acknowledge(msg.cid or "", msg.track.sid)
            return
        participant = self.participants.get(msg.participant_sid)
        if participant is None:
            return
        remote_pub = RemoteTrackPublication(msg.track, participant)
        participant.tracks[remote_pub.sid] = remote_pub
        self._emit(ev.TrackPublished(remote_pub, participant))

    def _mute(self, msg: m.TrackMuted | m.TrackUnmuted) -> None:
        muted = isinstance(msg, m.TrackMuted)
        event_cls = ev.TrackMuted if muted else ev.TrackUnmuted
        if msg.participant_sid == self.local.sid:
            local_pub = self.local.tracks.get(msg.track_sid)
            if local_pub is None:
                return
            if msg.by_server:
                local_pub.set_server_muted(muted)
            self._emit(event_cls(local_pub, self.local, msg.by_server))
            return
        participant = self.participants.get(msg.participant_sid)
        remote_pub = participant.tracks.get(msg.track_sid) if participant else None
        if participant is None or remote_pub is None:
            return
        remote_pub.muted = muted
        self._emit(event_cls(remote_pub, participant, msg.by_server))
