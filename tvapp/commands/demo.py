"""`tvapp demo`: the whole product on one machine: the built-in core, the TV hosting a room, and a few bots.

The TV is `tvapp tv`'s (tvapp.commands.tv); the guests, bots taking turns to talk, are
tvapp.commands.demo_bots'.
"""

from __future__ import annotations

import argparse
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
    from tvapp.commands.demo_bots import run_bots
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
