"""The TV in a room on another core (issue 14 item 5), end to end with real parts only.

Two real cores (ServerProcess; the second also behind a real TLS front with a self-signed certificate), a real
`tvapp tv` with its own built-in core, `tvapp remote` as a real subprocess, the Remote page in real Chromium, and an
SDK participant in the room on the other core that must see the TV come in. Bad input (a scheme that is not http,
a code that is no code, a code the core does not know, an expired invite, an unreachable host, no pin or a wrong pin
for a self-signed core) is answered with a clear error, shows as a notice on the TV, and the TV keeps running in
the room it was in. The TV's remembered-servers file is 0600 and holds no secrets.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page

from tvapp.client import events as ev
from tvapp.client.remote_link import request_pairing
from tvapp.client.rest import RestClient
from tvapp.client.room import Room
from tvapp.testing.browser import Browser, wait_for_js
from tvapp.testing.server import ServerProcess
from tvapp.testing.tlsfront import TlsFront
from tvapp.testing.tv import TvProcess

pytestmark = pytest.mark.usefixtures("close_pages")

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
MEDIA_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "TVAPP_INVITES_REDEEM_FAILURES": "1000"}
WRONG_FP = "sha256:" + ":".join(["5A"] * 32)


class Background:
    """An asyncio loop in a thread, for the SDK participant (its pings run while the test waits on the TV)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Participant:
    """An SDK participant in a room on a core, recording who joins."""

    def __init__(self, bg: Background, server: ServerProcess, room: str, identity: str) -> None:
        self.bg = bg
        self.joined: list[tuple[str, str]] = []
        token = server.token(room, identity)["access_token"]
        self.room: Room = bg.run(Room.connect(server.url, token, host_addresses=["127.0.0.1"], auto_subscribe=False))
        self.room.on(ev.ParticipantJoined, lambda e: self.joined.append((e.participant.identity, e.participant.name)))

    def wait_joined(self, name: str, timeout: float = 30.0) -> str:
        """Wait until a participant called `name` joined; return its identity."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [identity for identity, shown in list(self.joined) if shown == name]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"{name} never joined; joined: {self.joined}")

    def close(self) -> None:
        self.bg.run(self.room.disconnect())


def new_invite(bg: Background, server: ServerProcess, room: str, **options: int) -> str:
    api = RestClient(server.url, api_key=server.key)

    async def make() -> str:
        await api.create_room(room)
        return (await api.create_invite(room, **options)).code

    return bg.run(make())


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def remote(config: Path, *args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TVAPP_REMOTE_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "tvapp", "remote", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)


def host(url: str) -> str:
    return url.split("://", 1)[1]


@pytest.fixture
def cores(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess, TlsFront]]:
    first = ServerProcess(tmp_path / "core-b", env=MEDIA_ENV).start()
    second = ServerProcess(tmp_path / "core-c", env=MEDIA_ENV).start()
    front = TlsFront(tmp_path / "front", int(second.url.rsplit(":", 1)[1]))
    front.start()
    try:
        yield first, second, front
    finally:
        front.stop()
        first.stop()
        second.stop()


@pytest.fixture
def tv(tmp_path: Path) -> Iterator[TvProcess]:
    process = TvProcess(tmp_path / "tv", ["--host", "127.0.0.1", "--port", "0", "--name", "Den TV", "--data",
                                          str(tmp_path / "tv" / "data"), "--no-audio"], size="1280x720")
    try:
        process.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60,
                         what="the TV's own room")
        yield process
    finally:
        process.stop()


@pytest.fixture
def background() -> Iterator[Background]:
    bg = Background()
    yield bg
    bg.close()


def toast_seen(tv: TvProcess, text: str) -> None:
    tv.wait_for(lambda s: any(text in toast for toast in s["toasts"]), timeout=15, what=f"a notice with {text!r}")


def on_screen(tv: TvProcess, where: str, code: str) -> dict[str, Any]:
    _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s.get("where") == where
                             and s["invite_code"] == code, timeout=30, what=f"the room {where} with code {code}")
    return sidecar


def test_the_cli_moves_the_tv_into_a_room_on_another_core_and_bad_input_is_refused(
        tmp_path: Path, cores: tuple[ServerProcess, ServerProcess, TlsFront], tv: TvProcess,
        background: Background) -> None:
    core_b, _, _ = cores
    assert tv.screenshot()[1]["where"] == "on this TV"
    config = tmp_path / "phone" / "remote.json"
    url = tv.remote_url()
    background.run(request_pairing(url, "cli"))
    _, sidecar = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code")
    paired = remote(config, "pair", "--tv", url, "--code", sidecar["pairing"]["code"].replace(" ", ""))
    assert paired.returncode == 0, paired.stderr

    code = new_invite(background, core_b, "family")
    ann = Participant(background, core_b, "family", "ann")
    try:
        done = remote(config, "send", "join", f"{core_b.url}/?code={code[:4]}-{code[4:].lower()}")
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
        tv_identity = ann.wait_joined("Den TV")
        assert tv_identity.startswith("tv-")
        on_screen(tv, f"on {host(core_b.url)}", code)

        status = remote(config, "send", "status")
        assert status.returncode == 0, status.stderr
        assert f"room family on {host(core_b.url)}" in status.stdout
        assert f"- {core_b.url}  ({host(core_b.url)}, last used" in status.stdout
        state = json.loads(remote(config, "send", "status", "--json").stdout)
        assert state["room_server"] == core_b.url and [s["url"] for s in state["servers"]] == [core_b.url]

        # Refused on the phone before anything is sent: not http(s), not a code, credentials in the URL.
        for bad, words in ((f"ftp://{host(core_b.url)}/?code={code}", "only http:// and https://"),
                           (f"{core_b.url}/?code=NOT-A-CODE-0", "not a code"),
                           (f"http://ann:secret@{host(core_b.url)}/?code={code}", "user name or password")):
            refused = remote(config, "send", "join", bad)
            assert refused.returncode == 2 and words in refused.stderr, refused.stderr
            assert "secret" not in refused.stderr

        # Refused by the other core or the network: a clear error back, a notice on the TV, the room kept.
        unknown = "ABCDEFGH" if code != "ABCDEFGH" else "ABCDEFGJ"
        wrong = remote(config, "send", "join", core_b.url, unknown)
        assert wrong.returncode == 1 and "Invite not valid" in wrong.stderr and "(invite_not_found)" in wrong.stderr
        toast_seen(tv, f"Could not join on {host(core_b.url)}: Invite not valid")
        expired_code = new_invite(background, core_b, "short", ttl=1)
        deadline = time.time() + 1.5
        while time.time() < deadline:  # the core's clock passes the invite's expiry
            time.sleep(0.05)
        expired = remote(config, "send", "join", f"{core_b.url}/?code={expired_code}")
        assert expired.returncode == 1 and "(invite_expired)" in expired.stderr, expired.stderr
        gone = f"127.0.0.1:{closed_port()}"
        unreachable = remote(config, "send", "join", gone, code)
        assert unreachable.returncode == 1 and "(server_unreachable)" in unreachable.stderr, unreachable.stderr
        assert "Server unreachable" in unreachable.stderr
        toast_seen(tv, f"Could not join on {gone}: Server unreachable")
        on_screen(tv, f"on {host(core_b.url)}", code)  # still in the room on the other core
        assert tv.proc.poll() is None

        # Back to the TV's own core.
        assert remote(config, "send", "leave").returncode == 0
        tv.wait_for(lambda s: s["screen"] == "IdleScreen", timeout=15, what="the idle screen")
        assert remote(config, "send", "create-room", "home").returncode == 0
        tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["where"] == "on this TV", timeout=30,
                    what="a room on the TV's own core")
    finally:
        ann.close()

    data = tmp_path / "tv" / "data" / "servers.json"
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
    text = data.read_text()
    saved = json.loads(text)
    assert [set(entry) for entry in saved["servers"]] == [{"url", "name", "fingerprint", "last_used"}]
    assert saved["servers"][0]["url"] == core_b.url
    assert code not in text and "eyJ" not in text and "token" not in text  # no code, no JWT


def pair_page(browser: Browser, tv: TvProcess) -> Page:
    page = browser.new_page()
    page.goto(tv.remote_url() + "/remote", wait_until="load")
    page.wait_for_selector("#pair-request", state="visible")
    page.click("#pair-request")
    page.wait_for_selector("#pair-code", state="visible")
    _, sidecar = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code")
    page.fill("#pair-code", sidecar["pairing"]["code"].replace(" ", ""))
    page.click("#pair-confirm")
    wait_for_js(page, "() => window.tvappRemote && window.tvappRemote.state", lambda s: s == "ready", 15,
                "the Remote page to be connected")
    return page


def join_on_page(page: Page, link: str = "", code: str = "", server: str = "") -> dict[str, Any]:
    """Fill the "Join a room on another server" form, submit, and return the message box once answered."""
    before = len(page.evaluate("() => window.tvappRemote.answers"))
    page.fill("#join-link", link)
    page.fill("#join-server-code", code)
    page.select_option("#join-known", server)
    page.click("#join-server")
    wait_for_js(page, "() => window.tvappRemote.answers.length", lambda n: n > before, 30, "the TV's answer")
    box: dict[str, Any] = page.evaluate(
        "() => { const e = document.getElementById('join-server-msg');"
        " return e.hidden ? {} : {code: e.dataset.code, text: e.textContent}; }")
    return box


def test_the_remote_page_joins_a_self_signed_core_by_link_with_its_pin_and_lists_the_servers(
        browser: Browser, cores: tuple[ServerProcess, ServerProcess, TlsFront], tv: TvProcess,
        background: Background) -> None:
    core_b, core_c, front = cores
    page = pair_page(browser, tv)
    wait_for_js(page, "() => document.getElementById('tv-where').textContent", lambda t: t == "on this TV",
                what="where the room lives")
    code = new_invite(background, core_c, "cinema")
    bob = Participant(background, core_c, "cinema", "bob")
    try:
        link = f"{front.url}/?code={code}"
        assert join_on_page(page, link=f"ftp://{host(front.url)}/?code={code}") == {
            "code": "invalid_value", "text": "only http:// and https:// servers can be joined"}
        no_pin = join_on_page(page, link=link)
        assert no_pin["code"] == "tls_failed" and "Secure connection failed" in no_pin["text"]
        toast_seen(tv, f"Could not join on {host(front.url)}: Secure connection failed")
        wrong_pin = join_on_page(page, link=f"{link}#fp={WRONG_FP}")
        assert wrong_pin["code"] == "fingerprint_mismatch" and "Wrong certificate" in wrong_pin["text"]
        assert not bob.joined

        assert join_on_page(page, link=f"{link}#fp={front.fingerprint}") == {}
        bob.wait_joined("Den TV")
        on_screen(tv, f"on {host(front.url)}", code)
        wait_for_js(page, "() => document.getElementById('tv-where').textContent",
                    lambda t: t == f"on {host(front.url)}", what="the room's server on the page")
        wait_for_js(page, "() => document.getElementById('status').textContent",
                    lambda t: f"on {host(front.url)}" in t, what="the status line")
        wait_for_js(page, "() => Array.from(document.querySelectorAll('#join-known option')).map(o => o.value)",
                    lambda values: values == ["", front.url], what="the remembered server in the list")
        assert "pinned certificate" in page.inner_text("#join-known")

        # Pick a remembered server + type a code: its pin is remembered, so this works without the #fp.
        core_b_code = new_invite(background, core_b, "family")
        assert join_on_page(page, link=core_b.url, code=core_b_code) == {}
        on_screen(tv, f"on {host(core_b.url)}", core_b_code)
        again = background.run(RestClient(core_c.url, api_key=core_c.key).create_invite("cinema")).code
        assert join_on_page(page, code=again, server=front.url) == {}
        on_screen(tv, f"on {host(front.url)}", again)
        wait_for_js(page, "() => Array.from(document.querySelectorAll('#join-known option')).map(o => o.value)",
                    lambda values: values == ["", front.url, core_b.url], what="both servers, newest first")
    finally:
        bob.close()
    assert tv.proc.poll() is None
    saved = json.loads((Path(tv.workdir) / "data" / "servers.json").read_text())
    assert {entry["url"]: entry["fingerprint"] for entry in saved["servers"]} == {
        front.url: front.fingerprint, core_b.url: None}
    errors = [e for e in browser.errors[page] if "status of" not in e]
    assert errors == [], errors
