"""Living-room remote: how fast a phone finds the TV, and how fast a remote command shows on the TV's screen.

One real `tvapp tv` (built-in core, SDL dummy screen at 1920x1080, `--trace`) hosts its room with two real
`tvapp bot` guests in it, so there are tiles to re-lay-out. A phone is paired the way a person pairs: ask, read
the code from the TV's rendered screen state, confirm.

- discovery: ROUNDS fresh zeroconf browses (tvapp.client.discovery.discover, what `tvapp remote discover` runs)
  on 127.0.0.1; the figure is the time from the browse's start until the TV's service was resolved.
  Baseline, same run: the same browse with zeroconf's default questions (the first one asks for a unicast
  answer, which on a host with two mDNS sockets on port 5353 often reaches the other one); and, for scale, a
  direct query for the already-known service instance (the multicast round trip alone).
- command_to_screen: ROUNDS `set_layout` commands alternating grid/speaker over the real /v1/remote websocket;
  the figure is from just before the send until the flip that first showed the new layout (the TV's trace
  writes that flip's wall time; one machine, one clock).
  Baseline, same run: a `status` command's round trip (send -> ok) on the same connection: what the websocket
  and the TV's network thread cost, without any drawing.
Goals: discovery p95 <= 1000 ms; command -> screen p95 <= 100 ms.

Run: python -m bench.tv_remote [--quick] [--rounds R]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench.common import emit, latency_ms, parser
from tvapp.client.discovery import discover
from tvapp.client.remote_link import RemoteLink, confirm_pairing, request_pairing
from tvapp.core.layout import Mode
from tvapp.protocol import remote_messages as rp
from tvapp.testing.tv import BotProcess, TvProcess

GOALS = {"discovery_p95_ms": 1000, "command_to_screen_p95_ms": 100}
NAME = "Bench TV"


class LayoutFlips:
    """The flips that showed a new screen or layout, read from the TV's trace as it grows (each line once)."""

    def __init__(self, trace: Path) -> None:
        self.trace = trace
        self.offset = 0
        self.seen: list[tuple[float, str | None]] = []

    def read(self) -> list[tuple[float, str | None]]:
        """Return (flip wall time, mode) of every such flip so far."""
        with open(self.trace, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            event = json.loads(line)
            if event.get("event") == "layout":
                self.seen.append((float(event["t"]), event.get("mode")))
        return self.seen


async def direct_query(service: str, timeout: float = 3.0) -> float:
    """Ask for one known service instance by name; return the seconds until it answered."""
    from zeroconf import DNSQuestionType, IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        info = AsyncServiceInfo("_tvapp._tcp.local.", service)
        started = time.perf_counter()
        if not await info.async_request(zc.zeroconf, int(timeout * 1000), question_type=DNSQuestionType.QM):
            raise RuntimeError(f"{service} did not answer a direct query")
        return time.perf_counter() - started
    finally:
        await zc.async_close()


async def commands(url: str, credential: str, trace: Path, rounds: int) -> tuple[list[float], list[float]]:
    """Send set_layout rounds and status round trips; return (command -> screen, status round trip) seconds."""
    to_screen: list[float] = []
    status_rtt: list[float] = []
    flips = LayoutFlips(trace)
    async with await RemoteLink.connect(url, credential) as link:
        for i in range(rounds):
            mode = Mode.SPEAKER if i % 2 == 0 else Mode.GRID
            sent = time.time()
            result = await link.command(rp.SetLayout(layout=mode))
            if not result.ok:
                raise RuntimeError(f"set_layout refused: {result.error}")
            deadline = time.monotonic() + 5
            while True:
                shown = [t for t, m in flips.read() if t >= sent and m == mode]
                if shown:
                    to_screen.append(shown[0] - sent)
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"layout {mode} never reached the screen")
                await asyncio.sleep(0.02)
            started = time.perf_counter()
            result = await link.command(rp.StatusCommand())
            status_rtt.append(time.perf_counter() - started)
            await asyncio.sleep(0.15)  # let the frame loop settle, like a thumb between two presses
    return to_screen, status_rtt


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--rounds", type=int, help="discoveries and commands to time (default 40, 3 with --quick)")
    args = p.parse_args()
    rounds = args.rounds or (3 if args.quick else 40)
    with tempfile.TemporaryDirectory(prefix="tvapp-bench-remote-") as tmp:
        work = Path(tmp)
        trace = work / "trace.jsonl"
        tv = TvProcess(work / "tv", ["--host", "127.0.0.1", "--port", "0", "--name", NAME, "--data",
                                     str(work / "data"), "--no-audio", "--trace", str(trace)])
        bots: list[BotProcess] = []
        try:
            _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60,
                                     what="the TV's room")
            core = next(line.split(" at ")[1].split(";")[0] for line in tv.output.splitlines()
                        if "built-in core at" in line)
            for name in ("ann", "bob"):
                bots.append(BotProcess(work, name, ["--server", core, "--invite", sidecar["invite_code"],
                                                    "--identity", name, "--video", "pattern:320x240@15",
                                                    "--audio", "none"]))
            tv.wait_for(lambda s: len(s["tiles"]) == 2, timeout=40, what="two tiles")
            url = tv.remote_url()

            found_after: list[float] = []
            default_questions: list[float] = []
            direct: list[float] = []
            for _ in range(rounds):
                for multicast, into in ((True, found_after), (False, default_questions)):
                    seen = [t for t in discover(2.5, ["127.0.0.1"], multicast_answers=multicast)
                            if t.friendly_name == NAME]
                    if not seen:
                        raise RuntimeError("the TV was not discovered")
                    into.append(seen[0].found_after)
                direct.append(asyncio.run(direct_query(seen[0].service)))

            async def pair_and_drive() -> tuple[list[float], list[float]]:
                started = await request_pairing(url, "bench phone")
                _, shot = await asyncio.to_thread(tv.wait_for, lambda s: s["pairing"] is not None, 10.0,
                                                  "the pairing code")
                answer = await confirm_pairing(url, started.pairing_id,
                                               code=shot["pairing"]["code"].replace(" ", ""))
                return await commands(url, answer.credential, trace, rounds)

            to_screen, status_rtt = asyncio.run(pair_and_drive())
        finally:
            for bot in bots:
                bot.stop()
            tv.stop()
    discovery = latency_ms(found_after)
    screen = latency_ms(to_screen)
    emit("tv_remote", {
        "rounds": rounds,
        "discovery": discovery, "discovery_baseline_zeroconf_default": latency_ms(default_questions),
        "discovery_direct_query": latency_ms(direct),
        "command_to_screen": screen, "command_baseline_status_rtt": latency_ms(status_rtt),
        "goals": GOALS,
        "goal_met": discovery["p95_ms"] <= GOALS["discovery_p95_ms"]
        and screen["p95_ms"] <= GOALS["command_to_screen_p95_ms"],
    })


if __name__ == "__main__":
    main()
