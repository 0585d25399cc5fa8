"""Pure rules for media reachability config: TURN URLs, the UDP port range, announced addresses, and the
warnings `tvapp serve --check-reachability` prints.

No I/O: the caller passes the machine's host addresses and the config values.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class TurnUrl:
    """One parsed turn:/turns: URL."""

    url: str
    secure: bool
    host: str
    port: int
    transport: str  # "udp" or "tcp"


def parse_turn_url(url: str) -> TurnUrl:
    """Parse "turn:HOST[:PORT][?transport=udp|tcp]" or "turns:..."; raise ValueError naming what is wrong."""
    scheme, sep, rest = url.partition(":")
    if not sep or scheme not in ("turn", "turns"):
        raise ValueError(f"{url!r} is not a turn: or turns: URL")
    secure = scheme == "turns"
    address, _, query = rest.partition("?")
    transport = "tcp" if secure else "udp"
    if query:
        key, _, value = query.partition("=")
        if key != "transport" or value not in ("udp", "tcp"):
            raise ValueError(f"{url!r}: the only query allowed is transport=udp or transport=tcp")
        transport = value
    if secure and transport != "tcp":
        raise ValueError(f"{url!r}: turns: (TLS) runs over tcp")
    parts = urlsplit("//" + address)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: bad port") from None
    if not parts.hostname or parts.username or parts.path:
        raise ValueError(f"{url!r}: expected HOST[:PORT]")
    return TurnUrl(url, secure, parts.hostname, port or (5349 if secure else 3478), transport)


def parse_port_range(text: str) -> tuple[int, int] | None:
    """Parse "LOW-HIGH" (1024..65535, LOW <= HIGH) into (LOW, HIGH); "" means no range (None)."""
    text = text.strip()
    if not text:
        return None
    low, sep, high = text.partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise ValueError(f"{text!r} is not a port range like 50000-50100") from None
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"{text!r}: ports must be within 1024-65535, low first")
    return first, last


def parse_announced(addresses: tuple[str, ...]) -> tuple[str, ...]:
    """Check each announced address is an IP address (a 1:1 NAT's public one); return them normalized."""
    out = []
    for text in addresses:
        try:
            out.append(str(ipaddress.ip_address(text.strip())))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address") from None
    return tuple(out)


def is_public(address: str) -> bool:
    """Tell whether an IP address is reachable from the internet (not loopback, private, link-local...)."""
    return ipaddress.ip_address(address).is_global


@dataclass(frozen=True)
class Reach:
    """What `--check-reachability` looks at."""

    host_addresses: tuple[str, ...]
    port_range: tuple[int, int] | None
    announced: tuple[str, ...]
    turn_urls: tuple[TurnUrl, ...]
    turn_secret_set: bool
    static_ice_servers: tuple[str, ...]
    max_participants: int
    expect_public: bool


def reach_warnings(reach: Reach) -> list[str]:
    """Return the obvious problems a remote client would meet (empty: none seen)."""
    warnings = []
    hosts = reach.host_addresses
    if not hosts:
        warnings.append("no host address to offer: clients cannot reach the SFU directly")
    elif all(ipaddress.ip_address(a).is_loopback for a in hosts):
        warnings.append("only loopback host addresses: only clients on this machine can reach the SFU directly")
    if reach.expect_public and not reach.announced and not any(is_public(a) for a in hosts):
        if not reach.turn_urls and not reach.static_ice_servers:
            warnings.append("only private addresses and no announced_addresses or TURN: clients in other homes "
                            "cannot reach the SFU (set [media] announced_addresses to the public IP, or turn_urls)")
        else:
            warnings.append("only private addresses and no announced_addresses: clients in other homes reach the "
                            "SFU only through TURN")
    if reach.turn_urls and not reach.turn_secret_set:
        warnings.append("turn_urls is set but turn_secret is empty: clients get TURN URLs without credentials")
    if reach.port_range is not None:
        size = reach.port_range[1] - reach.port_range[0] + 1
        needed = reach.max_participants * max(1, len(hosts))
        if size < needed:
            warnings.append(f"udp_port_range has {size} ports but {reach.max_participants} participants on "
                            f"{max(1, len(hosts))} host address(es) need {needed} (one socket per participant "
                            f"and address)")
    return warnings
