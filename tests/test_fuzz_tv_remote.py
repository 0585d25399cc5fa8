"""Fuzzing what a stranger on the LAN can send to a real TV: the pairing HTTP bodies and the /v1/remote messages.

One `tvapp tv` (built-in core, hosting its room, pygame on SDL's dummy driver) serves its phone endpoints on
127.0.0.1. Hypothesis sends:

- POST /v1/pairings with any body (bytes, JSON of any shape, near-miss objects) and any Content-Type;
- POST /v1/pairings/{id}/confirm with any pairing id in the path (escaped) and any body, including code/secret
  of every type;
- /v1/remote websocket messages from a stranger (before auth): any text, JSON of any shape, phone-like objects
  with junk fields, binary frames;
- the same from a paired phone after auth (every command type with any fields, followed by a `status` whose answer
  proves the TV handled everything before it, in order).

Every example checks: each refusal is a JSON `{"error": {"code", "message"}}` (HTTP) or an `error` message with
both (websocket), never a 5xx, never an internal error code; the TV process is alive; nothing new in its log is a
traceback, an unhandled exception or an ERROR line. Each test ends with the TV still rendering (a new screenshot)
and answering /v1/tv. `make fuzz` runs them with TVAPP_FUZZ_EXAMPLES (tvapp.testing.fuzz.fuzz_settings).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from remote_samples import PHONE_SAMPLES, any_text, json_values
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tvapp.client.remote_link import confirm_pairing, request_pairing, websocket_url
from tvapp.protocol.remote_messages import encode
from tvapp.testing import fuzz
from tvapp.testing.fuzz import LoopThread, fuzz_settings
from tvapp.testing.logscan import problems
from tvapp.testing.tv import TvProcess

pytestmark = pytest.mark.timeout(0 if fuzz.scale() > 1 else 300)

INTERNAL_CODES = {"internal", "internal_error"}


class Tv:
    """The TV under fuzz, its endpoints' URL, a paired phone's credential, and where its log was last read."""

    def __init__(self, process: TvProcess, url: str, credential: str) -> None:
        self.process = process
        self.url = url
        self.credential = credential
        self.http = httpx.Client(base_url=url, timeout=10.0)
        self._read = 0

    def check(self) -> None:
        """Fail when the TV died or logged a problem since the last check."""
        assert self.process.proc.poll() is None, f"the TV died:\n{self.process.output}"
        text = self.process.output
        new, self._read = text[self._read:], len(text)
        found = problems(new.splitlines(keepends=True))
        assert not found, "\n".join(found)

    def still_rendering(self) -> None:
        """Fail unless the TV draws a new frame on request and answers /v1/tv."""
        before = self.process._seq
        _, sidecar = self.process.screenshot()
        assert sidecar["seq"] > before
        info = self.http.get("/v1/tv")
        assert info.status_code == 200, info.text
        self.check()


@pytest.fixture(scope="module")
def tv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tv]:
    workdir = tmp_path_factory.mktemp("fuzz-tv")
    process = TvProcess(workdir, ["--host", "127.0.0.1", "--port", "0", "--name", "Fuzz TV", "--data",
                                  str(workdir / "data"), "--no-audio"], size="640x360")
    loop = LoopThread()
    try:
        url = process.remote_url()
        process.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=60, what="its room")
        # Pair a phone the way a person does (the code read off the screen): the authenticated fuzz uses it.
        started = loop.run(request_pairing(url, "Fuzz phone"))
        _, sidecar = process.wait_for(lambda s: s["pairing"] is not None, timeout=10, what="the pairing code")
        paired = loop.run(confirm_pairing(url, started.pairing_id, code=sidecar["pairing"]["code"].replace(" ", "")))
        made = Tv(process, url, paired.credential)
        made.check()
        yield made
        made.still_rendering()
    finally:
        loop.close()
        status = process.stop()
    assert status == 0, process.output
    assert not problems(process.output.splitlines(keepends=True))


def assert_json_error(response: httpx.Response) -> dict[str, Any]:
    """Check a refusal: 4xx, JSON {"error": {"code", "message"}} with non-empty texts; return the error."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"] and error["code"] not in INTERNAL_CODES, error
    assert isinstance(error["message"], str) and error["message"], error
    return error  # type: ignore[no-any-return]


# --- strategies --------------------------------------------------------------------------------------------------

NAMES = st.text(max_size=80) | st.sampled_from(["", " ", "\x00", "a\nb", "\u202e", "é" * 300, "Ann's phone"])
PROOFS = (json_values | st.text(max_size=40) | st.sampled_from(["123456", "000000", "1" * 65, "", " 123456 "])
          | st.integers())


