"""The SFU: selective forwarding for every live room of one server, and each room's active-speaker loop.

`Sfu` gives every participant that joins a `MediaSession` (tvapp.server.media_session: its peer
connection, renegotiated by the server over signaling) and implements the room manager's `MediaHooks`
(participants leaving, tracks published, muted, unpublished, subscriptions changed) by subscribing and
unsubscribing sessions. `RoomMedia` polls each room's publications for lost packets, feeds the
active-speaker detector from RFC 6464 audio levels, caps publishers' video bitrate with REMB, and measures
each participant's network quality once a second (tvapp.server.quality), and applies subscribers' track settings
and publishers' constraints every 100 ms (tvapp.server.adaptive).
Frame forwarding itself lives in tvapp.server.forwarding; every touch of aiortc internals in tvapp.rtc.internals.

A failure in one participant's media (bad SDP, a dead peer connection) is reported to that participant
as an `error` message and never reaches another participant; malformed packets are dropped by the
guards of tvapp.rtc.internals, installed here at start-up, before they can stop a participant's transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from tvapp.auth.turn import turn_credentials
from tvapp.config import MediaConfig
from tvapp.core.reach import parse_announced, parse_port_range
from tvapp.core.reconnect import Cause, may_restart_media
from tvapp.core.speaker import ActiveSpeakerDetector
from tvapp.protocol.messages import (
    ActiveSpeakers,
    Candidate,
    Data,
    Encoded,
    Error,
    IceServer,
    SendData,
    SpeakerInfo,
    TrackInfo,
    TrackSettings,
)
from tvapp.rtc import internals
from tvapp.server import forwarding
from tvapp.server.congestion import INTERVAL_MS as CONGESTION_INTERVAL_MS
from tvapp.server.congestion import RoomCongestion
from tvapp.server.adaptive import ADAPT_INTERVAL_MS, RoomAdaptive
from tvapp.server.forwarding import Publication, now_ms
from tvapp.server.live import LiveParticipant, LiveRoom, RoomError
from tvapp.server.media_session import MediaError, MediaSession
from tvapp.server.quality import INTERVAL_MS as QUALITY_INTERVAL_MS
from tvapp.server.quality import RoomQuality

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05
REMB_INTERVAL_MS = 1000.0
WATCH_INTERVAL_MS = 250.0


class LinkHooks(Protocol):
    """What the SFU tells the room manager about a participant's media path (tvapp.server.rooms implements it)."""

    def link_lost(self, participant: LiveParticipant, cause: Cause) -> None: ...

    def link_back(self, participant: LiveParticipant, cause: Cause) -> None: ...


class NoLinkHooks:
    """LinkHooks that hear nothing (an SFU on its own, in tests)."""

    def link_lost(self, participant: LiveParticipant, cause: Cause) -> None:
        """Do nothing."""

    def link_back(self, participant: LiveParticipant, cause: Cause) -> None:
        """Do nothing."""


