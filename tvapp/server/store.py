"""The core server's SQLite store: rooms, participant sessions, invites, refresh tokens, revocations and bans.

One file (``DATA/tvapp.db``), opened, migrated and made durable by tvapp.server.database.Database: the
rows here are its tables, `MIGRATIONS` its schema history, `Store` its queries.

Every write method runs in its own transaction unless it is called inside ``with store.batch():``,
where it joins the batch's transaction inside its own SAVEPOINT (a failing call rolls back alone).
The asyncio server does not call the write methods itself: it hands them to ``writer.StoreWriter``.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass, fields
from typing import Any

from tvapp.server.database import Database, Migration, StoreError, migrate
from tvapp.server.webhook_store import WebhookQueries, migration_webhooks

ROOM_STATUSES = ("open", "in-progress", "completed")


class RoomNameTaken(StoreError):
    """A room that is not completed already has this name."""


@dataclass(frozen=True, slots=True)
class RoomRow:
    """One room session: a name lives on across sessions, the sid is this session's."""

    sid: str
    name: str
    status: str
    max_participants: int
    empty_timeout: int
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One participant's stay in one room session."""

    sid: str
    room_sid: str
    identity: str
    name: str
    joined_at: float
    left_at: float | None = None
    leave_reason: str | None = None


@dataclass(frozen=True, slots=True)
class InviteRow:
    """An invite to a room; only a hash of the code is stored."""

    code_hash: str
    room_sid: str
    created_at: float
    expires_at: float
    max_uses: int
    uses: int
    created_by: str


class RefreshResult(enum.Enum):
    """The outcome of presenting a refresh token for rotation."""

    OK = "ok"
    RETIRED = "retired"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"


def _migration_1_initial(conn: sqlite3.Connection) -> None:
    statements = (
        """CREATE TABLE rooms (
            sid TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('open', 'in-progress', 'completed')),
            max_participants INTEGER NOT NULL CHECK (max_participants > 0),
            empty_timeout INTEGER NOT NULL CHECK (empty_timeout >= 0),
            created_at REAL NOT NULL,
            started_at REAL,
            ended_at REAL)""",
        "CREATE UNIQUE INDEX rooms_live_name ON rooms (name) WHERE status != 'completed'",
        "CREATE INDEX rooms_name_created ON rooms (name, created_at)",
        "CREATE INDEX rooms_created ON rooms (created_at)",
        """CREATE TABLE sessions (
            sid TEXT PRIMARY KEY,
            room_sid TEXT NOT NULL REFERENCES rooms (sid),
            identity TEXT NOT NULL,
            name TEXT NOT NULL,
            joined_at REAL NOT NULL,
            left_at REAL,
            leave_reason TEXT)""",
        "CREATE INDEX sessions_room ON sessions (room_sid, joined_at)",
        "CREATE INDEX sessions_open ON sessions (sid) WHERE left_at IS NULL",
        """CREATE TABLE invites (
            code_hash TEXT PRIMARY KEY,
            room_sid TEXT NOT NULL REFERENCES rooms (sid),
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            max_uses INTEGER NOT NULL CHECK (max_uses >= 0),
            uses INTEGER NOT NULL CHECK (uses >= 0),
            created_by TEXT NOT NULL)""",
        "CREATE INDEX invites_expiry ON invites (expires_at)",
        """CREATE TABLE refresh_tokens (
            jti TEXT PRIMARY KEY,
            family TEXT NOT NULL,
            expires_at REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'retired')))""",
        "CREATE INDEX refresh_family ON refresh_tokens (family)",
        "CREATE INDEX refresh_expiry ON refresh_tokens (expires_at)",
        "CREATE TABLE revoked_families (family TEXT PRIMARY KEY, revoked_at REAL NOT NULL)",
        """CREATE TABLE revoked_jtis (
            jti TEXT PRIMARY KEY,
            expires_at REAL NOT NULL,
            reason TEXT NOT NULL)""",
        "CREATE INDEX revoked_jtis_expiry ON revoked_jtis (expires_at)",
        """CREATE TABLE bans (
            room_sid TEXT NOT NULL REFERENCES rooms (sid),
            identity TEXT NOT NULL,
            banned_at REAL NOT NULL,
            PRIMARY KEY (room_sid, identity)) WITHOUT ROWID""",
    )
    for statement in statements:
        conn.execute(statement)


