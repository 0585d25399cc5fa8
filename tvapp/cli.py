"""The `tvapp` command: wires the parts together.

    tvapp serve  [--host H] [--port P] [--data DIR] [--config FILE]   run the core server
    tvapp token  --room R --identity I [--ttl S] [--host] ...          mint an access token with the local key
    tvapp keys   list | create [--json] | revoke ID                    manage API keys
    tvapp bot    --server URL (--token T | --invite CODE) [--video V] [--audio A]   a headless participant
    tvapp tv     [--windowed] [--server URL] [--room R | --invite CODE | --token T]  the big-screen receiver
    tvapp demo   [--bots N] [--screenshots DIR]                    the TV, its core and a few talking bots
    tvapp remote discover|pair|send|watch|forget ...               the phone side: find, pair with, drive TVs

Every subcommand takes --data DIR (default: the config's server.data_dir, env TVAPP_DATA, else
~/.local/share/tvapp) so that serve, token and keys agree on one key store.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import tvapp
from tvapp import config as config_mod


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `tvapp` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="config file (default: $TVAPP_CONFIG, else built-in defaults)")
    common.add_argument("--data", metavar="DIR", help="data directory: keys and store "
                        "(default: server.data_dir, $TVAPP_DATA, else ~/.local/share/tvapp)")

    parser = argparse.ArgumentParser(
        prog="tvapp",
        description="tvapp: self-hosted watch-together video chat with a big-screen receiver.",
        epilog="Run 'tvapp COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"tvapp {tvapp.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="run the core server (REST API, signaling)",
                           description="Run the core server: REST API under /v1, signaling websocket at "
                                       "/v1/signal, OpenAPI at /v1/openapi.json. Creates an API key on first start.")
    serve.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port, 0 for any free one (default: server.port, 8800)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    token = sub.add_parser("token", parents=[common], help="mint an access token with the local API key",
                           description="Print an access token signed with the newest active local API key "
                                       "(what a customer's auth server does with POST /v1/tokens).")
    token.add_argument("--room", required=True, help="room name the token is for")
    token.add_argument("--identity", required=True, help="participant identity")
    token.add_argument("--name", default="", help="display name")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default: auth.access_ttl, 600)")
    token.add_argument("--host", action="store_true", help="grant host rights (create the room, remove, mute)")
    token.add_argument("--hidden", action="store_true", help="join without being listed (monitors, recorders)")
    token.add_argument("--no-publish", action="store_true", help="receive only")
    token.add_argument("--json", action="store_true", help="print the token and its claims as JSON")

    keys = sub.add_parser("keys", parents=[common], help="list, create or revoke API keys",
                          description="Manage the API keys in the data directory's key store.")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    keys_sub.add_parser("list", parents=[common], help="list keys (ids, never secrets)")
    create = keys_sub.add_parser("create", parents=[common], help="create a key; its secret is shown once")
    create.add_argument("--json", action="store_true", help='print {"id": ..., "secret": ...} for scripts')
    revoke = keys_sub.add_parser("revoke", parents=[common], help="revoke a key: its tokens stop working")
    revoke.add_argument("key_id", metavar="ID")

    from tvapp.commands.bot import add_arguments as add_bot_arguments

    bot = sub.add_parser("bot", help="join a room as a headless participant publishing a pattern/tone/file",
                         description="Join a room and publish a test pattern, a tone or a media file; print room "
                                     "events as JSON lines on stdout. SIGINT/SIGTERM leave the room.")
    add_bot_arguments(bot)

    tv = sub.add_parser("tv", parents=[common], help="the big-screen receiver: fullscreen UI, tiles, sound",
                        description="Show rooms on the big screen. Starts the built-in core unless --server is "
                                    "given, then hosts the room --room (default: tv.room) and shows its invite code, "
                                    "or joins with --invite/--token. Esc or q quits a --windowed TV.")
    add_tv_arguments(tv)
    where = tv.add_mutually_exclusive_group()
    where.add_argument("--room", metavar="NAME", help="host this room (embedded core, or --server with --api-key)")
    where.add_argument("--invite", metavar="CODE", help="join with an invite code")
    where.add_argument("--token", metavar="T", help="join with an access token")
    tv.add_argument("--refresh-token", metavar="R", help="refresh token that comes with --token")
    tv.add_argument("--server", metavar="URL", help="use this core server instead of starting the built-in one")
    tv.add_argument("--api-key", metavar="ID:SECRET",
                    help="API key of --server, to host --room there (default: $TVAPP_API_KEY)")
    tv.add_argument("--list-audio-devices", action="store_true", help="list the audio outputs and exit")

    demo = sub.add_parser("demo", parents=[common], help="the whole product on one machine: core + TV + bots",
                          description="Start the built-in core, the TV hosting a room, and a few bots that publish "
                                      "coloured patterns and tones and take turns talking. Without a screen it "
                                      "draws offscreen and writes screenshots. Phones on the LAN can join too.")
    add_tv_arguments(demo)
    demo.add_argument("--room", metavar="NAME", help="room name (default: tv.room)")
    demo.add_argument("--bots", type=int, default=4, metavar="N", help="bots to start, 1 to 5 (default: 4)")

    from tvapp.commands.remote import add_arguments as add_remote_arguments

    remote = sub.add_parser("remote", help="the phone side: find, pair with and drive TVs on the LAN",
                            description="Find TVs on the LAN (zeroconf), pair with one, send it commands, watch it.")
    add_remote_arguments(remote)
    return parser


def add_tv_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options `tvapp tv` and `tvapp demo` share."""
    parser.add_argument("--windowed", action="store_true", help="a 1280x720 window instead of fullscreen")
    parser.add_argument("--size", metavar="WxH", help="screen size (windowed, or offscreen), e.g. 1920x1080")
    parser.add_argument("--offscreen", action="store_true",
                        help="draw offscreen when no video driver can start (screenshots show what it draws)")
    parser.add_argument("--layout", choices=["grid", "speaker", "watch", "watch_full"],
                        help="tile layout (default: tv.layout); while shared content plays, grid and speaker give way "
                             "to watch.layout")
    parser.add_argument("--margin", type=float, help="overscan-safe margin per side, 0 to 0.2 (default: tv.margin)")
    parser.add_argument("--name", help="the TV's friendly name (default: tv.friendly_name, else 'tvapp on HOST')")
    parser.add_argument("--screenshots", metavar="DIR",
                        help="write DIR/latest.png (+ latest.json: where each tile is) every few seconds, and on SIGUSR1")
    parser.add_argument("--screenshot-interval", type=float, metavar="S", help="seconds between screenshots "
                        "(default: tv.screenshot_interval)")
    parser.add_argument("--audio-device", metavar="NAME", help="audio output (default: audio.device, else HDMI)")
    parser.add_argument("--volume", type=float, help="master volume 0..1 (default: audio.volume)")
    parser.add_argument("--no-audio", action="store_true", help="do not play sound")
    parser.add_argument("--host", help="address the built-in core listens on (default: 0.0.0.0, so phones reach it)")
    parser.add_argument("--port", type=int, help="port of the built-in core, 0 for any (default: server.port)")
    parser.add_argument("--remote-port", type=int, metavar="PORT",
                        help="port of the TV's pairing and remote-control endpoints, 0 for any (default: tv.remote_port)")
    parser.add_argument("--duration", type=float, metavar="S", help="quit after S seconds (default: run until stopped)")
    parser.add_argument("--trace", metavar="FILE", help=argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> int:
    """Run the `tvapp` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "bot":
        from tvapp.commands.bot import main as bot_main

        return bot_main(args)
    if args.command == "remote":
        from tvapp.commands.remote import main as remote_main

        return remote_main(args)
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        print(f"tvapp: {exc}", file=sys.stderr)
        return 2
    data = Path(args.data).expanduser() if args.data else cfg.data_path()
    if args.command == "serve":
        return cmd_serve(cfg, data, args)
    if args.command == "token":
        return cmd_token(cfg, data, args)
    if args.command in ("tv", "demo"):
        from tvapp.commands.tv import cmd_demo, cmd_tv

        return cmd_tv(cfg, data, args) if args.command == "tv" else cmd_demo(cfg, data, args)
    return cmd_keys(data, args)


def cmd_serve(cfg: config_mod.Config, data: Path, args: argparse.Namespace) -> int:
    """Run the core server."""
    from tvapp.server.run import serve

    server = cfg.server
    if args.host is not None:
        server = dataclasses.replace(server, host=args.host)
    if args.port is not None:
        server = dataclasses.replace(server, port=args.port)
    cfg = dataclasses.replace(cfg, server=server)
    try:
        return serve(cfg, data, log_level=args.log_level)
    except KeyboardInterrupt:
        return 0


def cmd_token(cfg: config_mod.Config, data: Path, args: argparse.Namespace) -> int:
    """Mint and print an access token."""
    from tvapp.auth.keys import KeyStore
    from tvapp.auth.tokens import TokenAuthority
    from tvapp.core.claims import Grants

    keys = KeyStore(data)
    now = time.time()
    created = keys.ensure_key(now)
    if created is not None:
        print(f"tvapp: created API key {created.id} in {keys.path}", file=sys.stderr)
    key = keys.signing_key()
    assert key is not None
    ttl = cfg.auth.access_ttl if args.ttl is None else args.ttl
    if not 0 < ttl <= cfg.auth.access_ttl_max:
        print(f"tvapp: --ttl must be between 1 and {cfg.auth.access_ttl_max} seconds", file=sys.stderr)
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
