"""Helpers for the web client tests: rooms with invites, a plain signaling peer that keeps itself alive, an SDK bot,
the SDK's example page served from an origin of its own (opened in Chromium or Firefox) and its CORS check.

Also a pytest plugin (tests/conftest.py lists it): the fixtures `bots`, `firefox`, `close_firefox_pages`,
`example_site`, `unlisted_site` and `sdk_server` are there for every test module that names them.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import itertools
import json
import queue
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import av
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tvapp.client import Room, TrackMuted, TrackSubscribed
from tvapp.client.sources import TestPatternTrack, ToneTrack
from tvapp.testing.browser import ScriptPage, wait_for_js, wait_until
from tvapp.testing.firefox import Firefox
from tvapp.testing.page_media import AUDIBLE_LEVEL, camera_size
from tvapp.testing.server import ServerProcess

T = TypeVar("T")
_room_numbers = itertools.count(1)


def new_room(server: ServerProcess, prefix: str = "web", **limits: int) -> tuple[str, str]:
    """Create a room and an invite to it; return (room name, invite code as ABCD-EFGH)."""
    name = f"{prefix}-{next(_room_numbers)}"
    server.http.post("/v1/rooms", json={"name": name, **limits}).raise_for_status()
    response = server.http.post(f"/v1/rooms/{name}/invites", json={"max_uses": 100})
    response.raise_for_status()
    return name, response.json()["code"]


def participants(server: ServerProcess, room: str) -> list[dict[str, Any]]:
    """List the participants the server has in `room` (REST)."""
    response = server.http.get(f"/v1/rooms/{room}/participants")
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


class SignalPeer:
    """A participant that speaks the signaling protocol over a plain websocket (no media) and pings by itself."""

    def __init__(self, server: ServerProcess, room: str, identity: str, name: str = "",
                 resume_token: str | None = None) -> None:
        token = server.token(room, identity, name=name)["access_token"]
        self._stack = ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(server.url.replace("http://", "ws://") + "/v1/signal"))
        join = {"type": "join", "v": 1, "token": token, **({"resume_token": resume_token} if resume_token else {})}
        self.ws.send(json.dumps(join))
        self.joined: dict[str, Any] = json.loads(self.ws.recv(timeout=10))
        if self.joined.get("type") != "joined":
            self._stack.close()
            raise RuntimeError(f"join refused: {self.joined}")
        self.sid: str = self.joined["participant"]["sid"]
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._pinger = threading.Thread(target=self._ping, args=(self.joined["ping_interval"],), daemon=True)
        self._pinger.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                self.messages.put(json.loads(text))
        except ConnectionClosed:
            pass

    def _ping(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if not self.send({"type": "ping"}):
                return

    def send(self, message: dict[str, Any]) -> bool:
        """Send one message (``v`` added); False once the connection is closed."""
        try:
            self.ws.send(json.dumps({**message, "v": 1}))
        except ConnectionClosed:
            return False
        return True

    def wait_for(self, kind: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Return the next received message of type `kind` whose fields match; raise AssertionError if none."""
        while True:
            try:
                message = self.messages.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {kind} message {fields} within {timeout} s") from None
            if message.get("type") == kind and all(message.get(k) == v for k, v in fields.items()):
                return message

    def publish(self, cid: str, kind: str, source: str, muted: bool = False) -> str:
        """Announce a track and return its sid."""
        self.send({"type": "publish", "cid": cid, "kind": kind, "source": source, "muted": muted})
        return str(self.wait_for("track_published", cid=cid)["track"]["sid"])

    def drop(self) -> None:
        """Let the connection die without a leave or a close frame (the network went away)."""
        self._stop.set()
        self.dropped = True
        self.ws.socket.shutdown(socket.SHUT_RDWR)
        self.ws.socket.close()
        self._reader.join(5)
        self._pinger.join(5)

    def close(self) -> None:
        """Leave and close the socket."""
        if getattr(self, "dropped", False):
            return
        self._stop.set()
        self.send({"type": "leave"})
        self._stack.close()
        self._reader.join(5)
        self._pinger.join(5)

    def __enter__(self) -> SignalPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- an SDK bot: a Python participant publishing a test pattern and a tone, counting what it decodes ---------------

