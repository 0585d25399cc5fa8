"""Tests for tvapp.web: the guard's decisions (core.hosts.refusal), repeated headers, the body cap, and the one
error mapping, on a tiny app built the way both servers build theirs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import httpx
from fastapi import FastAPI, Request
from pydantic import BaseModel

from tvapp.core.errors import CodedError
from tvapp.core.hosts import refusal
from tvapp.web.errors import HttpError, install_error_handlers
from tvapp.web.guard import RequestGuard

HOSTS = frozenset({"tv.local"})


class Room(BaseModel):
    name: str


def app(guard_reads: bool = False) -> FastAPI:
    made = FastAPI()
    made.add_middleware(RequestGuard, allowed_hosts=HOSTS, max_body_bytes=64, guard_reads=guard_reads)
    install_error_handlers(made, internal_message="it failed")

    @made.get("/ok")
    async def ok() -> dict[str, str]:
        return {"ok": "yes"}

    @made.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @made.post("/rooms")
    async def rooms(room: Room) -> dict[str, str]:
        return {"name": room.name}

    @made.get("/coded")
    async def coded() -> None:
        raise CodedError("room_full", "the room is full", status=409)

    @made.get("/http")
    async def http() -> None:
        raise HttpError("too_soon", "wait", status=429, headers={"Retry-After": "3"}, extra={"retry_after": 2.5})

    @made.get("/boom")
    async def boom() -> None:
        raise RuntimeError("SECRET internal detail")

    return made


def test_refusal_decides_from_every_header_value() -> None:
    def decide(hosts: list[str], origins: list[str], check_origin: bool = True) -> str | None:
        return refusal(hosts, origins, allowed_names=HOSTS, allowed_origins=(), check_origin=check_origin)

    assert decide(["tv.local:7881"], []) is None
    assert decide(["192.168.1.5:7881"], ["http://192.168.1.5:7881"]) is None
    assert decide([], []) == "bad_host"
    assert decide(["evil.example"], []) == "bad_host"
    assert decide(["tv.local", "tv.local"], []) == "bad_host", "a repeated Host fails closed, even the same twice"
    assert decide(["tv.local"], ["http://evil.example"]) == "bad_origin"
    assert decide(["tv.local"], ["http://evil.example"], check_origin=False) is None
    assert decide(["tv.local"], ["http://tv.local", "http://tv.local"], check_origin=False) == "bad_origin"


def call(made: FastAPI, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"",
         kind: str = "http") -> list[dict[str, Any]]:
    """Call the ASGI app once with exactly these headers (repeats included); return what it sent."""
    scope = {"type": kind, "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 7881), "state": {}}
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": body, "more_body": False}] if kind == "http" else \
        [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(made(scope, receive, send))
    return sent


def status_and_body(sent: list[dict[str, Any]]) -> tuple[int, bytes]:
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("guard_reads", [False, True])
def test_repeated_host_or_origin_headers_fail_closed_on_both_kinds_of_server(guard_reads: bool) -> None:
    made = app(guard_reads)
    twice = [(b"host", b"tv.local"), (b"host", b"evil.example")]
    status, body = status_and_body(call(made, "GET", "/ok", twice))
    assert status == 400 and b'"bad_host"' in body
    origins = [(b"host", b"tv.local"), (b"origin", b"http://tv.local"), (b"origin", b"http://evil.example")]
    status, body = status_and_body(call(made, "GET", "/ok", origins))
    assert status == 403 and b'"bad_origin"' in body
    assert call(made, "GET", "/ok", [(b"host", b"tv.local"), (b"origin", b"http://tv.local")])[0]["status"] == 200


def test_a_cross_site_read_is_refused_only_where_reads_are_guarded() -> None:
    foreign = [(b"host", b"tv.local"), (b"origin", b"http://evil.example")]
    assert call(app(guard_reads=False), "GET", "/ok", foreign)[0]["status"] == 200
    assert call(app(guard_reads=True), "GET", "/ok", foreign)[0]["status"] == 403
    assert call(app(guard_reads=False), "POST", "/echo", foreign)[0]["status"] == 403


def test_a_websocket_is_refused_before_accept() -> None:
    sent = call(app(), "GET", "/ws", [(b"host", b"tv.local"), (b"host", b"tv.local")], kind="websocket")
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "bad_host"}]


def test_the_body_cap_holds_by_length_and_while_reading() -> None:
    made = app()
    host = [(b"host", b"tv.local")]
    status, body = status_and_body(call(made, "POST", "/echo", [*host, (b"content-length", b"65")], b"x" * 65))
    assert status == 413 and b'"body_too_large"' in body
    status, body = status_and_body(call(made, "POST", "/echo", host, b"x" * 65))  # no length: counted while read
    assert status == 413 and b'"body_too_large"' in body
    status, body = status_and_body(call(made, "POST", "/echo", [*host, (b"content-length", b"64")], b"x" * 64))
    assert status == 200 and body == b'{"size":64}'


def test_every_failure_is_one_json_error_and_never_a_traceback() -> None:
    async def ask() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://tv.local") as client:
            return {"coded": await client.get("/coded"), "http": await client.get("/http"),
                    "invalid": await client.post("/rooms", json={"name": 5}),
                    "nowhere": await client.get("/nowhere"), "put": await client.put("/ok"),
                    "boom": await client.get("/boom")}

    answers = asyncio.run(ask())
    coded = answers["coded"]
    assert coded.status_code == 409 and coded.json() == {"error": {"code": "room_full", "message": "the room is full"}}
    http = answers["http"]
    assert http.status_code == 429 and http.headers["retry-after"] == "3"
    assert http.json() == {"error": {"code": "too_soon", "message": "wait"}, "retry_after": 2.5}
    invalid = answers["invalid"]
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid_request"
    assert answers["nowhere"].json()["error"]["code"] == "not_found"
    assert answers["put"].json()["error"]["code"] == "method_not_allowed"
    boom = answers["boom"]
    assert boom.status_code == 500 and boom.json() == {"error": {"code": "internal_error", "message": "it failed"}}
    assert "SECRET" not in boom.text and "Traceback" not in boom.text
