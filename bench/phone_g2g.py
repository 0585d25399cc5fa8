"""Phone-camera glass to glass: a paired phone's stamped camera -> the TV (forwarded, not re-encoded) -> the SFU ->
a subscriber's decoder, read from the frame's own pixels (`python -m bench.tv_camera --phone-g2g`).

A real `tvapp tv` with its built-in core (SDL dummy screen, no sound) in its room. The phone is an aiortc peer in
this process, paired over the TV's real endpoints and offering over /v1/remote (phone_camera_offer) exactly as
the Remote page does: it sends a TestPatternTrack (640x480@30, each frame stamped with its wall-clock capture time,
tvapp.client.stamp) encoded by the SDK's VP8 encoder (800 kbps), so a browser's camera pipeline and encoder are
not in the figure (Chromium's fake camera cannot carry a stamp). An SDK subscriber in the room (same process, one
clock) decodes the TV's phone-camera track; latency = stamp age when recv() returns the frame.

Baseline, same run and room: the same source and encoder published straight to the SFU by an SDK participant
(what a phone joining the room itself would give). `tv_added_*` is what the hop through the TV costs.
Goal (issue 15): p95 <= 150 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from aiortc import RTCRtpSender, RTCSessionDescription

from bench.common import latency_ms
from bench.glass_to_glass import FPS, HEIGHT, VIDEO_BITRATE, WIDTH, Reader, record
from tvapp.client import Room
from tvapp.client import events as ev
from tvapp.client.encoder import EncodedVideoTrack, VideoEncoder
from tvapp.client.remote_link import RemoteLink, confirm_pairing, request_pairing
from tvapp.client.rest import RestClient
from tvapp.client.sources import TestPatternTrack
from tvapp.protocol import remote_messages as rp
from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection
from tvapp.testing.tv import TvProcess

GOAL_P95_MS = 150.0


def _core_url(tv: TvProcess) -> str:
    match = re.search(r"built-in core at (\S+?);", tv.output)
    if match is None:
        raise RuntimeError(f"the TV did not say where its core is:\n{tv.output}")
    return match.group(1)


async def _pair(tv: TvProcess) -> str:
    url = tv.remote_url()
    started = await request_pairing(url, "Bench phone")
    _, sidecar = await asyncio.to_thread(tv.wait_for, lambda s: s["pairing"] is not None, 10.0, "the pairing code")
    paired = await confirm_pairing(url, started.pairing_id, code=sidecar["pairing"]["code"].replace(" ", ""),
                                   name="Bench phone")
    return paired.credential


async def _subscribe(core: str, invite: str, identity: str, wanted: str) -> tuple[Room, asyncio.Task[Any]]:
    pair = await RestClient(core).redeem_invite(invite, identity)
    room = await Room.connect(core, pair.access_token, host_addresses=["127.0.0.1"])
    arrived = asyncio.create_task(room.wait_for(
        ev.TrackSubscribed, lambda e: e.track.kind == "video" and e.publication.name == wanted, timeout=30))
    return room, arrived


async def phone_round(tv: TvProcess, core: str, invite: str, reader: Reader, warmup: float, seconds: float) -> float:
    """Stream the stamped pattern as the TV's phone camera; read it at a subscriber; return the seconds recorded."""
    subscriber, arrived = await _subscribe(core, invite, "bench-viewer", "tv-phone-camera")
    link = await RemoteLink.connect(tv.remote_url(), await _pair(tv))
    internals.set_host_addresses(["127.0.0.1"])
    phone = new_peer_connection()
    pattern = TestPatternTrack(WIDTH, HEIGHT, FPS)
    encoder = VideoEncoder("vp8", WIDTH, HEIGHT, FPS, VIDEO_BITRATE)
    transceiver = phone.addTransceiver(EncodedVideoTrack(pattern, encoder), direction="sendonly")
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    transceiver.setCodecPreferences([c for c in capabilities.codecs if c.mimeType.lower() == "video/vp8"])
    internals.on_keyframe_request(transceiver.sender, encoder.request_keyframe)
    try:
        await phone.setLocalDescription(await phone.createOffer())
        result = await link.command(rp.PhoneCameraOffer(sdp=phone.localDescription.sdp), timeout=20)
        if not result.ok or result.sdp is None:
            raise RuntimeError(f"the TV refused the phone camera: {result.error}")
        await phone.setRemoteDescription(RTCSessionDescription(sdp=result.sdp, type="answer"))
        event = await arrived
        task = asyncio.create_task(reader.run(event.track))
        try:
            return await record(reader, warmup, seconds)
        finally:
            task.cancel()
    finally:
        with contextlib.suppress(Exception):
            await link.command(rp.PhoneCameraStop())
        await link.close()
        pattern.stop()
        await phone.close()
        await subscriber.disconnect()


