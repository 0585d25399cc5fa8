"""Run a real core server (`python -m tvapp serve`) on an ephemeral 127.0.0.1 port for tests and benchmarks."""

from __future__ import annotations

import json
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tvapp.client.rest import tokens_path


class ServerProcess:
    """A `tvapp serve` subprocess with its URL, API key and an HTTP client."""

    def __init__(self, data_dir: str | os.PathLike[str], env: dict[str, str] | None = None,
                 cpu: int | None = None, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 prefix: Sequence[str] = ()) -> None:
        """Prepare a core on `host`:`port` (0: any free port) keeping its state in `data_dir`.

        `prefix` runs it through a command such as `ip netns exec NS` (tvapp.testing.homes: a core in the cloud).
        A core on a non-loopback `host` would make a self-signed certificate ([server] tls = "auto"); here it
        serves plain http unless `env` sets TVAPP_SERVER_TLS (the tests of TLS itself say so: its clients in other
        namespaces would otherwise have to be handed the certificate).
        """
        self.data_dir = Path(data_dir)
        self.log_level = log_level
        self.host = host
        self.port = port
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        if not ipaddress.ip_address(host).is_loopback and "TVAPP_SERVER_TLS" not in (env or {}):
            self.env["TVAPP_SERVER_TLS"] = "off"
        self.cpu = cpu
        self.prefix = list(prefix)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: deque[str] = deque(maxlen=2000)
        self._http: httpx.Client | None = None
        self.verify: ssl.SSLContext | bool = True  # trusts the core's own certificate when it made a self-signed one

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the server and wait until it listens."""
        cmd = [sys.executable, "-m", "tvapp", "serve", "--host", self.host, "--port", str(self.port),
               "--data", str(self.data_dir), "--log-level", self.log_level]
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        cmd = [*self.prefix, *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            self.output.append(line)
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                break
            if time.monotonic() > deadline:
                break
        if not self.url:
            self.kill()
            raise RuntimeError("tvapp serve did not start:\n" + "".join(self.output))
        threading.Thread(target=self._drain, daemon=True).start()
        own = self.data_dir / "tls" / "core-cert.pem"
        if self.url.startswith("https://") and own.exists():
            self.verify = ssl.create_default_context(cafile=str(own))
        try:
            self.wait_healthy(deadline - time.monotonic())
        except BaseException:
            self.kill()  # (a core that never became healthy must not outlive the test)
            raise
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def wait_healthy(self, timeout: float) -> None:
        """Wait until /healthz answers."""
        deadline = time.monotonic() + max(timeout, 1.0)
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0, verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("tvapp serve never became healthy:\n" + "".join(self.output))

    @property
    def key(self) -> tuple[str, str]:
        """Return the (id, secret) of the first active API key."""
        data = json.loads((self.data_dir / "keys.json").read_text())
        key = next(k for k in data["keys"] if k["revoked_at"] is None)
        return key["id"], key["secret"]

    @property
    def http(self) -> httpx.Client:
        """An HTTP client for this server, authenticated with the API key."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, auth=self.key, timeout=10.0, verify=self.verify)
        return self._http

    def token(self, room: str, identity: str, **grants: Any) -> dict[str, Any]:
        """Issue an access + refresh token pair through POST /v1/tokens."""
        name = grants.pop("name", "")
        ttl = grants.pop("ttl", None)
        timeout = grants.pop("timeout", None)  # seconds for this request (default: the client's 10 s)
        body: dict[str, Any] = {"room": room, "identity": identity, "name": name, "grants": grants}
        if ttl is not None:
            body["ttl"] = ttl
        response = self.http.post(tokens_path(), json=body,
                                  timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def kill(self) -> None:
        """Kill the server with SIGKILL (no clean-up at all)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Stop the server with SIGTERM and wait."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
