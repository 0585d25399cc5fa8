"""Adaptive stream and publisher constraints at the SFU: what each subscriber shows, what each publisher sends.

A subscriber's `track_settings` for a video track another participant publishes (its rendered size, whether it is
visible, its priority) is kept here per (subscriber, track), even before the subscription starts. Two things follow:

- An invisible track is paused for that subscriber: its `Subscription` forwards nothing (the publication still
  reads and reassembles every packet for the others). When it is visible again the subscription restarts at the
  next keyframe and a keyframe is asked of the publisher at once (PLI), so the picture comes back without waiting
  for the next periodic one.
- Every `ADAPT_INTERVAL_MS` (and at once after a `track_settings`), each video publication's subscribers' settings
  go through tvapp.core.adaptive's rule; its `ConstraintsGate` decides when the publisher is told
  (`publish_constraints`: more at once, less once it has held a second). The last constraints sent are the
  publication's `constraints`: its REMB cap follows their bitrate, the dead-path watch does not expect packets of
  a paused publication, and REST shows them.

The bitrate also fits the subscribers' links (issue 18 item 2): `adapt` is given the congestion handling's downlink
estimates (tvapp.server.congestion `link_estimates`: those that met loss; a loss-free estimate is only a lower
bound) and which subscribers it has switched tracks off for (`congested`). Each subscriber's estimate is split over
the video tracks it receives by what each needs at its tile size (tvapp.core.adaptive `link_share`); a track
switched off for it counts as one more it would receive. The rule leaves the congested subscribers out unless
nobody else receives the track. With `[media] congestion_control = false` nothing is estimated: size alone counts.
A rendition (simulcast by two tracks, tvapp.core.simulcast) has no subscribers of its own: it is unpaused (no other
limit: its publisher encodes it small) while some subscription not withheld carries it or moves to it
(tvapp.server.congestion puts them there), and paused otherwise, through the same gate (so it pauses once nobody
has needed it for a second). A subscriber on a track's rendition counts for the main track as one it is withheld from.
Errors: `track_not_found` (no other participant publishes that sid), `not_video` (an audio track).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Final

from tvapp.core.adaptive import (
    Constraints,
    ConstraintsGate,
    Viewer,
    ViewerSettings,
    constraints_for,
    link_share,
    need_bps,
)
from tvapp.protocol.messages import PublishConstraints, TrackSettings
from tvapp.server.live import LiveParticipant, LiveRoom, RoomError

if TYPE_CHECKING:
    from tvapp.server.forwarding import Publication
    from tvapp.server.media_session import MediaSession

log = logging.getLogger(__name__)

ADAPT_INTERVAL_MS: Final = 100.0


class RoomAdaptive:
    """One room's subscribers' track settings and its publications' constraint gates."""

    def __init__(self, live: LiveRoom, max_bitrate: int) -> None:
        self.live = live
        self.max_bitrate = max_bitrate
        self.settings: dict[tuple[str, str], ViewerSettings] = {}  # (subscriber sid, track sid) -> settings
        self.gates: dict[str, ConstraintsGate] = {}  # track sid -> gate
        self.link_estimates: dict[str, int] = {}  # subscriber sid -> downlink estimate (bps) that met loss

    def take_settings(self, participant: LiveParticipant, msg: TrackSettings) -> None:
        """Record a subscriber's settings for a track; RoomError when no other participant publishes it as video."""
        track = next((p.tracks[msg.sid] for p in self.live.participants.values()
                      if p is not participant and msg.sid in p.tracks), None)
        if track is None:
            raise RoomError("track_not_found", "no other participant publishes that track")
        if track.kind != "video":
            raise RoomError("not_video", "track_settings apply to video tracks")
        self.settings[(participant.sid, msg.sid)] = ViewerSettings(msg.width, msg.height, msg.visible, msg.priority)

    def adapt(self, sessions: Mapping[str, MediaSession], now_ms: float, links: Mapping[str, int] | None = None,
              congested: Collection[str] = ()) -> None:
        """Pause and resume subscriptions by their settings, and tell publishers their constraints when due (given
        the subscribers' downlink estimates in bps and who is congested: tvapp.server.congestion)."""
        if links is not None:
            self.link_estimates = dict(links)
        tracks = {sid for session in sessions.values() for sid in session.publications}
        self.settings = {key: s for key, s in self.settings.items() if key[0] in sessions and key[1] in tracks}
        self.gates = {sid: gate for sid, gate in self.gates.items() if sid in tracks}
        needs: dict[str, dict[str, int]] = {}  # subscriber sid -> video track sid it receives -> what it needs
        for session in sessions.values():
            received = needs.setdefault(session.participant.sid, {})
            for track_sid, subscription in list(session.subscriptions.items()):
                if subscription.kind != "video":
                    continue
                settings = self.settings.get((session.participant.sid, track_sid))
                subscription.set_paused(settings is not None and not settings.visible)
                if not subscription.withheld:
                    received[track_sid] = need_bps(settings, max_bitrate=self.max_bitrate)
        for publisher in sessions.values():
            for publication in list(publisher.publications.values()):
                if publication.kind != "video":
                    continue
                track = publication.track_sid
                if publication.rendition_of is not None:
                    self._offer(publisher, publication, _rendition_wanted(publication, sessions), now_ms)
                    continue
                viewers = []
                for s in sessions.values():
                    subscribed = s.subscriptions.get(track)
                    if subscribed is None:
                        continue
                    sid = s.participant.sid
                    settings = self.settings.get((sid, track))
                    link = self.link_estimates.get(sid)
                    share = None
                    if link is not None:
                        others = [n for t, n in needs.get(sid, {}).items() if t != track]
                        share = link_share(link, need_bps(settings, max_bitrate=self.max_bitrate), others)
                    viewers.append(Viewer(settings, share, withheld=subscribed.switched_off or subscribed.low,
                                          congested=sid in congested))
                wanted = constraints_for(viewers, max_bitrate=self.max_bitrate, keep_running=bool(publication.sinks))
                self._offer(publisher, publication, wanted, now_ms)

    def _offer(self, publisher: MediaSession, publication: Publication, wanted: Constraints, now_ms: float) -> None:
        """Offer a publication's wanted constraints to its gate; tell its publisher when the gate says so."""
        track = publication.track_sid
        gate = self.gates.get(track)
        if gate is None:
            gate = self.gates[track] = ConstraintsGate()
            if publication.rendition_of is not None:
                gate.sent = Constraints(paused=True)  # its publisher starts it paused (tvapp.client.renditions)
        out = gate.offer(wanted, now_ms)
        publication.constraints = gate.sent  # (a publication made anew by a media restart included)
        if out is None:
            return
        publisher.participant.peer.send(PublishConstraints(
            sid=track, max_width=out.max_width, max_height=out.max_height,
            max_framerate=out.max_framerate, max_bitrate=out.max_bitrate, paused=out.paused))


def _rendition_wanted(rendition: Publication, sessions: Mapping[str, MediaSession]) -> Constraints:
    """Return what a rendition's publisher should send: it, unlimited, while a subscription needs it; else nothing."""
    needed = any((sub.source is rendition or sub.target is rendition) and not sub.withheld
                 for session in sessions.values() for sub in list(session.subscriptions.values()))
    return Constraints() if needed else Constraints(paused=True)