@st.composite
def pairing_bodies(draw: st.DrawFn, fields: tuple[str, ...]) -> bytes:
    """Return a request body: raw bytes, any JSON, or an object with the pairing fields holding anything."""
    kind = draw(st.sampled_from(["bytes", "json", "object", "object", "object"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200) | st.sampled_from([b"", b"{", b"\xff\xfe", b"null", b"[]", b"{}" * 3]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    body: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from([*fields, "extra", "__proto__"]), max_size=4)):
        body[name] = draw(NAMES | PROOFS)
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:
        text += " " * draw(st.integers(0, 70_000))  # around and over the body limit
    return text.encode()


CONTENT_TYPES = st.sampled_from([None, "application/json", "text/plain", "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                                 "application/json; charset=utf-16", "*/*"])
PAIRING_IDS = st.text(min_size=1, max_size=200) | st.sampled_from(["x", "..", "%00", "a" * 129, "a" * 128, "🙂"])


def post(tv: Tv, path: str, body: bytes, content_type: str | None) -> httpx.Response:
    headers = {"content-type": content_type} if content_type is not None else {}
    return tv.http.post(path, content=body, headers=headers)


# --- pairing over HTTP ---------------------------------------------------------------------------------------------


@fuzz_settings(300)
@given(body=pairing_bodies(("name",)), content_type=CONTENT_TYPES)
def test_pairing_request_bodies_are_answered_or_refused_in_json(tv: Tv, body: bytes, content_type: str | None) -> None:
    response = post(tv, "/v1/pairings", body, content_type)
    if response.status_code in (200, 201):
        assert set(response.json()) >= {"pairing_id", "expires_at"}
        event("pairing started")
    else:
        event(f"refused: {assert_json_error(response)['code']}")
    tv.check()


@fuzz_settings(300)
@given(pairing_id=PAIRING_IDS, real=st.booleans(), body=pairing_bodies(("code", "secret", "name")),
       content_type=CONTENT_TYPES)
def test_pairing_confirm_bodies_and_ids_are_refused_in_json(tv: Tv, pairing_id: str, real: bool, body: bytes,
                                                            content_type: str | None) -> None:
    if real:  # a pairing in progress: the junk goes to its code check (wrong codes rotate it, then lock it)
        started = tv.http.post("/v1/pairings", json={"name": "fuzz"})
        if started.status_code in (200, 201):
            pairing_id = started.json()["pairing_id"]
    path = f"/v1/pairings/{urllib.parse.quote(pairing_id, safe='')}/confirm"
    response = post(tv, path, body, content_type)
    # Nobody can guess the code: every confirm is refused (404 when the path does not reach the route at all).
    event(f"refused: {assert_json_error(response)['code']}")
    tv.check()


# --- the /v1/remote websocket --------------------------------------------------------------------------------------

FRAMES = st.lists(any_text | st.binary(max_size=64), min_size=1, max_size=4)
SENTINEL = "fuzz-sentinel"


async def exchange(url: str, frames: list[str | bytes], credential: str | None
                   ) -> tuple[list[dict[str, Any]], str | None]:
    """Send `frames` (after auth with `credential`, if any), then a status; return every message until its answer,
    and how the TV closed the connection if it did."""
    received: list[dict[str, Any]] = []
    async with ws_connect(websocket_url(url), max_size=2**20, open_timeout=10) as ws:
        if credential is not None:
            await ws.send(json.dumps({"type": "auth", "v": 1, "credential": credential}))
            authed = json.loads(await ws.recv())
            assert authed["type"] == "authed", authed
        for frame in frames:
            await ws.send(frame)
        await ws.send(json.dumps({"type": "status", "v": 1, "id": SENTINEL}))
        try:
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert isinstance(msg, dict) and isinstance(msg.get("type"), str), msg
                received.append(msg)
                if msg.get("id") == SENTINEL and msg["type"] in ("ok", "error"):
                    return received, None
        except ConnectionClosed as closed:
            # The TV closes only for its own reasons, with a policy/size code, never an internal error.
            assert closed.rcvd is not None and closed.rcvd.code in (1000, 1008, 1009), closed
            return received, f"closed {closed.rcvd.code} {closed.rcvd.reason}"


def check_errors(received: list[dict[str, Any]], closed: str | None) -> None:
    if closed is not None:
        event(closed)
    for msg in received:
        if msg["type"] == "error":
            assert isinstance(msg.get("code"), str) and msg["code"] and msg["code"] not in INTERNAL_CODES, msg
            assert isinstance(msg.get("message"), str) and msg["message"], msg
            event(f"error {msg['code']}")


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    made = LoopThread()
    yield made
    made.close()


@fuzz_settings(200)
@given(frames=FRAMES)
def test_remote_messages_from_a_stranger_get_errors_and_no_way_in(tv: Tv, loop: LoopThread,
                                                                  frames: list[str | bytes]) -> None:
    received, closed = loop.run(exchange(tv.url, frames, None))
    check_errors(received, closed)
    assert not any(msg["type"] in ("authed", "state", "devices", "ok") for msg in received), received
    tv.check()


# Commands that change rooms are slow (a join takes a second): the authenticated fuzz draws them less often.
SAMPLES = [encode(m) for m in PHONE_SAMPLES if m.TYPE not in ("auth", "create_room", "join", "leave_room")]
AUTHED_FRAMES = st.lists(any_text | st.sampled_from(SAMPLES) | st.binary(max_size=64), min_size=1, max_size=4)


@fuzz_settings(200)
@given(frames=AUTHED_FRAMES)
def test_remote_messages_from_a_paired_phone_are_answered_in_order(tv: Tv, loop: LoopThread,
                                                                   frames: list[str | bytes]) -> None:
    received, closed = loop.run(exchange(tv.url, frames, tv.credential), 120)
    check_errors(received, closed)
    assert received and received[-1].get("id") == SENTINEL, received[-3:]
    tv.check()
