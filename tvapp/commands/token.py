"""`tvapp token`: mint an access token with the local API key (what a customer's auth server does)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tvapp import config as config_mod
from tvapp.commands.common import run_configured

if TYPE_CHECKING:
    from tvapp.commands.common import Subcommands


def add_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add `tvapp token` and its options to the subcommands `sub`."""
    token = sub.add_parser("token", parents=[common], help="mint an access token with the local API key",
                           description="Print an access token signed with the newest active local API key "
                                       "(what a customer's auth server does with POST /v1/tokens).")
    token.add_argument("--room", required=True, help="room name the token is for")
    token.add_argument("--identity", required=True, help="participant identity")
    token.add_argument("--name", default="", help="display name, at most 64 characters (default: the identity)")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default: auth.access_ttl, 600)")
    token.add_argument("--host", action="store_true", help="grant host rights (create the room, remove, mute)")
    token.add_argument("--hidden", action="store_true", help="join without being listed (monitors, recorders)")
    token.add_argument("--no-publish", action="store_true", help="receive only")
    token.add_argument("--json", action="store_true", help="print the token and its claims as JSON")


def main(args: argparse.Namespace) -> int:
    """Run `tvapp token`; return its exit status."""
    return run_configured(args, cmd_token)


def cmd_token(cfg: config_mod.Config, data: Path, args: argparse.Namespace) -> int:
    """Mint and print an access token."""
    from tvapp.auth.keys import KeyStore
    from tvapp.auth.tokens import TokenAuthority
    from tvapp.core.claims import ClaimError, Grants, checked_ttl

    keys = KeyStore(data)
    now = time.time()
    created = keys.ensure_key(now)
    if created is not None:
        print(f"tvapp: created API key {created.id} in {keys.path}", file=sys.stderr)
    key = keys.signing_key()
    assert key is not None
    try:
        ttl = checked_ttl(args.ttl, default=cfg.auth.access_ttl, maximum=cfg.auth.access_ttl_max)
    except ClaimError as exc:
        print(f"tvapp: --{exc.message}", file=sys.stderr)  # "--ttl must be between 1 and ... seconds"
        return 2
    grants = Grants(room=args.room, host=args.host, hidden=args.hidden, publish=not args.no_publish)
    authority = TokenAuthority(keys, audience=cfg.auth.audience, leeway=cfg.auth.leeway)
    try:
        issued = authority.issue(key, identity=args.identity, grants=grants, ttl=ttl, now=now, name=args.name)
    except ValueError as exc:
        print(f"tvapp: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"token": issued.token, "identity": args.identity, "room": args.room,
                          "expires_at": issued.claims.expires_at, "key_id": key.id}))
    else:
        print(issued.token)
    return 0
