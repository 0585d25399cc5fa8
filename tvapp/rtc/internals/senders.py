"""A sender's private parts: the remote end's keyframe requests, REMB and NACK reach tvapp, and its counts.

- `on_keyframe_request`: learn that the remote end of a sender sent PLI/FIR (aiortc only flags its own
  encoder, which pre-encoded packets bypass).
- `on_remb` / `on_nack`: the REMB bitrates and NACKed sequence numbers the remote end sends about a sender
  (aiortc's own handling stays); the SFU's congestion control reads them.
- `sender_counts`: packets and bytes sent and the latest receiver report, without building a stats report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    unpack_remb_fci,
)

from tvapp.rtc.internals.patching import AiortcInternalsChanged


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` whenever the remote end of `sender` asks for a keyframe (PLI or FIR)."""
    if not callable(getattr(sender, "_send_keyframe", None)):
        raise AiortcInternalsChanged("RTCRtpSender has no _send_keyframe")
    sender._send_keyframe = callback  # type: ignore[method-assign]


_SENDER_STATS = "_RTCRtpSender__stats"
_SENDER_PACKETS = "_RTCRtpSender__packet_count"
_SENDER_OCTETS = "_RTCRtpSender__octet_count"


def sender_counts(sender: RTCRtpSender) -> tuple[int, int, int, int] | None:
    """Return (packets sent, bytes sent, packets the remote end reported received, and lost) of a sender, read
    without building a stats report (cheap enough for every 250 ms); the last two are those of its latest RTCP
    receiver report, -1 before any. None if aiortc no longer keeps these."""
    packets = getattr(sender, _SENDER_PACKETS, None)
    octets = getattr(sender, _SENDER_OCTETS, None)
    stats = getattr(sender, _SENDER_STATS, None)
    if packets is None or octets is None or stats is None:
        return None
    received = lost = -1
    for entry in list(stats.values()):
        if getattr(entry, "type", None) == "remote-inbound-rtp":
            received, lost = int(entry.packetsReceived or 0), int(entry.packetsLost or 0)
    return int(packets), int(octets), received, lost


def on_remb(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call `callback(bps)` with every REMB the remote end of `sender` sends about it (aiortc's own handling stays)."""
    original = getattr(sender, "_handle_rtcp_packet", None)
    if not callable(original):
        raise AiortcInternalsChanged("RTCRtpSender has no _handle_rtcp_packet")

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                if sender._ssrc in ssrcs:
                    callback(int(bitrate))
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def on_nack(sender: RTCRtpSender, callback: Callable[[list[int]], None]) -> None:
    """Call `callback(seqs)` with the sequence numbers of every NACK the remote end of `sender` sends about it
    (aiortc's receiver NACKs at once on a gap, where its receiver reports come every 0.5-1.5 s; the retransmission
    stays aiortc's)."""
    original = getattr(sender, "_handle_rtcp_packet", None)
    if not callable(original):
        raise AiortcInternalsChanged("RTCRtpSender has no _handle_rtcp_packet")

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK and packet.media_ssrc == sender._ssrc:
            callback(list(packet.lost))
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]
