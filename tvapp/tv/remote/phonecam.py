"""A paired phone as the TV's camera and microphone: the TV's WebRTC end of the phone's stream, and its publication.

The phone (the Remote page, already authenticated on /v1/remote) sends a phone_camera_offer; `PhoneCamera.offer`
answers it with an aiortc RTCPeerConnection on the TV (LAN only, no ICE servers; the TV receives, it sends
nothing, so the phone plays nothing) and publishes what arrives in the TV's room as the TV's own tracks:

- Video WITHOUT re-encoding: the phone's receiver is tapped like the SFU's (tvapp.rtc.internals.tap_receiver,
  tvapp.core.framing.FrameAssembler, the keyframe gating of tvapp.server.forwarding), and each whole VP8 frame goes
  as one av.Packet into a `ForwardedVideoTrack`, which the SDK sends as it is (tvapp.client.participants'
  `EncodedFeed` of tvapp.client.feeds: the sender only packetizes). Keyframe requests from the room (the SFU's PLIs) go back to the
  phone as PLIs. The TV's answer accepts VP8 only, so the codec the phone sends is the one the room gets.
- Audio through the microphone path: `PhoneMicTrack` decodes the phone's Opus (aiortc's receiver), mixes it to
  48 kHz mono int16, cuts it into 10 ms blocks and passes each through the TV's capture filter (the echo canceller)
  with an estimate of when its first sample was captured on the phone (wall time, see `CaptureClock`), then sends
  20 ms frames like the TV's own microphone.

A phone that is the camera takes precedence over the TV's USB camera and microphone: they are held off
(LocalMedia.hold) while it streams and come back as the user left them. Handover: a second phone's offer replaces
the first (told phone_camera_stopped "replaced"); stop, the phone's websocket closing, the connection failing or the
TV leaving its room unpublish the phone's tracks (the others see them go) and release the USB devices.

Everything runs on the TV's network thread (the remote endpoints and the room share its event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from numpy.typing import NDArray

from tvapp.core.framing import FrameAssembler
from tvapp.protocol import remote_messages as rp
from tvapp.rtc import internals
from tvapp.rtc.packets import is_keyframe, video_packet, vp8_frame_start
from tvapp.rtc.tracks import PacketTrack
from tvapp.tv.remote.controller import CommandRefused

if TYPE_CHECKING:
    from tvapp.client.participants import LocalTrackPublication
    from tvapp.client.room import Room
    from tvapp.tv.capture import LocalMedia

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
BLOCK_SAMPLES = 480                  # 10 ms, what the capture filter takes
FRAME_SAMPLES = 960                  # 20 ms frames to the Opus encoder
KEYFRAME_REQUEST_INTERVAL = 0.3      # seconds between two PLIs to the phone
CAPTURE_LEAD = 0.02                  # seconds from the phone's microphone to its packet leaving (capture + encode)
OFFSET_RISE_PER_FRAME = 20e-6        # how fast the capture-clock offset may creep up (1 ms/s: drift, re-routing)
CONNECT_TIMEOUT = 15.0               # seconds for the phone's connection to come up before it counts as lost
BlockFilter = Callable[[NDArray[np.int16], float], NDArray[np.int16]]


def _no_filter(block: NDArray[np.int16], captured_at: float) -> NDArray[np.int16]:
    return block


def phone_capture_filter(session: Any) -> Callable[[], BlockFilter]:
    """Return the filter getter for the phone's microphone: the TV's own `media.capture_filter` (the echo
    canceller's hook), read afresh for every 10 ms block as the TV's microphone does. A hook taking the block and
    its capture time gets both; one taking the block alone gets the block."""
    adapted: dict[int, tuple[object, BlockFilter]] = {}

    def current() -> BlockFilter:
        media = session.media
        hook = getattr(media, "capture_filter", None) if media is not None else None
        if hook is None:
            return _no_filter
        known = adapted.get(id(hook))
        if known is None or known[0] is not hook:
            known = (hook, hook if _takes_capture_time(hook) else (lambda block, captured_at: hook(block)))
            adapted.clear()
            adapted[id(hook)] = known
        return known[1]

    return current


def _takes_capture_time(hook: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


class ForwardedVideoTrack(PacketTrack):
    """The phone's encoded video frames as av.Packets for the TV's publication (`encoded`: never re-encoded)."""

    encoded = True

    def __init__(self, request_keyframe: Callable[[], None]) -> None:
        super().__init__("video", max_backlog=64)
        self._ask = request_keyframe
        self.frames = 0

    def request_keyframe(self) -> None:
        """Ask the phone for a keyframe (the room's subscribers need one)."""
        self._ask()


class PhoneVideoTap:
    """The phone's video receiver tapped: RTP packets in, whole VP8 frames out to a ForwardedVideoTrack."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self.receiver = receiver
        self.track = ForwardedVideoTrack(self.request_keyframe)
        self.assembler = FrameAssembler("video")
        self.media_ssrc: int | None = None
        self.broken = True                 # until the first keyframe
        self._first_ts: int | None = None
        self._last_pli = -1e9
        internals.tap_receiver(receiver, self.on_packet)

    def on_packet(self, packet: RtpPacket) -> None:
        """Take one RTP packet of the phone's video."""
        now = time.monotonic() * 1000.0
        self.media_ssrc = packet.ssrc
        result = self.assembler.add(packet.sequence_number, packet.timestamp, bool(packet.marker),
                                    internals.depayloaded(packet), now, frame_start=vp8_frame_start(packet.payload))
        if result.lost:
            self.broken = True
            self.request_keyframe()
        for frame in result.frames:
            keyframe = is_keyframe("VP8", frame.data)
            if keyframe:
                self.broken = False
            elif self.broken:
                self.request_keyframe()
                continue
            if self._first_ts is None:
                self._first_ts = frame.timestamp
            pts = (frame.timestamp - self._first_ts) % (1 << 32)
            self.track.frames += 1
            if not self.track.push(video_packet(frame.data, pts)):
                self.broken = True         # the sender fell behind: start again at a keyframe
                self.request_keyframe()

    def request_keyframe(self) -> None:
        """Send the phone a PLI, at most one per KEYFRAME_REQUEST_INTERVAL."""
        now = time.monotonic()
        if self.media_ssrc is None or now - self._last_pli < KEYFRAME_REQUEST_INTERVAL:
            return
        self._last_pli = now
        internals.send_pli(self.receiver, self.media_ssrc)


class CaptureClock:
    """Estimates when audio was captured on the phone, in the TV's wall time, from RTP timestamps and arrivals.

    offset = the smallest (arrival - RTP time) seen, allowed to creep up slowly (the phone's clock drifts against
    the TV's; a route may get slower): the least-delayed packet's arrival ties the two clocks, jitter does not.
    """

    def __init__(self) -> None:
        self._offset: float | None = None
        self._last_rtp: int | None = None
        self._unwrapped = 0

    def captured_at(self, rtp_timestamp: int, arrived_at: float) -> float:
        """Return the wall time the frame with this RTP timestamp (48 kHz) was captured."""
        if self._last_rtp is not None:
            step = (rtp_timestamp - self._last_rtp) % (1 << 32)
            self._unwrapped += step if step < (1 << 31) else step - (1 << 32)
        self._last_rtp = rtp_timestamp
        rtp_seconds = self._unwrapped / SAMPLE_RATE
        seen = arrived_at - rtp_seconds
        self._offset = seen if self._offset is None else min(seen, self._offset + OFFSET_RISE_PER_FRAME)
        return rtp_seconds + self._offset - CAPTURE_LEAD


class PhoneMicTrack(MediaStreamTrack):
    """The phone's microphone as the TV's: 20 ms frames of 48 kHz mono s16, each 10 ms block through the filter."""

    kind = "audio"

    def __init__(self, remote: MediaStreamTrack, capture_filter: Callable[[], BlockFilter]) -> None:
        super().__init__()
        self._remote = remote
        self._filter = capture_filter
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_at = 0.0              # capture time of _pending[0]
        self._clock = CaptureClock()
        self._pts = 0
        self._filter_failed = False
        self.blocks = 0                     # 10 ms blocks passed through the filter
        self.last_captured_at: float | None = None

    async def recv(self) -> av.AudioFrame:
        """Return the next 20 ms of the phone's microphone, cleaned by the capture filter."""
        while self._pending.size < FRAME_SAMPLES:
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self._remote.recv()
            arrived = time.time()
            if not isinstance(frame, av.AudioFrame):
                continue
            captured = self._clock.captured_at(int(frame.pts or 0), arrived)
            samples = np.concatenate([out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]
                                     or [np.zeros(0, dtype=np.int16)]).astype(np.int16, copy=False)
            if self._pending.size == 0:
                self._pending_at = captured
            self._pending = np.concatenate([self._pending, samples])
        out = [self._block(self._pending[i:i + BLOCK_SAMPLES], self._pending_at + i / SAMPLE_RATE)
               for i in range(0, FRAME_SAMPLES, BLOCK_SAMPLES)]
        self._pending = self._pending[FRAME_SAMPLES:]
        self._pending_at += FRAME_SAMPLES / SAMPLE_RATE
        data = np.concatenate(out).astype(np.int16, copy=False)
        result = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
        result.sample_rate = SAMPLE_RATE
        result.pts = self._pts
        result.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        return result

    def _block(self, block: NDArray[np.int16], captured_at: float) -> NDArray[np.int16]:
        self.blocks += 1
        self.last_captured_at = captured_at
        try:
            return self._filter()(block, captured_at)
        except Exception:
            if not self._filter_failed:
                self._filter_failed = True
                log.exception("phone camera: the capture filter failed; sending the phone's microphone unfiltered")
            return block


class _Phone:
    """One phone streaming to the TV: its peer connection, what it sends, and where it is published."""

    def __init__(self, owner: object, device_id: str, notify: Callable[[rp.TvMessage], None]) -> None:
        self.owner = owner
        self.device_id = device_id
        self.notify = notify
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video: PhoneVideoTap | None = None
        self.mic: PhoneMicTrack | None = None
        self.room: Room | None = None
        self.publications: list[LocalTrackPublication] = []
        self.mic_publication: LocalTrackPublication | None = None


class PhoneCamera:
    """Which phone is the TV's camera now, its WebRTC end on the TV, and its tracks in the TV's room."""

    def __init__(self, room: Callable[[], Room | None], media: Callable[[], LocalMedia | None] = lambda: None,
                 capture_filter: Callable[[], BlockFilter] = lambda: _no_filter,
                 on_change: Callable[[], None] = lambda: None, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self._room = room
        self.connect_timeout = connect_timeout
        self._media = media
        self._capture_filter = capture_filter
        self.on_change = on_change
        self._phone: _Phone | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def device_id(self) -> str | None:
        """Return the paired device that is the camera now (None: no phone)."""
        return self._phone.device_id if self._phone is not None else None

    def stats(self) -> dict[str, Any]:
        """Return what the phone camera does now (for the TV's sidecar and tests)."""
        phone = self._phone
        if phone is None:
            return {"device_id": None}
        return {"device_id": phone.device_id, "connection": phone.pc.connectionState,
                "video_frames": phone.video.track.frames if phone.video else 0,
                "mic_blocks": phone.mic.blocks if phone.mic else 0,
                "published": len(phone.publications)}

    async def offer(self, owner: object, device_id: str, sdp: str, notify: Callable[[rp.TvMessage], None]) -> str:
        """Answer a phone's offer and publish its camera and microphone as the TV's; return the answer SDP.

        `owner` is the phone's connection (stop and owner_gone name it); `notify` sends it a message later.
        Raises CommandRefused (not_in_room, bad_sdp, phone_camera_failed); the TV's state is unchanged then.
        """
        room = self._room()
        if room is None:
            raise CommandRefused("not_in_room", "The TV is not in a room: join one first, then use the phone.")
        previous = self._phone
        phone = _Phone(owner, device_id, notify)
        try:
            answer = await self._negotiate(phone, sdp)
        except CommandRefused:
            await phone.pc.close()
            raise
        except Exception as exc:
            await phone.pc.close()
            log.warning("phone camera: the offer of %s failed: %s", device_id, exc)
            raise CommandRefused("phone_camera_failed", "The TV could not take this phone's camera.") from None
        except BaseException:  # cancelled (the phone's connection went): leave no peer connection behind
            self._spawn(phone.pc.close())
            raise
        self._phone = phone   # first: ending the previous one must not give the TV's own devices back
        if previous is not None:
            await self._end(previous, "replaced", "Another phone is the TV's camera now.")
        try:
            await self._publish(phone, room)
        except Exception as exc:
            log.warning("phone camera: cannot publish in the room: %s", exc)
            await self._end(phone, None, "")
            raise CommandRefused("phone_camera_failed", "The room did not take the TV's camera.") from None
        log.info("phone camera: %s is the TV's camera", device_id)
        self._watch(phone)
        self.on_change()
        return answer

    async def _negotiate(self, phone: _Phone, sdp: str) -> str:
        pc = phone.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next((t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None)
            if track.kind == "video" and phone.video is None and receiver is not None:
                phone.video = PhoneVideoTap(receiver)
            elif track.kind == "audio" and phone.mic is None:
                phone.mic = PhoneMicTrack(track, self._capture_filter)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            log.info("phone camera: refused an offer: %s", type(exc).__name__)
            raise CommandRefused("bad_sdp", "The phone's offer is not a session description the TV can use.") \
                from None
        capabilities = RTCRtpReceiver.getCapabilities("video")
        video_codecs = [c for c in (capabilities.codecs if capabilities is not None else [])
                        if c.mimeType.lower() in ("video/vp8", "video/rtx")]
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                transceiver.setCodecPreferences(video_codecs)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        video = [t for t in pc.getTransceivers() if t.kind == "video"]
        if phone.video is None or not video or not any(
                c.mimeType.lower() == "video/vp8" for c in internals.negotiated_codecs(video[0])):
            raise CommandRefused("bad_sdp", "The phone's offer has no VP8 video for the TV to take.")
        return str(pc.localDescription.sdp)

    async def _publish(self, phone: _Phone, room: Room) -> None:
        media = self._media()
        if media is not None:
            await media.hold(True)
        phone.room = room
        local = room.local_participant
        assert phone.video is not None
        phone.publications.append(await local.publish_track(phone.video.track, source="camera",
                                                            name="tv-phone-camera"))
        if phone.mic is not None:
            phone.mic_publication = await local.publish_track(phone.mic, source="microphone", name="tv-phone-mic")
            phone.publications.append(phone.mic_publication)

    def _watch(self, phone: _Phone) -> None:
        @phone.pc.on("connectionstatechange")
        async def changed() -> None:
            if phone.pc.connectionState in ("failed", "closed") and self._phone is phone:
                await self._end(phone, "connection_lost", "The connection between the phone and the TV was lost.")

        async def connect_deadline() -> None:
            await asyncio.sleep(self.connect_timeout)
            if self._phone is phone and phone.pc.connectionState != "connected":
                await self._end(phone, "connection_lost", "The phone's stream never reached the TV.")

        task = asyncio.get_running_loop().create_task(connect_deadline())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def set_muted(self, owner: object, muted: bool) -> None:
        """Mute or unmute the phone's microphone in the room; refuse when this phone is not the camera."""
        phone = self._phone
        if phone is None or phone.owner is not owner:
            raise CommandRefused("not_phone_camera", "This phone is not the TV's camera.")
        if phone.mic_publication is not None:
            await phone.mic_publication.set_muted(muted)
        self.on_change()

    async def stop(self, owner: object) -> None:
        """Stop the phone on connection `owner` being the camera (nothing when it is not)."""
        phone = self._phone
        if phone is not None and phone.owner is owner:
            await self._end(phone, None, "")

    def owner_gone(self, owner: object) -> None:
        """The phone's remote connection closed (page closed, network gone): stop it being the camera."""
        phone = self._phone
        if phone is not None and phone.owner is owner:
            self._spawn(self._end(phone, None, ""))

    def room_left(self) -> None:
        """The TV left its room: the phone is no longer its camera (it is told)."""
        phone = self._phone
        if phone is not None:
            self._spawn(self._end(phone, "left_room", "The TV left the room."))

    async def close(self) -> None:
        """Stop the phone camera for good (the TV is shutting down)."""
        for task in list(self._tasks):
            task.cancel()
        if self._phone is not None:
            await self._end(self._phone, None, "")

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end(self, phone: _Phone, reason: rp.StopReason | None, message: str) -> None:
        if self._phone is phone:
            self._phone = None
        room, publications, phone.publications = phone.room, phone.publications, []
        phone.room = None
        if room is not None:
            for pub in publications:
                with contextlib.suppress(Exception):  # the room may be gone already
                    await room.local_participant.unpublish_track(pub)
        if phone.video is not None:
            phone.video.track.close()
        if phone.mic is not None:
            phone.mic.stop()
        with contextlib.suppress(Exception):
            await phone.pc.close()
        if reason is not None:
            with contextlib.suppress(Exception):  # the phone's connection may be closing
                phone.notify(rp.PhoneCameraStopped(reason=reason, message=message))
        if room is not None and self._phone is None:
            media = self._media()
            if media is not None:
                with contextlib.suppress(Exception):
                    await media.hold(False)
        log.info("phone camera: %s is no longer the TV's camera (%s)", phone.device_id, reason or "stopped")
        self.on_change()
