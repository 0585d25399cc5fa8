"""The netem link's child processes: the packet forwarder and the in-namespace ping (tvapp.testing.netem starts them).

This file is run as a script, `python -I netem_child.py forward|ping ...`, so it imports the standard library only
(nothing of tvapp): `forward` carries packets between the link's two TUN devices with its delay, jitter, loss,
rate and outage (the rules are in tvapp.testing.netem's docstring) at a low real-time priority, and answers the
owner's control requests on a socket; `ping` sends ICMP echo requests from inside the namespace and prints each
round trip as JSON. The owning NetemLink lives in tvapp.testing.netem.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

MTU = 1500
RT_PRIORITY = 10
DEFAULT_QUEUE_S = 0.1
_MAX_READS_PER_WAKE = 64


class _Forwarder:
    """The child process's loop: carry packets between the two TUN devices with the link's faults."""

    def __init__(self, host_fd: int, ns_fd: int, control: socket.socket, config: dict[str, float | None]) -> None:
        self.host_fd, self.ns_fd, self.control = host_fd, ns_fd, control
        self.rng = random.Random(config.get("seed"))
        self.delay = self.jitter = self.loss = 0.0
        self.rate = {"to_ns": 0.0, "to_host": 0.0}     # bytes per second, 0: unlimited
        self.queue_limit = {"to_ns": 0.0, "to_host": 0.0}
        self.busy_until = {"to_ns": 0.0, "to_host": 0.0}   # when the link has serialized its queue
        self.apply(config)
        self.cut = False
        self.counts = {"to_ns_forwarded": 0, "to_ns_dropped": 0, "to_host_forwarded": 0, "to_host_dropped": 0}
        self.queue: list[tuple[float, int, int, bytes]] = []
        self.seq = itertools.count()
        for fd in (host_fd, ns_fd):
            os.set_blocking(fd, False)

    def apply(self, config: dict[str, float | None]) -> None:
        """Take new delay, jitter, loss, rates and queue size."""
        self.delay = float(config["delay_ms"] or 0.0) / 1e3
        self.jitter = float(config["jitter_ms"] or 0.0) / 1e3
        self.loss = float(config["loss"] or 0.0)
        queue = float(config.get("queue_bytes") or 0.0)
        for direction, key in (("to_ns", "down_kbps"), ("to_host", "up_kbps")):
            rate = float(config.get(key) or 0.0) * 1e3 / 8
            self.rate[direction] = rate
            self.queue_limit[direction] = queue or max(2.0 * MTU, rate * DEFAULT_QUEUE_S)

    def run(self) -> None:
        """Forward until the control socket closes."""
        fds = [self.host_fd, self.ns_fd, self.control.fileno()]
        while True:
            timeout = None if not self.queue else max(0.0, self.queue[0][0] - time.monotonic())
            readable, _, _ = select.select(fds, [], [], timeout)
            if self.control.fileno() in readable and not self.command():
                return
            if self.host_fd in readable:
                self.receive(self.host_fd, self.ns_fd, "to_ns")
            if self.ns_fd in readable:
                self.receive(self.ns_fd, self.host_fd, "to_host")
            self.deliver(time.monotonic())

    def command(self) -> bool:
        """Handle one control request; return False when the owner has gone."""
        data = self.control.recv(4096)
        if not data:
            return False
        message = json.loads(data)
        op = message.pop("op")
        if op == "set":
            self.apply(message)
        elif op == "cut":
            self.cut = True
        elif op == "restore":
            self.cut = False
        self.control.send(json.dumps({**self.counts, "queued": len(self.queue)}).encode())
        return True

    def receive(self, in_fd: int, out_fd: int, direction: str) -> None:
        """Read the packets waiting on one device and schedule or drop each."""
        for _ in range(_MAX_READS_PER_WAKE):
            try:
                packet = os.read(in_fd, 65536)
            except BlockingIOError:
                return
            if self.cut or (self.loss > 0 and self.rng.random() < self.loss):
                self.counts[direction + "_dropped"] += 1
                continue
            now = time.monotonic()
            sent = self.serialize(direction, len(packet), now)
            if sent is None:
                self.counts[direction + "_dropped"] += 1
                continue
            delay = self.delay
            if self.jitter > 0:
                delay = max(0.0, delay + self.rng.uniform(-self.jitter, self.jitter))
            heapq.heappush(self.queue, (sent + delay, next(self.seq), out_fd, packet))

    def serialize(self, direction: str, size: int, now: float) -> float | None:
        """Return when a packet of `size` bytes has left the rate limiter, or None if the queue is full."""
        rate = self.rate[direction]
        if rate <= 0:
            return now
        # A bucket one MTU deep: an idle link sends a packet at once, a busy one after those queued before it.
        start = max(self.busy_until[direction], now - MTU / rate)
        backlog = (start - now) * rate
        if backlog + size > self.queue_limit[direction]:
            return None
        self.busy_until[direction] = start + size / rate
        return max(now, self.busy_until[direction])

    def deliver(self, now: float) -> None:
        """Write every packet whose time has come into its device (or drop it during an outage)."""
        while self.queue and self.queue[0][0] <= now:
            _, _, out_fd, packet = heapq.heappop(self.queue)
            direction = "to_ns" if out_fd == self.ns_fd else "to_host"
            if self.cut:
                self.counts[direction + "_dropped"] += 1
                continue
            try:
                os.write(out_fd, packet)
                self.counts[direction + "_forwarded"] += 1
            except OSError:
                self.counts[direction + "_dropped"] += 1


def _run_before_others() -> None:
    """Take a low real-time priority (else a high nice) so a busy machine wakes this process at once.

    The kernel's netem runs in softirq, ahead of every process; as an ordinary process the forwarder
    added up to 100 ms to a 100 ms round trip on a machine with a load of 10 on 2 cores, as SCHED_FIFO
    under 3 ms. It only ever blocks in select() between short bursts of work.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    except OSError:
        try:
            os.nice(-10)
        except OSError:
            pass


def _forward_main(argv: list[str]) -> None:
    host_fd, ns_fd, control_fd = (int(a) for a in argv[:3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the test: the owner closes us in order
    _run_before_others()
    control = socket.socket(fileno=control_fd)
    forwarder = _Forwarder(host_fd, ns_fd, control, json.loads(argv[3]))
    control.send(b"ready")
    forwarder.run()


def _ping_main(argv: list[str]) -> None:
    target, count, interval, timeout = argv[0], int(argv[1]), float(argv[2]), float(argv[3])
    _run_before_others()  # measure the link, not how long a busy machine takes to wake us
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    payload = b"tvapp-netem-ping"
    sent: dict[int, float] = {}
    rtts: list[float | None] = [None] * count
    start = time.monotonic()
    for seq in range(count + 1):
        due = start + seq * interval if seq < count else time.monotonic() + timeout
        while (left := due - time.monotonic()) > 0 and any(r is None for r in rtts):
            sock.settimeout(left)
            try:
                data = sock.recv(2048)
            except TimeoutError:
                break
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if kind == 0 and rid == ident and rseq in sent and rtts[rseq] is None:
                rtts[rseq] = time.monotonic() - sent[rseq]
        if seq < count:
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            packet = struct.pack("!BBHHH", 8, 0, _icmp_checksum(header + payload), ident, seq) + payload
            sent[seq] = time.monotonic()
            sock.sendto(packet, (target, 0))
    print(json.dumps(rtts))


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


if __name__ == "__main__":
    {"forward": _forward_main, "ping": _ping_main}[sys.argv[1]](sys.argv[2:])
