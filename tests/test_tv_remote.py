"""The phone as remote control, end to end: a real `tvapp tv` (built-in core, pygame on SDL dummy), real pairing over
HTTP with the code read from the TV's rendered screen (the screenshot sidecar), the real /v1/remote websocket,
and real bots joining with the invite code the TV shows. Each step is checked on the TV's screen.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tvapp.client.remote_link import (
    PairingError,
    RemoteLink,
    RemoteLinkError,
    confirm_pairing,
    request_pairing,
    tv_info,
)
from tvapp.protocol.pairing import Paired
from tvapp.protocol import remote_messages as rp
from tvapp.protocol.remote import CommandResult
from tvapp.testing.tv import BotProcess, TvProcess

T = TypeVar("T")


class Loop:
    """One asyncio loop for a synchronous test: `run(coro)` (the RemoteLink reads while a run is in progress)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def close(self) -> None:
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending, timeout=5))
        self.loop.close()


def core_url(tv: TvProcess) -> str:
    return next(line.split(" at ")[1].split(";")[0] for line in tv.output.splitlines() if "built-in core at" in line)


def start_tv(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> TvProcess:
    return TvProcess(tmp_path, ["--host", "127.0.0.1", "--port", "0", "--name", "Den TV", "--data",
                                str(tmp_path / "data"), "--no-audio", *args], size="1280x720", env=env)


def pair(tv: TvProcess, loop: Loop, name: str = "Test phone") -> Paired:
    """Pair like a person would: ask, read the code off the TV's screen, type it."""
    url = tv.remote_url()
    started = loop.run(request_pairing(url, name))
    _, sidecar = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code on screen")
    code = sidecar["pairing"]["code"].replace(" ", "")
    answer = loop.run(confirm_pairing(url, started.pairing_id, code=code, name=name))
    tv.wait_for(lambda s: s["pairing"] is None, timeout=10, what="the code to leave the screen once paired")
    return answer


def ok(result: CommandResult) -> None:
    assert result.ok, result.error


def tiles_by_identity(sidecar: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t.get("identity"): t for t in sidecar["tiles"]}


def test_a_phone_pairs_with_the_code_on_screen_and_drives_the_tv(tmp_path: Path) -> None:
    tv = start_tv(tmp_path)
    loop = Loop()
    bots: list[BotProcess] = []
    try:
        tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60, what="the default room")
        answer = pair(tv, loop)
        assert answer.credential.startswith("tvd_") and answer.device_id.startswith("dev_")
        link = loop.run(RemoteLink.connect(tv.remote_url(), answer.credential))
        assert link.tv_name == "Den TV"

        ok(loop.run(link.command(rp.LeaveRoom())))
        tv.wait_for(lambda s: s["screen"] == "IdleScreen", timeout=15, what="the idle screen after leave")
        ok(loop.run(link.command(rp.LeaveRoom())))  # idempotent: nothing to leave is fine

        ok(loop.run(link.command(rp.CreateRoom(name="movie-night"))))
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=30,
                                 what="the new room with its invite code")
        invite = sidecar["invite_code"]
        server = core_url(tv)
        for identity, colour in (("ann", "red"), ("bob", "blue")):
            bots.append(BotProcess(tmp_path, identity, [
                "--server", server, "--invite", invite, "--identity", identity, "--name", identity.title(),
                "--video", "pattern:320x240@15", "--color", colour, "--audio", "tone:440"]))
        tv.wait_for(lambda s: {"ann", "bob"} <= set(tiles_by_identity(s)), timeout=40, what="both bots' tiles")

        ok(loop.run(link.command(rp.SetLayout(layout="speaker"))))
        tv.wait_for(lambda s: s["mode"] == "speaker", timeout=10, what="the speaker layout")

        bots[1].wait_published(2)
        ok(loop.run(link.command(rp.MuteParticipant(identity="bob"))))
        tv.wait_for(lambda s: tiles_by_identity(s).get("bob", {}).get("mic_muted") is True, timeout=15,
                    what="Bob's tile shown muted")

        ok(loop.run(link.command(rp.ShowInvite(visible=False))))
        tv.wait_for(lambda s: s["invite_code"] is None, timeout=10, what="the invite code hidden")
        ok(loop.run(link.command(rp.ShowInvite(visible=True))))
        tv.wait_for(lambda s: s["invite_code"] == invite, timeout=10, what="the invite code shown again")

        ok(loop.run(link.command(rp.RemoveParticipant(identity="ann"))))
        tv.wait_for(lambda s: set(tiles_by_identity(s)) == {"bob"}, timeout=15, what="Ann's tile gone")
        bots[0].proc.wait(20)
        assert '"reason": "removed"' in bots[0].log_path.read_text()
        again = BotProcess(tmp_path, "ann-again", ["--server", server, "--invite", invite, "--identity", "ann",
                                                   "--audio", "none", "--video", "none"])
        bots.append(again)
        assert again.proc.wait(30) != 0
        assert "removed" in again.log_path.read_text()

        result = loop.run(link.command(rp.RemoveParticipant(identity="nobody")))
        assert result.error is not None and result.error.code == "participant_not_found"
        result = loop.run(link.command(rp.SetMic(enabled=True)))
        assert result.error is not None and result.error.code == "not_available"
        ok(loop.run(link.command(rp.StatusCommand())))  # the connection is still up after refusals
        state = link.state
        assert state is not None and state.room == "movie-night" and state.layout == "speaker"
        assert [p.identity for p in state.participants] == ["bob"] and state.invite_code == invite
        loop.run(link.close())
    finally:
        for bot in bots:
            bot.stop()
        loop.close()
        assert tv.stop() == 0, tv.output


