"""Bad input against a real server: malformed bodies, garbled auth, oversized requests, foreign Host/Origin, bad frames.

Every refusal must be a 4xx with `{"error": {"code", "message"}}` (never a 500, never a traceback), and on the
signaling websocket an error message plus the close code of the protocol's table. A broken participant must never
disturb another one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from security_helpers import assert_error, bearer, ws_url
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tvapp.client.signaling import SignalClient
from tvapp.protocol.messages import Error, ParticipantJoined, ParticipantLeft
from tvapp.testing.server import ServerProcess

ROOM = "bi-room"
MAX_BODY = 65_536
# Invite redemptions that reach the handler count as failures per client address: send them from an address of
# our own so that the session server's other tests (which call from 127.0.0.1) are never rate limited by these.
OWN_ADDRESS = "127.0.0.7"

BODY_ENDPOINTS = {
    "tokens": "/v1/tokens",
    "refresh": "/v1/tokens/refresh",
    "rooms": "/v1/rooms",
    "invites": f"/v1/rooms/{ROOM}/invites",
    "redeem": "/v1/invites/ABCD-EFGH/redeem",
    "mute": f"/v1/rooms/{ROOM}/participants/nobody/tracks/TR_x/mute",
}
AUTH_ENDPOINTS = [
    ("POST", "/v1/tokens"),
    ("POST", "/v1/rooms"),
    ("GET", "/v1/rooms"),
    ("GET", f"/v1/rooms/{ROOM}"),
    ("POST", f"/v1/rooms/{ROOM}/complete"),
    ("GET", f"/v1/rooms/{ROOM}/sessions"),
    ("POST", f"/v1/rooms/{ROOM}/invites"),
    ("GET", f"/v1/rooms/{ROOM}/participants"),
    ("GET", f"/v1/rooms/{ROOM}/participants/nobody"),
    ("DELETE", f"/v1/rooms/{ROOM}/participants/nobody"),
    ("POST", f"/v1/rooms/{ROOM}/participants/nobody/tracks/TR_x/mute"),
]

NOT_AN_OBJECT = {
    "not-json": b"{not json",
    "truncated": b'{"name": "x"',
    "empty": b"",
    "array": b"[]",
    "array-of-object": b'[{"name": "x"}]',
    "string": b'"text"',
    "number": b"12",
    "null": b"null",
    "true": b"true",
    "bad-utf8": b'{"name": "\xff\xfe"}',
    "nul-bytes": b"\x00\x00\x00",
    "deep-nesting": b"[" * 20_000 + b"]" * 20_000,
    "nan": b'{"ttl": NaN, "max_participants": NaN, "muted": NaN}',
    "duplicate-keys-bad-last": b'{"name": "ok", "name": 5, "identity": "i", "identity": [], "muted": []}',
}

HUGE = "h" * 60_000
WRONG_BODIES: dict[str, list[Any]] = {
    "tokens": [
        {"room": 1, "identity": "i"}, {"room": "r", "identity": ["i"]}, {"room": "r"}, {"identity": "i"},
        {"room": "r", "identity": "i", "grants": "all"}, {"room": "r", "identity": "i", "grants": {"host": "yes"}},
        {"room": "r", "identity": "i", "grants": {"admin": True}}, {"room": "r", "identity": "i", "admin": True},
        {"room": HUGE, "identity": "i"}, {"room": "r", "identity": HUGE}, {"room": "r", "identity": "i", "name": HUGE},
        {"room": "r", "identity": "i", "ttl": -1}, {"room": "r", "identity": "i", "ttl": 0},
        {"room": "r", "identity": "i", "ttl": 10**30}, {"room": "r", "identity": "i", "ttl": 1e308},
        {"room": "r", "identity": "i", "ttl": 2**63}, {"room": "r", "identity": "i", "ttl": 1.5},
        {"room": "r", "identity": "i", "ttl": "600"}, {"room": "r", "identity": "i", "ttl": True},
        {"room": "../../etc", "identity": "i"}, {"room": "r", "identity": "i\n"}, {"room": "", "identity": "i"},
    ],
    "refresh": [
        {}, {"refresh_token": 5}, {"refresh_token": None}, {"refresh_token": ["a.b.c"]}, {"refresh_token": HUGE},
        {"refresh_token": "a.b.c", "extra": 1}, {"token": "a.b.c"},
    ],
    "rooms": [
        {}, {"name": 5}, {"name": None}, {"name": {"a": 1}}, {"name": HUGE}, {"name": "a b"}, {"name": "x", "admin": 1},
        {"name": "bi-x", "max_participants": -1}, {"name": "bi-x", "max_participants": 0},
        {"name": "bi-x", "max_participants": 10**30}, {"name": "bi-x", "max_participants": "6"},
        {"name": "bi-x", "max_participants": 2.5}, {"name": "bi-x", "empty_timeout": -1},
        {"name": "bi-x", "empty_timeout": 2**63}, {"name": "bi-x", "empty_timeout": -(2**63) - 1},
        {"name": "bi-x", "empty_timeout": 1e308}, {"name": "bi-x", "empty_timeout": [1]},
    ],
    "invites": [
        {"ttl": -1}, {"ttl": 0}, {"ttl": 10**30}, {"ttl": 2**63}, {"ttl": "900"}, {"ttl": 1.5}, {"max_uses": -1},
        {"max_uses": 0}, {"max_uses": 10**30}, {"max_uses": 1001}, {"max_uses": None, "extra": True},
        {"ttl": HUGE}, {"ttl": {"s": 1}},
    ],
    "redeem": [
        {}, {"identity": 5}, {"identity": None}, {"identity": HUGE}, {"identity": "a b"}, {"identity": ""},
        {"identity": "i", "name": HUGE}, {"identity": "i", "name": 7}, {"identity": "i", "room": "bi-room"},
    ],
    "mute": [{"muted": "yes"}, {"muted": 2}, {"muted": None}, {"muted": [True]}, {"muted": True, "by": "me"}],
}


@pytest.fixture(scope="module")
def live_room(server: ServerProcess) -> Iterator[str]:
    """A live room for the room-scoped calls; at the end, check the server logged no traceback meanwhile."""
    before = set(server.output)
    response = server.http.post("/v1/rooms", json={"name": ROOM})
    assert response.status_code in (201, 409), response.text
    yield ROOM
    new_lines = [line for line in server.output if line not in before]
    assert not [line for line in new_lines if "Traceback" in line or " ERROR " in line], "".join(new_lines)


@pytest.fixture(scope="module")
def own_address(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client that connects from 127.0.0.7 with the API key (so rate limits it causes stay its own)."""
    with httpx.Client(base_url=server.url, auth=server.key, timeout=10.0,
                      transport=httpx.HTTPTransport(local_address=OWN_ADDRESS)) as client:
        yield client


