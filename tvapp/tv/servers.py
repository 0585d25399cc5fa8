"""The other cores a TV has joined rooms on, remembered in a small JSON file in its data dir (``servers.json``).

The Remote page and `tvapp remote send status` list them (most recently used first) so a person picks one and types
only the code. Each entry is the core's base URL, a name to show, the certificate fingerprint pinned for it (https
with a self-signed certificate) and when it was last used; never a token, code or anything secret. The file is
mode 0600, written atomically, and holds at most MAX_KNOWN_SERVERS entries (the least recently used go first).
A file that cannot be read or has entries that do not check out is treated as empty (entries one by one).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from tvapp.core.links import LinkError, parse_fingerprint, parse_server, server_label
from tvapp.protocol.remote_messages import MAX_KNOWN_SERVERS, KnownServer

log = logging.getLogger(__name__)

FILE_NAME = "servers.json"


class KnownServers:
    """The remembered cores of one TV (not thread-safe: use it on the TV's asyncio thread)."""

    def __init__(self, path: Path, *, limit: int = MAX_KNOWN_SERVERS) -> None:
        self.path = Path(path)
        self.limit = limit
        self._servers = self._load()

    def list(self) -> tuple[KnownServer, ...]:
        """Return the remembered cores, most recently used first."""
        return tuple(sorted(self._servers.values(), key=lambda s: s.last_used, reverse=True))

    def get(self, url: str) -> KnownServer | None:
        """Return the entry for the core at base URL `url`, if remembered."""
        return self._servers.get(url)

    def remember(self, url: str, fingerprint: str | None, now: float, name: str = "") -> KnownServer:
        """Record that the TV joined a room on `url` now (with the fingerprint it pinned); save the file."""
        entry = KnownServer(url=url, name=(name or server_label(url))[:128], fingerprint=fingerprint, last_used=now)
        self._servers[url] = entry
        for old in self.list()[self.limit:]:
            del self._servers[old.url]
        self._save()
        return entry

    def _load(self) -> dict[str, KnownServer]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("tv: cannot read %s (%s); starting with no remembered servers", self.path, type(exc).__name__)
            return {}
        servers: dict[str, KnownServer] = {}
        for item in raw.get("servers", []) if isinstance(raw, dict) else []:
            try:
                entry = KnownServer.from_json(item)
                if parse_server(entry.url) != entry.url:
                    continue
                if entry.fingerprint is not None:
                    parse_fingerprint(entry.fingerprint)
            except (ValueError, LinkError):
                continue
            servers[entry.url] = entry
        return dict(list(servers.items())[: self.limit])

    def _save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = json.dumps({"servers": [entry.to_json() for entry in self.list()]}, indent=1)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=FILE_NAME + ".")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            os.unlink(temp)
            raise