class RoomMedia:
    """The media side of one live room: its sessions and its active-speaker loop."""

    def __init__(self, sfu: Sfu, live: LiveRoom) -> None:
        self.sfu = sfu
        self.live = live
        self.sessions: dict[str, MediaSession] = {}  # participant sid -> session
        self.detector = ActiveSpeakerDetector()
        self.quality = RoomQuality(live)
        self.congestion = RoomCongestion()  # per-subscriber video switch-off (tvapp.server.congestion)
        self.adaptive = RoomAdaptive(live, sfu.config.max_video_bitrate)
        self.task: asyncio.Task[None] | None = None

    def publications(self) -> Iterable[Publication]:
        """Yield every publication in the room."""
        for session in self.sessions.values():
            yield from session.publications.values()

    async def run(self) -> None:
        """Poll gaps and feed the speaker detector until the room has no sessions left."""
        interval = self.sfu.config.speaker_interval
        next_speaker = next_remb = next_watch = next_quality = next_congestion = next_adapt = 0.0
        while self.sessions:
            await asyncio.sleep(POLL_INTERVAL)
            for publication in list(self.publications()):
                try:
                    publication.poll()
                except Exception:
                    log.exception("media: polling %s failed", publication.track_sid)
            now = now_ms()
            if now >= next_speaker:
                next_speaker = now + interval * 1000
                self._speakers(now)
            if now >= next_watch:
                next_watch = now + WATCH_INTERVAL_MS
                self._watch_paths(now / 1000.0)
            if now >= next_congestion and self.sfu.config.congestion_control:
                next_congestion = now + CONGESTION_INTERVAL_MS
                self.congestion.tick(list(self.sessions.values()), self.detector.dominant, now)
            if now >= next_adapt:
                next_adapt = now + ADAPT_INTERVAL_MS
                self.adapt(now)
            if now >= next_remb:
                next_remb = now + REMB_INTERVAL_MS
                for publication in list(self.publications()):
                    publication.advertise_bitrate(self.sfu.config.max_video_bitrate)
            if now >= next_quality:
                next_quality = now + QUALITY_INTERVAL_MS
                try:
                    await self.quality.measure(list(self.sessions.values()), now)
                except Exception:
                    log.exception("media: measuring network quality failed")

    def adapt(self, now: float) -> None:
        """Apply subscribers' track settings and send publishers their constraints when due (tvapp.server.adaptive)."""
        try:
            on = self.sfu.config.congestion_control  # the links' estimates fit the publishers' bitrates (issue 18)
            self.adaptive.adapt(self.sessions, now, self.congestion.link_estimates() if on else {},
                                self.congestion.congested() if on else set())
        except Exception:
            log.exception("media: adapting the room's streams failed")

    def _watch_paths(self, now: float) -> None:
        """Tell the room manager whose media path died (no packet for MEDIA_SILENCE_S) or came back.

        Only a session that publishes is expected to send all the time (its senders' RTCP reports never stop); one
        that only receives is judged by its client, which asks for a fresh peer connection (media_restart)."""
        for session in list(self.sessions.values()):
            try:
                verdict = session.watch.observe(internals.packets_received(session.pc), now,
                                                expecting=not session.closed and any(
                                                    not p.constraints.paused for p in session.publications.values()))
            except Exception:
                log.exception("media: watching %s failed", session.participant.identity)
                continue
            if verdict is True:
                self.sfu.link.link_lost(session.participant, Cause.MEDIA)
            elif verdict is False:
                self.sfu.link.link_back(session.participant, Cause.MEDIA)

    def _speakers(self, now: float) -> None:
        levels: dict[str, float | None] = {}
        for session in self.sessions.values():
            best: int | None = None
            audio = False
            for publication in session.publications.values():
                if publication.kind == "audio":
                    audio = True
                    level = publication.take_level()
                    if level is not None and (best is None or level < best):
                        best = level
            if audio:
                levels[session.participant.sid] = best
        decision = self.detector.update(levels, now)
        if decision is None:
            return
        identities = {s.participant.sid: s.participant.identity for s in self.sessions.values()}
        speakers = tuple(SpeakerInfo(participant_sid=sid, identity=identities[sid], level=round(level, 3))
                         for sid, level in decision.speakers if sid in identities)
        self.live.broadcast(ActiveSpeakers(speakers=speakers, dominant_sid=decision.dominant))


class TrackReady(Protocol):
    """Who is told of each publication whose codec became known (the recorder)."""

    def track_ready(self, live: LiveRoom, publication: Publication) -> None: ...


