"""`tvapp remote`: the phone side of the living room, as a command line (find, pair with, drive and forget TVs).

    tvapp remote discover [--json] [--timeout S] [--interface IP]
    tvapp remote pair NAME [--tv URL] [--code CODE] [--device-name N] [--fingerprint FP]
    tvapp remote send COMMAND [ARGS] [--title T] [--json] [--tv NAME_OR_URL]
    tvapp remote watch [--json] [--tv NAME_OR_URL]
    tvapp remote forget [--tv NAME_OR_URL]

Paired TVs are kept in $TVAPP_REMOTE_CONFIG, else $XDG_CONFIG_HOME/tvapp/remote.json (mode 0600). Exit status:
0 done, 1 the TV refused or could not be reached, 2 bad input (or no paired TV).

The words (what `send COMMAND ARGS` means, the TV's state as text) are tvapp.commands.remote_text's. Only the
standard library and pure tvapp.core are imported at module level: `tvapp --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from typing import IO, TYPE_CHECKING, Any

from tvapp.commands.remote_text import (
    SEND_COMMANDS,
    UsageError,
    build_command,
    describe_devices,
    describe_state,
    state_line,
)

if TYPE_CHECKING:
    from tvapp.client.paired_tvs import CredentialFile, PairedTv
    from tvapp.client.remote_link import RemoteLink, SeenTv
    from tvapp.commands.common import Subcommands
    from tvapp.protocol.remote_messages import Command, State

PAIR_PROMPTS = 3
MAX_WAIT_S = 120.0


class Failed(Exception):
    """The TV refused, or could not be reached (exit status 1)."""


def add_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add `tvapp remote` and its actions to the subcommands `sub` (it takes no --config/--data)."""
    remote = sub.add_parser("remote", help="the phone side: find, pair with and drive TVs on the LAN",
                            description="Find TVs on the LAN (zeroconf), pair with one, send it commands, watch it.")
    add_arguments(remote)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `tvapp remote` subcommands to `parser`."""
    parser.add_argument("--tv", dest="tv_global", metavar="NAME_OR_URL",
                        help="which paired TV (default: the only one)")
    sub = parser.add_subparsers(dest="remote_command", metavar="ACTION", required=True)
    discover = sub.add_parser("discover", help="list the TVs on the LAN (zeroconf, _tvapp._tcp)",
                              description="Listen for TVs advertising _tvapp._tcp.local. and list them.")
    discover.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    discover.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds to listen (default 2)")
    discover.add_argument("--interface", action="append", default=[], metavar="IP",
                          help="listen on this interface address only (repeatable; default: "
                               "$TVAPP_REMOTE_INTERFACES, else all)")

    pair = sub.add_parser("pair", help="pair with a TV (asks for the code it shows)",
                          description="Pair this computer with a TV as a remote control: the TV shows a code, "
                                      "type it here. The credential is saved for send/watch/forget.")
    pair.add_argument("name", nargs="?", metavar="NAME", help="the TV's name as `discover` lists it")
    pair.add_argument("--tv", metavar="URL", help="the TV's address, e.g. http://192.168.1.20:7881 (no discovery)")
    pair.add_argument("--code", help="the code shown on the TV (default: ask)")
    pair.add_argument("--device-name", metavar="N", help="how the TV lists this phone (default: tvapp remote on HOST)")
    pair.add_argument("--fingerprint", metavar="FP",
                      help="https only: the TV certificate's sha256 fingerprint to expect (default: trust the first)")
    pair.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds to look for NAME (default 2)")
    pair.add_argument("--interface", action="append", default=[], metavar="IP", help="discover on this address only")

    lines = "\n".join(f"  {name:<14} {text}" for name, text in SEND_COMMANDS.items())
    send = sub.add_parser("send", help="send one command to the TV and print its answer",
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="Send one command to a paired TV. Commands:\n" + lines,
                          epilog="examples: tvapp remote send volume 0.5 | tvapp remote send layout speaker | "
                                 "tvapp remote send load http://nas.local/film.mp4 --title Film | "
                                 "tvapp remote send seek 1:30:00 | "
                                 "tvapp remote send join 'https://core.example/?code=ABCD-EFGH'")
    send.add_argument("cmd", metavar="COMMAND", help="one of: " + ", ".join(SEND_COMMANDS))
    send.add_argument("args", nargs="*", metavar="ARGS", help="the command's arguments")
    send.add_argument("--title", metavar="T", help="load only: the title everyone sees")
    send.add_argument("--fingerprint", metavar="FP", help="join on another core only: the sha256 fingerprint of its "
                                                          "self-signed certificate (as #fp= in an invite link)")
    send.add_argument("--json", action="store_true", help="print the TV's answer as JSON")
    send.add_argument("--tv", metavar="NAME_OR_URL", help="which paired TV (default: the only one)")
    send.add_argument("--timeout", type=float, default=10.0, metavar="S",
                      help="seconds to wait for the answer, up to 300 (default 10)")

    watch = sub.add_parser("watch", help="print the TV's state on every change until Ctrl-C",
                           description="Connect to a paired TV and print one line per state change until Ctrl-C.")
    watch.add_argument("--json", action="store_true", help="JSON lines instead of text")
    watch.add_argument("--tv", metavar="NAME_OR_URL", help="which paired TV (default: the only one)")

    forget = sub.add_parser("forget", help="unpair: the TV forgets this phone, and the credential is deleted",
                            description="Ask the TV to forget this phone, then delete the stored credential "
                                        "(deleted anyway when the TV cannot be reached).")
    forget.add_argument("--tv", metavar="NAME_OR_URL", help="which paired TV (default: the only one)")


def main(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    """Run `tvapp remote ACTION`; return the exit status."""
    out = out or sys.stdout
    action = args.remote_command
    if action == "discover":
        return _discover(args, out)
    try:
        if action == "pair":
            return _pair(args, out)
        if action == "send":
            return _send(args, out)
        if action == "watch":
            return _watch(args, out)
        if action == "forget":
            return _forget(args, out)
    except UsageError as exc:
        print(f"tvapp remote {action}: {exc}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"tvapp remote {action}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    raise AssertionError(action)


# --- discover ----------------------------------------------------------------------------------------------------


def _interfaces(args: argparse.Namespace) -> list[str]:
    return list(args.interface) or [i for i in os.environ.get("TVAPP_REMOTE_INTERFACES", "").split(",") if i]


def _discover(args: argparse.Namespace, out: IO[str]) -> int:
    if not 0 < args.timeout <= 60:
        print("tvapp remote: --timeout must be between 0 and 60 seconds", file=sys.stderr)
        return 2
    from tvapp.client.discovery import discover

    try:
        found = discover(args.timeout, _interfaces(args))
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


# --- pair --------------------------------------------------------------------------------------------------------


def _pair(args: argparse.Namespace, out: IO[str]) -> int:
    from tvapp.client.paired_tvs import CredentialFile

    url = args.tv or args.tv_global
    if url is not None and not url.startswith(("http://", "https://")):
        raise UsageError(f"--tv must be an http:// or https:// URL here, not {url!r}")
    if url is None and not args.name:
        raise UsageError("say which TV: its NAME (as `tvapp remote discover` lists it) or --tv URL")
    if not 0 < args.timeout <= 60:
        raise UsageError("--timeout must be between 0 and 60 seconds")
    device_name = args.device_name if args.device_name is not None else f"tvapp remote on {socket.gethostname()}"
    if len(device_name) > 64:
        raise UsageError("--device-name is at most 64 characters")
    if args.code is not None and not _clean_code(args.code):
        raise UsageError("--code is the digits shown on the TV")
    store = CredentialFile()
    if url is None:
        url = _find_by_name(args.name, args.timeout, _interfaces(args))
    return asyncio.run(_pair_async(url, args, device_name, store, out))


def _clean_code(code: str) -> str:
    digits = "".join(code.split()).replace("-", "")
    return digits if digits.isdigit() else ""


def _find_by_name(name: str, timeout: float, interfaces: list[str]) -> str:
    from tvapp.client.discovery import discover

    try:
        found = discover(timeout, interfaces)
    except OSError as exc:
        raise Failed(f"cannot listen for TVs: {exc.strerror or exc}") from None
    matches = [tv for tv in found if tv.friendly_name.casefold() == name.casefold() and tv.url]
    if not matches:
        seen = ", ".join(repr(tv.friendly_name) for tv in found) or "none"
        raise Failed(f"no TV called {name!r} answered within {timeout:g} s (seen: {seen}); "
                     "or give its address with --tv URL")
    if len(matches) > 1:
        raise Failed(f"several TVs are called {name!r}: give the address with --tv "
                     + " or ".join(tv.url for tv in matches))
    return matches[0].url


async def _probe(url: str, fingerprint: str | None) -> tuple[str, SeenTv]:
    """Return the URL that answers (a discovered http URL may really be https) and GET /v1/tv's answer."""
    from tvapp.client.remote_link import RemoteLinkError, Unreachable, tv_info

    try:
        return url, await tv_info(url, fingerprint)
    except Unreachable:
        if not url.startswith("http://"):
            raise
        secure = "https://" + url.removeprefix("http://")
        try:
            return secure, await tv_info(secure, fingerprint)
        except RemoteLinkError:
            pass
        raise