async def direct_round(core: str, invite: str, reader: Reader, warmup: float, seconds: float) -> float:
    """Publish the same source straight to the SFU (the baseline); read it at a subscriber."""
    subscriber, arrived = await _subscribe(core, invite, "bench-viewer-2", "bench-direct")
    pair = await RestClient(core).redeem_invite(invite, "bench-phone-direct")
    publisher = await Room.connect(core, pair.access_token, host_addresses=["127.0.0.1"])
    try:
        await publisher.local_participant.publish_track(TestPatternTrack(WIDTH, HEIGHT, FPS), source="camera",
                                                        name="bench-direct")
        event = await arrived
        task = asyncio.create_task(reader.run(event.track))
        try:
            return await record(reader, warmup, seconds)
        finally:
            task.cancel()
    finally:
        await publisher.disconnect()
        await subscriber.disconnect()


async def _bench(tv: TvProcess, rounds: int, warmup: float, seconds: float) -> dict[str, Any]:
    _, sidecar = await asyncio.to_thread(tv.wait_for, lambda s: s["screen"] == "RoomScreen" and s["invite_code"],
                                         60.0, "the TV's room")
    core, invite = _core_url(tv), sidecar["invite_code"]
    via_tv, direct = Reader(), Reader()
    tv_wall = direct_wall = 0.0
    for _ in range(rounds):
        tv_wall += await phone_round(tv, core, invite, via_tv, warmup, seconds)
        direct_wall += await direct_round(core, invite, direct, warmup, seconds)
    return {"via_tv": _summary(via_tv, tv_wall), "direct": _summary(direct, direct_wall)}


def _summary(reader: Reader, wall: float) -> dict[str, Any]:
    return latency_ms(reader.latencies) | {"samples": len(reader.latencies),
                                           "frames_per_s": round(reader.frames / max(wall, 1e-9), 1),
                                           "unreadable_stamps": reader.unreadable}


def measure(rounds: int, warmup: float, seconds: float) -> dict[str, Any]:
    """Run the TV and both modes; return the figures for tv_camera's JSON line."""
    with tempfile.TemporaryDirectory(prefix="tvapp-bench-phone-") as tmp:
        work = Path(tmp)
        tv = TvProcess(work / "tv", ["--host", "127.0.0.1", "--port", "0", "--name", "Bench TV", "--data",
                                     str(work / "data"), "--no-audio"], size="1280x720")
        try:
            started = time.monotonic()
            figures = asyncio.run(_bench(tv, rounds, warmup, seconds))
        finally:
            tv.stop()
    via_tv, direct = figures["via_tv"], figures["direct"]
    return {
        "phone_g2g": {
            "rounds": rounds, "measured_s_per_round": seconds, "warmup_s": warmup,
            "video": f"{WIDTH}x{HEIGHT}@{FPS} VP8 {VIDEO_BITRATE // 1000} kbps (SDK encoder as the phone's)",
            "measured": "phone capture stamp -> TV (forwarded) -> SFU -> decoded by recv() at an SDK subscriber",
            "via_tv": via_tv,
            "baseline": "same source published straight to the SFU, same room, same subscriber kind",
            "direct": direct,
            "tv_added_p50_ms": round(via_tv["p50_ms"] - direct["p50_ms"], 2),
            "tv_added_p95_ms": round(via_tv["p95_ms"] - direct["p95_ms"], 2),
            "goal_p95_ms": GOAL_P95_MS, "goal_met": via_tv["p95_ms"] <= GOAL_P95_MS,
            "wall_s": round(time.monotonic() - started, 1),
        }
    }
