"""`tvapp remote`: the phone side of the living room, as a command line (discover TVs on the LAN).

    tvapp remote discover [--json] [--timeout S] [--interface IP]

Only argparse and the standard library are imported at module level: `tvapp --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `tvapp remote` subcommands to `parser`."""
    sub = parser.add_subparsers(dest="remote_command", metavar="ACTION", required=True)
    discover = sub.add_parser("discover", help="list the TVs on the LAN (zeroconf, _tvapp._tcp)",
                              description="Listen for TVs advertising _tvapp._tcp.local. and list them.")
    discover.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    discover.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds to listen (default 2)")
    discover.add_argument("--interface", action="append", default=[], metavar="IP",
                          help="listen on this interface address only (repeatable; default: "
                               "$TVAPP_REMOTE_INTERFACES, else all)")


def main(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    """Run `tvapp remote ACTION`; return the exit status."""
    out = out or sys.stdout
    if not 0 < args.timeout <= 60:
        print("tvapp remote: --timeout must be between 0 and 60 seconds", file=sys.stderr)
        return 2
    from tvapp.client.discovery import discover

    interfaces = args.interface or [i for i in os.environ.get("TVAPP_REMOTE_INTERFACES", "").split(",") if i]
    try:
        found = discover(args.timeout, interfaces)
    except OSError as exc:
        print(f"tvapp remote: cannot listen for TVs: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.json:
        out.write(json.dumps([{"name": tv.friendly_name, "service": tv.service, "id": tv.instance_id,
                               "state": tv.state, "pairing_open": tv.pairing_open, "addresses": list(tv.addresses),
                               "port": tv.port, "url": tv.url, "txt": tv.txt,
                               "found_after_s": round(tv.found_after, 3)} for tv in found]) + "\n")
        return 0
    if not found:
        print(f"no TV answered within {args.timeout:g} s", file=out)
        return 0
    for tv in found:
        pairing = "pairing open" if tv.pairing_open else "pairing closed"
        print(f"{tv.friendly_name}  {tv.url}  {tv.state}, {pairing}  (id {tv.instance_id})", file=out)
    return 0
