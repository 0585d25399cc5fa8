"""`tvapp tv`: the TV wired to its built-in core, its endpoints for phones and its zeroconf advertisement.

tvapp.tv never imports tvapp.server; this module does both: on the TV's network thread it starts the
embedded core (tvapp.server.embedded) unless `--server` names another one, and turns the options into the
session's JoinPlan. It also serves the TV's own endpoints (pairing, /v1/remote, the Remote page) and advertises
them. `tvapp demo` (tvapp.commands.demo) reuses all of it and adds a few bots.

Only the standard library, tvapp.config and pure tvapp.core are imported at module level: `tvapp --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import secrets
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tvapp import config as config_mod
from tvapp.commands.common import run_configured
from tvapp.core.layout import Mode

if TYPE_CHECKING:
    from tvapp.commands.common import Subcommands
    from tvapp.tv.app import TvOptions
    from tvapp.tv.join import JoinPlan
    from tvapp.tv.session import TvSession

    PlanFor = Callable[[str, tuple[str, str]], JoinPlan]
    AlsoRun = Callable[[str, tuple[str, str]], Coroutine[Any, Any, None]]


def add_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add `tvapp tv` and its options to the subcommands `sub`."""
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
    tv.add_argument("--list-devices", action="store_true",
                    help="list the cameras (V4L2) and microphones (SDL capture) the TV can publish, and exit")


