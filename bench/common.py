"""What every benchmark shares: CPU pinning, a real server, percentiles, CPU meters and the one JSON line.

A benchmark runs the server on one core (taskset, CPU 0) and its load on the other (CPU 1) so the
two do not steal time from each other, measures its figure and a baseline in the same run, and
prints one JSON line that includes the machine's core count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tvapp.testing.server import ServerProcess

T = TypeVar("T")

SERVER_CPU = 0
LOAD_CPU = 1
_TICKS = os.sysconf("SC_CLK_TCK")


def parser(description: str) -> argparse.ArgumentParser:
    """Return an argument parser with the `--quick` flag every benchmark has."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test (seconds, not minutes)")
    return p


def _pinnable() -> bool:
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    return shutil.which("taskset") is not None and {SERVER_CPU, LOAD_CPU} <= cpus


# Decided once at import: after pin_load() this process may only run on LOAD_CPU.
_PINNABLE = _pinnable()


def can_pin() -> bool:
    """Tell whether the server and the load can each get a core of their own."""
    return _PINNABLE


def pin_load() -> int | None:
    """Pin this process (the load generator) to LOAD_CPU; return the CPU, or None when not pinned."""
    if not can_pin():
        return None
    os.sched_setaffinity(0, {LOAD_CPU})
    return LOAD_CPU


@contextlib.contextmanager
def running_server(env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """Start a real `tvapp serve` on 127.0.0.1 in a fresh data dir, pinned to SERVER_CPU when possible."""
    with tempfile.TemporaryDirectory(prefix="tvapp-bench-") as data:
        srv = ServerProcess(Path(data), env={"TVAPP_SERVER_HOST": "127.0.0.1", **(env or {})},
                            cpu=SERVER_CPU if can_pin() else None)
        with srv:
            yield srv


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run the load generator's coroutine on uvloop when it is installed (cheaper per message)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def percentile(samples: Sequence[float], q: float) -> float:
    """Return the nearest-rank q-th percentile (0 < q <= 100) of samples."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_ms(samples: Sequence[float]) -> dict[str, float]:
    """Summarize durations in seconds as p50/p95/max in milliseconds."""
    return {"p50_ms": round(percentile(samples, 50) * 1000, 2),
            "p95_ms": round(percentile(samples, 95) * 1000, 2),
            "max_ms": round(max(samples) * 1000, 2)}


def process_cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time another process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """How busy this process and the server were during measured intervals, as a fraction of one core.

    Intervals add up, so short ones (a round of joins) are summed before dividing: the kernel
    counts CPU time in ticks of 10 ms.
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.wall = self.own = self.server = 0.0
        self._marks = (0.0, 0.0, 0.0)

    def start(self) -> None:
        """Start an interval."""
        self._marks = (time.perf_counter(), time.process_time(), process_cpu_seconds(self.server_pid))

    def stop(self) -> None:
        """End the interval and add it to the totals."""
        wall, own, server = self._marks
        self.wall += time.perf_counter() - wall
        self.own += time.process_time() - own
        self.server += process_cpu_seconds(self.server_pid) - server

    @property
    def own_busy(self) -> float:
        """Return this process's CPU time over the measured wall time."""
        return round(self.own / self.wall, 3) if self.wall else 0.0

    @property
    def server_busy(self) -> float:
        """Return the server's CPU time over the measured wall time."""
        return round(self.server / self.wall, 3) if self.wall else 0.0


def emit(benchmark: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Print the benchmark's one JSON line (with the core count and pinning) and return it."""
    line = {"benchmark": benchmark, "cores": os.cpu_count(), "pinned": can_pin(),
            "loadavg_1m": round(os.getloadavg()[0], 2), "python": sys.version.split()[0], **figures}
    print(json.dumps(line, separators=(", ", ": ")), flush=True)
    return line
