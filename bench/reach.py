"""Reach: join -> first remote frame over each network path a home can have to the core, and what a relay adds.

Built with tvapp.testing.homes (network namespaces, the kernel's NAT) and tvapp.testing.coturn (Debian's coturn):
a publisher (`tvapp bot`, 320x240@15 pattern, no audio) sits in the cloud next to the core; for each run a fresh
SDK subscriber (tvapp.testing.reach.take_part) joins from somewhere and the clock runs from `Room.connect` to its
first decoded frame of the publisher's video. Paths:

- loopback: a second core on 127.0.0.1 in the root namespace, publisher and subscriber there too (the baseline);
- direct: subscriber in the cloud namespace itself, no NAT;
- nat_eim / nat_symmetric: subscriber in home A (endpoint-independent mapping) / home B (symmetric NAT);
- turn_udp / turn_tcp / turn_tls: subscriber in home C, whose router lets out only UDP to coturn's port (turn_udp)
  or no UDP at all (tcp, tls), with a core whose `[media] turn_urls` is only that one URL and `turn_secret` coturn's
  (each participant gets its own TURN REST credentials; the SFU itself does not use TURN).

Runs of every path of one core interleave. Each sample also records the nominated local candidate type, so a
figure is known to be the path it claims (a turn_* sample must be "relay").
Relay overhead: each subscriber also decodes FRAMES frames and reads their capture stamps (one wall clock):
`latency_p50_ms` per path; `relay_added_p50_ms` = turn_udp's minus direct's. Core CPU over the measured intervals
(`core_cpu_busy`) per core, and coturn's CPU per TURN path.
Goal: every path p95 <= 1.5 s.

Outages (`--outages N`, off by default: each run takes ~OUTAGE_S + 2 x up to BACK_CAP_S): a follower in home A
decodes the publisher's video; home A's uplink is cut for OUTAGE_S and restored, then the follower's address
changes (`Home.move`). Figure: from the restore (the move) to the first decoded frame *captured after it* (read
from the frame's stamp, so frames buffered before the cut do not count); a run where none comes within BACK_CAP_S
counts in `not_back`. Goals (issue 14): p95 <= 2 s after a 5 s outage, <= 3 s after an address change.

Signaling-only blips (`--signal-blips N`, off by default): a follower of the loopback core's publisher reaches its
signaling through tvapp.testing.tcpproxy (its media goes straight to the SFU); the proxy resets the websocket
("reset": a new one is accepted at once) or resets it and refuses new ones for SIGNAL_DOWN_S ("down_3s"). The SDK
resumes the same participant with the peer connection kept. Figure: the longest gap between two decoded frames from
0.5 s before the cut to 1 s after the resume (`longest_gap_ms`; the goal is that media never stops: no gap beyond
what the same span had before the cut, `baseline_gap_ms`), and cut -> resumed (`resumed_ms`).

Run: python -m bench.reach [--quick] [--runs N] [--outages N] [--signal-blips N]. Prints one JSON line. Needs root (namespaces) and coturn.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import itertools
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    SERVER_CPU,
    can_pin,
    emit,
    latency_ms,
    parser,
    percentile,
    pin_load,
    process_cpu_seconds,
)
from tvapp.testing.coturn import Coturn
from tvapp.testing.homes import Homes
from tvapp.testing.reach import Follower, Reach, take_part
from tvapp.testing.server import ServerProcess
from tvapp.testing.tcpproxy import ThreadedProxy
from tvapp.testing.tv import BotProcess
from tvapp.web.tls import ensure_certificate

GOAL_P95_S = 1.5
OUTAGE_S = 5.0
BACK_CAP_S = 12.0
FRAMES = 20
SECRET = "bench-reach-" + uuid.uuid4().hex


class Core:
    """A core with a publishing bot in its room; `join(runner)` times one subscriber."""

    def __init__(self, workdir: Path, *, host: str, env: dict[str, str], prefix: list[str]) -> None:
        env = {"TVAPP_MEDIA_HOST_ADDRESSES": host, "TVAPP_SERVER_TLS": "off", **env}  # (the media path, not TLS)
        self.server = ServerProcess(workdir / "core", env=env, host=host,
                                    prefix=prefix, cpu=SERVER_CPU if can_pin() else None).start()
        self.room = "reach-" + uuid.uuid4().hex[:6]
        self.server.http.post("/v1/rooms", json={"name": self.room}).raise_for_status()
        token = self.server.token(self.room, "pub")["access_token"]
        self.bot = BotProcess(workdir, "pub", ["--server", self.server.url, "--token", token,
                                               "--video", "pattern:320x240@15", "--audio", "none"],
                              env={"TVAPP_MEDIA_HOST_ADDRESSES": host}, prefix=prefix)
        self.bot.wait_published(1)
        self.cpu = 0.0
        self.wall = 0.0
        self.count = 0

    def join(self, runner: Callable[[Any], Reach], hosts: list[str] | None = None) -> Reach:
        """Time one subscriber run by `runner(coroutine)`; add the core's CPU time during it."""
        self.count += 1
        token = self.server.token(self.room, f"sub-{self.count}")["access_token"]
        assert self.server.proc is not None
        cpu, wall = process_cpu_seconds(self.server.proc.pid), time.perf_counter()
        reach = runner(take_part(self.server.url, token, watch="pub", color=None, frames=FRAMES, timeout=20,
                                      host_addresses=hosts))
        self.cpu += process_cpu_seconds(self.server.proc.pid) - cpu
        self.wall += time.perf_counter() - wall
        return reach

    def close(self) -> None:
        """Stop the bot and the core."""
        self.bot.stop()
        self.server.stop()


