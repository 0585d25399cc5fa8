"""The TV's endpoints for phones, served by a real uvicorn on 127.0.0.1 and driven by real HTTP and websocket clients.

The controller is a small recording stand-in for the TV (the real TV is wired and tested end to end elsewhere);
the device store is a real SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from tvapp.core.pairing import PairingConfig
from tvapp.protocol.remote_messages import (
    Command,
    MuteParticipant,
    ParticipantState,
    RemoveParticipant,
    SetLayout,
    SetVolume,
    State,
)
from tvapp.testing.clocks import FakeClock
from tvapp.testing.phone import Phone
from tvapp.testing.uvicorn_thread import ThreadedServer
from tvapp.testing.waiting import wait_until
from tvapp.tv.remote.devices import DeviceStore
from tvapp.tv.remote.controller import CommandRefused, PairingView
from tvapp.tv.remote.endpoints import RemoteEndpoints
from tvapp.web.tls import ensure_certificate, fingerprint


class RecordingController:
    """A TV that records commands and the pairing screens it was asked to show."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.finished: list[Command] = []
        self.views: list[PairingView | None] = []
        self.volume = 1.0
        self.participants: tuple[ParticipantState, ...] = ()
        self.endpoints: RemoteEndpoints | None = None
        self.changed = threading.Condition()

    def tv_state(self) -> State:
        assert self.endpoints is not None
        return State(tv_name="Living room", status="idle", volume=self.volume, layout="grid",
                     participants=self.participants, pairing_open=self.endpoints.pairing_open())

    async def execute(self, command: Command) -> None:
        self.commands.append(command)
        if isinstance(command, SetVolume):
            self.volume = command.volume
        elif isinstance(command, RemoveParticipant):
            raise CommandRefused("not_host", "only the host can remove participants")
        elif isinstance(command, MuteParticipant):
            raise RuntimeError("the mixer fell over")
        elif isinstance(command, SetLayout):
            await asyncio.sleep(0.5)
            self.finished.append(command)

    def show_pairing(self, view: PairingView | None) -> None:
        with self.changed:
            self.views.append(view)
            self.changed.notify_all()

    def wait_view(self, predicate: Callable[[PairingView | None], bool], timeout: float = 5.0) -> PairingView | None:
        """Wait until the newest pairing screen satisfies `predicate`; return it."""
        with self.changed:
            assert self.changed.wait_for(lambda: bool(self.views) and predicate(self.views[-1]), timeout), self.views
            return self.views[-1]


@dataclasses.dataclass
class Tv:
    endpoints: RemoteEndpoints
    controller: RecordingController
    devices: DeviceStore
    url: str
    ws_url: str
    port: int
    sockets: contextlib.ExitStack

    def http(self, local_address: str | None = None, **kwargs: Any) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        return httpx.Client(base_url=self.url, transport=transport, timeout=10.0, **kwargs)

    def pair(self, name: str = "phone") -> tuple[str, str]:
        """Pair a phone with the code on screen; return (device_id, credential)."""
        with self.http() as client:
            started = client.post("/v1/pairings", json={"name": name})
            assert started.status_code == 201, started.text
            pairing_id = started.json()["pairing_id"]
            view = self.controller.wait_view(lambda v: v is not None and pairing_id in v.url)
            assert view is not None
            paired = client.post(f"/v1/pairings/{pairing_id}/confirm", json={"code": view.code})
            assert paired.status_code == 201, paired.text
            return paired.json()["device_id"], paired.json()["credential"]


def serve(app: Any, ssl_files: tuple[Path, Path] | None = None) -> Iterator[int]:
    """Run `app` with uvicorn on an ephemeral 127.0.0.1 port in a thread of its own; yield the port."""
    options: dict[str, Any] = {}
    if ssl_files is not None:
        options = {"ssl_certfile": str(ssl_files[0]), "ssl_keyfile": str(ssl_files[1])}
    with ThreadedServer(app, ws="websockets-sansio", lifespan="on", **options) as running:
        yield running.port


