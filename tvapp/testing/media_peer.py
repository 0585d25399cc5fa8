"""A bare media participant for SFU tests: speaks the signaling protocol directly, with no SDK logic.

It answers every server offer, attaches the tracks it was given to its "publish" m-lines, and counts the
frames it decodes per subscribed track. Unlike the SDK it does not obey the server (a server-side mute
does not stop it sending), which is what tests of the SFU's own enforcement need.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import defaultdict

from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from tvapp.client.signaling import SignalClient, SignalClosed
from tvapp.protocol.messages import Answer, Offer, Publish, ServerMessage, TrackKind, TrackSource, TransceiverInfo
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection


class MediaPeer:
    """One joined participant with a peer connection; create with `await MediaPeer.join(url, token)`."""

    def __init__(self, signal: SignalClient, *, raw: bool = False) -> None:
        self.signal = signal
        self.raw = raw
        self.first_payloads: dict[str, bytes] = {}  # raw peers: track sid -> first payload received
        self.pc = new_peer_connection()
        self.local: dict[str, MediaStreamTrack] = {}
        self.mids: dict[str, TransceiverInfo] = {}
        self.frames: dict[str, int] = defaultdict(int)  # track sid -> frames decoded
        self.first_frame_at: dict[str, float] = {}
        self.last_frame_at: dict[str, float] = {}
        self.messages: list[ServerMessage] = []
        self.offers = 0
        self._pumps: list[asyncio.Task[None]] = []
        self._pumped: set[str] = set()  # mids whose remote track is being read
        self._task = asyncio.create_task(self._run())

    @classmethod
    async def join(cls, url: str, token: str, *, auto_subscribe: bool = True, raw: bool = False) -> MediaPeer:
        """Join and start answering offers; a `raw` peer records payloads instead of decoding them."""
        return cls(await SignalClient.connect(url, token, auto_subscribe=auto_subscribe), raw=raw)

    async def publish(self, cid: str, track: MediaStreamTrack, source: TrackSource) -> None:
        """Announce a track; it is attached when the server's offer reserves an m-line for it."""
        self.local[cid] = track
        kind: TrackKind = "video" if track.kind == "video" else "audio"
        await self.signal.send(Publish(cid=cid, kind=kind, source=source))

    def frames_of(self, kind: str) -> int:
        """Frames decoded so far across the subscribed tracks of one kind."""
        return sum(n for sid, n in self.frames.items()
                   if any(i.track_sid == sid and i.kind == kind for i in self.mids.values()))

    async def wait_for(self, cls: type, timeout: float = 10.0) -> ServerMessage:
        """Return the first message of a type seen so far or arriving within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.messages:
                if isinstance(msg, cls):
                    return msg
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {cls.__name__} within {timeout} s")

    async def _run(self) -> None:
        with contextlib.suppress(SignalClosed, asyncio.CancelledError):
            while True:
                msg = await self.signal.receive()
                self.messages.append(msg)
                if isinstance(msg, Offer):
                    await self._answer(msg)

    async def _answer(self, offer: Offer) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        self.mids = {info.mid: info for info in offer.transceivers}
        by_mid = {t.mid: t for t in self.pc.getTransceivers()}
        for info in offer.transceivers:
            transceiver = by_mid[info.mid]
            if info.direction == "publish" and info.cid in self.local and transceiver.sender.track is None:
                transceiver.sender.replaceTrack(self.local[info.cid])
                transceiver.direction = "sendonly"
            elif info.direction == "subscribe" and info.mid not in self._pumped and transceiver.receiver.track:
                self._pumped.add(info.mid)
                if self.raw:  # before answering, so no packet can reach the decoder first
                    internals.tap_receiver(transceiver.receiver, functools.partial(self._raw_packet, info.mid))
                else:
                    self._pumps.append(asyncio.create_task(self._pump(info.mid, transceiver.receiver.track)))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.signal.send(Answer(sdp=self.pc.localDescription.sdp))
        self.offers += 1

    def _raw_packet(self, mid: str, packet: RtpPacket) -> None:
        info = self.mids.get(mid)
        if info is not None:
            self.first_payloads.setdefault(info.track_sid, internals.depayloaded(packet))
            self.frames[info.track_sid] += int(bool(packet.marker))

    async def _pump(self, mid: str | None, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                info = self.mids.get(mid or "")
                if info is not None and info.direction == "subscribe":
                    self.frames[info.track_sid] += 1
                    self.last_frame_at[info.track_sid] = time.monotonic()
                    self.first_frame_at.setdefault(info.track_sid, self.last_frame_at[info.track_sid])

    async def close(self) -> None:
        """Leave: stop answering, close the peer connection and the socket."""
        self._task.cancel()
        for task in self._pumps:
            task.cancel()
        await self.pc.close()
        with contextlib.suppress(Exception):
            await self.signal.close()
