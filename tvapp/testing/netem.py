"""A userspace netem: a network namespace joined to this one by a faulty point-to-point IP link.

The kernel here has no `sch_netem`, so a forwarder applies the faults in userspace. A link is two TUN
devices opened in the root namespace, `<name>h` (stays here) and `<name>n` (moved into the namespace
`<name>`; its file descriptor stays ours after the move). Every IP packet the kernel sends out of one
device is read by the forwarder and written into the other after the link's faults:

- delay D ± J: each packet independently gets D plus a uniform draw in [-J, +J] (clamped at 0), like
  `netem delay Dms Jms`, so packets may be reordered when J > 0;
- loss L: each packet is dropped with probability L;
- outage: between `cut()` and `restore()` every packet is dropped, both the ones arriving and the ones
  already on the wire whose delivery time falls inside the outage;
- rate R per direction (`down_kbps` host -> namespace, `up_kbps` namespace -> host; 0 is unlimited), like
  `tc tbf` / `netem rate`: a token bucket one MTU deep feeds a FIFO queue of at most `queue_bytes` bytes;
  a packet leaves the queue when the link has serialized it (its IP length at R bits/s) and only then
  gets its delay; a packet that does not fit in the queue is dropped (tail drop). So throughput is R and
  the queueing delay at most queue_bytes * 8 / R. The default queue holds 100 ms at the rate (>= 2 MTU).

The forwarder is a small child process (this file run as a script, stdlib only) rather than a thread:
in a thread it waits for the GIL behind any busy Python thread of the test (two busy threads added
~58 ms to a 100 ms round trip). It runs at a low real-time priority (SCHED_FIFO), as the kernel's netem
would in softirq, so a loaded machine does not add its scheduling delays to the link's. It owns the TUN
devices: when the test process dies its control socket closes, the forwarder exits and the kernel
removes both devices. The forwarder (and the ping run inside a namespace) is tvapp/testing/netem_child.py, run as a
script with the standard library only; this module is the link's controller in the test process.

Addresses: each link gets its own pair, host `10.66.<k>.1` and namespace `10.66.<k>.2` (k is the lowest
free one, chosen under a file lock so parallel runs do not clash). The namespace's default route is the
link, so from inside it every address of the root namespace is reachable over the faulty link: a server
listening on 0.0.0.0 serves every link at once (each at its own `host_ip`); one on 127.0.0.1 serves none.
Namespaces do not reach each other's `ns_ip` (the root namespace does not forward).
The link is unicast only (multicast off on both devices, no IPv6): nothing but the test's own traffic
crosses it, so `stats` counts exactly that; zeroconf/mDNS does not cross it.

Programs run inside the namespace with `link.exec_prefix + [...]`. In this process, `link.socket()` and
`link.connect()` make sockets inside it, and `link.run_in_namespace(fn)` runs a whole client (e.g.
`asyncio.run`) in a thread inside it: every socket that client makes goes through the link.

Cleanup: `close()` (idempotent; also at interpreter exit) stops the forwarder, which removes the devices,
and deletes the namespace. A process that dies without closing leaves only its namespace behind: the next
link made on this machine deletes every namespace whose owner has died (owners are recorded in
/run/tvapp-netem/), and a new link deletes a stale namespace of its own name.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import itertools
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from socket import socket as Socket
from typing import Any, TypeVar

from tvapp.testing import netem_child
from tvapp.testing.netem_child import MTU

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
_CHILD = netem_child.__file__  # run as a script: the forwarder and the ping
STATE_DIR = Path("/run/tvapp-netem")
NETNS_DIR = Path("/run/netns")
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,13}$")
_counter = itertools.count(1)
T = TypeVar("T")
_open_links: weakref.WeakSet[NetemLink] = weakref.WeakSet()


class NetemError(RuntimeError):
    """The link cannot be made here, or its forwarder or a command on it failed."""


@dataclass(frozen=True)
class NetemStats:
    """Packets carried and dropped in each direction (host -> namespace, namespace -> host)."""

    to_ns_forwarded: int
    to_ns_dropped: int
    to_host_forwarded: int
    to_host_dropped: int
    queued: int

    @property
    def forwarded(self) -> int:
        """Return the packets delivered both ways."""
        return self.to_ns_forwarded + self.to_host_forwarded

    @property
    def dropped(self) -> int:
        """Return the packets dropped both ways."""
        return self.to_ns_dropped + self.to_host_dropped


def netem_available() -> str | None:
    """Return None if links can be made here, else why not (for a test to fail with)."""
    if os.geteuid() != 0:
        return f"netem needs root (network namespaces and TUN devices); running as uid {os.geteuid()}"
    if _find_ip() is None:
        return "netem needs the `ip` command (Debian package iproute2)"
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError as exc:
        return f"netem needs /dev/net/tun: {exc}"
    os.close(fd)
    return None


def unique_name(prefix: str = "t6") -> str:
    """Return a link name unique in this process and among concurrent ones (prefix, counter, pid)."""
    name = f"{prefix}{next(_counter)}p{os.getpid()}"
    if not _NAME_RE.match(name):
        raise ValueError(f"link name {name!r} is too long or not [a-z][a-z0-9]*: shorten the prefix")
    return name


@contextmanager
def netem_link(prefix: str, **settings: Any) -> Iterator[NetemLink]:
    """Yield a new link named after `prefix` with NetemLink's `settings` (faults, rates, seed), closed after.

    Where links cannot be made here it fails loudly (an AssertionError saying why): a test never skips for want of
    network namespaces.
    """
    problem = netem_available()
    assert problem is None, f"this test needs network namespaces and TUN devices: {problem}"
    with NetemLink(unique_name(prefix), **settings) as link:
        yield link


def remove_stale_namespaces() -> list[str]:
    """Delete the namespaces of links whose owning process has died; return their names."""
    removed: list[str] = []
    if not STATE_DIR.is_dir():
        return removed
    for record in STATE_DIR.glob("*.json"):
        try:
            owner = int(json.loads(record.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            owner = -1
        if owner > 0 and _pid_alive(owner):
            continue
        ns = record.stem
        if (NETNS_DIR / ns).exists():
            _ip("netns", "del", ns, check=False)
            removed.append(ns)
        record.unlink(missing_ok=True)
    return removed


class NetemLink:
    """A namespace behind a point-to-point link with delay, jitter, loss, rate limits and outages (a context manager)."""

    def __init__(self, name: str, *, delay_ms: float = 0.0, jitter_ms: float = 0.0, loss: float = 0.0,
                 down_kbps: float = 0.0, up_kbps: float = 0.0, queue_bytes: int | None = None,
                 seed: int | None = None) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"link name {name!r} must be 1-14 chars of [a-z0-9] starting with a letter")
        _check_faults(delay_ms, jitter_ms, loss)
        _check_rate(down_kbps, up_kbps, queue_bytes)
        reason = netem_available()
        if reason is not None:
            raise NetemError(reason)
        self.name = name
        self.ns = name
        self.host_dev = name + "h"
        self.ns_dev = name + "n"
        self.host_ip = ""
        self.ns_ip = ""
        self._faults = {"delay_ms": float(delay_ms), "jitter_ms": float(jitter_ms), "loss": float(loss),
                        "down_kbps": float(down_kbps), "up_kbps": float(up_kbps),
                        "queue_bytes": float(queue_bytes or 0)}
        self._cut = False
        self._closed = False
        self._lock = threading.Lock()
        self._control: Socket | None = None
        self._forwarder: subprocess.Popen[bytes] | None = None
        try:
            self._build(seed)
        except BaseException:
            self.close()
            raise
        _open_links.add(self)

    @property
    def exec_prefix(self) -> list[str]:
        """Return the command prefix that runs a program inside the namespace."""
        return [_ip_command(), "netns", "exec", self.ns]

    @property
    def stats(self) -> NetemStats:
        """Return a snapshot of the packets forwarded and dropped each way."""
        reply = self._request({"op": "stats"})
        return NetemStats(**{k: int(str(reply[k])) for k in NetemStats.__dataclass_fields__})

    @property
    def faults(self) -> dict[str, float]:
        """Return the current delay_ms, jitter_ms, loss, down_kbps, up_kbps and queue_bytes (0: default)."""
        return dict(self._faults)

    @property
    def is_cut(self) -> bool:
        """Return whether the link is in an outage."""
        return self._cut

    def set(self, *, delay_ms: float | None = None, jitter_ms: float | None = None,
            loss: float | None = None, down_kbps: float | None = None, up_kbps: float | None = None,
            queue_bytes: int | None = None) -> None:
        """Change the faults for the packets arriving from now on (None keeps a value; a rate of 0 lifts it)."""
        faults = dict(self._faults)
        for key, value in (("delay_ms", delay_ms), ("jitter_ms", jitter_ms), ("loss", loss),
                           ("down_kbps", down_kbps), ("up_kbps", up_kbps), ("queue_bytes", queue_bytes)):
            if value is not None:
                faults[key] = float(value)
        _check_faults(faults["delay_ms"], faults["jitter_ms"], faults["loss"])
        _check_rate(faults["down_kbps"], faults["up_kbps"], int(faults["queue_bytes"]) or None)
        self._request({"op": "set", **faults})
        self._faults = faults

    def cut(self) -> None:
        """Start an outage: drop every packet, both ways, until `restore()`."""
        self._request({"op": "cut"})
        self._cut = True

    def restore(self) -> None:
        """End an outage."""
        self._request({"op": "restore"})
        self._cut = False

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
               proto: int = 0) -> Socket:
        """Make a socket inside the namespace (for a client in this process to talk through the link)."""
        return self.run_in_namespace(socket.socket, family, type, proto)

    def connect(self, address: tuple[str, int], timeout: float = 10.0) -> Socket:
        """Open a TCP connection from inside the namespace (e.g. for `asyncio.open_connection(sock=...)`)."""
        sock = self.socket()
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def run_in_namespace(self, fn: Callable[..., T], *args: Any) -> T:
        """Call `fn(*args)` in a new thread inside the namespace, wait for it and return its result.

        Every socket made during the call is in the namespace and stays there, so `asyncio.run(main())`
        run this way (in a thread of the caller's own) puts a whole client behind the link, media included.
        """
        return run_in_namespace(self.ns, fn, *args)

    def ping(self, count: int = 10, interval: float = 0.05, timeout: float = 1.0,
             target: str | None = None) -> list[float | None]:
        """Send ICMP echo requests from inside the namespace; return each round trip in seconds (None: lost)."""
        args = [target or self.host_ip, str(count), str(interval), str(timeout)]
        proc = subprocess.run([*self.exec_prefix, sys.executable, "-I", _CHILD, "ping", *args],
                              capture_output=True, text=True, timeout=count * interval + timeout + 10)
        if proc.returncode != 0:
            raise NetemError(f"ping inside {self.ns} failed: {proc.stderr.strip()}")
        rtts: list[float | None] = json.loads(proc.stdout)
        return rtts

    def close(self) -> None:
        """Stop forwarding, remove the devices and the namespace (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._control is not None:
                self._control.close()
        if self._forwarder is not None:
            try:
                self._forwarder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._forwarder.kill()
                self._forwarder.wait()
        if (NETNS_DIR / self.ns).exists():
            _ip("netns", "del", self.ns, check=False)
        (STATE_DIR / f"{self.ns}.json").unlink(missing_ok=True)
        _open_links.discard(self)

    def __enter__(self) -> NetemLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        f = self._faults
        return (f"NetemLink({self.ns!r}, host_ip={self.host_ip!r}, ns_ip={self.ns_ip!r}, "
                f"delay_ms={f['delay_ms']:g}, jitter_ms={f['jitter_ms']:g}, loss={f['loss']:g}, "
                f"down_kbps={f['down_kbps']:g}, up_kbps={f['up_kbps']:g}, cut={self._cut})")

    def _build(self, seed: int | None) -> None:
        remove_stale_namespaces()
        if (NETNS_DIR / self.ns).exists():
            _ip("netns", "del", self.ns)
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / f"{self.ns}.json").write_text(json.dumps({"pid": os.getpid()}))
        _ip("netns", "add", self.ns)
        host_fd = _open_tun(self.host_dev)
        ns_fd = _open_tun(self.ns_dev)
        try:
            self._start_forwarder(host_fd, ns_fd, seed)
        finally:
            os.close(host_fd)
            os.close(ns_fd)
        _ip("link", "set", self.ns_dev, "netns", self.ns)
        with _AddressLock():
            k = _free_subnet()
            self.host_ip, self.ns_ip = f"10.66.{k}.1", f"10.66.{k}.2"
            _ip(batch=[
                f"link set dev {self.host_dev} mtu {MTU} addrgenmode none multicast off",
                f"addr add {self.host_ip} peer {self.ns_ip}/32 dev {self.host_dev}",
                f"link set dev {self.host_dev} up",
            ])
        _ip("-n", self.ns, batch=[
            "link set dev lo up",
            f"link set dev {self.ns_dev} mtu {MTU} addrgenmode none multicast off",
            f"addr add {self.ns_ip} peer {self.host_ip}/32 dev {self.ns_dev}",
            f"link set dev {self.ns_dev} up",
            f"route add default via {self.host_ip} dev {self.ns_dev}",
        ])

    def _start_forwarder(self, host_fd: int, ns_fd: int, seed: int | None) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            args = [str(host_fd), str(ns_fd), str(theirs.fileno()), json.dumps({**self._faults, "seed": seed})]
            self._forwarder = subprocess.Popen(
                [sys.executable, "-I", _CHILD, "forward", *args],
                pass_fds=(host_fd, ns_fd, theirs.fileno()), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._control = ours
        ours.settimeout(10)
        try:
            hello = ours.recv(4096)
        except OSError as exc:
            raise NetemError(f"the netem forwarder for {self.ns} did not start: {exc}") from exc
        if hello != b"ready":
            raise NetemError(f"the netem forwarder for {self.ns} did not start (exit code {self._forwarder.poll()})")

    def _request(self, message: dict[str, object]) -> dict[str, object]:
        with self._lock:
            if self._closed or self._control is None:
                raise NetemError(f"link {self.ns} is closed")
            try:
                self._control.send(json.dumps(message).encode())
                reply = self._control.recv(4096)
            except OSError as exc:
                raise NetemError(f"the netem forwarder for {self.ns} is gone: {exc}") from exc
        if not reply:
            raise NetemError(f"the netem forwarder for {self.ns} exited")
        decoded: dict[str, object] = json.loads(reply)
        return decoded


def run_in_namespace(ns: str, fn: Callable[..., T], *args: Any) -> T:
    """Call `fn(*args)` in a new thread inside the named namespace, wait for it and return its result."""
    outcome: list[tuple[bool, Any]] = []
    thread = threading.Thread(target=_call_in_ns, args=(ns, fn, args, outcome), name=f"netns-{ns}")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result


def _call_in_ns(ns: str, fn: Callable[..., Any], args: tuple[Any, ...], outcome: list[tuple[bool, Any]]) -> None:
    # setns moves only the calling thread (and threads it starts later); a socket keeps its namespace.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
        finally:
            os.close(fd)
        outcome.append((True, fn(*args)))
    except BaseException as exc:  # handed to the caller's thread, which raises it
        outcome.append((False, exc))


def _check_faults(delay_ms: float, jitter_ms: float, loss: float) -> None:
    if delay_ms < 0 or jitter_ms < 0:
        raise ValueError(f"delay and jitter must be >= 0 ms (got {delay_ms}, {jitter_ms})")
    if not 0.0 <= loss <= 1.0:
        raise ValueError(f"loss is a probability in [0, 1] (got {loss})")


def _check_rate(down_kbps: float, up_kbps: float, queue_bytes: int | None) -> None:
    if not (down_kbps >= 0 and up_kbps >= 0):
        raise ValueError(f"rates must be >= 0 kb/s, 0 meaning unlimited (got {down_kbps}, {up_kbps})")
    if queue_bytes is not None and queue_bytes < MTU:
        raise ValueError(f"the queue must hold at least one packet of {MTU} bytes (got {queue_bytes})")


def _find_ip() -> str | None:
    for candidate in (shutil.which("ip"), "/usr/sbin/ip", "/sbin/ip"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _ip_command() -> str:
    found = _find_ip()
    if found is None:
        raise NetemError("netem needs the `ip` command (Debian package iproute2)")
    return found


def _ip(*args: str, batch: list[str] | None = None, check: bool = True) -> str:
    cmd = [_ip_command(), *args]
    if batch is not None:
        cmd += ["-batch", "-"]
    proc = subprocess.run(cmd, input="\n".join(batch) + "\n" if batch is not None else None,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetemError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()}"
                         + (f"\nbatch: {batch}" if batch else ""))
    return proc.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open_tun(ifname: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", ifname.encode(), IFF_TUN | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise NetemError(f"cannot create TUN device {ifname}: {exc}") from exc
    return fd


class _AddressLock:
    """An exclusive lock across processes while a link picks and claims its addresses."""

    def __enter__(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(STATE_DIR / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _free_subnet() -> int:
    used = {int(m) for m in re.findall(r"\binet 10\.66\.(\d+)\.1\b", _ip("-o", "-4", "addr", "show"))}
    for k in range(256):
        if k not in used:
            return k
    raise NetemError("all 256 netem subnets 10.66.<k>.0/24 are in use")


@atexit.register
def _close_all() -> None:
    for link in list(_open_links):
        link.close()