def post_raw(client: httpx.Client, path: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    """POST bytes with a given content type."""
    return client.post(path, content=body, headers={"content-type": content_type})


# --- malformed bodies -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
@pytest.mark.parametrize("kind", list(NOT_AN_OBJECT))
def test_body_that_is_not_a_json_object(own_address: httpx.Client, live_room: str, endpoint: str, kind: str) -> None:
    response = post_raw(own_address, BODY_ENDPOINTS[endpoint], NOT_AN_OBJECT[kind])
    assert_error(response, 400)


@pytest.mark.parametrize("endpoint,body", [(e, b) for e, bodies in WRONG_BODIES.items() for b in bodies],
                         ids=[f"{e}-{i}" for e, bodies in WRONG_BODIES.items() for i in range(len(bodies))])
def test_body_with_wrong_fields(own_address: httpx.Client, live_room: str, endpoint: str, body: Any) -> None:
    response = own_address.post(BODY_ENDPOINTS[endpoint], json=body)
    error = assert_error(response, 400)
    assert HUGE[:100] not in error["message"], "input values must not be echoed"
    assert len(error["message"]) < 1000


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml",
                                          "multipart/form-data; boundary=x", "application/octet-stream"])
def test_valid_json_with_wrong_content_type(own_address: httpx.Client, live_room: str, endpoint: str,
                                            content_type: str) -> None:
    body = {"tokens": {"room": "r", "identity": "i"}, "refresh": {"refresh_token": "a.b.c"}, "rooms": {"name": "bi-ct"},
            "invites": {"ttl": 60}, "redeem": {"identity": "i"}, "mute": {"muted": True}}[endpoint]
    response = post_raw(own_address, BODY_ENDPOINTS[endpoint], json.dumps(body).encode(), content_type)
    assert_error(response, 400)
    assert own_address.get("/v1/rooms/bi-ct").status_code == 404


