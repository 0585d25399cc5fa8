"""Homes behind real NATs and a "cloud": network namespaces, veth pairs and the kernel's nftables NAT.

`Homes()` builds, inside this machine, a small Internet for tests and benchmarks:

- the cloud: one namespace on a bridge (the "Internet" segment 10.67.<k>.0/24) with two public addresses,
  `core_ip` (10.67.<k>.1: where the core listens) and `alt_ip` (10.67.<k>.2: a second address, for TURN or
  a second echo server). The root namespace is on that segment too (`root_ip`, 10.67.<k>.254), so the
  test process reaches the cloud directly (REST calls, health checks) but no home reaches it;
- three homes, each a router namespace (WAN `10.67.<k>.1N` on the bridge, LAN `192.168.N.1`) doing NAT
  with nftables, and a LAN namespace behind it (`lan_ip` 192.168.N.2, default route via the router):
  - home "a", `EIM`: plain `masquerade`. Linux keeps the source port when it is free, so one internal
    address:port is one external port whatever the destination: endpoint-independent mapping (RFC 4787
    section 4.1); conntrack lets in only replies from the exact destination (address-and-port-dependent
    filtering, a "port-restricted cone");
  - home "b", `SYMMETRIC`: `masquerade fully-random`: every new destination gets a new random external
    port (address-and-port-dependent mapping, a "symmetric NAT"), so only a relay or a public server works;
  - home "c", `TCP_ONLY`: `masquerade`, and the router drops every UDP packet from the LAN (a counter
    counts them) unless `allow_udp_to()` opened a destination: only TCP leaves, so media needs TURN over
    TCP or TLS.

Each NAT's behaviour is proven by tests/test_homes.py with plain UDP sockets against two echo servers.

Programs run in a home with `home.exec_prefix + [...]` (in the cloud: `homes.cloud_prefix`); in this
process `home.run_in_namespace(fn, *args)` runs `fn` (e.g. `asyncio.run`) in a thread inside the LAN
namespace, so every socket it makes is behind the NAT (tvapp.testing.netem.run_in_namespace).

Faults: `home.cut()` / `restore()` drop everything the router forwards (a dead uplink: no FIN, no RST;
conntrack keeps the mappings, as a home router does over a short outage); `home.move(ip)` gives the LAN
client another address and removes the old one (an address change: sockets bound to the old one are dead,
the NAT maps the new one afresh).

Cleanup is netem's: `close()` (also at interpreter exit) deletes every namespace (their veth pairs go with
them, the root's end included); each namespace is recorded with its owner's pid in /run/tvapp-netem/, so a
run that died without closing is cleaned by the next Homes or NetemLink made on this machine.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import re
import socket
import subprocess
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from socket import socket as Socket
from typing import Any, TypeVar

from tvapp.testing.netem import (
    NETNS_DIR,
    STATE_DIR,
    NetemError,
    _AddressLock,
    _ip,
    _ip_command,
    netem_available,
    remove_stale_namespaces,
    run_in_namespace,
)

T = TypeVar("T")

EIM = "eim"
SYMMETRIC = "symmetric"
TCP_ONLY = "tcp_only"
KINDS = {"a": EIM, "b": SYMMETRIC, "c": TCP_ONLY}

_counter = itertools.count(1)
_open: weakref.WeakSet[Homes] = weakref.WeakSet()


@dataclass
class Home:
    """One home: a NAT router namespace and the LAN namespace behind it (where clients run)."""

    letter: str
    kind: str
    router_ns: str
    lan_ns: str
    wan_ip: str
    lan_ip: str
    gateway_ip: str
    _cut: bool = False
    _udp_allowed: list[tuple[str, int]] = field(default_factory=list)

    @property
    def exec_prefix(self) -> list[str]:
        """Return the command prefix that runs a program on this home's LAN."""
        return [_ip_command(), "netns", "exec", self.lan_ns]

    @property
    def is_cut(self) -> bool:
        """Return whether the home's uplink is cut."""
        return self._cut

    def run_in_namespace(self, fn: Callable[..., T], *args: Any) -> T:
        """Call `fn(*args)` in a thread on this home's LAN; wait and return its result."""
        return run_in_namespace(self.lan_ns, fn, *args)

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> Socket:
        """Make a socket on this home's LAN (it stays there whichever thread uses it)."""
        return self.run_in_namespace(socket.socket, family, type, proto)

    def cut(self) -> None:
        """Cut the uplink: the router forwards nothing either way until `restore()`."""
        _nft(self.router_ns, "add rule inet outage cutfwd counter drop\n")
        self._cut = True

    def restore(self) -> None:
        """End an outage."""
        _nft(self.router_ns, "flush chain inet outage cutfwd\n")
        self._cut = False

    def move(self, new_ip: str) -> None:
        """Give the LAN client `new_ip` (in 192.168.N.0/24) instead of its address: an address change."""
        if not re.fullmatch(re.escape(self.gateway_ip.rsplit(".", 1)[0]) + r"\.\d{1,3}", new_ip) \
                or new_ip in (self.gateway_ip, self.lan_ip):
            raise ValueError(f"{new_ip!r} is not another address on home {self.letter}'s LAN")
        old = self.lan_ip
        _ip("-n", self.lan_ns, batch=[
            f"addr del {old}/24 dev eth0",  # (its routes go with it)
            f"addr add {new_ip}/24 dev eth0",
            f"route replace default via {self.gateway_ip} dev eth0",
        ])
        self.lan_ip = new_ip

    def allow_udp_to(self, ip: str, port: int) -> None:
        """Let UDP from the LAN through to ip:port (TCP_ONLY homes drop all other UDP)."""
        self._udp_allowed.append((ip, int(port)))
        self._write_udp_policy()

    def forbid_udp(self) -> None:
        """Take back every `allow_udp_to()` (a TCP_ONLY home drops all UDP again)."""
        self._udp_allowed.clear()
        self._write_udp_policy()

    def udp_dropped(self) -> int:
        """Return how many UDP packets from the LAN the router has dropped (TCP_ONLY homes)."""
        out = subprocess.run([_ip_command(), "netns", "exec", self.router_ns, "nft", "-j", "list", "counter", "inet",
                              "filter", "udpdrops"], capture_output=True, text=True, check=True).stdout
        return next(int(item["counter"]["packets"]) for item in json.loads(out)["nftables"] if "counter" in item)

    def cut_dropped(self) -> int:
        """Return how many packets the router has dropped in the current outage (0 when not cut)."""
        return _dropped(self.router_ns, "outage", "cutfwd")

    def _write_udp_policy(self) -> None:
        rules = "flush chain inet filter lanudp\n"
        for ip, port in self._udp_allowed:
            rules += f"add rule inet filter lanudp ip daddr {ip} udp dport {port} accept\n"
        if self.kind == TCP_ONLY:
            rules += 'add rule inet filter lanudp counter name "udpdrops" drop\n'
        _nft(self.router_ns, rules)


