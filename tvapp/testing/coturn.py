"""Debian's coturn (`turnserver`) as a child process for tests: a real TURN server with TURN REST credentials.

    with Coturn(secret="s3cret", realm="tvapp.test", listening_ips=["127.0.0.1"], allow_loopback_peers=True) as turn:
        turn.url("udp")            # "turn:127.0.0.1:PORT?transport=udp"
        ...                         # allocate with credentials made from the same secret
        turn.allocations()          # successful ALLOCATE requests so far

How it runs:
- Its options go into a config file in a private temporary directory (0700, file 0600) and `turnserver -c FILE`
  reads it, so the secret is never on a command line (which /proc shows to every user) nor on stdout.
- `use-auth-secret` with `static-auth-secret`: the TURN REST scheme (username "expiry:identity", password
  base64(HMAC-SHA1(secret, username))). `--no-cli`, no TLS/DTLS unless `tls_port` is given (then `turns:` on that
  port with `cert`/`key`), `no-stdout-log`, the log goes to `log_path` (in the private directory).
- `prefix` is put before the command, e.g. ["ip", "netns", "exec", "cloud"] to run it inside a network namespace.
- Peers: coturn refuses relaying to loopback peers unless `allow_loopback_peers` is set (a test whose SFU is on
  127.0.0.1 needs it), and to multicast peers with `no_multicast_peers` (default on). `denied_peer_ips` adds
  "ip" or "ip-ip" ranges it must refuse (e.g. the private ranges of a deployment).
- Ready: `start()` waits (no sleep) until the log says every listener is open: coturn logs "UDP listener opened
  on: IP:PORT" and "TCP listener opened on : IP:PORT" (and "TLS/TCP listener opened on" for the TLS port) in
  `verbose` mode, which this helper always turns on.
- Counting: `allocations()` counts the log's "incoming packet ALLOCATE processed, success" lines (verbose mode logs
  one per successful allocation, with the username); `refusals()` lists the requests refused for a named user
  ("user <NAME>: incoming packet message processed, error 401": an expired username or a wrong password), leaving
  out the anonymous 401 challenge every client gets first. `relayed_bytes()` sums the "peer usage" lines (bytes relayed to and from peers,
  logged when an allocation closes and every so often while it lives). Redis stats are not used: they need a
  redis server.
- `stop()` sends SIGTERM and waits; SIGKILL after a few seconds; the private directory is removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from tvapp.testing.waiting import wait_until

ALLOCATE_SUCCESS = re.compile(r"incoming packet ALLOCATE processed, success")
# A refused request names the user; coturn logs it as "message" when authentication failed before the method.
REQUEST_ERROR = re.compile(r"user <([^>]+)>: incoming packet (?:ALLOCATE|message) processed, error (\d+)")
PEER_USAGE = re.compile(r"peer usage: realm=<[^>]*>, username=<([^>]*)>, rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)")


def rest_credentials(secret: str, identity: str, expiry: int) -> tuple[str, str]:
    """Return (username, password) of the TURN REST scheme, made here independently of tvapp's own code."""
    username = f"{expiry}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


class CoturnError(RuntimeError):
    """coturn is not installed, or exited or did not open its listeners."""


def turnserver_path() -> str | None:
    """Return the path of Debian's `turnserver`, or None when coturn is not installed."""
    return shutil.which("turnserver") or next(
        (p for p in ("/usr/bin/turnserver", "/usr/sbin/turnserver") if os.access(p, os.X_OK)), None)


