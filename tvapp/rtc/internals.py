"""Every use of aiortc/aioice private attributes in tvapp, behind small functions (pinned: aiortc 1.16.0).

- `tap_receiver`: replace a receiver's jitter buffer and decoder queue so each incoming RTP packet
  (RTX already unwrapped, payload already depayloaded into ``packet._data``) goes to a callback and
  nothing is ever decoded. The SFU reassembles frames itself (tvapp.core.framing) without the buffer's
  extra frame of latency.
- `send_pli`: ask a publisher for a keyframe through its receiver's RTCP (to the media SSRC).
- `on_keyframe_request`: learn that the remote end of a sender sent PLI/FIR (aiortc only flags its own
  encoder, which pre-encoded packets bypass).
- `set_host_addresses`: choose the host candidates ICE gathers (aioice skips 127.0.0.1 otherwise).

`check_internals()` raises `AiortcInternalsChanged` naming what moved; the server calls it at start-up.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
import aiortc
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci

PINNED_AIORTC = "1.16.0"
_JITTER = "_RTCRtpReceiver__jitter_buffer"
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_ENV_HOSTS = "TVAPP_MEDIA_HOST_ADDRESSES"

_original_host_addresses = aioice.ice.get_host_addresses


class AiortcInternalsChanged(RuntimeError):
    """The installed aiortc no longer has the private attributes tvapp relies on."""


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


def check_internals() -> None:
    """Raise AiortcInternalsChanged unless the installed aiortc has what this module uses."""
    problems = []
    if aiortc.__version__ != PINNED_AIORTC:
        problems.append(f"aiortc {aiortc.__version__} is installed, tvapp is pinned to {PINNED_AIORTC}")
    for owner, name in ((RTCRtpReceiver, "_send_rtcp_pli"), (RTCRtpReceiver, "_handle_rtp_packet"),
                        (RTCRtpSender, "_send_keyframe"), (RTCRtpSender, "_handle_rtcp_packet")):
        if not callable(getattr(owner, name, None)):
            problems.append(f"{owner.__name__}.{name} is gone")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is gone")
    init_names = RTCRtpReceiver.__init__.__code__.co_names
    for attr in (_JITTER, _DECODER_QUEUE, _ESTIMATOR, _RTCP_SSRC):
        if attr not in init_names:
            problems.append(f"RTCRtpReceiver no longer sets {attr.split('__')[1]}")
    if problems:
        raise AiortcInternalsChanged("; ".join(problems))


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


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` whenever the remote end of `sender` asks for a keyframe (PLI or FIR)."""
    if not callable(getattr(sender, "_send_keyframe", None)):
        raise AiortcInternalsChanged("RTCRtpSender has no _send_keyframe")
    sender._send_keyframe = callback  # type: ignore[method-assign]


def set_host_addresses(addresses: Sequence[str] | None) -> None:
    """Offer exactly these host addresses as ICE candidates (None: aioice's default, every non-loopback one)."""
    if addresses is None:
        aioice.ice.get_host_addresses = _original_host_addresses
        return
    chosen = [a.strip() for a in addresses if a.strip()]

    def fixed(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = fixed


def configure_from_env() -> None:
    """Apply TVAPP_MEDIA_HOST_ADDRESSES (comma-separated) when it is set."""
    value = os.environ.get(_ENV_HOSTS)
    if value is not None:
        set_host_addresses(value.split(",") if value.strip() else None)


def negotiated_codecs(transceiver: Any) -> list[Any]:
    """Return the RTCRtpCodecParameters negotiated for a transceiver, preferred (in use) first."""
    codecs = getattr(transceiver, "_codecs", None)
    if codecs is None:
        raise AiortcInternalsChanged("RTCRtpTransceiver has no _codecs")
    return list(codecs)
