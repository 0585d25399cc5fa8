"""`tvapp keys`: list, create or revoke the API keys in the data directory's key store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from tvapp.commands.common import run_configured

if TYPE_CHECKING:
    from tvapp.commands.common import Subcommands


def add_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add `tvapp keys` and its actions to the subcommands `sub`."""
    keys = sub.add_parser("keys", parents=[common], help="list, create or revoke API keys",
                          description="Manage the API keys in the data directory's key store.")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    keys_sub.add_parser("list", parents=[common], help="list keys (ids, never secrets)")
    create = keys_sub.add_parser("create", parents=[common], help="create a key; its secret is shown once")
    create.add_argument("--json", action="store_true", help='print {"id": ..., "secret": ...} for scripts')
    revoke = keys_sub.add_parser("revoke", parents=[common], help="revoke a key: its tokens stop working")
    revoke.add_argument("key_id", metavar="ID", help="the key id (AK...), as `tvapp keys list` shows it")


def main(args: argparse.Namespace) -> int:
    """Run `tvapp keys ACTION`; return its exit status."""
    return run_configured(args, lambda cfg, data, args: cmd_keys(data, args))


def cmd_keys(data: Path, args: argparse.Namespace) -> int:
    """List, create or revoke API keys."""
    from tvapp.auth.keys import KeyStore, KeyStoreError

    keys = KeyStore(data)
    try:
        if args.keys_command == "list":
            rows = keys.list()
            if not rows:
                print(f"no keys in {keys.path} (one is created when 'tvapp serve' first starts)")
            for key in rows:
                state = "active" if key.active else f"revoked {_when(key.revoked_at)}"
                print(f"{key.id}  created {_when(key.created_at)}  {state}")
            return 0
        if args.keys_command == "create":
            key = keys.create(time.time())
            if args.json:
                print(json.dumps({"id": key.id, "secret": key.secret}))
            else:
                print(f"created {key.id}; secret (shown once, also kept in {keys.path}):\n{key.secret}")
            return 0
        try:
            key = keys.revoke(args.key_id, time.time())
        except KeyError:
            print(f"tvapp: no key {args.key_id!r} in {keys.path}", file=sys.stderr)
            return 1
        print(f"revoked {key.id}")
        return 0
    except (KeyStoreError, OSError) as exc:
        print(f"tvapp: {exc}", file=sys.stderr)
        return 1


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
