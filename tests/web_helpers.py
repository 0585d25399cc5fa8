"""Helpers for the web client tests: rooms with invites, and a plain signaling peer that keeps itself alive."""

from __future__ import annotations

import itertools
import json
import queue
import socket
import threading
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tvapp.testing.server import ServerProcess

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
