"""The aiortc internals tvapp relies on are where tvapp.rtc.internals expects them (fails loudly on an upgrade)."""

import asyncio
import importlib.metadata

import aioice.ice
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket

from tvapp.rtc import internals
from tvapp.rtc.packets import audio_packet, is_keyframe, video_packet, vp8_frame_start
from tvapp.rtc.peer import new_peer_connection
from tvapp.rtc.tracks import PacketTrack


def test_installed_aiortc_is_the_pinned_version() -> None:
    assert importlib.metadata.version("aiortc") == internals.PINNED_AIORTC
    pinned = [line for line in open("pyproject.toml") if line.strip().startswith('"aiortc')]
    assert pinned and f"=={internals.PINNED_AIORTC}" in pinned[0]


def test_check_internals_passes_on_the_pinned_version() -> None:
    internals.check_internals()


def test_receiver_tap_gets_every_packet_and_nothing_is_decoded() -> None:
    async def run() -> list[int]:
        pc = RTCPeerConnection()
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        seen: list[int] = []
        internals.tap_receiver(receiver, lambda p: seen.append(p.sequence_number))
        jitter = getattr(receiver, "_RTCRtpReceiver__jitter_buffer")
        for seq in (5, 6, 7):
            assert jitter.add(RtpPacket(sequence_number=seq)) == (False, None)
        assert getattr(receiver, "_RTCRtpReceiver__decoder_queue").get() is None  # the decoder thread ends at once
        await pc.close()
        return seen

    assert asyncio.run(run()) == [5, 6, 7]


def test_keyframe_request_hook_replaces_the_senders_own_flag() -> None:
    async def run() -> int:
        pc = RTCPeerConnection()
        sender = pc.addTransceiver("video", direction="sendonly").sender
        calls = []
        internals.on_keyframe_request(sender, lambda: calls.append(1))
        sender._send_keyframe()  # what aiortc calls on an incoming PLI/FIR
        await pc.close()
        return len(calls)

    assert asyncio.run(run()) == 1


def test_host_addresses_can_include_loopback_and_be_restored() -> None:
    try:
        internals.set_host_addresses(["127.0.0.1", "::1"])
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
    finally:
        internals.set_host_addresses(None)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


def test_loopback_candidates_are_gathered_and_no_stun_server_is_used() -> None:
    async def run() -> str:
        pc = new_peer_connection()
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    internals.set_host_addresses(["127.0.0.1"])
    try:
        sdp = asyncio.run(run())
    finally:
        internals.set_host_addresses(None)
    candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate")]
    assert candidates and all(" 127.0.0.1 " in c and "typ host" in c for c in candidates)
    assert "srflx" not in sdp  # no STUN server was asked


def test_packet_track_hands_over_packets_in_order_and_drops_a_backlog() -> None:
    async def run() -> tuple[list[int], bool]:
        track = PacketTrack("video", max_backlog=3)
        for pts in (1, 2):
            assert track.push(video_packet(b"\x10", pts))
        got = [(await track.recv()).pts, (await track.recv()).pts]
        for pts in (3, 4, 5):
            track.push(video_packet(b"\x10", pts))
        kept = track.push(video_packet(b"\x10", 6))
        return got + [(await track.recv()).pts], kept

    got, kept = asyncio.run(run())
    assert got == [1, 2, 6] and kept is False


def test_packet_helpers() -> None:
    assert video_packet(b"ab", 90_000).time_base.denominator == 90_000
    assert audio_packet(b"ab", 960).time_base.denominator == 48_000
    assert vp8_frame_start(bytes([0x10, 0])) is True
    assert vp8_frame_start(bytes([0x00, 0])) is False
    assert vp8_frame_start(b"") is None
    assert is_keyframe("VP8", bytes([0x10])) is True and is_keyframe("VP8", bytes([0x11])) is False
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x67\x42") is True
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a") is False


@pytest.mark.parametrize("attr", ["_send_keyframe"])
def test_missing_sender_hook_is_reported_by_name(attr: str) -> None:
    class Bare:
        pass

    with pytest.raises(internals.AiortcInternalsChanged, match=attr):
        internals.on_keyframe_request(Bare(), lambda: None)  # type: ignore[arg-type]
