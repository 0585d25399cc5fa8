"""`tvapp demo`: the whole product on one machine: the built-in core, the TV hosting a room, and a few bots.

The TV is `tvapp tv`'s (tvapp.commands.tv). The guests are bots publishing coloured patterns and tones, taking
turns to talk. Each bot is a real `tvapp bot` process (so they encode on the other cores), given an access token issued
through the REST API with the TV's API key. They talk in turns on the wall clock (`--talk i/N`), so the
active-speaker highlight moves from tile to tile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tvapp import config as config_mod
from tvapp.commands.common import run_configured
from tvapp.commands.tv import add_tv_arguments, lan_url, tv_options, with_embedded_core

if TYPE_CHECKING:
    from tvapp.commands.common import Subcommands
    from tvapp.tv.session import TvSession

# (name, colour, tone Hz): distinct colours and tones, far apart enough to tell apart by ear and by FFT.
GUESTS = (("Ada", "red", 330), ("Grace", "green", 440), ("Alan", "blue", 554), ("Edsger", "yellow", 659),
          ("Barbara", "magenta", 784))
TURN_SECONDS = 3.0
BOT_VIDEO = "pattern:640x480@15"


def add_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add `tvapp demo` and its options to the subcommands `sub`."""
    demo = sub.add_parser("demo", parents=[common], help="the whole product on one machine: core + TV + bots",
                          description="Start the built-in core, the TV hosting a room, and a few bots that publish "
                                      "coloured patterns and tones and take turns talking. Without a screen it "
                                      "draws offscreen and writes screenshots. Phones on the LAN can join too.")
    add_tv_arguments(demo)
    demo.add_argument("--room", metavar="NAME", help="room name (default: tv.room)")
    demo.add_argument("--bots", type=int, default=4, metavar="N", help="bots to start, 1 to 5 (default: 4)")


def main(args: argparse.Namespace) -> int:
    """Run `tvapp demo`; return its exit status."""
    return run_configured(args, run)


def run(cfg: config_mod.Config, data: Path, args: argparse.Namespace) -> int:
    """Run the demo: core + TV + bots."""
    from tvapp.tv.app import run_tv
    from tvapp.tv.join import JoinPlan

    if not 1 <= args.bots <= 5:
        print("tvapp demo: --bots must be 1 to 5", file=sys.stderr)
        return 2
    try:
        options = dataclasses.replace(tv_options(cfg, args), offscreen_fallback=True)
    except ValueError as exc:
        print(f"tvapp demo: {exc}", file=sys.stderr)
        return 2
    room = args.room or cfg.tv.room

    async def network_main(session: TvSession) -> None:
        async def after_start(url: str, key: tuple[str, str]) -> None:
            await run_bots(session, url, key, room, args.bots, phone_url=lan_url(url, args))

        await with_embedded_core(cfg, data, args, session,
                                 lambda url, key: JoinPlan(server=url, room=room, api_key=key,
                                                           name=options.friendly_name),
                                 also=after_start)

    return run_tv(options, network_main)


async def run_bots(session: TvSession, server: str, api_key: tuple[str, str], room: str, count: int,
                   phone_url: str = "") -> None:
    """Start `count` bots in `room` once the TV is in it; stop them when cancelled."""
    from tvapp.client.room import api_post

    while session.room is None:
        await asyncio.sleep(0.1)
    code = session.invite_code
    link = f"{phone_url}?code={code}" if phone_url and code else phone_url
    print(f"tvapp demo: room {room!r}, invite code {code}; join from a phone at {link}", flush=True)
    procs: list[asyncio.subprocess.Process] = []
    try:
        for index, (name, color, hz) in enumerate(GUESTS[:count]):
            pair = await api_post(server, "/v1/tokens", {"room": room, "identity": f"demo-{name.lower()}",
                                                         "name": name}, api_key=api_key)
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tvapp", "bot", "--server", server, "--token", str(pair["access_token"]),
                "--refresh-token", str(pair["refresh_token"]), "--video", BOT_VIDEO, "--color", color,
                "--audio", f"tone:{hz}", "--talk", f"{index}/{count}@{TURN_SECONDS:g}",
                stdout=asyncio.subprocess.DEVNULL))
        print(f"tvapp demo: {count} bots joined; they take turns talking every {TURN_SECONDS:g} s. "
              "Ctrl-C stops the demo.", flush=True)
        await asyncio.gather(*(proc.wait() for proc in procs))
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
