"""Network quality levels over real links: bots in netem namespaces, a real server, an SDK Room watching the levels.

Four bots publish a tone and receive each other's (so the SFU both receives from them and sends to them, and
hears their RTCP receiver reports), each behind its own userspace netem link with one profile. The watcher,
on the server's side of the links, reads the levels from `network_quality` (NetworkQualityChanged and
`participant.network_quality`) and REST participant info. A worse profile never gets a higher level and the
extremes differ; a participant whose link is cut goes to 0 (broken) and comes back when the link does.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tvapp.client import NetworkQualityChanged, Room
from tvapp.testing.aio import runner
from tvapp.testing.netem import NetemLink, netem_link
from tvapp.testing.recorder import Recorder
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess
from tvapp.testing.waiting import wait_until_async

run = runner(deadline=150)

# name -> netem faults (each way): 0 % / 2 % / 10 % loss at 50 ms, and 0 % loss at 300 ms.
PROFILES: dict[str, dict[str, float]] = {
    "clean": {"delay_ms": 50.0, "loss": 0.0},
    "lossy": {"delay_ms": 50.0, "loss": 0.02},
    "bad": {"delay_ms": 50.0, "loss": 0.10},
    "far": {"delay_ms": 300.0, "loss": 0.0},
}


@pytest.fixture
def links() -> Iterator[dict[str, NetemLink]]:
    with ExitStack() as stack:
        yield {name: stack.enter_context(netem_link("nq", seed=seed, **faults))
               for seed, (name, faults) in enumerate(PROFILES.items())}


def test_levels_follow_the_netem_profiles_and_a_cut_participant_goes_to_0_and_back(
        links: dict[str, NetemLink], tmp_path: Path) -> None:
    hosts = ",".join(link.host_ip for link in links.values())
    server = ServerProcess(tmp_path / "server", host="0.0.0.0",
                           env={"TVAPP_MEDIA_HOST_ADDRESSES": hosts, "TVAPP_SERVER_TLS": "off"}).start()
    port = server.url.rsplit(":", 1)[1]
    server.http.post("/v1/rooms", json={"name": "nq"})
    bots = {}
    try:
        for name, link in links.items():
            bots[name] = BotProcess(tmp_path, name, [
                "--server", f"http://{link.host_ip}:{port}", "--token", server.token("nq", name)["access_token"],
                "--video", "none", "--audio", "tone:440", "--subscribe"],
                env={"TVAPP_MEDIA_HOST_ADDRESSES": link.ns_ip}, prefix=link.exec_prefix)
        for bot in bots.values():
            bot.wait_published(1, timeout=45)
        run(scenario(server, links))
        assert not [line for line in server.output if "measuring" in line], "".join(server.output)
    finally:
        for bot in bots.values():
            bot.stop()
        server.stop()


async def scenario(server: ServerProcess, links: dict[str, NetemLink]) -> None:
    first = next(iter(links.values()))
    watcher = await Room.connect(server.url.replace("0.0.0.0", first.host_ip),
                                 server.token("nq", "watcher")["access_token"], host_addresses=[first.host_ip])
    events = Recorder(watcher)
    try:
        await wait_until_async(lambda: {p.identity for p in watcher.participants.values()} >= set(PROFILES),
                               timeout=30, what="all four bots in the room")
        by_name = {p.identity: p for p in watcher.participants.values()}
        # Let the 5 s windows fill, then sample each bot's level once a second for 12 s.
        await wait_until_async(lambda: all(p.network_quality is not None for p in by_name.values()), timeout=20,
                               what="a level for every bot")
        await asyncio.sleep(6.0)
        samples: dict[str, list[int]] = {name: [] for name in PROFILES}
        for _ in range(12):
            await asyncio.sleep(1.0)
            for name, participant in by_name.items():
                if name in samples and participant.network_quality is not None:
                    samples[name].append(participant.network_quality)
        medians = {name: statistics.median(levels) for name, levels in samples.items()}
        measures = {name: p.network_quality_info for name, p in by_name.items() if name in PROFILES}
        print(f"network quality levels: {samples}\nmedians: {medians}\nlast measures: {measures}")
        assert medians["clean"] >= medians["lossy"] >= medians["bad"], medians
        assert medians["clean"] >= medians["far"], medians
        assert medians["clean"] > medians["bad"] and medians["clean"] > medians["far"], medians
        assert medians["clean"] >= 4, medians

        # The level is in REST participant info too.
        rest = {p["identity"]: p["network_quality"] for p in server.http.get("/v1/rooms/nq/participants").json()}
        assert all(isinstance(rest[name], int) and 0 <= rest[name] <= 5 for name in PROFILES), rest

        # A cut link: 0 (broken) within a few seconds, then back up when it is restored.
        clean = by_name["clean"]
        before = {id(e) for e in events.seen}
        links["clean"].cut()
        cut_at = time.monotonic()
        broken = await events.wait(NetworkQualityChanged, lambda e: id(e) not in before and e.participant is clean
                                   and e.level == 0, timeout=10)
        print(f"broken after {time.monotonic() - cut_at:.1f} s; previous level {broken.previous}")
        before = {id(e) for e in events.seen}
        links["clean"].restore()
        restored = time.monotonic()
        await events.wait(NetworkQualityChanged, lambda e: id(e) not in before and e.participant is clean
                          and e.level is not None and e.level >= 3, timeout=30)
        print(f"back to >= 3 after {time.monotonic() - restored:.1f} s")
    finally:
        await watcher.disconnect()
