"""The TV forwards a phone's video without re-encoding, and the phone's microphone gets capture-time estimates.

Also in-process against a real core: a phone whose stream never connects stops being the camera after the
connect timeout (told connection_lost), and its tracks leave the room.

Two real aiortc peer connections on loopback: a "phone" sending VP8 it encoded itself (every packet's bytes
recorded) and the TV's end with `PhoneVideoTap` on its receiver. Every frame the TV would publish is byte for byte
one the phone encoded (nothing decoded, nothing re-encoded), it starts at a keyframe, and the TV's keyframe request
reaches the phone's encoder as a PLI. `CaptureClock` is pure arithmetic, checked on its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import VideoStreamTrack

from tvapp.client.encoder import EncodedVideoTrack, VideoEncoder
from tvapp.rtc import internals
from tvapp.rtc.packets import is_keyframe
from tvapp.testing.media import moving_texture
from tvapp.tv.capture import LocalMedia
from tvapp.tv.remote.controller import CommandRefused
from tvapp.tv.remote.phonecam import (
    CAPTURE_LEAD,
    CaptureClock,
    PhoneCamera,
    PhoneVideoTap,
    phone_capture_filter,
)


class Texture(VideoStreamTrack):
    """A moving texture at 30 fps (something a codec has to work for)."""

    def __init__(self) -> None:
        super().__init__()
        self.index = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(moving_texture(320, 240, self.index), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.index += 1
        return frame


class Recorded(MediaStreamTrack):
    """The phone's encoded track, remembering the bytes of every packet it sends."""

    kind = "video"

    def __init__(self, inner: EncodedVideoTrack) -> None:
        super().__init__()
        self.inner = inner
        self.sent: list[bytes] = []

    async def recv(self) -> Any:
        packet = await self.inner.recv()
        self.sent.append(bytes(packet))
        return packet


async def _forwarding() -> tuple[list[bytes], list[bytes], int, int]:
    encoder = VideoEncoder("vp8", 320, 240, 30.0, 400_000, keyframe_interval=60.0)  # keyframes only on request
    phone_track = Recorded(EncodedVideoTrack(Texture(), encoder))
    phone, tv = RTCPeerConnection(), RTCPeerConnection()
    taps: list[PhoneVideoTap] = []

    @tv.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in tv.getTransceivers() if t.receiver.track is track)
        taps.append(PhoneVideoTap(receiver))

    transceiver = phone.addTransceiver(phone_track, direction="sendonly")
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    transceiver.setCodecPreferences([c for c in capabilities.codecs if c.mimeType.lower() == "video/vp8"])
    keyframes_asked = 0

    def asked() -> None:
        nonlocal keyframes_asked
        keyframes_asked += 1
        encoder.request_keyframe()

    internals.on_keyframe_request(transceiver.sender, asked)
    await phone.setLocalDescription(await phone.createOffer())
    await tv.setRemoteDescription(phone.localDescription)
    await tv.setLocalDescription(await tv.createAnswer())
    await phone.setRemoteDescription(tv.localDescription)
    forwarded: list[bytes] = []
    try:
        while not taps or taps[0].track.frames < 60:
            await asyncio.sleep(0.05)
        track = taps[0].track
        while track.backlog:
            forwarded.append(bytes(await track.recv()))
        keyframes_before = sum(is_keyframe("VP8", data) for data in phone_track.sent)
        track.request_keyframe()   # what the room's PLI does: the phone's encoder makes a keyframe
        for _ in range(100):
            if sum(is_keyframe("VP8", data) for data in phone_track.sent) > keyframes_before:
                break
            await asyncio.sleep(0.05)
        keyframes_after = sum(is_keyframe("VP8", data) for data in phone_track.sent)
    finally:
        await phone.close()
        await tv.close()
    return phone_track.sent, forwarded, keyframes_asked, keyframes_after - keyframes_before


def test_the_tv_forwards_the_phones_own_vp8_bytes_and_asks_it_for_keyframes() -> None:
    sent, forwarded, asked, new_keyframes = asyncio.run(asyncio.wait_for(_forwarding(), 60))
    assert len(forwarded) >= 30
    assert is_keyframe("VP8", forwarded[0]), "forwarding starts at a keyframe"
    sent_set = set(sent)
    assert all(frame in sent_set for frame in forwarded), "every forwarded frame is one the phone encoded, unchanged"
    assert asked >= 1 and new_keyframes >= 1, "the TV's keyframe request reached the phone's encoder"


