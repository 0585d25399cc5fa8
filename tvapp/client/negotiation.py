"""A Room's media: one RTCPeerConnection per joined connection, and what its m-lines carry.

The server makes every offer. Its TransceiverInfo list says, per m-line (mid), whether it carries one of our
publications (``publish``: we attach that publication's sending chain and send) or another participant's track
(``subscribe``: we receive, and a frame pump hands every decoded frame to the RemoteTrack of that subscription).
`MediaSession.apply_offer` applies an offer and returns the answer; the subscriptions that arrived with it are
announced (TrackSubscribed) only after the answer is made, and a subscription whose m-line went away or changed
track ends (TrackUnsubscribed).

Tasks: one frame pump per receiving m-line, owned by the session's TaskSet; `close()` cancels and awaits them and
closes the peer connection. Receive statistics (`receive_stats`) come from each receiver's inbound-rtp report.
Decode costs (`decode_costs`) come from tvapp.client.decodecost, which meters every receiver's decoder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping

import av
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
    RTCStatsReport,
)
from aiortc.mediastreams import MediaStreamError

from tvapp.client import decodecost, receivebuffer
from tvapp.client import events as ev
from tvapp.client.participants import (
    LocalTrackPublication,
    RemoteParticipant,
    RemoteTrack,
    RemoteTrackPublication,
)
from tvapp.client.tasks import TaskSet
from tvapp.protocol import messages as m
from tvapp.rtc import internals

log = logging.getLogger("tvapp.client.room")

Emit = Callable[[ev.RoomEvent], None]


@dataclasses.dataclass(frozen=True)
class ReceiveStats:
    """What arrived for one subscribed track: cumulative counters, and the RTP jitter in milliseconds."""

    track_sid: str
    kind: str
    packets_received: int
    packets_lost: int
    jitter_ms: float
    frames_received: int


@dataclasses.dataclass(frozen=True)
class OfferResult:
    """What applying an offer produced: the answer to send, and the subscriptions it brought."""

    answer: m.Answer
    arrived: tuple[RemoteTrack, ...]


def end_subscription(remote: RemoteTrack, emit: Emit | None) -> None:
    """End a subscription's track and detach it from its publication; announce it if `emit` is given."""
    if not remote.end():
        return
    if remote.publication.track is remote:
        remote.publication.track = None
    if emit is not None:
        emit(ev.TrackUnsubscribed(remote, remote.participant, remote.publication))