class Sfu:
    """Selective forwarding for every live room of one server."""

    def __init__(self, config: MediaConfig) -> None:
        internals.check_internals()
        internals.install_guards()
        self.config = config
        if config.host_addresses:
            internals.set_host_addresses(config.host_addresses)
        internals.set_port_range(parse_port_range(config.udp_port_range))
        self.announced = parse_announced(config.announced_addresses)
        if config.turn_urls and not config.turn_secret:
            log.warning("media: [media] turn_urls is set but turn_secret is empty: clients get TURN URLs without "
                        "credentials (see `tvapp serve --check-reachability`)")
        self.rooms: dict[str, RoomMedia] = {}  # room sid -> media
        self.sessions: dict[str, MediaSession] = {}  # participant sid -> session
        self.tasks: set[asyncio.Task[None]] = set()
        self.link: LinkHooks = NoLinkHooks()
        self.recorder: TrackReady | None = None  # tvapp.server.recorder.RecordingService, when recording is on

    # helpers -------------------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine in the background, logging (never raising) its failure."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("media task failed", exc_info=task.exception())

    def ice_triples(self) -> list[tuple[str, str, str]]:
        """Return the ICE servers the SFU's own peer connections use, as (url, username, credential).

        The static `ice_servers`, plus `turn_urls` with the SFU's own fresh credentials when `sfu_uses_turn`.
        """
        triples = [(url, self.config.ice_username, self.config.ice_credential) for url in self.config.ice_servers]
        if self.config.sfu_uses_turn:
            triples += [(s.urls, s.username, s.credential) for s in self._turn_servers("sfu", time.time())]
        return triples

    def ice_servers(self, identity: str = "", now: float | None = None) -> tuple[IceServer, ...]:
        """Return the ICE servers told to a client in `joined`: the static ones, then TURN with its own credentials.

        `identity` (the participant's sid) goes into the TURN REST username; every call makes fresh credentials.
        """
        static = tuple(IceServer(urls=url, username=self.config.ice_username, credential=self.config.ice_credential)
                       for url in self.config.ice_servers)
        return static + self._turn_servers(identity or "participant", time.time() if now is None else now)

    def _turn_servers(self, identity: str, now: float) -> tuple[IceServer, ...]:
        if not self.config.turn_urls:
            return ()
        if not self.config.turn_secret:  # `--check-reachability` and the start-up log warn about this
            return tuple(IceServer(urls=url) for url in self.config.turn_urls)
        creds = turn_credentials(self.config.turn_secret, identity, now=now, ttl=self.config.turn_ttl)
        return tuple(IceServer(urls=url, username=creds.username, credential=creds.password)
                     for url in self.config.turn_urls)

    def session(self, participant: LiveParticipant) -> MediaSession | None:
        """Return a participant's media session, if it has one."""
        return self.sessions.get(participant.sid)

    def _room(self, live: LiveRoom) -> RoomMedia:
        room = self.rooms.get(live.row.sid)
        if room is None:
            room = self.rooms[live.row.sid] = RoomMedia(self, live)
        return room

    # called by the signaling endpoint --------------------------------------------------------------------------

    def participant_joined(self, live: LiveRoom, participant: LiveParticipant, auto_subscribe: bool) -> None:
        """Give a participant that just joined its session, subscribed to what is already published."""
        room = self._room(live)
        session = MediaSession(self, live, participant)
        session.auto_subscribe = auto_subscribe
        room.sessions[participant.sid] = session
        self.sessions[participant.sid] = session
        if room.task is None or room.task.done():
            room.task = asyncio.ensure_future(room.run())
        for publication in list(room.publications()):
            if publication.ready and self._wants(participant, publication):
                session.subscribe(publication)

    def resumed(self, participant: LiveParticipant) -> None:
        """A new connection took the participant over: send it the offer still waiting for an answer, if any."""
        session = self.session(participant)
        if session is not None:
            session.resend_offer()

    def restart(self, live: LiveRoom, participant: LiveParticipant, generation: int) -> bool:
        """Give a participant a fresh peer connection in the same session (aiortc has no ICE restart).

        Its publications keep their track sids: each gets a new m-line on the new peer connection and the others'
        subscriptions move over to it (they keep their own m-lines and see the media resume at a keyframe). Its
        own subscriptions are offered afresh. Return False (and change nothing) for a generation already served;
        raise MediaError("media_restart_too_soon") when asked again within MIN_MEDIA_RESTART_INTERVAL_S."""
        old = self._require(participant)
        if generation <= old.generation:
            return False
        now = time.monotonic()
        if not may_restart_media(old.restarted_at, now):
            raise MediaError("media_restart_too_soon", "a fresh peer connection was made less than a second ago")
        room = self._room(live)
        new = MediaSession(self, live, participant, generation=generation, restarted_at=now)
        new.auto_subscribe, new.requested = old.auto_subscribe, set(old.requested)
        room.sessions[participant.sid] = new
        self.sessions[participant.sid] = new
        moved: dict[Publication, Publication] = {}
        for track_sid, before in list(old.publications.items()):
            track = participant.published(track_sid)
            after = new.publish(track, before.cid) if track is not None else None
            if after is not None:
                moved[before] = after
        for track_sid, (track, cid) in old.unplaced.items():  # published while the old peer connection was closed
            if participant.published(track_sid) is not None:
                new.publish(track, cid)
        for other in list(room.sessions.values()):  # a subscription carrying a rendition comes back to its track
            for subscription in list(other.subscriptions.values()):
                after = moved.get(subscription.publication) if subscription.publication is not None else None
                if after is not None:
                    subscription.attach(after)
        old.close()
        room.detector.remove(participant.sid)
        for publication in list(room.publications()):
            if publication.ready and self._wants(participant, publication):
                new.subscribe(publication)
        new.request_offer()
        return True

    async def answer(self, participant: LiveParticipant, sdp: str) -> None:
        """Apply a participant's answer."""
        await self._require(participant).answer(sdp)

    async def candidate(self, participant: LiveParticipant, msg: Candidate) -> None:
        """Add a participant's trickled candidate."""
        await self._require(participant).add_candidate(msg)

    def send_data(self, live: LiveRoom, participant: LiveParticipant, msg: SendData) -> int:
        """Relay a data message to the room or to the named identities; return how many got it."""
        if not participant.grants.publish_data:
            raise MediaError("not_allowed", "your token does not allow sending data")
        wanted = set(msg.to)
        data = Encoded.of(Data(from_sid=participant.sid, from_identity=participant.identity, topic=msg.topic,
                               payload=msg.payload))
        sent = 0
        for other in list(live.participants.values()):
            if other is participant or (wanted and other.identity not in wanted):
                continue
            other.peer.send(data)
            sent += 1
        if wanted and sent == 0:
            raise MediaError("participant_not_found", "none of the named participants is in the room")
        return sent

    def track_settings(self, live: LiveRoom, participant: LiveParticipant, msg: TrackSettings) -> None:
        """Take a subscriber's settings for a video track (RoomError if it is not one) and act on them at once."""
        room = self._room(live)
        room.adaptive.take_settings(participant, msg)
        room.adapt(now_ms())

    def _require(self, participant: LiveParticipant) -> MediaSession:
        session = self.session(participant)
        if session is None:
            raise MediaError("not_joined", "you have no media session")
        return session

    def _wants(self, participant: LiveParticipant, publication: Publication) -> bool:
        session = self.sessions.get(participant.sid)
        if session is None or participant.sid == publication.participant_sid or not participant.grants.subscribe:
            return False
        if publication.rendition_of is not None:  # never a subscription of its own: sent in its main track's place
            return False
        if publication.track_sid in participant.unsubscribed:
            return False
        return session.auto_subscribe or publication.track_sid in session.requested

    def publication_ready(self, live: LiveRoom, publication: Publication) -> None:
        """Offer a publication whose codec just became known to everyone who wants it."""
        room = self._room(live)
        if self.recorder is not None:
            self.recorder.track_ready(live, publication)
        for session in list(room.sessions.values()):
            if self._wants(session.participant, publication):
                try:
                    session.subscribe(publication)  # nothing, for a session that is gone (its peer connection closed)
                except RoomError as exc:
                    session.participant.peer.send(Error(code=exc.code, message=exc.message))
                except Exception:  # one subscriber's failure is neither the publisher's nor the other subscribers'
                    log.exception("media: could not subscribe %s to %s", session.participant.identity,
                                  publication.track_sid)

    # MediaHooks (called by the room manager) -------------------------------------------------------------------

    def participant_left(self, live: LiveRoom, participant: LiveParticipant) -> None:
        """Close a leaving participant's media and take its tracks away from the others."""
        room = self.rooms.get(live.row.sid)
        if room is None:
            return
        session = room.sessions.pop(participant.sid, None)
        self.sessions.pop(participant.sid, None)
        if session is None:
            return
        for track_sid in list(session.publications):
            for other in room.sessions.values():
                other.unsubscribe(track_sid)
        session.close()
        room.detector.remove(participant.sid)
        if not room.sessions:
            del self.rooms[live.row.sid]

    def track_published(self, live: LiveRoom, participant: LiveParticipant, track: TrackInfo, cid: str) -> None:
        """Reserve an m-line for a new publication."""
        session = self.session(participant)
        if session is not None:
            session.publish(track, cid)

    def track_unpublished(self, live: LiveRoom, participant: LiveParticipant, track_sid: str) -> None:
        """Stop a publication and end its subscriptions."""
        session = self.session(participant)
        if session is None:
            return
        session.unpublish(track_sid)
        room = self.rooms.get(live.row.sid)
        if room is not None:
            for other in room.sessions.values():
                other.unsubscribe(track_sid)

    def track_muted(self, live: LiveRoom, participant: LiveParticipant, track: TrackInfo) -> None:
        """Stop (or resume) forwarding a muted (unmuted) track."""
        session = self.session(participant)
        if session is None:
            return
        publication = session.publications.get(track.sid)
        if publication is not None:
            publication.muted = track.muted
            if not track.muted and publication.kind == "video":
                for subscription in publication.subscriptions:
                    subscription.splice.resync()
                publication.request_keyframe()

    def subscription_changed(self, live: LiveRoom, participant: LiveParticipant, track_sid: str,
                             subscribed: bool) -> None:
        """Act on an explicit subscribe or unsubscribe."""
        session = self.session(participant)
        if session is None:
            return
        if not subscribed:
            session.requested.discard(track_sid)
            session.unsubscribe(track_sid)
            return
        session.requested.add(track_sid)
        room = self.rooms.get(live.row.sid)
        publication = next((p for p in room.publications() if p.track_sid == track_sid), None) if room else None
        if publication is not None and publication.ready:
            session.subscribe(publication)
        # otherwise publication_ready() subscribes it as soon as its codec is known

    async def close(self) -> None:
        """Close every session."""
        for room in list(self.rooms.values()):
            for session in list(room.sessions.values()):
                session.close()
            if room.task is not None:
                room.task.cancel()
        self.rooms.clear()
        self.sessions.clear()
        if forwarding.TRACE is not None:
            forwarding.TRACE.write()
        for task in list(self.tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 2.0)


__all__ = ["MediaError", "MediaSession", "RoomMedia", "Sfu"]
