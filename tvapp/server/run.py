"""Run the core server with uvicorn on a socket bound by tvapp.web.http (so port 0 reports the real port).

TLS ([server] tls, tls_cert, tls_key): `core_certificate` decides which certificate the port serves, if any (a
configured one, checked before listening; a self-signed one made in <data_dir>/tls on first run; or none), and
uvicorn serves https and wss with it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from pathlib import Path

import uvicorn

from tvapp.auth.keys import KeyStore, ensure_data_dir
from tvapp.config import Config
from tvapp.logs import redact_frames
from tvapp.server.app import create_app
from tvapp.web.http import EdgeLimits, bind, guarded_protocol, url_for
from tvapp.web.tls import Certificate, TlsError, configured_certificate, ensure_certificate

__all__ = ["TlsError", "bind", "build_server", "core_certificate", "edge_limits", "serve", "url_for"]

log = logging.getLogger("tvapp.server")
TLS_DIR = "tls"  # <data_dir>/tls/core-cert.pem and core-key.pem (mode 0600), the self-signed certificate


def is_loopback(host: str) -> bool:
    """Return whether `host` (a listen address or name) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_addresses() -> list[str]:
    """Return this machine's non-loopback, non-link-local IPv4 addresses."""
    import ifaddr

    return [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
            if isinstance(ip.ip, str) and not ip.ip.startswith(("127.", "169.254."))]


def core_certificate(config: Config, data_dir: Path) -> Certificate | None:
    """Return the certificate the core serves (None: plain http); raise TlsError when a configured one is unusable.

    A configured tls_cert/tls_key wins; with none, "on" (or "auto" on a non-loopback address) makes or reuses a
    self-signed certificate for this machine's names and addresses.
    """
    server = config.server
    if server.tls == "off":
        return None
    if server.tls_cert or server.tls_key:
        return configured_certificate(server.tls_cert, server.tls_key)
    if server.tls == "auto" and is_loopback(server.host):
        return None
    name = socket.gethostname()
    addresses = ["127.0.0.1", "::1", *lan_addresses()]
    if server.host not in ("0.0.0.0", "::", "") and server.host not in addresses:
        addresses.append(server.host)
    names = [name, f"{name}.local", "localhost", *server.allowed_hosts]
    try:
        ip_addresses = [a for a in addresses if _is_ip(a)]
        return ensure_certificate(data_dir / TLS_DIR, names, ip_addresses,
                                  cert_file="core-cert.pem", key_file="core-key.pem")
    except OSError as exc:
        raise TlsError(f"cannot make the self-signed certificate in {data_dir / TLS_DIR}: "
                       f"{exc.strerror or exc}") from None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def describe_certificate(cert: Certificate | None) -> str:
    """Return the one line the core logs about its TLS: which certificate and its fingerprint (nothing secret)."""
    if cert is None:
        return "TLS off: plain http and ws"
    kind = "self-signed certificate" if cert.self_signed else "certificate"
    return f"TLS on: {kind} {cert.cert_path}, fingerprint {cert.fingerprint}"


def edge_limits(config: Config) -> EdgeLimits:
    """Return the per-connection HTTP limits of [server] (both the core and the TV's endpoints use them)."""
    server = config.server
    return EdgeLimits(max_header_bytes=server.max_header_bytes, header_timeout=server.header_timeout,
                      body_timeout=server.body_timeout)


def serve(config: Config, data_dir: Path, *, log_level: str = "info") -> int:
    """Serve until interrupted; return the exit status."""
    import time

    ensure_data_dir(data_dir)
    keys = KeyStore(data_dir)
    created = keys.ensure_key(time.time())
    if created is not None:
        print(f"tvapp: created API key {created.id}; its secret is in {keys.path} (mode 0600)", flush=True)
    try:
        cert = core_certificate(config, data_dir)
    except TlsError as exc:
        print(f"tvapp: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind(config.server.host, config.server.port)
    except OSError as exc:
        print(f"tvapp: cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}", file=sys.stderr)
        return 2
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = build_server(config, data_dir, log_level, cert)
    log.info("%s", describe_certificate(cert))
    if cert is not None:
        print(f"tvapp: {describe_certificate(cert)}", flush=True)
    print(f"tvapp: listening on {url_for(sock, secure=cert is not None)} (data in {data_dir})", flush=True)
    server.run(sockets=[sock])
    return 0


def build_server(config: Config, data_dir: Path, log_level: str = "info",
                 cert: Certificate | None = None) -> uvicorn.Server:
    """Return the uvicorn server for the core app (not started), serving https/wss with `cert` when given."""
    app = create_app(config, data_dir)
    redact_frames()  # websocket frames carry tokens, the TURN credential and chat: never their bytes in a log
    return uvicorn.Server(uvicorn.Config(
        app,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=guarded_protocol(edge_limits(config)),
        ws="websockets-sansio",
        ws_max_size=config.signal.max_message_bytes,
        # Signaling messages are small JSON: compressing each one cost ~20% of a join's server CPU
        # (bench/README.md), and CPU is what a Pi under the TV is short of.
        ws_per_message_deflate=False,
        log_level=log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=3,
        ssl_certfile=str(cert.cert_path) if cert else None,
        ssl_keyfile=str(cert.key_path) if cert else None,
    ))
