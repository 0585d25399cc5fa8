"""A receiver's private parts: the SFU's tap (every RTP packet to a callback, nothing decoded), its REMB and PLI,
the counts the SFU and the SDK read without building a stats report, and the decoders aiortc makes.

- `tap_receiver`: replace a receiver's jitter buffer and decoder queue so each incoming RTP packet
  (RTX already unwrapped, payload already depayloaded into ``packet._data``, read with `depayloaded`) goes to a
  callback and nothing is ever decoded. The SFU reassembles frames itself (tvapp.core.framing) without the buffer's
  extra frame of latency.
- `send_remb` / `send_pli`: the most a publisher may send, and a keyframe request (to the media SSRC).
- `packets_received`: how many datagrams a peer connection's transports have received (RTP, RTCP and DTLS alike),
  read without building a stats report: the dead-path watch of tvapp.core.reconnect reads it several times a second.
- `receive_counts`: a receiver's cumulative packets received and lost and its jitter, media SSRCs only (aiortc's
  own getStats gives every SSRC the same id, so an RTX stream hides the media one); the SFU's network quality.
- `wrap_receiver_decoders`: build every decoder aiortc's receivers make through a wrapper (aiortc's
  decoder_worker looks `get_decoder` up in its module) and `decoder_thread`, the thread a receiver decodes in;
  tvapp.client.decodecost meters decode cost with them.
- `negotiated_codecs`: a transceiver's negotiated codecs, the one in use first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import aiortc
import aiortc.rtcrtpreceiver
from aiortc import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci

from tvapp.rtc.internals.patching import (
    _DECODER_QUEUE,
    _DECODER_THREAD,
    _ESTIMATOR,
    _JITTER,
    _REMOTE_STREAMS,
    _RTCP_SSRC,
    _RTX_SSRCS,
    _RX_PACKETS,
    AiortcInternalsChanged,
)


class _PacketTap:
    """Stands in for the receiver's JitterBuffer: hands each packet on, never returns a frame."""

    __slots__ = ("on_packet", "capacity")

    def __init__(self, on_packet: Callable[[RtpPacket], None]) -> None:
        self.on_packet = on_packet
        self.capacity = 1

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self.on_packet(packet)
        return False, None


class _NoDecoder:
    """Stands in for the receiver's decoder queue: the decoder thread finds nothing and ends at once."""

    def get(self) -> None:
        return None

    def put(self, item: object) -> None:
        pass


def packets_received(pc: Any) -> int:
    """Return how many datagrams `pc`'s DTLS transports have received so far (0 before any exists)."""
    total = 0
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if transport is not None:
            total = max(total, int(getattr(transport, _RX_PACKETS, 0)))
    return total


def receive_counts(receiver: RTCRtpReceiver) -> tuple[int, int, float] | None:
    """Return (packets received, packets lost, jitter in seconds) of a receiver's media streams; None before any."""
    streams = getattr(receiver, _REMOTE_STREAMS, None) or {}
    rtx = getattr(receiver, _RTX_SSRCS, None) or {}
    media = [stream for ssrc, stream in list(streams.items()) if ssrc not in rtx]
    if not media:
        return None
    received = sum(int(stream.packets_received) for stream in media)
    lost = sum(int(stream.packets_lost) for stream in media)
    jitter = max((stream.jitter / stream._clockrate for stream in media if stream._clockrate), default=0.0)
    return received, lost, float(jitter)


def tap_receiver(receiver: RTCRtpReceiver, on_packet: Callable[[RtpPacket], None], *,
                 estimate_bandwidth: bool = True) -> None:
    """Send every RTP packet `receiver` accepts to `on_packet` instead of reassembling and decoding it.

    With `estimate_bandwidth` False the receiver also stops running aiortc's per-packet REMB estimator
    (the SFU sends its own periodic REMB with `send_remb`).
    """
    for attr in (_JITTER, _DECODER_QUEUE, _ESTIMATOR):
        if not hasattr(receiver, attr):
            raise AiortcInternalsChanged(f"RTCRtpReceiver has no {attr}")
    # A receiver already started has a decoder thread waiting on the old queue: let it end.
    getattr(receiver, _DECODER_QUEUE).put(None)
    setattr(receiver, _JITTER, _PacketTap(on_packet))
    setattr(receiver, _DECODER_QUEUE, _NoDecoder())
    if not estimate_bandwidth:
        setattr(receiver, _ESTIMATOR, None)


def send_remb(receiver: RTCRtpReceiver, bitrate: int, media_ssrcs: Sequence[int]) -> asyncio.Task[None] | None:
    """Tell the remote sender of `receiver` the most it may send (RTCP REMB), in the background."""
    rtcp_ssrc = getattr(receiver, _RTCP_SSRC, None)
    if rtcp_ssrc is None or not media_ssrcs:
        return None
    packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                            fci=pack_remb_fci(int(bitrate), list(media_ssrcs)))
    coro: Any = receiver._send_rtcp(packet)
    return asyncio.ensure_future(coro)


def depayloaded(packet: RtpPacket) -> bytes:
    """Return the codec payload aiortc's receiver extracted from an RTP packet (the VP8/H.264 descriptor gone)."""
    data: bytes = getattr(packet, "_data", b"")
    return data


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> asyncio.Task[None]:
    """Send a Picture Loss Indication for `media_ssrc` to the remote end of `receiver` (in the background)."""
    coro: Any = receiver._send_rtcp_pli(media_ssrc)
    return asyncio.ensure_future(coro)


def wrap_receiver_decoders(wrap: Callable[[Any, Any], Any]) -> None:
    """Make aiortc's receivers use `wrap(decoder, codec)` for each decoder they make from now on."""
    make = getattr(aiortc.rtcrtpreceiver, "get_decoder")  # noqa: B009 (not in its __all__)

    def wrapped(codec: Any) -> Any:
        return wrap(make(codec), codec)

    setattr(aiortc.rtcrtpreceiver, "get_decoder", wrapped)  # decoder_worker looks it up in its module


def decoder_thread(receiver: RTCRtpReceiver) -> Any:
    """Return the thread a receiver decodes in (None before its first frame)."""
    return getattr(receiver, _DECODER_THREAD, None)


def negotiated_codecs(transceiver: Any) -> list[Any]:
    """Return the RTCRtpCodecParameters negotiated for a transceiver, preferred (in use) first."""
    codecs = getattr(transceiver, "_codecs", None)
    if codecs is None:
        raise AiortcInternalsChanged("RTCRtpTransceiver has no _codecs")
    return list(codecs)
