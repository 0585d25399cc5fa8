"""Host and Origin checks against DNS rebinding and cross-site requests, decided without I/O.

A request's Host must be an IP literal (how phones on a LAN reach a TV), `localhost`, or a name
the operator allowed (this machine's host name and `<hostname>.local` are added by the server).
A DNS-rebinding attack arrives with the attacker's own domain name in Host, so it is refused.

A browser's Origin must be the server's own origin (same host and port as Host) or one the
operator allowed. Requests without an Origin come from programs, not browsers, and pass.

Listed origins (`[server] cors_origins`) are also the ones CORS lets read answers and send preflighted requests
(`listed_origin`, `cors_origin_error`): exact origins only, never "*".

A request that carries Host or Origin twice is refused: the check fails closed rather than pick one
of the two, since a proxy and the server might each believe a different one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from typing import Final, Literal
from urllib.parse import urlsplit

BAD_HOST: Final = "bad_host"
BAD_ORIGIN: Final = "bad_origin"
Refusal = Literal["bad_host", "bad_origin"]


def split_host(host_header: str) -> tuple[str, int | None] | None:
    """Split a Host header into (lowercased host, port); None when it is malformed."""
    value = host_header.strip()
    if not value or len(value) > 255 or any(c in value for c in " /\\@?#"):
        return None
    try:
        parts = urlsplit("//" + value)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host.lower().rstrip("."), port


def is_ip_literal(host: str) -> bool:
    """Return True when `host` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_allowed(host_header: str | None, allowed_names: Collection[str]) -> bool:
    """Decide whether a request's Host header may be served."""
    if host_header is None:
        return False
    parsed = split_host(host_header)
    if parsed is None:
        return False
    host, _ = parsed
    if is_ip_literal(host) or host == "localhost":
        return True
    return host in {name.lower().rstrip(".") for name in allowed_names}


def cors_origin_error(entry: str) -> str | None:
    """Say what is wrong with a configured origin (None when it is one: scheme://host[:port], http or https)."""
    if entry.strip() == "*":
        return '"*" is not allowed: list each origin (any web page could use the API and the signaling websocket)'
    try:
        parts = urlsplit(entry)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return f"{entry!r} is not an origin like https://app.example.org or http://127.0.0.1:8080"
    if (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username is not None or parts.password is not None):
        return f"{entry!r} is not an origin like https://app.example.org or http://127.0.0.1:8080"
    return None


def listed_origin(origin: str | None, allowed_origins: Collection[str]) -> bool:
    """Return whether `origin` is one of the configured origins (compared without case or a trailing slash)."""
    if origin is None or origin == "null":
        return False
    return origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in allowed_origins}


def origin_allowed(origin: str | None, host_header: str | None, allowed_origins: Collection[str]) -> bool:
    """Decide whether a browser request from `origin` may reach this server."""
    if origin is None:
        return True
    if origin == "null":
        return False
    normalized = origin.rstrip("/").lower()
    if listed_origin(origin, allowed_origins):
        return True
    try:
        parts = urlsplit(normalized)
        origin_host, origin_port = parts.hostname, parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not origin_host or host_header is None:
        return False
    parsed = split_host(host_header)
    if parsed is None:
        return False
    host, port = parsed
    default = 443 if parts.scheme == "https" else 80
    return origin_host == host and (origin_port or default) == (port or default)


def refusal(hosts: Sequence[str], origins: Sequence[str], *, allowed_names: Collection[str],
            allowed_origins: Collection[str], check_origin: bool) -> Refusal | None:
    """Decide on a request from all its Host and Origin header values: the refusal's code, or None to serve it.

    ``check_origin`` says whether this request's Origin matters (a websocket, a method that changes something, or
    every request on a server that refuses cross-site reads too); a repeated Origin is refused either way.
    """
    if len(hosts) != 1 or not host_allowed(hosts[0], allowed_names):
        return BAD_HOST
    if len(origins) > 1:
        return BAD_ORIGIN
    if check_origin and not origin_allowed(origins[0] if origins else None, hosts[0], allowed_origins):
        return BAD_ORIGIN
    return None
