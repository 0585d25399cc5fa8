"""The recordings' SQLite file (``DATA/recordings.db``): one row per recorded track, and which rooms record.

Its own database (tvapp.server.database.Database: private, WAL, synchronous=FULL, migrated) so that its schema
history is independent of the core's store. The recorder's writer thread writes through one `RecordingStore`;
the API reads through another on the event loop (and deletes through asyncio.to_thread).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields, replace
from typing import Any

from tvapp.core.recordings import RecordingFilter
from tvapp.server.database import Database, Migration, StoreError

DB_FILE = "recordings.db"


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """One recorded track: what it is, where it is in its room session, and how far it got."""

    sid: str
    room: str  # the room's name
    session: str  # the room session's sid (RM_...)
    participant: str  # the publisher's identity
    participant_sid: str
    track: str  # the track's sid
    type: str  # audio | video
    codec: str  # opus | vp8 | h264
    container: str  # mka | webm | mkv (the file's extension)
    status: str  # processing | completed | failed | deleted
    offset: float  # seconds from the room session's start to the track's first frame
    duration: float  # seconds of media written
    size: int  # bytes of the file
    created_at: float  # when the first frame was written (the wall clock at `offset`)
    completed_at: float | None = None
    reason: str | None = None  # why it failed
    file: str = ""  # the file's name under DATA/recordings/ (made by the server only: sid + extension)


def _migration_1_initial(conn: sqlite3.Connection) -> None:
    conn.execute("""CREATE TABLE recordings (
        sid TEXT PRIMARY KEY,
        room TEXT NOT NULL,
        session TEXT NOT NULL,
        participant TEXT NOT NULL,
        participant_sid TEXT NOT NULL,
        track TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('audio', 'video')),
        codec TEXT NOT NULL,
        container TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('processing', 'completed', 'failed', 'deleted')),
        offset REAL NOT NULL,
        duration REAL NOT NULL,
        size INTEGER NOT NULL,
        created_at REAL NOT NULL,
        completed_at REAL,
        reason TEXT,
        file TEXT NOT NULL)""")
    conn.execute("CREATE INDEX recordings_created ON recordings (created_at)")
    conn.execute("CREATE INDEX recordings_session ON recordings (session, created_at)")
    conn.execute("CREATE INDEX recordings_status ON recordings (status)")
    conn.execute("CREATE TABLE recording_rooms (session TEXT PRIMARY KEY, active INTEGER NOT NULL)")


MIGRATIONS: tuple[Migration, ...] = (_migration_1_initial,)

_COLUMNS = ", ".join(f.name for f in fields(RecordingRow))
_PLACES = ", ".join("?" for _ in fields(RecordingRow))


def _where(flt: RecordingFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if flt.room is not None:
        clauses.append("(room = ? OR session = ?)")
        args += [flt.room, flt.room]
    if flt.session is not None:
        clauses.append("session = ?")
        args.append(flt.session)
    if flt.participant is not None:
        clauses.append("(participant = ? OR participant_sid = ?)")
        args += [flt.participant, flt.participant]
    if flt.status is not None:
        clauses.append("status = ?")
        args.append(flt.status)
    if flt.type is not None:
        clauses.append("type = ?")
        args.append(flt.type)
    if flt.started_after is not None:
        clauses.append("created_at >= ?")
        args.append(flt.started_after)
    if flt.started_before is not None:
        clauses.append("created_at <= ?")
        args.append(flt.started_before)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class RecordingStore(Database):
    """The recordings table and the per-room recording switch."""

    MIGRATIONS = MIGRATIONS

    def insert(self, row: RecordingRow) -> None:
        """Insert a new recording."""
        with self._transaction() as conn:
            conn.execute(f"INSERT INTO recordings ({_COLUMNS}) VALUES ({_PLACES})",
                         tuple(getattr(row, f.name) for f in fields(row)))

    def finish(self, sid: str, status: str, *, duration: float, size: int, at: float,
               reason: str | None = None) -> RecordingRow | None:
        """Set a processing recording's final status and figures; return it (None if it was not processing)."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE recordings SET status = ?, duration = ?, size = ?, completed_at = ?, reason = ?"
                " WHERE sid = ? AND status = 'processing'", (status, duration, size, at, reason, sid))
            if cursor.rowcount == 0:
                return None
        return self.get(sid)

    def progress(self, sid: str, duration: float, size: int) -> None:
        """Record how much a processing recording holds so far."""
        with self._transaction() as conn:
            conn.execute("UPDATE recordings SET duration = ?, size = ? WHERE sid = ? AND status = 'processing'",
                         (duration, size, sid))

    def mark_deleted(self, sid: str, at: float) -> bool:
        """Mark a recording deleted (its file is gone); return whether it was not deleted already."""
        with self._transaction() as conn:
            cursor = conn.execute("UPDATE recordings SET status = 'deleted', completed_at = coalesce(completed_at, ?)"
                                  " WHERE sid = ? AND status != 'deleted'", (at, sid))
            return cursor.rowcount > 0

    def get(self, sid: str) -> RecordingRow | None:
        """Return one recording, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM recordings WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else RecordingRow(*row)

    def select(self, flt: RecordingFilter, limit: int, after: RecordingRow | None = None) -> list[RecordingRow]:
        """Return recordings matching `flt`, newest first, at most `limit`, after the row `after` (a page cursor)."""
        where, args = _where(flt)
        if after is not None:
            where += (" AND " if where else " WHERE ") + "(created_at < ? OR (created_at = ? AND sid < ?))"
            args += [after.created_at, after.created_at, after.sid]
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM recordings{where} ORDER BY created_at DESC, sid DESC"
                                " LIMIT ?", (*args, limit)).fetchall()
        return [RecordingRow(*r) for r in rows]

    def processing(self) -> list[RecordingRow]:
        """Return every recording still marked processing (after a crash: to recover)."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM recordings WHERE status = 'processing'").fetchall()
        return [RecordingRow(*r) for r in rows]

    def ended(self) -> list[RecordingRow]:
        """Return every completed or failed recording (retention candidates)."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM recordings WHERE status IN ('completed', 'failed')"
                                ).fetchall()
        return [RecordingRow(*r) for r in rows]

    def used_bytes(self) -> int:
        """Return the bytes held by recordings whose file is kept (everything not deleted)."""
        with self._read() as conn:
            used: int = conn.execute("SELECT coalesce(sum(size), 0) FROM recordings WHERE status != 'deleted'"
                                     ).fetchone()[0]
        return used

    def set_room(self, session: str, active: bool) -> None:
        """Switch recording of a room session on or off (kept across restarts)."""
        with self._transaction() as conn:
            conn.execute("INSERT INTO recording_rooms (session, active) VALUES (?, ?)"
                         " ON CONFLICT (session) DO UPDATE SET active = excluded.active", (session, int(active)))

    def active_rooms(self) -> set[str]:
        """Return the room sessions whose recording is on."""
        with self._read() as conn:
            return {r[0] for r in conn.execute("SELECT session FROM recording_rooms WHERE active = 1")}


def updated(row: RecordingRow, **changes: Any) -> RecordingRow:
    """Return `row` with `changes`."""
    return replace(row, **changes)


__all__ = ["DB_FILE", "RecordingRow", "RecordingStore", "StoreError", "updated"]