def test_huge_but_allowed_numbers_are_refused_by_range_checks(server: ServerProcess, live_room: str) -> None:
    assert_error(server.http.post("/v1/tokens", json={"room": "r", "identity": "i", "ttl": 10**30}), 400, "invalid_ttl")
    assert_error(server.http.post(f"/v1/rooms/{ROOM}/invites", json={"ttl": 10**30}), 400, "invalid_ttl")
    assert_error(server.http.post("/v1/rooms", json={"name": "bi-big", "empty_timeout": 10**30}), 400,
                 "invalid_limits")
    assert_error(server.http.post("/v1/rooms", json={"name": "bi-big", "max_participants": 10**30}), 400,
                 "invalid_limits")


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=1001", "limit=10000000000000000000000", "limit=x",
                                   "limit=1.5", "status=deleted", "status=", "limit=%00"])
def test_bad_list_queries(server: ServerProcess, live_room: str, query: str) -> None:
    assert_error(server.http.get("/v1/rooms?" + query), 400)


@pytest.mark.parametrize("path", ["/v1/rooms/" + "a" * 65, f"/v1/rooms/{ROOM}/participants/" + "i" * 65,
                                  f"/v1/rooms/{ROOM}/participants/nobody/tracks/{'t' * 65}/mute",
                                  "/v1/invites/" + "C" * 65 + "/redeem"])
def test_overlong_path_segments(own_address: httpx.Client, live_room: str, path: str) -> None:
    method = "POST" if path.endswith(("/mute", "/redeem")) else "GET"
    body = {"muted": True} if path.endswith("/mute") else {"identity": "i"}
    response = own_address.request(method, path, json=body if method == "POST" else None)
    assert_error(response, 400)


# --- authentication ------------------------------------------------------------------------------------------


def _basic(value: bytes) -> str:
    return "Basic " + base64.b64encode(value).decode()


GARBLED_AUTH: dict[str, bytes | None] = {
    "missing": None,
    "empty-basic": b"Basic",
    "basic-not-base64": b"Basic !!!not-base64!!!",
    "basic-no-colon": _basic(b"AKnocolon").encode(),
    "basic-unknown-key": _basic(b"AK0000000000000000:secret").encode(),
    "basic-empty-pair": _basic(b":").encode(),
    "basic-latin1": b"Basic \xff\xfe\xfd",
    "basic-bad-utf8-inside": _basic(b"AK\xff:\xfe").encode(),
    "basic-huge": _basic(b"AK:" + b"s" * 6000).encode(),
    "bearer-empty": b"Bearer",
    "bearer-garbage": b"Bearer a.b.c",
    "bearer-basic-creds": b"Bearer " + base64.b64encode(b"a:b"),
    "digest": b'Digest username="a"',
    "bearer-two-tokens": b"Bearer a.b.c d.e.f",
    "no-scheme": b"abcdef",
}


