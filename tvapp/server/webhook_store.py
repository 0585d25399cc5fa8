"""The webhook tables of the core's store: the durable delivery queue and each room's status_callback.

`webhook_queue` holds one row per (event, destination URL) until it is delivered or given up; `seq` (the
enqueue order) orders a lane (one room session's deliveries to one URL). `room_callbacks` holds the
status_callback a room was created with. tvapp.server.store mixes `WebhookQueries` into `Store` and appends
`migration_webhooks` to its MIGRATIONS; tvapp.server.webhooks sends.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from tvapp.core.webhooks import lane


def migration_webhooks(conn: sqlite3.Connection) -> None:
    """Create the webhook queue and the per-room status_callback table."""
    conn.execute("""CREATE TABLE webhook_queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        event TEXT NOT NULL,
        room_sid TEXT NOT NULL,
        url TEXT NOT NULL,
        lane TEXT NOT NULL,
        body BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        created_at REAL NOT NULL,
        last_error TEXT)""")
    conn.execute("CREATE INDEX webhook_queue_lane ON webhook_queue (lane, seq)")
    conn.execute("""CREATE TABLE room_callbacks (
        room_sid TEXT PRIMARY KEY REFERENCES rooms (sid),
        url TEXT NOT NULL)""")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One queued delivery of one event to one URL."""

    seq: int
    event_id: str
    event: str
    room_sid: str
    url: str
    lane: str
    body: bytes
    attempts: int
    next_at: float


_DELIVERY_COLUMNS = "seq, event_id, event, room_sid, url, lane, body, attempts, next_at"


class _HasConnection(Protocol):
    def _transaction(self) -> Any: ...
    def _read(self) -> Any: ...


class WebhookQueries:
    """The webhook queries of `Store` (a mixin over tvapp.server.database.Database)."""

    def set_room_callback(self: _HasConnection, room_sid: str, url: str) -> None:
        """Remember the status_callback of a room session."""
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO room_callbacks (room_sid, url) VALUES (?, ?)", (room_sid, url))

    def room_callback(self: _HasConnection, room_sid: str) -> str | None:
        """Return a room session's status_callback, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT url FROM room_callbacks WHERE room_sid = ?", (room_sid,)).fetchone()
        return None if row is None else str(row[0])

    def enqueue_webhook(self: _HasConnection, event_id: str, event: str, room_sid: str, body: bytes,
                        urls: tuple[str, ...], now: float) -> int:
        """Queue one event for each of `urls` and the room's status_callback; return how many rows."""
        with self._transaction() as conn:
            found = conn.execute("SELECT url FROM room_callbacks WHERE room_sid = ?", (room_sid,)).fetchone()
            targets = list(dict.fromkeys((*urls, *((str(found[0]),) if found else ()))))
            for url in targets:
                conn.execute(
                    "INSERT INTO webhook_queue (event_id, event, room_sid, url, lane, body, attempts, next_at,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (event_id, event, room_sid, url, lane(room_sid, url), body, now, now))
            return len(targets)

    def webhook_heads(self: _HasConnection) -> list[Delivery]:
        """Return the first queued delivery of every lane, in enqueue order."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_queue WHERE seq IN"
                " (SELECT min(seq) FROM webhook_queue GROUP BY lane) ORDER BY seq").fetchall()
        return [Delivery(*r) for r in rows]

    def webhook_count(self: _HasConnection) -> int:
        """Return how many deliveries are queued."""
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM webhook_queue").fetchone()[0])

    def webhook_done(self: _HasConnection, seq: int) -> None:
        """Drop a delivery (delivered or given up)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM webhook_queue WHERE seq = ?", (seq,))

    def webhook_retry(self: _HasConnection, seq: int, attempts: int, next_at: float, error: str) -> None:
        """Record a failed attempt and when to try again."""
        with self._transaction() as conn:
            conn.execute("UPDATE webhook_queue SET attempts = ?, next_at = ?, last_error = ? WHERE seq = ?",
                         (attempts, next_at, error[:200], seq))


__all__ = ["Delivery", "WebhookQueries", "migration_webhooks"]
