"""What every part of this package shares: the pinned aiortc/aioice versions, the private attribute names it reads,
`AiortcInternalsChanged`, `_wrap` (the one way an aiortc/aioice method is replaced, its original kept in `_originals`
so wrapping twice does nothing) and the guards' drop counter (`dropped()`: inputs dropped, by kind, logged as a
WARNING at most once a minute per kind).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from tvapp.core.drops import DropCounter

PINNED_AIORTC = "1.16.0"
PINNED_AIOICE = "0.13.0"  # what aiortc 1.16.0 installs; the guards wrap its methods too
_JITTER = "_RTCRtpReceiver__jitter_buffer"
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"
_RTX_SSRCS = "_RTCRtpReceiver__rtx_ssrc"
_CODECS = "_RTCRtpReceiver__codecs"
# Every private attribute of RTCRtpReceiver read above: check_internals() finds each set in its __init__.
_RECEIVER_ATTRS = (_JITTER, _DECODER_QUEUE, _DECODER_THREAD, _ESTIMATOR, _RTCP_SSRC, _REMOTE_STREAMS, _RTX_SSRCS,
                   _CODECS)
_ENV_HOSTS = "TVAPP_MEDIA_HOST_ADDRESSES"
_KNOWN_SOURCES = "_tvapp_known_sources"
_CONNECT = "_RTCPeerConnection__connect"
_REMOTE_DESCRIPTION = "_RTCPeerConnection__remoteDescription"
_GATHER = "_RTCPeerConnection__gather"
_ICE_TRANSPORTS = "_RTCPeerConnection__iceTransports"
ANNOUNCED = "_tvapp_announced"


log = logging.getLogger("tvapp.rtc.internals")  # the name it always logged under


class AiortcInternalsChanged(RuntimeError):
    """The installed aiortc no longer has the private attributes tvapp relies on."""


_drops = DropCounter(interval_s=60.0)
_originals: dict[str, Any] = {}


def dropped() -> dict[str, int]:
    """Return how many inputs of each kind the guards dropped in this process so far."""
    return _drops.totals()


def _drop(kind: str, level: int = logging.WARNING) -> None:
    report = _drops.drop(kind, time.monotonic())
    if report is not None:
        log.log(level, "media: dropped %d %s (%d in all; said at most once a minute)", report.count, report.kind,
                    report.total)


def _fail(what: str, exc: BaseException) -> None:
    """Drop what an unexpected exception stopped: an ERROR with its traceback, at most once a minute per place."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f"{os.path.basename(frame.tb_frame.f_code.co_filename)}:{frame.tb_lineno}" if frame else "?"
    report = _drops.drop(f"{what} that raised {_exception_name(exc)} at {where}", time.monotonic())
    if report is not None:
        log.error("media: dropped %d %s (%d in all; said at most once a minute)", report.count, report.kind,
                  report.total, exc_info=exc)


def _exception_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _wrap(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    key = f"{owner.__name__}.{name}"
    if key in _originals:
        return
    original = _originals[key] = getattr(owner, name)
    setattr(owner, name, functools.wraps(original)(make(original)))
