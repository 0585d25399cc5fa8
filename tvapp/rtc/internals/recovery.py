"""How a lost video packet is recovered on a bundled transport: RTX routing and the SDK's receive buffers.

- `route_rtx`: aiortc's RTP router learns a receiver's media SSRC from the remote description but not its RTX
  SSRC; an RTX packet is then routed by payload type alone, which works only while one receiver of the transport
  has that payload type. With two video m-lines on a bundled transport (a member subscribed to several publishers,
  a publisher with a simulcast rendition) every retransmission was dropped: a lost packet was never recovered and
  aiortc's video jitter buffer (512 packets) held every later frame back, so nothing was decoded for up to 512
  packets (over 30 s for a 15 fps rendition). Each receiver's RTX SSRC is now registered with the router too
  (one of the guards `install_guards` applies).
- `use_video_receive_buffers`: give every video receiver aiortc creates another jitter buffer (the SDK's
  tvapp.client.receivebuffer, which gives a lost packet up and asks for a keyframe instead of stalling).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport

from tvapp.rtc.internals.patching import _CODECS, _JITTER, _wrap


def use_video_receive_buffers(make: Callable[[Callable[[int], str | None]], Any]) -> None:
    """Give every video receiver aiortc creates from now on `make(codec_of)` as its jitter buffer, `codec_of`
    naming the codec of a payload type (tvapp.client.receivebuffer; the SFU's tap_receiver replaces it anyway)."""

    def wrap(original: Callable[..., None]) -> Callable[..., None]:
        def init(receiver: Any, kind: str, transport: Any) -> None:
            original(receiver, kind, transport)
            if kind == "video":
                def codec_of(payload_type: int) -> str | None:
                    codec = getattr(receiver, _CODECS, {}).get(payload_type)
                    return None if codec is None else str(codec.mimeType.split("/")[1])

                setattr(receiver, _JITTER, make(codec_of))

        return init

    _wrap(RTCRtpReceiver, "__init__", wrap)


def route_rtx() -> None:
    """Register each receiver's RTX SSRC with its transport's RTP router, as aiortc does its media SSRC."""

    def make(original: Callable[..., None]) -> Callable[..., None]:
        def register(transport: Any, receiver: Any, parameters: Any) -> None:
            original(transport, receiver, parameters)
            table = transport._rtp_router.ssrc_table
            for encoding in parameters.encodings:
                if encoding.rtx is not None and encoding.rtx.ssrc is not None:
                    table[encoding.rtx.ssrc] = receiver  # route_rtp checks the payload type is the receiver's

        return register

    _wrap(RTCDtlsTransport, "_register_rtp_receiver", make)