async def _pair_async(url: str, args: argparse.Namespace, device_name: str, store: CredentialFile,
                      out: IO[str]) -> int:
    from tvapp.client.paired_tvs import PairedTv
    from tvapp.client.remote_link import PairingError, RemoteLinkError, confirm_pairing, request_pairing

    try:
        url, seen = await _probe(url.rstrip("/"), args.fingerprint)
        fingerprint = seen.fingerprint
        if fingerprint is not None and args.fingerprint is None:
            print(f"the TV's certificate is {fingerprint}: it is pinned from now on", file=sys.stderr)
        started = await request_pairing(url, device_name, fingerprint)
    except PairingError as exc:
        raise Failed(_pairing_refusal(exc)) from None
    except RemoteLinkError as exc:
        raise Failed(exc.message) from None
    tv_name = seen.info.tv_name
    print(f"pairing with {tv_name or url}: the TV shows a {started.code_digits}-digit code", file=out, flush=True)
    pairing_id = started.pairing_id
    prompts = 0
    code = _clean_code(args.code) if args.code is not None else None
    while True:
        if code is None:
            if prompts >= PAIR_PROMPTS:
                raise Failed(f"no right code after {PAIR_PROMPTS} tries: run pair again")
            prompts += 1
            code = _ask_code(out)
            if not code:
                print("the code is the digits on the TV screen", file=out, flush=True)
                code = None
                continue
        try:
            paired = await confirm_pairing(url, pairing_id, code=code, name=device_name, fingerprint=fingerprint)
            break
        except PairingError as exc:
            if exc.code == "too_soon":
                wait = min(exc.retry_after if exc.retry_after is not None else 1.0, MAX_WAIT_S)
                print(f"the TV wants a pause before the next try: waiting {wait:.0f} s", file=out, flush=True)
                await asyncio.sleep(wait)
                continue
            if exc.code != "wrong_code":
                raise Failed(_pairing_refusal(exc)) from None
            print("wrong code" + (": the TV shows a new code now" if exc.rotated else ""), file=out, flush=True)
            if args.code is not None:
                raise Failed("wrong code (from --code)") from None
            code = None
        except RemoteLinkError as exc:
            raise Failed(exc.message) from None
    tv = PairedTv(url=url, tv_name=paired.tv_name or tv_name, device_id=paired.device_id,
                  credential=paired.credential, fingerprint=fingerprint)
    try:
        store.add(tv)
    except OSError as exc:
        raise Failed(f"paired, but cannot save the credential to {store.path}: {exc.strerror or exc}") from None
    print(f"paired with {tv.tv_name} as {tv.device_id}; saved in {store.path}", file=out)
    return 0


