"""Property tests against the real (session) server: whatever JSON, path or signaling text arrives, no 5xx, no crash.

Every 4xx must carry the error shape. Requests that could change state other tests rely on are kept to our own room
(a Bearer host token for `hyp-own` turns any other room into 403 wrong_room), room names that would be valid are
namespaced under `hyp-`, and invite redemptions come from an address of their own so that their failures never rate
limit 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from security_helpers import assert_error, bearer, ws_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tvapp.core.claims import ROOM_NAME_RE
from tvapp.protocol.messages import MAX_MESSAGE_BYTES
from tvapp.testing.fuzz import fuzz_settings
from tvapp.testing.server import ServerProcess

OWN_ROOM = "hyp-own"
OWN_ADDRESS = "127.0.0.8"
PROPERTY = fuzz_settings(100)  # TVAPP_FUZZ_EXAMPLES (make fuzz) runs many more

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
                | st.sampled_from(["", "0", "true", "null", "a" * 300, "x" * 9000, "RM_x", "ABCD-EFGH"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=15)


def namespaced(value: Any) -> Any:
    """Put any string that would be a valid room name under `hyp-`, so no other test's room is ever touched."""
    if isinstance(value, str) and ROOM_NAME_RE.match(value):
        return ("hyp-" + value)[:64]
    return value


GRANT_NAMES = ["join", "publish", "subscribe", "publish_data", "host", "hidden"]
FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "tokens": {"room": json_values.map(namespaced), "identity": json_values, "name": json_values,
               "ttl": json_values | st.integers(), "grants": json_values | st.fixed_dictionaries(
                   {}, optional={g: json_values | st.booleans() for g in GRANT_NAMES})},
    "refresh": {"refresh_token": json_values},
    "rooms": {"name": json_values.map(namespaced), "max_participants": json_values | st.integers(),
              "empty_timeout": json_values | st.integers()},
    "invites": {"ttl": json_values | st.integers(), "max_uses": json_values | st.integers()},
    "redeem": {"identity": json_values, "name": json_values},
    "mute": {"muted": json_values | st.booleans()},
    "complete": {},
}
PATHS = {
    "tokens": "/v1/tokens",
    "refresh": "/v1/tokens/refresh",
    "rooms": "/v1/rooms",
    "invites": f"/v1/rooms/{OWN_ROOM}/invites",
    "redeem": "/v1/invites/ABCD-EFGH/redeem",
    "mute": f"/v1/rooms/{OWN_ROOM}/participants/nobody/tracks/TR_x/mute",
    "complete": "/v1/rooms/hyp-not-there/complete",
}


def real_field_bodies(endpoint: str) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with the endpoint's real field names (some left out, sometimes one extra) and random values."""
    fields = FIELDS[endpoint]
    body = st.fixed_dictionaries({}, optional=fields)
    extra = st.dictionaries(st.text(max_size=12), json_values, max_size=1)
    return st.tuples(body, extra).map(lambda pair: {**pair[1], **pair[0]})


class Clients:
    """The HTTP clients of the property tests: key-authenticated, host-token, and from an address of its own."""

    def __init__(self, srv: ServerProcess) -> None:
        host_token = srv.token(OWN_ROOM, "hyp-host", host=True)["access_token"]
        self.key = httpx.Client(base_url=srv.url, auth=srv.key, timeout=10.0)
        self.host = httpx.Client(base_url=srv.url, headers=bearer(host_token), timeout=10.0)
        self.own_address = httpx.Client(base_url=srv.url, auth=srv.key, timeout=10.0,
                                        transport=httpx.HTTPTransport(local_address=OWN_ADDRESS))

    def for_endpoint(self, endpoint: str) -> httpx.Client:
        """Return the client that may call `endpoint` without touching other tests' state."""
        if endpoint == "redeem":
            return self.own_address
        if endpoint in ("invites", "mute", "complete"):
            return self.host
        return self.key

    def close(self) -> None:
        """Close every client."""
        for client in (self.key, self.host, self.own_address):
            client.close()


@pytest.fixture(scope="module")
def clients(server: ServerProcess) -> Iterator[Clients]:
    """Clients for the session server, with our own room created; at the end, the server logged no traceback."""
    before = set(server.output)
    assert server.http.post("/v1/rooms", json={"name": OWN_ROOM}).status_code in (201, 409)
    made = Clients(server)
    yield made
    made.close()
    assert server.http.get("/healthz").status_code == 200
    new_lines = [line for line in server.output if line not in before]
    assert not [line for line in new_lines if "Traceback" in line or " ERROR " in line], "".join(new_lines)


def check(response: httpx.Response) -> None:
    """Never a 5xx; a 4xx has the error shape; anything else is well-formed."""
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert_error(response)
    elif response.status_code < 300 and response.content:
        json.loads(response.content)


@pytest.mark.parametrize("endpoint", list(PATHS))
@PROPERTY
@given(body=json_values)
def test_random_json_bodies(clients: Clients, endpoint: str, body: Any) -> None:
    check(clients.for_endpoint(endpoint).post(PATHS[endpoint], content=json.dumps(body).encode(),
                                              headers={"content-type": "application/json"}))


@pytest.mark.parametrize("endpoint", [e for e in PATHS if FIELDS[e]])
@PROPERTY
@given(data=st.data())
def test_bodies_with_real_field_names(clients: Clients, endpoint: str, data: st.DataObject) -> None:
    body = data.draw(real_field_bodies(endpoint), label="body")
    check(clients.for_endpoint(endpoint).post(PATHS[endpoint], content=json.dumps(body).encode(),
                                              headers={"content-type": "application/json"}))


