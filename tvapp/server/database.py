"""An SQLite database file held the way the core's store needs it: private, durable, migrated, transactional.

`Database` opens one file (created mode 0600 in a 0700 folder) in WAL mode with ``synchronous=FULL``: a
write is durable when its COMMIT returns, and ``kill -9`` at any moment leaves a consistent database.
The schema is versioned with ``PRAGMA user_version`` and the subclass's ordered `MIGRATIONS`; opening
migrates forward in one transaction, and a database newer than the code is refused.

A subclass writes inside ``with self._transaction() as conn:`` and reads inside ``with self._read() as conn:``.
A transaction is BEGIN IMMEDIATE ... COMMIT, unless it is opened inside another (``with db.batch():``),
where it becomes a SAVEPOINT that rolls back alone when it fails. Every sqlite3 error leaves as StoreError.
tvapp.server.store holds the tables and their queries; this module knows nothing of them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

_BUSY_TIMEOUT_S = 5.0

Migration = Callable[[sqlite3.Connection], None]


class StoreError(Exception):
    """A store operation failed (constraint, I/O, schema version)."""


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


class Database:
    """One sqlite3 connection (check_same_thread=False, isolation_level=None: explicit transactions)."""

    # Migration i (0-based) takes a database from user_version i to i + 1.
    MIGRATIONS: ClassVar[tuple[Migration, ...]] = ()

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
            _check_not_newer(_user_version(conn), len(self.MIGRATIONS), self._path)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self._path}: cannot switch to WAL journal mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, self.MIGRATIONS, self._path)
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