class Homes:
    """A cloud namespace and three homes behind NATs (EIM, symmetric, TCP only); a context manager."""

    def __init__(self, prefix: str = "hm") -> None:
        if not re.fullmatch(r"[a-z]{1,3}", prefix):
            raise ValueError("prefix: 1-3 lowercase letters")
        reason = netem_available()
        if reason is not None:
            raise NetemError(reason.replace("netem", "homes"))
        self.name = f"{prefix}{next(_counter)}p{os.getpid()}"
        self.cloud_ns = self.name + "c"
        self.homes: dict[str, Home] = {}
        self.core_ip = self.alt_ip = self.root_ip = ""
        self._namespaces: list[str] = []
        self._closed = False
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        _open.add(self)

    def __getitem__(self, letter: str) -> Home:
        return self.homes[letter]

    @property
    def cloud_prefix(self) -> list[str]:
        """Return the command prefix that runs a program in the cloud."""
        return [_ip_command(), "netns", "exec", self.cloud_ns]

    def in_cloud(self, fn: Callable[..., T], *args: Any) -> T:
        """Call `fn(*args)` in a thread in the cloud namespace; wait and return its result."""
        return run_in_namespace(self.cloud_ns, fn, *args)

    def cloud_socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
                     proto: int = 0) -> Socket:
        """Make a socket in the cloud (e.g. an echo server on `core_ip` or `alt_ip`)."""
        return self.in_cloud(socket.socket, family, type, proto)

    def close(self) -> None:
        """Delete every namespace (and with them every veth pair); idempotent."""
        if self._closed:
            return
        self._closed = True
        # (a namespace lives on while a socket made in it is open: delete the root's end of the uplink now)
        if self.root_ip:
            _ip("link", "del", self.name, check=False)
        for ns in reversed(self._namespaces):
            if (NETNS_DIR / ns).exists():
                _ip("netns", "del", ns, check=False)
            (STATE_DIR / f"{ns}.json").unlink(missing_ok=True)
        _open.discard(self)

    def __enter__(self) -> Homes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        homes = ", ".join(f"{h.letter}={h.kind}@{h.wan_ip}" for h in self.homes.values())
        return f"Homes({self.name!r}, core_ip={self.core_ip!r}, {homes})"

    def _namespace(self, ns: str) -> None:
        if (NETNS_DIR / ns).exists():
            _ip("netns", "del", ns)
        (STATE_DIR / f"{ns}.json").write_text(json.dumps({"pid": os.getpid()}))
        self._namespaces.append(ns)
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _build(self) -> None:
        remove_stale_namespaces()
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self._namespace(self.cloud_ns)
        with _AddressLock():
            k = _free_segment()
            net = f"10.67.{k}"
            self.core_ip, self.alt_ip, self.root_ip = f"{net}.1", f"{net}.2", f"{net}.254"
            root_dev = self.name
            _ip(batch=[f"link add {root_dev} type veth peer name uplink netns {self.cloud_ns}",
                       f"link set dev {root_dev} addrgenmode none multicast off",
                       f"addr add {self.root_ip}/24 dev {root_dev}",
                       f"link set dev {root_dev} up"])
        cloud = ["link add inet type bridge", "link set dev inet addrgenmode none multicast off",
                 "link set dev uplink master inet addrgenmode none multicast off", "link set dev uplink up",
                 f"addr add {self.core_ip}/24 dev inet", f"addr add {self.alt_ip}/24 dev inet", "link set dev inet up"]
        for n, (letter, kind) in enumerate(KINDS.items(), start=1):
            home = Home(letter=letter, kind=kind, router_ns=f"{self.name}r{letter}", lan_ns=f"{self.name}l{letter}",
                        wan_ip=f"{net}.1{n}", lan_ip=f"192.168.{n}.2", gateway_ip=f"192.168.{n}.1")
            self._namespace(home.router_ns)
            self._namespace(home.lan_ns)
            cloud += [f"link add to{letter} type veth peer name wan netns {home.router_ns}",
                      f"link set dev to{letter} master inet addrgenmode none multicast off",
                      f"link set dev to{letter} up"]
            self.homes[letter] = home
        _ip("-n", self.cloud_ns, batch=cloud)
        for home in self.homes.values():
            self._build_home(home)

    def _build_home(self, home: Home) -> None:
        _ip("-n", home.router_ns, batch=[
            f"link add lan type veth peer name eth0 netns {home.lan_ns}",
            "link set dev wan addrgenmode none multicast off", f"addr add {home.wan_ip}/24 dev wan",
            "link set dev wan up",
            "link set dev lan addrgenmode none multicast off", f"addr add {home.gateway_ip}/24 dev lan",
            "link set dev lan up",
        ])
        _ip("-n", home.lan_ns, batch=[
            "link set dev eth0 addrgenmode none multicast off", f"addr add {home.lan_ip}/24 dev eth0",
            "link set dev eth0 up", f"route add default via {home.gateway_ip} dev eth0",
        ])
        subprocess.run([_ip_command(), "netns", "exec", home.router_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                       check=True, capture_output=True)
        masquerade = "masquerade fully-random" if home.kind == SYMMETRIC else "masquerade"
        _nft(home.router_ns, f"""
table ip nat {{
    chain post {{ type nat hook postrouting priority srcnat; policy accept; oifname "wan" {masquerade}; }}
}}
table inet filter {{
    chain lanfwd {{ type filter hook forward priority filter; policy accept;
                    iifname "lan" meta l4proto udp jump lanudp; }}
    counter udpdrops {{ }}
    chain lanudp {{ }}
}}
table inet outage {{
    chain cutfwd {{ type filter hook forward priority filter - 10; policy accept; }}
}}
""")
        home._write_udp_policy()


def _nft(ns: str, script: str) -> None:
    proc = subprocess.run([_ip_command(), "netns", "exec", ns, "nft", "-f", "-"], input=script,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NetemError(f"nft in {ns} failed: {proc.stderr.strip()}\n{script}")


def _dropped(ns: str, table: str, chain: str) -> int:
    out = subprocess.run([_ip_command(), "netns", "exec", ns, "nft", "-j", "list", "chain", "inet", table, chain],
                         capture_output=True, text=True, check=True).stdout
    for item in json.loads(out)["nftables"]:
        expressions = item.get("rule", {}).get("expr", [])
        if any("drop" in e for e in expressions):
            return sum(int(e["counter"]["packets"]) for e in expressions if "counter" in e)
    return 0


def _free_segment() -> int:
    used = {int(m) for m in re.findall(r"\binet 10\.67\.(\d+)\.254\b", _ip("-o", "-4", "addr", "show"))}
    for k in range(256):
        if k not in used:
            return k
    raise NetemError("all 256 home segments 10.67.<k>.0/24 are in use")


@atexit.register
def _close_all() -> None:
    for homes in list(_open):
        homes.close()


@contextmanager
def built_homes(prefix: str = "hm") -> Iterator[Homes]:
    """Yield new Homes named after `prefix`, torn down after; fail loudly where they cannot be built here."""
    reason = netem_available()
    assert reason is None, f"homes cannot be built on this machine: {reason}"
    with Homes(prefix) as made:
        yield made