def test_capture_clock_ties_the_phones_samples_to_the_tvs_wall_clock_through_jitter_and_wrap() -> None:
    clock = CaptureClock()
    start = (1 << 32) - 48_000  # the RTP timestamp wraps one second in
    rng = np.random.default_rng(1)
    estimates = []
    for i in range(300):  # 6 s of 20 ms frames, captured at wall time 1000 + i * 0.02, 10-40 ms on the way
        rtp = (start + i * 960) % (1 << 32)
        arrived = 1000.0 + i * 0.02 + 0.010 + rng.uniform(0, 0.03)
        estimates.append(clock.captured_at(rtp, arrived) - (1000.0 + i * 0.02))
    late = np.array(estimates[50:])
    # The least-delayed packet (10 ms) ties the clocks: jitter does not move the estimate, the wrap does not break it.
    assert np.all(np.abs(late - (0.010 - CAPTURE_LEAD)) < 0.004), (late.min(), late.max())
    assert float(np.ptp(late)) < 0.004


def test_an_offer_while_the_tv_is_in_no_room_is_refused() -> None:
    async def offer() -> str:
        phones = PhoneCamera(lambda: None)
        try:
            await phones.offer(object(), "DV_1", "v=0\r\n", lambda msg: None)
        except CommandRefused as refused:
            return refused.code
        return "accepted"

    assert asyncio.run(offer()) == "not_in_room"


def _media(hook: Any) -> LocalMedia:
    media = LocalMedia(None, None)  # the TV's microphone path without devices (the phone is its microphone)
    media.capture_filter = hook
    return media


class _Session:
    """What phone_capture_filter reads of the TV's session: its LocalMedia, which changes with the room."""

    def __init__(self, media: LocalMedia | None) -> None:
        self.media = media


def test_the_phones_blocks_go_through_the_tvs_capture_filter_with_or_without_their_capture_time() -> None:
    block = np.arange(480, dtype=np.int16)
    seen: list[Any] = []
    session = _Session(None)
    current = phone_capture_filter(session)
    assert current()(block, 5.0) is block, "no microphone path on the TV: the block goes as it is"
    session.media = _media(lambda b: seen.append(("block",)) or b * 0)
    assert not current()(block, 5.0).any() and seen == [("block",)]
    session.media = _media(lambda b, at: seen.append(("block", at)) or b)
    assert current()(block, 7.5) is block and seen[-1] == ("block", 7.5)


async def _never_connects(url: str, tokens: tuple[str, str]) -> tuple[list[Any], list[str], list[str]]:
    from aiortc import AudioStreamTrack

    from tvapp.client import Room
    from tvapp.client import events as ev
    from tvapp.protocol import remote_messages as rp

    tv_room = await Room.connect(url, tokens[0], host_addresses=["127.0.0.1"])
    watcher = await Room.connect(url, tokens[1], host_addresses=["127.0.0.1"])
    published: list[str] = []
    unpublished: list[str] = []
    watcher.on(ev.TrackPublished, lambda e: published.append(e.track.name))
    watcher.on(ev.TrackUnpublished, lambda e: unpublished.append(e.track.name))
    told: list[Any] = []
    phones = PhoneCamera(lambda: tv_room, connect_timeout=1.0)
    phone = RTCPeerConnection()
    try:
        phone.addTransceiver(VideoStreamTrack(), direction="sendonly")
        phone.addTransceiver(AudioStreamTrack(), direction="sendonly")
        await phone.setLocalDescription(await phone.createOffer())
        owner = object()
        answer = await phones.offer(owner, "DV_1", phone.localDescription.sdp, told.append)
        assert answer.startswith("v=0") and phones.device_id == "DV_1"
        # The phone never applies the answer: no ICE, no media. The TV gives up after connect_timeout.
        for _ in range(100):
            if told and "tv-phone-camera" in unpublished:
                break
            await asyncio.sleep(0.05)
        assert told == [rp.PhoneCameraStopped(reason="connection_lost",
                                              message="The phone's stream never reached the TV.")]
        assert phones.device_id is None
    finally:
        await phones.close()
        await phone.close()
        await watcher.disconnect()
        await tv_room.disconnect()
    return told, published, unpublished


def test_a_phone_whose_stream_never_arrives_stops_being_the_camera_after_the_connect_timeout(media_server: Any) -> None:
    media_server.http.post("/v1/rooms", json={"name": "phonecam"})
    tokens = (media_server.token("phonecam", "tv-den")["access_token"],
              media_server.token("phonecam", "watcher")["access_token"])
    _, published, unpublished = asyncio.run(asyncio.wait_for(_never_connects(media_server.url, tokens), 60))
    assert {"tv-phone-camera", "tv-phone-mic"} <= set(published)
    assert {"tv-phone-camera", "tv-phone-mic"} <= set(unpublished)
