"""`tvapp serve`: run the core server (REST API under /v1, signaling, SFU) in the foreground until stopped."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from tvapp import config as config_mod
from tvapp.commands.common import run_configured

if TYPE_CHECKING:
    from tvapp.commands.common import Subcommands


def add_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add `tvapp serve` and its options to the subcommands `sub`."""
    serve = sub.add_parser("serve", parents=[common], help="run the core server (REST API, signaling)",
                           description="Run the core server: REST API under /v1, signaling websocket at "
                                       "/v1/signal, OpenAPI at /v1/openapi.json. Creates an API key on first start.")
    serve.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port, 0 for any free one (default: server.port, 8800)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                       help="what the server logs to stderr (default: info)")
    serve.add_argument("--check-reachability", action="store_true",
                       help="print what a remote client will be offered (host candidates, ports, announced "
                            "addresses, TURN URLs) and warn about obvious problems; exit 0 (ok) or 1, serve nothing")


def main(args: argparse.Namespace) -> int:
    """Run `tvapp serve`; return its exit status."""
    return run_configured(args, run)


def run(cfg: config_mod.Config, data: Path, args: argparse.Namespace) -> int:
    """Run the core server."""
    from tvapp.server.run import serve

    server = cfg.server
    if args.host is not None:
        server = dataclasses.replace(server, host=args.host)
    if args.port is not None:
        server = dataclasses.replace(server, port=args.port)
    cfg = dataclasses.replace(cfg, server=server)
    if args.check_reachability:
        import sys

        from tvapp.commands.reachability import check

        return check(cfg, sys.stdout)
    try:
        return serve(cfg, data, log_level=args.log_level)
    except KeyboardInterrupt:
        return 0