def add_tv_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options `tvapp tv` and `tvapp demo` share."""
    parser.add_argument("--windowed", action="store_true", help="a 1280x720 window instead of fullscreen")
    parser.add_argument("--size", metavar="WxH", help="screen size (windowed, or offscreen), e.g. 1920x1080")
    parser.add_argument("--offscreen", action="store_true",
                        help="draw offscreen when no video driver can start (screenshots show what it draws)")
    parser.add_argument("--layout", choices=[mode.value for mode in Mode],
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


def main(args: argparse.Namespace) -> int:
    """Run `tvapp tv`; return its exit status."""
    return run_configured(args, run)


def run(cfg: config_mod.Config, data: Path, args: argparse.Namespace) -> int:
    """Run the TV."""
    from tvapp.tv.app import run_tv
    from tvapp.tv.join import JoinPlan

    if args.list_audio_devices:
        from tvapp.tv.audio import list_devices_text

        print(list_devices_text())
        return 0
    if args.list_devices:
        from tvapp.tv.capture import list_devices_text as capture_devices_text

        print(capture_devices_text(), end="")
        return 0
    try:
        options = tv_options(cfg, args)
        api_key = _api_key(args)
    except ValueError as exc:
        print(f"tvapp tv: {exc}", file=sys.stderr)
        return 2
    if args.server and args.room and api_key is None:
        print("tvapp tv: hosting --room on --server needs --api-key ID:SECRET (or $TVAPP_API_KEY)", file=sys.stderr)
        return 2

    identity = tv_identity(data)

    async def network_main(session: TvSession) -> None:
        if args.server:
            plan = None
            if args.room or args.invite or args.token:
                plan = JoinPlan(server=args.server, token=args.token, refresh_token=args.refresh_token,
                                invite=args.invite, room=args.room, api_key=api_key, name=options.friendly_name,
                                identity=identity)
            await _side_by_side(session.run(plan), run_remote(cfg, data, args, session, args.server, api_key))
            return
        await with_embedded_core(cfg, data, args, session, lambda url, key: JoinPlan(
            server=url, token=args.token, refresh_token=args.refresh_token, invite=args.invite,
            room=None if (args.invite or args.token) else (args.room or cfg.tv.room), api_key=key,
            name=options.friendly_name, identity=identity))

    return run_tv(options, network_main)


def tv_identity(data: Path) -> str:
    """Return this TV's participant identity, kept in <data>/tv-identity: a TV restarted (a crash, systemd's
    Restart=always) joins as the same participant and takes over its old session at once, instead of leaving a
    "Reconnecting…" ghost of itself for the reconnect grace window."""
    path = data / "tv-identity"
    try:
        known = path.read_text().strip()
        if re.fullmatch(r"tv-[0-9a-f]{8}", known):
            return known
    except OSError:
        pass
    identity = "tv-" + secrets.token_hex(4)
    with contextlib.suppress(OSError):
        data.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data folder (keys, databases) is the owner's alone
        path.write_text(identity + "\n")
        path.chmod(0o600)
    return identity


async def with_embedded_core(cfg: config_mod.Config, data: Path, args: argparse.Namespace, session: TvSession,
                             plan_for: PlanFor, also: AlsoRun | None = None) -> None:
    """Start the built-in core, run the session (and `also`) with its URL and API key, stop the core at the end."""
    from tvapp.server.embedded import EmbeddedCore, EmbeddedCoreError
    from tvapp.tv.join import JoinProblem

    server_cfg = dataclasses.replace(cfg.server, host=args.host or "0.0.0.0",
                                     port=cfg.server.port if args.port is None else args.port)
    core = EmbeddedCore(dataclasses.replace(cfg, server=server_cfg), data)
    try:
        await core.start()
    except EmbeddedCoreError as exc:
        print(f"tvapp tv: the built-in core did not start: {exc}", file=sys.stderr, flush=True)
        session.show_problem(JoinProblem("The TV's server did not start", str(exc), exc.hint))
        await asyncio.Event().wait()  # keep showing it until the TV is stopped
    cert = core.certificate
    if cert is not None:
        from tvapp.client.trust import trust_certificate

        trust_certificate(core.url, cert.cert_path)  # the TV's own SDK talks to its core: pin its certificate
    phone = lan_url(core.url, args)
    session.home_server = core.url  # rooms on it are "on this TV"
    session.join_hint = lambda code: f"On a phone: open {phone}" + (f" and enter {code}" if code else "")
    session.join_url = lambda code: join_link(phone, code, cert.fingerprint if cert and cert.self_signed else None)
    session.fingerprint = cert.fingerprint if cert is not None and cert.self_signed else None
    print(f"tvapp tv: built-in core at {core.url}; phones join at {phone}", flush=True)
    if session.fingerprint:
        print(f"tvapp tv: the core's self-signed certificate has the fingerprint {session.fingerprint}", flush=True)
    jobs = [session.run(plan_for(core.url, core.api_key)), run_remote(cfg, data, args, session, core.url, core.api_key)]
    if also is not None:
        jobs.append(also(core.url, core.api_key))
    try:
        await _side_by_side(*jobs)
    finally:
        await session.leave()
        await core.stop()


async def _side_by_side(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run `jobs` as the tasks of one TaskGroup until all end; the first failure cancels the others and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) == 1:  # say what went wrong, not "unhandled errors in a TaskGroup"
            raise failed.exceptions[0] from None
        raise


async def run_remote(cfg: config_mod.Config, data: Path, args: argparse.Namespace, session: TvSession,
                     server: str | None, api_key: tuple[str, str] | None) -> None:
    """Serve the TV's own endpoints (pairing, /v1/remote, the Remote page) and advertise them with zeroconf.

    The TV keeps showing its room when they cannot start (port taken): it says why on stderr and runs on.
    """
    import secrets

    import uvicorn

    from tvapp.core.links import server_label
    from tvapp.core.pairing import PairingConfig
    from tvapp.logs import redact_frames
    from tvapp.tv.advertise import Advertiser, advertise
    from tvapp.tv.control import TvControl
    from tvapp.tv.remote.devices import DeviceStore
    from tvapp.tv.remote.endpoints import RemoteEndpoints
    from tvapp.tv.remote.phonecam import PhoneCamera, phone_capture_filter
    from tvapp.tv.servers import FILE_NAME as SERVERS_FILE
    from tvapp.tv.servers import KnownServers
    from tvapp.web.http import EdgeLimits, bind, guarded_protocol

    tv = cfg.tv
    host = getattr(args, "remote_host", None) or tv.remote_host
    port = tv.remote_port if getattr(args, "remote_port", None) is None else args.remote_port
    try:
        sock = bind(host, port)
    except OSError as exc:
        print(f"tvapp tv: no remote control: cannot listen on {host}:{port}: {exc.strerror or exc} "
              f"(free the port or set tv.remote_port)", file=sys.stderr, flush=True)
        await asyncio.Event().wait()
        return
    port = sock.getsockname()[1]
    interfaces = list(tv.zeroconf_interfaces)
    addresses = interfaces or ([host] if host not in ("0.0.0.0", "::") else _lan_addresses())
    hostname = socket.gethostname()
    cert = None
    if tv.tls:
        from tvapp.web.tls import ensure_certificate

        cert = ensure_certificate(data / "tv-tls", [hostname, f"{hostname}.local", "localhost"], addresses)
    base_url = f"{'https' if cert else 'http'}://{addresses[0]}:{port}"
    instance_id = secrets.token_hex(8)
    control = TvControl(session, server=server, api_key=api_key, default_room=tv.room,
                        servers=KnownServers(data / SERVERS_FILE))
    if server is not None and session.home_server is None:  # --server: the TV's core is that one
        session.home_server, session.home_label = server, server_label(server)
    devices = DeviceStore(data / "tv.sqlite3")
    phone_camera = PhoneCamera(lambda: session.room, lambda: session.media, phone_capture_filter(session),
                               on_change=session.refresh)
    session.on_room_left = phone_camera.room_left
    endpoints = RemoteEndpoints(phone_camera=phone_camera,
                                controller=control, devices=devices, tv_name=session.friendly_name,
                                instance_id=instance_id, base_url=base_url, clock=session.clock,
                                fingerprint=cert.fingerprint if cert else None,
                                allowed_hosts=[hostname, f"{hostname}.local", *tv.allowed_hosts],
                                pairing_config=PairingConfig(backoff_base=min(1.0, tv.pairing_backoff_max),
                                                             backoff_max=tv.pairing_backoff_max))
    control.pairing_open = endpoints.pairing_open
    session.pairing_view = endpoints.pairing.shown  # one owner of the pairing view, one clock for its countdown
    session.on_refresh = endpoints.push_state
    session.on_key = lambda key: endpoints.reopen_pairing() if key == "pair" else None
    session.how_to_join = (f"Pair a phone: open {base_url}/remote", f"or run:  tvapp remote pair \"{session.friendly_name}\"")
    session.refresh()
    redact_frames()  # a phone's frames carry its device credential
    web = uvicorn.Server(uvicorn.Config(
        endpoints.app, log_level="warning", lifespan="on", proxy_headers=False, server_header=False,
        http=guarded_protocol(EdgeLimits(max_header_bytes=cfg.server.max_header_bytes,  # the core's limits
                                         header_timeout=cfg.server.header_timeout,
                                         body_timeout=cfg.server.body_timeout)),
        ws="websockets-sansio", ws_max_size=64 * 1024, access_log=False,
        ssl_certfile=str(cert.cert_path) if cert else None, ssl_keyfile=str(cert.key_path) if cert else None))
    print(f"tvapp tv: remote control at {base_url}/remote", flush=True)
    advertiser = Advertiser(session.friendly_name, port, addresses, interfaces=interfaces, instance_id=instance_id)

    try:
        await _side_by_side(web.serve(sockets=[sock]),
                            advertise(advertiser, lambda: (session.advertised_state(), endpoints.pairing_open())))
    finally:
        session.on_refresh = None
        session.pairing_view = lambda: None
        await endpoints.close()
        devices.close()


def tv_options(cfg: config_mod.Config, args: argparse.Namespace) -> TvOptions:
    """Merge the command line over the [tv] and [audio] config; ValueError with a clear message when invalid."""
    from tvapp.tv.app import TvOptions

    tv, audio = cfg.tv, cfg.audio
    size = None
    if args.size:
        try:
            w, h = (int(part) for part in args.size.lower().split("x"))
        except ValueError:
            raise ValueError(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
        if not (160 <= w <= 7680 and 120 <= h <= 4320):
            raise ValueError(f"--size {args.size!r}: between 160x120 and 7680x4320")
        size = (w, h)
    margin = tv.margin if args.margin is None else args.margin
    if not 0 <= margin <= 0.2:
        raise ValueError("--margin must be between 0 and 0.2")
    volume = audio.volume if args.volume is None else args.volume
    if not 0 <= volume <= 1:
        raise ValueError("--volume must be between 0 and 1")
    layout = Mode(args.layout) if args.layout else tv.layout  # the config's layouts are Modes already
    watch = cfg.watch
    if not 0 <= watch.content_volume <= 1:
        raise ValueError(f"watch.content_volume must be between 0 and 1, got {watch.content_volume}")
    if not -60 <= watch.duck_db <= 0:
        raise ValueError(f"watch.duck_db must be between -60 and 0 (dB), got {watch.duck_db}")
    if args.duration is not None and not args.duration > 0:
        raise ValueError("--duration must be greater than 0")
    shots = args.screenshots or tv.screenshots_dir
    return TvOptions(
        friendly_name=args.name or tv.friendly_name or f"tvapp on {socket.gethostname()}",
        windowed=args.windowed, size=size, offscreen_fallback=args.offscreen, margin=margin, fps=tv.fps,
        drivers=tv.video_drivers, mode=layout, screenshots=Path(shots).expanduser() if shots else None,
        screenshot_interval=tv.screenshot_interval if args.screenshot_interval is None else args.screenshot_interval,
        audio=not args.no_audio, audio_device=args.audio_device or audio.device, volume=volume,
        chunk_ms=audio.chunk_ms, max_queue_ms=audio.max_queue_ms, duration=args.duration,
        trace=Path(args.trace) if args.trace else None, watch_mode=watch.layout,
        content_volume=watch.content_volume, duck_db=watch.duck_db, content_proxy=watch.content_proxy,
        camera=tv.camera, microphone=tv.microphone, echo_cancellation=tv.echo_cancellation,
        noise_suppression=tv.noise_suppression, auto_gain=tv.auto_gain, adaptive_stream=tv.adaptive_stream)


def _api_key(args: argparse.Namespace) -> tuple[str, str] | None:
    text = getattr(args, "api_key", None) or os.environ.get("TVAPP_API_KEY", "")
    if not text:
        return None
    key_id, sep, secret = text.partition(":")
    if not sep or not key_id or not secret:
        raise ValueError("--api-key must be ID:SECRET (see 'tvapp keys create')")
    return key_id, secret


def lan_url(core_url: str, args: argparse.Namespace) -> str:
    """Return the URL a phone on the LAN opens: the core's port (and scheme) on this machine's LAN address."""
    scheme, rest = core_url.split("://", 1)
    port = rest.rsplit(":", 1)[1]
    host = args.host or "0.0.0.0"
    if host not in ("0.0.0.0", "::"):
        return f"{scheme}://{host}:{port}/"
    return f"{scheme}://{_lan_address()}:{port}/"


def join_link(phone_url: str, code: str, fingerprint: str | None) -> str:
    """Return the "scan to join" link: the phone client with the invite code, and `#fp=` for a self-signed core."""
    from urllib.parse import quote

    link = f"{phone_url}?code={quote(code, safe='')}"
    return link + (f"#fp={fingerprint}" if fingerprint else "")


def _lan_address() -> str:
    """Return this machine's first non-loopback IPv4 address (127.0.0.1 if it has none)."""
    return _lan_addresses()[0]


def _lan_addresses() -> list[str]:
    """Return this machine's non-loopback IPv4 addresses (["127.0.0.1"] if it has none)."""
    import ifaddr

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
             if isinstance(ip.ip, str) and not ip.ip.startswith(("127.", "169.254."))]
    return found or ["127.0.0.1"]
