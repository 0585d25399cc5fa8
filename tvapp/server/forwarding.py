"""Forwarding one published track to its subscribers, frame by frame, without decoding or re-encoding.

A `Publication` is fed every RTP packet of a publisher's track by the receiver tap (tvapp.rtc.internals),
reassembles frames with tvapp.core.framing, and hands each complete frame as one av.Packet to every
`Subscription`, whose aiortc sender only packetizes it. Video subscriptions start at a keyframe and
restart at one after loss upstream; keyframe requests (new subscriber, subscriber PLI, loss) go to the
publisher through the `KeyframeRequestGate` of tvapp.core.keyframes, coalesced to one per `keyframe_interval`.
The gate holds all of that state; a publication only sends the PLIs it lets through and sets one timer for
its `next_deadline()`. A subscription its subscriber shows as invisible is `paused` (tvapp.server.adaptive): it
forwards nothing, and restarts at a keyframe asked for at once when shown again.

Simulcast by two tracks (tvapp.core.simulcast): a publication may be a rendition of another (`rendition_of`). A
subscription always belongs to the main track (`publication`) but carries the frames of its `source`, the main
track or its rendition. `switch_source` moves it at a keyframe of the target: the target is asked for one (PLI),
the subscription keeps carrying the old source until that keyframe comes, then carries the target from it on;
its StreamSplice continues the m-line's RTP timeline and its aiortc sender its own SSRC and sequence numbers, so
the subscriber's decoder sees one continuous stream (a picture of another size, from a keyframe).

Everything here runs on the event loop and never awaits: a packet in is at most a few queue pushes out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

import av
from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from tvapp.core.adaptive import Constraints
from tvapp.core.framing import AssembledFrame, AssemblyResult, FrameAssembler
from tvapp.core.keyframes import KeyframeRequestGate
from tvapp.core.splice import StreamSplice
from tvapp.protocol.messages import TrackKind
from tvapp.rtc import internals
from tvapp.rtc.packets import audio_packet, is_keyframe, video_packet, vp8_frame_start
from tvapp.rtc.tracks import PacketTrack

log = logging.getLogger(__name__)


def now_ms() -> float:
    """Return the SFU's clock for pure decisions, in milliseconds."""
    return time.monotonic() * 1000.0


class ForwardingTrace:
    """Benchmark instrument: how long from a frame complete at the SFU to its last RTP packet sent.

    Enabled by the env var TVAPP_SFU_TRACE=FILE; the server writes the samples there as JSON on shutdown.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.complete: dict[int, float] = {}
        self.samples: list[float] = []

    def frame_complete(self, packet: object, at_ms: float) -> None:
        """Remember when the frame in `packet` was complete."""
        self.complete[id(packet)] = at_ms
        if len(self.complete) > 10_000:
            self.complete.clear()

    def sent(self, packet: object) -> None:
        """Record one subscriber's sender finishing `packet`."""
        start = self.complete.get(id(packet))
        if start is not None and len(self.samples) < 1_000_000:
            self.samples.append(now_ms() - start)

    def write(self) -> None:
        """Write the samples (milliseconds) to the trace file."""
        with open(self.path, "w") as fh:
            json.dump({"forwarding_ms": self.samples}, fh)


TRACE: ForwardingTrace | None = ForwardingTrace(os.environ["TVAPP_SFU_TRACE"]) if os.environ.get(
    "TVAPP_SFU_TRACE") else None


class FrameSink(Protocol):
    """What takes a publication's frames besides its subscriptions (a recorder)."""

    def frame(self, data: bytes, timestamp: int, keyframe: bool) -> None: ...

    def close(self) -> None: ...