@pytest.fixture
def make_tv(tmp_path: Path) -> Iterator[Callable[..., Tv]]:
    """Start TVs (endpoints + uvicorn) with the given RemoteEndpoints options; all stop after the test."""
    stops: list[Callable[[], None]] = []

    def make(**options: Any) -> Tv:
        controller = RecordingController()
        devices = DeviceStore(tmp_path / f"tv{len(stops)}.sqlite3")
        endpoints = RemoteEndpoints(controller=controller, devices=devices, tv_name="Living room",
                                    instance_id="abc123", base_url="http://127.0.0.1:7881", **options)
        controller.endpoints = endpoints
        running = serve(endpoints.app)
        port = next(running)

        def stop() -> None:
            next(running, None)
            devices.close()

        stops.append(stop)
        sockets = contextlib.ExitStack()
        stops.append(sockets.close)
        return Tv(endpoints, controller, devices, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/remote",
                  port, sockets)

    yield make
    for stop in reversed(stops):
        stop()


@pytest.fixture
def tv(make_tv: Callable[..., Tv]) -> Tv:
    return make_tv()


def pairing_fragment(url: str) -> tuple[str, str]:
    fragment = url.split("#", 1)[1]
    pair = dict(part.split("=", 1) for part in fragment.split("&"))["pair"]
    pairing_id, secret = pair.split(".")
    return pairing_id, secret


# --- pairing ----------------------------------------------------------------------------------------------------


def test_pair_with_the_code_then_drive_the_tv(tv: Tv) -> None:
    with tv.http() as client:
        started = client.post("/v1/pairings", json={"name": "Ann's phone"})
        assert started.status_code == 201
        body = started.json()
        assert set(body) == {"pairing_id", "expires_at", "code_digits"} and body["code_digits"] == 6
        view = tv.controller.wait_view(lambda v: v is not None)
        assert view is not None and view.requester_name == "Ann's phone" and len(view.code) == 6
        assert view.url.startswith("http://127.0.0.1:7881/remote#pair=" + body["pairing_id"] + ".")
        assert "fp=" not in view.url and view.expires_at == body["expires_at"]
        assert view.code not in started.text
        paired = client.post(f"/v1/pairings/{body['pairing_id']}/confirm", json={"code": view.code})
        assert paired.status_code == 201
        answer = paired.json()
        assert answer["credential"].startswith("tvd_") and answer["tv_name"] == "Living room"
        assert tv.controller.wait_view(lambda v: v is None) is None
        listed = client.get("/v1/admin/devices").json()["devices"]
        assert [(d["device_id"], d["name"]) for d in listed] == [(answer["device_id"], "Ann's phone")]
        again = client.post(f"/v1/pairings/{body['pairing_id']}/confirm", json={"code": view.code})
        assert again.status_code == 404 and again.json()["error"]["code"] == "no_pairing"

    phone = Phone.connect(tv)
    phone.send({"type": "auth", "credential": answer["credential"]})
    assert phone.recv() == {"type": "authed", "v": 1, "device_id": answer["device_id"], "tv_name": "Living room"}
    state = phone.recv()
    assert state["type"] == "state" and state["volume"] == 1.0 and state["pairing_open"] is True
    phone.send({"type": "set_volume", "volume": 0.25, "id": "c1"})
    assert phone.recv()["volume"] == 0.25
    assert phone.recv() == {"type": "ok", "v": 1, "id": "c1"}
    assert tv.controller.commands == [SetVolume(id="c1", volume=0.25)]
    phone.close()


def test_pair_with_the_qr_secret(make_tv: Callable[..., Tv]) -> None:
    clock = FakeClock()
    tv = make_tv(clock=clock)
    with tv.http() as client:
        started = client.post("/v1/pairings", json={})
        assert started.status_code == 201
        view = tv.controller.wait_view(lambda v: v is not None)
        assert view is not None
        pairing_id, secret = pairing_fragment(view.url)
        assert pairing_id == started.json()["pairing_id"] and secret not in started.text
        wrong = client.post(f"/v1/pairings/{pairing_id}/confirm", json={"secret": secret[:-1] + "x"})
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "wrong_code"
        assert secret not in wrong.text
        clock.advance(1.0)  # the backoff after one failure
        paired = client.post(f"/v1/pairings/{pairing_id}/confirm", json={"secret": secret, "name": "Kitchen"})
        assert paired.status_code == 201, paired.text
        credential = paired.json()["credential"]
        assert [d["name"] for d in client.get("/v1/admin/devices").json()["devices"]] == ["Kitchen"]
    phone = Phone.connect(tv, credential)
    phone.send({"type": "status", "id": "s"})
    assert phone.recv()["type"] == "state"
    assert phone.recv() == {"type": "ok", "v": 1, "id": "s"}
    phone.close()


