"""The ICE host sockets: which addresses ICE offers, a UDP port range, and announced addresses.

- `set_host_addresses`: choose the host candidates ICE gathers (aioice skips 127.0.0.1 otherwise);
  `configure_from_env` applies TVAPP_MEDIA_HOST_ADDRESSES.
- `set_port_range`: bind every ICE host socket inside `[media] udp_port_range` (aioice binds port 0
  otherwise): aioice.ice's `asyncio` is replaced by a shim whose running loop binds a host socket (a
  datagram endpoint on port 0) to a free port of the range, tried from a rotating start. A range with no free
  port left makes gathering fail with `PortRangeExhausted` (an OSError naming the range) at once, not an ICE
  timeout later.
- `new_peer_connection(announced=...)` (tvapp.rtc.peer) marks a peer connection (`ANNOUNCED`) so that, for each
  host candidate, every announced address of its family (`[media] announced_addresses`, a 1:1 NAT's public IP) is
  offered too, as a server-reflexive candidate on the same port with the host candidate as its related
  address. It is offered in addition to the private host candidate, which keeps LAN clients direct.
- `local_address`: the host address a peer connection's nominated ICE pair sends from.

The port range and announced candidates are installed with the guards (`install_guards`).
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import ipaddress
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import aioice
import aioice.ice
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aiortc import RTCPeerConnection

from tvapp.rtc.internals.patching import (
    _ENV_HOSTS,
    _GATHER,
    _ICE_TRANSPORTS,
    ANNOUNCED,
    _wrap,
)

_original_host_addresses = aioice.ice.get_host_addresses


def set_host_addresses(addresses: Sequence[str] | None) -> None:
    """Offer exactly these host addresses as ICE candidates (None: aioice's default, every non-loopback one)."""
    if addresses is None:
        aioice.ice.get_host_addresses = _original_host_addresses
        return
    chosen = [a.strip() for a in addresses if a.strip()]

    def fixed(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = fixed


def default_host_addresses() -> list[str]:
    """Return the addresses aioice gathers by default (every non-loopback one of this machine)."""
    return list(_original_host_addresses(use_ipv4=True, use_ipv6=True))


def configure_from_env() -> None:
    """Apply TVAPP_MEDIA_HOST_ADDRESSES (comma-separated) when it is set."""
    value = os.environ.get(_ENV_HOSTS)
    if value is not None:
        set_host_addresses(value.split(",") if value.strip() else None)


def local_address(pc: Any) -> str | None:
    """Return the host address `pc`'s nominated ICE pair sends from (None before one is nominated, or when it is a
    relay: its candidate's address is the TURN server's, not one of this host's)."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        connection = getattr(getattr(transport, "transport", None), "_connection", None)
        nominated = getattr(connection, "_nominated", None)  # aioice: {component: CandidatePair}
        if nominated:
            candidate = nominated[min(nominated)].local_candidate
            return str(candidate.host) if candidate.type == "host" else None
    return None


_port_range: tuple[int, int] | None = None


class PortRangeExhausted(OSError):
    """No port of `[media] udp_port_range` is free for an ICE host socket."""


class HostAddressUnusable(OSError):
    """No ICE host socket could be bound for another reason than a full range (e.g. the address is gone)."""


# address -> why this gathering's host socket could not be bound there (aioice logs and swallows it); one dict per
# gathering task, so concurrent gatherings do not see each other's failures
_bind_errors: contextvars.ContextVar[dict[str, OSError] | None] = contextvars.ContextVar("bind_errors", default=None)


def set_port_range(ports: tuple[int, int] | None) -> None:
    """Bind every ICE host socket of this process to a port in `ports` (low, high inclusive); None: any port."""
    global _port_range
    if ports is not None and not 0 < ports[0] <= ports[1] <= 65535:
        raise ValueError(f"bad port range {ports}")
    _port_range = ports


def port_range() -> tuple[int, int] | None:
    """Return the port range ICE host sockets are bound in (None: any port)."""
    return _port_range


def _port_taken(exc: OSError) -> bool:
    """Tell whether a failed bind means that port is taken (try the next one) rather than a real failure.

    uvloop (the core's loop) raises a bare OSError("could not bind to local_addr ...") without an errno and chains
    the bind's own error as its cause; asyncio's loop raises the bind's error itself."""
    for error in (exc, exc.__cause__):
        if isinstance(error, OSError) and error.errno in (errno.EADDRINUSE, errno.EACCES):
            return True
    return False


async def _bind_in_range(loop: asyncio.AbstractEventLoop, factory: Callable[[], Any], address: str,
                         ports: tuple[int, int]) -> tuple[Any, Any]:
    low, high = ports
    count = high - low + 1
    start = random.randrange(count)
    for i in range(count):
        try:
            return await loop.create_datagram_endpoint(factory, local_addr=(address, low + (start + i) % count))
        except OSError as exc:
            if not _port_taken(exc):
                raise
    raise PortRangeExhausted(errno.EADDRINUSE, f"no free UDP port in udp_port_range {low}-{high} on {address}")


class _LoopInRange:
    """The running loop as aioice's host gathering sees it: a host socket (port 0) lands in the port range."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_datagram_endpoint(self, factory: Callable[[], Any], *args: Any, **kwargs: Any) -> Any:
        ports = _port_range
        local = kwargs.get("local_addr")
        if ports is None or args or set(kwargs) != {"local_addr"} or local is None or local[1] != 0:
            return await self._loop.create_datagram_endpoint(factory, *args, **kwargs)
        try:
            return await _bind_in_range(self._loop, factory, local[0], ports)
        except OSError as exc:
            errors = _bind_errors.get()
            if errors is not None:
                errors[local[0]] = exc
            raise


class _AsyncioForIce:
    """Stands in for the asyncio module inside aioice.ice; only get_running_loop differs."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    def get_running_loop() -> Any:
        return _LoopInRange(asyncio.get_running_loop())


def _bind_host_sockets() -> None:
    """Put host sockets in the port range, fail clearly when it is full, add announced candidates."""
    setattr(aioice.ice, "asyncio", _AsyncioForIce())  # noqa: B010 - aioice.ice does not export asyncio

    def make_candidates(original: Callable[..., Any]) -> Callable[..., Any]:
        async def get_component_candidates(connection: Any, component: int, addresses: list[str],
                                           *args: Any, **kwargs: Any) -> list[Candidate]:
            errors: dict[str, OSError] = {}
            _bind_errors.set(errors)
            candidates: list[Candidate] = await original(connection, component, addresses, *args, **kwargs)
            hosts = [c for c in candidates if c.type == "host"]
            ports = _port_range
            if ports is not None and addresses and not hosts:
                other = [f"{a}: {e}" for a, e in errors.items() if not isinstance(e, PortRangeExhausted)]
                if other:  # say what really failed, not "full"
                    raise HostAddressUnusable(errno.EADDRNOTAVAIL, "could not bind an ICE host socket on "
                                              + "; ".join(other))
                raise PortRangeExhausted(errno.EADDRINUSE, f"no free UDP port in udp_port_range "
                                         f"{ports[0]}-{ports[1]} on {', '.join(addresses)}")
            for host in hosts:
                version = ipaddress.ip_address(host.host).version
                for public in connection.__dict__.get(ANNOUNCED, ()):
                    if ipaddress.ip_address(public).version == version and public != host.host:
                        candidates.append(Candidate(
                            foundation=candidate_foundation("srflx", "udp", public), component=component,
                            transport="udp", priority=candidate_priority(component, "srflx"), host=public,
                            port=host.port, type="srflx", related_address=host.host, related_port=host.port))
            return candidates

        return get_component_candidates

    def make_gather(original: Callable[..., Any]) -> Callable[..., Any]:
        async def gather(pc: Any) -> None:
            announced = pc.__dict__.get(ANNOUNCED, ())
            for transport in getattr(pc, _ICE_TRANSPORTS):
                setattr(transport.iceGatherer._connection, ANNOUNCED, announced)
            await original(pc)

        return gather

    _wrap(aioice.ice.Connection, "get_component_candidates", make_candidates)
    _wrap(RTCPeerConnection, _GATHER, make_gather)
