"""The `tvapp` command: builds the top-level parser and dispatches to one module per subcommand (tvapp.commands).

    tvapp serve  [--host H] [--port P] [--data DIR] [--config FILE]   run the core server
    tvapp token  --room R --identity I [--ttl S] [--host] ...          mint an access token with the local key
    tvapp keys   list | create [--json] | revoke ID                    manage API keys
    tvapp bot    --server URL (--token T | --invite CODE) [--video V] [--audio A]   a headless participant
    tvapp tv     [--windowed] [--server URL] [--room R | --invite CODE | --token T]  the big-screen receiver
    tvapp demo   [--bots N] [--screenshots DIR]                    the TV, its core and a few talking bots
    tvapp remote discover|pair|send|watch|forget ...               the phone side: find, pair with, drive TVs
    tvapp compose SESSION -o FILE [--layout L] [--server URL]      render a session's recordings into one video

serve, token, keys, tv and demo take --data DIR (default: the config's server.data_dir, env TVAPP_DATA, else
~/.local/share/tvapp) so that they agree on one key store.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

import tvapp
from tvapp.commands.common import common_options

COMMANDS = ("serve", "token", "keys", "bot", "tv", "demo", "remote", "compose")


def command_module(name: str) -> ModuleType:
    """Return the module of subcommand `name` (tvapp.commands.NAME): its `add_parser(sub, common)` and `main(args)`."""
    return importlib.import_module(f"tvapp.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `tvapp` command."""
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="tvapp",
        description="tvapp: self-hosted watch-together video chat with a big-screen receiver.",
        epilog="Run 'tvapp COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"tvapp {tvapp.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        command_module(name).add_parser(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `tvapp` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    status: int = command_module(args.command).main(args)
    return status
