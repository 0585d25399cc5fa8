"""Peer connections configured as every part of tvapp needs them: max-bundle, no public STUN server, guarded.

Every peer connection tvapp makes comes from here, so the guards of tvapp.rtc.internals (malformed input
dropped instead of stopping a transport) are in place before the first datagram can arrive.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)

from tvapp.rtc import internals


def new_peer_connection(ice_servers: Iterable[tuple[str, str, str]] = (), *, relay_only: bool = False,
                        announced: Iterable[str] = ()) -> RTCPeerConnection:
    """Return a guarded peer connection using only the given (url, username, credential) ICE servers.

    `relay_only` gathers TURN candidates only (iceTransportPolicy "relay"); `announced` addresses (a 1:1 NAT's
    public IPs) are offered beside each host candidate on the same port (see tvapp.rtc.internals).
    """
    internals.install_guards()
    servers = [RTCIceServer(urls=url, username=user or None, credential=cred or None)
               for url, user, cred in ice_servers]
    # An explicit empty list: with None, aiortc falls back to a public Google STUN server.
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
                                            iceTransportPolicy=policy))
    setattr(pc, internals.ANNOUNCED, tuple(announced))
    return pc
