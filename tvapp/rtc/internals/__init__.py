"""Every use of aiortc/aioice private attributes in tvapp, behind small functions (pinned: aiortc 1.16.0).

This package is the one place in tvapp that touches aiortc's private names (tests/test_layering.py checks it).
Import it as `from tvapp.rtc import internals` and call `internals.X`; every name is re-exported here from:

- `receivers`: the SFU's receiver tap (`tap_receiver`, `depayloaded`), `send_remb`, `send_pli`, the counts read
  without a stats report (`packets_received`, `receive_counts`), the decoders aiortc makes
  (`wrap_receiver_decoders`, `decoder_thread`) and `negotiated_codecs`.
- `senders`: `on_keyframe_request`, `on_remb`, `on_nack`, `sender_counts`.
- `recovery`: how a lost video packet is recovered: `route_rtx` (RTX routed by SSRC on a bundled transport) and
  `use_video_receive_buffers` (the SDK's receive buffer in place of aiortc's jitter buffer).
- `guards`: `install_guards()` makes aiortc/aioice drop malformed input from the network instead of raising
  (datagrams, RTP/RTCP handling, the start-up race, SSRC admission); `dropped()` counts what they dropped.
- `hosts`: the ICE host sockets: `set_host_addresses`, `set_port_range`, announced addresses, `local_address`.
- `check`: `check_internals()` raises `AiortcInternalsChanged` naming what moved; the server calls it at start-up.
- `patching`: what they share: the pin, the private names, `_wrap` and its `_originals`, the drop counter.
"""

from __future__ import annotations

import random  # noqa: F401 - tests patch internals.random.randrange (the port range's rotating start)

from tvapp.rtc.internals.check import check_internals
from tvapp.rtc.internals.guards import (
    MAX_QUEUED_DATAGRAMS,
    SSRCS_BASE,
    SSRCS_PER_MLINE,
    guard_connect_race,
    guard_datagrams,
    guard_rtp_handling,
    guard_ssrcs,
    install_guards,
    ssrc_admission,
)
from tvapp.rtc.internals.hosts import (
    HostAddressUnusable,
    PortRangeExhausted,
    configure_from_env,
    default_host_addresses,
    local_address,
    port_range,
    set_host_addresses,
    set_port_range,
)
from tvapp.rtc.internals.patching import (
    ANNOUNCED,
    PINNED_AIOICE,
    PINNED_AIORTC,
    AiortcInternalsChanged,
    _originals,
    dropped,
)
from tvapp.rtc.internals.receivers import (
    decoder_thread,
    depayloaded,
    negotiated_codecs,
    packets_received,
    receive_counts,
    send_pli,
    send_remb,
    tap_receiver,
    wrap_receiver_decoders,
)
from tvapp.rtc.internals.recovery import route_rtx, use_video_receive_buffers
from tvapp.rtc.internals.senders import (
    on_keyframe_request,
    on_nack,
    on_remb,
    sender_counts,
)

__all__ = [
    "ANNOUNCED", "MAX_QUEUED_DATAGRAMS", "PINNED_AIOICE", "PINNED_AIORTC", "SSRCS_BASE", "SSRCS_PER_MLINE",
    "AiortcInternalsChanged", "HostAddressUnusable", "PortRangeExhausted", "_originals", "check_internals",
    "configure_from_env", "decoder_thread", "default_host_addresses", "depayloaded", "dropped",
    "guard_connect_race", "guard_datagrams", "guard_rtp_handling", "guard_ssrcs", "install_guards",
    "local_address", "negotiated_codecs", "on_keyframe_request", "on_nack", "on_remb", "packets_received",
    "port_range", "receive_counts", "route_rtx", "send_pli", "send_remb", "sender_counts", "set_host_addresses",
    "set_port_range", "ssrc_admission", "tap_receiver", "use_video_receive_buffers", "wrap_receiver_decoders",
]