class Subscription:
    """One m-line of a subscriber's peer connection sending a publication's frames (reusable for another)."""

    def __init__(self, transceiver: RTCRtpTransceiver, kind: TrackKind, codec: str) -> None:
        self.transceiver = transceiver
        self.kind = kind
        self.codec = codec
        self.track = PacketTrack(kind)
        self.publication: Publication | None = None  # the main track subscribed to
        self.source: Publication | None = None  # whose frames it carries: the main track or one of its renditions
        self.target: Publication | None = None  # a source it moves to at that one's next keyframe
        self.switched_off = False  # by congestion handling (tvapp.server.congestion): no frames taken meanwhile
        self.splice = StreamSplice(video=kind == "video", frame_step=3000 if kind == "video" else 960)
        self.paused = False  # the subscriber does not show it (tvapp.server.adaptive): nothing is forwarded
        if TRACE is not None:
            self.track.on_sent = TRACE.sent
        transceiver.sender.replaceTrack(self.track)
        internals.on_keyframe_request(transceiver.sender, self._keyframe_requested)

    @property
    def mid(self) -> str | None:
        """Return the m-line's id in the subscriber's SDP (None until negotiated)."""
        return self.transceiver.mid

    def attach(self, publication: Publication) -> None:
        """Start carrying `publication` (from its next keyframe for video)."""
        self._leave_sources()
        self.publication = self.source = publication
        self.target = None
        self.switched_off = False
        self.paused = False  # a reused m-line forgets the last track's settings (the next adapt applies these)
        self.splice.restart()
        self.track.clear()
        publication.subscriptions.add(self)
        if self.kind == "video":
            publication.request_keyframe()

    def detach(self) -> None:
        """Stop carrying media; the m-line stays for reuse."""
        self._leave_sources()
        if self.publication is not None:
            self.publication.subscriptions.discard(self)
        self.publication = self.source = self.target = None
        self.track.clear()

    def _leave_sources(self) -> None:
        for other in (self.source, self.target):
            if other is not None:
                other.subscriptions.discard(self)

    @property
    def low(self) -> bool:
        """Tell whether it carries (or is moving to) a rendition of its track rather than the track itself."""
        heading = self.target or self.source
        return heading is not None and heading is not self.publication

    def switch_source(self, target: Publication) -> None:
        """Carry `target` (the main track or a rendition of it) from its next keyframe, asked for now; while withheld
        at once (nothing is sent meanwhile: the next send starts at a keyframe anyway)."""
        if target is self.source:
            if self.target is not None:
                self.target.subscriptions.discard(self)
                self.target = None
            return
        if self.target is not None and self.target is not target:
            self.target.subscriptions.discard(self)
        if self.withheld or self.source is None:
            self._carry(target)
            return
        self.target = target
        target.subscriptions.add(self)
        target.request_keyframe()

    def fall_back(self, gone: Publication) -> None:
        """A rendition went away: carry the main track again if it was carrying that rendition."""
        if self.target is gone:
            self.target = None
        if self.source is gone and self.publication is not None:
            self._carry(self.publication)

    def _carry(self, source: Publication) -> None:
        """Carry `source` from its next keyframe, now (a publication's `subscriptions` are those carrying it)."""
        self._leave_sources()
        self.target = None
        self.source = source
        source.subscriptions.add(self)
        self.splice.restart()  # what is queued of the old source still goes: the new one starts at a keyframe after it
        if not self.withheld and self.kind == "video":
            source.request_keyframe()

    def close(self) -> None:
        """Stop for good (the subscriber left)."""
        self.detach()
        self.track.close()

    def switch(self, *, on: bool) -> None:
        """Congestion (tvapp.server.congestion): stop forwarding this subscriber's track, or forward it again."""
        if on == (not self.switched_off):
            return
        self.switched_off = not on
        self._withheld_changed()

    def set_paused(self, paused: bool) -> None:
        """Adaptive stream (tvapp.server.adaptive): the subscriber does not show it (paused), or shows it again."""
        if paused == self.paused:
            return
        self.paused = paused
        self._withheld_changed()

    @property
    def withheld(self) -> bool:
        """Return whether nothing is forwarded: paused by the subscriber's settings or switched off by congestion."""
        return self.paused or self.switched_off

    def _withheld_changed(self) -> None:
        """Drop what is queued when withheld; else start again from the next keyframe, asked for now."""
        if self.withheld:
            self.track.clear()
        else:
            self.splice.resync()
            self._keyframe_requested()

    def deliver(self, pts: int, packet_for: Callable[[int], av.Packet[Any]], keyframe: bool,
                origin: Publication | None = None) -> bool:
        """Queue one frame whose publisher timestamp is `pts` (of `origin`, default its source); return whether it
        still waits for a keyframe (of `origin`)."""
        if self.withheld:
            return False
        if origin is not None and origin is not self.source:
            if origin is not self.target:
                return False
            if not keyframe:
                return True  # the source goes on until the target's keyframe
            old, self.source, self.target = self.source, origin, None
            if old is not None:
                old.subscriptions.discard(self)
            self.splice.restart()  # continue this m-line's timeline from the target's keyframe
        out_pts = self.splice.admit(pts, keyframe)
        if out_pts is not None and not self.track.push(packet_for(out_pts)):
            self.splice.resync()  # the sender fell behind and its backlog was dropped
        return self.splice.waiting_for_keyframe

    def _keyframe_requested(self) -> None:
        if self.source is not None and self.kind == "video":
            self.source.request_keyframe()


