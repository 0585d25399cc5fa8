"""RTX reaches its receiver when one transport carries several video m-lines (tvapp.rtc.internals.route_rtx).

aiortc's RTP router knew each receiver's media SSRC but not its RTX SSRC and routed an RTX packet by payload type
alone, which works only while a single receiver has that payload type: with two video tracks on one bundled
transport (a member subscribed to two publishers, a publisher with a simulcast rendition) every retransmission
was dropped. Real peer connections on loopback, two video tracks; the check is aiortc's own routing decision.
"""

from __future__ import annotations

from aiortc import VideoStreamTrack
from aiortc.rtp import RtpPacket

from tvapp.rtc import internals
from tvapp.rtc.peer import new_peer_connection
from tvapp.testing.aio import run
from tvapp.testing.waiting import wait_until_async as wait_until


def test_each_video_receiver_gets_its_own_rtx_packets_with_two_video_m_lines() -> None:
    async def scenario() -> None:
        internals.set_host_addresses(["127.0.0.1"])
        sender, receiver = new_peer_connection(), new_peer_connection()
        try:
            for _ in range(2):
                sender.addTrack(VideoStreamTrack())
            await sender.setLocalDescription(await sender.createOffer())
            await receiver.setRemoteDescription(sender.localDescription)
            await receiver.setLocalDescription(await receiver.createAnswer())
            await sender.setRemoteDescription(receiver.localDescription)
            receivers = [t.receiver for t in receiver.getTransceivers()]
            await wait_until(lambda: all(internals.receive_counts(r) for r in receivers), 15,
                             "video to arrive on both m-lines")
            router = receivers[0].transport._rtp_router
            for sent, got in zip(sender.getTransceivers(), receiver.getTransceivers(), strict=True):
                rtx_pt = next(c.payloadType for c in internals.negotiated_codecs(got)
                              if c.mimeType.lower() == "video/rtx")
                packet = RtpPacket(payload_type=rtx_pt, sequence_number=1, timestamp=0,
                                   ssrc=sent.sender._rtx_ssrc, payload=b"\x00\x01" + bytes(10))
                assert router.route_rtp(packet) is got.receiver  # None before route_rtx: dropped
        finally:
            await sender.close()
            await receiver.close()
            internals.set_host_addresses(None)

    run(scenario())