@pytest.mark.parametrize("method,path", AUTH_ENDPOINTS, ids=[f"{m} {p}" for m, p in AUTH_ENDPOINTS])
@pytest.mark.parametrize("kind", list(GARBLED_AUTH))
def test_missing_or_garbled_auth(server: ServerProcess, live_room: str, method: str, path: str, kind: str) -> None:
    value = GARBLED_AUTH[kind]
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    if value is not None:
        headers.append((b"authorization", value))
    body = b'{"room": "r", "identity": "i", "name": "bi-auth", "muted": true}' if method == "POST" else None
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        response = client.request(method, path, content=body, headers=headers)
    # A body that does not fit the endpoint could be refused first (400); anything else must be 401.
    assert_error(response)
    assert response.status_code in (400, 401), response.text
    if response.status_code == 401:
        assert "basic" in response.headers.get("www-authenticate", "").lower() or kind.startswith("bearer")


def test_right_key_wrong_secret(server: ServerProcess, live_room: str) -> None:
    key_id, secret = server.key
    response = httpx.get(server.url + "/v1/rooms", auth=(key_id, secret[:-1]))
    assert_error(response, 401, "invalid_credentials")
    assert secret[:-1] not in response.text


# --- size limits -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
def test_body_over_the_cap_is_413(own_address: httpx.Client, live_room: str, endpoint: str) -> None:
    body = json.dumps({"name": "x" * (MAX_BODY + 10)}).encode()
    assert_error(post_raw(own_address, BODY_ENDPOINTS[endpoint], body), 413, "body_too_large")


@pytest.mark.parametrize("endpoint", list(BODY_ENDPOINTS))
def test_chunked_body_over_the_cap_is_413(own_address: httpx.Client, live_room: str, endpoint: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    response = own_address.post(BODY_ENDPOINTS[endpoint], content=chunks(),
                                headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "body_too_large")


def test_body_just_under_the_cap_is_read(server: ServerProcess, live_room: str) -> None:
    body = json.dumps({"name": "x" * (MAX_BODY - 100)}).encode()
    assert len(body) <= MAX_BODY
    response = post_raw(server.http, "/v1/rooms", body)
    assert_error(response, 400, "invalid_room")  # read and checked: a 64 KB name is not a room name


def test_content_length_larger_than_the_cap_is_refused_before_reading(server: ServerProcess) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"POST /v1/rooms HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {10 * MAX_BODY}\r\n\r\n{{".encode())
        reply = _read_http(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert b'"body_too_large"' in reply


def _read_http(sock: socket.socket) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# --- routes and methods ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/nope"), ("GET", "/v2/rooms"), ("POST", "/v1/nope"), ("GET", f"/v1/rooms/{ROOM}/nope"),
    ("GET", f"/v1/rooms/{ROOM}/participants/x/tracks"), ("GET", "/.env"), ("GET", "/v1/tokens/refresh/x"),
    ("DELETE", "/v1/nope/x"), ("GET", "/v1/rooms/a/b/c/d/e/f/g"), ("GET", "/%2e%2e/%2e%2e/etc/passwd"),
])
def test_unknown_routes_are_404(server: ServerProcess, method: str, path: str) -> None:
    assert_error(server.http.request(method, path), 404, "not_found")


@pytest.mark.parametrize("method,path", [
    ("PUT", "/v1/rooms"), ("DELETE", "/v1/rooms"), ("PATCH", f"/v1/rooms/{ROOM}"), ("DELETE", f"/v1/rooms/{ROOM}"),
    ("GET", "/v1/tokens"), ("GET", "/v1/tokens/refresh"), ("GET", "/v1/invites/ABCD-EFGH/redeem"),
    ("PUT", f"/v1/rooms/{ROOM}/participants/x"), ("POST", "/healthz"), ("GET", f"/v1/rooms/{ROOM}/complete"),
    ("POST", "/v1/openapi.json"), ("TRACE", "/v1/rooms"), ("OPTIONS", "/v1/tokens"),
])
def test_wrong_methods_are_405(server: ServerProcess, live_room: str, method: str, path: str) -> None:
    response = server.http.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert method not in response.headers.get("allow", "")


