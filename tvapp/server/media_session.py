"""One participant's media at the SFU: its peer connection, its publications and subscriptions, and the offers about them.

The server makes every offer (`MediaSession.request_offer`): a publication gets a recvonly m-line, a subscription a sendonly m-line pinned to the publisher's codec (`pinned_codecs`), and each offer
lists what every m-line carries (`TransceiverInfo`). Offers are serialized per participant: a change while
an offer is out is folded into the next offer, sent when the answer arrives. An idle subscription m-line is
reused for the next track of the same kind and codec. An answer that cannot be applied is refused
(`bad_answer`) and the server offers again at once, since aiortc cannot roll its offer back; after
`MAX_REFUSED_ANSWERS` refusals in a row it waits for the next change instead, so a peer that answers
badly cannot keep the server offering. Trickled candidates are read by tvapp.core.candidates before
aiortc sees them (`invalid_candidate`), at most `MAX_REMOTE_CANDIDATES` per session.

A session talks to its owner (tvapp.server.media.Sfu) only through `SessionOwner`; frame forwarding is
tvapp.server.forwarding, every touch of aiortc internals tvapp.rtc.internals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.rtcicetransport import RTCIceCandidate
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from tvapp.config import MediaConfig
from tvapp.core.adaptive import Constraints
from tvapp.core.candidates import CandidateError, parse_candidate
from tvapp.core.drops import DropCounter
from tvapp.core.reconnect import PacketWatch
from tvapp.protocol.messages import Candidate, Error, Offer, TrackInfo, TransceiverInfo
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection
from tvapp.server.forwarding import Publication, Subscription
from tvapp.server.live import LiveParticipant, LiveRoom, RoomError

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)

MAX_REFUSED_ANSWERS = 3  # refused answers in a row, each followed by a new offer; then none until a change
MAX_REMOTE_CANDIDATES = 64  # per session: a browser trickles a few per network interface, once

_refusals = DropCounter(interval_s=60.0)  # what a peer can make the server log, once a minute at most


class MediaError(RoomError):
    """A media request that cannot be carried out; `code` goes to the client."""


class SessionOwner(Protocol):
    """What a media session needs of the SFU that owns it."""

    config: MediaConfig
    announced: tuple[str, ...]  # [media] announced_addresses, parsed: offered beside each host candidate

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    def ice_triples(self) -> list[tuple[str, str, str]]: ...

    def publication_ready(self, live: LiveRoom, publication: Publication) -> None: ...


def video_preferences(codecs: Sequence[str]) -> list[RTCRtpCodecCapability]:
    """Return the video codecs to receive, in the configured order (each with its RTX); [] for aiortc's own."""
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    wanted = [c.upper() for c in codecs]
    chosen = [c for name in wanted for c in capabilities if c.mimeType.split("/")[1].upper() == name]
    rtx = [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return chosen + rtx if chosen else []


def pinned_codecs(publication: Publication) -> list[RTCRtpCodecCapability]:
    """Return the one codec a subscription to `publication` may use (+ RTX for video); raise MediaError if none."""
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


class MediaSession:
    """One participant's peer connection: its publications, its subscriptions, and the offers about them."""

    def __init__(self, sfu: SessionOwner, live: LiveRoom, participant: LiveParticipant, *,
                 generation: int = 0, restarted_at: float | None = None) -> None:
        self.sfu = sfu
        self.generation = generation  # the client's media_restart this peer connection answers (0: the first)
        self.restarted_at = restarted_at
        # Dead-path watch (tvapp.core.reconnect); a restarted session starts dead: its first packet means "back".
        self.watch = PacketWatch(dead=generation > 0)
        self.live = live
        self.participant = participant
        self.pc: RTCPeerConnection = new_peer_connection(sfu.ice_triples(), announced=sfu.announced)
        self.publications: dict[str, Publication] = {}
        self.subscriptions: dict[str, Subscription] = {}  # remote track sid -> m-line
        self.idle: list[Subscription] = []
        self.offer_out = False
        self.dirty = False
        self.refused_in_a_row = 0
        self.candidates = 0
        self.closed = False
        self.auto_subscribe = True
        self.requested: set[str] = set()  # track sids asked for explicitly (what counts without auto-subscribe)
        self.unplaced: dict[str, tuple[TrackInfo, str]] = {}  # published while gone: (track, cid) for a restart
        # The client resumed on a new connection since its last applied answer: the offer out was sent again, so an
        # answer to an older offer, or a second answer to this one, may come (answers name no offer): not errors.
        self.resent = False
        self.offers = 0  # offers made by this session
        self.resent_at = 0  # the value of `offers` when the client resumed
        self.stale_passes = 0  # failed answers after a resume taken for stale ones (the offer is sent again)
        self._lock = asyncio.Lock()
        self.pc_closed = False  # set the moment the peer connection starts closing (by us or by aiortc itself)
        self.pc.on("signalingstatechange", self._signaling_state_changed)

    @property
    def gone(self) -> bool:
        """Tell whether this session is over: closed by the server, or its peer connection closed (or closing).

        The client closing its peer connection (leaving, or making a fresh one for a media_restart) closes the DTLS
        transport here; aiortc then closes the peer connection by itself, a task later, and both come before the
        server hears of the leave or the restart. Such a session takes no new m-line and makes no offer."""
        return self.closed or self.pc_closed or any(t.receiver.transport.state == "closed"
                                                    for t in self.pc.getTransceivers())

    def _signaling_state_changed(self) -> None:
        # aiortc's close() says "closed" first, synchronously; an answer being applied meanwhile may then set
        # "stable" again, so signalingState alone cannot tell a closed peer connection later.
        if self.pc.signalingState == "closed":
            self.pc_closed = True

    # negotiation ---------------------------------------------------------------------------------------------

    def request_offer(self) -> None:
        """Make sure an offer describing the current state goes out (now, or after the pending answer)."""
        if self.gone:
            return
        if self.offer_out:
            self.dirty = True
            return
        self.sfu.spawn(self._send_offer())

    async def _send_offer(self) -> None:
        async with self._lock:
            if self.gone or self.offer_out:
                self.dirty = self.dirty or self.offer_out
                return
            self.offer_out = True
            self.dirty = False
            self.offers += 1
            try:
                offer = await self.pc.createOffer()
                await self.pc.setLocalDescription(offer)
            except Exception as exc:
                self.offer_out = False
                if self.gone:
                    # The participant left (or dropped) while the offer was being made: nobody to offer to.
                    log.debug("media: offer for %s abandoned, its session closed", self.participant.identity)
                    return
                if isinstance(exc, internals.PortRangeExhausted):
                    log.error("media: no offer for %s: %s", self.participant.identity, exc)
                    self.participant.peer.send(Error(code="media_failed", message="the server has no free media "
                                                     "port (its [media] udp_port_range is full)"))
                    return
                if isinstance(exc, internals.HostAddressUnusable):
                    log.error("media: no offer for %s: %s", self.participant.identity, exc)
                    self.participant.peer.send(Error(code="media_failed", message="the server could not open a "
                                                     "media socket on its address"))
                    return
                log.exception("media: could not make an offer for %s", self.participant.identity)
                self.participant.peer.send(Error(code="media_failed", message="the server could not make an offer"))
                return
            if self.closed:
                return  # restarted or left meanwhile: this peer connection's offer would only confuse the client
            self.resend_offer_only()

    def resend_offer(self) -> None:
        """Send the offer that is out again (to a connection that resumed the session and may have missed it)."""
        self.resent, self.resent_at, self.stale_passes = True, self.offers, 1
        self.resend_offer_only()

    def resend_offer_only(self) -> None:
        """Send the offer that is out again."""
        if self.offer_out and not self.closed and self.pc.localDescription is not None:
            self.participant.peer.send(Offer(sdp=self.pc.localDescription.sdp, transceivers=self._describe(),
                                             generation=self.generation))

    def _describe(self) -> tuple[TransceiverInfo, ...]:
        slots = []
        for publication in self.publications.values():
            mid = publication.transceiver.mid
            if mid is not None:
                slots.append(TransceiverInfo(mid=mid, direction="publish", track_sid=publication.track_sid,
                                             participant_sid=self.participant.sid, kind=publication.kind,
                                             cid=publication.cid))
        for track_sid, subscription in self.subscriptions.items():
            source = subscription.publication
            if subscription.mid is not None and source is not None:
                slots.append(TransceiverInfo(mid=subscription.mid, direction="subscribe", track_sid=track_sid,
                                             participant_sid=source.participant_sid, kind=subscription.kind))
        return tuple(slots)

    async def answer(self, sdp: str) -> None:
        """Apply the client's answer to the offer that is out, then send the next offer if one is due."""
        if self.gone:  # an answer of the peer connection the client just closed (leaving, or for a media_restart)
            log.debug("media: answer from %s for a closed peer connection ignored", self.participant.identity)
            return
        if not self.offer_out:
            if self.resent:  # a second answer to an offer sent again on a resume
                log.debug("media: answer from %s with no offer out ignored (resumed)", self.participant.identity)
                return
            raise MediaError("no_offer", "there is no offer to answer")
        async with self._lock:
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:
                if self.resent and self.stale_passes > 0 and self.pc.signalingState == "have-local-offer":
                    # Likely an answer to an offer older than the one out: send that one again rather than refuse
                    # (a bad answer to it fails once more and is refused then).
                    self.stale_passes -= 1
                    log.debug("media: stale answer from %s ignored (resumed): %s", self.participant.identity, exc)
                    self.resend_offer_only()
                    return
                self.offer_out = False
                if self.gone:  # it closed while the answer waited for the lock or was being applied
                    log.debug("media: answer from %s for a closed peer connection ignored", self.participant.identity)
                    return
                raise self._refused(exc) from None
            self.offer_out = False
            self.refused_in_a_row = 0
            if self.offers > self.resent_at:  # an answer to an offer made since the resume: older ones are done
                self.resent, self.stale_passes = False, 0
        if self.gone:
            return  # the participant left (or its peer connection closed) meanwhile: nothing of it to offer anyone
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

    def _refused(self, exc: Exception) -> MediaError:
        """Count a refused answer, offer again unless too many were refused in a row; return the error to send."""
        self.refused_in_a_row += 1
        report = _refusals.drop("answers", time.monotonic())
        if report is not None:
            log.info("media: refused %d answer(s) (%d in all; said at most once a minute), the last from %s: %r",
                     report.count, report.total, self.participant.identity, str(exc)[:200])
        reason = "the answer could not be applied: " + str(exc)[:200]
        if self.refused_in_a_row >= MAX_REFUSED_ANSWERS:
            self.dirty = True  # aiortc cannot roll back its offer: the next change's offer supersedes it
            return MediaError("bad_answer", f"{reason}; {self.refused_in_a_row} answers in a row were refused, "
                                            "so no new offer comes until the session changes")
        self.request_offer()
        return MediaError("bad_answer", reason + "; a new offer follows")

    async def add_candidate(self, msg: Candidate) -> None:
        """Add one candidate the client trickled (an empty one, meaning no more, is ignored)."""
        if not msg.candidate.strip():
            return
        try:
            parsed = parse_candidate(msg.candidate)
        except CandidateError as exc:
            raise MediaError("invalid_candidate", str(exc)) from None
        if self.candidates >= MAX_REMOTE_CANDIDATES:
            raise MediaError("too_many_candidates", f"at most {MAX_REMOTE_CANDIDATES} candidates per session")
        self.candidates += 1
        if parsed.transport != "udp":
            return  # the SFU's ICE speaks UDP only: a TCP candidate could never pair
        candidate = RTCIceCandidate(
            component=parsed.component, foundation=parsed.foundation, ip=parsed.address, port=parsed.port,
            priority=parsed.priority, protocol=parsed.transport, type=parsed.type,
            relatedAddress=parsed.related_address, relatedPort=parsed.related_port, tcpType=parsed.tcp_type,
            sdpMid=msg.sdp_mid, sdpMLineIndex=msg.sdp_mline_index)
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # e.g. after end-of-candidates; a candidate for a bundled-away m-line is ignored
            log.debug("media: candidate from %s not added: %s", self.participant.identity, exc)

    # publications --------------------------------------------------------------------------------------------

    def publish(self, track: TrackInfo, cid: str) -> Publication | None:
        """Reserve a recvonly m-line for a track the client announced, and offer it.

        On a gone session (its peer connection closed) the track waits in `unplaced` for a media_restart's fresh
        peer connection (tvapp.server.media.Sfu.restart); None is returned."""
        if self.gone:
            self.unplaced[track.sid] = (track, cid)
            return None
        transceiver = self.pc.addTransceiver(track.kind, direction="recvonly")
        if track.kind == "video":
            prefs = video_preferences(self.sfu.config.video_codecs)
            if prefs:
                transceiver.setCodecPreferences(prefs)
        publication = Publication(track.sid, self.participant.sid, cid, track.kind,
                                  transceiver, keyframe_interval_ms=self.sfu.config.keyframe_interval * 1000)
        publication.muted = track.muted
        publication.rendition_of = track.rendition_of
        if track.rendition_of is not None:  # its publisher starts it paused (tvapp.client.renditions)
            publication.constraints = Constraints(paused=True)
        self.publications[track.sid] = publication
        self.request_offer()
        return publication

    def unpublish(self, track_sid: str) -> Publication | None:
        """Stop receiving a track (its m-line goes inactive)."""
        self.unplaced.pop(track_sid, None)
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
        if publication.track_sid in self.subscriptions or self.gone:
            return  # a gone session's participant is leaving (or restarting: its new session subscribes afresh)
        codec = publication.codec or ""
        subscription = next((s for s in self.idle if s.kind == publication.kind and s.codec == codec), None)
        if subscription is not None:
            self.idle.remove(subscription)
            subscription.transceiver.direction = "sendonly"
        else:
            transceiver = self.pc.addTransceiver(publication.kind, direction="sendonly")
            transceiver.setCodecPreferences(pinned_codecs(publication))
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