segments = st.text(max_size=80) | st.sampled_from(["", ".", "..", "%", "%00", "a/b", "?x=1", "#f", " ", "\u0000",
                                                    "RM_" + "x" * 22, "hyp-own", "ABCD-EFGH", "x" * 65])
PATH_CALLS = {
    "get-room": ("GET", "/v1/rooms/{0}", "key"),
    "sessions": ("GET", "/v1/rooms/{0}/sessions", "key"),
    "participants": ("GET", "/v1/rooms/{0}/participants", "key"),
    "participant": ("GET", "/v1/rooms/{0}/participants/{1}", "key"),
    "complete": ("POST", "/v1/rooms/{0}/complete", "host"),
    "invites": ("POST", "/v1/rooms/{0}/invites", "host"),
    "remove": ("DELETE", "/v1/rooms/{0}/participants/{1}", "host"),
    "mute": ("POST", "/v1/rooms/{0}/participants/{1}/tracks/{2}/mute", "host"),
    "redeem": ("POST", "/v1/invites/{1}/redeem", "own_address"),
}


PATH_BODIES = {"invites": {}, "mute": {"muted": True}, "redeem": {"identity": "hyp-guest"}}


@pytest.mark.parametrize("call", list(PATH_CALLS))
@PROPERTY
@given(room=segments, other=segments, track=segments)
def test_random_path_segments(clients: Clients, call: str, room: str, other: str, track: str) -> None:
    method, template, who = PATH_CALLS[call]
    client: httpx.Client = getattr(clients, who)
    if who == "host" and room == OWN_ROOM:
        room = "hyp-not-ours"  # the host token may act on its own room only: keep it live for the other tests
    path = template.format(*(quote(s, safe="") for s in (room, other, track)))
    body = PATH_BODIES.get(call)
    check(client.request(method, path, json=body) if body is not None else client.request(method, path))


# --- signaling ---------------------------------------------------------------------------------------------------

CLIENT_TYPES = ["join", "offer", "answer", "candidate", "publish", "unpublish", "subscribe", "unsubscribe", "mute",
                "ping"]  # not "leave": it ends the connection on purpose
SIGNAL_FIELDS = {name: json_values for name in ["token", "sdp", "candidate", "sdp_mid", "sdp_mline_index", "cid",
                                                "kind", "source", "name", "muted", "track_sid", "t0"]}
typed_messages = st.fixed_dictionaries(
    {"type": st.sampled_from(CLIENT_TYPES), "v": st.sampled_from([1, 1, 1, 0, 2, "1", None])},
    optional=SIGNAL_FIELDS)
signal_texts = (st.text(max_size=200) | json_values.map(json.dumps) | typed_messages.map(json.dumps))
_markers = itertools.count(1)


def _is_leave(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("type") == "leave"


@PROPERTY
@given(text=signal_texts)
@example(text=json.dumps({"type": "join", "v": 1, "token": "x" * 70_000}))
@example(text="")
def test_random_first_messages_close_with_an_error(server: ServerProcess, clients: Clients, text: str) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        async with connect(ws_url(server.url), open_timeout=5) as ws:
            await ws.send(text)
            messages: list[dict[str, Any]] = []
            try:
                async with asyncio.timeout(5):
                    while True:
                        messages.append(json.loads(await ws.recv()))
            except ConnectionClosed:
                pass
            return messages, ws.close_code

    messages, code = asyncio.run(scenario())
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        assert code == 1009 and not messages  # refused by the websocket layer before any parsing
        return
    assert code == 1008
    assert len(messages) == 1 and messages[0]["type"] == "error" and messages[0]["code"] != "internal_error"


@pytest.fixture(scope="module")
def signal_token(server: ServerProcess) -> Callable[[], str]:
    """Mint a host token for the room the signaling property test joins over and over, a new identity each time
    (one identity may join a room only JOINS_PER_WINDOW times per JOIN_WINDOW: tvapp.server.state)."""
    numbers = itertools.count()

    def mint() -> str:
        return server.token("hyp-signal", f"hyp-signal-{next(numbers)}", host=True)["access_token"]  # type: ignore

    return mint


@PROPERTY
@given(texts=st.lists(signal_texts.filter(lambda t: len(t.encode()) <= MAX_MESSAGE_BYTES and not _is_leave(t)),
                      min_size=1, max_size=8))
def test_random_messages_after_join_never_break_the_connection(server: ServerProcess, clients: Clients,
                                                               signal_token: Callable[[], str],
                                                               texts: list[str]) -> None:
    marker = float(next(_markers)) + 0.5
    token = signal_token()

    async def scenario() -> list[dict[str, Any]]:
        async with connect(ws_url(server.url), open_timeout=5) as ws:
            await ws.send(json.dumps({"type": "join", "v": 1, "token": token}))
            assert json.loads(await ws.recv())["type"] == "joined"
            for text in texts:
                await ws.send(text)
            await ws.send(json.dumps({"type": "ping", "v": 1, "t0": marker}))
            received: list[dict[str, Any]] = []
            async with asyncio.timeout(5):
                while True:
                    message = json.loads(await ws.recv())
                    received.append(message)
                    if message["type"] == "pong" and message.get("t0") == marker:
                        await ws.send(json.dumps({"type": "leave", "v": 1}))  # gone at once, no reconnect grace
                        return received

    received = asyncio.run(scenario())
    errors = [m for m in received if m["type"] == "error"]
    assert all(isinstance(m.get("code"), str) and m["code"] != "internal_error" for m in errors), errors


def test_namespacing_keeps_valid_room_names_ours() -> None:
    assert namespaced("a") == "hyp-a" and namespaced("a b") == "a b" and namespaced(5) == 5
    assert re.fullmatch(ROOM_NAME_RE, namespaced("x" * 64)) is not None