class MediaSession:
    """One peer connection: the offers applied to it, its subscriptions by mid, and their frame pumps."""

    def __init__(self, pc: RTCPeerConnection, *, participants: Mapping[str, RemoteParticipant],
                 publications: Mapping[str, LocalTrackPublication], emit: Emit) -> None:
        self.pc = pc
        self.subscriptions: dict[str, RemoteTrack] = {}
        self._participants = participants
        self._publications = publications
        self._emit = emit
        self._pumps = TaskSet("room frame pumps", log)
        self._pumping: set[str] = set()
        self._closed = False
        decodecost.install()
        receivebuffer.install()

    # -- offers --------------------------------------------------------------------------------------------------

    async def apply_offer(self, offer: m.Offer) -> OfferResult | None:
        """Apply a server offer; return the answer and the new subscriptions, or None if the session closed."""
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        if self._closed:
            return None
        infos = {info.mid: info for info in offer.transceivers}
        arrived: list[RemoteTrack] = []
        for transceiver in pc.getTransceivers():
            mid = transceiver.mid
            info = infos.get(mid) if mid is not None else None
            current = self.subscriptions.get(mid) if mid is not None else None
            if current is not None and (info is None or info.direction != "subscribe" or info.track_sid != current.sid):
                self.end_subscription(current)
            if info is None:
                _idle(transceiver)
            elif info.direction == "publish":
                pub = self._publications.get(info.cid or "")
                if pub is None:
                    # Unpublished while this offer was on its way (the server offers only what we published):
                    # the slot idles, and the server's next offer, which the unpublish causes, drops it.
                    log.debug("room: the server offered to receive track %s, unpublished meanwhile", info.cid)
                    _idle(transceiver)
                    continue
                sending = pub.attach_sender(transceiver.sender)
                if transceiver.sender.track is not sending:
                    transceiver.sender.replaceTrack(sending)
                transceiver.direction = "sendonly"
            else:
                transceiver.direction = "recvonly"
                if mid is not None and mid not in self.subscriptions:
                    remote = self._new_subscription(info)
                    if remote is not None:
                        self.subscriptions[mid] = remote
                        self._start_pump(mid, transceiver)
                        arrived.append(remote)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        return OfferResult(m.Answer(sdp=pc.localDescription.sdp), tuple(arrived))

    def announce(self, result: OfferResult) -> None:
        """Emit TrackSubscribed for the subscriptions an offer brought (call once its answer is sent)."""
        for remote in result.arrived:
            self._emit(ev.TrackSubscribed(remote, remote.participant, remote.publication))

    def _new_subscription(self, info: m.TransceiverInfo) -> RemoteTrack | None:
        participant = self._participants.get(info.participant_sid)
        if participant is None:
            log.warning("room: the server sent track %s of unknown participant %s", info.track_sid,
                        info.participant_sid)
            return None
        pub = participant.tracks.get(info.track_sid)
        if pub is None:
            pub = RemoteTrackPublication(m.TrackInfo(sid=info.track_sid, kind=info.kind, source="unknown"), participant)
            participant.tracks[pub.sid] = pub
        remote = RemoteTrack(info.kind, info.track_sid, pub)
        pub.track = remote
        return remote

    def end_subscription(self, remote: RemoteTrack, *, emit: bool = True) -> None:
        """End one subscription (unsubscribed, unpublished, its publisher left); TrackUnsubscribed if `emit`."""
        for mid, track in list(self.subscriptions.items()):
            if track is remote:
                del self.subscriptions[mid]
        end_subscription(remote, self._emit if emit else None)

    def carries_media(self) -> bool:
        """Tell whether packets should be arriving: something is subscribed, or one of our tracks is being sent."""
        if self._closed:
            return False
        return bool(self.subscriptions) or any(t.sender.track is not None for t in self.pc.getTransceivers())

    # -- media -----------------------------------------------------------------------------------------------------

    def _start_pump(self, mid: str, transceiver: RTCRtpTransceiver) -> None:
        if mid in self._pumping:
            return
        self._pumping.add(mid)
        self._pumps.start(self._pump_frames(mid, transceiver.receiver.track), name=f"room frame pump {mid}")

    async def _pump_frames(self, mid: str, track: MediaStreamTrack) -> None:
        """Read one receiver's decoded frames and hand each to whichever subscription has the m-line now."""
        try:
            while True:
                frame = await track.recv()
                remote = self.subscriptions.get(mid)
                if remote is not None and isinstance(frame, (av.AudioFrame, av.VideoFrame)):
                    remote.deliver(frame)
                del frame, remote  # hold nothing of an ended subscription while waiting for the next frame
        except MediaStreamError:
            return
        finally:
            self._pumping.discard(mid)

    async def get_stats(self) -> RTCStatsReport:
        """Return aiortc's statistics of the peer connection."""
        return await self.pc.getStats()

    async def receive_stats(self) -> dict[str, ReceiveStats]:
        """Return what arrived so far for each subscribed track, by track sid."""
        by_mid = {t.mid: t for t in self.pc.getTransceivers() if t.mid is not None}
        result: dict[str, ReceiveStats] = {}
        for mid, remote in list(self.subscriptions.items()):
            transceiver = by_mid.get(mid)
            if transceiver is None:
                continue
            # The media SSRC's counts: aiortc's getStats gives its RTX stream the same id, so once a retransmission
            # arrives its report shows the RTX counts instead.
            counts = internals.receive_counts(transceiver.receiver)
            if counts is not None:
                received, lost, jitter_s = counts
                result[remote.sid] = ReceiveStats(
                    track_sid=remote.sid, kind=remote.kind, packets_received=received, packets_lost=max(0, lost),
                    jitter_ms=jitter_s * 1000.0, frames_received=remote.frames_received)
        return result

    def decode_costs(self) -> dict[str, decodecost.DecodeCost]:
        """Return what decoding each subscribed track has cost so far (tvapp.client.decodecost), by track sid."""
        by_mid = {t.mid: t for t in self.pc.getTransceivers() if t.mid is not None}
        result: dict[str, decodecost.DecodeCost] = {}
        for mid, remote in list(self.subscriptions.items()):
            transceiver = by_mid.get(mid)
            cost = decodecost.receiver_cost(transceiver.receiver) if transceiver is not None else None
            if cost is not None:
                result[remote.sid] = cost
        return result

    async def close(self, *, emit: bool) -> None:
        """End every subscription (TrackUnsubscribed if `emit`), detach the publications, stop the pumps, close."""
        self._closed = True
        for remote in list(self.subscriptions.values()):
            self.end_subscription(remote, emit=emit)
        self.subscriptions.clear()
        for pub in self._publications.values():
            pub.detach_sender()
        await self._pumps.close()
        with contextlib.suppress(Exception):
            await self.pc.close()


def _idle(transceiver: RTCRtpTransceiver) -> None:
    if transceiver.sender.track is not None:
        transceiver.sender.replaceTrack(None)
    transceiver.direction = "inactive"