def test_no_code_secret_or_credential_reaches_a_log(make_tv: Callable[..., Tv], caplog: pytest.LogCaptureFixture
                                                    ) -> None:
    clock = FakeClock()
    tv = make_tv(clock=clock)
    caplog.set_level(logging.DEBUG)
    secrets_seen: list[str] = []
    with tv.http() as client:
        pairing_id = client.post("/v1/pairings", json={"name": "Ann"}).json()["pairing_id"]
        view = tv.controller.wait_view(lambda v: v is not None)
        assert view is not None
        secrets_seen += [view.code, pairing_fragment(view.url)[1]]
        client.post(f"/v1/pairings/{pairing_id}/confirm", json={"code": "000000" if view.code != "000000"
                                                                else "111111"})
        clock.advance(1.05)  # the backoff after one failure
        paired = client.post(f"/v1/pairings/{pairing_id}/confirm", json={"code": view.code})
        credential = paired.json()["credential"]
    secrets_seen.append(credential)
    phone = Phone.connect(tv, credential)
    phone.send({"type": "mute_participant", "identity": "bob", "id": "boom"})  # logs a traceback
    assert phone.recv()["code"] == "internal"
    phone.close()
    logged = "\n".join(record.getMessage() + (caplog.text if record.exc_info else "") for record in caplog.records)
    assert "remote command mute_participant failed" in logged
    for secret in secrets_seen:
        assert secret not in logged and secret not in caplog.text


def test_the_qr_url_carries_the_fingerprint_with_tls(make_tv: Callable[..., Tv]) -> None:
    tv = make_tv(fingerprint="sha256:AB:CD")
    with tv.http() as client:
        assert client.post("/v1/pairings").status_code == 201
        info = client.get("/v1/tv").json()
    view = tv.controller.wait_view(lambda v: v is not None)
    assert view is not None and view.url.endswith("&fp=sha256:AB:CD")
    assert info == {"tv_name": "Living room", "instance_id": "abc123", "tv_id": tv.endpoints.devices.tv_id(),
                    "proto": 1, "tls": True, "fingerprint": "sha256:AB:CD", "pairing_open": True}


def test_one_pairing_at_a_time(tv: Tv) -> None:
    with tv.http() as ann, tv.http(local_address="127.0.0.2") as bob:
        first = ann.post("/v1/pairings", json={"name": "Ann"})
        assert first.status_code == 201
        busy = bob.post("/v1/pairings", json={"name": "Bob"})
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "pairing_busy" and 0 < busy.json()["retry_after"] <= 120
        same = ann.post("/v1/pairings", json={"name": "Ann"})
        assert same.status_code == 201 and same.json()["pairing_id"] == first.json()["pairing_id"]
    view = tv.controller.wait_view(lambda v: v is not None)
    assert view is not None and view.requester_name == "Ann"