# --- Host and Origin -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "127.0.0.1@evil.example", "evil.example/127.0.0.1",
                                  "", "a b"])
@pytest.mark.parametrize("method,path", [("GET", "/healthz"), ("POST", "/v1/rooms"), ("GET", "/v1/openapi.json")])
def test_foreign_host_is_400(server: ServerProcess, host: str, method: str, path: str) -> None:
    port = server.url.rsplit(":", 1)[1]
    response = server.http.request(method, path, headers={"host": host.format(port=port)},
                                   json={"name": "bi-host"} if method == "POST" else None)
    assert_error(response, 400, "bad_host")


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "localhost", "127.0.0.1", "[::1]:{port}",
                                  socket.gethostname() + ":{port}"])
def test_own_host_names_are_served(server: ServerProcess, host: str) -> None:
    port = server.url.rsplit(":", 1)[1]
    assert server.http.get("/healthz", headers={"host": host.format(port=port)}).status_code == 200


def test_request_without_host_is_400(server: ServerProcess) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        reply = _read_http(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["error"]["code"] == "bad_host"


@pytest.mark.parametrize("headers", [b"Host: 127.0.0.1\r\nHost: evil.example\r\n",
                                     b"Host: evil.example\r\nHost: 127.0.0.1\r\n",
                                     b"Host: 127.0.0.1\r\nHost: 127.0.0.1\r\n"])
def test_a_repeated_host_header_is_400(server: ServerProcess, headers: bytes) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + headers + b"Connection: close\r\n\r\n")
        reply = _read_http(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(body)["error"]["code"] == "bad_host"


def test_a_repeated_origin_header_is_403_even_on_a_read(server: ServerProcess) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    own = f"http://{host}:{port}".encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\nOrigin: " + own +
                     b"\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n")
        reply = _read_http(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403"), head
    assert json.loads(body)["error"]["code"] == "bad_origin"


@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example", "null",
                                    "http://127.0.0.1:1", "http://localhost:{port}", "http://127.0.0.2:{port}",
                                    "file://", "garbage"])
@pytest.mark.parametrize("method,path", [("POST", "/v1/rooms"), ("POST", "/v1/tokens"),
                                         ("DELETE", f"/v1/rooms/{ROOM}/participants/x"),
                                         ("POST", "/v1/invites/ABCD-EFGH/redeem")])
def test_foreign_origin_on_unsafe_methods_is_403(own_address: httpx.Client, live_room: str, origin: str,
                                                 method: str, path: str) -> None:
    port = own_address.base_url.port
    response = own_address.request(method, path, headers={"origin": origin.format(port=port)},
                                   json={"name": "bi-origin", "room": "r", "identity": "i"})
    assert_error(response, 403, "bad_origin")
    assert own_address.get("/v1/rooms/bi-origin").status_code == 404


def test_same_origin_is_accepted(server: ServerProcess, live_room: str) -> None:
    name = f"bi-same-{time.monotonic_ns()}"
    response = server.http.post("/v1/rooms", json={"name": name}, headers={"origin": server.url})
    assert response.status_code == 201, response.text


