"""The homes harness: each home's kernel NAT maps and filters as RFC 4787 says it should, with plain UDP sockets.

Two UDP echo servers in the cloud (on its two public addresses) answer every datagram with the source address
and port they saw, i.e. the NAT's mapping. One socket on a home's LAN, one source port, sends to both:
- home A (endpoint-independent mapping): both echo servers see the same external port;
- home B (address-and-port-dependent mapping, "symmetric"): each destination gets its own external port;
- home C: no UDP leaves (the router's drop counter counts it), TCP does.
Filtering in A is address-and-port dependent (Linux conntrack): a datagram from a cloud address the client never
sent to does not get in, though it targets the very mapping the client uses.
Then the faults: a cut uplink drops everything until restored; an address change gives the client a new address.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvapp.testing.homes import EIM, SYMMETRIC, TCP_ONLY, Home, Homes
from tvapp.testing.netem import NETNS_DIR, STATE_DIR
from tvapp.testing.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
ECHO_PORT = 7000
CLIENT_PORT = 40000
pytestmark = pytest.mark.timeout(60)


class Echo:
    """A UDP echo server in the cloud: answers each datagram with JSON [seen address, seen port, payload]."""

    def __init__(self, homes: Homes, ip: str, port: int = ECHO_PORT) -> None:
        self.sock = homes.cloud_socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.received: list[tuple[str, tuple[str, int]]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(2048)
            except OSError:
                return
            self.received.append((data.decode(), addr))
            self.sock.sendto(json.dumps([addr[0], addr[1], data.decode()]).encode(), addr)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echoes(homes: Homes) -> Iterator[tuple[Echo, Echo]]:
    pair = Echo(homes, homes.core_ip), Echo(homes, homes.alt_ip)
    yield pair
    for echo in pair:
        echo.close()


def owned(name: str) -> set[str]:
    """Return the namespaces of the Homes called `name` that exist now."""
    return {p.name for p in NETNS_DIR.iterdir() if re.fullmatch(re.escape(name) + r"(c|[rl][abc])", p.name)}


def lan_udp(home: Home, port: int = CLIENT_PORT) -> socket.socket:
    sock = home.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    sock.bind((home.lan_ip, port))
    return sock


def ask(sock: socket.socket, where: tuple[str, int], payload: str) -> tuple[str, int]:
    """Send `payload` to an echo server; return the (address, port) it saw us at."""
    sock.sendto(payload.encode(), where)
    data, _ = sock.recvfrom(2048)
    seen_ip, seen_port, echoed = json.loads(data)
    assert echoed == payload
    return seen_ip, seen_port


def test_the_homes_are_the_three_nat_kinds_and_reach_the_cloud(homes: Homes) -> None:
    assert [(h.letter, h.kind) for h in homes.homes.values()] == [("a", EIM), ("b", SYMMETRIC), ("c", TCP_ONLY)]
    assert len({homes.core_ip, homes.alt_ip, homes.root_ip, *(h.wan_ip for h in homes.homes.values())}) == 6
    # the test process (the root namespace) reaches the cloud; a home's LAN is private: nothing reaches it
    server = homes.cloud_socket()
    server.bind((homes.core_ip, 0))
    server.listen()
    with socket.create_connection((homes.core_ip, server.getsockname()[1]), timeout=5):
        pass
    with pytest.raises(OSError):
        homes.in_cloud(socket.create_connection, (homes["a"].lan_ip, 22), 1)


def test_home_a_maps_one_source_port_to_one_external_port_whatever_the_destination(
        homes: Homes, echoes: tuple[Echo, Echo]) -> None:
    sock = lan_udp(homes["a"])
    first = ask(sock, (homes.core_ip, ECHO_PORT), "one")
    second = ask(sock, (homes.alt_ip, ECHO_PORT), "two")
    # endpoint-independent mapping (RFC 4787 4.1, REQ-1): the same external address:port for both destinations
    assert first == second == (homes["a"].wan_ip, first[1]), (first, second)
    assert first[1] == CLIENT_PORT  # Linux masquerade keeps a free source port (port preservation)
    # ... and a second source port gets a mapping of its own
    other = ask(lan_udp(homes["a"], CLIENT_PORT + 1), (homes.core_ip, ECHO_PORT), "three")
    assert other[0] == homes["a"].wan_ip and other[1] != first[1]


def test_home_a_filters_what_comes_from_an_endpoint_it_never_sent_to(homes: Homes, echoes: tuple[Echo, Echo]) -> None:
    home = homes["a"]
    sock = lan_udp(home)
    mapped = ask(sock, (homes.core_ip, ECHO_PORT), "open")
    # The other public address sends to the very mapping, then the contacted echo server answers a second
    # datagram. Both go the same way through the router in that order: if the intruder got in it came first.
    intruder = homes.cloud_socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind((homes.alt_ip, 0))
    intruder.sendto(json.dumps(["x", 0, "intruder"]).encode(), mapped)
    assert ask(sock, (homes.core_ip, ECHO_PORT), "again") == mapped
    # also from the contacted address but another port (address-and-port-dependent filtering, RFC 4787 5)
    same_ip = homes.cloud_socket(socket.AF_INET, socket.SOCK_DGRAM)
    same_ip.bind((homes.core_ip, ECHO_PORT + 1))
    same_ip.sendto(json.dumps(["x", 0, "intruder"]).encode(), mapped)
    assert ask(sock, (homes.core_ip, ECHO_PORT), "and again") == mapped
    intruder.close()
    same_ip.close()


def test_home_b_maps_each_destination_to_a_new_external_port(homes: Homes, echoes: tuple[Echo, Echo]) -> None:
    sock = lan_udp(homes["b"])
    first = ask(sock, (homes.core_ip, ECHO_PORT), "one")
    second = ask(sock, (homes.alt_ip, ECHO_PORT), "two")
    # address-and-port-dependent mapping (symmetric NAT): one source port, two external ports
    assert first[0] == second[0] == homes["b"].wan_ip
    assert first[1] != second[1], (first, second)
    # the mapping holds for the destination it was made for (what a reply to a STUN binding needs)
    assert ask(sock, (homes.core_ip, ECHO_PORT), "three") == first


def test_home_c_lets_no_udp_out_but_tcp_and_udp_to_an_allowed_destination(
        homes: Homes, echoes: tuple[Echo, Echo]) -> None:
    home = homes["c"]
    sock = lan_udp(home)
    sock.sendto(b"blocked", (homes.core_ip, ECHO_PORT))
    wait_until(lambda: home.udp_dropped() >= 1, 5, "the router to drop the datagram")
    assert echoes[0].received == []
    # TCP goes out, source-NATed to the router's public address
    server = homes.cloud_socket()
    server.bind((homes.core_ip, 0))
    server.listen()
    client = home.run_in_namespace(socket.create_connection, (homes.core_ip, server.getsockname()[1]), 5)
    conn, peer = server.accept()
    assert peer[0] == home.wan_ip
    conn.close()
    client.close()
    # a destination opened for UDP (a TURN server's UDP port) is reachable, nothing else is
    home.allow_udp_to(homes.alt_ip, ECHO_PORT)
    assert ask(sock, (homes.alt_ip, ECHO_PORT), "allowed") == (home.wan_ip, CLIENT_PORT)
    dropped = home.udp_dropped()
    sock.sendto(b"still blocked", (homes.core_ip, ECHO_PORT))
    wait_until(lambda: home.udp_dropped() > dropped, 5, "the router to drop the datagram")
    assert echoes[0].received == []
    home.forbid_udp()  # ... and closed again
    sock.sendto(b"closed again", (homes.alt_ip, ECHO_PORT))
    wait_until(lambda: home.udp_dropped() > dropped + 1, 5, "the router to drop the datagram")
    assert [payload for payload, _ in echoes[1].received] == ["allowed"]


def test_a_cut_uplink_drops_everything_until_restored(homes: Homes, echoes: tuple[Echo, Echo]) -> None:
    home = homes["a"]
    sock = lan_udp(home)
    mapped = ask(sock, (homes.core_ip, ECHO_PORT), "before")
    home.cut()
    assert home.is_cut
    sock.sendto(b"during", (homes.core_ip, ECHO_PORT))
    wait_until(lambda: home.cut_dropped() >= 1, 5, "the router to drop the datagram")
    # ... the cloud's way in too
    echoes[0].sock.sendto(b"to the home", mapped)
    wait_until(lambda: home.cut_dropped() >= 2, 5, "the router to drop the datagram from the cloud")
    home.restore()
    assert not home.is_cut
    assert ask(sock, (homes.core_ip, ECHO_PORT), "after") == mapped  # conntrack kept the mapping
    assert [payload for payload, _ in echoes[0].received] == ["before", "after"]


def test_an_address_change_moves_the_client_and_its_old_sockets_are_dead(
        homes: Homes, echoes: tuple[Echo, Echo]) -> None:
    home = homes["a"]
    old = lan_udp(home)
    mapped = ask(old, (homes.core_ip, ECHO_PORT), "before")
    home.move("192.168.1.50")
    assert home.lan_ip == "192.168.1.50"
    with pytest.raises(OSError):  # its source address is gone from the machine
        old.sendto(b"from the old address", (homes.core_ip, ECHO_PORT))
    new = lan_udp(home)
    moved = ask(new, (homes.core_ip, ECHO_PORT), "after")
    # the same public address, and a new mapping (the old one still holds that port in conntrack)
    assert moved[0] == mapped[0] and moved[1] != mapped[1]
    with pytest.raises(ValueError):
        home.move("10.0.0.5")


def test_close_removes_every_namespace_and_a_crashed_owners_go_with_the_next_homes() -> None:
    script = "from tvapp.testing.homes import Homes; h = Homes(); print(h.name, flush=True); input()"
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=REPO)
    try:
        assert owner.stdout is not None
        name = owner.stdout.readline().strip()
        theirs = owned(name)
        assert len(theirs) == 7, theirs  # the cloud, three routers, three LANs
        assert all((STATE_DIR / f"{ns}.json").exists() for ns in theirs)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert all((NETNS_DIR / ns).exists() for ns in theirs)  # a killed owner cannot clean up itself
    with Homes() as mine:
        assert not any((NETNS_DIR / ns).exists() for ns in theirs)
        wait_until(lambda: name not in os.listdir("/sys/class/net"), 10, "the dead owner's uplink to go")
        assert not any((STATE_DIR / f"{ns}.json").exists() for ns in theirs)
        ours = owned(mine.name)
        assert len(ours) == 7
        root_dev = mine.name
        assert root_dev in os.listdir("/sys/class/net")
    assert not any((NETNS_DIR / ns).exists() for ns in ours)
    assert root_dev not in os.listdir("/sys/class/net")  # the root's end of the cloud uplink went with it


def test_homes_left_open_are_removed_at_interpreter_exit() -> None:
    script = "from tvapp.testing.homes import Homes; h = Homes(); print(h.name, flush=True)"
    name = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=REPO,
                          check=True).stdout.strip()
    assert name and not owned(name)


def test_two_homes_at_once_get_their_own_segments_and_do_not_see_each_other(homes: Homes) -> None:
    with Homes() as other:
        assert other.core_ip != homes.core_ip and other.name != homes.name
        for each in (homes, other):
            echo = Echo(each, each.core_ip)
            try:
                assert ask(lan_udp(each["a"]), (each.core_ip, ECHO_PORT), "hi") == (each["a"].wan_ip, CLIENT_PORT)
            finally:
                echo.close()
        # the root namespace routes to both segments, but no home reaches the other harness's cloud
        with pytest.raises(OSError):
            homes["a"].run_in_namespace(socket.create_connection, (other.core_ip, 9), 1)
