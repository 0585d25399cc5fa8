"""Real nginx terminating TLS in front of the core on 127.0.0.1, with the config README.md shows.

nginx runs as a child process with a config this test writes (its own prefix, pid file and logs in tmp_path), a
test CA's certificate for core.test, and the README's ```nginx block with this test's port, certificate and
upstream put in. The client reaches nginx from 127.0.0.2/127.0.0.3 (nginx itself talks to the core from
127.0.0.1, the one trusted proxy), so the core can tell the proxy from its clients as in a real deployment.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tvapp.client.signaling import SignalClient
from tvapp.client.trust import trust_certificate
from tvapp.testing.certs import Pki, make_pki
from tvapp.testing.rest import create_invite, create_room
from tvapp.testing.server import ServerProcess

README = Path(__file__).resolve().parent.parent / "README.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def readme_nginx_block() -> str:
    """Return the one ```nginx block of README.md."""
    blocks = re.findall(r"```nginx\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "README.md must show exactly one nginx config"
    return blocks[0]


def nginx_config(block: str, *, port: int, upstream: str, pki: Pki) -> str:
    """Put this test's port, name, certificate and upstream into the README block (each must be there)."""
    replacements = [
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("/etc/letsencrypt/live/tv.example.org/fullchain.pem", str(pki.cert)),
        ("/etc/letsencrypt/live/tv.example.org/privkey.pem", str(pki.key)),
        ("server_name tv.example.org;", "server_name core.test;"),
        ("http://127.0.0.1:8800;", f"{upstream};"),
    ]
    for old, new in replacements:
        assert block.count(old) == 1, f"the README's nginx block no longer has {old!r}"
        block = block.replace(old, new)
    return block


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def behind_nginx(tmp_path: Path, make_server: Callable[..., ServerProcess]) -> Iterator[tuple[str, ServerProcess,
                                                                                             Pki]]:
    srv = make_server(TVAPP_SERVER_TRUSTED_PROXIES="127.0.0.1", TVAPP_SERVER_ALLOWED_HOSTS="core.test",
                      TVAPP_INVITES_REDEEM_WINDOW="600")
    pki = make_pki(tmp_path / "pki", ["core.test"], ["127.0.0.1"])
    prefix = tmp_path / "nginx"
    for sub in ("logs", "temp"):
        (prefix / sub).mkdir(parents=True)
    port = free_port()
    site = nginx_config(readme_nginx_block(), port=port, upstream=srv.url, pki=pki)
    (prefix / "nginx.conf").write_text(f"""
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
{site}
}}
""")
    test = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                           str(prefix / "logs" / "error.log")], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                             str(prefix / "logs" / "error.log")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "nginx exited"
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.05)
    try:
        yield url, srv, pki
    finally:
        proc.terminate()
        proc.wait(10)


def client_from(source: str, pki: Pki, url: str) -> httpx.Client:
    """An https client that verifies core.test's certificate against the test CA, connecting from `source`."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    return httpx.Client(transport=httpx.HTTPTransport(verify=context, local_address=source), timeout=10,
                        headers={"Host": f"core.test:{url.rsplit(':', 1)[1]}"})  # as a browser at that URL


def get(client: httpx.Client, url: str, path: str, **kw: object) -> httpx.Response:
    return client.get(url + path, extensions={"sni_hostname": "core.test"}, **kw)  # type: ignore[arg-type]


def post(client: httpx.Client, url: str, path: str, **kw: object) -> httpx.Response:
    return client.post(url + path, extensions={"sni_hostname": "core.test"}, **kw)  # type: ignore[arg-type]


def test_rest_websocket_and_join_through_nginx(behind_nginx: tuple[str, ServerProcess, Pki]) -> None:
    url, srv, pki = behind_nginx
    with client_from("127.0.0.2", pki, url) as phone, client_from("127.0.0.3", pki, url) as other:
        health = get(phone, url, "/healthz")
        assert health.status_code == 200, health.text
        page = get(phone, url, "/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        # The CSP names the host the phone used (forwarded by nginx), so wss to it is allowed.
        assert f"wss://core.test:{url.rsplit(':', 1)[1]}" in page.headers["content-security-policy"]
        room = create_room(srv)
        code = create_invite(srv, room["name"])["code"]
        origin = {"Origin": f"https://core.test:{url.rsplit(':', 1)[1]}"}
        # Wrong codes through nginx count against the phone's own address, not nginx's (nor a made-up one).
        for n in range(5):
            wrong = post(phone, url, "/v1/invites/2222-2222/redeem", json={"identity": "guesser"},
                         headers={**origin, "X-Forwarded-For": f"198.51.100.{n}"})
            assert wrong.status_code == 404, wrong.text
        locked = post(phone, url, f"/v1/invites/{code}/redeem", json={"identity": "guesser"}, headers=origin)
        assert locked.status_code == 429 and locked.json()["error"]["code"] == "too_many_attempts"
        pair = post(other, url, f"/v1/invites/{code}/redeem", json={"identity": "bea", "name": "Bea"},
                    headers=origin)
        assert pair.status_code == 200, pair.text  # another client behind the same proxy is not locked out
        foreign = post(other, url, f"/v1/invites/{code}/redeem", json={"identity": "x"},
                       headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "bad_origin"
    token = pair.json()["access_token"]

    async def join() -> str:
        trust_certificate(url, pki.ca_cert)  # the SDK verifies nginx's certificate against the test CA
        client = await SignalClient.connect(url, token)  # wss through nginx (Upgrade)
        try:
            return client.joined.participant.identity
        finally:
            await client.close()

    assert asyncio.run(join()) == "bea"  # "joined" came back through nginx's websocket upgrade