def _ask_code(out: IO[str]) -> str:
    out.write("Code shown on the TV: ")
    out.flush()
    line = sys.stdin.readline()
    if not line:
        raise Failed("no code given (end of input)")
    return _clean_code(line)


def _pairing_refusal(exc: Any) -> str:
    if exc.code == "pairing_busy":
        after = f": try again in {exc.retry_after:.0f} s" if exc.retry_after else ""
        return f"another phone is pairing with this TV right now{after}"
    if exc.code == "pairing_closed":
        return "pairing is closed on this TV (too many wrong codes): reopen it on the TV, or wait 15 minutes"
    if exc.code == "pairing_expired":
        return "the code expired: run pair again"
    if exc.code == "no_pairing":
        return "the TV is no longer pairing with us (the code expired?): run pair again"
    return f"the TV refused: {exc.message or exc.code}"


# --- send --------------------------------------------------------------------------------------------------------


def _pick(args: argparse.Namespace) -> tuple[CredentialFile, PairedTv]:
    from tvapp.client.paired_tvs import CredentialFile, CredentialFileError

    store = CredentialFile()
    try:
        return store, store.pick(args.tv or args.tv_global)
    except LookupError as exc:
        raise UsageError(str(exc.args[0])) from None
    except CredentialFileError as exc:
        raise UsageError(str(exc)) from None


