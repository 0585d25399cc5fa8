"""`tvapp bot` as a test's participant: a subprocess (the real SDK) publishing a one-colour pattern and a tone.

Its JSON event lines are collected in `lines`; `published()` counts its published tracks. Used where a test
needs real publishers in a room (recordings, compositions) rather than an in-process SDK client. `stop_process`
is the one way test helpers stop a subprocess (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

from tvapp.testing.rest import media_token
from tvapp.testing.server import ServerProcess

MEDIA_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}


def stop_process(proc: subprocess.Popen[Any], grace: float = 15.0) -> int:
    """SIGTERM `proc`, SIGKILL it if it has not exited after `grace` seconds, reap it; return its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class BotProcess:
    """A `tvapp bot` subprocess in `room` as `identity`: pattern video in `color`, a `hz` tone."""

    def __init__(self, server: ServerProcess, room: str, identity: str, color: str, hz: int = 440) -> None:
        """Start the bot with a media token for `room` (loopback ICE only)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tvapp", "bot", "--server", server.url,
             "--token", media_token(server, room, identity), "--video", "pattern:320x240@15",
             "--audio", f"tone:{hz}", "--color", color],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, **MEDIA_ENV, "PYTHONUNBUFFERED": "1"})
        self.lines: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def published(self) -> int:
        """Return how many tracks the bot has published so far."""
        return sum(1 for line in self.lines if line["event"] == "local_track_published")

    def stop(self) -> None:
        """Stop the bot (terminate, then kill after 15 s)."""
        stop_process(self.proc)
