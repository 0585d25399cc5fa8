"""The userspace netem carries real packets between a namespace and this one with delay, jitter, loss and outages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvapp.testing.netem import NETNS_DIR, STATE_DIR, NetemLink, netem_available, unique_name
from tvapp.testing.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _netem_works_here() -> None:
    reason = netem_available()
    assert reason is None, f"netem cannot run on this machine: {reason}"


@pytest.fixture
def link() -> Iterator[NetemLink]:
    with NetemLink(unique_name(), seed=1) as made:
        yield made


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def devices() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def udp_sink(host: str) -> tuple[socket.socket, int]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sink.bind((host, 0))
    return sink, sink.getsockname()[1]


def drain(sink: socket.socket, quiet: float) -> list[int]:
    """Return the sequence numbers received until nothing comes for `quiet` seconds."""
    sink.settimeout(quiet)
    got = []
    while True:
        try:
            got.append(int.from_bytes(sink.recv(64)[:4], "big"))
        except TimeoutError:
            return got


def test_ping_round_trip_is_twice_the_delay_within_the_jitter(link: NetemLink) -> None:
    link.set(delay_ms=50, jitter_ms=10)
    rtts = link.ping(count=20, interval=0.05)
    assert all(r is not None for r in rtts), rtts
    ms = [r * 1e3 for r in rtts if r is not None]
    assert min(ms) >= 80 - 1 and max(ms) <= 120 + 15, ms
    assert 92 <= statistics.mean(ms) <= 110, ms
    assert statistics.pstdev(ms) > 2, f"jitter should spread the round trips: {ms}"
    stats = link.stats
    assert (stats.to_ns_forwarded, stats.to_host_forwarded, stats.dropped) == (20, 20, 0)


def test_without_faults_the_round_trip_is_short(link: NetemLink) -> None:
    ms = [r * 1e3 for r in link.ping(count=10, interval=0.02) if r is not None]
    assert len(ms) == 10 and statistics.median(ms) < 5, ms


def test_jitter_reorders_packets_and_loses_none(link: NetemLink) -> None:
    link.set(delay_ms=30, jitter_ms=20)
    sink, port = udp_sink(link.host_ip)
    sender = link.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(200):
        sender.sendto(i.to_bytes(4, "big"), (link.host_ip, port))
        time.sleep(0.0005)
    got = drain(sink, 0.3)
    assert sorted(got) == list(range(200))
    assert got != sorted(got), "packets with independent delays should overtake each other"


def test_loss_drops_about_that_fraction(link: NetemLink) -> None:
    link.set(loss=0.2)
    sink, port = udp_sink(link.host_ip)
    sender = link.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(1000):
        sender.sendto(i.to_bytes(4, "big"), (link.host_ip, port))
        if i % 50 == 0:
            time.sleep(0.002)
    got = drain(sink, 0.3)
    lost = 1000 - len(got)
    assert 140 <= lost <= 260, lost  # binomial(1000, 0.2): sd 12.6
    assert link.stats.to_host_dropped == lost
    round_trips = link.ping(count=100, interval=0.005, timeout=0.3)
    lost_both_ways = sum(r is None for r in round_trips)
    assert 15 <= lost_both_ways <= 60, lost_both_ways  # 1 - 0.8**2 = 0.36


def test_tcp_echo_from_a_program_inside_the_namespace_sees_twice_the_delay() -> None:
    with NetemLink(unique_name(), delay_ms=50) as link:
        server = socket.create_server((link.host_ip, 0))
        port = server.getsockname()[1]

        def echo() -> None:
            conn, _ = server.accept()
            with conn, contextlib.suppress(ConnectionError):  # the client may go with an echo unread
                while data := conn.recv(4096):
                    conn.sendall(data)

        threading.Thread(target=echo, daemon=True).start()
        client = textwrap.dedent(f"""
            import json, socket, time
            s = socket.create_connection(({link.host_ip!r}, {port}))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rtts = []
            for i in range(8):
                t = time.monotonic()
                s.sendall(b"ping%d" % i)
                s.recv(100)
                rtts.append(time.monotonic() - t)
            print(json.dumps(rtts))
        """)
        out = subprocess.run([*link.exec_prefix, sys.executable, "-c", client],
                             capture_output=True, text=True, timeout=20, check=True).stdout
        ms = [r * 1e3 for r in json.loads(out)]
        assert 99 <= statistics.median(ms) <= 120 and min(ms) >= 99, ms
        server.close()


def test_an_asyncio_client_run_in_the_namespace_goes_through_the_link() -> None:
    with NetemLink(unique_name(), delay_ms=30) as link:
        server = socket.create_server((link.host_ip, 0))
        port = server.getsockname()[1]
        sink, sink_port = udp_sink(link.host_ip)

        def echo() -> None:
            conn, _ = server.accept()
            with conn, contextlib.suppress(ConnectionError):
                while data := conn.recv(4096):
                    conn.sendall(data)

        threading.Thread(target=echo, daemon=True).start()

        async def client() -> tuple[float, str]:
            reader, writer = await asyncio.open_connection(link.host_ip, port)
            start = time.monotonic()
            writer.write(b"hello")
            await reader.readexactly(5)
            rtt = time.monotonic() - start
            writer.close()
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(link.host_ip, sink_port))
            transport.sendto((7).to_bytes(4, "big"))
            transport.close()
            return rtt, writer.get_extra_info("sockname")[0]

        rtt, source = link.run_in_namespace(asyncio.run, client())
        assert source == link.ns_ip
        assert 0.059 <= rtt <= 0.080, rtt
        assert drain(sink, 0.2) == [7]
        with link.connect((link.host_ip, port)) as direct:
            assert direct.getsockname()[0] == link.ns_ip
        server.close()


def test_an_exception_in_the_namespace_reaches_the_caller(link: NetemLink) -> None:
    with pytest.raises(ConnectionRefusedError):
        link.connect((link.host_ip, 9))


def test_cut_stops_traffic_and_restore_resumes_it(link: NetemLink) -> None:
    server = socket.create_server((link.host_ip, 0))
    client = link.socket()
    client.settimeout(5)
    client.connect((link.host_ip, server.getsockname()[1]))
    conn, _ = server.accept()
    conn.settimeout(0.6)
    client.sendall(b"before")
    assert conn.recv(100) == b"before"

    link.cut()
    assert link.is_cut
    client.sendall(b"during")
    with pytest.raises(TimeoutError):
        conn.recv(100)
    assert link.ping(count=3, interval=0.02, timeout=0.2) == [None, None, None]
    assert link.stats.to_host_dropped >= 4

    link.restore()
    conn.settimeout(5)
    restored = time.monotonic()
    assert conn.recv(100) == b"during"  # TCP's retransmission gets through
    assert time.monotonic() - restored < 3
    assert all(r is not None for r in link.ping(count=3, interval=0.02))
    client.close()
    conn.close()
    server.close()


def test_packets_on_the_wire_when_the_link_is_cut_are_lost(link: NetemLink) -> None:
    link.set(delay_ms=200)
    sink, port = udp_sink(link.host_ip)
    sender = link.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(10):
        sender.sendto(i.to_bytes(4, "big"), (link.host_ip, port))
    wait_until(lambda: link.stats.queued >= 10, 5, "the ten datagrams to be held in the delay queue")
    assert link.stats.queued == 10
    link.cut()
    time.sleep(0.25)  # the 200 ms delay runs out while the link is cut: that loss is what is tested
    link.restore()
    assert drain(sink, 0.1) == []
    assert link.stats.to_host_dropped == 10


def test_set_changes_the_delay_of_later_packets(link: NetemLink) -> None:
    link.set(delay_ms=10)
    fast = [r * 1e3 for r in link.ping(count=5, interval=0.02) if r is not None]
    link.set(delay_ms=60)
    assert link.faults == {"delay_ms": 60.0, "jitter_ms": 0.0, "loss": 0.0, "down_kbps": 0.0, "up_kbps": 0.0,
                           "queue_bytes": 0.0}
    slow = [r * 1e3 for r in link.ping(count=5, interval=0.02) if r is not None]
    assert len(fast) == len(slow) == 5
    assert 20 <= statistics.median(fast) <= 30 and 120 <= statistics.median(slow) <= 132, (fast, slow)


def test_two_links_at_once_each_with_its_own_delay() -> None:
    with NetemLink(unique_name(), delay_ms=15) as a, NetemLink(unique_name(), delay_ms=60) as b:
        assert a.ns != b.ns and a.host_ip != b.host_ip and a.ns_ip != b.ns_ip
        results: dict[str, list[float | None]] = {}
        threads = [threading.Thread(target=lambda l=l: results.__setitem__(l.ns, l.ping(count=10, interval=0.03)))
                   for l in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ms_a = [r * 1e3 for r in results[a.ns] if r is not None]
        ms_b = [r * 1e3 for r in results[b.ns] if r is not None]
        assert len(ms_a) == len(ms_b) == 10
        assert 30 <= statistics.median(ms_a) <= 40 and 120 <= statistics.median(ms_b) <= 132, (ms_a, ms_b)
        # a's namespace reaches b's host address too: over a's own link (the default route)
        assert all(r is not None and r * 1e3 < 45 for r in a.ping(count=3, interval=0.02, target=b.host_ip))


def test_close_removes_the_namespace_the_devices_and_the_forwarder() -> None:
    link = NetemLink(unique_name())
    assert link.ns in namespaces() and link.host_dev in devices()
    assert subprocess.run([*link.exec_prefix, "ip", "-o", "link"], capture_output=True, text=True,
                          check=True).stdout.count(link.ns_dev) == 1
    forwarder = link._forwarder
    assert forwarder is not None and forwarder.poll() is None
    link.close()
    link.close()
    assert link.ns not in namespaces()
    assert not {link.host_dev, link.ns_dev} & devices()
    assert forwarder.poll() == 0
    assert not (STATE_DIR / f"{link.ns}.json").exists()


def test_a_link_left_open_is_removed_at_interpreter_exit() -> None:
    script = "from tvapp.testing.netem import NetemLink; l = NetemLink('t6exit%d'); print(l.ns, flush=True)"
    out = subprocess.run([sys.executable, "-c", script % os.getpid()], capture_output=True, text=True,
                         timeout=20, cwd=REPO, check=True).stdout
    ns = out.strip()
    assert ns and ns not in namespaces() and not {ns + "h", ns + "n"} & devices()


def test_a_crashed_owner_leaves_no_devices_and_its_namespace_goes_with_the_next_link() -> None:
    name = f"t6crash{os.getpid() % 100000}"
    script = f"from tvapp.testing.netem import NetemLink; l = NetemLink({name!r}); print('up', flush=True); input()"
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=REPO)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "up"
        assert name in namespaces()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    wait_until(lambda: not {name + "h", name + "n"} & devices(), 5, "the forwarder's devices to go", 0.05)
    assert not {name + "h", name + "n"} & devices(), "the forwarder should exit with its owner"
    # (a killed owner cannot delete its namespace itself; here the next link on the machine does)
    with NetemLink(unique_name()):
        assert name not in namespaces()
    assert not (NETNS_DIR / name).exists()


def test_a_stale_namespace_of_the_same_name_is_replaced() -> None:
    name = unique_name()
    subprocess.run(["ip", "netns", "add", name], check=True)
    with NetemLink(name) as link:
        assert all(r is not None for r in link.ping(count=2, interval=0.02))
    assert name not in namespaces()


def test_the_forwarder_carries_at_least_5_mb_per_second_of_tcp(link: NetemLink) -> None:
    server = socket.create_server((link.host_ip, 0))
    port = server.getsockname()[1]

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            total = 0
            while data := conn.recv(1 << 20):
                total += len(data)
            conn.sendall(str(total).encode())

    threading.Thread(target=sink, daemon=True).start()
    client = textwrap.dedent(f"""
        import socket, time
        s = socket.create_connection(({link.host_ip!r}, {port}))
        block = b"x" * 65536
        start = time.monotonic()
        for _ in range(256):
            s.sendall(block)
        s.shutdown(socket.SHUT_WR)
        total = int(s.recv(100))
        print(total / (time.monotonic() - start) / 1e6)
    """)
    out = subprocess.run([*link.exec_prefix, sys.executable, "-c", client], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    rate = float(out)
    print(f"netem TCP throughput: {rate:.1f} MB/s")
    assert rate >= 5.0, f"{rate:.1f} MB/s"
    server.close()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        NetemLink("Bad-Name")
    with pytest.raises(ValueError):
        NetemLink("t6toolongname12345")
    with pytest.raises(ValueError):
        NetemLink(unique_name(), loss=1.5)
    with pytest.raises(ValueError):
        NetemLink(unique_name(), delay_ms=-1)
    with NetemLink(unique_name()) as link, pytest.raises(ValueError):
        link.set(jitter_ms=-5)
    with pytest.raises(ValueError):
        NetemLink(unique_name(), up_kbps=-1)
    with pytest.raises(ValueError):
        NetemLink(unique_name(), down_kbps=600, queue_bytes=100)


UDP_PAYLOAD = 1172   # + 28 bytes of IP and UDP headers = 1200 bytes on the link


def udp_flood(link: NetemLink, offered_kbps: float, seconds: float) -> list[tuple[float, float]]:
    """Send UDP from the namespace at `offered_kbps` (link bytes); return (sent, received) monotonic times."""
    sink, port = udp_sink(link.host_ip)
    arrivals: list[tuple[float, float]] = []
    done = threading.Event()

    def receive() -> None:
        sink.settimeout(0.2)
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                data = sink.recv(2048)
                arrivals.append((float.fromhex(data[:24].decode().strip()), time.monotonic()))

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            interval = 1200 * 8 / (offered_kbps * 1e3)
            start = time.monotonic()
            n = 0
            while (now := time.monotonic()) - start < seconds:
                while start + n * interval <= now:   # catch up after a late wake, so the offered rate holds
                    sock.sendto(time.monotonic().hex().ljust(24).encode().ljust(UDP_PAYLOAD, b"x"),
                                (link.host_ip, port))
                    n += 1
                time.sleep(interval / 2)

    receiver = threading.Thread(target=receive)
    receiver.start()
    link.run_in_namespace(send)
    wait_until(lambda: link.stats.queued == 0, timeout=5)
    done.set()
    receiver.join()
    sink.close()
    return arrivals


def link_kbps(arrivals: list[tuple[float, float]]) -> float:
    """Return the rate at which 1200-byte packets arrived, from the first arrival to the last."""
    times = sorted(received for _, received in arrivals)
    return (len(times) - 1) * 1200 * 8 / (times[-1] - times[0]) / 1e3


def test_udp_through_a_rate_limited_link_arrives_at_the_rate_and_a_live_change_takes_effect() -> None:
    with NetemLink(unique_name(), up_kbps=3000, seed=1) as link:
        fast = link_kbps(udp_flood(link, offered_kbps=4500, seconds=2.5))
        assert link.stats.to_host_dropped > 0, "an offer above the rate must overflow the queue"
        link.set(up_kbps=600)
        slow = link_kbps(udp_flood(link, offered_kbps=1000, seconds=3.0))
        link.set(up_kbps=0)
        free = link_kbps(udp_flood(link, offered_kbps=6000, seconds=1.0))
    print(f"netem rate: {fast:.0f} kb/s at 3000, {slow:.0f} kb/s at 600, {free:.0f} kb/s unlimited (6000 offered)")
    assert 2700 <= fast <= 3300, fast
    assert 540 <= slow <= 660, slow
    assert free >= 5000, free


def test_queueing_delay_is_bounded_by_the_queue_size() -> None:
    # 15000 bytes at 600 kb/s drain in 200 ms: no packet waits longer, and a flood keeps the queue full.
    with NetemLink(unique_name(), up_kbps=600, queue_bytes=15000, seed=1) as link:
        arrivals = udp_flood(link, offered_kbps=1200, seconds=3.0)
        dropped = link.stats.to_host_dropped
    waits = [(received - sent) * 1e3 for sent, received in arrivals]
    late = waits[len(waits) // 2:]
    print(f"netem queueing delay: max {max(waits):.0f} ms, median of the second half {statistics.median(late):.0f} ms")
    assert max(waits) <= 200 + 30, max(waits)
    assert statistics.median(late) >= 150, late
    assert dropped >= len(arrivals) * 0.6, (dropped, len(arrivals))


@pytest.mark.parametrize("kbps", [600, 3000])
def test_tcp_download_through_a_rate_limited_link_gets_the_rate(kbps: int) -> None:
    with NetemLink(unique_name(), down_kbps=kbps, delay_ms=10, seed=1) as link:
        server = socket.create_server((link.host_ip, 0))
        port = server.getsockname()[1]

        def source() -> None:
            conn, _ = server.accept()
            with conn, contextlib.suppress(OSError):
                while True:
                    conn.sendall(b"x" * 65536)

        threading.Thread(target=source, daemon=True).start()

        def download() -> float:
            with socket.create_connection((link.host_ip, port)) as sock:
                start = time.monotonic()
                total = counted_from = 0
                while (now := time.monotonic()) - start < 5.0:
                    got = len(sock.recv(1 << 16))
                    total += got
                    if now - start < 1.0:         # past slow start from the first second on
                        counted_from, first = total, now
                return (total - counted_from) * 8 / (now - first) / 1e3

        goodput = link.run_in_namespace(download)
        server.close()
    on_link = goodput * 1500 / 1448     # TCP payload per 1500-byte packet (with timestamps)
    print(f"netem TCP at {kbps} kb/s: goodput {goodput:.0f} kb/s, {on_link:.0f} kb/s on the link")
    assert 0.9 * kbps <= on_link <= 1.1 * kbps, on_link
