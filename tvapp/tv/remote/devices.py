"""The paired phones: device ids, names and credential hashes in SQLite (never the credentials themselves).

One connection (WAL) guarded by a lock, so the store may be used from the network thread and the TV's main
thread. A credential is looked up by its hash (unique index), then compared in constant time.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from pathlib import Path

from tvapp.core.credentials import (
    CREDENTIAL_PREFIX,
    MIN_CREDENTIAL_BYTES,
    credential_hash,
    credential_matches,
    device_id,
    new_credential,
)
from tvapp.protocol.remote_messages import MAX_CREDENTIAL_CHARS, MAX_NAME_CHARS, DeviceInfo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    paired_at REAL NOT NULL,
    last_seen REAL NULL,
    revoked_at REAL NULL
);
CREATE TABLE IF NOT EXISTS tv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""


class DeviceStore:
    """The paired phones of this TV, kept in the SQLite file at `path`."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def tv_id(self) -> str:
        """Return this TV's lasting id (made on first use): phones file their credential under it.

        Unlike the zeroconf instance id, which is new at each start so the LAN cannot follow the TV around, it
        survives restarts; only phones that reach the TV's endpoints see it (GET /v1/tv).
        """
        with self._lock:
            row = self._db.execute("SELECT value FROM tv WHERE key = 'tv_id'").fetchone()
            if row is not None:
                return str(row[0])
            value = secrets.token_hex(8)
            self._db.execute("INSERT INTO tv (key, value) VALUES ('tv_id', ?)", (value,))
            return value

    def add(self, name: str, now: float) -> tuple[str, str]:
        """Pair a new device called `name`; return (device_id, credential): the credential is shown only now."""
        credential = new_credential(secrets.token_bytes(MIN_CREDENTIAL_BYTES))
        name = name[:MAX_NAME_CHARS]
        with self._lock:
            while True:
                new_id = device_id(secrets.token_bytes(9))
                try:
                    self._db.execute(
                        "INSERT INTO devices (device_id, name, credential_hash, paired_at) VALUES (?, ?, ?, ?)",
                        (new_id, name, credential_hash(credential), now),
                    )
                except sqlite3.IntegrityError:
                    continue  # a device id collision (72 random bits): draw again
                return new_id, credential

    def check(self, credential: str, now: float) -> str | None:
        """Return the device id of the active device holding `credential` and note it was seen; else None."""
        if not credential.startswith(CREDENTIAL_PREFIX) or len(credential) > MAX_CREDENTIAL_CHARS:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT device_id, credential_hash, revoked_at FROM devices WHERE credential_hash = ?",
                (credential_hash(credential),),
            ).fetchone()
            if row is None or row[2] is not None or not credential_matches(credential, row[1]):
                return None
            self._db.execute("UPDATE devices SET last_seen = ? WHERE device_id = ?", (now, row[0]))
            return str(row[0])

    def is_active(self, device_id: str) -> bool:
        """Return whether `device_id` is paired and not revoked."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM devices WHERE device_id = ? AND revoked_at IS NULL", (device_id,)
            ).fetchone()
        return row is not None

    def list(self) -> list[DeviceInfo]:
        """Return the active devices, oldest pairing first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, name, paired_at, last_seen FROM devices WHERE revoked_at IS NULL"
                " ORDER BY paired_at, rowid"
            ).fetchall()
        return [DeviceInfo(device_id=r[0], name=r[1], paired_at=r[2], last_seen=r[3]) for r in rows]

    def revoke(self, device_id: str, now: float) -> bool:
        """Revoke `device_id`'s credential; return False when it is unknown or already revoked."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE devices SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL", (now, device_id)
            )
        return cursor.rowcount == 1

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
