"""Peer connections configured as every part of tvapp needs them: max-bundle and no public STUN server."""

from __future__ import annotations

from collections.abc import Iterable

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection


def new_peer_connection(ice_servers: Iterable[tuple[str, str, str]] = ()) -> RTCPeerConnection:
    """Return a peer connection using only the given (url, username, credential) ICE servers."""
    servers = [RTCIceServer(urls=url, username=user or None, credential=cred or None)
               for url, user, cred in ice_servers]
    # An explicit empty list: with None, aiortc falls back to a public Google STUN server.
    return RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