# Migration i (0-based) takes a database from user_version i to i + 1. Append only; never edit a shipped one.
MIGRATIONS: tuple[Migration, ...] = (_migration_1_initial, migration_webhooks)



def _columns(row_type: type[Any]) -> str:
    """Return a row type's columns as SQL lists them: its fields, in order."""
    return ", ".join(f.name for f in fields(row_type))


def _insert(table: str, row_type: type[Any]) -> str:
    """Return the INSERT statement of one whole row."""
    return f"INSERT INTO {table} ({_columns(row_type)}) VALUES ({', '.join('?' for _ in fields(row_type))})"


def _values(row: Any) -> tuple[Any, ...]:
    """Return a row's values in column order."""
    return tuple(getattr(row, f.name) for f in fields(row))


_ROOM_COLUMNS = _columns(RoomRow)
_SESSION_COLUMNS = _columns(SessionRow)
_INVITE_COLUMNS = _columns(InviteRow)


class Store(Database, WebhookQueries):
    """The core's tables and their queries, on one connection (see tvapp.server.database for transactions)."""

    MIGRATIONS = MIGRATIONS
    SCHEMA_VERSION: int = len(MIGRATIONS)

    # rooms

    def insert_room(self, row: RoomRow) -> None:
        """Insert a room; raise RoomNameTaken if a room that is not completed has its name."""
        with self._transaction() as conn:
            try:
                conn.execute(_insert("rooms", RoomRow), _values(row))
            except sqlite3.IntegrityError as exc:
                if "rooms.name" in str(exc):
                    raise RoomNameTaken(f"a live room is already named {row.name!r}") from exc
                raise

    def set_room_status(
        self, sid: str, status: str, *, started_at: float | None = None, ended_at: float | None = None
    ) -> None:
        """Set a room's status and the given timestamps (None leaves a column unchanged)."""
        with self._transaction() as conn:
            try:
                cursor = conn.execute(
                    "UPDATE rooms SET status = ?, started_at = coalesce(?, started_at),"
                    " ended_at = coalesce(?, ended_at) WHERE sid = ?",
                    (status, started_at, ended_at, sid),
                )
            except sqlite3.IntegrityError as exc:
                if "rooms.name" in str(exc):
                    raise RoomNameTaken(f"another live room has the name of room {sid!r}") from exc
                raise
            if cursor.rowcount == 0:
                raise StoreError(f"no room {sid!r}")

    def get_room(self, sid: str) -> RoomRow | None:
        """Return the room with this sid, or None."""
        return self._room_query(f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE sid = ?", (sid,))

    def find_live_room(self, name: str) -> RoomRow | None:
        """Return the room with this name that is not completed, or None."""
        return self._room_query(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE name = ? AND status != 'completed'", (name,)
        )

    def latest_room(self, name: str) -> RoomRow | None:
        """Return the newest room with this name in any status, or None."""
        return self._room_query(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE name = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (name,),
        )

    def list_rooms(self, status: str | None = None, limit: int = 100) -> list[RoomRow]:
        """Return up to limit rooms, newest first, optionally only those with this status."""
        order = "ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._read() as conn:
            if status is None:
                rows = conn.execute(f"SELECT {_ROOM_COLUMNS} FROM rooms {order}", (limit,)).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE status = ? {order}", (status, limit)
                ).fetchall()
        return [RoomRow(*r) for r in rows]

    def live_rooms(self) -> list[RoomRow]:
        """Return every room that is not completed, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE status != 'completed' ORDER BY created_at, rowid"
            ).fetchall()
        return [RoomRow(*r) for r in rows]

    # participant sessions

    def insert_session(self, row: SessionRow) -> None:
        """Insert a participant session; its room must exist."""
        with self._transaction() as conn:
            conn.execute(_insert("sessions", SessionRow), _values(row))

    def end_session(self, sid: str, left_at: float, reason: str) -> None:
        """Mark a session as left, if it is still open."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE sessions SET left_at = ?, leave_reason = ? WHERE sid = ? AND left_at IS NULL",
                (left_at, reason, sid),
            )

    def end_open_sessions(self, left_at: float, reason: str) -> int:
        """End every open session (crash recovery at start-up); return how many were open."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE sessions SET left_at = ?, leave_reason = ? WHERE left_at IS NULL", (left_at, reason)
            )
            return cursor.rowcount

    def list_sessions(self, room_sid: str) -> list[SessionRow]:
        """Return a room's participant sessions in the order they joined."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE room_sid = ? ORDER BY joined_at, rowid",
                (room_sid,),
            ).fetchall()
        return [SessionRow(*r) for r in rows]

    def search_sessions(self, room_sid: str, *, identity: str | None = None, connected: bool | None = None,
                        joined_after: float | None = None, joined_before: float | None = None,
                        after: str | None = None, limit: int = 100) -> list[SessionRow]:
        """Return a room session's participant sessions matching the filters, in join order, after session `after`."""
        where: list[str] = ["room_sid = ?"]
        args: list[object] = [room_sid]
        if identity is not None:
            where.append("identity = ?")
            args.append(identity)
        if connected is not None:
            where.append("left_at IS NULL" if connected else "left_at IS NOT NULL")
        if joined_after is not None:
            where.append("joined_at >= ?")
            args.append(joined_after)
        if joined_before is not None:
            where.append("joined_at < ?")
            args.append(joined_before)
        if after is not None:
            where.append("(joined_at, rowid) > (SELECT joined_at, rowid FROM sessions WHERE sid = ?)")
            args.append(after)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {' AND '.join(where)} ORDER BY joined_at, rowid"
                " LIMIT ?", (*args, limit)).fetchall()
        return [SessionRow(*r) for r in rows]

    def open_sessions(self) -> list[SessionRow]:
        """Return every participant session not yet ended, in join order."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE left_at IS NULL ORDER BY joined_at, rowid").fetchall()
        return [SessionRow(*r) for r in rows]

    def get_session(self, sid: str) -> SessionRow | None:
        """Return the participant session with this sid, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else SessionRow(*row)

    # invites

    def insert_invite(self, row: InviteRow) -> None:
        """Insert an invite; its room must exist."""
        with self._transaction() as conn:
            conn.execute(_insert("invites", InviteRow), _values(row))

    def get_invite(self, code_hash: str) -> InviteRow | None:
        """Return the invite with this code hash, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {_INVITE_COLUMNS} FROM invites WHERE code_hash = ?", (code_hash,)).fetchone()
        return None if row is None else InviteRow(*row)

    def use_invite(self, code_hash: str, now: float) -> InviteRow | None:
        """Count one use of an unexpired invite with uses left and return it updated; else return None."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE invites SET uses = uses + 1 WHERE code_hash = ? AND uses < max_uses AND expires_at > ?",
                (code_hash, now),
            )
            if cursor.rowcount == 0:
                return None
            row = conn.execute(f"SELECT {_INVITE_COLUMNS} FROM invites WHERE code_hash = ?", (code_hash,)).fetchone()
            return InviteRow(*row)

    # refresh-token families

    def insert_refresh(self, jti: str, family: str, expires_at: float) -> None:
        """Insert an active refresh token in a family (a new family starts with its first token)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO refresh_tokens (jti, family, expires_at, state) VALUES (?, ?, ?, 'active')",
                (jti, family, expires_at),
            )

    def rotate_refresh(self, old_jti: str, new_jti: str, new_expires_at: float, now: float) -> RefreshResult:
        """Retire old_jti and insert new_jti in its family; a retired token presented again revokes the family.

        Checks in this order: UNKNOWN (no such jti), REVOKED (family revoked), EXPIRED (old is past
        expires_at: it grants nothing, so it revokes nothing), RETIRED (reuse: the family is revoked), OK.
        """
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT family, expires_at, state FROM refresh_tokens WHERE jti = ?", (old_jti,)
            ).fetchone()
            if row is None:
                return RefreshResult.UNKNOWN
            family, expires_at, state = row
            if self._family_revoked(conn, family):
                return RefreshResult.REVOKED
            if now >= expires_at:
                return RefreshResult.EXPIRED
            if state == "retired":
                self._revoke_family(conn, family, now)
                return RefreshResult.RETIRED
            conn.execute("UPDATE refresh_tokens SET state = 'retired' WHERE jti = ?", (old_jti,))
            conn.execute(
                "INSERT INTO refresh_tokens (jti, family, expires_at, state) VALUES (?, ?, ?, 'active')",
                (new_jti, family, new_expires_at),
            )
            return RefreshResult.OK

    def revoke_family(self, family: str, now: float) -> None:
        """Revoke a refresh-token family: none of its tokens rotates again."""
        with self._transaction() as conn:
            self._revoke_family(conn, family, now)

    def family_revoked(self, family: str) -> bool:
        """Return whether a refresh-token family is revoked."""
        with self._read() as conn:
            return self._family_revoked(conn, family)

    # revoked access-token ids

    def revoke_jti(self, jti: str, expires_at: float, reason: str) -> None:
        """Refuse an access token id until it expires (keep the later expiry if revoked twice)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO revoked_jtis (jti, expires_at, reason) VALUES (?, ?, ?)"
                " ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
                (jti, expires_at, reason),
            )

    def jti_revoked(self, jti: str) -> bool:
        """Return whether an access token id is revoked."""
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM revoked_jtis WHERE jti = ?", (jti,)).fetchone() is not None

    # bans

    def ban(self, room_sid: str, identity: str, now: float) -> None:
        """Keep an identity out of a room session for good."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO bans (room_sid, identity, banned_at) VALUES (?, ?, ?)",
                (room_sid, identity, now),
            )

    def is_banned(self, room_sid: str, identity: str) -> bool:
        """Return whether an identity is banned from a room session."""
        with self._read() as conn:
            found = conn.execute(
                "SELECT 1 FROM bans WHERE room_sid = ? AND identity = ?", (room_sid, identity)
            ).fetchone()
        return found is not None

    def purge_expired(self, now: float) -> int:
        """Drop expired invites, refresh tokens, revoked token ids and emptied revoked families; return the count."""
        with self._transaction() as conn:
            removed = 0
            for table in ("invites", "refresh_tokens", "revoked_jtis"):
                removed += conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,)).rowcount
            removed += conn.execute(
                "DELETE FROM revoked_families WHERE family NOT IN (SELECT family FROM refresh_tokens)"
            ).rowcount
            return removed

    # private helpers

    @staticmethod
    def _family_revoked(conn: sqlite3.Connection, family: str) -> bool:
        return conn.execute("SELECT 1 FROM revoked_families WHERE family = ?", (family,)).fetchone() is not None

    @staticmethod
    def _revoke_family(conn: sqlite3.Connection, family: str, now: float) -> None:
        conn.execute("INSERT OR IGNORE INTO revoked_families (family, revoked_at) VALUES (?, ?)", (family, now))

    def _room_query(self, sql: str, args: tuple[Any, ...]) -> RoomRow | None:
        with self._read() as conn:
            row = conn.execute(sql, args).fetchone()
        return None if row is None else RoomRow(*row)


__all__ = ["MIGRATIONS", "ROOM_STATUSES", "InviteRow", "Migration", "RefreshResult", "RoomNameTaken", "RoomRow",
           "SessionRow", "Store", "StoreError", "migrate"]