async def _connect(tv: PairedTv) -> RemoteLink:
    from tvapp.client.remote_link import FingerprintMismatch, RemoteLink, RemoteLinkError

    try:
        return await RemoteLink.connect(tv.url, tv.credential, tv.fingerprint)
    except FingerprintMismatch as exc:
        raise Failed(exc.message) from None
    except RemoteLinkError as exc:
        if exc.code == "auth_failed":
            raise Failed(f"{tv.tv_name} no longer accepts this phone (forgotten on the TV?): "
                         "run `tvapp remote forget` then pair again") from None
        raise Failed(exc.message) from None


def _send(args: argparse.Namespace, out: IO[str]) -> int:
    command = build_command(args.cmd, list(args.args), args.title, args.fingerprint)
    if not 0 < args.timeout <= 300:
        raise UsageError("--timeout must be between 0 and 300 seconds")
    _, tv = _pick(args)
    return asyncio.run(_send_async(tv, command, args, out))


async def _send_async(tv: PairedTv, command: Command, args: argparse.Namespace, out: IO[str]) -> int:
    from tvapp.protocol.remote_messages import ListDevices, StatusCommand, encode

    async with await _connect(tv) as link:
        try:
            result = await link.command(command, timeout=args.timeout)
        except TimeoutError:
            raise Failed(f"{tv.tv_name} did not answer within {args.timeout:g} s") from None
        if result.error is not None:
            if args.json:
                print(encode(result.error), file=out)
            raise Failed(f"{tv.tv_name} refused: {result.error.message or result.error.code} "
                         f"({result.error.code})")
        if isinstance(command, StatusCommand) and link.state is not None:
            print(encode(link.state) if args.json else describe_state(link.state), file=out)
        elif isinstance(command, ListDevices):
            devices = result.devices or ()
            if args.json:
                print(json.dumps({"devices": [d.to_json() for d in devices]}), file=out)
            else:
                print(describe_devices(devices, link.device_id), file=out)
        else:
            print(json.dumps({"type": "ok"}) if args.json else "ok", file=out)
    return 0


# --- watch -------------------------------------------------------------------------------------------------------


def _watch(args: argparse.Namespace, out: IO[str]) -> int:
    _, tv = _pick(args)
    try:
        return asyncio.run(_watch_async(tv, args, out))
    except KeyboardInterrupt:
        return 0


async def _watch_async(tv: PairedTv, args: argparse.Namespace, out: IO[str]) -> int:
    from tvapp.protocol.remote_messages import encode

    async with await _connect(tv) as link:
        last: object = None

        def show(state: State) -> None:
            nonlocal last
            if state == last:
                return
            last = state
            print(encode(state) if args.json else state_line(state), file=out, flush=True)

        states = link.states()
        if link.state is not None:
            show(link.state)
        async for state in states:
            show(state)
        reason = link.closed_by
        raise Failed(f"{tv.tv_name} closed the connection"
                     + (f": {reason.message or reason.code}" if reason is not None else ""))


# --- forget ------------------------------------------------------------------------------------------------------


def _forget(args: argparse.Namespace, out: IO[str]) -> int:
    store, tv = _pick(args)
    told = asyncio.run(_forget_on_tv(tv))
    try:
        store.remove(tv)
    except OSError as exc:
        raise Failed(f"cannot update {store.path}: {exc.strerror or exc}") from None
    if told is None:
        print(f"{tv.tv_name} forgot this phone ({tv.device_id}); the credential is deleted", file=out)
        return 0
    print(f"deleted the credential for {tv.tv_name} here, but {told}: the TV still lists this phone "
          f"({tv.device_id}) until it is forgotten on the TV or from another remote", file=out)
    return 0


async def _forget_on_tv(tv: PairedTv) -> str | None:
    """Ask the TV to forget this phone; return None when it did, else why it could not be told."""
    from tvapp.client.remote_link import RemoteLink, RemoteLinkError
    from tvapp.protocol.remote_messages import ForgetDevice

    try:
        link = await RemoteLink.connect(tv.url, tv.credential, tv.fingerprint)
    except RemoteLinkError as exc:
        if exc.code == "auth_failed":
            return None  # already forgotten on the TV
        return f"the TV could not be reached ({exc.message})"
    async with link:
        try:
            result = await link.command(ForgetDevice(device_id=link.device_id))
        except TimeoutError:
            result = None
    if result is not None and result.ok:
        return None
    # The TV closes this device's connections when it forgets it, possibly before its ok arrives: check.
    try:
        again = await RemoteLink.connect(tv.url, tv.credential, tv.fingerprint)
    except RemoteLinkError as exc:
        return None if exc.code == "auth_failed" else f"the TV could not be reached ({exc.message})"
    await again.close()
    reason = result.error.message if result is not None and result.error is not None else "no answer"
    return f"the TV did not forget it ({reason})"