class Publication:
    """A published track's incoming media and its fan-out."""

    def __init__(self, track_sid: str, participant_sid: str, cid: str, kind: TrackKind,
                 transceiver: RTCRtpTransceiver, *, keyframe_interval_ms: float) -> None:
        self.track_sid = track_sid
        self.participant_sid = participant_sid
        self.cid = cid  # the publisher's own id for the track
        self.kind = kind
        self.transceiver = transceiver
        self.receiver: RTCRtpReceiver = transceiver.receiver
        self.codec: str | None = None
        self.codec_parameters: object | None = None
        self.muted = False
        self.rendition_of: str | None = None  # the main track's sid, for a rendition (tvapp.core.simulcast)
        self.subscriptions: set[Subscription] = set()
        self.assembler = FrameAssembler(kind)
        self.gate = KeyframeRequestGate(min_interval_ms=keyframe_interval_ms)
        self.media_ssrc: int | None = None
        self.broken = kind == "video"  # until the first keyframe
        self.sinks: list[FrameSink] = []  # recorders (tvapp.server.recorder): every frame, before the fan-out
        self.constraints = Constraints()  # what the publisher was last told (tvapp.server.adaptive)
        self.level_dbov: int | None = None  # loudest RFC 6464 level since the detector last read it
        self._timer: asyncio.TimerHandle | None = None  # wakes us at the gate's next_deadline(), nothing more
        # No per-packet REMB estimator (a fifth of the SFU's receive cost): RoomMedia advertises a fixed cap.
        internals.tap_receiver(self.receiver, self.on_packet, estimate_bandwidth=False)

    @property
    def ready(self) -> bool:
        """Tell whether the codec is known, so subscribers can be offered this track."""
        return self.codec is not None

    def set_codec(self, name: str, parameters: object) -> None:
        """Record the codec negotiated with the publisher."""
        self.codec = name
        self.codec_parameters = parameters

    def advertise_bitrate(self, bps: int) -> None:
        """Tell the publisher the most it may send (REMB); its own loss-based control works under that cap."""
        if self.kind == "video" and self.media_ssrc is not None:
            cap = self.constraints.max_bitrate
            internals.send_remb(self.receiver, bps if cap is None else min(bps, cap), [self.media_ssrc])

    def take_level(self) -> int | None:
        """Return the loudest audio level (-dBov) since the last call, None if no packet (or muted)."""
        level, self.level_dbov = self.level_dbov, None
        return None if self.muted else level

    # packets in ----------------------------------------------------------------------------------------------

    def on_packet(self, packet: RtpPacket) -> None:
        """Take one RTP packet from the receiver (RTX already unwrapped, payload already depayloaded)."""
        now = now_ms()
        self.media_ssrc = packet.ssrc
        if self.kind == "audio":
            level = packet.extensions.audio_level
            if level is not None:
                dbov = int(level[1])
                if self.level_dbov is None or dbov < self.level_dbov:
                    self.level_dbov = dbov
            start: bool | None = True
        else:
            start = vp8_frame_start(packet.payload) if self.codec == "VP8" else None
        data = internals.depayloaded(packet)
        result = self.assembler.add(packet.sequence_number, packet.timestamp, bool(packet.marker), data, now,
                                    frame_start=start)
        self._handle(result, now)
        if self.gate.pending and self._timer is None:
            self._send_due_keyframe_request(now)

    def poll(self) -> None:
        """Give up on gaps that waited too long (called periodically)."""
        now = now_ms()
        self._handle(self.assembler.poll(now), now)

    def _handle(self, result: AssemblyResult, now: float) -> None:
        if result.lost and self.kind == "video":
            self.broken = True
            self.request_keyframe()
        for frame in result.frames:
            self._forward(frame, now)

    def _forward(self, frame: AssembledFrame, now: float) -> None:
        keyframe = True
        if self.kind == "video":
            keyframe = is_keyframe(self.codec or "VP8", frame.data)
            if keyframe:
                self.broken = False
            elif self.broken:
                return
        if self.sinks and not self.muted:
            for sink in list(self.sinks):
                try:
                    sink.frame(frame.data, frame.timestamp, keyframe)
                except Exception:  # a recorder's bug must never stop the call: that sink is dropped
                    log.exception("forwarding: a frame sink of %s failed and was removed", self.track_sid)
                    self.sinks.remove(sink)
        if self.muted or not self.subscriptions:
            return
        make = video_packet if self.kind == "video" else audio_packet
        shared: dict[int, av.Packet[Any]] = {}

        def packet_for(pts: int) -> av.Packet[Any]:
            packet = shared.get(pts)
            if packet is None:
                packet = shared[pts] = make(frame.data, pts)
                if TRACE is not None:
                    TRACE.frame_complete(packet, now)
            return packet

        waiting = False
        for subscription in list(self.subscriptions):
            waiting = subscription.deliver(frame.timestamp, packet_for, keyframe, self) or waiting
        if waiting:
            self.request_keyframe()

    # keyframes -----------------------------------------------------------------------------------------------

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, coalesced to one request per keyframe interval."""
        if self.kind != "video":
            return
        if self.media_ssrc is None:
            self.gate.defer()  # nothing received yet: asked for as the first packet arrives
            return
        now = now_ms()
        if self.gate.request(now):
            internals.send_pli(self.receiver, self.media_ssrc)
        else:
            self._wake_at_deadline(now)

    def _send_due_keyframe_request(self, now: float) -> None:
        if self.media_ssrc is not None and self.gate.due(now):
            internals.send_pli(self.receiver, self.media_ssrc)
        else:
            self._wake_at_deadline(now)

    def _wake_at_deadline(self, now: float) -> None:
        deadline = self.gate.next_deadline()
        if self._timer is None and deadline is not None and self.media_ssrc is not None:
            self._timer = asyncio.get_running_loop().call_later(max(0.0, (deadline - now) / 1000.0), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._send_due_keyframe_request(now_ms())

    def close(self) -> None:
        """Stop forwarding: every subscription is detached."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sink in list(self.sinks):
            sink.close()
        for subscription in list(self.subscriptions):
            if self.rendition_of is not None and subscription.publication is not self:
                subscription.fall_back(self)  # a subscription of the main track that carried this rendition
            else:
                subscription.detach()
