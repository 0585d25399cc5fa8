"""What another process holds, read from /proc: resident memory, open file descriptors, threads, UDP ports.

Linux only. A reading of a process that has exited raises ProcessLookupError, so a sampler can tell
"the process died" from "the process grew".
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcessSample:
    """One reading of a process: when (monotonic seconds), RSS in bytes, open fds, threads."""

    at: float
    rss: int
    fds: int
    threads: int


def _proc(pid: int) -> Path:
    path = Path(f"/proc/{pid}")
    if not path.exists():
        raise ProcessLookupError(pid)
    return path


def sample(pid: int) -> ProcessSample:
    """Read a process's RSS, open file descriptors and thread count now."""
    proc = _proc(pid)
    try:
        rss_pages = int((proc / "statm").read_text().split()[1])
        fds = len(os.listdir(proc / "fd"))
        threads = next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines()
                       if line.startswith("Threads:"))
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessLookupError(pid) from None
    return ProcessSample(at=time.monotonic(), rss=rss_pages * _PAGE, fds=fds, threads=threads)


def socket_inodes(pid: int) -> set[int]:
    """Return the inodes of the sockets a process has open."""
    proc = _proc(pid)
    inodes = set()
    for fd in os.listdir(proc / "fd"):
        try:
            target = os.readlink(proc / "fd" / fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def udp_ports(pid: int, host: str = "127.0.0.1") -> list[int]:
    """Return the local ports of the IPv4 UDP sockets a process has bound to `host` (or to 0.0.0.0), sorted."""
    owned = socket_inodes(pid)
    wanted = {_hex_ipv4(host), _hex_ipv4("0.0.0.0")}
    ports = set()
    for line in (_proc(pid) / "net" / "udp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if int(fields[9]) in owned and address in wanted:
            ports.add(int(port, 16))
    return sorted(ports)


def _hex_ipv4(address: str) -> str:
    """/proc/net/udp writes an IPv4 address as the hex of its 32 bits in host (little-endian) order."""
    octets = [int(part) for part in address.split(".")]
    return "".join(f"{o:02X}" for o in reversed(octets))
