"""A real HTTP webhook receiver on 127.0.0.1 for tests: records every request; a rule decides each answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and the status it got."""

    path: str
    body: bytes
    authorization: str
    content_type: str
    status: int

    @property
    def data(self) -> dict[str, Any]:
        """Return the JSON body."""
        return json.loads(self.body)  # type: ignore[no-any-return]


class WebhookReceiver:
    """A ThreadingHTTPServer answering POSTs with `answer(path, body)` (default 200)."""

    def __init__(self, answer: Callable[[str, bytes], int] | None = None) -> None:
        self.answer = answer or (lambda path, body: 200)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status = receiver.answer(self.path, body)
                with receiver.lock:
                    receiver.received.append(Received(self.path, body, self.headers.get("Authorization", ""),
                                                      self.headers.get("Content-Type", ""), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Self:
        """Start serving."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> list[Received]:
        """Return what arrived so far."""
        with self.lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        """Return the requests answered 2xx, first arrival of each event id only (de-duplicated)."""
        seen: set[tuple[str, str]] = set()
        out = []
        for item in self.snapshot():
            key = (item.path, item.data["id"])
            if 200 <= item.status < 300 and key not in seen:
                seen.add(key)
                out.append(item)
        return out

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
