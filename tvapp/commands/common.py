"""What several `tvapp` subcommands share: the --config/--data options and loading the config they name.

serve, token, keys, tv and demo read the config (`--config FILE`, else $TVAPP_CONFIG, else the built-in defaults)
and agree on one data directory (`--data DIR`, else the config's server.data_dir, $TVAPP_DATA, else
~/.local/share/tvapp), so that they find one key store. bot and remote take neither.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from tvapp import config as config_mod

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Configured: TypeAlias = Callable[[config_mod.Config, Path, argparse.Namespace], int]


def common_options() -> argparse.ArgumentParser:
    """Return the parent parser holding --config and --data."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="config file (default: $TVAPP_CONFIG, else built-in defaults)")
    common.add_argument("--data", metavar="DIR", help="data directory: keys and store "
                        "(default: server.data_dir, $TVAPP_DATA, else ~/.local/share/tvapp)")
    return common


def run_configured(args: argparse.Namespace, run: Configured) -> int:
    """Load the config and pick the data directory, then return `run(cfg, data, args)` (2 for a bad config)."""
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        print(f"tvapp: {exc}", file=sys.stderr)
        return 2
    data = Path(args.data).expanduser() if args.data else cfg.data_path()
    return run(cfg, data, args)