def test_wrong_codes_back_off_and_rotate_the_code(make_tv: Callable[..., Tv]) -> None:
    clock = FakeClock()
    tv = make_tv(clock=clock)
    with tv.http() as client:
        pairing_id = client.post("/v1/pairings").json()["pairing_id"]
        first = tv.controller.wait_view(lambda v: v is not None)
        assert first is not None
        wrong_code = "000000" if first.code != "000000" else "111111"
        confirm = f"/v1/pairings/{pairing_id}/confirm"
        answer = client.post(confirm, json={"code": wrong_code})
        assert answer.status_code == 400 and answer.json()["rotated"] is False
        too_soon = client.post(confirm, json={"code": first.code})
        assert too_soon.status_code == 429 and too_soon.json()["error"]["code"] == "too_soon"
        assert too_soon.headers["Retry-After"] == "1" and too_soon.json()["retry_after"] == pytest.approx(1.0)
        clock.advance(1.0)
        assert client.post(confirm, json={"code": wrong_code}).json()["rotated"] is False
        clock.advance(2.0)
        shown_before = len(tv.controller.views)
        rotated = client.post(confirm, json={"code": wrong_code})
        assert rotated.status_code == 400 and rotated.json()["rotated"] is True
        assert first.code not in rotated.text
        second = tv.controller.wait_view(lambda v: v is not None and v.expires_at > first.expires_at)
        assert second is not None and len(tv.controller.views) == shown_before + 1
        assert pairing_fragment(second.url)[0] == pairing_id
        clock.advance(4.0)
        if second.code != first.code:
            stale = client.post(confirm, json={"code": first.code})
            assert stale.status_code == 400
            clock.advance(8.0)
        paired = client.post(confirm, json={"code": second.code})
        assert paired.status_code == 201, paired.text


def test_twenty_failures_close_pairing_until_reopened(make_tv: Callable[..., Tv]) -> None:
    clock = FakeClock()
    tv = make_tv(clock=clock, pairing_config=PairingConfig(backoff_base=0.0))
    with tv.http() as client:
        pairing_id = client.post("/v1/pairings").json()["pairing_id"]
        confirm = f"/v1/pairings/{pairing_id}/confirm"
        for attempt in range(19):
            view = tv.controller.views[-1]
            assert view is not None
            wrong = "000000" if view.code != "000000" else "111111"
            answer = client.post(confirm, json={"code": wrong})
            assert answer.status_code == 400, (attempt, answer.text)
        view = tv.controller.views[-1]
        assert view is not None
        closed = client.post(confirm, json={"code": "000000" if view.code != "000000" else "111111"})
        assert closed.status_code == 403 and closed.json()["error"]["code"] == "pairing_closed"
        assert tv.controller.views[-1] is None
        assert tv.endpoints.pairing_open() is False
        assert client.get("/v1/tv").json()["pairing_open"] is False
        refused = client.post("/v1/pairings")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "pairing_closed"
        assert client.post(confirm, json={"code": view.code}).status_code == 403

        tv.endpoints.reopen_pairing()  # from this thread, as the TV's key handler would
        wait_until(tv.endpoints.pairing_open, 5, "pairing to reopen")
        assert client.post("/v1/pairings").status_code == 201


def test_reopen_from_the_admin_endpoint_and_the_lock_lifts_by_itself(make_tv: Callable[..., Tv]) -> None:
    tv = make_tv(pairing_config=PairingConfig(backoff_base=0.0, max_failures=2, closed_for=0.6))
    device, credential = tv.pair()
    phone = Phone.connect(tv, credential)
    with tv.http() as client:
        pairing_id = client.post("/v1/pairings").json()["pairing_id"]
        for _ in range(2):
            view = tv.controller.views[-1]
            assert view is not None
            client.post(f"/v1/pairings/{pairing_id}/confirm", json={"code": "000000" if view.code != "000000"
                                                                    else "111111"})
        assert tv.endpoints.pairing_open() is False
        assert phone.recv()["pairing_open"] is False  # the remotes hear that pairing closed
        assert phone.recv(3.0)["pairing_open"] is True  # and that it opened again when the lock ran out
        # lock it again, then reopen it from the TV's admin endpoint
        pairing_id = client.post("/v1/pairings").json()["pairing_id"]
        for _ in range(2):
            client.post(f"/v1/pairings/{pairing_id}/confirm", json={"code": "x"})
        assert phone.recv()["pairing_open"] is False
        assert client.post("/v1/admin/pairing/reopen").status_code == 204
        assert phone.recv()["pairing_open"] is True
        assert tv.endpoints.pairing_open() is True
    phone.close()


