"""Ambiguous input from an attacker: a JSON key twice in one object, NaN and Infinity, a query parameter twice,
against the real core and a real TV.

Two parsers (a proxy or WAF in front, the server behind) disagree on which of two equal keys wins, so a body such as
``{"room": "lobby", "room": "admin"}`` or ``{"grants": {"host": false, "host": true}}`` is refused outright, on
every surface that reads JSON: the core's REST API (400 ``invalid_request``), the signaling websocket (an error
``bad_message``) and the TV's pairing endpoints (422 ``bad_request``, as any malformed pairing body).
NaN/Infinity (not JSON) likewise, and a REST query parameter given twice (``?room=a&room=b``: which one a
proxy checked and which one the server acts on may differ), and two Authorization headers (401).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import TvProcess

JSON = {"content-type": "application/json"}


def refused(response: httpx.Response, status: int, code: str) -> str:
    """Check a JSON refusal with `status` and `code`; return its message."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return str(error["message"])


@pytest.mark.parametrize(("path", "body", "key"), [
    ("/v1/tokens", '{"room": "dup-a", "identity": "eve", "room": "dup-b"}', "room"),
    ("/v1/tokens", '{"room": "dup-a", "identity": "eve", "grants": {"host": false, "host": true}}', "host"),
    ("/v1/rooms", '{"name": "dup-c", "name": "dup-d"}', "name"),
    ("/v1/rooms/dup-e/invites", '{"max_uses": 1, "max_uses": 1000}', "max_uses"),
])
def test_a_rest_body_with_a_key_twice_is_refused(server: ServerProcess, path: str, body: str, key: str) -> None:
    server.http.post("/v1/rooms", json={"name": "dup-e"})
    message = refused(server.http.post(path, content=body, headers=JSON), 400, "invalid_request")
    assert repr(key) in message and "twice" in message
    assert server.http.get("/v1/rooms/dup-d").status_code == 404  # neither reading of the body was acted on


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_rest_body_with_nan_or_infinity_is_refused(server: ServerProcess, constant: str) -> None:
    body = f'{{"name": "nan-room", "max_participants": {constant}}}'
    message = refused(server.http.post("/v1/rooms", content=body, headers=JSON), 400, "invalid_request")
    assert constant.lstrip("-") in message


def test_a_rest_body_with_distinct_keys_is_still_accepted(server: ServerProcess) -> None:
    body = '{"room": "dup-ok", "identity": "ann", "grants": {"host": true}, "name": "Ann"}'
    response = server.http.post("/v1/tokens", content=body, headers=JSON)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("query", ["room=dup-a&room=dup-b", "limit=1&limit=1000", "after=x&status=done&after=y"])
def test_a_query_parameter_given_twice_is_refused(server: ServerProcess, query: str) -> None:
    name = query.split("=", 1)[0]
    for method in ("GET", "DELETE"):
        response = server.http.request(method, f"/v1/recordings?{query}")
        assert repr(name) in refused(response, 400, "invalid_request")


def test_two_authorization_headers_are_refused(server: ServerProcess) -> None:
    basic = "Basic " + base64.b64encode(":".join(server.key).encode()).decode()
    for second in ("Bearer x.y.z", basic):
        with httpx.Client(base_url=server.url, timeout=10) as http:
            response = http.get("/v1/rooms", headers=[("authorization", basic), ("authorization", second)])
        assert "Authorization" in refused(response, 401, "unauthorized")
        assert server.key[1] not in response.text


def test_a_signaling_join_with_a_key_twice_is_refused(server: ServerProcess) -> None:
    token = server.token("dup-sig", "ann")["access_token"]
    text = f'{{"type": "join", "v": 1, "token": "{token}", "token": "x"}}'

    async def attempt() -> dict[str, object]:
        url = server.url.replace("http://", "ws://", 1) + "/v1/signal"
        async with connect(url, open_timeout=5) as ws:
            await ws.send(text)
            return json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]

    first = asyncio.run(attempt())
    assert first["type"] == "error" and first["code"] == "bad_message", first
    assert "twice" in str(first["message"])


@pytest.fixture(scope="module")
def tv_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("dup-tv")
    tv = TvProcess(workdir, ["--host", "127.0.0.1", "--port", "0", "--name", "Dup TV", "--data",
                             str(workdir / "data"), "--no-audio"], size="320x180")
    try:
        yield tv.remote_url()
    finally:
        assert tv.stop() == 0, tv.output


def test_a_pairing_request_with_a_key_twice_is_refused_by_the_tv(tv_url: str) -> None:
    with httpx.Client(base_url=tv_url, timeout=10) as http:
        body = '{"name": "Phone", "name": "Admin phone"}'
        message = refused(http.post("/v1/pairings", content=body, headers=JSON), 422, "bad_request")
        assert "'name'" in message and "twice" in message
        confirm = '{"code": "000000", "code": "111111"}'
        refused(http.post("/v1/pairings/pr_x/confirm", content=confirm, headers=JSON), 422, "bad_request")
        started = http.post("/v1/pairings", content='{"name": "Phone"}', headers=JSON)
        assert started.status_code == 201, started.text  # a plain body still starts a pairing
