"""TLS to a core with a self-signed certificate: the SDK's REST calls and signaling websocket go through a real TLS
front (tvapp.testing.tlsfront) to a real core; without a pin the CA check refuses, the right pin is accepted, a
wrong pin fails the handshake before any request is sent. The TV's remembered-servers file is checked here too.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import stat
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvapp.client import trust as pins
from tvapp.client.rest import RestClient
from tvapp.client.room import Room
from tvapp.protocol.remote_messages import MAX_KNOWN_SERVERS, KnownServer
from tvapp.testing.server import ServerProcess
from tvapp.testing.tlsfront import TlsFront
from tvapp.tv.join import unreachable
from tvapp.tv.servers import KnownServers

OTHER_FP = "sha256:" + ":".join(["5A"] * 32)


@pytest.fixture(scope="module")
def front(media_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    served = TlsFront(tmp_path_factory.mktemp("front"), int(media_server.url.rsplit(":", 1)[1]))
    served.start()
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def no_pins(front: TlsFront) -> Iterator[None]:
    pins.unpin(front.url)
    yield
    pins.unpin(front.url)


def test_http_has_no_tls_and_https_without_a_pin_is_ca_checked() -> None:
    assert pins.ssl_context("http://127.0.0.1:8800/v1/rooms") is None
    assert pins.ssl_context("ws://127.0.0.1:8800/v1/signal") is None
    context = pins.ssl_context("https://core.example/v1/rooms")
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_self_signed_core_is_refused_without_its_pin_and_reached_with_it(media_server: ServerProcess,
                                                                           front: TlsFront) -> None:
    api = RestClient(front.url, api_key=media_server.key)
    with pytest.raises(urllib.error.URLError) as refused:
        asyncio.run(api.create_room("pinned-room"))
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    assert not isinstance(refused.value.reason, pins.PinMismatch)
    problem = unreachable(front.url, refused.value)
    assert problem.code == "tls_failed" and "#fp=" in problem.screen.hint

    pins.pin(front.url, OTHER_FP)
    with pytest.raises(urllib.error.URLError) as mismatch:
        asyncio.run(api.create_room("pinned-room"))
    assert isinstance(mismatch.value.reason, pins.PinMismatch)
    assert unreachable(front.url, mismatch.value).code == "fingerprint_mismatch"

    pins.pin(front.url, front.fingerprint.lower())  # any case, the same pin
    assert pins.pinned(front.url.replace("127.0.0.1", "127.0.0.1") + "/v1/x") == front.fingerprint
    room = asyncio.run(api.create_room("pinned-room"))
    assert room.name == "pinned-room"


def test_the_signaling_websocket_is_pinned_too(media_server: ServerProcess, front: TlsFront) -> None:
    asyncio.run(RestClient(media_server.url, api_key=media_server.key).create_room("pinned-signal"))
    token = media_server.token("pinned-signal", "ann")["access_token"]

    async def join() -> str:
        room = await Room.connect(front.url, token, host_addresses=["127.0.0.1"], auto_subscribe=False)
        try:
            return room.local_participant.identity
        finally:
            await room.disconnect()

    pins.pin(front.url, OTHER_FP)
    with pytest.raises(pins.PinMismatch):
        asyncio.run(join())
    pins.pin(front.url, front.fingerprint)
    assert asyncio.run(join()) == "ann"


def test_the_remembered_servers_file_is_0600_has_no_secrets_and_a_limit(tmp_path: Path) -> None:
    path = tmp_path / "data" / "servers.json"
    known = KnownServers(path, limit=3)
    known.remember("https://core.example", None, 100.0)
    known.remember("https://192.168.1.9:8800", OTHER_FP, 200.0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved == {"servers": [
        {"url": "https://192.168.1.9:8800", "name": "192.168.1.9:8800", "fingerprint": OTHER_FP, "last_used": 200.0},
        {"url": "https://core.example", "name": "core.example", "fingerprint": None, "last_used": 100.0},
    ]}  # fmt: skip
    for n in range(3):
        known.remember(f"http://10.0.0.{n + 1}:8800", None, 300.0 + n)
    assert [s.url for s in KnownServers(path, limit=3).list()] == [
        "http://10.0.0.3:8800", "http://10.0.0.2:8800", "http://10.0.0.1:8800"]
    assert MAX_KNOWN_SERVERS == KnownServers(path).limit

    # A file edited by hand: entries that do not check out (credentials, bad scheme, bad pin) are dropped.
    path.write_text(json.dumps({"servers": [
        {"url": "https://ann:pw@core.example", "name": "x", "fingerprint": None, "last_used": 1.0},
        {"url": "ftp://core.example", "name": "x", "fingerprint": None, "last_used": 1.0},
        {"url": "https://ok.example", "name": "ok", "fingerprint": "sha256:00", "last_used": 1.0},
        {"url": "https://ok.example", "name": "ok", "fingerprint": None, "last_used": 2.0},
    ]}))  # fmt: skip
    assert KnownServers(path).list() == (KnownServer(url="https://ok.example", name="ok", last_used=2.0),)
    path.write_text("not json")
    assert KnownServers(path).list() == ()


def test_the_remembered_servers_keep_at_most_the_limit(tmp_path: Path) -> None:
    known = KnownServers(tmp_path / "servers.json")
    for n in range(MAX_KNOWN_SERVERS + 1):
        known.remember(f"http://10.0.{n}.1:8800", None, 1000.0 + n)
    kept = KnownServers(tmp_path / "servers.json").list()
    assert len(kept) == MAX_KNOWN_SERVERS == 20
    assert "http://10.0.0.1:8800" not in {entry.url for entry in kept}  # the least recently used went first