def test_the_code_leaves_the_screen_when_it_expires(make_tv: Callable[..., Tv]) -> None:
    tv = make_tv(pairing_config=PairingConfig(code_ttl=0.4))
    with tv.http() as client:
        pairing_id = client.post("/v1/pairings").json()["pairing_id"]
        view = tv.controller.wait_view(lambda v: v is not None)
        assert view is not None
        started = time.monotonic()
        assert tv.controller.wait_view(lambda v: v is None, timeout=3.0) is None
        assert 0.2 < time.monotonic() - started < 1.5
        late = client.post(f"/v1/pairings/{pairing_id}/confirm", json={"code": view.code})
        assert late.status_code == 410 and late.json()["error"]["code"] == "pairing_expired"


def test_malformed_pairing_bodies(tv: Tv) -> None:
    with tv.http() as client:
        assert client.post("/v1/pairings", json={"name": "x" * 65}).status_code == 422
        assert client.post("/v1/pairings", json={"name": "a\nb"}).status_code == 422
        assert client.post("/v1/pairings", content=b"[1]").status_code == 422
        pairing_id = client.post("/v1/pairings").json()["pairing_id"]
        confirm = f"/v1/pairings/{pairing_id}/confirm"
        for body in (b"", b"{", b"{}", b'{"code": 123456}', b'{"code": "1", "secret": "2"}',
                     json.dumps({"code": "1" * 5000}).encode()):
            answer = client.post(confirm, content=body)
            assert answer.status_code in (413, 422), body
            assert answer.json()["error"]["code"] in ("bad_request", "body_too_large")
        missing = client.post("/v1/pairings/nope/confirm", json={"code": "123456"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_pairing"
        assert client.get("/v1/nothing").json()["error"]["code"] == "not_found"
        assert client.put("/v1/tv").json()["error"]["code"] == "method_not_allowed"


# --- the remote websocket -----------------------------------------------------------------------------------------


def test_a_revoked_credential_is_refused(tv: Tv) -> None:
    device, credential = tv.pair()
    with tv.http() as client:
        assert client.delete(f"/v1/admin/devices/{device}").status_code == 204
        again = client.delete(f"/v1/admin/devices/{device}")
        assert again.status_code == 404 and again.json()["error"]["code"] == "device_not_found"
        assert client.get("/v1/admin/devices").json() == {"devices": []}
    phone = Phone.connect(tv)
    phone.send({"type": "auth", "credential": credential})
    seen, code = phone.closed_with()
    assert [m["code"] for m in seen] == ["auth_failed"] and code == 1008


def test_forget_device_closes_the_other_phone(tv: Tv) -> None:
    ann, ann_credential = tv.pair("Ann")
    bob, bob_credential = tv.pair("Bob")
    ann_phone, bob_phone = Phone.connect(tv, ann_credential), Phone.connect(tv, bob_credential)
    ann_phone.send({"type": "list_devices", "id": "l"})
    listed = ann_phone.recv()
    assert listed["type"] == "devices" and [d["device_id"] for d in listed["devices"]] == [ann, bob]
    assert ann_phone.recv() == {"type": "ok", "v": 1, "id": "l"}
    ann_phone.send({"type": "forget_device", "device_id": bob, "id": "f"})
    assert ann_phone.recv() == {"type": "ok", "v": 1, "id": "f"}
    seen, code = bob_phone.closed_with()
    assert [m["code"] for m in seen] == ["device_forgotten"] and code == 1008
    ann_phone.send({"type": "forget_device", "device_id": bob, "id": "g"})
    assert ann_phone.recv()["code"] == "device_not_found"
    ann_phone.send({"type": "forget_device", "device_id": ann, "id": "me"})
    seen, code = ann_phone.closed_with()
    assert [m["type"] for m in seen] == ["ok", "error"] and seen[1]["code"] == "device_forgotten" and code == 1008
    assert tv.devices.list() == []


def test_forgetting_from_the_admin_endpoint_closes_the_phone(tv: Tv) -> None:
    device, credential = tv.pair()
    phone = Phone.connect(tv, credential)
    with tv.http() as client:
        assert client.delete(f"/v1/admin/devices/{device}").status_code == 204
    seen, code = phone.closed_with()
    assert [m["code"] for m in seen] == ["device_forgotten"] and code == 1008


def test_a_phone_forgotten_during_its_command_is_closed_and_the_command_still_ends(
    tv: Tv, caplog: pytest.LogCaptureFixture
) -> None:
    device, credential = tv.pair()
    phone = Phone.connect(tv, credential)
    phone.send({"type": "set_layout", "layout": "speaker", "id": "slow"})
    wait_until(lambda: tv.controller.commands, 5, "the slow command to start")
    with tv.http() as client:
        assert client.delete(f"/v1/admin/devices/{device}").status_code == 204
    seen, code = phone.closed_with()
    assert [m.get("code") for m in seen] == ["device_forgotten"] and code == 1008
    wait_until(lambda: tv.controller.finished, 5, "the slow command to finish")
    assert tv.controller.finished == [SetLayout(id="slow", layout="speaker")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_command_ends_even_when_its_phone_hangs_up(tv: Tv) -> None:
    _, credential = tv.pair()
    phone = Phone.connect(tv, credential)
    phone.send({"type": "set_layout", "layout": "watch", "id": "bye"})
    wait_until(lambda: tv.controller.commands, 5, "the command to start")
    phone.close()
    wait_until(lambda: tv.controller.finished, 5, "the command to finish")
    assert tv.controller.finished == [SetLayout(id="bye", layout="watch")]


def test_invalid_and_refused_commands_keep_the_connection(tv: Tv) -> None:
    _, credential = tv.pair()
    phone = Phone.connect(tv, credential)
    phone.send({"type": "set_volume", "volume": 2, "id": "a"})
    invalid = phone.recv()
    assert (invalid["type"], invalid["id"], invalid["code"]) == ("error", "a", "invalid_value")
    phone.send({"type": "teleport", "id": "b"})
    assert phone.recv()["code"] == "unknown_command"
    phone.ws.send("not json")
    assert phone.recv()["code"] == "bad_message"
    phone.send({"type": "auth", "credential": credential})
    assert phone.recv()["code"] == "already_authenticated"
    phone.send({"type": "remove_participant", "identity": "bob", "id": "c"})
    assert phone.recv() == {"type": "error", "v": 1, "id": "c", "code": "not_host",
                            "message": "only the host can remove participants"}
    phone.send({"type": "mute_participant", "identity": "bob", "id": "d"})
    assert phone.recv() == {"type": "error", "v": 1, "id": "d", "code": "internal",
                            "message": "the TV could not do that"}
    phone.send({"type": "set_volume", "volume": 0.5, "id": "e"})
    assert phone.recv()["type"] == "state"
    assert phone.recv() == {"type": "ok", "v": 1, "id": "e"}
    phone.close()


def test_commands_before_auth_and_auth_timeout(make_tv: Callable[..., Tv]) -> None:
    tv = make_tv(auth_timeout=0.5)
    phone = Phone.connect(tv)
    phone.send({"type": "status", "id": "early"})
    assert phone.recv() == {"type": "error", "v": 1, "id": "early", "code": "not_authenticated",
                            "message": "send auth with the device credential first"}
    seen, code = phone.closed_with()
    assert [m["code"] for m in seen] == ["auth_timeout"] and code == 1008
    garbage = Phone.connect(tv)
    garbage.send({"type": "auth", "credential": "tvd_" + "A" * 43})
    seen, code = garbage.closed_with()
    assert [m["code"] for m in seen] == ["auth_failed"] and code == 1008


def test_state_is_pushed_once_per_change_to_every_remote(tv: Tv) -> None:
    _, ann_credential = tv.pair("Ann")
    _, bob_credential = tv.pair("Bob")
    ann, bob = Phone.connect(tv, ann_credential), Phone.connect(tv, bob_credential)
    tv.endpoints.push_state()  # nothing changed: nothing sent
    tv.endpoints.push_state()
    tv.controller.volume = 0.75
    tv.endpoints.push_state()
    for phone in (ann, bob):
        assert phone.recv()["volume"] == 0.75
    ann.send({"type": "set_volume", "volume": 0.75, "id": "same"})  # no change: ok only
    assert ann.recv() == {"type": "ok", "v": 1, "id": "same"}
    bob.send({"type": "set_volume", "volume": 0.1, "id": "x"})
    assert bob.recv()["volume"] == 0.1 and bob.recv()["type"] == "ok"
    assert ann.recv()["volume"] == 0.1
    ann.close()
    bob.close()


def authed_links(tv: Tv) -> int:
    return tv.endpoints.hub.authenticated_count()


def test_a_phone_that_stops_reading_is_dropped_and_others_go_on(tv: Tv) -> None:
    _, credential = tv.pair()
    reader = Phone.connect(tv, credential)
    stuck = socket.create_connection(("127.0.0.1", tv.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"GET /v1/remote HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert stuck.recv(4096).startswith(b"HTTP/1.1 101")
    auth = json.dumps({"type": "auth", "v": 1, "credential": credential}).encode()
    assert len(auth) < 126
    stuck.sendall(bytes([0x81, 0x80 | len(auth)]) + b"\x00\x00\x00\x00" + auth)  # a zero mask leaves it as is
    wait_until(lambda: authed_links(tv) >= 2, 5, "both phones to be authenticated")
    # ~12 KB states: the stuck phone's socket buffers fill, then its queue; the reading phone gets every one
    tv.controller.participants = tuple(
        ParticipantState(sid=f"PA_{n}", identity=f"guest{n}", name="x" * 100) for n in range(60))
    for i in range(600):
        tv.controller.volume = i / 1000
        tv.endpoints.push_state()
        assert reader.recv()["volume"] == i / 1000
        if authed_links(tv) == 1:
            break
    assert authed_links(tv) == 1, "the phone that does not read was never dropped"
    reader.send({"type": "status", "id": "still"})
    assert reader.recv()["type"] == "state" and reader.recv()["type"] == "ok"
    stuck.close()
    reader.close()


def test_close_says_goodbye_to_every_phone(tv: Tv) -> None:
    _, credential = tv.pair()
    phones = [Phone.connect(tv, credential), Phone.connect(tv, credential)]
    loop = tv.endpoints.loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(tv.endpoints.close(), loop).result(10)
    for phone in phones:
        seen, code = phone.closed_with()
        assert [m["code"] for m in seen] == ["tv_shutting_down"] and code == 1001


# --- Host, Origin and admin checks ------------------------------------------------------------------------------


def test_foreign_host_and_origin_are_refused_over_http(tv: Tv) -> None:
    with tv.http() as client:
        for method, path in (("GET", "/v1/tv"), ("POST", "/v1/pairings"), ("GET", "/remote"),
                             ("GET", "/v1/admin/devices")):
            host = client.request(method, path, headers={"Host": "evil.example"})
            assert host.status_code == 400 and host.json()["error"]["code"] == "bad_host", path
            origin = client.request(method, path, headers={"Origin": "http://evil.example"})
            assert origin.status_code == 403 and origin.json()["error"]["code"] == "bad_origin", path
        assert client.get("/v1/tv", headers={"Host": "localhost"}).status_code == 200
        same = client.get("/v1/tv", headers={"Origin": tv.url})
        assert same.status_code == 200
        assert tv.controller.views == []  # the refused POSTs started no pairing


@pytest.mark.parametrize("headers", [b"Host: 127.0.0.1\r\nHost: evil.example\r\n",
                                     b"Host: evil.example\r\nHost: 127.0.0.1\r\n",
                                     b"Host: 127.0.0.1\r\nOrigin: {own}\r\nOrigin: http://evil.example\r\n",
                                     b"Host: 127.0.0.1\r\nOrigin: http://evil.example\r\nOrigin: {own}\r\n"])
def test_a_repeated_host_or_origin_is_refused_like_on_the_core(tv: Tv, headers: bytes) -> None:
    sent = headers.replace(b"{own}", tv.url.encode())
    with socket.create_connection(("127.0.0.1", tv.port), timeout=5) as sock:
        sock.sendall(b"GET /v1/tv HTTP/1.1\r\n" + sent + b"Connection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    expected = (b"HTTP/1.1 403", "bad_origin") if b"Origin" in headers else (b"HTTP/1.1 400", "bad_host")
    assert head.startswith(expected[0]) and json.loads(body)["error"]["code"] == expected[1], reply


def test_foreign_host_and_origin_are_refused_on_the_websocket(tv: Tv) -> None:
    _, credential = tv.pair()
    sock = socket.create_connection(("127.0.0.1", tv.port))
    with pytest.raises(InvalidStatus) as refused_host:
        connect(f"ws://evil.example:{tv.port}/v1/remote", sock=sock, open_timeout=5)
    assert refused_host.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused_origin:
        connect(tv.ws_url, origin=Origin("http://evil.example"), open_timeout=5)
    assert refused_origin.value.response.status_code == 403
    same_origin = connect(tv.ws_url, origin=Origin(tv.url), open_timeout=5)
    phone = Phone(tv.sockets.enter_context(same_origin))
    phone.send({"type": "auth", "credential": credential})
    assert phone.recv()["type"] == "authed"
    phone.close()


def test_admin_refuses_browsers(tv: Tv) -> None:
    device, _ = tv.pair()
    with tv.http() as client:
        for method, path in (("GET", "/v1/admin/devices"), ("DELETE", f"/v1/admin/devices/{device}"),
                             ("POST", "/v1/admin/pairing/reopen")):
            answer = client.request(method, path, headers={"Origin": tv.url})
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "admin_local_only", path
    assert [d.device_id for d in tv.devices.list()] == [device]


# --- pages ------------------------------------------------------------------------------------------------------


def test_pages(tv: Tv) -> None:
    with tv.http() as client:
        root = client.get("/", follow_redirects=False)
        assert root.status_code == 307 and root.headers["location"] == "/remote"
        page = client.get("/remote")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for name in ("nothing.js", ".hidden", "..%2F..%2Fendpoints.py", "%2e%2e%2fendpoints.py", "..%2Fremote.html"):
            missing = client.get(f"/remote/assets/{name}")
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found", name


# --- TLS --------------------------------------------------------------------------------------------------------


def test_certificate_is_made_once_and_its_fingerprint_matches_the_file(tmp_path: Path) -> None:
    made = ensure_certificate(tmp_path / "tls", ["tv", "tv.local"], ["127.0.0.1"])
    again = ensure_certificate(tmp_path / "tls", ["other"], ["10.0.0.1"])
    assert again == made
    assert made.key_path.stat().st_mode & 0o777 == 0o600
    der = ssl.PEM_cert_to_DER_cert(made.cert_path.read_text())
    assert made.fingerprint == fingerprint(der)
    digest = hashlib.sha256(der).hexdigest().upper()
    assert made.fingerprint == "sha256:" + ":".join(digest[i:i + 2] for i in range(0, 64, 2))
    made.key_path.write_text("garbage")
    renewed = ensure_certificate(tmp_path / "tls", ["tv"], [])
    assert renewed.fingerprint != made.fingerprint


def test_served_over_https_with_a_pinned_fingerprint(tmp_path: Path) -> None:
    certificate = ensure_certificate(tmp_path / "tls", ["tv.local"], ["127.0.0.1"])
    store = DeviceStore(tmp_path / "tv.sqlite3")
    controller = RecordingController()
    endpoints = RemoteEndpoints(controller=controller, devices=store, tv_name="TV", instance_id="i",
                                base_url="https://127.0.0.1:7881", fingerprint=certificate.fingerprint)
    controller.endpoints = endpoints
    running = serve(endpoints.app, (certificate.cert_path, certificate.key_path))
    port = next(running)
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # no CA: the fingerprint is the trust
        with socket.create_connection(("127.0.0.1", port)) as raw, context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None and fingerprint(der) == certificate.fingerprint
            tls.sendall(f"GET /v1/tv HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
        head, body = response.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200")
        info = json.loads(body)
        assert info["tls"] is True and info["fingerprint"] == certificate.fingerprint
        with connect(f"wss://127.0.0.1:{port}/v1/remote", ssl=context, open_timeout=5) as ws:
            pinned = ws.socket.getpeercert(binary_form=True)  # type: ignore[attr-defined]
            assert pinned is not None and fingerprint(pinned) == certificate.fingerprint
            ws.send(json.dumps({"type": "auth", "v": 1, "credential": "tvd_" + "A" * 43}))
            assert json.loads(ws.recv(5))["code"] == "auth_failed"
    finally:
        next(running, None)
        store.close()
