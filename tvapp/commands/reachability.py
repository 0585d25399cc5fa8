"""`tvapp serve --check-reachability`: say what a remote client will be offered, warn about obvious problems.

Reads the config only (no server is started, nothing is sent anywhere): the ICE host candidates (the
configured `[media] host_addresses`, else every non-loopback address of this machine, as the SFU would
gather), the UDP ports they are bound in, the announced addresses offered beside them, the TURN URLs
(never a credential or the secret) and how their credentials are made, and TLS where the config has it.
Exits 0 when no warning applies, 1 otherwise.

A public address is "expected" when `[server] allowed_hosts` names a domain (not localhost, *.local, *.lan,
*.home.arpa) or a public IP, or `[media] turn_urls` is set: the core is then meant for clients outside this
network.
"""

from __future__ import annotations

import ipaddress
from typing import TextIO

from tvapp import config as config_mod
from tvapp.core.reach import (
    Reach,
    is_public,
    parse_announced,
    parse_port_range,
    parse_turn_url,
    reach_warnings,
)

LOCAL_SUFFIXES = (".local", ".lan", ".home.arpa", ".internal", "localhost")


def machine_addresses() -> tuple[str, ...]:
    """Return the host addresses aioice would gather on this machine (every non-loopback one)."""
    from tvapp.rtc import internals

    return tuple(internals.default_host_addresses())


def expects_public(cfg: config_mod.Config) -> bool:
    """Tell whether the config says clients outside this network are meant to reach the core."""
    if cfg.media.turn_urls:
        return True
    for host in cfg.server.allowed_hosts:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host.strip("[]")
        try:
            if is_public(name):
                return True
        except ValueError:
            if "." in name and not name.lower().endswith(LOCAL_SUFFIXES):
                return True
    return False


def check(cfg: config_mod.Config, out: TextIO, hosts: tuple[str, ...] | None = None) -> int:
    """Print what a remote client will be offered and any warnings to `out`; return 0, or 1 on a warning."""
    media = cfg.media
    if hosts is None:
        hosts = tuple(media.host_addresses) if media.host_addresses else machine_addresses()
    ports = parse_port_range(media.udp_port_range)
    announced = parse_announced(media.announced_addresses)
    turn_urls = tuple(parse_turn_url(u) for u in media.turn_urls)
    reach = Reach(host_addresses=hosts, port_range=ports, announced=announced, turn_urls=turn_urls,
                  turn_secret_set=bool(media.turn_secret), static_ice_servers=tuple(media.ice_servers),
                  max_participants=cfg.rooms.max_participants, expect_public=expects_public(cfg))
    scheme = "https" if getattr(cfg.server, "tls_cert", "") else "http"
    print(f"signaling: {scheme}://{cfg.server.host}:{cfg.server.port}/v1/signal", file=out)
    tls_cert = getattr(cfg.server, "tls_cert", "")
    print(f"tls: {'certificate ' + tls_cert if tls_cert else 'not configured in [server] (plain http)'}", file=out)
    where = "configured [media] host_addresses" if media.host_addresses else "this machine's addresses"
    print(f"host candidates ({where}):", file=out)
    for address in hosts or ("(none)",):
        kind = _kind(address)
        print(f"  {address}  {kind}", file=out)
    if ports is None:
        print("udp ports: any (the kernel's choice per peer connection; set [media] udp_port_range to forward "
              "a fixed range)", file=out)
    else:
        print(f"udp ports: {ports[0]}-{ports[1]} ({ports[1] - ports[0] + 1} ports, one per participant and "
              f"host address)", file=out)
    if announced:
        print("announced addresses (offered beside each host candidate, same port, as srflx):", file=out)
        for address in announced:
            print(f"  {address}  {_kind(address)}", file=out)
    else:
        print("announced addresses: none", file=out)
    if turn_urls:
        how = (f"per participant, TURN REST (use-auth-secret), valid {media.turn_ttl} s"
               if media.turn_secret else "NONE (turn_secret is empty)")
        print(f"turn: {', '.join(u.url for u in turn_urls)}; credentials {how}; "
              f"the SFU {'uses' if media.sfu_uses_turn else 'does not use'} TURN itself", file=out)
    else:
        print("turn: none", file=out)
    if media.ice_servers:
        print(f"static ice servers: {', '.join(media.ice_servers)}", file=out)
    warnings = reach_warnings(reach)
    for warning in warnings:
        print(f"warning: {warning}", file=out)
    print("reachability: " + ("problems found" if warnings else "ok"), file=out)
    return 1 if warnings else 0


def _kind(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "(not an IP address)"
    if ip.is_loopback:
        return "(loopback: this machine only)"
    if ip.is_global:
        return "(public)"
    return "(private: this network only)"