class Bot:
    """An SDK participant on its own event loop thread (Playwright's sync API owns the test's thread): counts decoded
    frames, keeps each publisher's last video size and its audible audio frames, and notes muted tracks."""

    def __init__(self, server: ServerProcess, room: str, identity: str, *, publish: bool = True) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.frames: dict[tuple[str, str], int] = {}  # (publisher identity, kind) -> decoded frames
        self.sizes: dict[str, tuple[int, int]] = {}  # publisher identity -> (width, height) of its last video frame
        self.loud_frames: dict[str, int] = {}  # publisher identity -> audio frames above AUDIBLE_LEVEL
        self.muted: list[tuple[str, str | None]] = []  # (publisher identity, track sid)
        token = server.token(room, identity, name=f"Bot {identity}")["access_token"]
        self.room: Room = self.call(self._join(server.url, token, publish))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        """Run `coro` on the bot's loop and return its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    async def _join(self, url: str, token: str, publish: bool) -> Room:
        room = await Room.connect(url, token, host_addresses=["127.0.0.1"])
        room.on(TrackSubscribed, self._subscribed)
        room.on(TrackMuted, lambda e: self.muted.append((e.participant.identity, e.track.sid)))
        if publish:
            await room.local_participant.publish_track(TestPatternTrack(320, 240, 15), source="camera")
            await room.local_participant.publish_track(ToneTrack(440.0), source="microphone")
        return room

    async def _subscribed(self, event: TrackSubscribed) -> None:
        identity, kind = event.participant.identity, event.track.kind
        self.frames.setdefault((identity, kind), 0)
        while True:
            try:
                frame = await event.track.recv()
            except Exception:  # the track ended (MediaStreamError) or the room closed
                return
            self.frames[(identity, kind)] += 1
            if isinstance(frame, av.VideoFrame):
                self.sizes[identity] = (frame.width, frame.height)
            else:
                samples = frame.to_ndarray().astype(np.float64) / 32768.0
                if float(np.sqrt(np.mean(samples ** 2))) > AUDIBLE_LEVEL:
                    self.loud_frames[identity] = self.loud_frames.get(identity, 0) + 1

    def close(self) -> None:
        """Leave the room and stop the loop."""
        try:
            self.call(self.room.disconnect(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture
def bots() -> Iterator[Callable[..., Bot]]:
    """Start SDK bots (`bots(server, room, identity, publish=True)`); all leave after the test."""
    started: list[Bot] = []

    def make(*args: Any, **kwargs: Any) -> Bot:
        bot = Bot(*args, **kwargs)
        started.append(bot)
        return bot

    yield make
    for bot in started:
        bot.close()


def frames_grow(bot: Bot, identity: str, kinds: tuple[str, ...] = ("video", "audio"), timeout: float = 20.0) -> None:
    """Wait until `bot` decodes 10 more frames of each of `identity`'s `kinds`."""
    start = {kind: bot.frames.get((identity, kind), 0) for kind in kinds}
    wait_until(lambda: all(bot.frames.get((identity, k), 0) >= start[k] + 10 for k in kinds), timeout,
               message=lambda: f"the bot to decode {identity}'s {kinds} (frames: {bot.frames})")


def bot_decodes(bot: Bot, identity: str, timeout: float = 20.0) -> None:
    """Wait until `bot` decodes 20 more video and audio frames of `identity`: a camera's size, audible audio."""
    start = {kind: bot.frames.get((identity, kind), 0) for kind in ("video", "audio")}
    wait_until(lambda: all(bot.frames.get((identity, k), 0) >= start[k] + 20 for k in start)
               and camera_size(*bot.sizes.get(identity, (0, 0))) and bot.loud_frames.get(identity, 0) >= 20, timeout,
               message=lambda: f"the bot to decode {identity} (frames {bot.frames}, sizes {bot.sizes}, "
                               f"loud audio frames {bot.loud_frames})")


