"""The SFU: one aiortc peer connection per participant, renegotiated by the server over signaling.

The server makes every offer (see `MediaSession.negotiate`): a publication gets a recvonly m-line, a
subscription a sendonly m-line pinned to the publisher's codec, and each offer lists what every m-line
carries (`TransceiverInfo`). Offers are serialized per participant: a change while an offer is out is
folded into the next offer, sent when the answer arrives.

`Sfu` implements the room manager's `MediaHooks` (participants leaving, tracks published, muted,
unpublished, subscriptions changed) and runs each room's active-speaker loop. Frame forwarding itself
lives in tvapp.server.forwarding; every touch of aiortc internals in tvapp.rtc.internals.

A failure in one participant's media (bad SDP, a dead peer connection) is reported to that participant
as an `error` message and never reaches another participant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import candidate_from_sdp

from tvapp.config import MediaConfig
from tvapp.core.speaker import ActiveSpeakerDetector
from tvapp.protocol.messages import (
    ActiveSpeakers,
    Candidate,
    Data,
    Encoded,
    Error,
    IceServer,
    Offer,
    SendData,
    SpeakerInfo,
    TrackInfo,
    TransceiverInfo,
)
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection
from tvapp.server import forwarding
from tvapp.server.forwarding import Publication, Subscription, now_ms
from tvapp.server.rooms import LiveParticipant, LiveRoom, RoomError

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05
REMB_INTERVAL_MS = 1000.0


class MediaError(RoomError):
    """A media request that cannot be carried out; `code` goes to the client."""


class MediaSession:
    """One participant's peer connection: its publications, its subscriptions, and the offers about them."""

    def __init__(self, sfu: Sfu, live: LiveRoom, participant: LiveParticipant) -> None:
        self.sfu = sfu
        self.live = live
        self.participant = participant
        self.pc: RTCPeerConnection = new_peer_connection(sfu.ice_triples())
        self.publications: dict[str, Publication] = {}
        self.subscriptions: dict[str, Subscription] = {}  # remote track sid -> m-line
        self.idle: list[Subscription] = []
        self.offer_out = False
        self.dirty = False
        self.closed = False
        self.auto_subscribe = True
        self.requested: set[str] = set()  # track sids asked for explicitly (what counts without auto-subscribe)
        self._lock = asyncio.Lock()

    # negotiation ---------------------------------------------------------------------------------------------

    def request_offer(self) -> None:
        """Make sure an offer describing the current state goes out (now, or after the pending answer)."""
        if self.closed:
            return
        if self.offer_out:
            self.dirty = True
            return
        self.sfu.spawn(self._send_offer())

    async def _send_offer(self) -> None:
        async with self._lock:
            if self.closed or self.offer_out:
                self.dirty = self.dirty or self.offer_out
                return
            self.offer_out = True
            self.dirty = False
            try:
                offer = await self.pc.createOffer()
                await self.pc.setLocalDescription(offer)
            except Exception:
                self.offer_out = False
                log.exception("media: could not make an offer for %s", self.participant.identity)
                self.participant.peer.send(Error(code="media_failed", message="the server could not make an offer"))
                return
            self.participant.peer.send(Offer(sdp=self.pc.localDescription.sdp, transceivers=self._describe()))

    def _describe(self) -> tuple[TransceiverInfo, ...]:
        slots = []
        for publication in self.publications.values():
            mid = publication.transceiver.mid
            if mid is not None:
                slots.append(TransceiverInfo(mid=mid, direction="publish", track_sid=publication.track_sid,
                                             participant_sid=self.participant.sid, kind=publication.kind,
                                             cid=publication.cid))  # type: ignore[arg-type]
        for track_sid, subscription in self.subscriptions.items():
            publication = subscription.publication
            if subscription.mid is not None and publication is not None:
                slots.append(TransceiverInfo(mid=subscription.mid, direction="subscribe", track_sid=track_sid,
                                             participant_sid=publication.participant_sid,
                                             kind=subscription.kind))  # type: ignore[arg-type]
        return tuple(slots)

    async def answer(self, sdp: str) -> None:
        """Apply the client's answer to the offer that is out, then send the next offer if one is due."""
        if not self.offer_out:
            raise MediaError("no_offer", "there is no offer to answer")
        async with self._lock:
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:
                log.info("media: bad answer from %s: %s", self.participant.identity, exc)
                self.offer_out = False
                self.dirty = True  # aiortc cannot roll back its offer: the next offer supersedes it
                raise MediaError("bad_answer", "the answer could not be applied: " + str(exc)[:200]) from None
            self.offer_out = False
        newly_ready = []
        for publication in self.publications.values():
            codecs = [] if publication.ready else [
                c for c in internals.negotiated_codecs(publication.transceiver)
                if c.mimeType.split("/")[1].lower() != "rtx"]
            if codecs:
                publication.set_codec(codecs[0].mimeType.split("/")[1].upper(), codecs[0])
                newly_ready.append(publication)
        for publication in newly_ready:
            self.sfu.publication_ready(self.live, publication)
        if self.dirty:
            self.request_offer()

    async def add_candidate(self, msg: Candidate) -> None:
        """Add one candidate the client trickled."""
        line = msg.candidate.strip()
        if not line:
            return
        if line.startswith("candidate:"):
            line = line[len("candidate:"):]
        try:
            candidate = candidate_from_sdp(line)
        except (ValueError, IndexError):
            raise MediaError("bad_candidate", "the ICE candidate could not be parsed") from None
        candidate.sdpMid = msg.sdp_mid
        candidate.sdpMLineIndex = msg.sdp_mline_index
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        with contextlib.suppress(Exception):  # a candidate for a transport bundled away is harmless
            await self.pc.addIceCandidate(candidate)

    # publications --------------------------------------------------------------------------------------------

    def publish(self, track: TrackInfo, cid: str) -> None:
        """Reserve a recvonly m-line for a track the client announced, and offer it."""
        transceiver = self.pc.addTransceiver(track.kind, direction="recvonly")
        if track.kind == "video":
            prefs = self.sfu.video_preferences()
            if prefs:
                transceiver.setCodecPreferences(prefs)
        publication = Publication(track.sid, self.participant.sid, cid, track.kind,
                                  transceiver, keyframe_interval_ms=self.sfu.config.keyframe_interval * 1000)
        publication.muted = track.muted
        self.publications[track.sid] = publication
        self.request_offer()

    def unpublish(self, track_sid: str) -> Publication | None:
        """Stop receiving a track (its m-line goes inactive)."""
        publication = self.publications.pop(track_sid, None)
        if publication is None:
            return None
        publication.close()
        publication.transceiver.direction = "inactive"
        self.request_offer()
        return publication

    # subscriptions -------------------------------------------------------------------------------------------

    def subscribe(self, publication: Publication) -> None:
        """Start sending `publication` to this participant (reusing an idle m-line of the same codec)."""
        if publication.track_sid in self.subscriptions or self.closed:
            return
        codec = publication.codec or ""
        subscription = next((s for s in self.idle if s.kind == publication.kind and s.codec == codec), None)
        if subscription is not None:
            self.idle.remove(subscription)
            subscription.transceiver.direction = "sendonly"
        else:
            transceiver = self.pc.addTransceiver(publication.kind, direction="sendonly")
            transceiver.setCodecPreferences(self.sfu.pinned(publication))
            subscription = Subscription(transceiver, publication.kind, codec)
        self.subscriptions[publication.track_sid] = subscription
        subscription.attach(publication)
        self.request_offer()

    def unsubscribe(self, track_sid: str) -> None:
        """Stop sending a track to this participant; its m-line goes idle for reuse."""
        subscription = self.subscriptions.pop(track_sid, None)
        if subscription is None:
            return
        subscription.detach()
        subscription.transceiver.direction = "inactive"
        self.idle.append(subscription)
        self.request_offer()

    # end -------------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything and close the peer connection (in the background)."""
        if self.closed:
            return
        self.closed = True
        for publication in self.publications.values():
            publication.close()
        for subscription in list(self.subscriptions.values()) + self.idle:
            subscription.close()
        self.subscriptions.clear()
        self.idle.clear()
        self.sfu.spawn(self.pc.close())


