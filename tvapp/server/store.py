"""The core server's SQLite store: rooms, participant sessions, invites, refresh tokens, revocations and bans.

One file (``DATA/tvapp.db``) in WAL mode with ``synchronous=FULL``: a write is durable when its
COMMIT returns, and ``kill -9`` at any moment leaves a consistent database. The schema is versioned
with ``PRAGMA user_version`` and an ordered list of migrations; opening a database migrates it
forward, and a database newer than this code is refused.

Every write method runs in its own transaction unless it is called inside ``with store.batch():``,
where it joins the batch's transaction inside its own SAVEPOINT (a failing call rolls back alone).
The asyncio server does not call the write methods itself: it hands them to ``writer.StoreWriter``.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOM_STATUSES = ("open", "in-progress", "completed")

_BUSY_TIMEOUT_S = 5.0


class StoreError(Exception):
    """A store operation failed (constraint, I/O, schema version)."""


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


Migration = Callable[[sqlite3.Connection], None]

# Migration i (0-based) takes a database from user_version i to i + 1. Append only; never edit a shipped one.
MIGRATIONS: tuple[Migration, ...] = (_migration_1_initial,)

_ROOM_COLUMNS = "sid, name, status, max_participants, empty_timeout, created_at, started_at, ended_at"
_SESSION_COLUMNS = "sid, room_sid, identity, name, joined_at, left_at, leave_reason"
_INVITE_COLUMNS = "code_hash, room_sid, created_at, expires_at, max_uses, uses, created_by"


def _create_private_file(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create database file: {exc}") from exc


def _user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _check_not_newer(version: int, known: int, path: Path) -> None:
    if version > known:
        raise StoreError(
            f"{path}: database schema version {version} is newer than this tvapp supports ({known}); "
            "upgrade tvapp or point it at another data directory"
        )


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...], path: Path) -> int:
    """Bring an autocommit connection's schema up to len(migrations) in one transaction; return the version."""
    latest = len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)
        _check_not_newer(version, latest, path)
        for number in range(version, latest):
            migrations[number](conn)
        if version != latest:
            conn.execute(f"PRAGMA user_version = {latest:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return latest


def _as_store_error(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreError(f"constraint failed: {exc}")
    return StoreError(f"sqlite error: {exc}")


class Store:
    """One sqlite3 connection (check_same_thread=False, isolation_level=None: explicit transactions)."""

    SCHEMA_VERSION: int = len(MIGRATIONS)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.RLock()
        # 0: no transaction; 1: inside BEGIN IMMEDIATE; n > 1: inside n - 1 nested savepoints.
        self._depth = 0
        self._aborted = False
        _create_private_file(self._path)
        try:
            conn = sqlite3.connect(
                self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: cannot open database: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000):d}")
            _check_not_newer(_user_version(conn), self.SCHEMA_VERSION, self._path)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self._path}: cannot switch to WAL journal mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, MIGRATIONS, self._path)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self._path}: cannot open database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    def close(self) -> None:
        """Close the connection; further calls raise StoreError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def schema_version(self) -> int:
        """Return the database's PRAGMA user_version."""
        with self._read() as conn:
            return _user_version(conn)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run the enclosed calls in one transaction (BEGIN IMMEDIATE ... COMMIT); nested, in a SAVEPOINT."""
        with self._transaction():
            yield

    def integrity_ok(self) -> bool:
        """Return whether PRAGMA integrity_check reports ok."""
        with self._read() as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return [tuple(row) for row in rows] == [("ok",)]

    # rooms

    def insert_room(self, row: RoomRow) -> None:
        """Insert a room; raise RoomNameTaken if a room that is not completed has its name."""
        with self._transaction() as conn:
            try:
                conn.execute(
                    f"INSERT INTO rooms ({_ROOM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row.sid, row.name, row.status, row.max_participants, row.empty_timeout,
                        row.created_at, row.started_at, row.ended_at,
                    ),
                )
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
            conn.execute(
                f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.sid, row.room_sid, row.identity, row.name, row.joined_at, row.left_at, row.leave_reason),
            )

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

    # invites

    def insert_invite(self, row: InviteRow) -> None:
        """Insert an invite; its room must exist."""
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO invites ({_INVITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.code_hash, row.room_sid, row.created_at, row.expires_at, row.max_uses, row.uses, row.created_by),
            )

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

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self._path}: store is closed")
        return self._conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise _as_store_error(exc) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            if self._depth == 0:
                with self._outermost(conn):
                    yield conn
            else:
                with self._savepoint(conn):
                    yield conn

    @contextlib.contextmanager
    def _outermost(self, conn: sqlite3.Connection) -> Iterator[None]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _as_store_error(exc) from exc
        self._depth, self._aborted = 1, False
        try:
            yield
            if self._aborted or not conn.in_transaction:
                raise StoreError("the transaction was rolled back by sqlite after an earlier error in this batch")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _as_store_error(exc) from exc
            raise
        finally:
            self._depth, self._aborted = 0, False

    @contextlib.contextmanager
    def _savepoint(self, conn: sqlite3.Connection) -> Iterator[None]:
        if self._aborted:
            raise StoreError("the transaction was rolled back by sqlite after an earlier error in this batch")
        name = f"op{self._depth}"
        try:
            conn.execute(f"SAVEPOINT {name}")
        except sqlite3.Error as exc:
            raise _as_store_error(exc) from exc
        self._depth += 1
        try:
            yield
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            else:
                self._aborted = True
            if isinstance(exc, sqlite3.Error):
                raise _as_store_error(exc) from exc
            raise
        else:
            conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1
