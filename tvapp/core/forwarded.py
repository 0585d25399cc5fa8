"""Which client, scheme and Host a request really has when a trusted reverse proxy forwarded it (no I/O).

Behind nginx or Caddy the core's peer is the proxy; the proxy says who the client was in X-Forwarded-For, the
scheme the client used in X-Forwarded-Proto and the Host it asked for in X-Forwarded-Host. Anyone can write those
headers, so they are believed only from a peer in `[server] trusted_proxies`; from any other peer they are
ignored. X-Forwarded-For is read from the right (the entry the nearest proxy appended) skipping trusted proxies:
the first untrusted address is the client, so a client cannot pick its own address by sending the header itself.
A header the proxy should have sent once but that came repeated or malformed is not believed (the peer's own
values stand), except X-Forwarded-Host, whose repetition is passed on so that the Host check refuses it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """Return the networks of `[server] trusted_proxies` entries (an address is a /32 or /128); ValueError if bad."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _address(text: str) -> Address | None:
    value = text.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:1234" or "[::1]"
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:1234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(peer: str | None, trusted: Sequence[Network]) -> bool:
    """Return whether the peer address `peer` is one of the trusted proxies."""
    address = _address(peer) if peer else None
    return address is not None and any(address.version == net.version and address in net for net in trusted)


@dataclass(frozen=True)
class Forwarded:
    """What a request is taken to be: the client's address, the scheme it used, and its Host header values."""

    client: str | None
    scheme: str | None      # "http"/"https" when a trusted proxy said so, else None (the connection's own)
    hosts: tuple[str, ...]  # the Host values the Host/Origin checks see
    believed: bool = False  # the peer is a trusted proxy: its X-Forwarded-* headers were read


def forwarded(peer: str | None, hosts: Sequence[str], *, forwarded_for: Sequence[str], forwarded_proto: Sequence[str],
              forwarded_host: Sequence[str], trusted: Sequence[Network]) -> Forwarded:
    """Decide a request's client, scheme and Host from its peer and X-Forwarded-* values (all of each header)."""
    mine = Forwarded(peer, None, tuple(hosts))
    if not trusted or not is_trusted(peer, trusted):
        return mine
    client = peer
    entries = [part for value in forwarded_for for part in value.split(",")]
    if entries:
        chain = [_address(part) for part in entries]
        if all(address is not None for address in chain):
            client = str(chain[0])
            for address in reversed(chain):
                client = str(address)
                if not is_trusted(client, trusted):
                    break
    scheme = None
    if len(forwarded_proto) == 1 and forwarded_proto[0].strip().lower() in ("http", "https"):
        scheme = forwarded_proto[0].strip().lower()
    shown_hosts = tuple(forwarded_host) if forwarded_host else tuple(hosts)
    return Forwarded(client, scheme, shown_hosts, True)