def test_wrong_codes_rotate_the_code_back_off_then_close_pairing(tmp_path: Path) -> None:
    tv = start_tv(tmp_path, env={"TVAPP_TV_PAIRING_BACKOFF_MAX": "0.2"})
    loop = Loop()
    try:
        url = tv.remote_url()
        started = loop.run(request_pairing(url, "Mallory"))
        _, sidecar = tv.wait_for(lambda s: s["pairing"] is not None, timeout=20, what="the pairing code")
        first = sidecar["pairing"]["code"].replace(" ", "")
        wrong = "000000" if first != "000000" else "111111"
        rotated = False
        for attempt in range(3):
            with pytest.raises(PairingError) as refused:
                loop.run(confirm_pairing(url, started.pairing_id, code=wrong))
            assert refused.value.code in ("wrong_code", "too_soon")
            if refused.value.code == "wrong_code":
                rotated = refused.value.rotated
            time.sleep(0.25)
        assert rotated, "three wrong codes must change the code"
        tv.wait_for(lambda s: s["pairing"] is not None and s["pairing"]["code"].replace(" ", "") != first,
                    timeout=10, what="a new code on screen")
        with pytest.raises(PairingError) as soon:  # right after a failure: wait first
            loop.run(confirm_pairing(url, started.pairing_id, code=wrong))
            loop.run(confirm_pairing(url, started.pairing_id, code=wrong))
        assert soon.value.code in ("too_soon", "wrong_code")
        codes = []
        for _ in range(40):
            time.sleep(0.25)
            try:
                loop.run(confirm_pairing(url, started.pairing_id, code=wrong))
            except PairingError as exc:
                codes.append(exc.code)
                if exc.code == "pairing_closed":
                    break
        assert codes[-1] == "pairing_closed", codes
        assert _get(url, "/v1/tv")["pairing_open"] is False
        with pytest.raises(PairingError) as closed:
            loop.run(request_pairing(url, "Ann"))
        assert closed.value.code == "pairing_closed"
        tv.wait_for(lambda s: s["pairing"] is None, timeout=10, what="no code on screen while closed")
        # The TV reopens it (its key press, or the local admin call that `tvapp` uses on the TV box).
        _request(url, "POST", "/v1/admin/pairing/reopen")
        assert _get(url, "/v1/tv")["pairing_open"] is True
        pair(tv, loop, "Ann")
    finally:
        loop.close()
        assert tv.stop() == 0, tv.output


def test_a_forgotten_phone_is_refused_and_foreign_hosts_and_origins_are_refused(tmp_path: Path) -> None:
    tv = start_tv(tmp_path, "--invite", "NOPE-NOPE")
    loop = Loop()
    try:
        url = tv.remote_url()
        ann = pair(tv, loop, "Ann")
        bob = pair(tv, loop, "Bob")
        link = loop.run(RemoteLink.connect(url, ann.credential))
        listed = loop.run(link.command(rp.ListDevices()))
        assert listed.devices is not None and {d.name for d in listed.devices} == {"Ann", "Bob"}
        bob_link = loop.run(RemoteLink.connect(url, bob.credential))
        ok(loop.run(link.command(rp.ForgetDevice(device_id=bob.device_id))))
        deadline = time.monotonic() + 10
        while not bob_link.closed and time.monotonic() < deadline:
            loop.run(asyncio.sleep(0.05))
        assert bob_link.closed, "the forgotten phone's open connection must be closed"
        with pytest.raises(RemoteLinkError) as refused:
            loop.run(RemoteLink.connect(url, bob.credential))
        assert refused.value.code == "auth_failed"
        ok(loop.run(link.command(rp.StatusCommand())))

        # DNS rebinding: a name the TV does not answer to; cross-site: another origin.
        status, body = _request(url, "GET", "/v1/tv", headers={"Host": "evil.example"})
        assert status == 400 and body["error"]["code"] == "bad_host"
        status, body = _request(url, "POST", "/v1/pairings", {"name": "x"},
                                headers={"Origin": "http://evil.example"})
        assert status == 403 and body["error"]["code"] == "bad_origin"
        with pytest.raises(RemoteLinkError):
            loop.run(_ws_with_origin(url, "http://evil.example"))
        loop.run(link.close())
        loop.run(bob_link.close())
    finally:
        loop.close()
        assert tv.stop() == 0, tv.output


