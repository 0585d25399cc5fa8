"""`check_internals()`: the server's start-up check that the installed aiortc/aioice still have what this package
uses; it raises `AiortcInternalsChanged` naming what moved (tests/test_rtc_internals.py runs it too).
"""

from __future__ import annotations

import aioice
import aioice.ice
import aiortc
import aiortc.rtcrtpreceiver
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport

from tvapp.rtc.internals.guards import _guard_problems
from tvapp.rtc.internals.patching import (
    _RECEIVER_ATTRS,
    _RX_PACKETS,
    PINNED_AIOICE,
    PINNED_AIORTC,
    AiortcInternalsChanged,
    _originals,
)


def check_internals() -> None:
    """Raise AiortcInternalsChanged unless the installed aiortc has what this module uses."""
    problems = []
    if aiortc.__version__ != PINNED_AIORTC:
        problems.append(f"aiortc {aiortc.__version__} is installed, tvapp is pinned to {PINNED_AIORTC}")
    if aioice.__version__ != PINNED_AIOICE:
        problems.append(f"aioice {aioice.__version__} is installed, tvapp's guards expect {PINNED_AIOICE}")
    problems += _guard_problems()
    for owner, name in ((RTCRtpReceiver, "_send_rtcp_pli"), (RTCRtpReceiver, "_handle_rtp_packet"),
                        (RTCRtpSender, "_send_keyframe"), (RTCRtpSender, "_handle_rtcp_packet")):
        if not callable(getattr(owner, name, None)):
            problems.append(f"{owner.__name__}.{name} is gone")
    if not callable(getattr(aiortc.rtcrtpreceiver, "get_decoder", None)):
        problems.append("aiortc.rtcrtpreceiver.get_decoder is gone")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses is gone")
    init_names = _originals.get("RTCRtpReceiver.__init__", RTCRtpReceiver.__init__).__code__.co_names
    for attr in _RECEIVER_ATTRS:
        if attr not in init_names:
            problems.append(f"RTCRtpReceiver no longer sets {attr.split('__')[1]}")
    if _RX_PACKETS not in RTCDtlsTransport.__init__.__code__.co_names:
        problems.append("RTCDtlsTransport no longer counts received packets")
    if problems:
        raise AiortcInternalsChanged("; ".join(problems))