class Coturn:
    """A coturn process with `use-auth-secret`; start() waits until it listens, stop() ends it."""

    def __init__(self, *, secret: str, realm: str = "tvapp.test", listening_ips: Sequence[str] = ("127.0.0.1",),
                 port: int = 0, tls_port: int | None = None, cert: Path | str | None = None,
                 key: Path | str | None = None, relay_ip: str | None = None, min_port: int = 49152,
                 max_port: int = 65535, allow_loopback_peers: bool = False, no_multicast_peers: bool = True,
                 denied_peer_ips: Sequence[str] = (), prefix: Sequence[str] = (), extra: Sequence[str] = ()) -> None:
        if not secret:
            raise ValueError("coturn needs a non-empty static auth secret")
        if tls_port is not None and (cert is None or key is None):
            raise ValueError("a TLS port needs cert and key")
        self.secret = secret
        self.realm = realm
        self.listening_ips = list(listening_ips)
        self.port = port or _free_port(self.listening_ips[0] if not prefix else None)
        self.tls_port = tls_port
        self.cert, self.key = cert, key
        self.relay_ip = relay_ip or self.listening_ips[0]
        self.min_port, self.max_port = min_port, max_port
        self.allow_loopback_peers = allow_loopback_peers
        self.no_multicast_peers = no_multicast_peers
        self.denied_peer_ips = list(denied_peer_ips)
        self.prefix = list(prefix)
        self.extra = list(extra)
        self.directory = Path(tempfile.mkdtemp(prefix="tvapp-coturn-"))
        self.log_path = self.directory / "turnserver.log"
        self.config_path = self.directory / "turnserver.conf"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, transport: str = "udp", host: str | None = None) -> str:
        """Return the turn:/turns: URL for `transport` ("udp", "tcp" or "tls") on the first listening address."""
        host = host or self.listening_ips[0]
        if transport == "tls":
            if self.tls_port is None:
                raise ValueError("this coturn has no TLS port")
            return f"turns:{host}:{self.tls_port}?transport=tcp"
        return f"turn:{host}:{self.port}?transport={transport}"

    def credentials(self, identity: str = "test", ttl: int = 600) -> tuple[str, str]:
        """Return REST credentials for `identity` valid for `ttl` seconds from now (negative: already expired)."""
        return rest_credentials(self.secret, identity, int(time.time()) + ttl)

    def config_lines(self) -> list[str]:
        """Return the turnserver.conf lines this instance runs with (the secret among them)."""
        lines = [f"listening-ip={ip}" for ip in self.listening_ips]
        lines += [f"listening-port={self.port}", f"relay-ip={self.relay_ip}",
                  f"min-port={self.min_port}", f"max-port={self.max_port}",
                  "use-auth-secret", f"static-auth-secret={self.secret}", f"realm={self.realm}",
                  "fingerprint", "no-cli", "no-dtls", "no-software-attribute", "verbose",
                  f"log-file={self.log_path}", "simple-log", "no-stdout-log",
                  f"pidfile={self.directory / 'turnserver.pid'}",
                  # No user database: keeps coturn off /var/lib/turn/turndb.
                  f"userdb={self.directory / 'turndb'}"]
        if self.tls_port is None:
            lines.append("no-tls")
        else:
            lines += [f"tls-listening-port={self.tls_port}", f"cert={self.cert}", f"pkey={self.key}"]
        if self.allow_loopback_peers:
            lines.append("allow-loopback-peers")
        if self.no_multicast_peers:
            lines.append("no-multicast-peers")
        lines += [f"denied-peer-ip={r}" for r in self.denied_peer_ips]
        return lines + self.extra

    def start(self, timeout: float = 10.0) -> Self:
        """Start turnserver and wait until its log says every listener is open."""
        binary = turnserver_path()
        if binary is None:
            raise CoturnError("coturn is not installed (apt-get install coturn; scripts/install-system-deps.sh)")
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(self.config_lines()) + "\n")
        self.process = subprocess.Popen([*self.prefix, binary, "-c", str(self.config_path)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        wanted = [f"UDP listener opened on: {ip}:{self.port}" for ip in self.listening_ips]
        wanted += [f"TCP listener opened on : {ip}:{self.port}" for ip in self.listening_ips]
        if self.tls_port is not None:
            wanted += [f"listener opened on : {ip}:{self.tls_port}" for ip in self.listening_ips]

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise CoturnError(f"turnserver exited with {self.process.returncode}: {self.log_tail()}")
            text = self.log()
            return all(w in text for w in wanted)

        try:
            wait_until(ready, timeout=timeout, what=lambda: f"coturn listeners {wanted}; log: {self.log_tail()}")
        except BaseException:
            self.stop()
            raise
        return self

    def log(self) -> str:
        """Return coturn's log so far ("" before it exists)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        """Return the last lines of the log, for failure messages."""
        return "\n".join(self.log().splitlines()[-lines:])

    def allocations(self, username_contains: str = "") -> int:
        """Return how many ALLOCATE requests succeeded (for usernames containing `username_contains`)."""
        return sum(1 for line in self.log().splitlines()
                   if ALLOCATE_SUCCESS.search(line) and username_contains in line)

    def refusals(self) -> list[tuple[str, int]]:
        """Return (username, error code) for each refused request that named a user (not the anonymous 401 challenge)."""
        return [(m.group(1), int(m.group(2))) for m in map(REQUEST_ERROR.search, self.log().splitlines())
                if m]

    def relayed_bytes(self) -> int:
        """Return the bytes relayed to and from peers that coturn has logged so far (its "peer usage" lines)."""
        return sum(int(m.group(3)) + int(m.group(5)) for m in map(PEER_USAGE.search, self.log().splitlines()) if m)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop turnserver (SIGTERM, then SIGKILL) and remove its directory."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port(host: str | None) -> int:
    """Return a port free for both UDP and TCP on `host` (any free port when running elsewhere)."""
    import socket

    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host or "127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((host or "127.0.0.1", port))
                    return port
            except OSError:
                continue
    raise CoturnError("no free port")