def test_foreign_origin_on_safe_methods_is_served(server: ServerProcess, live_room: str) -> None:
    response = server.http.get(f"/v1/rooms/{ROOM}", headers={"origin": "http://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def _handshake_status(url: str, headers: dict[str, str]) -> int:
    try:
        async with connect(ws_url(url), additional_headers=headers, open_timeout=5):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://127.0.0.1:1"}, {"Host": "evil.example"}],
                         ids=["evil-origin", "null-origin", "other-port", "evil-host"])
def test_websocket_handshake_from_foreign_origin_is_refused(server: ServerProcess, headers: dict[str, str]) -> None:
    assert asyncio.run(_handshake_status(server.url, headers)) == 403


def test_websocket_from_same_origin_joins(server: ServerProcess) -> None:
    token = server.token("bi-ws-origin", "bi-same", host=True)["access_token"]

    async def scenario() -> None:
        client = await SignalClient.connect(server.url, token, origin=server.url)
        try:
            assert client.joined.room.name == "bi-ws-origin"
        finally:
            await client.close()

    asyncio.run(scenario())


# --- signaling ---------------------------------------------------------------------------------------------------


async def _raw(url: str) -> ClientConnection:
    return await connect(ws_url(url), open_timeout=5, max_size=None)


async def _until_closed(ws: ClientConnection, timeout: float = 5.0) -> tuple[list[dict[str, Any]], int | None]:
    """Collect the messages until the server closes; return them and the close code."""
    messages: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                messages.append(json.loads(await ws.recv()))
    except ConnectionClosed:
        pass
    return messages, ws.close_code


async def _raw_joined(srv: ServerProcess, room: str, identity: str) -> ClientConnection:
    ws = await _raw(srv.url)
    await ws.send(json.dumps({"type": "join", "v": 1, "token": srv.token(room, identity, host=True)["access_token"]}))
    assert json.loads(await ws.recv())["type"] == "joined"
    return ws


@pytest.mark.parametrize("frame,close_code,error_code", [
    (b"\x00\x01binary", 1003, "bad_message"),
    ("not json at all", 1008, "bad_message"),
    ("[]", 1008, "bad_message"),
    ('{"type": "ping", "v": 1}', 1008, "bad_message"),
    ('{"type": "join", "v": 1}', 1008, "bad_message"),
    ('{"type": "join", "v": 1, "token": 5}', 1008, "bad_message"),
    ('{"type": "join", "token": "a.b.c"}', 1008, None),
    ('{"type": "join", "v": 2, "token": "a.b.c"}', 1008, None),
    ('{"type": "join", "v": 1, "token": "a.b.c"}', 1008, "invalid_token"),
])
def test_bad_first_frame_closes(server: ServerProcess, frame: str | bytes, close_code: int,
                                error_code: str | None) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        ws = await _raw(server.url)
        await ws.send(frame)
        return await _until_closed(ws)

    messages, code = asyncio.run(scenario())
    assert code == close_code
    assert len(messages) == 1 and messages[0]["type"] == "error", messages
    assert isinstance(messages[0]["code"], str) and messages[0]["code"]
    if error_code is not None:
        assert messages[0]["code"] == error_code


def test_binary_frame_after_join_closes_1003(server: ServerProcess) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        ws = await _raw_joined(server, "bi-binary", "bi-bin")
        await ws.send(b"\xff" * 10)
        return await _until_closed(ws)

    messages, code = asyncio.run(scenario())
    assert code == 1003
    assert [m["code"] for m in messages if m["type"] == "error"] == ["bad_message"]


@pytest.mark.parametrize("joined", [False, True], ids=["before-join", "after-join"])
def test_message_over_64_kib_closes_1009(server: ServerProcess, joined: bool) -> None:
    async def scenario() -> int | None:
        ws = await (_raw_joined(server, "bi-big", "bi-big") if joined else _raw(server.url))
        await ws.send(json.dumps({"type": "ping", "v": 1, "pad": "x" * 70_000}))
        _, code = await _until_closed(ws)
        return code

    assert asyncio.run(scenario()) == 1009


def test_no_join_within_join_timeout(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(TVAPP_SIGNAL_JOIN_TIMEOUT="1")

    async def scenario() -> tuple[list[dict[str, Any]], int | None, float]:
        started = time.monotonic()
        ws = await _raw(srv.url)
        messages, code = await _until_closed(ws, timeout=10)
        return messages, code, time.monotonic() - started

    messages, code, elapsed = asyncio.run(scenario())
    assert code == 1008
    assert [m["code"] for m in messages] == ["join_timeout"]
    assert 0.8 <= elapsed < 5


BAD_AFTER_JOIN = [
    "not json", "", "[]", "null", "{}", '{"type": "nope", "v": 1}', '{"type": "ping", "v": 99}', '{"v": 1}',
    '{"type": "publish", "v": 1}', '{"type": "publish", "v": 1, "cid": "c", "kind": "smell", "source": "camera"}',
    '{"type": "join", "v": 1, "token": "a.b.c"}', '{"type": "mute", "v": 1, "track_sid": "TR_none", "muted": true}',
    '{"type": "unpublish", "v": 1, "track_sid": "TR_none"}', '{"type": "ping", "v": 1, "t0": "now"}',
    '{"type": "ping", "v": 1, "t0": 1e400}', '{"type": "subscribe", "v": 1, "track_sid": ' + '"x' * 100 + '"}',
    "\u0000", '{"type": "candidate", "v": 1, "candidate": 5}', "{" * 10_000,
    json.dumps({"type": "ping", "v": 1, "pad": "p" * 60_000}),
]


def test_bad_messages_after_join_get_errors_and_keep_the_connection(server: ServerProcess) -> None:
    async def scenario() -> list[str]:
        client = await SignalClient.connect(server.url, server.token("bi-after", "bi-after", host=True)["access_token"],
                                            heartbeat=False)
        codes: list[str] = []
        try:
            for text in BAD_AFTER_JOIN:
                await client.ws.send(text)
                if text.startswith('{"type": "ping", "v": 1, "pad"'):
                    continue  # a well-formed ping with an extra field: answered, not an error
                codes.append((await client.wait_for(Error)).code)
            pong = await client.ping()
            assert pong.t1 > 0
        finally:
            await client.close()
        return codes

    codes = asyncio.run(scenario())
    assert len(codes) == len(BAD_AFTER_JOIN) - 1
    assert all(isinstance(c, str) and c for c in codes)
    assert "internal_error" not in codes


def test_a_broken_participant_never_takes_down_another(server: ServerProcess) -> None:
    room = "bi-isolation"

    async def scenario() -> None:
        steady = await SignalClient.connect(server.url, server.token(room, "bi-steady", host=True)["access_token"])
        try:
            broken = await _raw_joined(server, room, "bi-broken")
            assert (await steady.wait_for(ParticipantJoined)).participant.identity == "bi-broken"
            for text in BAD_AFTER_JOIN[:12]:
                await broken.send(text)
            await broken.send(b"\x00binary")
            messages, code = await _until_closed(broken)
            assert code == 1003 and all(m["type"] == "error" for m in messages)

            left = await steady.wait_for(ParticipantLeft)
            assert left.identity == "bi-broken"
            newcomer = await SignalClient.connect(server.url, server.token(room, "bi-new")["access_token"])
            try:
                assert (await steady.wait_for(ParticipantJoined)).participant.identity == "bi-new"
                assert (await steady.ping()).t1 > 0
                assert [p.identity for p in newcomer.joined.participants] == ["bi-steady"]
            finally:
                await newcomer.close()
            while not steady.events.empty():
                assert not isinstance(steady.events.get_nowait(), Error)
        finally:
            await steady.close()

    asyncio.run(scenario())
    assert server.http.get("/healthz").status_code == 200


def test_bearer_in_the_websocket_url_is_not_a_way_in(server: ServerProcess) -> None:
    """The token travels in the join message only: a query-string token is ignored and the join timeout rules."""
    token = server.token("bi-url", "bi-url", host=True)["access_token"]

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        ws = await connect(ws_url(server.url) + "?token=" + token, additional_headers=bearer(token), open_timeout=5)
        await ws.send('{"type": "ping", "v": 1}')
        return await _until_closed(ws)

    messages, code = asyncio.run(scenario())
    assert code == 1008 and messages[0]["code"] == "bad_message"
