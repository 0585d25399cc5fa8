"""TLS on the core: a configured certificate, the self-signed one made on first run, and clear start-up errors.

Every test runs the real `python -m tvapp serve` and talks to it over real TLS with a verifying client.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import httpx
import pytest

from tvapp import config as config_mod
from tvapp.auth.keys import KeyStore
from tvapp.client.rest import RestClient
from tvapp.client.signaling import SignalClient
from tvapp.client.trust import ssl_context, trust_certificate
from tvapp.testing.certs import make_pki
from tvapp.web.tls import fingerprint as fingerprint_of


class Serve:
    """`tvapp serve` as a child process; `url` is what its "listening on" line said."""

    def __init__(self, data: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tvapp", "serve", "--port", "0", "--data", str(data),
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.lines: deque[str] = deque(maxlen=500)
        self.url = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                break
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def wait_healthy(url: str, verify: ssl.SSLContext | bool) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        try:
            return httpx.get(url + "/healthz", verify=verify, timeout=2)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def trusting(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def test_self_signed_on_the_lan_made_once_private_key_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Serve(data, "--host", "0.0.0.0")
    try:
        assert first.url.startswith("https://0.0.0.0:"), "".join(first.lines)
        cert, key = data / "tls" / "core-cert.pem", data / "tls" / "core-key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "tls").stat().st_mode) == 0o700
        url = f"https://127.0.0.1:{first.port}"
        # Verified against the certificate itself, host name (127.0.0.1 is in its names) checked.
        assert wait_healthy(url, trusting(cert)).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/healthz", timeout=2)  # the system CAs do not know it
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"http://127.0.0.1:{first.port}/healthz", timeout=2)  # no plain http on that port
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        shown = fingerprint_of(der)
        log = "".join(first.lines)
        assert f"fingerprint {shown}" in log
        assert "PRIVATE KEY" not in log and key.read_text().splitlines()[1] not in log
    finally:
        first.stop()
    again = Serve(data, "--host", "0.0.0.0")
    try:
        wait_healthy(f"https://127.0.0.1:{again.port}", trusting(cert))
        assert f"fingerprint {shown}" in "".join(again.lines)  # the same certificate, not a new one
    finally:
        again.stop()


def test_configured_certificate_serves_https_and_wss(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", ["core.test"], ["127.0.0.1"])
    data = tmp_path / "data"
    core = Serve(data, "--host", "127.0.0.1",
                 env={"TVAPP_SERVER_TLS_CERT": str(pki.cert), "TVAPP_SERVER_TLS_KEY": str(pki.key)})
    try:
        assert core.url.startswith("https://127.0.0.1:"), "".join(core.lines)
        url = f"https://127.0.0.1:{core.port}"
        assert wait_healthy(url, trusting(pki.ca_cert)).status_code == 200
        assert not (data / "tls").exists()  # no self-signed certificate when one is configured
        key = KeyStore(data).signing_key()
        assert key is not None

        async def join_over_wss() -> str:
            trust_certificate(url, pki.cert)  # the SDK pins the core's certificate for this origin
            rest = RestClient(url, api_key=(key.id, key.secret))
            await rest.create_room("tls-room")
            token = (await rest.issue_token("tls-room", "ann")).access_token
            client = await SignalClient.connect(url, token)  # wss, pinned by the same trust
            try:
                return client.joined.participant.identity
            finally:
                await client.close()

        assert asyncio.run(join_over_wss()) == "ann"
        other = ssl_context("https://127.0.0.1:1/")  # the trust is for that origin only: elsewhere the system CAs
        assert other is not None and other.check_hostname and other.verify_mode == ssl.CERT_REQUIRED
    finally:
        core.stop()


@pytest.mark.parametrize("problem, expected", [
    ("missing-cert", "cannot read the TLS certificate"),
    ("missing-key", "cannot read the TLS key"),
    ("garbage-cert", "is not a PEM certificate"),
    ("garbage-key", "is not an unencrypted PEM private key"),
    ("mismatch", "does not belong to the certificate"),
    ("unreadable-key", "cannot read the TLS key"),
])
def test_unusable_certificate_is_a_clear_start_up_error(tmp_path: Path, problem: str, expected: str) -> None:
    pki = make_pki(tmp_path / "pki", ["core.test"])
    other = make_pki(tmp_path / "other", ["other.test"])
    cert, key = pki.cert, pki.key
    if problem == "missing-cert":
        cert = tmp_path / "nope.pem"
    elif problem == "missing-key":
        key = tmp_path / "nope-key.pem"
    elif problem == "garbage-cert":
        cert.write_text("hello\n")
    elif problem == "garbage-key":
        key.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n")
    elif problem == "mismatch":
        key = other.key
    elif problem == "unreadable-key":
        key.chmod(0)
        if os.access(key, os.R_OK):  # root reads anything: make it a directory instead
            key.chmod(0o600)
            key = tmp_path / "a-directory"
            key.mkdir()
    done = subprocess.run([sys.executable, "-m", "tvapp", "serve", "--port", "0", "--data", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TVAPP_SERVER_TLS_CERT": str(cert), "TVAPP_SERVER_TLS_KEY": str(key)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "c2VjcmV0LWJ5dGVz" not in done.stderr  # the key's bytes never in a message


def test_plain_http_on_loopback_by_default_and_when_off(tmp_path: Path) -> None:
    loop = Serve(tmp_path / "a", "--host", "127.0.0.1")
    off = Serve(tmp_path / "b", "--host", "0.0.0.0", env={"TVAPP_SERVER_TLS": "off"})
    try:
        assert loop.url.startswith("http://127.0.0.1:")
        assert off.url.startswith("http://0.0.0.0:")
        assert wait_healthy(f"http://127.0.0.1:{off.port}", False).status_code == 200
        assert not (tmp_path / "b" / "tls").exists()
    finally:
        loop.stop()
        off.stop()


def test_tls_config_keys_are_checked() -> None:
    with pytest.raises(config_mod.ConfigError, match="tls must be one of auto, on, off"):
        config_mod.load(env={"TVAPP_SERVER_TLS": "maybe"})
    with pytest.raises(config_mod.ConfigError, match="tls_cert and tls_key go together"):
        config_mod.load(env={"TVAPP_SERVER_TLS_CERT": "/x.pem"})
    with pytest.raises(config_mod.ConfigError, match="not an IP address or CIDR"):
        config_mod.load(env={"TVAPP_SERVER_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example"})
    loaded = config_mod.load(env={"TVAPP_SERVER_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
    assert loaded.server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert loaded.server.tls == "auto"


def test_media_from_a_self_signed_core_is_verified_against_the_pinned_certificate(tmp_path: Path) -> None:
    from tvapp.client.decoder import MediaError, default_open
    from tvapp.testing.clip import make_clip
    from tvapp.web.tls import ensure_certificate

    data = tmp_path / "data"
    (data / "media").mkdir(parents=True)
    clip = make_clip(data / "media", seconds=1.0).name
    core = Serve(data, "--host", "0.0.0.0")
    try:
        url = f"https://127.0.0.1:{core.port}"
        wait_healthy(url, trusting(data / "tls" / "core-cert.pem"))
        impostor = ensure_certificate(tmp_path / "impostor", ["localhost"], ["127.0.0.1"])
        trust_certificate(url, impostor.cert_path)  # pinned to another certificate: FFmpeg must refuse
        with pytest.raises(MediaError) as refused:
            default_open(f"{url}/media/{clip}")
        assert "404" not in str(refused.value)  # refused at the handshake, not for want of the file
        trust_certificate(url, data / "tls" / "core-cert.pem")
        container = default_open(f"{url}/media/{clip}")
        try:
            assert container.streams.video[0].frames >= 0 and next(container.decode(video=0)).width > 0
        finally:
            container.close()
    finally:
        core.stop()


def test_the_tv_shows_an_unusable_certificate_of_its_built_in_core_in_words(tmp_path: Path) -> None:
    from tvapp.testing.tv import TvProcess

    missing = tmp_path / "missing-fullchain.pem"
    tv = TvProcess(tmp_path, ["--port", "0", "--data", str(tmp_path / "data"), "--no-audio"], size="1280x720",
                   env={"TVAPP_SERVER_TLS_CERT": str(missing), "TVAPP_SERVER_TLS_KEY": str(tmp_path / "k.pem")})
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "ErrorScreen", timeout=60, what="the error screen")
        error = sidecar["error"]
        assert error["title"] == "The TV's server did not start"
        assert error["message"].startswith(f"cannot read the TLS certificate {missing}")
        assert "tls_cert" in error["hint"]
        assert "Traceback" not in tv.output and "cannot read the TLS certificate" in tv.output
    finally:
        tv.stop()