async def _ws_with_origin(url: str, origin: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    try:
        async with connect(url.replace("http", "ws", 1) + "/v1/remote", origin=origin) as ws:  # type: ignore[arg-type]
            await ws.recv()
    except InvalidStatus as exc:
        raise RemoteLinkError("refused", str(exc.response.status_code)) from None
    except Exception as exc:  # closed before accept
        raise RemoteLinkError("refused", str(exc)) from None


def _request(url: str, method: str, path: str, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _get(url: str, path: str) -> dict[str, Any]:
    status, body = _request(url, "GET", path)
    assert status == 200, body
    return body



def test_a_tv_that_joined_as_a_guest_cannot_remove_or_mute_anyone(media_server: Any, tmp_path: Path) -> None:
    room = "guest-tv-room"
    assert media_server.http.post("/v1/rooms", json={"name": room}).status_code == 201
    code = media_server.http.post(f"/v1/rooms/{room}/invites", json={}).json()["code"]
    carol = BotProcess(tmp_path, "carol", ["--server", media_server.url, "--invite", code, "--identity", "carol",
                                           "--name", "Carol", "--video", "pattern:320x240@15", "--audio", "tone:440"])
    tv = TvProcess(tmp_path, ["--server", media_server.url, "--invite", code, "--name", "Den TV", "--data",
                              str(tmp_path / "data"), "--no-audio"], size="1280x720")
    loop = Loop()
    try:
        tv.wait_for(lambda s: "carol" in tiles_by_identity(s), timeout=60, what="Carol's tile")
        answer = pair(tv, loop)
        link = loop.run(RemoteLink.connect(tv.remote_url(), answer.credential))
        for command in (rp.RemoveParticipant(identity="carol"), rp.MuteParticipant(identity="carol")):
            result = loop.run(link.command(command))
            assert result.error is not None and result.error.code == "not_host", result
        result = loop.run(link.command(rp.CreateRoom(name="mine")))  # no API key for that core: it cannot
        assert result.error is not None and result.error.code == "cannot_create", result
        _, sidecar = tv.wait_for(lambda s: "carol" in tiles_by_identity(s), timeout=10, what="Carol still there")
        assert tiles_by_identity(sidecar)["carol"]["mic_muted"] is False
        assert carol.proc.poll() is None
        loop.run(link.close())
    finally:
        carol.stop()
        loop.close()
        assert tv.stop() == 0, tv.output


def test_with_tls_the_tv_serves_https_with_a_self_signed_certificate_and_the_phone_pins_it(tmp_path: Path) -> None:
    tv = start_tv(tmp_path, env={"TVAPP_TV_TLS": "true"})
    loop = Loop()
    try:
        url = tv.remote_url()
        assert url.startswith("https://127.0.0.1:")
        cert = (tmp_path / "data" / "tv-tls" / "tv-cert.pem")
        assert cert.exists() and (tmp_path / "data" / "tv-tls" / "tv-key.pem").stat().st_mode & 0o077 == 0
        seen = loop.run(tv_info(url)).fingerprint
        assert seen and seen.startswith("sha256:")
        started = loop.run(request_pairing(url, "Phone", seen))
        _, sidecar = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code")
        answer = loop.run(confirm_pairing(url, started.pairing_id, code=sidecar["pairing"]["code"].replace(" ", ""),
                                          fingerprint=seen))
        link = loop.run(RemoteLink.connect(url, answer.credential, fingerprint=seen))
        ok(loop.run(link.command(rp.SetVolume(volume=0.25))))
        assert link.state is not None and link.state.volume == 0.25
        loop.run(link.close())
        with pytest.raises(RemoteLinkError):
            loop.run(RemoteLink.connect(url, answer.credential, fingerprint="sha256:" + ":".join(["00"] * 32)))
    finally:
        loop.close()
        assert tv.stop() == 0, tv.output


def test_the_remote_page_in_chromium_pairs_with_the_code_on_screen_and_changes_the_layout(
        browser: Any, tmp_path: Path) -> None:
    from tvapp.testing.browser import wait_for_js

    tv = start_tv(tmp_path)
    try:
        tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60, what="the default room")
        page = browser.new_page()
        page.goto(tv.remote_url() + "/remote", wait_until="load")
        wait_for_js(page, "() => window.tvappRemote && window.tvappRemote.state", lambda s: s == "pairing",
                    what="the pairing screen")
        page.fill("#pair-name", "Ann's phone")
        page.click("#pair-request")
        _, sidecar = tv.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code on screen")
        page.fill("#pair-code", sidecar["pairing"]["code"].replace(" ", ""))
        page.click("#pair-confirm")
        wait_for_js(page, "() => window.tvappRemote.state", lambda s: s == "ready", what="the page paired")
        wait_for_js(page, "() => window.tvappRemote.lastState && window.tvappRemote.lastState.room",
                    lambda room: room == "living-room", what="the TV's room on the page")
        page.click("#layout-speaker")
        tv.wait_for(lambda s: s["mode"] == "speaker", timeout=10, what="the speaker layout chosen on the phone")
        wait_for_js(page, "() => document.querySelector('#layout-speaker').getAttribute('aria-pressed')",
                    lambda pressed: pressed == "true", what="the Speaker button pressed")
        page.close()
    finally:
        assert tv.stop() == 0, tv.output