# --- Firefox ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def firefox() -> Iterator[Firefox]:
    """Debian's firefox-esr over WebDriver BiDi (tvapp.testing.firefox), one per module."""
    with Firefox() as ff:
        yield ff


@pytest.fixture
def close_firefox_pages(firefox: Firefox) -> Iterator[None]:
    """Close every Firefox page a test opened (pytestmark = pytest.mark.usefixtures("close_firefox_pages"))."""
    yield
    firefox.close_pages()


# --- the SDK's example page (examples/web/) on an origin of its own, a developer's site ----------------------------

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "web"
PC = "window.example.room.pc"  # the example page's peer connection, for get_stats / stats_grow


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_examples() -> Iterator[str]:
    """Serve examples/web/ on an origin of its own (a developer's site); yield its URL."""
    handler = functools.partial(_QuietHandler, directory=str(EXAMPLE_DIR))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def example_site() -> Iterator[str]:
    """examples/web/ on its own origin, listed in the core's [server] cors_origins (server_env)."""
    yield from serve_examples()


@pytest.fixture(scope="module")
def unlisted_site() -> Iterator[str]:
    """examples/web/ on another origin the core does not list."""
    yield from serve_examples()


def server_env(site: str) -> dict[str, str]:
    """Return the env of a core for SDK pages on `site`: loopback media, `site` listed for CORS, quick pings."""
    return {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "TVAPP_SERVER_CORS_ORIGINS": site,
            "TVAPP_SIGNAL_PING_INTERVAL": "1", "TVAPP_SIGNAL_IDLE_TIMEOUT": "4"}


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory, example_site: str) -> Iterator[ServerProcess]:
    """A core (one per module) that lists `example_site` as an origin SDK pages may come from."""
    with ServerProcess(tmp_path_factory.mktemp("sdk-server"), env=server_env(example_site)) as srv:
        yield srv


class Opener(Protocol):
    """A browser that opens pages: tvapp.testing.browser.Browser or tvapp.testing.firefox.Firefox."""

    def new_page(self) -> Any: ...


def open_example(opener: Opener, site: str, core_url: str, token: str) -> Any:
    """Open examples/web/ joining with `token` through the core at `core_url`; wait until it is connected with its
    camera and microphone published; return the page."""
    page = opener.new_page()
    page.goto(f"{site}/#{urlencode({'url': core_url, 'token': token})}")
    assert "token" not in page.url  # the page took the token out of the address bar
    wait_for_js(page, "() => window.example.room && window.example.room.state", lambda s: s == "connected", 20,
                "the example page to connect")
    wait_for_js(page, "() => Array.from(window.example.room.localParticipant.tracks.values()).map(t => t.sid)",
                lambda sids: len(sids) == 2 and all(sids), 20, "camera and microphone published")
    return page


# On a page of a site, import the SDK from the core, refresh the token pair (a CORS-preflighted POST), then join with
# the fresh access token (the websocket's Origin is the site's); report what happened.
REFRESH_AND_JOIN = """async ([url, token, refreshToken]) => {
  const { Room } = await import(url + "/sdk/tvapp.js");
  const room = new Room(url, token, { refreshToken });
  const out = {};
  try { await room.refreshTokens(); out.rotated = room.accessToken !== token && room.refreshToken !== refreshToken; }
  catch (err) { out.refresh = err.name + ": " + err.message; }
  try { await room.connect(); out.state = room.state; out.identity = room.localParticipant.identity; }
  catch (err) { out.join = err.code; out.state = room.state; }
  await room.disconnect();
  return out;
}"""


def refresh_and_join(opener: Opener, site: str, server: ServerProcess, room: str,
                     identity: str) -> tuple[ScriptPage, dict[str, Any]]:
    """On a page of `site`, refresh a token pair of `identity` at `server` and join `room` with it (REFRESH_AND_JOIN);
    return the page and what happened: {"rotated": True, "state": "connected", "identity": ...} when it all worked."""
    pair = server.token(room, identity)
    page = opener.new_page()
    page.goto(site + "/")
    return page, page.evaluate(REFRESH_AND_JOIN, [server.url, pair["access_token"], pair["refresh_token"]])