class RoomMedia:
    """The media side of one live room: its sessions and its active-speaker loop."""

    def __init__(self, sfu: Sfu, live: LiveRoom) -> None:
        self.sfu = sfu
        self.live = live
        self.sessions: dict[str, MediaSession] = {}  # participant sid -> session
        self.detector = ActiveSpeakerDetector()
        self.task: asyncio.Task[None] | None = None

    def publications(self) -> Iterable[Publication]:
        """Every publication in the room."""
        for session in self.sessions.values():
            yield from session.publications.values()

    async def run(self) -> None:
        """Poll gaps and feed the speaker detector until the room has no sessions left."""
        interval = self.sfu.config.speaker_interval
        next_speaker = next_remb = 0.0
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
            if now >= next_remb:
                next_remb = now + REMB_INTERVAL_MS
                for publication in list(self.publications()):
                    publication.advertise_bitrate(self.sfu.config.max_video_bitrate)

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


class Sfu:
    """Selective forwarding for every live room of one server."""

    def __init__(self, config: MediaConfig) -> None:
        internals.check_internals()
        self.config = config
        if config.host_addresses:
            internals.set_host_addresses(config.host_addresses)
        self.rooms: dict[str, RoomMedia] = {}  # room sid -> media
        self.sessions: dict[str, MediaSession] = {}  # participant sid -> session
        self.tasks: set[asyncio.Task[None]] = set()

    # helpers -------------------------------------------------------------------------------------------------

    def spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        """Run a coroutine in the background, logging (never raising) its failure."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("media task failed", exc_info=task.exception())

    def ice_triples(self) -> list[tuple[str, str, str]]:
        """The configured ICE servers as (url, username, credential)."""
        return [(url, self.config.ice_username, self.config.ice_credential) for url in self.config.ice_servers]

    def ice_servers(self) -> tuple[IceServer, ...]:
        """The configured ICE servers as told to clients in `joined`."""
        return tuple(IceServer(urls=url, username=self.config.ice_username, credential=self.config.ice_credential)
                     for url in self.config.ice_servers)

    def video_preferences(self) -> list[RTCRtpCodecCapability]:
        """Video codecs to receive, in the configured order (each with its RTX)."""
        capabilities = RTCRtpSender.getCapabilities("video").codecs
        wanted = [c.upper() for c in self.config.video_codecs]
        chosen = [c for name in wanted for c in capabilities if c.mimeType.split("/")[1].upper() == name]
        rtx = [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
        return chosen + rtx if chosen else []

    def pinned(self, publication: Publication) -> list[RTCRtpCodecCapability]:
        """The one codec a subscription to `publication` may use (+ RTX for video)."""
        kind = publication.kind
        capabilities = RTCRtpSender.getCapabilities(kind).codecs
        params = getattr(publication.codec_parameters, "parameters", {}) or {}
        name = (publication.codec or "").upper()
        matches = [c for c in capabilities if c.mimeType.split("/")[1].upper() == name]
        if name == "H264":
            exact = [c for c in matches
                     if c.parameters.get("packetization-mode") == params.get("packetization-mode")
                     and str(c.parameters.get("profile-level-id", ""))[:4]
                     == str(params.get("profile-level-id", ""))[:4]]
            matches = exact or matches
        if not matches:
            raise MediaError("codec_unsupported", f"no way to forward {name or 'this'} media")
        pinned = matches[:1]
        if kind == "video":
            pinned += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
        return pinned

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

    def _require(self, participant: LiveParticipant) -> MediaSession:
        session = self.session(participant)
        if session is None:
            raise MediaError("not_joined", "you have no media session")
        return session

    def _wants(self, participant: LiveParticipant, publication: Publication) -> bool:
        session = self.sessions.get(participant.sid)
        if session is None or participant.sid == publication.participant_sid or not participant.grants.subscribe:
            return False
        if publication.track_sid in participant.unsubscribed:
            return False
        return session.auto_subscribe or publication.track_sid in session.requested

    def publication_ready(self, live: LiveRoom, publication: Publication) -> None:
        """A publication's codec is known: offer it to everyone who wants it."""
        room = self._room(live)
        for session in list(room.sessions.values()):
            if self._wants(session.participant, publication):
                try:
                    session.subscribe(publication)
                except RoomError as exc:
                    session.participant.peer.send(Error(code=exc.code, message=exc.message))

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