def summary(samples: list[Reach]) -> dict[str, Any]:
    """p50/p95/max of join -> first frame, candidate types seen, capture -> decoded latency."""
    if not samples:
        return {"samples": 0}
    ages = [a for r in samples for a in r.latencies_s[FRAMES // 2:]]  # the settled half of each run
    return {**latency_ms([r.first_frame_s for r in samples]), "samples": len(samples),
            "joined_p50_ms": round(percentile([r.joined_s for r in samples], 50) * 1000, 1),
            "candidate": dict(collections.Counter(r.local_type for r in samples)),
            "latency_p50_ms": round(percentile(ages, 50) * 1000, 1) if ages else None}


def outage(homes: Homes, core: Core, run: int, back: dict[str, list[float | None]]) -> None:
    """Cut home A for OUTAGE_S under a follower, then move it to another address; record when media is back."""
    home = homes["a"]
    follower = Follower()
    token = core.server.token(core.room, f"follower-{run}")["access_token"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        following = pool.submit(home.run_in_namespace, asyncio.run, follower.follow(core.server.url, token, "pub"))
        try:
            if not follower.first.wait(20):
                raise RuntimeError(f"the follower saw no frame: {following.exception(0) if following.done() else ''}")
            home.cut()
            time.sleep(OUTAGE_S)  # the outage itself
            home.restore()
            back["outage_5s"].append(_wait_back(follower, time.time()))
            home.move(f"192.168.1.{60 + run}")
            back["address_change"].append(_wait_back(follower, time.time()))
        finally:
            if home.is_cut:
                home.restore()
            follower.stop.set()
            with contextlib.suppress(Exception):
                following.result(15)


def _wait_back(follower: Follower, moment: float) -> float | None:
    deadline = time.monotonic() + BACK_CAP_S
    while time.monotonic() < deadline:
        took = follower.back_after(moment)
        if took is not None:
            return took
        time.sleep(0.02)
    return None


SIGNAL_DOWN_S = 3.0


def signal_blips(core: Core, runs: int) -> dict[str, Any]:
    """Reset the signaling of a follower of `core`'s publisher `runs` times per kind; the longest gaps in its frames."""
    proxy = ThreadedProxy(int(core.server.url.rsplit(":", 1)[1]))
    follower = Follower()
    token = core.server.token(core.room, "blip")["access_token"]
    figures: dict[str, dict[str, list[float]]] = {kind: collections.defaultdict(list) for kind in ("reset", "down_3s")}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        following = pool.submit(asyncio.run, follower.follow(proxy.url, token, "pub",
                                                              host_addresses=["127.0.0.1"]))
        try:
            if not follower.first.wait(20):
                raise RuntimeError(f"the follower saw no frame: {following.exception(0) if following.done() else ''}")
            for _ in range(runs):
                for kind, figure in figures.items():
                    _wait(lambda: len(follower.frames) > 45, 10)  # (3 s of frames before each cut)
                    resumes = len(follower.saw("reconnected"))
                    cut = time.time()
                    proxy.cut(refusing=kind != "reset")
                    if kind != "reset":
                        _wait(functools.partial(_since, cut, SIGNAL_DOWN_S), SIGNAL_DOWN_S + 1)
                        proxy.allow()
                    _wait(functools.partial(_more, follower, "reconnected", resumes), 20)
                    back = follower.saw("reconnected")[-1]
                    if back[2] != "resumed":
                        raise RuntimeError(f"the follower rejoined instead of resuming: {follower.events}")
                    _wait(functools.partial(_since, back[3], 1.0), 2)
                    figure["longest_gap_s"].append(_longest_gap(follower, cut - 0.5, back[3] + 1.0))
                    figure["baseline_gap_s"].append(_longest_gap(follower, cut - 3.0, cut))
                    figure["resumed_s"].append(back[3] - cut)
                    follower.frames.clear()
        finally:
            follower.stop.set()
            with contextlib.suppress(Exception):
                following.result(15)
            proxy.close()
    return {kind: {"runs": len(f["resumed_s"]),
                   **{name.replace("_s", "_ms"): {"p50": round(percentile(v, 50) * 1000, 1),
                                                  "max": round(max(v) * 1000, 1)} for name, v in f.items()}}
            for kind, f in figures.items()}


def _wait(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: a wait timed out")
        time.sleep(0.01)


def _since(moment: float, seconds: float) -> bool:
    return time.time() - moment >= seconds


def _more(follower: Follower, name: str, than: int) -> bool:
    return len(follower.saw(name)) > than


def _longest_gap(follower: Follower, start: float, end: float) -> float:
    """Return the longest time between two decoded frames in [start, end] (wall clock), the span's ends included."""
    decoded = [start] + sorted(d for d, _ in list(follower.frames) if start <= d <= end) + [end]
    return max(b - a for a, b in itertools.pairwise(decoded))


def back_summary(values: list[float | None]) -> dict[str, Any]:
    """p50/p95/max of the runs where media came back, and how many it did not within BACK_CAP_S."""
    came = [v for v in values if v is not None]
    return {**(latency_ms(came) if came else {}), "runs": len(values), "not_back": len(values) - len(came),
            "cap_s": BACK_CAP_S}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, help="subscribers per path (default 6, quick 2)")
    p.add_argument("--outages", type=int, default=0, help="outage + address change runs (default 0)")
    p.add_argument("--signal-blips", type=int, default=0, help="signaling-only blips of each kind (default 0)")
    args = p.parse_args()
    runs = args.runs or (2 if args.quick else 6)
    load_cpu = pin_load()
    samples: dict[str, list[Reach]] = collections.defaultdict(list)
    errors: dict[str, list[str]] = collections.defaultdict(list)
    cpu: dict[str, float] = {}
    back: dict[str, list[float | None]] = {"outage_5s": [], "address_change": []}

    def measure(path: str, core: Core, runner: Callable[[Any], Reach], hosts: list[str] | None = None) -> None:
        try:
            samples[path].append(core.join(runner, hosts))
        except Exception as exc:  # noqa: BLE001 (a path that fails is a figure too)
            errors[path].append(f"{type(exc).__name__}: {exc}"[:200])

    with tempfile.TemporaryDirectory(prefix="tvapp-bench-reach-") as tmp, Homes("br") as homes:
        work = Path(tmp)
        # -- loopback baseline and the three un-relayed paths
        local = Core(work / "loop", host="127.0.0.1", env={}, prefix=[])
        cloud = Core(work / "cloud", host=homes.core_ip, env={}, prefix=homes.cloud_prefix)
        try:
            for _ in range(runs):
                measure("loopback", local, asyncio.run, ["127.0.0.1"])
                measure("direct", cloud, lambda coro: homes.in_cloud(asyncio.run, coro))
                measure("nat_eim", cloud, lambda coro: homes["a"].run_in_namespace(asyncio.run, coro))
                measure("nat_symmetric", cloud, lambda coro: homes["b"].run_in_namespace(asyncio.run, coro))
            for i in range(args.outages):
                outage(homes, cloud, i, back)
            blips = signal_blips(local, args.signal_blips) if args.signal_blips else None
        finally:
            local.close()
            cloud.close()
        cpu["loopback_core"] = round(local.cpu / local.wall, 3) if local.wall else 0.0
        cpu["cloud_core"] = round(cloud.cpu / cloud.wall, 3) if cloud.wall else 0.0
        # -- through coturn, one core per TURN transport
        cert = ensure_certificate(work / "cert", ["localhost"], [homes.alt_ip])
        os.environ["SSL_CERT_FILE"] = str(cert.cert_path)  # aioice's turns: verifies with the default context
        home = homes["c"]
        with Coturn(secret=SECRET, listening_ips=[homes.alt_ip], relay_ip=homes.alt_ip, tls_port=5349,
                    cert=cert.cert_path, key=cert.key_path, min_port=49152, max_port=49999,
                    prefix=homes.cloud_prefix) as coturn:
            assert coturn.process is not None
            for transport in ("udp", "tcp", "tls"):
                env = {"TVAPP_MEDIA_TURN_URLS": coturn.url(transport, host=homes.alt_ip),
                       "TVAPP_MEDIA_TURN_SECRET": coturn.secret}
                home.forbid_udp()
                if transport == "udp":
                    home.allow_udp_to(homes.alt_ip, coturn.port)
                core = Core(work / f"turn-{transport}", host=homes.core_ip, env=env, prefix=homes.cloud_prefix)
                turn_cpu = process_cpu_seconds(coturn.process.pid)
                try:
                    for _ in range(runs):
                        measure(f"turn_{transport}", core, lambda coro: home.run_in_namespace(asyncio.run, coro))
                finally:
                    core.close()
                cpu[f"turn_{transport}_core"] = round(core.cpu / core.wall, 3) if core.wall else 0.0
                cpu[f"turn_{transport}_coturn"] = round(
                    (process_cpu_seconds(coturn.process.pid) - turn_cpu) / core.wall, 3) if core.wall else 0.0
            allocations = coturn.allocations()

    paths = {name: summary(samples[name]) for name in
             ("loopback", "direct", "nat_eim", "nat_symmetric", "turn_udp", "turn_tcp", "turn_tls")}
    p95s = {name: s["p95_ms"] for name, s in paths.items() if s["samples"]}
    base = paths["loopback"].get("p95_ms")
    relay_added = None
    if paths["turn_udp"].get("latency_p50_ms") is not None and paths["direct"].get("latency_p50_ms") is not None:
        relay_added = round(paths["turn_udp"]["latency_p50_ms"] - paths["direct"]["latency_p50_ms"], 1)
    emit("reach", {
        "runs": runs, "measured": "Room.connect -> first decoded frame of a publisher in the cloud",
        "video": "320x240@15", "paths": paths,
        "ratio_p95_to_loopback": {name: round(v / base, 2) for name, v in p95s.items()} if base else None,
        "relay_added_latency_p50_ms": relay_added, "cpu_busy": cpu, "coturn_allocations": allocations,
        "errors": dict(errors), "goal_p95_ms": GOAL_P95_S * 1000,
        **({"media_back": {name: back_summary(values) for name, values in back.items()},
            "media_back_goals_p95_ms": {"outage_5s": 2000.0, "address_change": 3000.0}} if args.outages else {}),
        **({"signal_blips": blips} if blips is not None else {}),
        "goal_met": len(p95s) == len(paths) and not errors and all(v <= GOAL_P95_S * 1000 for v in p95s.values()),
        "load_cpu": load_cpu})


if __name__ == "__main__":
    main()
